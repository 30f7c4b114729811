"""The change matrix in docs/administrators.md: each day-two edit and what it does.

Generated from the same data the tests use: the edits in validation/stack_edits.py, each applied
to the example stack and compared with it by the `plan --diff` engine (validation/plan_diff.py).
So the "what the preview shows" column is what `blueprints plan --diff` prints for that edit
with the code as it is, and `blueprints docs` rewrites the table between its two marker lines.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from validation.plan_diff import CREATE, DELETE, REPLACE, UPDATE, PlanDiff, diff_plans
from validation.plan_model import Plan
from validation.stack_edits import DESTRUCTIVE_EDITS, ORDINARY_EDITS, StackEdit

BEGIN = "<!-- begin: change matrix, written by `blueprints docs` (reports/change_matrix.py) -->"
END = "<!-- end: change matrix -->"
PAGE_NAME = "administrators.md"  # beside the reference directory
EXAMPLE_STACK = Path("stacks/example.yaml")

Planner = Callable[[Path], Plan]


def _vm_name(azure_name: str) -> str:
    """``vm-exnhs-dev-uks-analytics-1`` -> ``analytics-1``: the machine as administrators call it."""
    parts = azure_name.split("-")
    return "-".join(parts[4:]) if azure_name.startswith("vm-") and len(parts) > 4 else azure_name


def _kind(type_token: str) -> str:
    return type_token.rsplit(":", 1)[-1]


def preview_text(diff: PlanDiff) -> str:
    """One cell: what `plan --diff` shows for an edit, most serious first."""
    parts = []
    for action, words in ((REPLACE, "replaces"), (DELETE, "deletes")):
        for change in diff.by_action(action):
            kind = "VM " + _vm_name(change.azure_name) if change.type.endswith(":VirtualMachine") else change.azure_name
            forced = ", ".join(sorted({forcing.path for forcing in change.forced_by}))
            parts.append(f"**{words} {kind}** ({forced})" if forced else f"**{words} {kind}**")
    # Kinds rather than counts: a count moves whenever a role gains a resource, the kind does not.
    created = diff.by_action(CREATE)
    if created:
        vms = [_vm_name(c.azure_name) for c in created if c.type.endswith(":VirtualMachine")]
        parts.append(f"creates VM {', '.join(vms)} and its resources" if vms else
                     "creates " + ", ".join(sorted({_kind(c.type) for c in created})))
    updated = diff.by_action(UPDATE)
    if updated:
        parts.append("updates in place: " + ", ".join(sorted({_kind(c.type) for c in updated})))
    settings = sorted({setting for change in updated for setting in change.settings})
    if settings:
        parts.append("re-applies " + ", ".join(settings))
    return "; ".join(parts) or "no change"


def diffs(planner: Planner, example: Path = EXAMPLE_STACK) -> list[tuple[StackEdit, PlanDiff]]:
    """Each edit applied to the example and compared with it."""
    base = planner(example)
    document = yaml.safe_load(example.read_text(encoding="utf-8"))
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for edit in ORDINARY_EDITS + DESTRUCTIVE_EDITS:
            if edit.plan_edit is not None:
                target = copy.deepcopy(base)
                edit.plan_edit(target)
            else:
                # Named like the example so the plan cache keeps one entry per edit across runs.
                edited = Path(scratch) / edit.name / example.name
                edited.parent.mkdir()
                edited.write_text(yaml.safe_dump(edit.apply(document), sort_keys=False), encoding="utf-8")
                target = planner(edited)
            results.append((edit, diff_plans(base, target)))
    return results


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_matrix(results: list[tuple[StackEdit, PlanDiff]]) -> str:
    lines = [
        BEGIN,
        "| Edit of `stacks/example.yaml` | What `blueprints plan --diff` shows | What the VM does "
        "| How long it takes | What the analyst notices |",
        "|---|---|---|---|---|",
    ]
    for edit, diff in results:
        label = ("Destructive: " if edit.destructive else "") + edit.description
        lines.append("| " + " | ".join(_cell(text) for text in (
            label, preview_text(diff), edit.vm_does, edit.takes, edit.analyst_notices)) + " |")
    lines.append(END)
    return "\n".join(lines)


def replace_section(page_text: str, matrix: str) -> str:
    """The page with the text between the markers replaced; ValueError if the markers are missing."""
    start, end = page_text.find(BEGIN), page_text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the page has no change matrix markers ({BEGIN} ... {END})")
    return page_text[:start] + matrix + page_text[end + len(END):]


def page_for(reference_dir: Path) -> Path | None:
    """docs/administrators.md beside the reference directory, when it holds the markers."""
    page = reference_dir.parent / PAGE_NAME
    if page.is_file() and BEGIN in page.read_text(encoding="utf-8"):
        return page
    return None


def write(page: Path, planner: Planner) -> Path:
    text = page.read_text(encoding="utf-8")
    page.write_text(replace_section(text, render_matrix(diffs(planner))), encoding="utf-8")
    return page


def is_current(page: Path, planner: Planner) -> bool:
    text = page.read_text(encoding="utf-8")
    return replace_section(text, render_matrix(diffs(planner))) == text
