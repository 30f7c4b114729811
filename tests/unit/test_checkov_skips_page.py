"""The published page of checkov skips says what the skip file says, per stack, from the plans."""

from __future__ import annotations

import copy
import re

import yaml

from reports.checkov_skips_page import concerned_resources, render_skip_page, stack_anchor
from tests.conftest import REPO
from validation.checkov_gate import load_skips


def _section(page: str, heading: str) -> str:
    return page.split(f"\n{heading}\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]


def test_every_skipped_and_not_run_check_is_published_with_its_justification(example_plan):
    page = render_skip_page([example_plan])
    entries = [*load_skips().values(), *load_skips(section="not_run").values()]
    assert entries
    for entry in entries:
        section = _section(page, f"### {entry['id']}")
        assert " ".join(entry["reason"].split()) in section
        assert " ".join(entry["compensating_control"].split()) in section
        assert f"`{entry['resource_type']}`" in section
        assert f"[{entry['id']}](#{entry['id'].lower()})" in _section(page, "### Stack example")


def test_the_gate_treatment_follows_the_section_of_the_skip_file(example_plan):
    page = render_skip_page([example_plan])
    for check_id in load_skips():
        assert "Gate: runs; may fail (listed under `skips`)" in _section(page, f"### {check_id}")
    for check_id in load_skips(section="not_run"):
        assert "Gate: never runs (listed under `not_run`)" in _section(page, f"### {check_id}")


def test_each_check_names_the_resources_of_its_type_in_each_stack(example_plan):
    vms = concerned_resources(example_plan, "Microsoft.Compute/virtualMachines")
    assert len(vms) == 5 and all(name.startswith("vm-exnhs-dev-uks-") for name in vms)
    disks = concerned_resources(example_plan, "Microsoft.Compute/disks")
    assert len(disks) == 5  # mirror, git, gateway, analytics-1, analytics-2
    section = _section(render_skip_page([example_plan]), "### CKV_AZURE_93")
    assert f"| [example](#{stack_anchor('example')}) | " + ", ".join(f"`{d}`" for d in disks) + " |" in section


def test_a_stack_without_resources_of_the_type_says_so(tmp_path, example_plan):
    skips = {"skips": [{"id": "CKV_AZURE_35", "check": "Ensure default network access rule for Storage Accounts "
                        "is set to deny", "resource_type": "Microsoft.Sql/servers",
                        "reason": "a reason", "compensating_control": "a control"}]}
    path = tmp_path / "skips.yaml"
    path.write_text(yaml.safe_dump(skips))
    page = render_skip_page([example_plan], path)
    assert "| [example](#stack-example) | none of this type |" in page
    assert "| [CKV_AZURE_35](#ckv_azure_35) | runs; may fail | 0 | a reason |" in page
    assert "CKV_AZURE_50" not in page


def test_the_page_is_the_same_whatever_order_the_plans_come_in(example_plan):
    other = copy.deepcopy(example_plan)
    other.stack = "another"
    other.resources = [r for r in other.resources if r.type != "azure-native:compute:Disk"]
    page = render_skip_page([example_plan, other])
    assert page == render_skip_page([other, example_plan])
    assert page.index("### Stack another") < page.index("### Stack example")
    assert "| [another](#stack-another) | none of this type |" in _section(page, "### CKV_AZURE_93")


def test_the_committed_page_covers_every_stack_file():
    page = (REPO / "docs" / "reference" / "checkov-skips.md").read_text(encoding="utf-8")
    stacks = sorted(path.stem for path in (REPO / "stacks").glob("*.yaml"))
    assert re.findall(r"^### Stack (\S+)$", page, re.M) == stacks


def test_the_page_is_in_the_site_navigation_and_linked_from_the_security_model():
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    reference = next(item["Reference"] for item in nav if "Reference" in item)
    assert "reference/checkov-skips.md" in [page for item in reference for page in item.values()]
    assert "(reference/checkov-skips.md)" in (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")

