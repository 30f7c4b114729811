"""Every command a guide shows is run here, in a copy of the repository, and its shown output checked.

The guides are the site's pages (docs/*.md) and each role's README (blueprints/<role>/README.md),
which the administrators' guide sends readers to for the commands on a role's machine.
A fenced ``console`` block holds ``$ command`` lines, each followed by the output the guide
promises (``...`` skips lines). A command is run unless its trailing comment marks it:
  ``# Azure-only``  needs a subscription (az, pulumi)
  ``# lab-only``    needs root and the lab (sudo blueprints lab ...); its arguments are parsed
  ``# VM-only``     runs on a role's machine: allowed only for a program a role installs and the
                    lab's acceptance suites (tests/acceptance/) run, by program name
  ``# root-only``   a Makefile target that installs host packages (sudo make ...)
  ``# CI-only``     ``make test``, which is what runs this test
  ``# network-only`` the Debian provenance script, which reads deb.debian.org
  ``# exits 2``     run, and expected to fail with exit code 2
  ``# exits 3``     run, and expected to exit 3 (`blueprints plan --diff` when data would be lost)
``<!-- patch -->`` before a ``diff`` block applies it to the copy, in page order.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cli.main import build_parser
from tests.conftest import REPO

ROLE_DIRS = sorted(readme.parent for readme in (REPO / "blueprints").glob("*/README.md"))
GUIDES = sorted((REPO / "docs").glob("*.md")) + [role / "README.md" for role in ROLE_DIRS]
ACCEPTANCE = REPO / "tests" / "acceptance"
VENV_BIN = Path(sys.executable).parent
RUNNABLE = {"blueprints", "make", "cp", "grep"}
MARKERS = ("Azure-only", "lab-only", "VM-only", "root-only", "CI-only", "network-only", "exits 2", "exits 3")
EXIT_CODES = {"exits 2": 2, "exits 3": 3}
SKIPPED = {"Azure-only", "lab-only", "VM-only", "root-only", "CI-only", "network-only"}
FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.M | re.S)
COMMENT = re.compile(r"\s+#\s+(?P<text>.*)$")


@dataclass
class Command:
    line: str  # without the trailing comment
    marker: str | None
    expected: list[str] = field(default_factory=list)


@dataclass
class Step:
    kind: str  # "console" | "patch"
    commands: list[Command] = field(default_factory=list)
    patch: str = ""


def parse_guide(text: str) -> tuple[list[Step], list[str]]:
    """The page's steps in order, and every rule it breaks."""
    steps: list[Step] = []
    problems: list[str] = []
    for fence in FENCE.finditer(text):
        info = fence["info"].strip()
        body = "\n".join(line[len(fence["indent"]):] for line in fence["body"].splitlines())
        before = text[:fence.start()].rstrip().splitlines()
        if info == "diff" and before and before[-1].strip() == "<!-- patch -->":
            steps.append(Step("patch", patch=body + "\n"))
            continue
        if info != "console":
            continue
        step = Step("console")
        for raw in body.splitlines():
            if raw.startswith("$ "):
                command = raw[2:]
                comment = COMMENT.search(command)
                line = command[:comment.start()].strip() if comment else command.strip()
                marker = next((m for m in MARKERS if comment["text"].startswith(m)), None) if comment else None
                step.commands.append(Command(line, marker))
                problems.extend(_rule_problems(line, marker))
            elif step.commands and raw.strip() and raw.strip() != "...":
                step.commands[-1].expected.append(raw.strip())
            elif not step.commands and raw.strip():
                problems.append(f"console output before any command: {raw.strip()!r}")
        steps.append(step)
    return steps, problems


def _makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.M))


def _rule_problems(line: str, marker: str | None) -> list[str]:
    words = line.split()
    if marker == "Azure-only":
        return [] if words[0] in {"az", "pulumi"} else [f"{line!r}: only az and pulumi commands are Azure-only"]
    if marker == "lab-only":
        if words[:3] != ["sudo", "blueprints", "lab"]:
            return [f"{line!r}: only `sudo blueprints lab ...` is lab-only"]
        commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
        if "lab" in commands:  # once the lab exists, its documented arguments must parse
            try:
                build_parser().parse_args(words[2:])
            except SystemExit:
                return [f"{line!r}: `blueprints lab` does not accept these arguments"]
        return []
    if marker == "VM-only":
        return _vm_only_problems(line, words[1:] if words[0] == "sudo" else words)
    if marker == "root-only":
        ok = words[:2] == ["sudo", "make"] and len(words) == 3 and words[2] in _makefile_targets()
        return [] if ok else [f"{line!r}: root-only is for `sudo make <target>` of this Makefile"]
    if marker == "network-only":
        ok = words == [".venv/bin/python", "docs/tooling/debian_packages.py"]
        return [] if ok else [f"{line!r}: network-only is for the Debian provenance script"]
    if marker == "CI-only":
        return [] if words == ["make", "test"] else [f"{line!r}: only `make test` is CI-only"]
    if words[:2] == ["make", "test"]:
        return [f"{line!r}: `make test` runs this test; mark it # CI-only"]
    segments = [segment.split()[0] for segment in line.split("|") if segment.split()]
    unknown = [word for word in segments if word not in RUNNABLE]
    if unknown:
        return [f"{line!r}: {unknown[0]} is not run by the guide test; mark it (# Azure-only, # lab-only, "
                "# root-only, # CI-only) or show a command the test can run"]
    return []


def _matches(files: list[Path], pattern: str) -> bool:
    return any(re.search(pattern, path.read_text(encoding="utf-8", errors="replace")) for path in files)


