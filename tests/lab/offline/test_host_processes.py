"""`lab down` ends the lab's own background processes, and never another that reused their pid."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from lab.host_processes import stop_recorded


def test_a_recorded_process_is_ended_only_when_its_command_line_matches(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(tmp_path)])
    try:
        # Until the child has exec'd, its command line is still the parent's.
        deadline = time.monotonic() + 10
        while b"time.sleep" not in Path(f"/proc/{process.pid}/cmdline").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        pid_file = tmp_path / "server.pid"
        pid_file.write_text(f"{process.pid}\n")
        assert not stop_recorded(pid_file, "dnsmasq", str(tmp_path))
        assert process.poll() is None
        assert stop_recorded(pid_file, "time.sleep", str(tmp_path))
        assert process.wait(timeout=5) != 0
    finally:
        process.kill()


def test_a_missing_or_broken_pid_file_stops_nothing(tmp_path):
    assert not stop_recorded(tmp_path / "absent.pid", "x")
    (tmp_path / "bad.pid").write_text("not a pid\n")
    assert not stop_recorded(tmp_path / "bad.pid", "x")


def test_an_outdated_tree_leaves_its_place_at_once_and_is_deleted_behind(tmp_path):
    import time

    from lab.host_processes import remove_in_background

    old = tmp_path / "layers" / "analytics-000000000000"
    (old / "usr/lib").mkdir(parents=True)
    for number in range(200):
        (old / "usr/lib" / f"file{number}").write_text("x")
    trash = tmp_path / ".trash"
    remove_in_background(old, trash)
    assert not old.exists()
    deadline = time.monotonic() + 60
    while any(trash.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(trash.iterdir())
