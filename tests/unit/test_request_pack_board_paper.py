"""The request pack as the board paper a trust's IT and information-governance board reads: its PDF's
sections and length, honest counts, the SATRE v2 mapping with proof that exists, purpose and diagram
that follow the stack."""

import ast
import io
import re

import pytest
import yaml

from reports.request_pack import SATRE, build_context, render, render_pdf, stack_facts
from tests.conftest import REPO, STACK_FILES
from validation.policies import RULES, evaluate
from validation.policies.report import render_results

# The commands here plan stack files with the code as it is: one plan per stack for the whole run.
pytestmark = pytest.mark.usefixtures("plan_cache")

SECTIONS = ("1. Summary: the decision asked for", "2. Owners and sign-off", "3. The environment",
            "4. Data flows and data protection", "5. Risk register", "6. Controls",
            "7. Who patches what, and how often", "8. Cost", "9. Exit plan",
            "Appendix A. Package provenance, once per role")
STATUSES = {"met", "trust", "not-met"}


@pytest.fixture(scope="module")
def pack(example_plan):
    return render(example_plan)


@pytest.fixture(scope="module")
def pdf_text(pack):
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(render_pdf(pack[1])))
    return [page.extract_text() for page in reader.pages]


def _plan(stack):
    from validation.plan_cache import recorded_plan

    return recorded_plan(stack)


def test_the_example_pdf_has_every_section_in_under_twelve_pages(pdf_text):
    assert len(pdf_text) < 12, f"the example's pack is {len(pdf_text)} pages"
    text = " ".join(" ".join(pdf_text).split())
    for title in SECTIONS:
        assert title in text, title
    for heading in ("SATRE specification 2.0.1, technical statements", "NCSC Cloud Security Principles",
                    "Data Security and Protection Toolkit (CAF-aligned)", "Signature and date", "Residual"):
        assert heading in text, heading
    assert re.search(r"page 1 of \d+", text)


def test_the_diagram_is_drawn_on_a_page_of_the_pdf(pdf_text):
    # The diagram is vector art: its node labels are text on the page after the environment's heading.
    page = next(text for text in pdf_text if "vm-exnhs-dev-uks-gateway" in text)
    assert "subnet snet-exnhs-dev-uks-workloads" in page


@pytest.mark.parametrize("stack", STACK_FILES, ids=[s.stem for s in STACK_FILES])
def test_policy_counts_are_those_blueprints_plan_prints(stack):
    plan = _plan(stack)
    markdown, _ = render(plan)
    counts = build_context(plan)["policies"]
    line = render_results(evaluate(plan)).splitlines()[-1]
    assert line == (f"{counts.passed} rules passed, {counts.failed} mandatory failed, {counts.warned} advisory warned, "
                    f"{counts.not_applicable} not applicable")
    assert counts.passed + counts.failed + counts.warned + counts.not_applicable == counts.total == len(RULES)
    summary = " ".join(markdown.split("\n## 1.")[1].split("\n## ")[0].split())
    assert (f"{counts.passed} policy rules passed, {counts.failed} mandatory failed, {counts.warned} advisory warned "
            f"and {counts.not_applicable} not applicable") in summary


def test_rules_with_nothing_to_check_are_not_counted_as_passes():
    # Azure Bastion's stack has no gateway VM, Git server or storage account for some rules to check.
    counts = build_context(_plan(REPO / "stacks" / "bastion-single-analyst.yaml"))["policies"]
    assert counts.not_applicable > 0 and counts.passed == counts.total - counts.not_applicable


def test_every_satre_v2_technical_statement_has_a_status_and_a_reason(example_plan, pack):
    markdown, _ = pack
    statements = yaml.safe_load(SATRE.read_text())["statements"]
    ids = [s["id"] for s in statements]
    # Pillar 2 of SATRE 2.0.1: capabilities 2.1 to 2.9, 62 statements, each once and in order.
    assert len(ids) == 62 and len(set(ids)) == 62 and ids == sorted(ids, key=lambda i: tuple(map(int, i.split("."))))
    assert {i.rsplit(".", 1)[0] for i in ids} == {f"2.{n}" for n in range(1, 10)}
    for entry in statements:
        for case in [entry, *entry.get("cases", [])]:
            assert case["status"] in STATUSES and len(case["reason"]) > 20, entry["id"]
    rows = {row.id: row for row in build_context(example_plan)["satre"]}
    assert list(rows) == ids
    section = markdown.split("\n### SATRE")[1].split("\n### ")[0]
    for row in rows.values():
        line = next(line for line in section.splitlines() if line.startswith(f"| {row.id} | "))
        assert {"met": "| met |", "trust": "| trust |", "not-met": "| NOT MET |"}[row.status] in line
    assert rows["2.1.01"].status == "not-met"  # the browser's clipboard is not controlled: said, not hidden


def _proofs(text):
    """Every rule id, test node id and repository path a text cites as proof."""
    rules = set(re.findall(r"\bTB-[A-Z]+-\d{3}\b", text))
    nodes = set(re.findall(r"\b(tests/[\w/]+\.py)::(test_\w+)", text))
    paths = set(re.findall(r"(?<![\w/-])((?:tests|blueprints|validation|docs|reports)/[\w./-]*\w)", text))
    return rules, nodes, paths


