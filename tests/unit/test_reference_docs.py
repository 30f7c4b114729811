import re
import shutil

import pytest

from cli.main import main
from reports.reference_docs import REFERENCE_DIR, drift, generate, render_dot, render_page, stack_files
from tests.conftest import EXAMPLE, REPO, planned

# The commands here plan stack files with the code as it is: one plan per stack for the whole run.
pytestmark = pytest.mark.usefixtures("plan_cache")

REGENERATE_HINT = "run `.venv/bin/blueprints docs` at the repository root and commit docs/reference/"


def _edges(dot: str) -> set[tuple[str, str, str]]:
    return {(a, b, label) for a, b, label in re.findall(r"^\s+(\w+) -> (\w+) \[label=\"([^\"]*)\"", dot, re.M)}


def test_graphviz_is_installed():
    assert shutil.which("dot"), "Graphviz 'dot' is missing: run `make host-deps` as root (tests/host-packages.txt)"


def test_committed_reference_matches_the_stacks(tmp_path):
    """The drift check: regenerate every stack's reference and compare bytes with the committed copy."""
    stacks = [stack.relative_to(REPO) for stack in stack_files(REPO / "stacks")]
    assert stacks
    problems = drift([REPO / s for s in stacks], REPO / REFERENCE_DIR, tmp_path)
    assert not problems, "\n".join([*problems, REGENERATE_HINT])


def test_drift_check_reports_a_stale_page_and_a_stale_stack(tmp_path, capsys):
    reference = tmp_path / "reference"
    assert main(["docs", str(EXAMPLE), "-o", str(reference), "--png-dir", ""]) == 0
    assert main(["docs", str(EXAMPLE), "-o", str(reference), "--check"]) == 0
    page = reference / "example" / "index.md"
    page.write_text(page.read_text() + "hand edit\n")
    skip_page = reference / "checkov-skips.md"
    skip_page.write_text(skip_page.read_text().replace("never runs", "runs"))
    (reference / "gone").mkdir()
    assert main(["docs", str(EXAMPLE), "-o", str(reference), "--check"]) == 1
    err = capsys.readouterr().err
    assert f"{page} is out of date with {EXAMPLE} or the code" in err
    assert f"{skip_page} is out of date with validation/checkov-skips.yaml, the stack files or the code" in err
    assert f"{reference / 'gone'} belongs to no stack file: remove it" in err
    assert "The reference is stale: run `blueprints docs`" in err


def test_generation_is_deterministic(example_plan):
    assert render_dot(example_plan) == render_dot(example_plan)
    assert render_page(example_plan) == render_page(example_plan)


def test_example_diagram_shows_entry_points_and_flows(example_plan):
    dot = render_dot(example_plan)
    edges = _edges(dot)
    from_clients = {(a, b) for a, b, _ in edges if a == "clients"}
    assert from_clients == {("clients", "vm_gateway")}
    assert ("clients", "vm_gateway", "https 443") in edges
    assert ("vm_mirror", "nat", "upstream 80, 443") in edges
    assert ("vm_analytics_1", "vm_mirror", "packages 443, 3142") in edges
    # Only the gateway has a public IP drawn on its node.
    assert dot.count("PUBLIC IP ") == 1
    for subnet in ("snet-exnhs-dev-uks-gateway", "snet-exnhs-dev-uks-services", "snet-exnhs-dev-uks-workloads"):
        assert f"subnet {subnet}" in dot
    # Nothing reaches the analytics VMs from outside the virtual network.
    assert not [e for e in edges if e[1].startswith("vm_analytics") and e[0] in {"clients", "internet", "nat"}]


def test_bastion_stack_diagram(tmp_path, plan_cache):
    text = EXAMPLE.read_text().replace("    kind: self-hosted ", "    kind: bastion #")
    text = text.replace("    workloads: 10.40.3.0/24", "    workloads: 10.40.3.0/24\n    bastion: 10.40.4.0/26")
    stack = tmp_path / "managed.yaml"
    stack.write_text(text)
    # One plan for the diagram and the command below: `generate` reads it from the run's plan cache.
    dot = render_dot(planned(stack))
    edges = _edges(dot)
    assert {(a, b) for a, b, _ in edges if a == "clients"} == {("clients", "bastion")}
    assert "Azure Bastion Basic" in dot
    assert "vm_gateway" not in dot
    written = generate(stack, tmp_path / "out")
    assert written[2].read_bytes().startswith(b"<?xml")


def test_page_has_the_sections_a_reviewer_needs(example_plan):
    page = render_page(example_plan)
    for heading in ("## Architecture", "## Entry points from outside", "## Virtual machines",
                    "## Network flows (NSG matrix)", "## Security controls the policies verify", "## Resources",
                    "## Monthly cost estimate"):
        assert heading in page
    assert "`allow-https-clients-to-gateway`" in page
    assert page.count("| compute.VirtualMachine | `vm-") == 5


def test_docs_cli_writes_reference_and_png(tmp_path):
    assert main(["docs", str(EXAMPLE), "-o", str(tmp_path / "ref"), "--png-dir", str(tmp_path / "png")]) == 0
    assert (tmp_path / "ref" / "example" / "index.md").exists()
    # The skip page spans every stack file, whichever stacks one run documents.
    skip_page = (tmp_path / "ref" / "checkov-skips.md").read_text()
    assert re.findall(r"^### Stack (\S+)$", skip_page, re.M) == [s.stem for s in stack_files(REPO / "stacks")]
    assert skip_page.encode() == (REPO / REFERENCE_DIR / "checkov-skips.md").read_bytes()
    assert (tmp_path / "png" / "example.png").read_bytes().startswith(b"\x89PNG")


def test_docs_cli_without_dot_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["docs", str(EXAMPLE), "-o", str(tmp_path)]) == 2
    assert "install the Debian package graphviz" in capsys.readouterr().err


def test_controls_section_lists_every_policy_rule(example_plan):
    from validation.policies import RULES

    page = render_page(example_plan)
    section = page.split("## Security controls the policies verify")[1].split("## Resources")[0]
    for rule in RULES:
        assert f"| {rule.id} |" in section
    assert f"{len(RULES)} of {len(RULES)} pass" in section


def test_stack_page_links_to_its_section_of_the_checkov_skip_page(example_plan):
    assert "(../checkov-skips.md#stack-example)" in render_page(example_plan)
