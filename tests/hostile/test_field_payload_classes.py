"""Every string field of the schema (walked, not listed) against payloads of each hostile class:
line breaks of every kind, NUL and other controls, markup, '..' paths, huge values and the
machines' own account names.

Each value is either refused by `blueprints validate` with exit code 2 and the field named, or
accepted and rendered harmlessly: every line of every file a VM is given (its cloud-config, each
file cloud-init writes, each file of its settings document) is read, and no file gains a line.
A payload carries a marker after its line break; a line that starts with the marker is a line the
stack file injected.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from blueprints.accounts import RESERVED_ACCOUNTS
from blueprints.cloud_init import RenderError, written_files
from blueprints.topology import plan_machines
from cli.main import main
from tests.hostile.stack_documents import FIELDS, Field, dump, example, get, has, put, referenced_list
from validation.deployment_checks import machine_renderers
from validation.stack_config import validate_document

MARKER = "INJECTEDLINE"
STRING_FIELDS = [field for field in FIELDS if field.type == "string"]
# Where a value is free text inside a larger value: an SSH key's comment.
KEY_FIELDS = {field.dotted for field in STRING_FIELDS if field.path[-1] == "ssh_public_key"
              or field.path[:2] == ("admin", "ssh_public_keys")}
BREAKS = ["\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
# Each class: how a payload is made from it (appended to the field's value, or replacing it).
APPENDED = {
    "line break": st.sampled_from(BREAKS).map(lambda brk: f"{brk}{MARKER} ALL=(ALL) NOPASSWD:ALL"),
    "control": st.sampled_from(["\x00", "\x07", "\x1b[2J", "\x7f", "\x9b"]).map(lambda c: f"{c}{MARKER}"),
    "markup": st.sampled_from(["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "](javascript:x)",
                               "{{ 7 * 7 }}", "{% raw %}", "&lt;b&gt;", "<!--"]),
    "huge": st.integers(300, 20_000).map(lambda size: "x" * size),
}
REPLACING = {
    "dot-dot path": st.sampled_from(["..", "../../etc", "/var/backups/../../etc", "/srv/./../etc/sudoers.d",
                                     "/var/backups/git/..", "a/../../b"]),
    "account name": st.sampled_from(sorted(RESERVED_ACCOUNTS | {"root", "www-data", "trustadmin"})),
}
CLASSES = sorted([*APPENDED, *REPLACING])
EXAMPLES = settings(max_examples=250, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _base(field: Field) -> str:
    if has(example(field.path), field.path):
        return str(get(example(field.path), field.path))
    if "default" in field.schema:
        return str(field.schema["default"])
    if "allowed" in field.schema:
        return str(field.schema["allowed"][0])
    return "xyz"


def _value(field: Field, kind: str, payload: str) -> str:
    if kind in REPLACING:
        return payload
    base = _base(field)
    return f"{base} {payload}" if field.dotted in KEY_FIELDS else base + payload


# libyaml's safe loader where built, as test_template_inputs.py does: render_user_data has already parsed
# the same text with PyYAML's own, so this parse only reads the files out, several times faster.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _files(config: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(machine, path) -> text of everything each VM is given; the raw documents are files too."""
    files: dict[tuple[str, str], str] = {}
    for machine in plan_machines(config):
        for render in machine_renderers():
            data = render(config, machine).decode("utf-8")
            files[(machine.name, f"<{render.__name__}>")] = data
            if data.startswith("#cloud-config"):
                contents = written_files(yaml.load(data, Loader=LOADER))  # noqa: S506 (a safe loader)
            else:
                contents = {entry["path"]: entry["content"] for entry in json.loads(data)["files"]}
            files.update({(machine.name, path): text for path, text in contents.items()})
    return files


@cache
def _baseline_lines(path: tuple) -> dict[tuple[str, str], int]:
    field = next(f for f in STRING_FIELDS if f.path == path)
    document = example(field.path)
    if not has(document, field.path):
        put(document, field.path, _base(field))
    config, problems = validate_document(document)
    assert not problems, problems
    return {key: len(text.splitlines()) for key, text in _files(config).items()}


