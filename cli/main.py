"""The `blueprints` command: validate stack files and show the offline plan."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from blueprints.cloud_init import RenderError
from validation.output_paths import (
    input_file_problem,
    output_directory_problem,
    output_file_problem,
    write_file_atomically,
)
from validation.problems import MISSING, Problem, StackFileError
from validation.usage import DEFAULT_STACK, EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from validation.yaml_source import MAX_FILE_BYTES

# Command groups that live beside their concern. Each module offers
# ``register(commands)``, adding its subcommands to the top-level parser.
COMMAND_GROUPS: tuple[str, ...] = (
    "lab.cli",
    "reports.costing",
    "reports.reference_docs",
    "reports.request_pack",
    "cli.git_server_settings",
    "cli.preflight",
    "cli.vault_secrets",
    "cli.allowlist",
    "cli.image_recipe",
)


# Every path argument of every command, by its destination: what it must be. The paths are checked
# before the command does any work (check_path_arguments). A new option that names a file goes here;
# tests/hostile/test_hostile_arguments.py fails for one that is missing.
INPUT, OUTPUT_FILE, OUTPUT_DIRECTORY = "input file", "output file", "output directory"
# Inputs and the most bytes each may hold: a stack file, or (plan --diff) a stack file or a saved plan.
INPUT_LIMITS: dict[str, int] = {"stack_file": MAX_FILE_BYTES, "stack_files": MAX_FILE_BYTES, "diff": 64 * 2**20}
OUTPUT_ARGUMENTS: dict[tuple[str, str], str] = {
    ("plan", "output"): OUTPUT_FILE,
    ("git-server settings", "output"): OUTPUT_FILE,
    ("request-pack", "output"): OUTPUT_DIRECTORY,
    ("docs", "output"): OUTPUT_DIRECTORY,
    ("docs", "png_dir"): OUTPUT_DIRECTORY,
}
# Options that turn writing off: with docs --check nothing is written.
WRITES_NOTHING = frozenset({("docs", "check")})


def chosen_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, argparse.ArgumentParser]:
    """The command the arguments chose ("git-server settings") and its parser."""
    words: list[str] = []
    current = parser
    while True:
        choices = next((action for action in current._actions
                        if isinstance(action, argparse._SubParsersAction)), None)
        chosen = getattr(args, choices.dest, None) if choices is not None else None
        if choices is None or chosen is None:
            return " ".join(words), current
        words.append(chosen)
        current = choices.choices[chosen]


def path_kind(command: str, dest: str) -> str | None:
    if dest in INPUT_LIMITS:
        return INPUT
    return OUTPUT_ARGUMENTS.get((command, dest))


def check_path_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a path argument that cannot be read or written as the command needs, before any work."""
    command, chosen = chosen_command(parser, args)
    writing = not any(getattr(args, flag, False) for name, flag in WRITES_NOTHING if name == command)
    for action in chosen._actions:
        kind = path_kind(command, action.dest)
        value = getattr(args, action.dest, None)
        if kind is None or not value:
            continue
        for given in value if isinstance(value, list) else [value]:
            path = Path(given)
            if kind == INPUT:
                problem = input_file_problem(path, INPUT_LIMITS[action.dest])
                if problem:
                    raise StackFileError(str(given), [Problem("", MISSING, problem,
                                                              "name a stack file (a YAML file, stacks/*.yaml)")])
                continue
            if not writing:
                continue
            problem = output_file_problem(path) if kind == OUTPUT_FILE else output_directory_problem(path)
            if problem:
                option = "/".join(action.option_strings) or action.dest
                raise UsageError(f"{option} {given}: {problem}")


def _stack_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack_file", nargs="?", default=DEFAULT_STACK,
                        help=f"stack file to read (default: {DEFAULT_STACK})")


