"""`blueprints plan --diff BASE [STACK_FILE]`: what applying STACK_FILE over BASE would do.

An option of `plan` rather than a command of its own: it is the plan of STACK_FILE, shown as
the change from another plan. BASE is either a stack file (planned offline like STACK_FILE, both
through the plan cache) or a plan saved by `blueprints plan --json`, for instance the plan of
the last deployment recorded by the pipeline with the code it deployed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from validation.plan_model import Plan
from validation.usage import EXIT_OK, UsageError

STACK_SUFFIXES = (".yaml", ".yml")


def _check_base(base: str) -> None:
    path = Path(base)
    if not path.is_file():
        raise UsageError(f"--diff BASE {base!r} is not a file: give the stack file or the "
                         "`blueprints plan --json` output to compare against")
    if path.suffix not in (*STACK_SUFFIXES, ".json"):
        raise UsageError(f"--diff BASE {base!r} must be a stack file ({', '.join(STACK_SUFFIXES)}) "
                         "or a plan saved by `blueprints plan --json` (.json)")


def _base_plan(base: str) -> Plan:
    from validation.plan_cache import recorded_plan

    path = Path(base)
    if path.suffix in STACK_SUFFIXES:
        return recorded_plan(path)
    try:
        return Plan.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(f"--diff BASE {base!r} is not a plan saved by `blueprints plan --json` "
                         f"({type(error).__name__}: {error})") from None


def run(args: argparse.Namespace) -> int:
    from validation.plan_cache import recorded_plan
    from validation.plan_diff import EXIT_DESTRUCTIVE, diff_plans, render_diff

    if args.format == "arm":
        raise UsageError("--format arm cannot be combined with --diff: choose text or json")
    if not Path(args.stack_file).is_file():
        raise UsageError(f"STACK_FILE {args.stack_file!r} is not a file")
    _check_base(args.diff)
    print(f"Planning {args.diff} and {args.stack_file} offline to compare them...", file=sys.stderr)
    base = _base_plan(args.diff)
    target = recorded_plan(args.stack_file)
    diff = diff_plans(base, target)
    text = json.dumps(diff.to_json(), indent=2, sort_keys=True) if args.format == "json" else render_diff(diff)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"Wrote {args.output}", file=sys.stderr)
    else:
        print(text)
    return EXIT_DESTRUCTIVE if diff.destructive else EXIT_OK
