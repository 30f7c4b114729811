"""Load and validate a stack file: schema first, then the checks a schema cannot express.

``load_stack`` is the only way a stack file enters the program. It returns the normalised
config (defaults filled in) or raises StackFileError with every problem found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cerberus import Validator, errors

from validation.mirror_allowlists_file import merge_allowlists_file
from validation.problems import MISSING, Problem, StackFileError
from validation.schema import SCHEMA
from validation.semantic_checks import semantic_problems
from validation.yaml_source import read_stack_source

_TYPE_WORDS = {"dict": "a mapping", "list": "a list", "string": "text", "integer": "a whole number",
               "boolean": "true or false"}


def _field_schema(path: tuple[Any, ...]) -> dict[str, Any]:
    """The schema entry for a document path (list indices step into the item schema)."""
    node: dict[str, Any] = {"type": "dict", "schema": SCHEMA}
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
        return Problem(_dotted(path), MISSING, "is required", doc)
    if error.code == errors.UNKNOWN_FIELD.code:
        parent = _field_schema(path[:-1]).get("schema", {})
        known = ", ".join(sorted(parent)) if isinstance(parent, dict) else ""
        return Problem(_dotted(path), MISSING, "is not a known setting",
                       f"known settings here: {known}" if known else "")
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
    if rule == "maxlength":
        return Problem(_dotted(path), MISSING, f"allows at most {error.constraint} entries or characters", doc)
    if rule == "nullable":
        return Problem(_dotted(path), None, "must not be empty", doc)
    return Problem(_dotted(path), value, f"failed the {rule} rule", doc)


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
    validator = Validator(SCHEMA)
    if not validator.validate(document):
        problems = [_describe(error) for error in _flatten(list(validator._errors))]
        return document, sorted(problems, key=lambda problem: problem.path)
    config = validator.document
    return config, semantic_problems(config)


def _problems_of(validator: Validator) -> list[Problem]:
    return [_describe(error) for error in _flatten(list(validator._errors))]


def load_stack(path: str | Path) -> dict[str, Any]:
    """The validated, normalised config of a stack file, or StackFileError."""
    path = Path(path)
    document, lines = read_stack_source(path)
    config, problems = validate_document(document)
    if not problems:
        problems = merge_allowlists_file(config, path.parent, _problems_of)
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
