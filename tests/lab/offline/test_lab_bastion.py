"""Azure Bastion's stand-in (lab/bastion.py): where it sits, what it refuses, and a real relay on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import main as cli
from lab import bastion
from lab.address_plan import address_plan
from validation.stack_config import load_stack

REPO = Path(__file__).resolve().parents[3]
BASTION_STACK = REPO / "stacks/bastion-single-analyst.yaml"


@pytest.fixture(scope="module")
def bastion_config():
    return load_stack(BASTION_STACK)


def test_the_address_plan_gives_bastion_a_public_ip_and_an_instance_in_its_subnet(bastion_config):
    plan = address_plan(bastion_config)
    assert str(plan.subnets["bastion"]) == "10.60.0.0/26"
    assert plan.subnet_gateways["bastion"] == "10.60.0.1"
    # Azure keeps .0 to .3 of every subnet; the instance takes the first address after them.
    assert plan.bastion_ip == "10.60.0.4"
    assert plan.public_bastion_ip == "100.64.77.11"
    assert plan.public_gateway_ip is None and plan.identity_provider_ip is None
    assert plan.client_ip == "198.51.100.33"  # the first host of the allowed range 198.51.100.32/27
    assert [m.name for m in plan.machines] == ["mirror", "analytics-1"]


def test_a_self_hosted_stack_has_no_bastion(example_config):
    plan = address_plan(example_config)
    assert plan.public_bastion_ip is None and plan.bastion_ip is None
    assert "bastion" not in plan.subnets
    assert not bastion.wanted(example_config)


def test_targets_are_the_stacks_vms_with_the_ports_the_flow_table_gives_the_bastion_subnet(bastion_config):
    assert bastion.allowed_targets(bastion_config) == {
        "mirror": {"address": "10.60.1.4", "ports": [22]},  # ssh-bastion-to-services (administrators)
        "analytics-1": {"address": "10.60.1.68", "ports": [22]},  # ssh-bastion-to-analytics
    }
    state = bastion.bastion_state(bastion_config)
    assert state["source"] == "10.60.0.4"
    assert state["client_ranges"] == ["198.51.100.32/27"]


@pytest.mark.parametrize(("peer", "machine", "port", "allowed", "reason"), [
    ("198.51.100.33", "analytics-1", 22, True, "allowed"),
    ("198.51.100.63", "mirror", 22, True, "allowed"),
    ("198.51.100.64", "analytics-1", 22, False, "client 198.51.100.64 is outside network.allowed_client_ranges"),
    ("203.0.113.1", "analytics-1", 22, False, "outside network.allowed_client_ranges (198.51.100.32/27)"),
    ("198.51.100.33", "analytics-1", 8888, False, "port 8888 of analytics-1 is not open to the Bastion subnet"),
    ("198.51.100.33", "analytics-1", 443, False, "(open: 22)"),
    ("198.51.100.33", "git", 22, False, "machine 'git' is not a VM of this stack (VMs: analytics-1, mirror)"),
    ("198.51.100.33", "10.60.1.68", 22, False, "is not a VM of this stack"),
])
def test_decisions(bastion_config, peer, machine, port, allowed, reason):
    decision = bastion.decide(bastion.bastion_state(bastion_config), peer, machine, port)
    assert decision.allowed is allowed
    assert reason in decision.reason
    assert (decision.address is not None) is allowed


def test_no_allowed_client_range_refuses_everyone(bastion_config):
    state = {**bastion.bastion_state(bastion_config), "client_ranges": []}
    decision = bastion.decide(state, "198.51.100.33", "analytics-1", 22)
    assert not decision.allowed
    assert "(none)" in decision.reason


@pytest.mark.parametrize(("line", "message"), [
    (b"TUNNEL analytics-1 22\n", None),
    (b"tunnel analytics-1 22\n", "expected 'TUNNEL <machine> <port>'"),
    (b"TUNNEL analytics-1\n", "expected 'TUNNEL <machine> <port>'"),
    (b"TUNNEL analytics-1 ssh\n", "port 'ssh' is not a TCP port"),
    (b"TUNNEL analytics-1 70000\n", "port '70000' is not a TCP port"),
    (b"TUNNEL analytics-1 0\n", "port '0' is not a TCP port"),
])
def test_request_lines(line, message):
    if message is None:
        assert bastion.parse_request(line) == ("analytics-1", 22)
    else:
        with pytest.raises(bastion.BastionError, match=message.replace("(", r"\(").replace(")", r"\)")):
            bastion.parse_request(line)


# --- the relay for real, on loopback: the stand-in at 127.0.0.1, its "instance" address 127.0.0.2,
# the target VM at 127.0.0.3 (Linux answers on all of 127.0.0.0/8) ---------------------------------

def _target() -> tuple[socket.socket, list[str]]:
    """A VM's port: says who connected (the address sshd's Match Address sees), then echoes."""
    listener = socket.create_server(("127.0.0.3", 0))
    peers: list[str] = []

    def run() -> None:
        while True:
            try:
                connection, peer = listener.accept()
            except OSError:
                return
            peers.append(peer[0])
            with connection:
                connection.sendall(f"from {peer[0]}\n".encode())
                while data := connection.recv(4096):
                    connection.sendall(data)

    threading.Thread(target=run, daemon=True).start()
    return listener, peers


@contextlib.contextmanager
def running_stand_in(directory: Path) -> Iterator[tuple[str, int]]:
    """The stand-in on 127.0.0.1 in a thread of its own, with the state in ``directory``."""
    loop = asyncio.new_event_loop()
    listening = threading.Event()
    ports: list[int] = []

    def ready(port: int) -> None:
        ports.append(port)
        listening.set()

    async def until_cancelled() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await bastion.serve(directory, "127.0.0.1", 0, ready=ready)

    task = loop.create_task(until_cancelled())
    thread = threading.Thread(target=loop.run_until_complete, args=(task,), daemon=True)
    thread.start()
    try:
        assert listening.wait(10), "the stand-in did not listen"
        yield "127.0.0.1", ports[0]
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(10)
        loop.close()


@pytest.fixture
def relay(tmp_path) -> Iterator[tuple[tuple[str, int], int, list[str], Path]]:
    target, peers = _target()
    target_port = target.getsockname()[1]
    state = {"client_ranges": ["127.0.0.0/8"], "source": "127.0.0.2",
             "targets": {"analytics-1": {"address": "127.0.0.3", "ports": [target_port]}}}
    (tmp_path / bastion.STATE_FILE).write_text(json.dumps(state))
    with running_stand_in(tmp_path) as address:
        yield address, target_port, peers, tmp_path
    target.close()


def _read_line(connection: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def test_a_tunnel_carries_bytes_both_ways_from_the_instance_address(relay):
    address, target_port, peers, directory = relay
    with bastion.open_tunnel(address, "analytics-1", target_port) as tunnel:
        assert _read_line(tunnel) == b"from 127.0.0.2\n"  # not the client's address: the instance's
        tunnel.sendall(b"hello through bastion\n")
        assert _read_line(tunnel) == b"hello through bastion\n"
    assert peers == ["127.0.0.2"]
    entries = [json.loads(line) for line in (directory / bastion.LOG_FILE).read_text().splitlines()]
    assert entries[-1]["result"] == "connected"
    assert entries[-1]["client"] == "127.0.0.1" and entries[-1]["source"] == "127.0.0.2"


@pytest.mark.parametrize(("machine", "port", "reason"), [
    ("analytics-1", 22, "port 22 of analytics-1 is not open to the Bastion subnet"),
    ("git", None, "machine 'git' is not a VM of this stack"),
])
def test_refused_tunnels_never_reach_a_vm_and_are_logged(relay, machine, port, reason):
    address, target_port, peers, directory = relay
    with pytest.raises(bastion.BastionError) as refused:
        bastion.open_tunnel(address, machine, port or target_port)
    assert reason in str(refused.value)
    assert peers == []
    entry = json.loads((directory / bastion.LOG_FILE).read_text().splitlines()[-1])
    assert entry["result"] == "refused" and reason in entry["reason"]


def test_a_client_outside_the_allowed_ranges_is_refused(relay):
    _, target_port, peers, directory = relay
    state = json.loads((directory / bastion.STATE_FILE).read_text())
    state["client_ranges"] = ["198.51.100.32/27"]
    (directory / bastion.STATE_FILE).write_text(json.dumps(state))
    # The state is read when the stand-in starts: a second one with the narrower ranges.
    with running_stand_in(directory) as narrower, pytest.raises(
            bastion.BastionError, match=r"client 127\.0\.0\.1 is outside network\.allowed_client_ranges"):
        bastion.open_tunnel(narrower, "analytics-1", target_port)
    assert peers == []


def test_a_silent_client_gets_no_tunnel(relay):
    address, _, peers, _ = relay
    with socket.create_connection(address, 5) as connection:
        connection.sendall(b"SSH-2.0-OpenSSH_9.9\r\n")  # ssh without the tunnel's request line
        assert _read_line(connection).startswith(b"REFUSED expected 'TUNNEL <machine> <port>'")
    assert peers == []


def test_the_proxy_command_relays_stdin_and_stdout(relay):
    address, target_port, _, _ = relay
    result = subprocess.run(
        [sys.executable, "-m", "lab.bastion", "connect", "--bastion", f"{address[0]}:{address[1]}",
         "analytics-1", "--resource-port", str(target_port)],
        input=b"line one\n", capture_output=True, timeout=30, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"from 127.0.0.2\nline one\n"


def test_the_proxy_command_says_why_a_tunnel_is_refused(relay):
    address, _, _, _ = relay
    result = subprocess.run(
        [sys.executable, "-m", "lab.bastion", "connect", "--bastion", f"{address[0]}:{address[1]}",
         "analytics-1", "--resource-port", "8888"],
        capture_output=True, text=True, timeout=30, cwd=REPO, check=False)
    assert result.returncode == 1
    assert "bastion tunnel refused: port 8888 of analytics-1 is not open to the Bastion subnet" in result.stderr


def test_a_local_port_makes_a_tunnel_per_connection(relay):
    address, target_port, peers, _ = relay
    local: list[int] = []
    listening = threading.Event()
    threading.Thread(target=bastion.serve_local_port, args=(address, "analytics-1", target_port, 0),
                     kwargs={"ready": lambda port: (local.append(port), listening.set())}, daemon=True).start()
    assert listening.wait(10)
    for text in (b"first\n", b"second\n"):
        with socket.create_connection(("127.0.0.1", local[0]), 5) as connection:
            assert _read_line(connection) == b"from 127.0.0.2\n"
            connection.sendall(text)
            assert _read_line(connection) == text
    assert peers == ["127.0.0.2", "127.0.0.2"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--port", "70000"], "--port 70000: must be a TCP port, 1 to 65535"),
    (["--port", "50022", "--resource-port", "0"], "--resource-port 0: must be a TCP port, 1 to 65535"),
])
def test_tunnel_command_names_a_bad_port(capsys, argv, message):
    assert cli.main(["lab", "bastion-tunnel", "analytics-1", *argv]) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_tunnel_command_needs_root(monkeypatch, capsys):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert cli.main(["lab", "bastion-tunnel", "analytics-1", "--port", "50022"]) == cli.EXIT_USAGE
    assert "root" in capsys.readouterr().err


def test_an_applied_stack_counts_from_the_next_tunnel(relay, bastion_config):
    """`lab apply` rewrites the state (update_state); the running stand-in decides with it at once."""
    address, target_port, peers, directory = relay
    assert not bastion.update_state(directory / "none", bastion_config)  # no stand-in there: nothing written
    assert bastion.update_state(directory, bastion_config)
    written = json.loads((directory / bastion.STATE_FILE).read_text())
    assert written == bastion.bastion_state(bastion_config)
    # The stack's ranges do not hold 127.0.0.1: the same client is refused now.
    with pytest.raises(bastion.BastionError, match=r"outside network\.allowed_client_ranges"):
        bastion.open_tunnel(address, "analytics-1", target_port)
    assert peers == []


def test_running_reads_the_pid_file_and_the_command_line(tmp_path):
    assert bastion.running(tmp_path) is False  # no pid file
    (tmp_path / bastion.PID_FILE).write_text(f"{os.getpid()}\n")
    assert bastion.running(tmp_path) is False  # a live pid, but not the stand-in's command line
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "lab.bastion"])
    try:
        (tmp_path / bastion.PID_FILE).write_text(f"{stand_in.pid}\n")
        # Until the child has exec'd, /proc shows the parent's command line.
        cmdline = Path(f"/proc/{stand_in.pid}/cmdline")
        deadline = time.monotonic() + 10
        while b"time.sleep" not in cmdline.read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert bastion.running(tmp_path) is True
    finally:
        stand_in.kill()
        stand_in.wait()


def test_the_serve_command_answers_and_lab_down_stops_it(tmp_path):
    """`python -m lab.bastion serve` as lab up runs it (without the namespace), then stop_process as lab down."""
    (tmp_path / bastion.STATE_FILE).write_text(json.dumps(
        {"client_ranges": ["198.51.100.32/27"], "source": "127.0.0.2", "targets": {}}))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "lab.bastion", "serve", "--state-dir", str(tmp_path),
                                "--address", "127.0.0.1", "--port", str(port)], cwd=REPO)
    (tmp_path / bastion.PID_FILE).write_text(f"{process.pid}\n")
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the stand-in exited"
            try:
                connection = socket.create_connection(("127.0.0.1", port), 1)
                break
            except OSError:
                assert time.monotonic() < deadline, "the stand-in did not listen within 30s"
                time.sleep(0.1)
        with connection:
            connection.sendall(b"TUNNEL analytics-1 22\n")
            assert _read_line(connection).startswith(b"REFUSED client 127.0.0.1 is outside")
        assert bastion.stop_process(tmp_path)
        assert process.wait(5) is not None
    finally:
        process.kill()
        process.wait()
