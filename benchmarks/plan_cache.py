"""Wall time of plan-based commands with an empty plan cache (cold) and a filled one (warm).

Times `blueprints docs --check` on every stack and `blueprints cost stacks/example.yaml`, each
as a fresh process. A cold run gets an empty cache directory of its own; the warm runs share
one filled by a run beforehand. Cold and warm runs alternate, so that other work on a shared
machine weighs on both alike. The commands run in a copy of the working tree taken at the
start (its tracked and untracked files, as `git ls-files` lists them), so that edits made
meanwhile neither turn a warm run cold nor mix two versions of the code; the repository's own
cache (.cache/plans) is left alone. Prints medians; asserts nothing.

    .venv/bin/python benchmarks/plan_cache.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV = "BLUEPRINTS_PLAN_CACHE"  # validation.plan_cache.ENV, not imported: the benchmark only runs commands
COMMANDS = {
    "docs --check (all stacks)": (["docs", "--check"], {0, 1}),  # 1: the committed reference is stale
    "cost stacks/example.yaml": (["cost", "stacks/example.yaml"], {0}),
}


def entries(cache: Path) -> set[str]:
    return {path.name for path in cache.glob("*.json")} if cache.is_dir() else set()


def snapshot(target: Path) -> Path:
    """A copy of the working tree's files (tracked and untracked, not ignored) in ``target``."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def timed(tree: Path, arguments: list[str], cache: Path, allowed: set[int]) -> float:
    """One `blueprints` process in ``tree`` with the cache in ``cache``; its wall time in seconds."""
    command = [sys.executable, "-m", "cli", *arguments]
    environment = {**os.environ, ENV: str(cache), "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=tree, env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.perf_counter() - start
    if completed.returncode not in allowed:
        sys.exit(f"blueprints {' '.join(arguments)} exited {completed.returncode}:\n{completed.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plan-cache-benchmark-") as scratch:
        tree = snapshot(Path(scratch) / "tree")
        for label, (arguments, allowed) in COMMANDS.items():
            warm_cache = Path(scratch) / f"warm-{len(arguments)}-{arguments[0]}"
            timed(tree, arguments, warm_cache, allowed)  # fills the warm cache
            filled = entries(warm_cache)
            cold: list[float] = []
            warm: list[float] = []
            for run in range(args.runs):
                cold.append(timed(tree, arguments, Path(scratch) / f"cold-{arguments[0]}-{run}", allowed))
                warm.append(timed(tree, arguments, warm_cache, allowed))
            missed = entries(warm_cache) - filled
            print(f"{label:<28} cold median {statistics.median(cold):6.2f} s (runs: "
                  f"{', '.join(f'{t:.2f}' for t in cold)}); warm median {statistics.median(warm):6.2f} s "
                  f"(runs: {', '.join(f'{t:.2f}' for t in warm)})")
            if missed:
                print(f"  note: the warm runs planned {len(missed)} stack(s) again: the cache missed")


if __name__ == "__main__":
    main()