def _defined_tests(path):
    tree = ast.parse((REPO / path).read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


@pytest.mark.parametrize("source", ["mapping", "pack"])
def test_every_proof_cited_exists(source, pack):
    if source == "mapping":
        entries = yaml.safe_load(SATRE.read_text())["statements"]
        text = " ".join(proof for entry in entries for case in [entry, *entry.get("cases", [])]
                        for proof in case["evidence"])
    else:
        text = pack[0].replace("\\_", "_")
    rules, nodes, paths = _proofs(text)
    assert rules and nodes and paths
    assert rules <= {rule.id for rule in RULES}, rules - {rule.id for rule in RULES}
    missing = sorted(f"{path}::{name}" for path, name in nodes if name not in _defined_tests(path))
    assert missing == []
    assert sorted(path for path in paths if not (REPO / path).exists()) == []


@pytest.mark.parametrize("stack", STACK_FILES, ids=[s.stem for s in STACK_FILES])
def test_purpose_and_statements_follow_the_stack(stack):
    plan = _plan(stack)
    markdown, _ = render(plan)
    facts = stack_facts(plan.config)
    purpose = markdown.split("**Purpose**: ")[1].split("\n\n")[0]
    assert ("Git" in purpose) == facts["git_server"]
    assert ("R, Python" in purpose) == facts["analytics"]
    assert ("curates" in purpose) == facts["curated_mirror"]
    rows = {row.id: row for row in build_context(plan)["satre"]}
    assert (rows["2.1.07"].status == "met") == facts["git_server"]
    assert (rows["2.1.13"].status == "met") == facts["curated_mirror"]
    for row in rows.values():
        assert row.status in STATUSES


def test_risk_register_rates_each_risk_before_and_after_its_controls(example_plan, pack):
    risks = build_context(example_plan)["risks"]
    assert len(risks) >= 8
    for risk in risks:
        assert 1 <= risk.residual_likelihood <= risk.likelihood <= 5 and 1 <= risk.impact <= 5
        assert risk.rating == ("High" if risk.residual >= 15 else "Medium" if risk.residual >= 8 else "Low")
        assert risk.controls and risk.evidence and risk.owner
    section = pack[0].split("\n## 5.")[1].split("\n## ")[0]
    assert "| Risk | L | I | Controls in this stack | Evidence | Residual | Owner |" in section
    for risk in risks:
        assert f"| {risk.residual} {risk.rating} |" in section


def test_data_protection_names_every_store_and_its_retention(example_plan, pack):
    section = " ".join(pack[0].split("\n## 4.")[1].split("\n## ")[0].split())
    for phrase in ("Personal data it may process", "Where it lives", "Who can reach it", "Retention",
                   "DPIA questions this pack answers", "DPIA questions left to the trust",
                   "30 daily and 12 weekly recovery points", "logs 30 days"):
        assert phrase in section, phrase
    for host in ("analytics-1: /home", "analytics-2: /home", "git: /srv/git"):
        assert host in section


def test_the_git_flow_offers_what_the_git_server_offers():
    from blueprints.network_flows import FLOWS

    readme = (REPO / "blueprints" / "git_server" / "README.md").read_text()
    assert "Not offered: cloning over HTTPS" in readme
    flow = next(flow for flow in FLOWS if flow.name == "git-analytics-to-git")
    assert "HTTPS" not in flow.purpose and "clone" in flow.purpose


@pytest.mark.parametrize("stack", STACK_FILES, ids=[s.stem for s in STACK_FILES])
def test_a_subnet_labelled_without_internet_egress_has_no_edge_to_the_internet(stack):
    from reports.reference_docs import render_dot

    dot = render_dot(_plan(stack))
    clusters = re.findall(r"subgraph cluster_subnet\d+ \{\n\s+label=\"([^\"]*)\";(.*?)\n    \}", dot, re.S)
    assert clusters
    for label, body in clusters:
        nodes = re.findall(r"^\s+(\w+) \[label=", body, re.M)
        leaving = [n for n in nodes if re.search(rf"^\s+{n} -> (internet|nat) ", dot, re.M)]
        assert ("no Internet egress" in label) == (not leaving), (label, leaving)


def test_the_bastion_subnet_says_which_port_it_opens_to_the_internet():
    from reports.reference_docs import render_dot

    dot = render_dot(_plan(REPO / "stacks" / "bastion-single-analyst.yaml"))
    assert re.search(r"^  bastion -> internet ", dot, re.M)
    assert "Internet egress on port 80 only" in dot


def test_request_pack_writes_the_pdf_and_refuses_a_file_as_its_directory(tmp_path, capsys):
    from cli.main import main

    assert main(["request-pack", str(REPO / "stacks" / "example.yaml"), "-o", str(tmp_path)]) == 0
    assert (tmp_path / "example-request-pack.pdf").read_bytes().startswith(b"%PDF-")
    existing = tmp_path / "example-request-pack.md"
    assert main(["request-pack", str(REPO / "stacks" / "example.yaml"), "-o", str(existing)]) == 2
    err = capsys.readouterr().err
    assert "directory" in err and "Traceback" not in err


def test_the_risk_register_names_one_analyst_acting_as_another(example_plan):
    risk = next(r for r in build_context(example_plan)["risks"] if r.risk.startswith("One analyst acting"))
    # The example's gateway has a Key Vault certificate: each analyst's server has an origin of its own.
    assert "web origin of its own" in risk.controls and "host-only" in risk.controls
    assert risk.evidence.endswith("tests/acceptance/test_own_origins.py")
    assert risk.residual_likelihood == 1
