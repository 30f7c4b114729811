"""`blueprints allowlist resolve`: what a stack's allowlists lack of their own dependencies.

Resolves each allowlist with its ecosystem's own tools (validation/allowlist_resolver.py), prints
what would be added with the versions chosen, records what each entry needs beside the stack
(``closures/<stack>.yaml``, read by `blueprints validate` to warn), and changes the allowlists only
with ``--write``.

Exit codes: 0 resolved, 1 a registry did not answer or an allowlist cannot be resolved (the message
names which), 2 a bad stack file or command line.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from blueprints.package_mirror.settings import ECOSYSTEMS, URL_PATTERN
from validation.allowlist_resolver import (
    RegistryUnreachableError,
    ResolutionError,
    StackResolution,
    counted,
    resolve_stack,
    write_additions,
    write_record,
)
from validation.usage import EXIT_FAILED, EXIT_OK


def render_resolution(resolution: StackResolution) -> str:
    """The report: per ecosystem, what it would add (with versions and which entries need it)."""
    lines = [f"{resolution.stack_file}: dependency closure of the package mirror's allowlists"]
    additions = resolution.additions()
    for ecosystem in ECOSYSTEMS:
        entries = resolution.allowlists.get(ecosystem, [])
        if not entries:
            continue
        closure = resolution.closures.get(ecosystem)
        if ecosystem in resolution.failures:
            lines.append(f"{ecosystem}: NOT RESOLVED: {resolution.failures[ecosystem]}")
            if closure is None:
                continue
            entries = list(closure.needs)  # what follows is for the entries that were resolved
        if closure is None:
            lines.append(f"{ecosystem}: not asked for ({counted(len(entries), 'entry')})")
            continue
        added = additions.get(ecosystem, [])
        total = len({package.name for package in closure.packages()})
        if not added:
            lines.append(f"{ecosystem}: complete: {counted(len(entries), 'entry')}, "
                         f"{counted(total, 'dependency')}, all listed")
        else:
            lines.append(f"{ecosystem}: {counted(len(entries), 'entry')} need "
                         f"{counted(total, 'dependency')}; {len(added)} not listed, to add:")
            for package in added:
                needed_by = sorted(entry for entry, needs in closure.needs.items()
                                   if any(need.name == package.name for need in needs))
                shown = ", ".join(needed_by[:4]) + (f" and {len(needed_by) - 4} more" if len(needed_by) > 4 else "")
                lines.append(f"  + {package.name} {package.version}".rstrip() + f"  (for {shown})")
        lines.append(f"  assumed: {closure.assumed}")
        lines.extend(f"  note: {note}" for note in closure.notes)
    return "\n".join(lines)


def _cmd_resolve(args: argparse.Namespace) -> int:
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    upstreams = dict(args.upstream or [])
    for ecosystem, url in upstreams.items():
        print(f"{ecosystem}: resolving against {url}, not the stack's upstream", file=sys.stderr)
    resolution = resolve_stack(args.stack_file_path, args.ecosystem, args.python, progress, upstreams)
    print(render_resolution(resolution))
    # The allowlists first, so that checking the written stack does not warn of what is being added.
    if resolution.additions():
        if args.write:
            target = write_additions(resolution)
            count = sum(len(packages) for packages in resolution.additions().values())
            print(f"Added {count} entries to {target}")
        else:
            where = resolution.allowlists_file or args.stack_file
            print(f"Nothing written: run again with --write to add them to {where}")
    if resolution.closures and not args.no_record:
        print(f"Recorded what each entry needs in {write_record(resolution)}", file=sys.stderr)
    return EXIT_FAILED if resolution.failures else EXIT_OK


def _run_resolve(args: argparse.Namespace) -> int:
    args.stack_file_path = Path(args.stack_file)
    try:
        return _cmd_resolve(args)
    except (RegistryUnreachableError, ResolutionError) as error:
        print(f"blueprints allowlist resolve: {error}", file=sys.stderr)
        return EXIT_FAILED


UPSTREAM_PATTERN = re.compile(URL_PATTERN)


def upstream_argument(text: str) -> tuple[str, str]:
    """``--upstream ECOSYSTEM=URL``: an http(s) URL, or for CRAN a file: URL of a CRAN-layout folder."""
    ecosystem, separator, url = text.partition("=")
    if not separator or ecosystem not in ECOSYSTEMS:
        raise argparse.ArgumentTypeError(f"{text!r}: must be ECOSYSTEM=URL with ECOSYSTEM one of "
                                         f"{', '.join(ECOSYSTEMS)}, such as cran=https://cran.example.nhs.uk")
    if UPSTREAM_PATTERN.fullmatch(url):
        return ecosystem, url
    if ecosystem == "cran" and re.fullmatch(r"file:///[^\s]*", url):
        return ecosystem, url
    allowed = "an http(s) URL" + (", or file:///PATH of a CRAN-layout folder" if ecosystem == "cran" else "")
    raise argparse.ArgumentTypeError(f"{text!r}: the {ecosystem} URL {url!r} must be {allowed}")


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = commands.add_parser("allowlist", help="the package mirror's allowlists and their dependencies",
                                description="Work on the package mirror's allowlists.")
    actions = group.add_subparsers(dest="allowlist_command", metavar="ALLOWLIST_COMMAND", required=True)
    resolve = actions.add_parser(
        "resolve", help="show (and with --write add) the dependencies the allowlists lack",
        description="Resolve each allowlist's dependency closure with the ecosystem's own tools (pip's "
                    "resolver for the analytics VM's CPython 3.13, the npm client, CRAN's PACKAGES index), "
                    "show what the allowlists lack with versions, and record what each entry needs in "
                    "closures/<stack>.yaml beside the stack for `blueprints validate`. Needs the registries. "
                    "Exit 0 resolved, 1 a registry unreachable or an allowlist unresolvable, 2 bad input.")
    resolve.add_argument("stack_file", help="stack file whose allowlists to resolve")
    resolve.add_argument("--write", action="store_true",
                         help="add what is missing to the stack file (or to its allowlists_file), "
                              "keeping its comments and layout")
    resolve.add_argument("--ecosystem", action="append", choices=ECOSYSTEMS,
                         help="resolve only this ecosystem (repeat for more; default: every one with entries)")
    resolve.add_argument("--python", metavar="INTERPRETER",
                         help="a CPython 3.13 for pip to evaluate environment markers with "
                              "(default: python3.13 on PATH when it runs, else this Python)")
    resolve.add_argument("--upstream", action="append", type=upstream_argument, metavar="ECOSYSTEM=URL",
                         help="resolve this ecosystem against URL instead of the stack's upstream (repeat for "
                              "more): a closer mirror, or for CRAN a CRAN-layout stand-in, file:///PATH allowed")
    resolve.add_argument("--no-record", action="store_true",
                         help="do not write closures/<stack>.yaml")
    resolve.set_defaults(handler=_run_resolve)
