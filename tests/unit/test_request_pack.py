import re
from html.parser import HTMLParser

import pytest
import yaml

from blueprints.topology import plan_machines
from cli.main import main
from reports.request_pack import NCSC_PRINCIPLES, PROVENANCE, build_context, render, role_packages
from tests.conftest import EXAMPLE, STACK_FILES, planned
from validation.policies import RULES
from validation.stack_config import load_stack

# The commands here plan stack files with the code as it is: one plan per stack for the whole run.
pytestmark = pytest.mark.usefixtures("plan_cache")


@pytest.fixture(scope="module")
def pack(example_plan):
    return render(example_plan)


def _section(markdown, number):
    return markdown.split(f"\n## {number}.")[1].split("\n## ")[0]


def test_pack_has_every_section_a_board_needs(pack):
    markdown, _ = pack
    for title in ("1. Summary: the decision asked for", "2. Owners and sign-off", "3. The environment",
                  "4. Data flows and data protection", "5. Risk register", "6. Controls",
                  "7. Who patches what, and how often", "8. Cost", "9. Exit plan",
                  "Appendix A. Package provenance, once per role"):
        assert f"\n## {title}\n" in markdown
    for title in ("Policy rules", "SATRE specification 2.0.1, technical statements", "NCSC Cloud Security Principles",
                  "Data Security and Protection Toolkit (CAF-aligned)"):
        assert f"\n### {title}\n" in markdown


@pytest.mark.parametrize("stack", STACK_FILES, ids=[s.stem for s in STACK_FILES])
def test_every_package_a_role_installs_has_debian_provenance(stack):
    """Fails when a role adds a package: rerun docs/tooling/debian_packages.py and commit its table."""
    table = yaml.safe_load(PROVENANCE.read_text())["packages"]
    config = load_stack(stack)
    for machine in plan_machines(config):
        missing = [p for p in role_packages(config, machine) if p not in table]
        assert not missing, (f"{machine.name} installs {missing}, not in {PROVENANCE.name}: run "
                             ".venv/bin/python docs/tooling/debian_packages.py and commit the table")


def test_components_list_exactly_what_the_cloud_init_installs_once_per_role(example_plan, pack):
    markdown, _ = pack
    table = yaml.safe_load(PROVENANCE.read_text())["packages"]
    appendix = markdown.split("\n## Appendix A.")[1]
    listed = {}
    for block in re.split(r"^\*\*", appendix, flags=re.M)[1:]:
        role = block.split("**", 1)[0].replace("\\_", "_")
        listed[role] = [(name, version.strip()) for name, version in
                        re.findall(r"^\| ([a-z0-9][^ |]*) \| ([^|]+) \|", block.split("\n\n", 2)[1], re.M)]
    expected = {}
    for machine in plan_machines(example_plan.config):
        names = expected.setdefault(machine.role, [])
        names += [p for p in role_packages(example_plan.config, machine) if p not in names]
    # What every role installs is listed once, before the roles, and left out of each role's table.
    shared = [p for p in next(iter(expected.values())) if all(p in names for names in expected.values())]
    assert shared, "the roles share the host hardening's packages"
    expected = {role: [p for p in names if p not in shared] for role, names in expected.items()}
    expected = {"every role": shared, **expected}
    assert listed == {role: [(p, table[p]["version"]) for p in names] for role, names in expected.items()}


def test_controls_map_every_rule_to_its_ncsc_principles(example_plan, pack):
    markdown, _ = pack
    section = _section(markdown, 6)
    for number, name in NCSC_PRINCIPLES.items():
        assert f"| {number}. {name} |" in section
    for rule in RULES:
        for number in re.findall(r"NCSC Cloud Security Principle (\d+)", rule.reference):
            row = next(line for line in section.splitlines() if line.startswith(f"| {number}. "))
            assert rule.id in row
    context = build_context(example_plan)
    assert context["policies"].total == len(RULES)


def test_risks_cite_evidence_and_the_plan(example_plan, pack):
    markdown, _ = pack
    section = _section(markdown, 5)
    assert "203.0.113.0/24, 198.51.100.16/28" in section  # the stack's client ranges
    assert "30 daily and 12 weekly recovery points" in section  # the plan's backup policy
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows and all(line.split(" | ")[4].strip() for line in rows)  # every risk has evidence


def test_cost_matches_the_estimate(example_plan, pack):
    from reports.costing import estimate

    markdown, _ = pack
    assert f"£{estimate(example_plan).total:,.2f} a month" in _section(markdown, 8)


