"""The `blueprints` command: validate stack files and show the offline plan."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from validation.problems import StackFileError
from validation.usage import DEFAULT_STACK, EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError

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
)


def _stack_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack_file", nargs="?", default=DEFAULT_STACK,
                        help=f"stack file to read (default: {DEFAULT_STACK})")


def _cmd_validate(args: argparse.Namespace) -> int:
    from blueprints.topology import plan_machines
    from validation.stack_config import load_stack

    config = load_stack(args.stack_file)
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
        Path(args.output).write_text(text + "\n", encoding="utf-8")
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
                                               "key and role rules. Exit 0 when valid, 2 with every problem listed.")
    _stack_argument(validate)
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
        return handler(args)
    except StackFileError as error:
        print(error.report(), file=sys.stderr)
        return EXIT_USAGE
    except UsageError as error:
        print(f"blueprints {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
