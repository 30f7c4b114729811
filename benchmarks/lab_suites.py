"""How long the lab and acceptance suites take against the running lab, in one process and side by side.

Run as root from the repository, with a lab up (`sudo blueprints lab up`):

    sudo .venv/bin/python benchmarks/lab_suites.py [--workers 1 3] [--acceptance-only]

For each worker count: `blueprints lab test --workers N` (tests/acceptance/lab_schedule.py groups the
tests), its wall time and exit status, and each group's own time (the sum of its tests' setup, call and
teardown, read from pytest's durations), which shows the longest group: the floor side by side. Each run
changes the lab as the suites do (test users, servers left running), so compare runs on labs in the same
state, e.g. one fresh `lab up` each. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.acceptance import lab_schedule  # noqa: E402

DURATION = re.compile(r"^\s*([\d.]+)s (?:setup|call|teardown)\s+(\S+)")


def group_seconds(output: str) -> dict[str, float]:
    """Seconds per group (or 'alone') from pytest's --durations=0 lines."""
    totals: dict[str, float] = collections.Counter()
    for line in output.splitlines():
        match = DURATION.match(line)
        if not match:
            continue
        nodeid = match.group(2)
        key = "alone" if lab_schedule.runs_alone(*lab_schedule.module_and_test(nodeid)) else \
            lab_schedule.scope_of(nodeid)
        totals[key] += float(match.group(1))
    return dict(totals)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[3], help="worker counts to time (default: 3)")
    parser.add_argument("--acceptance-only", action="store_true", help="only tests/acceptance")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the lab needs root: sudo .venv/bin/python benchmarks/lab_suites.py", file=sys.stderr)
        return 2
    for workers in args.workers:
        argv = [sys.executable, "-m", "cli", "lab", "test", "--workers", str(workers),
                *(["--acceptance-only"] if args.acceptance_only else []), "--", "--durations=0", "-q"]
        began = time.monotonic()
        result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
        took = time.monotonic() - began
        print(f"== lab test --workers {workers}: {took:.0f} s (exit {result.returncode})")
        for group, seconds in sorted(group_seconds(result.stdout).items(), key=lambda item: -item[1]):
            print(f"   {group:<10} {seconds:6.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
