"""One bad stack file per class of mistake, each checked through `blueprints validate` as a user
runs it: exit code 2, no traceback, and a message that names the field (its YAML path), shows
the bad value where there is one, and says what is allowed.

Most files are the example with one edit, so everything else in them stays valid; the ones a
text edit cannot make live in tests/schema/bad/.
"""

from __future__ import annotations

import base64
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.main import main
from tests.conftest import EXAMPLE, REPO
from validation.yaml_source import MAX_FILE_BYTES

BAD = Path(__file__).parent / "bad"
EXAMPLE_TEXT = EXAMPLE.read_text()


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _rsa_public_key(bits: int) -> str:
    """A well-formed ssh-rsa public key line with a modulus of ``bits`` bits."""
    modulus = (1 << (bits - 1)) | 1
    blob = (_ssh_string(b"ssh-rsa") + _ssh_string((65537).to_bytes(3, "big"))
            + _ssh_string(b"\x00" + modulus.to_bytes(bits // 8, "big")))
    return f"ssh-rsa {base64.b64encode(blob).decode()} old-key@example.nhs.uk"


@dataclass(frozen=True)
class Case:
    name: str
    field: str  # the YAML path the message must name ("(file)" for the whole file)
    allowed: str  # words that say what is allowed
    shown: str | None = None  # how the bad value must appear, where there is one
    edits: tuple[tuple[str, str], ...] = ()  # (old, new) text edits to the example
    fixture: str | None = None  # or a file of tests/schema/bad/

    def write(self, directory: Path) -> Path:
        if self.fixture:
            return BAD / self.fixture
        text = EXAMPLE_TEXT
        for old, new in self.edits:
            assert old in text, f"{self.name}: the example no longer contains {old!r}"
            text = text.replace(old, new, 1)
        path = directory / f"{self.name}.yaml"
        path.write_text(text)
        return path


def _block(first: str, next_: str) -> str:
    """The example's text from ``first`` up to (not including) ``next_``."""
    start = EXAMPLE_TEXT.index(first)
    return EXAMPLE_TEXT[start:EXAMPLE_TEXT.index(next_, start)]


SHORT_RSA = _rsa_public_key(2048)
PRIVATE_RANGES = "    - 198.51.100.16/28\n"

CASES = [
    # Types, keys and enums: the schema.
    Case("wrong-type", "roles.analytics.count", "must be a whole number", "(got 'two')",
         (("count: 2", "count: two"),)),
    Case("wrong-type-boolean", "network.allow_clients_from_anywhere", "must be true or false", "(got 'yes')",
         ((PRIVATE_RANGES, PRIVATE_RANGES + '  allow_clients_from_anywhere: "yes"\n'),)),
    Case("unknown-key", "trust.colour", "is not a known setting", "(got 'blue')",
         (("  ods_code: RX1", "  ods_code: RX1\n  colour: blue"),)),
    Case("misspelt-key", "roles.analytics.auto_shutdwon", "did you mean auto_shutdown?", "(got {'time'",
         (("    auto_shutdown:", "    auto_shutdwon:"),)),
    Case("missing-required-key", "environment", "is required: one of dev, test, prod", None,
         (("environment: dev               # dev | test | prod\n", ""),)),
    Case("missing-required-mapping", "tags.owner", "is required: an email address", None,
         (("  owner: analytics-platform@example.nhs.uk\n", ""),)),
    Case("bad-enum", "location", "must be one of uksouth, ukwest", "(got 'westeurope')",
         (("location: uksouth", "location: westeurope"),)),
    Case("out-of-range-int", "roles.analytics.count", "must be between 1 and 20", "(got 50)",
         (("count: 2", "count: 50"),)),
    Case("disk-too-small", "roles.git_server.data_disk_gb", "must be between 32 and 4095", "(got 8)",
         (("data_disk_gb: 64", "data_disk_gb: 8"),)),
    Case("too-many-entries", "admin.ssh_public_keys", "at most 20 entries", "(got a list of 21)",
         (("    - ssh-ed25519", "\n".join(["    - ssh-ed25519 AAAA x"] * 20) + "\n    - ssh-ed25519"),)),
    Case("text-too-long", "roles.package_mirror.allowlists.pypi[0]", "at most 214 characters",
         "(got 'aaaaaaaa", (("pypi: [numpy,", f"pypi: [{'a' * 300}, numpy,"),)),
    Case("empty-value", "trust.name", "must not be empty", None,
         (("  name: Example NHS Foundation Trust", "  name:"),)),
    Case("bad-vm-size", "roles.analytics.vm_size", "an Azure size name such as Standard_B2s", "(got 'D4s_v5')",
         (("vm_size: Standard_D4s_v5", "vm_size: D4s_v5"),)),
    Case("bad-time", "roles.analytics.auto_shutdown.time", "HH:MM", "(got '25:00')",
         (('time: "19:00"', 'time: "25:00"'),)),
    Case("bad-short-name", "trust.short_name", "2-8 lowercase letters or digits", "(got 'Example-Trust')",
         (("short_name: exnhs", "short_name: Example-Trust"),)),
    Case("bad-email", "tags.owner", "an email address", "(got 'analytics platform team')",
         (("owner: analytics-platform@example.nhs.uk", "owner: analytics platform team"),)),
    Case("bad-guid", "roles.gateway.identity.tenant_id", "a GUID", "(got 'contoso.onmicrosoft.com')",
         (("tenant_id: 00000000-0000-4000-8000-000000000001", "tenant_id: contoso.onmicrosoft.com"),)),
    Case("bad-hostname", "roles.gateway.hostname", "a lowercase DNS name", "(got 'Analytics_Example')",
         (("hostname: analytics.example.nhs.uk", "hostname: Analytics_Example"),)),
    Case("bad-package-name", "roles.package_mirror.allowlists.npm[0]", "an npm package name", "(got 'Left Pad')",
         (("npm: [left-pad,", "npm: ['Left Pad',"),)),
    # Addresses: the checks a schema cannot express.
    Case("not-a-cidr", "network.subnets.gateway", "an IPv4 range such as 10.40.1.0/24", "(got 'ten.forty.one')",
         (("gateway: 10.40.1.0/24", "gateway: ten.forty.one"),)),
    Case("bad-cidr", "network.address_space", "is not a valid IPv4 range", "(got '10.40.0.0/33')",
         (("address_space: 10.40.0.0/16", "address_space: 10.40.0.0/33"),)),
    Case("host-bits-set", "network.subnets.services", "did you mean 10.40.2.0/24", "(got '10.40.2.1/24')",
         (("services: 10.40.2.0/24", "services: 10.40.2.1/24"),)),
    Case("public-address-space", "network.address_space", "must be a private range", "(got '8.8.0.0/16')",
         (("address_space: 10.40.0.0/16", "address_space: 8.8.0.0/16"),)),
    Case("subnet-outside-space", "network.subnets.workloads", "must lie inside the address space 10.40.0.0/16",
         "(got '10.50.3.0/24')", (("workloads: 10.40.3.0/24", "workloads: 10.50.3.0/24"),)),
    Case("overlapping-subnets", "network.subnets.workloads", "overlaps subnet services (10.40.2.0/24)",
         "(got '10.40.2.128/25')", (("workloads: 10.40.3.0/24", "workloads: 10.40.2.128/25"),)),
    Case("bastion-subnet-too-small", "network.subnets.bastion", "must be /26 or larger", "(got '10.40.4.0/27')",
         (("    workloads: 10.40.3.0/24", "    workloads: 10.40.3.0/24\n    bastion: 10.40.4.0/27"),)),
    Case("whole-internet-clients", "network.allowed_client_ranges[0]",
         "set network.allow_clients_from_anywhere: true", "(got '0.0.0.0/0')",
         (("    - 203.0.113.0/24", "    - 0.0.0.0/0"),)),
    Case("clients-inside-own-network", "network.allowed_client_ranges[1]",
         "overlaps the environment's own address space", "(got '10.40.9.0/24')",
         (("    - 198.51.100.16/28", "    - 10.40.9.0/24"),)),
    Case("public-private-client-range", "network.private_client_ranges[0]", "must be a private range",
         "(got '203.0.113.64/26')",
         (("    - 10.20.16.0/22\n", "    - 203.0.113.64/26\n"),)),
    Case("gateway-without-client-ranges", "network.allowed_client_ranges",
         "needs at least one range when roles.gateway is set", "(got [])",
         (("  allowed_client_ranges:\n    - 203.0.113.0/24\n    - 198.51.100.16/28\n", ""),)),
    # Data sources on the trust's network (roles.analytics.data_sources).
    Case("data-source-outside-trust-ranges", "roles.analytics.data_sources[0].range",
         "must lie inside a range of the trust's network", "(got '10.30.1.10/32')",
         (("range: 10.20.1.10/32", "range: 10.30.1.10/32"),)),
    Case("data-source-unknown-kind", "roles.analytics.data_sources[0].kind", "postgres", "(got 'oracle')",
         (("kind: sqlserver ", "kind: oracle "),)),
    Case("data-source-port-out-of-range", "roles.analytics.data_sources[0].port", "between 1 and 65535",
         "(got 0)", (("port: 1433", "port: 0"),)),
    # Keys and accounts.
    Case("bad-ssh-key", "admin.ssh_public_keys[0]", "not valid base64", "(got 'ssh-ed25519 not*base64",
         (("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPaQRANNGS3AJl+hVDSGny6TDyecqFzA6RndNnIHTNZY",
           "ssh-ed25519 not*base64"),)),
    Case("unsupported-ssh-key-type", "admin.ssh_public_keys[0]", "allowed: ecdsa-sha2-nistp256", "(got 'ssh-dss ",
         (("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPaQRANNGS3AJl+hVDSGny6TDyecqFzA6RndNnIHTNZY",
           "ssh-dss AAAAB3NzaC1kc3M="),)),
    Case("short-rsa-key", "admin.ssh_public_keys[0]", "at least 3072 are required", "(got 'ssh-rsa AAAA",
         (("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPaQRANNGS3AJl+hVDSGny6TDyecqFzA6RndNnIHTNZY "
           "platform-team@example.nhs.uk", SHORT_RSA),)),
    Case("reserved-admin-name", "admin.username", "is a name Azure reserves", "(got 'admin')",
         (("username: trustadmin", "username: admin"),)),
    # Roles and what they need.
    Case("role-without-its-subnet", "network.subnets.workloads", "is required by roles.analytics", None,
         (("    workloads: 10.40.3.0/24\n", ""),)),
    Case("analytics-without-mirror", "roles.package_mirror", "is required by roles.analytics", None,
         ((_block("  package_mirror:\n", "  git_server:\n"), ""),)),
    Case("self-hosted-gateway-without-identity", "roles.gateway.identity", "is required for a self-hosted gateway",
         None, ((_block("    identity:\n", "\n  package_mirror:"), ""),)),
    Case("allowlists-in-open-mode", "roles.package_mirror.allowlists", "has no effect in open mode", None,
         (("mode: curated ", "mode: open    "),)),
    # The file itself.
    Case("not-a-mapping", "(file)", "must be a YAML mapping at the top level", "(got 'list')",
         fixture="not-a-mapping.yaml"),
    Case("invalid-yaml", "(file)", "is not valid YAML", None, fixture="invalid-yaml.yaml"),
    Case("duplicate-key", "environment", "appears twice (first on line 5)", None, fixture="duplicate-key.yaml"),
    # Each aliased node is walked once and values are shown bounded, so the bomb is just unknown keys.
    Case("alias-bomb", "a", "is not a known setting", "(got ['lol', 'lol', 'lol', 'lol', ...])",
         fixture="alias-bomb.yaml"),
    Case("too-many-aliases", "(file)", "more than 100 YAML aliases", None, fixture="too-many-aliases.yaml"),
    Case("not-utf8", "(file)", "is not UTF-8 text", None, fixture="not-utf8.yaml"),
    Case("empty-file", "(file)", "is empty; a stack file is a YAML mapping", None, fixture="empty.yaml"),
    Case("file-too-big", "(file)", f"the limit is {MAX_FILE_BYTES}", None,
         (("environment: dev", "# " + "x" * MAX_FILE_BYTES + "\nenvironment: dev"),)),
]


def _problems_naming(field: str, report: str) -> list[str]:
    """Each problem about ``field``: its line of the report joined to its hint, if it has one."""
    lines = report.splitlines()
    found = []
    for index, line in enumerate(lines):
        if f": {field}: " in line:
            hint = lines[index + 1] if index + 1 < len(lines) and lines[index + 1].startswith("    hint:") else ""
            found.append(f"{line}\n{hint}")
    return found


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    """`blueprints validate` in a process of its own, exactly as a user runs it."""
    return subprocess.run([sys.executable, "-m", "cli", "validate", str(path)], cwd=REPO,
                          capture_output=True, text=True, check=False, timeout=60)


def _validate_here(path: Path, capsys: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess[str]:
    """The same command in this process (the console script calls this same main): a
    traceback would escape main and fail the test, and there are no 50 interpreter starts."""
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["blueprints", "validate", str(path)], code, out, err)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_bad_stack_file_is_refused_with_a_message_a_person_can_act_on(case, tmp_path, capsys):
    path = case.write(tmp_path)
    result = _validate_here(path, capsys)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = _problems_naming(case.field, result.stderr)
    assert lines, f"no problem names {case.field}:\n{result.stderr}"
    assert any(case.allowed in line for line in lines), result.stderr
    if case.shown is not None:
        assert any(case.shown in line for line in lines), result.stderr


def test_the_cases_are_distinct_mistakes():
    assert len({case.name for case in CASES}) == len(CASES) >= 15
    assert len({(case.field, case.allowed) for case in CASES}) == len(CASES)


def test_every_problem_is_reported_at_once(tmp_path):
    path = Case("several", "", "", edits=(("location: uksouth", "location: westeurope"),
                                          ("count: 2", "count: 50"),
                                          ("hostname: analytics.example.nhs.uk", "hostname: Bad_Name"))
                ).write(tmp_path)
    result = _validate(path)
    assert result.returncode == 2
    assert "3 problems found" in result.stderr.splitlines()[0]
    for field in ("location", "roles.analytics.count", "roles.gateway.hostname"):
        assert f": {field}: " in result.stderr


def test_each_problem_points_at_its_line(tmp_path):
    path = Case("line", "", "", edits=(("count: 2", "count: 50"),)).write(tmp_path)
    line = EXAMPLE_TEXT.splitlines().index("    count: 2") + 1
    assert f"{path}:{line}: roles.analytics.count:" in _validate(path).stderr


def test_the_whole_internet_is_allowed_to_a_bastion_when_asked_for_by_name(tmp_path, capsys):
    path = Case("anywhere", "", "", edits=(("    - 203.0.113.0/24", "    - 0.0.0.0/0"),
                                           (PRIVATE_RANGES, PRIVATE_RANGES + "  allow_clients_from_anywhere: true\n"),
                                           ("    workloads: 10.40.3.0/24", "    workloads: 10.40.3.0/24\n"
                                                                          "    bastion: 10.40.4.0/26"),
                                           ("kind: self-hosted", "kind: bastion"))
                ).write(tmp_path)
    result = _validate_here(path, capsys)  # the plan's policies included: Azure Bastion takes HTTPS only
    assert result.returncode == 0, result.stderr


def test_the_whole_internet_is_never_let_in_to_the_ssh_jump_host(tmp_path):
    # Mandatory policy TB-NET-001 refuses SSH from the Internet in the plan; validate says so first.
    path = Case("anywhere", "", "", edits=(("    - 203.0.113.0/24", "    - 0.0.0.0/0"),
                                           (PRIVATE_RANGES, PRIVATE_RANGES + "  allow_clients_from_anywhere: true\n"))
                ).write(tmp_path)
    result = _validate(path)
    assert result.returncode == 2, result.stderr
    assert "network.allowed_client_ranges[0]: " in result.stderr and "TB-NET-001" in result.stderr


def test_the_file_level_mistakes_are_refused_the_same_way_in_a_process_of_their_own():
    for case in CASES:
        if case.fixture:
            result = _validate(BAD / case.fixture)
            assert result.returncode == 2, case.name
            assert "Traceback" not in result.stderr
            assert _problems_naming(case.field, result.stderr), case.name
