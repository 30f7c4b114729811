"""Every fact a guide states about the code is checked against the code.

The guides are the site's pages (docs/*.md), the repository's README.md and each role's README.
What they may not get wrong, each read from where the code keeps it:
  - stack keys (`roles.gateway.kind`, `network.allowed_client_ranges`, `backup.target` in a role's
    README), and any value given with one (`roles.gateway.kind: bastion`): the stack schema;
  - a role README's Configuration section: every key of the role named, each default as the schema's;
  - secret names (`gateway-oidc-client-secret`, `<machine>-tls-crt`, files in the secrets directory,
    `az keyvault secret ... --name`): the roles' declarations and blueprints/secrets.py;
  - flow names (`ssh-clients-to-gateway`, `allow-<flow>`), the ports said beside one, ports said of
    a machine (`mirror.<zone>:3142`) and every `port N`: blueprints/network_flows.py;
  - status: no "planned" or "being built" about anything; the one thing the guides may call planned
    (NOT_BUILT) must still not exist;
  - the command markers: each one the guide test knows is explained in docs/index.md, and `make test`
    is described on one page only, the others linking to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from blueprints.network_flows import FLOWS
from blueprints.roles import all_roles
from blueprints.secrets import MACHINE_FILES, SHARED_FILES, key_vault_name
from reports.settings_reference import setting_keys
from tests.conftest import REPO
from tests.roles.sample_role.role import ROLE as SAMPLE
from tests.unit.test_guides import MARKERS
from validation.schema import stack_schema

ROLE_READMES = sorted((REPO / "blueprints").glob("*/README.md"))
GUIDES = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md", *ROLE_READMES]
TOP_LEVEL = tuple(stack_schema())

# Words a guide may not use about the project's state. What exists is described as it is;
# what does not exist yet is listed in NOT_BUILT.
# "Planned" as a status; "planned offline" (recorded by the offline plan) is this project's other sense.
STATUS = re.compile(r"\b(planned(?! (?:offline|by|under|from|with))|being built|not (?:yet )?built|coming soon|"
                    r"will be (?:documented|added)|work in progress|not yet implemented|TODO|TBD)\b", re.I)
# Subjects the guides may call planned, and how the test knows each still does not exist.
NOT_BUILT = {"airlock": lambda: "airlock" not in {role.name for role in all_roles()}}
# Hyphenated English words that look like flow names.
NOT_FLOWS = {"up-to-date", "end-to-end", "day-to-day", "point-to-site", "site-to-site", "peer-to-peer",
             "face-to-face", "one-to-one", "many-to-many", "back-to-back"}
# Ports a guide may name that no flow opens: they are on a machine's loopback only.
LOOPBACK_PORTS = {8089: "the mirror README's stand-in upstream for CRAN in a test, on 127.0.0.1",
                  50022: "an analyst's own end of an Azure Bastion tunnel, on their machine's loopback",
                  8888: "an analyst's own JupyterLab on an analytics VM's loopback, forwarded over their SSH"}

FENCE = re.compile(r"^[ ]*```[^\n]*\n.*?^[ ]*```[ ]*$", re.M | re.S)
SPAN = re.compile(r"`([^`\n]+)`")
FLOW_WORD = re.compile(r"(?<![\w/.#-])(?:allow-)?([a-z0-9]+(?:-[a-z0-9]+)*-to-[a-z0-9]+(?:-[a-z0-9]+)*)(?![\w-])")
SECRET_WORD = re.compile(r"^(?:<machine>|[a-z0-9]+)(?:-[a-z0-9]+)*-(?:secret|passphrase|crt|key|reader|token|"
                         r"password|pem)(?:\.pub)?$")
SECRETS_DIR = re.compile(r"/etc/trust-blueprints/secrets/([\w.{},-]+)")
KEYVAULT_NAME = re.compile(r"az keyvault secret (\w+) .*?--name ([\w<>.-]+)")
HOST_PORT = re.compile(r"\b(mirror|git|gateway|analytics-(?:N|\d+))\.<zone>:(\d+)")
PORT_WORDS = re.compile(r"\bports? (\d{2,5}(?:(?:,| and| or) \d{2,5})*)")
ON_PORTS = re.compile(r"\bon (\d{2,5}(?:(?:,| and| or) \d{2,5})*)\b")
KNOWN_NOT_A_SETTING = "is not a known setting"


@dataclass
class Facts:
    """What the code says, in the forms guides name it."""

    keys: dict[str, dict[str, Any]]  # every dotted stack key (list entries as key[]) and its field
    flows: dict[str, tuple[int, ...]]
    secret_names: set[str]  # Key Vault secret names, with <machine> for any machine
    secret_files: set[str]  # file names in /etc/trust-blueprints/secrets/
    supplied: set[str]  # the Key Vault secrets a person supplies; the program makes every other one
    hosts: dict[str, str]  # host name (or analytics-N) -> role
    role_settings: dict[str, dict[str, Any]]  # role -> its settings schema
    sample_keys: dict[str, dict[str, Any]]  # the test-only sample role's keys, the contributing guide's example


def _fields(schema: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, field in schema.items():
        key = f"{prefix}.{name}" if prefix else name
        found[key] = field
        inner = field.get("schema")
        if field.get("type") == "dict" and isinstance(inner, dict):
            found.update(_fields(inner, key))
        elif field.get("type") == "list" and isinstance(inner, dict) and inner.get("type") == "dict":
            found.update(_fields(inner.get("schema", {}), f"{key}[]"))
    return found


def code_facts() -> Facts:
    schema = stack_schema()
    keys = _fields(schema)
    assert sorted(keys) == sorted(setting_keys(schema))  # the same walk as the settings reference
    roles = all_roles()
    hosts: dict[str, str] = {}
    machine_names = {"<machine>"}
    for role in roles:
        names = [f"{role.host_name}-N", *(f"{role.host_name}-{i}" for i in range(1, 21))] if role.numbered \
            else [role.host_name]
        hosts.update(dict.fromkeys(names, role.name))
        machine_names.update(names)
    secret_names = {key_vault_name(name) for name in SHARED_FILES}
    secret_files = set(SHARED_FILES) | set(MACHINE_FILES)
    for machine in machine_names:
        secret_names.update(f"{machine}-{key_vault_name(name)}" for name in MACHINE_FILES)
    supplied = {key_vault_name(spec.name) for role in roles for spec in role.secrets if spec.supplied_by}
    for role in roles:
        for spec in role.secrets:
            extra = (spec.name, f"{spec.name}.pub") if spec.kind == "ssh-ed25519" else (spec.name,)
            secret_files.update(extra)
            secret_names.update(key_vault_name(name) for name in extra)
    return Facts(keys=keys, flows={flow.name: flow.ports for flow in FLOWS}, secret_names=secret_names,
                 secret_files=secret_files, supplied=supplied, hosts=hosts,
                 role_settings={role.name: role.settings_schema for role in roles},
                 sample_keys=_fields({SAMPLE.name: {"type": "dict", "schema": SAMPLE.settings_schema}}, "roles"))


def _prose(text: str) -> str:
    """The page without code blocks and HTML comments, line numbers kept."""
    blank = lambda match: "\n" * match.group(0).count("\n")  # noqa: E731
    return FENCE.sub(blank, re.sub(r"<!--.*?-->", blank, text, flags=re.S))


def _lines(text: str) -> list[tuple[int, str]]:
    return list(enumerate(text.splitlines(), start=1))


# A block `blueprints docs` writes from the code itself (the change matrix): its drift test keeps it true,
# and its rows may name what only an edit brings (a new data source's port), so facts skip it.
GENERATED = re.compile(r"<!-- begin: [^\n]*written by `blueprints docs`.*?<!-- end: [^\n]*-->", re.S)


def _hand_written(text: str) -> str:
    """The page without the blocks `blueprints docs` writes, line numbers kept."""
    return GENERATED.sub(lambda match: "\n" * match.group(0).count("\n"), text)


def _yaml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "[]" if value == [] else str(value)


def _normal_key(key: str) -> str:
    key = re.sub(r"\[\d+\]", "[]", key.removesuffix(".*"))
    return key.removesuffix("[]")


def _known(key: str, facts: Facts) -> bool:
    return key in facts.keys or f"{key}[]" in facts.keys


def _relative_key(token: str, facts: Facts, role: str | None) -> str | None:
    """The full key a token relative to a role's section names, or None when it names no setting."""
    first = re.split(r"[.\[]", token, maxsplit=1)[0]
    parents = {key.rsplit(".", 1)[-1].removesuffix("[]") for key, field in facts.keys.items()
               if field.get("type") == "dict" or (field.get("type") == "list" and
                                                   isinstance(field.get("schema"), dict) and
                                                   field["schema"].get("type") == "dict")}
    if first not in parents or first in TOP_LEVEL:
        return None
    if role is not None and _known(f"roles.{role}.{_normal_key(token)}", facts):
        return f"roles.{role}.{_normal_key(token)}"
    for key in facts.keys:
        if key.endswith("." + _normal_key(token)) or key.endswith("." + _normal_key(token) + "[]"):
            return key
    return ""  # looks like a setting, and is none