def _vm_only_problems(line: str, words: list[str]) -> list[str]:
    program = re.escape(words[0] if words else "")
    role_files = [path for role in ROLE_DIRS for path in role.rglob("*")
                  if path.is_file() and path.name != "README.md" and path.suffix != ".pyc"]
    if not _matches(role_files, rf"/usr/local/s?bin/{program}(?![\w-])"):
        return [f"{line!r}: VM-only is for a program a role installs; no role under blueprints/ installs "
                f"{words[0]} in /usr/local/sbin or /usr/local/bin"]
    # The acceptance suites run commands on the machines as strings: "program ..." or f"program ...".
    if not _matches(sorted(ACCEPTANCE.glob("test_*.py")), rf"[\"']{program}(?![\w-])"):
        return [f"{line!r}: no acceptance suite in tests/acceptance/ runs {words[0]}; add one, or do not show it"]
    return []


def _workspace(target: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _run(command: Command, workspace: Path) -> subprocess.CompletedProcess[str]:
    line = command.line
    if line.startswith("make "):
        # The copy has no .venv of its own: use this one, and never reinstall it from here.
        venv = VENV_BIN.parent
        line = f"make VENV={venv} -o {venv}/.installed " + line[len("make "):]
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(workspace)}
    return subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("guide", GUIDES, ids=[g.relative_to(REPO).as_posix() for g in GUIDES])
def test_every_command_in_the_guide_runs_as_shown(guide, tmp_path, plan_cache):
    # One plan cache for every page's copy and the in-process commands of other tests: they plan the
    # same stacks with the same code, and a page that edits a stack or patches the code gets plans of
    # its own (the cache's key holds both).
    steps, problems = parse_guide(guide.read_text(encoding="utf-8"))
    assert not problems, f"{guide.relative_to(REPO)}:\n" + "\n".join(problems)
    workspace = _workspace(tmp_path)
    for step in steps:
        if step.kind == "patch":
            applied = subprocess.run(["git", "apply", "-"], input=step.patch, cwd=workspace,
                                     capture_output=True, text=True, check=False)
            assert applied.returncode == 0, f"{guide.name}: a patch no longer applies: {applied.stderr}"
            continue
        for command in step.commands:
            if command.marker in SKIPPED:
                continue
            result = _run(command, workspace)
            expected_code = EXIT_CODES.get(command.marker or "", 0)
            output = result.stdout + result.stderr
            assert result.returncode == expected_code, (
                f"{guide.name}: `{command.line}` exited {result.returncode}, expected {expected_code}:\n{output}")
            lines = {line.strip() for line in output.splitlines()}
            for shown in command.expected:
                assert shown in lines, f"{guide.name}: `{command.line}` no longer prints {shown!r}:\n{output}"


def test_the_rule_catches_unmarked_and_mismarked_commands():
    page = "\n".join([
        "```console",
        "$ az login",
        "$ pulumi up   # Azure-only",
        "$ blueprints validate stacks/example.yaml",
        "$ rm -rf /   # Azure-only",
        "$ make test",
        "$ sudo make no-such-target   # root-only",
        "$ sudo blueprints lab up   # lab-only",
        "```",
    ])
    steps, problems = parse_guide(page)
    assert [c.marker for c in steps[0].commands] == [None, "Azure-only", None, "Azure-only", None, "root-only",
                                                     "lab-only"]
    assert len(problems) == 4
    assert "'az login': az is not run by the guide test" in problems[0]
    assert "only az and pulumi commands are Azure-only" in problems[1]
    assert "runs this test; mark it # CI-only" in problems[2]
    assert "root-only is for" in problems[3]


def test_patches_and_expected_output_are_parsed():
    page = "\n".join([
        "<!-- patch -->", "```diff", "--- a/x", "+++ b/x", "```", "",
        "  ```console", "  $ blueprints validate s.yaml   # exits 2", "  s.yaml: 1 problem found", "  ...", "  ```",
    ])
    steps, problems = parse_guide(page)
    assert problems == []
    assert steps[0].kind == "patch" and steps[0].patch.startswith("--- a/x")
    assert steps[1].commands[0].line == "blueprints validate s.yaml"
    assert steps[1].commands[0].marker == "exits 2"
    assert steps[1].commands[0].expected == ["s.yaml: 1 problem found"]


def test_vm_only_is_for_programs_a_role_installs_and_the_lab_runs():
    page = "\n".join([
        "```console",
        "$ sudo git-server-apply /etc/trust-blueprints/git-server.yaml   # VM-only",
        "$ mirror-allowlist show   # VM-only: the lists in force",
        "$ sudo rm -rf /srv   # VM-only",
        "$ blueprints validate stacks/example.yaml   # VM-only",
        "```",
    ])
    steps, problems = parse_guide(page)
    assert [c.marker for c in steps[0].commands] == ["VM-only"] * 4
    assert len(problems) == 2
    assert "no role under blueprints/ installs rm in /usr/local/sbin" in problems[0]
    assert "no role under blueprints/ installs blueprints" in problems[1]


def test_vm_only_needs_an_acceptance_suite_that_runs_the_program(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "ACCEPTANCE", tmp_path)
    (tmp_path / "test_role.py").write_text('host.run("git-server-apply settings.yaml")\n')
    page = "\n".join([
        "```console",
        "$ sudo git-server-apply /etc/trust-blueprints/git-server.yaml   # VM-only",
        "$ sudo git-server-restore --list   # VM-only",
        "```",
    ])
    _, problems = parse_guide(page)
    assert problems == ["'sudo git-server-restore --list': no acceptance suite in tests/acceptance/ runs "
                        "git-server-restore; add one, or do not show it"]


def test_role_readmes_are_guides():
    names = [guide.relative_to(REPO).as_posix() for guide in GUIDES]
    for role in ("analytics", "git_server", "package_mirror", "gateway"):
        assert f"blueprints/{role}/README.md" in names
