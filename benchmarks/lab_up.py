"""How long the lab takes and how much memory it uses: cold and warm `lab up`, then `lab test`.

Run as root from the repository (it takes down any running lab first):

    sudo .venv/bin/python benchmarks/lab_up.py [STACK_FILE] [--warm-only] [--skip-test] [--workers N]

Cold means no cached base (it is removed first); warm reuses it. For each machine: boot (from
starting systemd-nspawn to cloud-init's first stage) and cloud-init (its first stage to the end
of its last), read from cloud-init's own status record inside the machine. Peak memory is the
largest sum, over the run, of the proportional set size (PSS) of every lab process: machines,
their supervisors and the lab's DNS server. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.layout import STATE_ROOT, read_record, running_labs  # noqa: E402
from lab.machines import run  # noqa: E402
from lab.network import lab_namespaces, processes_in  # noqa: E402


def _blueprints(*args: str) -> float:
    began = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, check=False)
    if result.returncode != 0:
        raise SystemExit(f"`blueprints {' '.join(args)}` failed with exit {result.returncode}")
    return time.monotonic() - began


def _lab_pids() -> set[int]:
    pids = {pid for netns in lab_namespaces() for pid in processes_in(netns)}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(STATE_ROOT).encode() in (entry / "cmdline").read_bytes():
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakMemory:
    """Samples the lab's total PSS every two seconds in the background."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, sum(_pss_kib(pid) for pid in _lab_pids()))
            self._stop.wait(2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _machine_phases(record: dict) -> list[tuple[str, str, float, float]]:
    rows = []
    for name, entry in record["machines"].items():
        status = json.loads(run(None, name, ["cat", "/run/cloud-init/status.json"], check=True).stdout)["v1"]
        # cloud-init records seconds since the kernel booted (the host's, shared by the machines).
        uptime_now = float(Path("/proc/uptime").read_text().split()[0])
        started = uptime_now - (time.time() - entry["started_at"])
        first = status["init-local"]["start"]
        last = status["modules-final"]["finished"]
        rows.append((name, entry["role"], first - started, last - first))
    return rows


def measure_up(stack_file: str, cold: bool) -> float:
    label = "cold" if cold else "warm"
    _blueprints("lab", "down", *(["--purge"] if cold else []))
    with PeakMemory() as memory:
        total = _blueprints("lab", "up", stack_file)
    record = read_record(running_labs()[0])
    print(f"\n== {label} lab up: {total:.0f} s in all")
    print(f"   base image build: {record['timings'].get('base_build', 0.0):.0f} s"
          + ("" if cold else " (cached)"))
    print(f"   network wiring: {record['timings'].get('network', 0.0):.1f} s; "
          f"overlays, seeds and secrets: {record['timings'].get('prepare', 0.0):.1f} s")
    print(f"   {'machine':<12} {'role':<15} {'boot s':>7} {'cloud-init s':>13}")
    for name, role, boot, cloud_init in _machine_phases(record):
        print(f"   {name:<12} {role:<15} {boot:>7.1f} {cloud_init:>13.1f}")
    print(f"   peak memory of the lab during up: {memory.peak_kib / 1024:.0f} MiB (PSS)")
    return memory.peak_kib


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack_file", nargs="?", default="stacks/example.yaml")
    parser.add_argument("--warm-only", action="store_true", help="skip the cold run (keep the cached base)")
    parser.add_argument("--skip-test", action="store_true", help="do not time `lab test`")
    parser.add_argument("--workers", type=int, default=3, help="`lab test --workers` (default: 3, as make test)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the lab needs root: sudo .venv/bin/python benchmarks/lab_up.py", file=sys.stderr)
        return 2
    peak = 0
    if not args.warm_only:
        peak = max(peak, measure_up(args.stack_file, cold=True))
    peak = max(peak, measure_up(args.stack_file, cold=False))
    if not args.skip_test:
        with PeakMemory() as memory:
            began = time.monotonic()
            result = subprocess.run([sys.executable, "-m", "cli", "lab", "test", "--workers", str(args.workers)],
                                    cwd=REPO, check=False)
            took = time.monotonic() - began
        peak = max(peak, memory.peak_kib)
        print(f"\n== lab test --workers {args.workers}: {took:.0f} s (exit {result.returncode}); "
              f"peak memory during the tests: {memory.peak_kib / 1024:.0f} MiB (PSS)")
    print(f"\npeak memory of the whole lab over the run: {peak / 1024:.0f} MiB (PSS)")
    _blueprints("lab", "down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
