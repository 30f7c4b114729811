"""Wall and CPU time of the offline test suite (`pytest -n 2 -m "not lab"`), as medians of several runs.

CPU time (user + system of pytest and every worker it started) is printed beside wall time
because this machine is often busy with other work: wall time then grows, CPU time barely does.
The load average before and after each run says how busy it was. `--per-directory` times each
test directory on its own instead (one pytest per directory, in turn), to see where time goes.

    .venv/bin/python benchmarks/offline_suite.py [--runs 3] [--workers 2] [--per-directory] [--by-file 25]
        [-- PYTEST_ARGS...]

`--by-file N` also prints the N test files with the most test time in the last run (setup, call and
teardown of each test, summed per file from pytest's JUnit report; with workers, summed over them).

Prints figures; asserts nothing. A run whose tests fail is reported as such (its time still counts:
a failing test usually costs what a passing one does).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
# The lab's machine suites need root and a running lab; `-m "not lab"` deselects them anyway.
NOT_OFFLINE = {"acceptance"}
SUMMARY = re.compile(r"^=*\s*(\d+ (passed|failed|error|skipped).*?)\s*=*$")


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float  # user + system seconds of pytest and the workers it waited for
    load: tuple[float, float]  # one-minute load average before and after
    summary: str  # pytest's last line: how many passed, failed, ...
    status: int


def timed(command: list[str]) -> Run:
    before = os.getloadavg()[0]
    with tempfile.TemporaryFile() as output:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        output.seek(0)
        lines = output.read().decode(errors="replace").splitlines()
    summary = next((m.group(1) for line in reversed(lines) if (m := SUMMARY.match(line.strip()))), "")
    if not summary and lines:
        summary = lines[-1].strip()
    return Run(wall, usage.ru_utime + usage.ru_stime, (before, os.getloadavg()[0]), summary, process.returncode)


def by_file(report: Path) -> Counter[str]:
    seconds: Counter[str] = Counter()
    # The report is the one our own pytest run just wrote, not outside input.
    for case in ElementTree.parse(report).iter("testcase"):  # noqa: S314
        # classname is the dotted module path, plus the class for tests inside one.
        module = case.get("classname", "").split(".")
        while module and module[-1][:1].isupper():
            module.pop()
        seconds["/".join(module) + ".py"] += float(case.get("time", 0))
    return seconds


def pytest_command(workers: int, targets: list[str], extra: list[str]) -> list[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-m", "not lab", "-p", "no:cacheprovider"]
    command += ["-n", str(workers)] if workers > 0 else ["-p", "no:xdist"]
    return command + extra + targets


def _median_line(label: str, runs: list[Run]) -> str:
    walls = ", ".join(f"{run.wall:.0f}" for run in runs)
    cpus = ", ".join(f"{run.cpu:.0f}" for run in runs)
    failed = sum(1 for run in runs if run.status not in (0, 5))  # 5: no test collected
    note = f"; {failed} of {len(runs)} runs had failures" if failed else ""
    return (f"{label:<12} wall median {statistics.median(r.wall for r in runs):7.1f} s (runs: {walls}); "
            f"cpu median {statistics.median(r.cpu for r in runs):7.1f} s (runs: {cpus}){note}")


def directories() -> list[str]:
    found = sorted(path.name for path in TESTS.iterdir()
                   if path.is_dir() and path.name not in NOT_OFFLINE and any(path.rglob("test_*.py")))
    return [f"tests/{name}" for name in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="pytest-xdist workers; 0 runs in one process")
    parser.add_argument("--per-directory", action="store_true", help="time each test directory on its own")
    parser.add_argument("--by-file", type=int, default=0, metavar="N", help="print the N slowest test files")
    argv = sys.argv[1:]
    ours, extra = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = parser.parse_args(ours)
    if args.runs < 1:
        parser.error(f"--runs: must be 1 or more (got {args.runs})")
    if args.workers < 0:
        parser.error(f"--workers: must be 0 or more (got {args.workers})")

    groups = [[target] for target in directories()] if args.per_directory else [[]]
    results: dict[str, list[Run]] = {}
    files: Counter[str] = Counter()
    report = Path(tempfile.mkdtemp(prefix="offline-suite-")) / "junit.xml"
    for number in range(1, args.runs + 1):
        for targets in groups:
            label = targets[0].removeprefix("tests/") if targets else ("selection" if extra else "whole suite")
            junit = [f"--junitxml={report}"] if args.by_file else []
            run = timed(pytest_command(args.workers, targets, extra + junit))
            if args.by_file and number == args.runs and report.exists():
                files.update(by_file(report))
            results.setdefault(label, []).append(run)
            print(f"run {number} {label:<12} wall {run.wall:7.1f} s  cpu {run.cpu:7.1f} s  "
                  f"load {run.load[0]:.1f} -> {run.load[1]:.1f}  {run.summary}", flush=True)
    print(f"medians of {args.runs} run(s), {args.workers or 'no'} xdist workers, on {os.cpu_count()} cores:")
    for label, runs in results.items():
        print(_median_line(label, runs))
    if args.per_directory:
        total_wall = sum(statistics.median(r.wall for r in runs) for runs in results.values())
        total_cpu = sum(statistics.median(r.cpu for r in runs) for runs in results.values())
        print(f"{'sum':<12} wall {total_wall:7.1f} s; cpu {total_cpu:7.1f} s")
    if files:
        print(f"slowest test files of the last run (test seconds, summed; {sum(files.values()):.0f} s in all):")
        for name, seconds in files.most_common(args.by_file):
            print(f"  {seconds:7.1f}  {name}")


if __name__ == "__main__":
    main()
