"""Small probes run inside lab machines: temporary listeners and batched connection attempts.

A connection that gets an answer (accepted or refused) reached the machine; one that times out
was dropped on the way. The lab's rules drop, never reject, so that difference is the verdict.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from lab.machines import run

LISTEN_SECONDS = 300
CONNECT_TIMEOUT = 3.0

_LISTENER = """
import socket, sys, threading, time
def serve(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", port))
    except OSError:
        return  # something already listens there: a connection still proves the path
    s.listen(64)
    s.settimeout(1)
    end = time.time() + {seconds}
    while time.time() < end:
        try:
            c, _ = s.accept()
            c.close()
        except OSError:
            pass
for port in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(port),), daemon=True).start()
time.sleep({seconds})
"""

_CONNECT = """
import json, socket, sys, concurrent.futures as cf
targets = json.loads(sys.argv[1])
def attempt(target):
    host, port = target
    try:
        socket.create_connection((host, port), timeout={timeout}).close()
        return "reached"
    except ConnectionRefusedError:
        return "reached"
    except (TimeoutError, socket.timeout):
        return "dropped"
    except OSError as error:
        return "error: " + str(error)
with cf.ThreadPoolExecutor(max_workers=64) as pool:
    results = list(pool.map(attempt, [tuple(t) for t in targets]))
print(json.dumps([[h, p, r] for (h, p), r in zip(targets, results)]))
"""


def start_listeners(machine: str, ports: list[int], seconds: int = LISTEN_SECONDS) -> int:
    """Listen on ``ports`` inside ``machine`` (in the background, for at most ``seconds``).

    Returns the listener's pid inside the machine, for ``stop_listeners``.
    """
    script = _LISTENER.format(seconds=seconds)
    argv = ["sh", "-c", 'nohup python3 -c "$0" "$@" >/dev/null 2>&1 & echo $!', script, *map(str, ports)]
    pid = int(run(None, machine, argv, check=True).stdout.strip())
    wait = ["sh", "-c", "for i in $(seq 50); do n=0; for p in \"$@\"; do "
            "ss -Hltn \"sport = :$p\" | grep -q . && n=$((n+1)); done; "
            "[ $n -eq $# ] && exit 0; sleep 0.1; done; exit 1", "wait", *map(str, ports)]
    result = run(None, machine, wait)
    assert result.returncode == 0, f"listeners on {machine} ports {ports} did not come up"
    return pid


def stop_listeners(machine: str, pid: int) -> None:
    """End one listener started by ``start_listeners`` (by its pid), so its ports are free again."""
    run(None, machine, ["kill", str(pid)])


def connect_all(machine: str, targets: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """From inside ``machine``, try every (address, port) at once; returns the verdict of each."""
    result = run(None, machine, ["python3", "-c", _CONNECT.format(timeout=CONNECT_TIMEOUT), json.dumps(targets)],
                 timeout=120)
    assert result.returncode == 0, f"connection probe failed on {machine}: {result.stderr}"
    return {(host, port): verdict for host, port, verdict in json.loads(result.stdout)}


def client_connect(lab: Any, targets: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The same probe from the client namespace (the analyst at home), with the host's python3."""
    result: subprocess.CompletedProcess[str] = lab.client(
        ["python3", "-c", _CONNECT.format(timeout=CONNECT_TIMEOUT), json.dumps(targets)], timeout=120)
    assert result.returncode == 0, f"client probe failed: {result.stderr}"
    return {(host, port): verdict for host, port, verdict in json.loads(result.stdout)}


def namespace_connect(netns: str, targets: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The same probe from a lab namespace that is not a machine (Azure Bastion's instance), with the host's python3."""
    result = subprocess.run(["ip", "netns", "exec", netns, "python3", "-c", _CONNECT.format(timeout=CONNECT_TIMEOUT),
                             json.dumps(targets)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"probe from {netns} failed: {result.stderr}"
    return {(host, port): verdict for host, port, verdict in json.loads(result.stdout)}
