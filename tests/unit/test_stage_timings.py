"""benchmarks/stage_timings.py, which times make test's stages: the table's totals when stages ran side by
side, and a stage run beside the labs (--low-priority): in a session of its own at a higher nice, with that
session's CPU share left equal to the others', and still stopped by a signal to its runner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO

SCRIPT = REPO / "benchmarks" / "stage_timings.py"


def _timings(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, timeout=60,
                          check=False)


def _lines(table: str) -> list[str]:
    return [" ".join(line.split()) for line in table.splitlines()]


def test_the_table_gives_the_span_only_when_stages_overlapped(tmp_path: Path) -> None:
    file = tmp_path / "timings.txt"
    file.write_text("lab up\t80.0\t0\t2026-12-03T10:00:00Z\n"
                    "lab suites\t400.0\t0\t2026-12-03T10:01:20Z\n"
                    "offline suites\t300.0\t1\t2026-12-03T10:00:05Z\n")
    table = _lines(_timings("report", str(file)).stdout)
    assert "total 13:00 780.0" in table
    # 10:00:00 to 10:08:00 (the lab suites' end): less than the sum.
    assert "first start to last end 8:00 480.0 (stages ran side by side)" in table
    assert "offline suites 5:00 300.0 FAILED (exit 1)" in table

    file.write_text("lint\t10.0\t0\t2026-12-03T10:00:00Z\nlab up\t80.0\t0\t2026-12-03T10:00:10Z\n")
    table = _lines(_timings("report", str(file)).stdout)
    assert "total 1:30 90.0" in table and not any(line.startswith("first start") for line in table)


def test_a_low_priority_stage_runs_in_a_session_of_its_own_and_gives_way(tmp_path: Path) -> None:
    file, seen = tmp_path / "timings.txt", tmp_path / "seen"
    probe = (f"import os; from pathlib import Path; group = Path('/proc/self/autogroup'); "
             f"Path({str(seen)!r}).write_text(f'{{os.getsid(0)}} {{os.getpid()}} {{os.nice(0)}} '"
             f"+ (group.read_text().split()[-1] if group.exists() else '-'))")
    ran = _timings("run", str(file), "probe", "--low-priority", "--", sys.executable, "-c", probe)
    assert ran.returncode == 0, ran.stderr
    session, pid, nice, group_nice = seen.read_text().split()
    assert session == pid, "the stage leads a session of its own"
    assert int(nice) == min(os.nice(0) + 10, 19)  # nice stops at 19
    # Where the kernel shares CPU time by session first, the session keeps an equal share: never starved.
    assert group_nice in ("-", "0")
    assert file.read_text().startswith("probe\t")

    plain = _timings("run", str(file), "plain", "--", sys.executable, "-c", probe)
    assert plain.returncode == 0, plain.stderr
    session, pid, nice, _ = seen.read_text().split()
    assert session != pid and int(nice) == os.nice(0)


def test_a_signal_to_the_runner_stops_a_low_priority_stage_and_is_recorded(tmp_path: Path) -> None:
    file, started = tmp_path / "timings.txt", tmp_path / "started"
    runner = subprocess.Popen([sys.executable, str(SCRIPT), "run", str(file), "sleeper", "--low-priority", "--",
                               "sh", "-c", f"echo $$ > {started}; exec sleep 120"])
    deadline = time.monotonic() + 30
    while not (started.exists() and started.read_text().strip()):
        assert time.monotonic() < deadline, "the stage's command never started"
        time.sleep(0.05)
    stage = int(started.read_text())
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=30) == 128 + signal.SIGTERM
    label, _seconds, status, _began = file.read_text().strip().split("\t")
    assert (label, status) == ("sleeper", str(128 + signal.SIGTERM))
    # The command, in its own session, went with it (its pid is gone or a zombie no longer).
    assert not Path(f"/proc/{stage}").exists() or "Z" in Path(f"/proc/{stage}/stat").read_text().split()[2]