def stack_key_problems(token: str, facts: Facts, role: str | None = None) -> list[str]:
    key, _, rest = token.partition(": ")
    key = key.rstrip(":")
    if not re.fullmatch(r"[a-z_]+(?:\[\d*\])?(?:\.[a-z_]+(?:\[\d*\])?)*(?:\.\*)?(?:/[a-z_]+)*", key):
        return []
    alternatives = key.split("/")
    stem = alternatives[0].rsplit(".", 1)[0] if len(alternatives) > 1 else ""
    names = [alternatives[0], *(f"{stem}.{alt}" for alt in alternatives[1:])]
    problems = []
    for name in names:
        if name.split(".", 1)[0].split("[")[0] in TOP_LEVEL and ("." in name or "[" in name):
            full: str | None = _normal_key(name)
            if rest.startswith(KNOWN_NOT_A_SETTING):
                if _known(full, facts):  # the guide quotes the refusal of a key that does exist
                    problems.append(f"`{token}`: {full} is a setting, so validate would not refuse it")
                continue
        else:
            full = _relative_key(name, facts, role)
            if full is None:
                continue
        if not full or not _known(full, facts):
            problems.append(f"`{token}`: no stack setting {name} (see docs/reference/settings.md)")
            continue
        field = facts.keys.get(full) or facts.keys[f"{full}[]"]
        value = rest.split("#")[0].strip()
        allowed = {_yaml_text(v) for v in field.get("allowed", [])}
        if value and " " not in value and allowed and value not in allowed:
            problems.append(f"`{token}`: {full} allows {', '.join(map(str, field['allowed']))}, not {value}")
    return problems


