"""Hostile stack files: whatever the file holds, `blueprints validate` answers with exit code 2
and a message naming the field (or the file), never a traceback.

Each property runs in-process through cli.main.main, as a user would run the command.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
from collections.abc import Iterator
from pathlib import Path as FilePath
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import example as also_run
from hypothesis import strategies as st

from cli.main import main
from tests.hostile.stack_documents import FIELDS, Field, dump, example, get, has, put, referenced_list, remove
from validation.yaml_source import MAX_ALIASES, MAX_FILE_BYTES

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# A file that validation cannot finish within this many seconds counts as a hang.
HANG_SECONDS = 20


@pytest.fixture(scope="module")
def stack_path(tmp_path_factory) -> FilePath:
    return tmp_path_factory.mktemp("hostile") / "stack.yaml"


@contextlib.contextmanager
def _hang_guard() -> Iterator[None]:
    def hung(signum: int, frame: Any) -> None:
        raise TimeoutError(f"validation did not finish in {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def validate(path: FilePath, content: str | bytes) -> tuple[int, str]:
    """Exit code and standard error of `blueprints validate` on a file holding ``content``.

    Any exception escaping main() is a traceback the user would see: it fails the test.
    """
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    err, out = io.StringIO(), io.StringIO()
    with _hang_guard(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        # --no-plan: what is tested here is the reading and checking of the file; a plan per accepted
        # example would take minutes (tests/hostile/test_validate_implies_plan.py covers the plan stage).
        code = main(["validate", "--no-plan", str(path)])
    return code, err.getvalue()


def names(err: str, field: Field | str) -> bool:
    dotted = field.dotted if isinstance(field, Field) else field
    listed = referenced_list(dotted)
    return f": {dotted}: " in err or f" {dotted}: " in err or (listed is not None and f" in {listed} (got" in err)


# --- strategies ------------------------------------------------------------------------------

SHORT_TEXT = st.text(max_size=20)
NUMBERS = st.integers(min_value=-(10**12), max_value=10**12)
FRACTIONS = st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not float(x).is_integer())
LISTS = st.lists(SHORT_TEXT, max_size=3)
MAPPINGS = st.dictionaries(st.text(min_size=1, max_size=8), SHORT_TEXT, max_size=2)
WRONG_VALUES = {
    "string": st.one_of(NUMBERS, FRACTIONS, st.booleans(), LISTS, MAPPINGS),
    "integer": st.one_of(SHORT_TEXT, FRACTIONS, st.booleans(), LISTS, MAPPINGS),
    "boolean": st.one_of(SHORT_TEXT, NUMBERS, LISTS, MAPPINGS),
    "list": st.one_of(SHORT_TEXT, NUMBERS, st.booleans(), MAPPINGS),
    "dict": st.one_of(SHORT_TEXT, NUMBERS, st.booleans(), LISTS),
}
STRING_FIELDS = [f for f in FIELDS if f.type == "string"]
PRESENT = [f for f in FIELDS if has(example(), f.path)]
MAPPING_PATHS = [(), *(f.path for f in PRESENT if f.type == "dict")]


def _wrong_value(field: Field) -> st.SearchStrategy[Any]:
    strategy = WRONG_VALUES[field.type]
    # null is the field's default where it has one (YAML's way to say "unset"), and allowed where nullable
    if field.schema.get("nullable") or "default" in field.schema:
        return strategy
    return st.one_of(strategy, st.none())


# --- properties ------------------------------------------------------------------------------

@EXAMPLES
@given(data=st.data())
def test_a_value_of_the_wrong_type_is_named(stack_path, data):
    field = data.draw(st.sampled_from(FIELDS))
    document = example(field.path)
    put(document, field.path, data.draw(_wrong_value(field)))
    code, err = validate(stack_path, dump(document))
    assert code == 2 and names(err, field), err


EVERY_ROLE = [f for f in PRESENT if len(f.path) == 2 and f.path[0] == "roles"]


@EXAMPLES
@given(chosen=st.lists(st.sampled_from(PRESENT), min_size=1, max_size=4, unique_by=lambda field: field.path))
@also_run(chosen=EVERY_ROLE)  # emptying roles: the message names roles, the mapping left empty
def test_missing_keys_are_named(stack_path, chosen):
    document = example()
    removed = sorted(chosen, key=lambda f: len(f.path))
    gone: list[Field] = []
    for field in removed:
        if any(field.path[: len(g.path)] == g.path for g in gone):
            continue  # already removed with its parent
        if isinstance(field.path[-1], int):
            continue  # list entries are removed through their list
        remove(document, field.path)
        gone.append(field)
    assume(gone)
    code, err = validate(stack_path, dump(document))
    assert code in (0, 2), err
    required = [f for f in gone if f.schema.get("required")]
    if required:
        assert code == 2
        assert all(names(err, f) for f in required), err
    if code == 2:
        # Either the removed key is named, or what needed it says so (a reference naming the list it
        # points into, e.g. "is not a user in roles.git_server.users", names the removed list too).
        # A mapping the removals left empty may be named instead (roles: must name at least one role).
        emptied = [Field(f.path[:-1], {}) for f in gone if len(f.path) > 1 and not get(document, f.path[:-1])]
        # Taking a person out of a team (or a team's maintainers) can leave a protected repository
        # with one reviewer: the two-person rule names the repository, which is what must change.
        # The same for the airlock's output checkers (egress), named by a team.
        fewer_reviewers = (("maintainers are its reviewers and must be at least two people" in err
                            or "airlock.egress.checkers: must be at least two people" in err)
                           and any(f.path[:2] == ("roles", "git_server") for f in gone))
        assert (any(names(err, f) or f" in {f.dotted}" in err for f in gone)
                or any(names(err, parent) for parent in emptied)
                or "is required by" in err or fewer_reviewers), err


@EXAMPLES
@given(parent=st.sampled_from(MAPPING_PATHS), key=st.text(min_size=1, max_size=30), value=SHORT_TEXT)
def test_an_unknown_key_is_named(stack_path, parent, key, value):
    document = example()
    mapping = get(document, parent)
    assume(key not in mapping and key != "<<")  # "<<" is YAML's merge key, not a setting
    mapping[key] = value
    text = dump(document)
    loaded_key = next(k for k in get(yaml.safe_load(text), parent) if k not in example_keys(parent))
    code, err = validate(stack_path, text)
    assert code == 2 and "is not a known setting" in err and str(loaded_key) in err, err


def example_keys(parent: tuple) -> set:
    return set(get(example(), parent))


def _stretched(field: Field, size: int) -> Any:
    base = get(example(), field.path) if has(example(), field.path) else field.schema.get("default", "x")
    base = str(base) if not isinstance(base, str) else base
    return base + base[-1] * size


@EXAMPLES
@given(data=st.data())
def test_empty_and_huge_values_are_named(stack_path, data):
    field = data.draw(st.sampled_from([f for f in FIELDS if f.type in ("string", "list", "integer")]))
    if field.type == "string":
        # huge: past the field's own limit (an SSH key may rightly run to kilobytes)
        size = data.draw(st.integers(min_value=max(300, field.schema.get("maxlength", 0) + 1), max_value=200_000))
        value = data.draw(st.sampled_from(["", "x" * size, _stretched(field, size)]))
    elif field.type == "integer":
        value = data.draw(st.sampled_from([10**30, -(10**30), 2**63]))
    else:
        assume("minlength" in field.schema or "maxlength" in field.schema)
        item = get(example(), (*field.path, 0)) if has(example(), (*field.path, 0)) else "x"
        over = field.schema.get("maxlength", 0) + 1
        value = data.draw(st.sampled_from([[], [item] * over] if "minlength" in field.schema else [[item] * over]))
    document = example(field.path)
    put(document, field.path, value)
    text = dump(document)
    code, err = validate(stack_path, text)
    too_big = len(text.encode()) > MAX_FILE_BYTES
    assert code == 2, f"{field.dotted} accepted {str(value)[:60]!r}... ({len(str(value))} characters)"
    assert names(err, field) or (too_big and f"the limit is {MAX_FILE_BYTES}" in err), err


@EXAMPLES
@given(data=st.data())
def test_unicode_text_in_any_string_field_is_named_or_accepted(stack_path, data):
    field = data.draw(st.sampled_from(STRING_FIELDS))
    document = example(field.path)
    put(document, field.path, data.draw(st.text(max_size=60)))
    code, err = validate(stack_path, dump(document))
    assert code == 0 or (code == 2 and names(err, field)), err


def _flow(value: Any, duplicate_at: tuple, key: str, extra: Any, here: tuple = ()) -> str:
    """JSON (which YAML reads) with ``key`` written twice in the mapping at ``duplicate_at``."""
    if isinstance(value, dict):
        items = [f"{json.dumps(k)}: {_flow(v, duplicate_at, key, extra, (*here, k))}" for k, v in value.items()]
        if here == duplicate_at:
            items.append(f"{json.dumps(key)}: {json.dumps(extra)}")
        return "{\n" + ",\n".join(items) + "\n}"
    if isinstance(value, list):  # mappings inside list entries (e.g. a Git team) get their duplicate too
        return "[" + ",\n".join(_flow(item, duplicate_at, key, extra, (*here, i)) for i, item in enumerate(value)) + "]"
    return json.dumps(value)


@EXAMPLES
@given(data=st.data())
def test_a_duplicate_key_is_named(stack_path, data):
    parent = data.draw(st.sampled_from(MAPPING_PATHS))
    document = example()
    key = data.draw(st.sampled_from(sorted(get(document, parent))))
    text = _flow(document, parent, key, data.draw(SHORT_TEXT))
    code, err = validate(stack_path, text)
    dotted = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in (*parent, key)).lstrip(".")
    assert code == 2 and f"{dotted}: appears twice" in err, err


def _alias_bomb(width: int, depth: int) -> str:
    lines = [f"  l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, depth)]
    return "\n".join(lines)


@EXAMPLES
@given(width=st.integers(2, 12), depth=st.integers(2, 12), under_known_key=st.booleans())
def test_alias_bombs_are_refused_without_hanging(stack_path, width, depth, under_known_key):
    bomb = "anchors:\n" + _alias_bomb(width, depth) + "\n"
    document = example()
    if under_known_key:
        document["network"]["allowed_client_ranges"] = "BOMB"
    text = bomb + dump(document).replace("BOMB", f"*l{depth - 1}")
    code, err = validate(stack_path, text)
    assert code == 2, err
    aliases = width * (depth - 1) + under_known_key
    if aliases > MAX_ALIASES:
        assert f"more than {MAX_ALIASES} YAML aliases" in err
    else:
        assert names(err, "anchors")


@EXAMPLES
@given(root=st.one_of(st.lists(SHORT_TEXT, max_size=4), SHORT_TEXT, NUMBERS, FRACTIONS, st.booleans(), st.none()))
def test_a_root_that_is_not_a_mapping_is_refused(stack_path, root):
    code, err = validate(stack_path, dump(root))
    assert code == 2 and "(file)" in err, err


@EXAMPLES
@given(content=st.one_of(st.binary(max_size=4000), st.text(max_size=4000)))
def test_files_that_are_not_stack_yaml_are_refused(stack_path, content):
    code, err = validate(stack_path, content)
    assert code == 2 and err.strip(), err


# --- fixed cases a property would find only by luck --------------------------------------------

@pytest.mark.parametrize("content, expected", [
    ("a: &a [*a]\n", "a: is not a known setting"),
    ("network: {allowed_client_ranges: &a [*a]}\n", "network.allowed_client_ranges[0]: must be text"),
    ("x: !!python/object/apply:os.system ['echo hi']\n", "could not determine a constructor"),
    ("trust: {name: a}\n---\ntrust: {name: b}\n", "is not valid YAML"),
    ("", "is empty"),
    ("# only a comment\n", "is empty"),
    (b"\xff\xfe\x00t", "is not UTF-8 text"),
    ("\t- tab\n", "is not valid YAML"),
    ("environment: 2026-01-01\n", "environment: must be text"),
    ("? [1, 2]\n: x\n", "<sequence key>: must be a setting name in text"),
])
def test_fixed_hostile_files(stack_path, content, expected):
    code, err = validate(stack_path, content)
    assert code == 2 and expected in err, err


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(stack_path):
    code, err = validate(stack_path, "# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    assert code == 2 and f"the limit is {MAX_FILE_BYTES}" in err


def test_a_few_anchors_in_a_valid_file_are_fine(stack_path):
    text = dump(example())
    text = text.replace("  gateway:\n    kind: self-hosted\n    vm_size: Standard_B2s",
                        "  gateway:\n    kind: self-hosted\n    vm_size: &size Standard_B2s", 1)
    text = text.replace("  package_mirror:\n    vm_size: Standard_B2s", "  package_mirror:\n    vm_size: *size", 1)
    assert "*size" in text
    assert validate(stack_path, text)[0] == 0


def test_a_directory_or_a_missing_path_is_a_clear_error(tmp_path):
    for target in (tmp_path, tmp_path / "missing.yaml"):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(["validate", str(target)]) == 2
        assert str(target) in err.getvalue()


@pytest.mark.parametrize("content, field", [
    ("?\n", "(file)"), ("1: x\n", "1"), ("null: 2\n", "null"), ("trust: {1: 2}\n", "trust.1"),
    ("[a]: 1\n", "<sequence key>"), ("{a: 1}: 1\n", "<mapping key>"),
])
def test_a_key_that_is_not_text_is_named(stack_path, content, field):
    code, err = validate(stack_path, content)
    assert code == 2 and f"{field}: must be a setting name in text" in err, err
