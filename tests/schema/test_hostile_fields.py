"""Hostile values in single fields (issue 22), one test per class, each through `blueprints validate`:
exit code 2 and a message naming the field.

1. line breaks Unicode knows (U+0085, U+2028, U+2029, every str.splitlines() break) and C1 controls
   in every single-line free-text field;
2. SSH public keys that are not one loadable "type base64 [comment]" line;
3. account names that are the VMs' own accounts, or the administrator's;
4. a Git backup directory outside its allowed roots, or climbing out with '..';
5. allowlist entries repeated (PyPI under PEP 503 normalisation) and specifiers pip refuses.

Each case is the example stack with one edit, so everything else in it stays valid.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from cli.main import main
from tests.conftest import EXAMPLE, STACK_FILES
from validation.stack_config import load_stack

EXAMPLE_TEXT = EXAMPLE.read_text()
ADMIN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPaQRANNGS3AJl+hVDSGny6TDyecqFzA6RndNnIHTNZY"
ADMIN_LINE = ADMIN_KEY + " platform-team@example.nhs.uk"
GIT_LINE = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILjONV4zD7ltOVOXqqugk4Obc41KkgphNV3YLv0N9tr+ "
            "priya.shah@example.nhs.uk")
IDENTITY_END = "      allowed_group: 00000000-0000-4000-8000-000000000003\n"
JUMP_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGUNaz6oHgqPAU+1h7iixJtfp/6KZ2hAISj4RQg/hioo "
            "jbloggs@example.nhs.uk")


def _quoted(value: str) -> str:
    """``value`` as a YAML double-quoted scalar (JSON's escapes are YAML's)."""
    return json.dumps(value)


def _with_jump_user(name: str = "jbloggs", key: str = JUMP_KEY) -> str:
    return IDENTITY_END + f"    ssh_users:\n      - name: {name}\n        ssh_public_key: {_quoted(key)}\n"


def _write(tmp_path: Path, edits: list[tuple[str, str]]) -> Path:
    text = EXAMPLE_TEXT
    for old, new in edits:
        assert old in text, f"the example no longer contains {old!r}"
        text = text.replace(old, new, 1)
    path = tmp_path / "stack.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], edits: list[tuple[str, str]],
             field: str, words: str = "") -> str:
    path = _write(tmp_path, edits)
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if field in line]
    assert lines, f"no problem names {field}:\n{err}"
    if words:
        assert any(words in line for line in lines), err
    return err


# ---------------------------------------------------------------------------------------------
# 1. One line, as Unicode counts lines

BREAKS = ["\x85", "\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r", "\x80", "\x9b", "\x9f"]
assert {char for char in map(chr, range(0x110000)) if len(f"a{char}b".splitlines()) > 1} - {"\n"} <= set(BREAKS)
SINGLE_LINE_FIELDS = {
    # field: (the text it holds in the example, where a hostile character goes, the field's YAML path)
    "admin-key": (ADMIN_LINE, "platform-team", "admin.ssh_public_keys[0]"),
    "git-key": (GIT_LINE, "priya.shah@", "roles.git_server.users[0].ssh_public_key"),
    "owner": ("analytics-platform@example.nhs.uk", "analytics-platform", "tags.owner"),
    "trust-name": ("Example NHS Foundation Trust", "Example NHS", "trust.name"),
    "team-description": ("Platform team, reviews tool requests", "Platform team",
                         "roles.git_server.teams[0].description"),
    "repository-description": ("Referral-to-treatment waiting times dashboard", "Referral",
                               "roles.git_server.repositories[1].description"),
}


@pytest.mark.parametrize("char", BREAKS, ids=lambda char: f"U+{ord(char):04X}")
@pytest.mark.parametrize("field", [*SINGLE_LINE_FIELDS, "jump-key"])
def test_no_single_line_field_takes_a_line_break_or_a_c1_control(field, char, tmp_path, capsys):
    if field == "jump-key":
        key = JUMP_KEY.replace("jbloggs@", f"jbloggs{char}@")
        edits = [(IDENTITY_END, _with_jump_user(key=key))]
        path = "roles.gateway.ssh_users[0].ssh_public_key"
    else:
        text, where, path = SINGLE_LINE_FIELDS[field]
        edits = [(text, _quoted(text.replace(where, where + char, 1)))]
    err = _refused(tmp_path, capsys, edits, path)
    assert "must be" in err


def test_the_single_line_pattern_refuses_every_break_and_c1_control_and_keeps_other_text():
    import re

    from blueprints.settings_fields import SINGLE_LINE_PATTERN
    for code in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]:
        assert re.fullmatch(SINGLE_LINE_PATTERN, f"a{chr(code)}b") is None, hex(code)
    assert re.fullmatch(SINGLE_LINE_PATTERN, "ssh-ed25519 AAAA Zoë Ó Briain (ward 7)")


# ---------------------------------------------------------------------------------------------
# 2. SSH public keys: one line "type base64 [comment]" that cryptography loads as a key

def _line(public_key: object) -> str:
    return public_key.public_bytes(serialization.Encoding.OpenSSH,  # type: ignore[attr-defined]
                                   serialization.PublicFormat.OpenSSH).decode()


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _off_curve_ecdsa() -> str:
    """A nistp256 key whose point (x, y+1) is not on the curve."""
    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    point = b"\x04" + numbers.x.to_bytes(32, "big") + ((numbers.y + 1) % (2**256)).to_bytes(32, "big")
    blob = _ssh_string(b"ecdsa-sha2-nistp256") + _ssh_string(b"nistp256") + _ssh_string(point)
    return f"ecdsa-sha2-nistp256 {base64.b64encode(blob).decode()} off-curve@example.nhs.uk"


def _hostile_keys() -> dict[str, tuple[str, str]]:
    ed = _line(ed25519.Ed25519PrivateKey.generate().public_key())
    ed_kind, ed_blob = ed.split()
    ed_raw = base64.b64decode(ed_blob)
    trailing = base64.b64encode(ed_raw + bytes(4)).decode()
    truncated = base64.b64encode(ed_raw[:-8]).decode()
    return {
        # name: (key line, words the message must contain)
        "options-prefix": (f'command="/bin/sh" {ed} x@example.nhs.uk', "has key type"),
        "from-prefix": (f'from="*" {ed}', "has key type"),
        "second-line": (f"{ed} a@example.nhs.uk\n{ed} b@example.nhs.uk", ""),
        "ecdsa-off-curve": (_off_curve_ecdsa(), "is not a valid ecdsa-sha2-nistp256 public key"),
        "trailing-bytes": (f"{ed_kind} {trailing}", "is not a valid"),
        "truncated": (f"{ed_kind} {truncated}", "has a truncated key body"),
        "type-mismatch": (f"ssh-rsa {ed_blob} x@example.nhs.uk", "different key type"),
        "rsa-2048": (_line(rsa.generate_private_key(65537, 2048).public_key()), "at least 3072"),
        "dsa": ("ssh-dss AAAAB3NzaC1kc3M= x", "has key type"),
        "type-only": ("ssh-ed25519", "is not an OpenSSH public key line"),
        "not-base64": ("ssh-ed25519 not*base64 x", "not valid base64"),
    }


HOSTILE_KEYS = _hostile_keys()


@pytest.mark.parametrize("payload", sorted(HOSTILE_KEYS))
@pytest.mark.parametrize("field", ["admin", "gateway", "git"])
def test_every_key_field_takes_only_one_loadable_key_line(field, payload, tmp_path, capsys):
    key, words = HOSTILE_KEYS[payload]
    if field == "admin":
        edits, path = [(ADMIN_LINE, _quoted(key))], "admin.ssh_public_keys[0]"
    elif field == "git":
        edits, path = [(GIT_LINE, _quoted(key))], "roles.git_server.users[0].ssh_public_key"
    else:
        edits, path = [(IDENTITY_END, _with_jump_user(key=key))], "roles.gateway.ssh_users[0].ssh_public_key"
    _refused(tmp_path, capsys, edits, path, words)


@pytest.mark.parametrize("make", [
    lambda: _line(ec.generate_private_key(ec.SECP384R1()).public_key()) + " good@example.nhs.uk",
    lambda: _line(rsa.generate_private_key(65537, 3072).public_key()),
    lambda: _line(ed25519.Ed25519PrivateKey.generate().public_key()) + " Zoë Ó Briain",
], ids=["ecdsa-384", "rsa-3072", "ed25519-unicode-comment"])
def test_sound_keys_of_each_allowed_kind_are_accepted(make, tmp_path):
    path = _write(tmp_path, [(ADMIN_LINE, _quoted(make()))])
    assert load_stack(path)["admin"]["ssh_public_keys"][0]


# ---------------------------------------------------------------------------------------------
# 3. Account names: not the VMs' own accounts, not the administrator's

ACCOUNT_CASES = [
    # (name, edits, field the message names)
    *[(f"admin-{name}", [("username: trustadmin", f"username: {name}")], "admin.username")
      for name in ("_apt", "sshd", "messagebus", "systemd-network", "git", "gitolite3", "devpi",
                   "verdaccio", "apt-cacher-ng", "www-data", "nobody", "daemon")],
    *[(f"jump-{name}", [(IDENTITY_END, _with_jump_user(name=name))], "roles.gateway.ssh_users[0].name")
      for name in ("root", "nobody", "gitolite3", "verdaccio", "systemd-timesync", "trustadmin", "irc")],
    *[(f"hub-admin-{name}", [("admin_users: [jbloggs]", f"admin_users: [{name}]")],
       "roles.analytics.admin_users[0]")
      for name in ("messagebus", "jupyterhub", "trustadmin", "systemd-resolve", "lp", "git")],
    ("hub-admin-twice", [("admin_users: [jbloggs]", "admin_users: [jbloggs, jbloggs]")],
     "roles.analytics.admin_users[1]"),
]


@pytest.mark.parametrize(("name", "edits", "field"), ACCOUNT_CASES, ids=[case[0] for case in ACCOUNT_CASES])
def test_no_person_gets_a_system_service_or_administrator_account(name, edits, field, tmp_path, capsys):
    _refused(tmp_path, capsys, edits, field)


def test_the_reserved_accounts_include_every_account_a_role_template_creates():
    import re

    from blueprints.accounts import RESERVED_ACCOUNTS, reserved_account
    templates = "\n".join(path.read_text() for path in (EXAMPLE.parent.parent / "blueprints").glob("*/*.j2"))
    created = set(re.findall(r"useradd --system[^\n]* ([a-z][a-z0-9_-]*)\s*$", templates, re.MULTILINE))
    assert created and created <= RESERVED_ACCOUNTS
    assert reserved_account("systemd-coredump") and not reserved_account("jbloggs")


# ---------------------------------------------------------------------------------------------
# 4. The Git server's backup directory

BACKUP = "directory: /var/backups/git-server"


@pytest.mark.parametrize("directory", [
    "/var/backups/../../etc/cron.d", "/srv/../etc", "/var/backups/git/../../../root/.ssh", "/etc/git-backups",
    "/var/backups", "/srv", "/srv/git/backups", "/var/backupsx/git", "/home/trustadmin/backups", "/tmp/x",
])
def test_the_backup_directory_stays_below_its_allowed_roots(directory, tmp_path, capsys):
    err = _refused(tmp_path, capsys, [(BACKUP, f"directory: {directory}")], "roles.git_server.backup.directory")
    assert directory in err
    if "'..'" not in err and "/srv/git" not in err:
        assert "/var/backups" in err and "/srv" in err


def test_the_backup_directory_is_normalised(tmp_path):
    path = _write(tmp_path, [(BACKUP, "directory: /var/backups/./git-server/.")])
    assert load_stack(path)["roles"]["git_server"]["backup"]["directory"] == "/var/backups/git-server"


# ---------------------------------------------------------------------------------------------
# 5. Allowlists: each package once, specifiers pip reads

PYPI = "pypi: [numpy, pandas,"
ALLOWLIST_CASES = [
    ("pypi-case", [(PYPI, "pypi: [numpy, pandas, Pandas,")], "allowlists.pypi[2]", "same project"),
    ("pypi-separators", [(PYPI, "pypi: [numpy, pandas, scikit_learn,")], "allowlists.pypi[", "PEP 503"),
    ("pypi-dots", [(PYPI, "pypi: [numpy, pandas, Python.DateUtil,")], "allowlists.pypi[", "PEP 503"),
    ("pypi-specifier-twice", [(PYPI, "pypi: [numpy, pandas, 'NumPy>=1.26',")], "allowlists.pypi[2]", "repeats"),
    ("pypi-exact-twice", [(PYPI, "pypi: [numpy, numpy, pandas,")], "allowlists.pypi[1]", "repeats"),
    ("specifier-garbage", [(PYPI, "pypi: [numpy, 'pandas>=1.0.0.0.0.x',")], "allowlists.pypi[1]",
     "specifier pip refuses"),
    ("specifier-compatible-one-part", [(PYPI, "pypi: [numpy, 'pandas~=1',")], "allowlists.pypi[1]",
     "specifier pip refuses"),
    ("specifier-inner-star", [(PYPI, "pypi: [numpy, 'pandas==1.*.2',")], "allowlists.pypi[1]",
     "specifier pip refuses"),
    ("npm-twice", [("npm: [left-pad, typescript]", "npm: [left-pad, typescript, left-pad]")],
     "allowlists.npm[2]", "repeats"),
    ("cran-twice", [("cran: [dplyr,", "cran: [dplyr, dplyr,")], "allowlists.cran[1]", "repeats"),
]


@pytest.mark.parametrize(("name", "edits", "field", "words"), ALLOWLIST_CASES,
                         ids=[case[0] for case in ALLOWLIST_CASES])
def test_allowlist_entries_are_unique_and_their_specifiers_parse(name, edits, field, words, tmp_path, capsys):
    _refused(tmp_path, capsys, edits, "roles.package_mirror." + field, words)


def test_the_allowlists_file_is_held_to_the_same_rules(tmp_path, capsys):
    (tmp_path / "more.yaml").write_text("pypi: [NumPy, 'polars>=1.0.0.0.0.x']\n")
    _refused(tmp_path, capsys, [("    allowlists:", "    allowlists_file: more.yaml\n    allowlists:")],
             "roles.package_mirror.allowlists_file", "PEP 503")


# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACK_FILES, ids=lambda path: path.name)
def test_every_shipped_stack_still_validates(stack, capsys, plan_cache):
    assert main(["validate", str(stack)]) == 0, capsys.readouterr().err
