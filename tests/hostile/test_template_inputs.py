"""Values that could break out of YAML or a shell line in cloud-init are refused by validation
or escaped by rendering, for every string field of the schema (walked, so new fields are covered).

For each field the example stack is given the field's usual value with a hostile payload added.
Either validation refuses it, naming the field, or every machine's cloud-config still renders,
parses to the same structure as before, carries the value verbatim, and keeps every shell
command line the same number of words.
"""

from __future__ import annotations

import copy
import json
import shlex
from functools import cache
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import example as also_run
from hypothesis import strategies as st

from blueprints.cloud_init import render_user_data
from blueprints.topology import plan_machines
from tests.hostile.stack_documents import FIELDS, Field, example, get, has, put, referenced_list
from validation.stack_config import validate_document

PAYLOADS = (
    '"', "'", "\n", "\r\n", "\x00", "\u2028", "\\", "#", ": x", "\nruncmd: [reboot]", "$(reboot)", "`reboot`",
    "${HOME}", "'; reboot; echo '", "{{ 7 * 7 }}", "{% if true %}", "*alias", "!!python/object/apply:os.system [x]",
)
DANGEROUS = "\"'\\\n\r\t$`(){}[]#:;&|*!%@<>- "
STRING_FIELDS = [f for f in FIELDS if f.type == "string"]
SHELL_KEYS = ("runcmd", "bootcmd")


def _base(field: Field) -> str:
    if has(example(field.path), field.path):
        return str(get(example(field.path), field.path))
    if "default" in field.schema:
        return str(field.schema["default"])
    if "allowed" in field.schema:
        return str(field.schema["allowed"][0])
    return _valid_filler(field.path)


@cache
def _valid_filler(path: tuple) -> str:
    """A short value the field accepts (a description needs 3 characters, say), so a payload that
    happens to be valid is compared with a valid baseline."""
    field = next(f for f in STRING_FIELDS if f.path == path)
    return next((text for text in ("x", "xyz") if not _config_with(field, text)[1]), "x")


def _with_payload(field: Field, payload: str) -> str:
    base = _base(field)
    # An SSH key's comment is free text: the payload goes there, the key itself stays valid.
    return f"{base} {payload}" if field.path[:2] == ("admin", "ssh_public_keys") else base + payload


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def _embedded_json(text: str) -> Any:
    """A JSON document carried as a file's content (leading comment lines allowed), or None."""
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#")).strip()
    if not body.startswith(("{", "[")):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _strings(value: Any) -> list[str]:
    """Every string of a document, including those of JSON documents written as file contents:
    a value escaped by JSON inside a YAML string still arrives whole once the file is read."""
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    if not isinstance(value, str):
        return []
    embedded = _embedded_json(value)
    return [value] + (_strings(embedded) if embedded is not None else [])


def _shell_words(document: dict[str, Any]) -> list[int]:
    return [len(shlex.split(line)) for key in SHELL_KEYS for line in document.get(key) or [] if isinstance(line, str)]


LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _rendered(config: dict[str, Any]) -> dict[str, tuple[bytes, dict[str, Any]]]:
    return {machine.name: (data, yaml.load(data, Loader=LOADER))  # noqa: S506 (a safe loader)
            for machine in plan_machines(config) for data in [render_user_data(config, machine)]}


@cache
def _baseline(path: tuple) -> dict[str, tuple[bytes, dict[str, Any]]]:
    field = next(f for f in STRING_FIELDS if f.path == path)
    config, problems = _config_with(field, _base(field))
    assert not problems, problems
    return _rendered(config)


def _config_with(field: Field, value: str) -> tuple[dict[str, Any] | None, list]:
    document = example(field.path)
    put(document, field.path, value)
    config, problems = validate_document(copy.deepcopy(document))
    return (None if problems else config), problems


def check_field(field: Field, payload: str) -> str:
    """'refused' or 'escaped'; fails the test if the payload got through unescaped."""
    value = _with_payload(field, payload)
    config, problems = _config_with(field, value)
    if config is None:
        listed = referenced_list(field.dotted)
        assert any(p.path == field.dotted or (listed is not None and p.allowed.endswith(f" in {listed}"))
                   for p in problems), (field.dotted, [p.path for p in problems])
        return "refused"
    baseline = _baseline(field.path)
    for name, (data, document) in _rendered(config).items():
        base_data, base_document = baseline[name]
        assert _shape(document) == _shape(base_document), f"{field.dotted} changed the structure of {name}"
        assert _shell_words(document) == _shell_words(base_document), f"{field.dotted} split a command on {name}"
        if data != base_data:  # the field reaches this machine's cloud-config: the value arrives whole
            assert any(value in text for text in _strings(document)), f"{field.dotted} was altered on {name}"
    return "escaped"


@pytest.mark.parametrize("field", STRING_FIELDS, ids=lambda field: field.dotted)
def test_every_payload_is_refused_or_escaped(field):
    outcomes = {payload: check_field(field, payload) for payload in PAYLOADS}
    assert set(outcomes.values()) <= {"refused", "escaped"}


def test_the_walk_finds_fields_that_reach_templates():
    names = {field.dotted for field in STRING_FIELDS}
    assert {"admin.username", "admin.ssh_public_keys[0]", "trust.name", "roles.gateway.hostname",
            "roles.package_mirror.upstreams.pypi"} <= names


def test_a_hostile_ssh_key_comment_reaches_cloud_init_escaped():
    field = next(f for f in STRING_FIELDS if f.dotted == "admin.ssh_public_keys[0]")
    assert check_field(field, "$(reboot) `id` {{ 7 * 7 }} \"'") == "escaped"
    assert check_field(field, "\nruncmd: [reboot]") == "refused"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(STRING_FIELDS), payload=st.text(alphabet=st.sampled_from(DANGEROUS) | st.characters(),
                                                               min_size=1, max_size=12))
# A payload that makes a short field valid: the baseline it is compared with must be valid too.
@also_run(field=next(f for f in STRING_FIELDS if f.dotted == "roles.git_server.repositories[0].description"),
          payload="00")
def test_random_payloads_are_refused_or_escaped(field, payload):
    assert check_field(field, payload) in ("refused", "escaped")
