"""Background processes the lab starts on the host (its resolver, the platform stand-ins), found again
by their pid file and ended by `lab down`."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def stop_recorded(pid_file: Path, *markers: str, wait_seconds: float = 5) -> bool:
    """SIGTERM the process named in ``pid_file`` if its command line holds every marker (so a reused
    pid is never hit), and wait for it to end; True when one was stopped."""
    try:
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return False
    if not all(marker in cmdline for marker in markers):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_seconds
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return True


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A process that has exited stays in /proc as a zombie until its parent reaps it (when the caller
    # started it itself): it has ended all the same. The state follows the command name's ")".
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def remove_in_background(path: Path, trash: Path) -> None:
    """Move ``path`` into ``trash`` (same file system: a rename) and delete it there in a detached,
    low-priority process: an outdated base or layer is a tree of tens of thousands of small files,
    which took minutes to delete on a host whose ext4 discards, while the lab waited."""
    import subprocess

    trash.mkdir(parents=True, exist_ok=True)
    target = trash / f"{path.name}.{os.getpid()}.{time.monotonic_ns()}"
    path.rename(target)
    # Everything in the trash: also what an earlier, interrupted removal left.
    subprocess.Popen(["nice", "-n", "19", "ionice", "-c", "3", "rm", "-rf", "--one-file-system",
                      *(str(entry) for entry in trash.iterdir())],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


class HostProcessError(RuntimeError):
    """A background process exited or did not listen in time; the message names it and its log."""


def start_listening_in(netns: str, argv: list[str], log: Path, address: str, port: int, what: str,
                       wait_seconds: float = 30) -> int:
    """Start ``argv`` (a module of this repository run by this Python) inside the namespace ``netns``,
    its output appended to ``log``; return its pid once ``address:port`` accepts a connection from
    inside the namespace."""
    import subprocess
    import sys

    with log.open("ab") as output:
        process = subprocess.Popen(["ip", "netns", "exec", netns, *argv], stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   cwd=str(Path(__file__).resolve().parent.parent))
    probe = ["ip", "netns", "exec", netns, sys.executable, "-c",
             f"import socket; socket.create_connection(({address!r}, {port}), 1).close()"]
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise HostProcessError(f"{what} exited ({process.returncode}); see {log}")
        if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
            return process.pid
        time.sleep(0.3)
    raise HostProcessError(f"{what} did not listen on {address}:{port} in {wait_seconds:g}s; see {log}")
