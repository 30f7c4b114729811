"""Hostile command-line arguments: every path a command reads or writes is checked before any work.

Output targets of the wrong kind (a directory where a file goes, a file where a directory goes, a
device, a missing or unwritable folder) and input files that are not regular files (a FIFO, a
device, a directory) end with exit code 2 and a message naming the argument, never a traceback
or a hang, and leave nothing written. Each case runs in-process through cli.main.main.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.main import INPUT, INPUT_LIMITS, OUTPUT_ARGUMENTS, OUTPUT_FILE, build_parser, path_kind
from tests.conftest import EXAMPLE
from validation.yaml_source import MAX_FILE_BYTES

HANG_SECONDS = 20
# Words in an option's destination that say it names a path.
PATH_WORDS = ("file", "output", "dir", "path", "diff")


@contextlib.contextmanager
def _hang_guard() -> Iterator[None]:
    def hung(signum: int, frame: Any) -> None:
        raise TimeoutError(f"the command did not finish in {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(argv: list[str], guard: bool = True) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    with _hang_guard() if guard else contextlib.nullcontext(), contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(out):
        code = main_of(argv)
    return code, err.getvalue()


def main_of(argv: list[str]) -> int:
    from cli.main import main

    return main(argv)


def _commands(parser: argparse.ArgumentParser,
              words: tuple[str, ...] = ()) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command and its parser ("git-server settings" for a nested one)."""
    subparsers = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    if not subparsers:
        yield " ".join(words), parser
    for action in subparsers:
        for name, child in action.choices.items():
            yield from _commands(child, (*words, name))


COMMANDS = dict(_commands(build_parser()))


def _path_options() -> list[tuple[str, str, argparse.Action]]:
    found = []
    for command, parser in COMMANDS.items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or action.dest in ("command",):
                continue
            if any(word in action.dest for word in PATH_WORDS) or (action.metavar or "") in ("FILE", "DIR"):
                found.append((command, action.dest, action))
    return found


def _option(command: str, dest: str) -> str:
    action = next(a for a in COMMANDS[command]._actions if a.dest == dest)
    return action.option_strings[0] if action.option_strings else ""


# --- every path argument is declared -------------------------------------------------------------

def test_every_path_option_of_every_command_says_what_it_must_be():
    undeclared = [f"{command} {dest}" for command, dest, action in _path_options()
                  if path_kind(command, dest) is None and action.dest not in ("check",)]
    assert not undeclared, f"add these to cli.main INPUT_LIMITS or OUTPUT_ARGUMENTS: {undeclared}"


def test_the_declared_outputs_exist():
    for command, dest in OUTPUT_ARGUMENTS:
        assert command in COMMANDS and any(a.dest == dest for a in COMMANDS[command]._actions), (command, dest)


# --- outputs ---------------------------------------------------------------------------------------

OUTPUTS = sorted(OUTPUT_ARGUMENTS.items())


def _bad_targets(tmp_path: Path, kind: str) -> list[tuple[str, str]]:
    """(target, words the message must hold) for an output of ``kind``."""
    existing_file = tmp_path / "existing.txt"
    existing_file.write_text("kept\n")
    targets = [
        ("/dev/full", "character device"),
        (str(tmp_path / "missing" / "deeper" / "x.out") if kind == OUTPUT_FILE else str(existing_file / "x"),
         "does not exist" if kind == OUTPUT_FILE else "is a file, not a directory"),
        ("/proc/trust-blueprints-test/x.out" if kind == OUTPUT_FILE else "/proc/trust-blueprints-test",
         "cannot be"),
    ]
    if kind == OUTPUT_FILE:
        targets.append((str(tmp_path), "is a directory"))
    else:
        targets.append((str(existing_file), "is a file"))
    return targets


@pytest.mark.parametrize("command, dest, kind", [(c, d, k) for (c, d), k in OUTPUTS])
def test_a_bad_output_target_is_refused_before_any_work(tmp_path, command, dest, kind):
    option = _option(command, dest)
    for target, words in _bad_targets(tmp_path, kind):
        before = sorted(p.name for p in tmp_path.rglob("*"))
        code, err = run([*command.split(), option, target, str(EXAMPLE)])
        assert code == 2, (target, err)
        assert target in err and words in err, err
        assert "Traceback" not in err and "Planning" not in err, err  # refused before the plan
        assert sorted(p.name for p in tmp_path.rglob("*")) == before, "something was written"
    assert (tmp_path / "existing.txt").read_text() == "kept\n"


