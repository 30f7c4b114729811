"""Load and validate a stack file: schema first, then the checks a schema cannot express.

``load_stack`` is the only way a stack file enters the program. It returns the normalised
config (defaults filled in) or raises StackFileError with every problem found.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from cerberus import errors

from blueprints.role import Role
from blueprints.roles import all_roles
from validation.allowlist_closure import warn_of_missing_needs
from validation.landing_zone_checks import landing_zone_problems
from validation.mirror_allowlists_file import merge_allowlists_file
from validation.problems import MISSING, Problem, StackFileError
from validation.schema import stack_schema
from validation.semantic_checks import semantic_problems
from validation.stack_validator import CheckedSchema, StackValidator, checked_schema
from validation.yaml_source import read_stack_source

_TYPE_WORDS = {"dict": "a mapping", "list": "a list", "string": "text", "integer": "a whole number",
               "boolean": "true or false"}

# The schema as cerberus checked it, and the roles it was made for: made again only when the
# registered roles change (blueprints.roles.registered), as stack_schema() follows them.
_checked: tuple[tuple[Role, ...], CheckedSchema] | None = None


def _checked_schema() -> CheckedSchema:
    global _checked
    roles = all_roles()
    cached = _checked
    if cached is None or cached[0] is not roles:
        cached = (roles, checked_schema(stack_schema()))
        _checked = cached
    return cached[1]


def _field_schema(path: tuple[Any, ...]) -> dict[str, Any]:
    """The schema entry for a document path (list indices step into the item schema)."""
    node: dict[str, Any] = {"type": "dict", "schema": _checked_schema().schema}
    for part in path:
        inner = node.get("schema", {})
        node = inner if isinstance(part, int) else inner.get(part, {})
    return node


def _dotted(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _describe(error: errors.ValidationError) -> Problem:
    path = error.document_path
    field = _field_schema(path)
    meta = field.get("meta", {})
    doc = meta.get("doc", "")
    rule = error.rule
    value = error.value
    if error.code == errors.REQUIRED_FIELD.code:
        return Problem(_dotted(path), MISSING, f"is required: {_what_is_allowed(field)}", doc)
    if error.code == errors.UNKNOWN_FIELD.code:
        parent = _field_schema(path[:-1]).get("schema", {})
        known = sorted(parent) if isinstance(parent, dict) else []
        hint = f"known settings here: {', '.join(known)}" if known else ""
        close = difflib.get_close_matches(str(path[-1]), known, n=1)
        if close:
            hint = f"did you mean {close[0]}? {hint}"
        return Problem(_dotted(path), value, "is not a known setting", hint)
    if rule == "type":
        return Problem(_dotted(path), value, f"must be {_TYPE_WORDS.get(error.constraint, error.constraint)}", doc)
    if rule == "allowed":
        return Problem(_dotted(path), value, "must be one of " + ", ".join(map(str, error.constraint)), doc)
    if rule == "regex":
        return Problem(_dotted(path), value, f"must be {meta.get('allowed', 'in the documented form')}", doc)
    if rule in ("min", "max"):
        low, high = field.get("min"), field.get("max")
        return Problem(_dotted(path), value, f"must be between {low} and {high}", doc)
    if rule == "minlength":
        entries = "entry" if error.constraint == 1 else "entries"
        return Problem(_dotted(path), MISSING, f"needs at least {error.constraint} {entries}", doc)
    if rule == "maxlength" and isinstance(value, list):
        return Problem(_dotted(path), _ListOf(len(value)), f"allows at most {error.constraint} entries", doc)
    if rule == "maxlength":
        return Problem(_dotted(path), value, f"allows at most {error.constraint} characters "
                       f"(this has {len(value)})", doc)
    if rule == "nullable":
        return Problem(_dotted(path), None, "must not be empty", doc)
    return Problem(_dotted(path), value, f"failed the {rule} rule", doc)


class _ListOf:
    """Shows a too-long list by its length rather than its entries."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __repr__(self) -> str:
        return f"a list of {self.length}"


def _what_is_allowed(field: dict[str, Any]) -> str:
    """What a field accepts, in words: its allowed values, its documented form, or its type."""
    if "allowed" in field:
        return "one of " + ", ".join(map(str, field["allowed"]))
    meta = field.get("meta", {})
    if "allowed" in meta:
        return meta["allowed"]
    if field.get("type") == "integer" and "min" in field:
        return f"a whole number from {field['min']} to {field['max']}"
    return _TYPE_WORDS.get(field.get("type", ""), "a value")


def _flatten(errs: list[errors.ValidationError]) -> list[errors.ValidationError]:
    flat: list[errors.ValidationError] = []
    for error in errs:
        if error.is_group_error:
            flat.extend(_flatten(list(error.child_errors or [])))
        else:
            flat.append(error)
    return flat


def validate_document(document: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Normalise a parsed document and list its problems (schema, then semantic)."""
    validator = StackValidator(_checked_schema())
    if not validator.validate(document):
        problems = [_describe(error) for error in _flatten(list(validator._errors))]
        return document, sorted(problems, key=lambda problem: problem.path)
    config = validator.document
    return config, semantic_problems(config) + landing_zone_problems(config)


def _problems_of(validator: StackValidator) -> list[Problem]:
    return [_describe(error) for error in _flatten(list(validator._errors))]


def load_stack(path: str | Path) -> dict[str, Any]:
    """The validated, normalised config of a stack file, or StackFileError."""
    path = Path(path)
    document, lines = read_stack_source(path)
    config, problems = validate_document(document)
    if not problems:
        problems = merge_allowlists_file(config, path.parent, _problems_of)
    if not problems:
        warn_of_missing_needs(config, path)
    if problems:
        located = [
            Problem(p.path, p.value, p.allowed, p.hint, line=_line_for(p.path, lines)) for p in problems
        ]
        raise StackFileError(str(path), located)
    return config


def _line_for(path: str, lines: dict[str, int]) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path.rsplit(".", 1)[0] if "." in path else ""
    return None
