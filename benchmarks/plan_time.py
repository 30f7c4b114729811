"""Wall time, CPU time and peak memory of `blueprints plan` on a stack, against its floor.

The floor is a process that registers the same azure-native resource types, as many of each,
under mocks, with no project logic. Plan and floor runs alternate, and CPU time is printed
beside wall time, because the machine may be busy with other work. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/plan_time.py [STACK_FILE] [--runs 5]
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
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


@dataclass(frozen=True)
class Run:
    wall: float  # seconds, start to exit
    cpu: float  # user + system seconds of the child: less sensitive to other work on the machine
    peak_mib: float  # peak resident memory


def timed(command: list[str]) -> Run:
    """One child process, measured."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if process.returncode != 0:
            errors.seek(0)
            sys.exit(f"{' '.join(command)} failed: {errors.read().decode(errors='replace')}")
    return Run(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def _line(label: str, runs: list[Run]) -> str:
    walls = ", ".join(f"{run.wall:.2f}" for run in runs)
    return (f"{label:<6} wall median {statistics.median(r.wall for r in runs):.2f} s (runs: {walls}); "
            f"cpu median {statistics.median(r.cpu for r in runs):.2f} s; "
            f"peak memory {max(r.peak_mib for r in runs):.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack_file", nargs="?", default="stacks/example.yaml")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from validation.plan_recorder import record_plan

    plan = record_plan(args.stack_file)
    types = [resource.type for resource in plan.custom_resources()]
    count = len(types)
    components = len(plan.resources) - count
    python = sys.executable
    plan_command = [python, "-m", "cli", "plan", args.stack_file]
    floor_command = [python, str(HERE / "plan_floor_program.py"), json.dumps(types)]
    # Alternate the two, so that other work on a shared machine weighs on both alike.
    plan_runs: list[Run] = []
    floor_runs: list[Run] = []
    for _ in range(args.runs):
        plan_runs.append(timed(plan_command))
        floor_runs.append(timed(floor_command))

    plan_wall = statistics.median(r.wall for r in plan_runs)
    floor_wall = statistics.median(r.wall for r in floor_runs)
    plan_cpu = statistics.median(r.cpu for r in plan_runs)
    floor_cpu = statistics.median(r.cpu for r in floor_runs)
    print(f"stack            {args.stack_file}")
    print(f"azure resources  {count} (plus {components} component resources in the plan)")
    print(_line("plan", plan_runs))
    print(_line("floor", floor_runs))
    print(f"plan / floor     wall {plan_wall / floor_wall:.2f}x, cpu {plan_cpu / floor_cpu:.2f}x")
    print(f"load average     {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"(on {os.cpu_count()} CPUs; other work on the machine inflates wall time)")


if __name__ == "__main__":
    main()
