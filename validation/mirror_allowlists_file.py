"""The mirror's allowlists from a file beside the stack file (``roles.package_mirror.allowlists_file``).

The file has the shape of the inline ``allowlists`` (keys pypi, npm, cran, each a list) and
passes the same name rules. Its entries are added to the inline ones, so a trust can keep a
long curated list out of the stack file (or share one list between stacks).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from blueprints.package_mirror.settings import SETTINGS_SCHEMA as MIRROR_SETTINGS
from validation.problems import Problem, StackFileError
from validation.semantic_checks import allowlist_problems
from validation.stack_validator import CheckedSchema, StackValidator, checked_schema
from validation.yaml_source import read_stack_source

FIELD = "roles.package_mirror.allowlists_file"
FILE_HINT = "the file holds keys pypi, npm and cran, each a list of package names"


@cache
def _allowlists_schema() -> CheckedSchema:
    """Checked by cerberus once per process: it depends only on the mirror's settings schema."""
    mirror = MIRROR_SETTINGS
    return checked_schema({"roles": {"type": "dict", "schema": {"package_mirror": {"type": "dict", "schema": {
        "allowlists": mirror["allowlists"]}}}}})


def merge_allowlists_file(config: dict[str, Any], stack_dir: Path,
                          describe: Any) -> list[Problem]:
    """Add the file's entries to ``config``'s allowlists, or return the problems found in it.

    ``describe`` turns a cerberus error into a Problem (validation.stack_config does that for
    the stack file itself, so both read alike).
    """
    mirror = config.get("roles", {}).get("package_mirror")
    name = mirror.get("allowlists_file") if mirror else None
    if not name:
        return []
    path = stack_dir / name
    try:
        document, _ = read_stack_source(path)
    except StackFileError as error:
        return [Problem(FIELD, name, f"{path}: {problem.allowed}"
                        + (f" (line {problem.line})" if problem.line else ""), FILE_HINT)
                for problem in error.problems]
    validator = StackValidator(_allowlists_schema())
    if not validator.validate({"roles": {"package_mirror": {"allowlists": document}}}):
        problems = []
        for problem in describe(validator):
            inner = problem.path.removeprefix("roles.package_mirror.allowlists").lstrip(".")
            problems.append(Problem(f"{FIELD} ({name}) {inner}".rstrip(), problem.value, problem.allowed,
                                    problem.hint or FILE_HINT))
        return problems
    extra = validator.document["roles"]["package_mirror"]["allowlists"]
    problems = []
    for ecosystem, entries in extra.items():
        inline = list(mirror["allowlists"].get(ecosystem, []))
        merged = inline + [entry for entry in dict.fromkeys(entries) if entry not in inline]
        problems += allowlist_problems({ecosystem: merged}, f"{FIELD} ({name})", first=len(inline))
    if problems:
        return problems
    for ecosystem, entries in extra.items():
        inline = mirror["allowlists"].setdefault(ecosystem, [])
        inline.extend(entry for entry in entries if entry not in inline)
    return []
