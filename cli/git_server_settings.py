"""`blueprints git-server settings`: the file git-server-apply reads, from a stack file.

The Git server's users, teams and repositories change after deployment through this file (the
VM's custom data cannot change): validate the stack, write the file, copy it to the VM and run
`git-server-apply` on it there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from validation.usage import DEFAULT_STACK, EXIT_OK, UsageError


def settings_document(config: dict) -> str:
    """The role's settings as git-server-apply reads them (JSON, which is also YAML)."""
    from blueprints.git_server.backup_target import vm_settings

    return json.dumps(vm_settings(config), indent=2, sort_keys=True) + "\n"


def _cmd_settings(args: argparse.Namespace) -> int:
    from validation.stack_config import load_stack

    config = load_stack(args.stack_file)
    if "git_server" not in config["roles"]:
        raise UsageError(f"{args.stack_file}: roles.git_server is not set; this stack has no Git server")
    text = settings_document(config)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"Wrote {args.output}; on the VM: sudo git-server-apply {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = commands.add_parser("git-server", help="the Git server's users, teams and repositories",
                                description="Produce what the Git server VM applies with git-server-apply.")
    actions = group.add_subparsers(dest="git_server_command", metavar="GIT_SERVER_COMMAND", required=True)
    settings = actions.add_parser("settings", help="write the settings file git-server-apply reads",
                                  description="Validate the stack file and print roles.git_server as the "
                                              "settings file for git-server-apply on the VM.")
    settings.add_argument("stack_file", nargs="?", default=DEFAULT_STACK,
                          help=f"stack file to read (default: {DEFAULT_STACK})")
    settings.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    settings.set_defaults(handler=_cmd_settings)