def test_plan_writes_its_output_whole(tmp_path):
    target = tmp_path / "plan.json"
    target.write_text("old\n")
    code, err = run(["plan", "--json", "-o", str(target), str(EXAMPLE)], guard=False)  # a real plan: slow
    assert code in (0, 1), err
    assert target.read_text().startswith("{")
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"], "a temporary file was left behind"


# --- inputs ----------------------------------------------------------------------------------------

@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "stack.yaml"
    os.mkfifo(path)
    return path


INPUT_COMMANDS = sorted({(command, dest) for command, dest, _ in _path_options() if path_kind(command, dest) == INPUT})


def _input_argv(command: str, dest: str, path: Path) -> list[str]:
    option = _option(command, dest)
    argv = [*command.split()]
    if option:
        argv += [option, str(path), str(EXAMPLE)]
    else:
        argv.append(str(path))
    return argv


@pytest.mark.parametrize("command, dest", INPUT_COMMANDS)
def test_an_input_that_is_not_a_regular_file_is_refused_without_hanging(tmp_path, fifo, command, dest):
    for target, words in ((fifo, "named pipe"), (Path("/dev/zero"), "character device"),
                          (tmp_path, "is a directory")):
        code, err = run(_input_argv(command, dest, target))
        assert code == 2, (target, err)
        assert f"{target}: (file): " in err and words in err, err


@pytest.mark.parametrize("command, dest", INPUT_COMMANDS)
def test_an_input_over_its_size_limit_is_refused_before_it_is_read(tmp_path, command, dest):
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(INPUT_LIMITS[dest] + 1)  # sparse: large on paper, nothing to read
    code, err = run(_input_argv(command, dest, big))
    assert code == 2 and f"the limit is {INPUT_LIMITS[dest]}" in err, err


def _stack_with_allowlists_file(directory: Path, name: str) -> Path:
    document = yaml.safe_load(EXAMPLE.read_text())
    document["roles"]["package_mirror"]["allowlists_file"] = name
    path = directory / "stack.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.mark.parametrize("make", ["fifo", "zero", "directory", "huge"])
def test_an_allowlists_file_that_is_not_a_regular_file_is_named(tmp_path, make):
    name = "allow.yaml"
    target = tmp_path / name
    if make == "fifo":
        os.mkfifo(target)
    elif make == "zero":
        target.symlink_to("/dev/zero")
    elif make == "directory":
        target.mkdir()
    else:
        with target.open("wb") as handle:
            handle.truncate(MAX_FILE_BYTES + 1)
    stack = _stack_with_allowlists_file(tmp_path, name)
    code, err = run(["validate", "--no-plan", str(stack)])
    assert code == 2 and "roles.package_mirror.allowlists_file" in err, err
    assert {"fifo": "named pipe", "zero": "character device", "directory": "directory",
            "huge": "the limit is"}[make] in err, err


def test_the_plan_cache_reads_an_included_fifo_without_hanging(tmp_path, monkeypatch):
    from validation import plan_cache

    os.mkfifo(tmp_path / "allow.yaml")
    stack = _stack_with_allowlists_file(tmp_path, "allow.yaml")
    with _hang_guard():
        assert plan_cache.plan_key(stack)  # the FIFO counts as absent, read never


def test_a_write_that_fails_once_work_has_started_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    import errno

    from cli import main as cli_main
    from tests.policy.fixtures import build
    from validation import plan_recorder

    def full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(plan_recorder, "record_plan", lambda path: build("TB-VM-012", "violating"))
    monkeypatch.setattr(cli_main, "write_file_atomically", full)
    target = tmp_path / "plan.json"
    code, err = run(["plan", "--json", "-o", str(target), str(EXAMPLE)], guard=False)
    assert code == 2 and f"blueprints plan: {target}: No space left on device" in err, err
