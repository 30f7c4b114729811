"""What the two-person rule's check (git-server-review) adds to a push to main, on this host.

A reviewer's merge of someone else's request is pushed with real git into a bare repository, once
with no update hook and once with a hook that runs the check as gitolite does (the layout of the
offline tests, tests/unit/test_git_two_person_rule.py). No root, no lab:

    .venv/bin/python benchmarks/git_review_check.py [--pushes 10]

On the VM gitolite's own update hook (Perl) runs as well in both cases, so the difference is what
the check adds: starting Python and a few git commands (rev-list, merge-base, merge-tree).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROGRAM = REPO / "blueprints" / "git_server" / "server_commands.py"
HOOK = """#!/bin/sh
out=$("{python}" "{vref}" "$1" "$2" "$3" "$2" "$3" W VREF/git-server-review) || exit 1
if printf '%s\\n' "$out" | grep -q '^VREF/'; then printf '%s\\n' "$out" >&2; exit 1; fi
exit 0
"""


def _git(cwd: Path, *arguments: str, user: str = "") -> None:
    environment = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@a",
                   "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@a", "GL_USER": user}
    subprocess.run(["git", *arguments], cwd=cwd, env=environment, check=True, capture_output=True)


def _pushes(root: Path, label: str, count: int) -> list[float]:
    tom, priya = root / "tom", root / "priya"
    seconds = []
    for index in range(count):
        branch = f"request/tom.evans/{label}-{index}"
        _git(tom, "fetch", "-q")
        _git(tom, "switch", "-q", "-C", branch, "origin/main")
        with (tom / "allowlist.txt").open("a") as handle:
            handle.write(f"{label}-{index}\n")
        _git(tom, "commit", "-qam", f"Ask {index}")
        _git(tom, "push", "-q", "origin", "HEAD", user="tom.evans")
        _git(priya, "fetch", "-q")
        _git(priya, "switch", "-q", "-C", "main", "origin/main")
        _git(priya, "merge", "-q", "--no-ff", "--no-edit", f"origin/{branch}")
        start = time.perf_counter()
        _git(priya, "push", "-q", "origin", "main", user="priya.shah")
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="review-check-") as folder:
        root = Path(folder)
        vref = root / "local" / "VREF" / "git-server-review"
        vref.parent.mkdir(parents=True)
        vref.symlink_to(PROGRAM)
        (root / "local" / "review-rules.json").write_text(json.dumps(
            {"protected": {"package-requests": ["priya.shah", "sam.patel"]}}))
        base = root / "repositories"
        bare = base / "package-requests.git"
        _git(root, "init", "-q", "--bare", "-b", "main", str(bare))
        seed = root / "seed"
        _git(root, "init", "-q", "-b", "main", str(seed))
        (seed / "allowlist.txt").write_text("start\n")
        _git(seed, "add", "allowlist.txt")
        _git(seed, "commit", "-qm", "Start")
        _git(seed, "push", "-q", str(bare), "main")
        for name in ("tom", "priya"):
            _git(root, "clone", "-q", str(bare), name)
        os.environ.update(GL_REPO="package-requests", GL_REPO_BASE=str(base))
        without = _pushes(root, "plain", args.pushes)
        hook = bare / "hooks" / "update"
        hook.write_text(HOOK.format(python=sys.executable, vref=vref))
        hook.chmod(0o755)
        checked = _pushes(root, "checked", args.pushes)
    load = os.getloadavg()[0]
    for label, values in (("no check", without), ("git-server-review", checked)):
        print(f"{label:>18}: {args.pushes} reviewed-merge pushes, median {statistics.median(values) * 1000:.0f} ms, "
              f"max {max(values) * 1000:.0f} ms (load {load:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
