"""Wall time and peak memory of `blueprints plan` on a stack, against its floor.

The floor is a process that registers the same azure-native resource types, as many of each,
under mocks, with no project logic. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/plan_time.py [STACK_FILE] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def timed(command: list[str]) -> tuple[float, float]:
    """Seconds and peak resident MiB of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed: {process.stderr.read().decode() if process.stderr else ''}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack_file", nargs="?", default="stacks/example.yaml")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from validation.plan_recorder import record_plan

    types = [resource.type for resource in record_plan(args.stack_file).custom_resources()]
    count = len(types)
    python = sys.executable
    plan_runs = [timed([python, "-m", "blueprints", "plan", args.stack_file]) for _ in range(args.runs)]
    floor_runs = [timed([python, str(HERE / "plan_floor_program.py"), json.dumps(types)]) for _ in range(args.runs)]

    plan_median = statistics.median(t for t, _ in plan_runs)
    floor_median = statistics.median(t for t, _ in floor_runs)
    print(f"stack                    {args.stack_file}")
    print(f"azure resources          {count}")
    print(f"plan wall time (median of {args.runs})   {plan_median:.2f} s   runs: "
          + ", ".join(f"{t:.2f}" for t, _ in plan_runs))
    print(f"floor wall time (median of {args.runs})  {floor_median:.2f} s   runs: "
          + ", ".join(f"{t:.2f}" for t, _ in floor_runs))
    print(f"plan / floor             {plan_median / floor_median:.2f}x")
    print(f"plan peak memory         {max(m for _, m in plan_runs):.0f} MiB")
    print(f"floor peak memory        {max(m for _, m in floor_runs):.0f} MiB")


if __name__ == "__main__":
    main()