def test_html_is_the_same_document(pack):
    markdown, html = pack

    class Collector(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.headings, self.errors = [], [], []
            self._in_h2 = False

        def handle_starttag(self, tag, attrs):
            if tag not in {"meta", "br", "hr", "img", "link"}:
                self.stack.append(tag)
            self._in_h2 = tag == "h2"

        def handle_endtag(self, tag):
            if not self.stack or self.stack.pop() != tag:
                self.errors.append(tag)
            self._in_h2 = False

        def handle_data(self, data):
            if self._in_h2:
                self.headings.append(data.strip())

    parser = Collector()
    parser.feed(html)
    assert parser.errors == [] and parser.stack == []
    assert parser.headings == [heading.replace("\\", "") for heading in re.findall(r"^## (.+)$", markdown, re.M)]
    assert html.count("<table>") == len(re.findall(r"^\|---", markdown, re.M))


def test_request_pack_cli_writes_markdown_html_and_the_diagram(tmp_path):
    assert main(["request-pack", str(EXAMPLE), "-o", str(tmp_path), "--no-pdf"]) == 0
    markdown = (tmp_path / "example-request-pack.md").read_text()
    assert markdown.startswith("# Request pack: Example NHS")
    assert "](example-architecture.svg)" in markdown
    assert (tmp_path / "example-architecture.svg").read_text().lstrip().startswith("<?xml")
    html = (tmp_path / "example-request-pack.html").read_text()
    assert re.search(r"<h1[^>]*>Request pack", html) and "data:image/svg+xml;base64," in html
    assert not (tmp_path / "example-request-pack.pdf").exists()


def test_request_pack_bad_stack_exits_2(tmp_path, capsys):
    assert main(["request-pack", str(tmp_path / "missing.yaml"), "-o", str(tmp_path)]) == 2
    assert "cannot be read" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("stack", STACK_FILES, ids=[s.stem for s in STACK_FILES])
def test_every_stack_gets_a_pack_with_its_own_facts(stack):
    plan = planned(stack)
    markdown, _ = render(plan)
    assert f"# Request pack: {plan.config['trust']['name']}" in markdown
    assert "nothing only" not in markdown and "ports none" not in markdown
    assert "not in the provenance table" not in markdown
    for machine in plan_machines(plan.config):
        row = next(line for line in markdown.splitlines() if line.startswith(f"| {machine.role} | "))
        assert machine.name in row.split(" | ")[1].split(", ")


def test_pinned_pypi_and_npm_software_is_listed_from_the_role_files(example_plan, pack):
    import json

    from tests.conftest import REPO

    markdown, _ = pack
    files = REPO / "blueprints" / "package_mirror" / "files"
    requirements = re.findall(r"^([A-Za-z0-9][\w.-]*)==(\S+)", (files / "devpi-requirements.txt").read_text(), re.M)
    npm = json.loads((files / "verdaccio-package.json").read_text())["dependencies"]
    assert requirements and npm
    mirror = next(m for m in build_context(example_plan)["machines"] if m.role == "package_mirror")
    by_path = {f.path: f for f in mirror.pinned}
    assert by_path["/etc/trust-blueprints/mirror/devpi-requirements.txt"].pins == requirements
    assert by_path["/opt/verdaccio/package.json"].pins == sorted(npm.items())
    assert [f.pins for f in mirror.pinned if f.path.startswith("the npm installer")] == [[("npm", "10.9.4")]]
    appendix = markdown.split("\n## Appendix A.")[1]
    row = next(line for line in appendix.splitlines() if "devpi-requirements.txt" in line)
    assert row.startswith("| package_mirror | PyPI |") and "devpi-server 6.20.3" in row
    others = [m for m in build_context(example_plan)["machines"] if m.role != "package_mirror"]
    assert others and all(m.pinned == [] for m in others)


def test_no_statement_claims_the_software_is_debian_only(pack):
    markdown, _ = pack
    assert "only Debian packages" not in markdown
    assert "caches Debian packages only" not in markdown
    assert "is planned to" not in markdown


def test_every_repository_path_the_pack_cites_exists(pack):
    from tests.conftest import REPO

    markdown, _ = pack
    cited = set(re.findall(r"(?<![\w/-])((?:tests|blueprints|validation|docs|policy-pack)/[\w./-]*[\w/])", markdown))
    assert "tests/acceptance/test_package_mirror.py" in cited
    assert "validation/checkov-skips.yaml" in cited
    missing = sorted(path for path in cited if not (REPO / path).exists())
    assert missing == []


def test_checkov_checks_named_are_those_of_the_skip_file(example_plan, pack):
    from validation.checkov_gate import load_skips

    markdown, _ = pack
    section = _section(markdown, 6)
    assert f"Checks it may fail here: {', '.join(load_skips())};" in section
    assert f"checks never run:\n{', '.join(load_skips(section='not_run'))};" in section


def test_acceptance_suites_named_are_only_those_that_exist():
    from reports.request_pack import acceptance_suites

    assert acceptance_suites(["git_server", "no_such_role", "git_server"]) == ["tests/acceptance/test_git_server.py"]
