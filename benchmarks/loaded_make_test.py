"""`make test` from a fresh clone while a CPU hog holds one core: does it stay green on a busy machine?

Run as root from the repository (make test builds the lab):

    sudo .venv/bin/python benchmarks/loaded_make_test.py [--runs 3] [--hog-cores 1]

Each run clones the repository into a new temporary folder at the commit HEAD was when the script started
(so every run tests the same commit, whatever is committed meanwhile), starts Debian's stress-ng on
``--hog-cores`` cores (installed with apt when missing), runs `make test` there as CI does, stops the hog,
and prints the run's exit status, its wall time, the machine's load (the 1-minute load average, read every
30 s: median and highest) and its stage table (out/make-test-timings.txt). Runs follow one another; the
script stops at the first red run. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import stage_timings  # beside this script

REPO = Path(__file__).resolve().parent.parent


def _ensure_stress_ng() -> str:
    found = shutil.which("stress-ng")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "stress-ng"], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return shutil.which("stress-ng") or "stress-ng"


def one_run(number: int, commit: str, hog_cores: int, stress_ng: str) -> int:
    work = Path(tempfile.mkdtemp(prefix=f"loaded-make-test-{number}-"))
    clone = work / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)
    log = work / "make-test.log"
    hog = subprocess.Popen([stress_ng, "--cpu", str(hog_cores), "--quiet"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    loads: list[float] = []
    done = threading.Event()

    def sample_load() -> None:
        while not done.wait(30):
            loads.append(float(Path("/proc/loadavg").read_text().split()[0]))

    sampler = threading.Thread(target=sample_load, daemon=True)
    began = time.monotonic()
    sampler.start()
    try:
        with log.open("w") as output:
            make = subprocess.Popen(["make", "test"], cwd=clone, stdout=output, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                status = make.wait()
            except BaseException:
                # Stopped (Ctrl-C, SIGTERM): make test and everything it started stop too.
                os.killpg(make.pid, signal.SIGTERM)
                make.wait()
                print(f"stopped: a lab may still be up (sudo {REPO}/.venv/bin/blueprints lab down)", file=sys.stderr)
                raise
    finally:
        done.set()
        hog.terminate()
        hog.wait()
    took = time.monotonic() - began
    print(f"== run {number} of {commit[:12]}: exit {status} in {took / 60:.1f} min with stress-ng --cpu {hog_cores} "
          f"beside it (log {log})")
    if loads:
        print(f"   load average (1 min, every 30 s): median {statistics.median(loads):.1f}, "
              f"highest {max(loads):.1f}, on {os.cpu_count()} cores")
    stage_timings.report(clone / "out" / "make-test-timings.txt")
    return status


def _stop(signum: int, _frame: object) -> None:
    # Ending the script ends the run in hand: its finally blocks stop stress-ng.
    raise SystemExit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="consecutive runs (default: 3)")
    parser.add_argument("--hog-cores", type=int, default=1, help="cores stress-ng keeps busy (default: 1)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("make test builds the lab: sudo .venv/bin/python benchmarks/loaded_make_test.py", file=sys.stderr)
        return 2
    if args.runs < 1 or args.hog_cores < 1:
        print("--runs and --hog-cores: whole numbers from 1", file=sys.stderr)
        return 2
    stress_ng = _ensure_stress_ng()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    for number in range(1, args.runs + 1):
        if one_run(number, commit, args.hog_cores, stress_ng) != 0:
            print(f"run {number} failed: stopping")
            return 1
    print(f"{args.runs} consecutive green runs of {commit[:12]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