def _names(err: str, field: Field) -> bool:
    listed = referenced_list(field.dotted)
    return f" {field.dotted}: " in err or (listed is not None and f" in {listed} (got" in err)


def _cli_refuses(tmp_path: Path, document: dict[str, Any]) -> tuple[int, str]:
    path = tmp_path / "stack.yaml"
    path.write_text(dump(document), encoding="utf-8")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["validate", "--no-plan", str(path)])
    return code, err.getvalue()


def check(tmp_path: Path, field: Field, kind: str, payload: str) -> str:
    """'refused' (exit 2, the field named) or 'accepted' (no file gains a line); fails otherwise."""
    value = _value(field, kind, payload)
    document = example(field.path)
    put(document, field.path, value)
    config, problems = validate_document(copy.deepcopy(document))
    files: dict[tuple[str, str], str] = {}
    if not problems:
        try:
            files = _files(config)
        except RenderError:
            problems = ["rendering"]  # too large for a VM: validate must refuse it
    if problems:
        code, err = _cli_refuses(tmp_path, document)
        assert code == 2 and "Traceback" not in err, err
        assert _names(err, field) or (problems == ["rendering"] and ": roles." in err), (field.dotted, err)
        return "refused"
    assert kind not in ("line break", "control"), f"{field.dotted} accepted {value!r}"
    baseline = _baseline_lines(field.path)
    for key, text in files.items():
        lines = text.splitlines()
        assert not any(line.lstrip().startswith(MARKER) for line in lines), f"{field.dotted} injected a line: {key}"
        if key in baseline:
            assert len(lines) == baseline[key], f"{field.dotted}={value[:40]!r} changed the lines of {key}"
    return "accepted"


@EXAMPLES
@given(data=st.data())
def test_every_string_field_refuses_or_renders_each_hostile_class_harmlessly(tmp_path, data):
    field = data.draw(st.sampled_from(STRING_FIELDS), label="field")
    kind = data.draw(st.sampled_from(CLASSES), label="class")
    payload = data.draw((APPENDED | REPLACING)[kind], label="payload")
    event(f"{check(tmp_path, field, kind, payload)}: {kind}")


@pytest.mark.parametrize("field", [f for f in STRING_FIELDS if f.dotted in KEY_FIELDS], ids=lambda f: f.dotted)
@pytest.mark.parametrize("payload", ["<script>alert(1)</script>", "{{ 7 * 7 }}", "$(reboot) `id`", "x" * 12_000])
def test_free_text_in_a_key_comment_is_written_on_its_own_line(tmp_path, field, payload):
    assert check(tmp_path, field, "markup", payload) == "accepted"


@pytest.mark.parametrize("field", [f for f in STRING_FIELDS if f.dotted in KEY_FIELDS], ids=lambda f: f.dotted)
@pytest.mark.parametrize("brk", BREAKS, ids=[f"U+{ord(b[-1]):04X}" for b in BREAKS])
def test_no_line_break_reaches_a_key_file(tmp_path, field, brk):
    document = example(field.path)
    put(document, field.path, _value(field, "line break", f"{brk}{MARKER} x"))
    code, err = _cli_refuses(tmp_path, document)
    assert code == 2 and _names(err, field), err


def test_the_reserved_accounts_are_refused_in_every_account_field(tmp_path):
    accounts = [f for f in STRING_FIELDS if f.dotted in ("admin.username", "roles.gateway.ssh_users[0].name",
                                                         "roles.analytics.admin_users[0]")]
    assert len(accounts) == 3
    for field in accounts:
        for name in ("root", "www-data", "git", "devpi", "syslog", "systemd-network"):
            document = example(field.path)
            put(document, field.path, name)
            code, err = _cli_refuses(tmp_path, document)
            assert code == 2 and _names(err, field), (field.dotted, name, err)