def secret_problems(token: str, facts: Facts) -> list[str]:
    problems = []
    if SECRET_WORD.match(token) and token not in facts.secret_names | facts.secret_files:
        problems.append(f"`{token}`: no Key Vault secret of that name (blueprints/<role>/role.py secrets, "
                        "blueprints/secrets.py)")
    for files in SECRETS_DIR.findall(token):
        for name in _brace_expand(files.rstrip("/")):
            if name and name not in facts.secret_files:
                problems.append(f"`{token}`: no secret file {name} in /etc/trust-blueprints/secrets/")
    return problems


def _brace_expand(text: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", text)
    if not match:
        return [text]
    return [expanded for option in match[1].split(",")
            for expanded in _brace_expand(text[:match.start()] + option + text[match.end():])]


def _numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


def flow_and_port_problems(line: str, facts: Facts) -> list[str]:
    problems = []
    named = [name for name in FLOW_WORD.findall(line) if name not in NOT_FLOWS]
    for name in named:
        if name not in facts.flows:
            problems.append(f"{name}: no such flow in blueprints/network_flows.py")
    known = [name for name in dict.fromkeys(named) if name in facts.flows]
    if known:  # ports said in the same line as flows are those flows' ports
        opened = sorted({port for name in known for port in facts.flows[name]})
        for group in PORT_WORDS.findall(line) + ON_PORTS.findall(line):
            for port in _numbers(group):
                if port not in opened:
                    problems.append(f"{', '.join(known)} open{'s' if len(known) == 1 else ''} "
                                    f"{', '.join(map(str, opened))}, not {port}")
    every_port = {port for ports in facts.flows.values() for port in ports}
    for group in PORT_WORDS.findall(line):
        for port in _numbers(group):
            if port not in every_port and port not in LOOPBACK_PORTS:
                problems.append(f"port {port}: no flow in blueprints/network_flows.py opens it")
    for host, port in HOST_PORT.findall(line):
        role = facts.hosts.get(host)
        inbound = {p for flow in FLOWS if flow.destination == f"role:{role}" for p in flow.ports}
        if int(port) not in inbound:
            problems.append(f"{host}.<zone>:{port}: no flow reaches {role} on {port}")
    return problems


def status_problems(line: str) -> list[str]:
    match = STATUS.search(line)
    if not match:
        return []
    subject = next((name for name in NOT_BUILT if name in line.lower()), None)
    if subject is None:
        return [f"says {match[0]!r}: describe what exists as it is (or name the subject in NOT_BUILT)"]
    if not NOT_BUILT[subject]():
        return [f"says {match[0]!r} of the {subject}, which now exists: describe it as it is"]
    return []


def configuration_problems(text: str, role: str, facts: Facts) -> list[str]:
    """A role README's Configuration section: keys exist, defaults are the schema's, none left out."""
    section = re.search(r"^## Configuration.*?(?=^## |\Z)", text, re.M | re.S)
    if section is None:
        return [f"no ## Configuration section for roles.{role}"]
    problems = []
    named: set[str] = set()
    for token in SPAN.findall(section[0]):
        named.add(re.split(r"[.\[/ :]", token, maxsplit=1)[0])
    for row in re.findall(r"^\|(.+)\|\s*$", section[0], re.M):
        cells = [cell.strip() for cell in row.split("|")]
        keys = SPAN.findall(cells[0])
        if len(cells) < 2 or not keys or set(cells[1]) <= set("-: "):
            continue
        full = [key for key in keys if not key.startswith(".")]
        if len(keys) != 1 or "/" in keys[0] or not _known(f"roles.{role}.{_normal_key(keys[0])}", facts):
            continue
        field = facts.keys.get(f"roles.{role}.{_normal_key(full[0])}") or {}
        shown = cells[1]
        default = field.get("default")
        if re.fullmatch(r"`[^`]+`|\d+", shown):
            if "default" not in field or shown.strip("`") != _yaml_text(default):
                problems.append(f"roles.{role}.{keys[0]}: the default is {_yaml_text(default)!s}, not {shown}")
        elif shown == "none" and default not in (None, [], {}):
            problems.append(f"roles.{role}.{keys[0]}: the default is {_yaml_text(default)}, not none")
        elif shown.startswith("(required)") and not field.get("required"):
            problems.append(f"roles.{role}.{keys[0]}: is optional, not (required)")
    for name in facts.role_settings[role]:
        if name not in named:
            problems.append(f"roles.{role}.{name}: a setting the Configuration section does not name")
    return problems


def page_problems(text: str, facts: Facts, role: str | None = None, sample: bool = False) -> list[str]:
    """Every fact on one page that the code contradicts, with its line. A page that works through the
    sample role (sample=True) may name its settings too."""
    if sample:
        facts = replace(facts, keys={**facts.keys, **facts.sample_keys})
    problems: list[str] = []
    for number, line in _lines(_hand_written(text)):  # code blocks included: commands and output name flows too
        problems += [f"line {number}: {p}" for p in flow_and_port_problems(line, facts)]
        for verb, name in KEYVAULT_NAME.findall(line):
            if name not in facts.secret_names:
                problems.append(f"line {number}: `{name}`: no Key Vault secret of that name")
            elif verb == "set" and name not in facts.supplied:  # the next `pulumi up` would overwrite it
                problems.append(f"line {number}: `{name}`: the program creates this secret; a person sets only "
                                + ", ".join(sorted(facts.supplied)))
    for number, line in _lines(_prose(text)):
        problems += [f"line {number}: {p}" for p in status_problems(line)]
        for token in SPAN.findall(line):
            problems += [f"line {number}: {p}" for p in stack_key_problems(token, facts, role)]
            problems += [f"line {number}: {p}" for p in secret_problems(token, facts)]
    if role is not None:
        problems += configuration_problems(text, role, facts)
    return problems


@pytest.fixture(scope="module")
def facts() -> Facts:
    return code_facts()


@pytest.mark.parametrize("guide", GUIDES, ids=[g.relative_to(REPO).as_posix() for g in GUIDES])
def test_every_fact_a_guide_states_is_the_codes(guide: Path, facts: Facts):
    role = guide.parent.name if guide in ROLE_READMES else None
    problems = page_problems(guide.read_text(encoding="utf-8"), facts, role, sample=guide.name == "contributing.md")
    assert not problems, f"{guide.relative_to(REPO)}:\n" + "\n".join(problems)


def test_a_page_that_names_what_does_not_exist_fails(facts: Facts):
    page = "\n".join([
        "Set `roles.gateway.sku` to Standard, or `roles.gateway.kind: managed`.",
        "The gateway reads `gateway-oidc-secret`; the mirror reads `package-requests-reader`.",
        "Files land in `/etc/trust-blueprints/secrets/{ca.crt,oidc.key}`.",
        "Flow https-clients-to-mirror lets analysts in.",
        "`ssh-clients-to-gateway` opens port 2222 to the trust, `https-clients-to-gateway` on 8443.",
        "Pip talks to `mirror.<zone>:8080`.",
        "The gateway is Planned.",
        "`roles.analytics.count: is not a known setting` is what validate says.",
        "```console",
        "$ az keyvault secret set --vault-name kv --name gateway-client-secret --file f   # Azure-only",
        "$ az keyvault secret set --vault-name kv --name ca-crt --file f   # Azure-only",
        "```",
    ])
    problems = page_problems(page, facts)
    expected = [
        "line 1: `roles.gateway.kind: managed`: roles.gateway.kind allows self-hosted, bastion, not managed",
        "line 1: `roles.gateway.sku`: no stack setting roles.gateway.sku",
        "line 2: `gateway-oidc-secret`: no Key Vault secret of that name",
        "line 3: `/etc/trust-blueprints/secrets/{ca.crt,oidc.key}`: no secret file oidc.key",
        "line 4: https-clients-to-mirror: no such flow",
        "line 5: port 2222: no flow in blueprints/network_flows.py opens it",
        "line 5: ssh-clients-to-gateway, https-clients-to-gateway open 22, 443, not 2222",
        "line 5: ssh-clients-to-gateway, https-clients-to-gateway open 22, 443, not 8443",
        "line 6: mirror.<zone>:8080: no flow reaches package_mirror on 8080",
        "line 7: says 'Planned'",
        "line 8: `roles.analytics.count: is not a known setting`: roles.analytics.count is a setting",
        "line 10: `gateway-client-secret`: no Key Vault secret of that name",
        "line 11: `ca-crt`: the program creates this secret; a person sets only gateway-oidc-client-secret",
    ]
    assert len(problems) == len(expected), "\n".join(problems)
    for problem, start in zip(sorted(problems, key=_line_order), expected, strict=True):
        assert problem.startswith(start), (problem, start)


def _line_order(problem: str) -> tuple[int, str]:
    number = re.match(r"line (\d+)", problem)
    return (int(number[1]) if number else 0, problem)


def test_a_page_that_names_what_exists_passes(facts: Facts):
    page = "\n".join([
        "`roles.gateway.kind: bastion` with `roles.gateway.bastion_sku`; `network.subnets.bastion`.",
        "`admin.ssh_public_keys[0]: has a truncated key body`; `roles.analytics.*`; `backup.target`.",
        "Secrets `ca-crt`, `<machine>-tls-key`, `analytics-1-tls-crt`, `package-requests-reader.pub`,",
        "in `/etc/trust-blueprints/secrets/{ca.crt,tls.crt,tls.key}`.",
        "`ssh-clients-to-gateway` opens port 22; allow-upstream-mirror-to-internet on 80 and 443.",
        "on 443 (`https-clients-to-gateway`) and 22 (`ssh-clients-to-gateway`)",
        "apt uses `http://mirror.<zone>:3142`; an up-to-date mirror; the airlock is planned.",
        "`roles.analytics.vmsize: is not a known setting`; both stacks are planned offline.",
    ])
    assert page_problems(page, facts) == []


def test_a_role_readme_names_every_setting_with_its_default(facts: Facts):
    readme = "\n".join([
        "## Configuration", "", "| key | default | meaning |", "|---|---|---|",
        "| `kind` | (required) | which |", "| `vm_size` | `Standard_B1s` | size |",
        "| `certificate` | none | where |", "| `nonsense` | `1` | what |", "", "## Outputs",
    ])
    problems = configuration_problems(readme, "gateway", facts)
    assert "roles.gateway.vm_size: the default is Standard_B2s, not `Standard_B1s`" in problems
    assert "roles.gateway.certificate: the default is key-vault, not none" in problems
    missing = {p.split(":")[0] for p in problems if "does not name" in p}
    assert missing == {f"roles.gateway.{name}"
                       for name in ("hostname", "ssh_users", "bastion_sku", "identity", "data_disk_gb")}


def test_only_the_airlock_may_be_called_planned_while_it_does_not_exist(monkeypatch):
    assert status_problems("The airlock is planned.") == []
    monkeypatch.setitem(NOT_BUILT, "airlock", lambda: False)
    assert status_problems("The airlock is planned.") == [
        "says 'planned' of the airlock, which now exists: describe it as it is"]


def test_every_command_marker_is_explained_on_the_home_page():
    index = (REPO / "docs" / "index.md").read_text(encoding="utf-8")
    legend = re.search(r"^## What the marks on commands mean.*?(?=^## |\Z)", index, re.M | re.S)
    assert legend, "docs/index.md needs its legend of command markers"
    for marker in MARKERS:
        assert f"`# {marker}`" in legend[0], f"docs/index.md does not explain the marker # {marker}"


def test_make_test_is_described_on_one_page_and_linked_from_the_others():
    home = "docs/getting-started.md"
    anchor = "getting-started.md#the-whole-test-suite"
    described = []
    for guide in GUIDES:
        text = guide.read_text(encoding="utf-8")
        name = guide.relative_to(REPO).as_posix()
        if re.search(r"^\s*\$? ?make test\b", text, re.M):
            described.append(name)
        elif "make test" in text and name != home:
            assert anchor in text, f"{name} mentions make test without linking to {home}#the-whole-test-suite"
    assert described == [home]
    assert re.search(r"^## The whole test suite$", (REPO / home).read_text(encoding="utf-8"), re.M)


def test_a_block_blueprints_docs_writes_is_left_to_its_drift_test(facts: Facts):
    row = "| Add a data source on port 5432 | updates in place |"
    generated = "\n".join(["<!-- begin: change matrix, written by `blueprints docs` (reports/change_matrix.py) -->",
                           row, "<!-- end: change matrix -->"])
    assert page_problems(generated, facts) == []
    assert page_problems(row, facts) == ["line 1: port 5432: no flow in blueprints/network_flows.py opens it"]