def _cmd_validate(args: argparse.Namespace) -> int:
    from blueprints.topology import plan_machines
    from validation.deployment_checks import policy_problems, rendered_problems, with_lines
    from validation.stack_config import load_stack
    from validation.yaml_source import read_stack_source

    config = load_stack(args.stack_file)
    # What plan would refuse, found here: each VM's user-data, then the offline plan's policy rules.
    problems = rendered_problems(config)
    if not problems and not args.no_plan:
        from validation.plan_cache import recorded_plan

        try:
            problems = policy_problems(recorded_plan(args.stack_file))
        except RenderError as error:  # a document the checks above do not render yet
            problems = [Problem("", MISSING, f"makes a VM document the plan cannot use: {error}")]
    if problems:
        _, lines = read_stack_source(Path(args.stack_file))
        raise StackFileError(args.stack_file, with_lines(problems, lines))
    machines = plan_machines(config)
    roles = ", ".join(sorted(config["roles"]))
    print(f"{args.stack_file}: valid. Roles: {roles}; "
          f"{len(machines)} VM{'s' if len(machines) != 1 else ''}: {', '.join(m.name for m in machines)}")
    return EXIT_OK


def _cmd_plan(args: argparse.Namespace) -> int:
    from validation.plan_cache import recorded_plan
    from validation.plan_report import render_summary, render_tree
    from validation.policies import evaluate, mandatory_failures
    from validation.policies.report import render_results, results_json

    if args.diff:
        from cli import plan_diff

        return plan_diff.run(args)
    print(f"Planning {args.stack_file} offline (Pulumi program under mocks; no Azure needed)...",
          file=sys.stderr)
    plan = recorded_plan(args.stack_file)
    results = evaluate(plan)
    if args.format == "json":
        text = json.dumps({**plan.to_json(), "policies": results_json(results)}, indent=2, sort_keys=True)
    elif args.format == "arm":
        from validation.arm_export import export_template

        text = json.dumps(export_template(plan), indent=2, sort_keys=True)
    else:
        text = "\n".join([render_tree(plan), "", render_results(results), "", render_summary(plan)])
    if args.output:
        write_file_atomically(Path(args.output), text + "\n")
        print(f"Wrote {args.output}", file=sys.stderr)
    else:
        print(text)
    failed = mandatory_failures(results)
    if failed:
        print(f"blueprints plan: {len(failed)} mandatory polic{'ies' if len(failed) != 1 else 'y'} violated: "
              f"{', '.join(result.rule.id for result in failed)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blueprints",
        description="Reference analytics environments for NHS trusts: validate, plan offline, deploy with Pulumi.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = commands.add_parser("validate", help="check a stack file and report every problem at once",
                                   description="Check a stack file against the schema and the address, "
                                               "key and role rules, render every VM's user data, then record the "
                                               "offline plan and check its mandatory policy rules, so that a stack "
                                               "validate passes is one plan passes. Exit 0 when valid, 2 with every "
                                               "problem listed.")
    _stack_argument(validate)
    validate.add_argument("--no-plan", action="store_true",
                          help="skip recording the offline plan and checking its policy rules (faster; "
                               "plan may then still refuse the stack)")
    validate.set_defaults(handler=_cmd_validate)

    plan = commands.add_parser("plan", help="show every resource the stack deploys, offline",
                               description="Run the Pulumi program under mocks (no Azure account, no Pulumi CLI) "
                                           "and show every resource with the settings that matter.")
    _stack_argument(plan)
    plan.add_argument("--format", choices=["text", "json", "arm"], default="text",
                      help="output format (default: text; arm: an ARM template of the plan, for scanners)")
    plan.add_argument("--json", dest="format", action="store_const", const="json",
                      help="same as --format json: the full plan for tools")
    plan.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    plan.add_argument("--diff", metavar="BASE",
                      help="show what applying the stack file over BASE does (BASE: a stack file, or a plan "
                           "saved with --json): each resource created, updated in place, replaced or deleted; "
                           "exit 3 when a VM, disk or other resource holding data is replaced or deleted")
    plan.set_defaults(handler=_cmd_plan)

    for module_name in COMMAND_GROUPS:
        importlib.import_module(module_name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        check_path_arguments(parser, args)
        return handler(args)
    except StackFileError as error:
        print(error.report(), file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:  # a file that could not be read or written once the work had started
        where = f"{error.filename}: " if error.filename else ""
        print(f"blueprints {args.command}: {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    except RenderError as error:  # settings that render past a limit: the stack's fault, not a crash
        stack = getattr(args, "stack_file", None) or ", ".join(getattr(args, "stack_files", None) or [])
        print(f"blueprints {args.command}: {stack or 'the stack'}: a VM's user data cannot be made: {error}",
              file=sys.stderr)
        return EXIT_USAGE
    except UsageError as error:
        print(f"blueprints {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
