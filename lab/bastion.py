"""Azure Bastion's stand-in (gateway kind ``bastion``): native-client tunnels to the stack's VMs.

On Azure, ``az network bastion tunnel --target-resource-id VM --resource-port 22 --port 50022``
opens a local port whose connections Bastion carries over 443 to the VM's port, connecting from an
instance inside AzureBastionSubnet. The NSG on that subnet lets 443 in only from
``network.allowed_client_ranges``; the VM's subnet lets SSH in only from the Bastion subnet, and the
analytics VM's sshd accepts analysts' keys only from there.

The lab's stand-in is one process in the namespace ``tb-bastion``, cabled to the stack's Bastion
subnet at its first usable address (Azure keeps .0 to .3), the instance's address. Bastion's public
IP stand-in on the lab's Internet bridge is forwarded to it on 443 only, so a client's connection
passes the compiled NSG chains of the Bastion subnet, and each tunnel's onward connection leaves from
the instance's address and passes the Bastion subnet's outbound and the VM subnet's inbound chains:
nothing is opened for the lab.

The protocol (the lab's own; Azure's is a websocket behind an Entra sign-in, which the lab does not
have): the client's first line is ``TUNNEL <machine> <port>\\n``; the stand-in answers ``OK\\n`` and
relays bytes both ways, or ``REFUSED <reason>\\n`` and closes. It refuses, as at least as strict as
Bastion Standard: a client outside the allowed ranges, a machine that is not a VM of the stack, and
a port the flow table does not give the Bastion subnet towards that VM (22). Every tunnel asked for,
allowed or refused, is a line of ``tunnels.jsonl`` (Azure's BastionAuditLogs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blueprints.network_flows import active_flows
from blueprints.topology import plan_machines
from lab.tcp_relay import append_log, relay

STATE_FILE = "bastion.json"
PID_FILE = "bastion.pid"
LOG_FILE = "tunnels.jsonl"
PORT = 443
BASTION_SUBNET = "bastion"
# Azure keeps each subnet's first four addresses; Bastion's instances take the next ones.
FIRST_INSTANCE_HOST = 4
# A tunnel's first line is short; a peer that never sends one does not hold a connection for long.
REQUEST_LIMIT = 256
REQUEST_SECONDS = 10
CONNECT_SECONDS = 10


class BastionError(Exception):
    """The stand-in could not start, or a tunnel was refused; the message says why."""


def wanted(config: dict[str, Any]) -> bool:
    """True for a stack whose gateway is Azure Bastion with its own subnet."""
    gateway = config["roles"].get("gateway") or {}
    return gateway.get("kind") == "bastion" and bool(config["network"]["subnets"].get(BASTION_SUBNET))


def instance_address(config: dict[str, Any]) -> str:
    """The address a tunnel's onward connection leaves from: a Bastion instance's, in its subnet."""
    subnet = ipaddress.ip_network(config["network"]["subnets"][BASTION_SUBNET])
    return str(subnet.network_address + FIRST_INSTANCE_HOST)


def _reaches(destination: str, machine: Any) -> bool:
    kind, _, value = destination.partition(":")
    if kind == "role":
        return value in ("*", machine.role)
    if kind == "subnet":
        return value == machine.subnet
    return False


def allowed_targets(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Machine -> its address and the TCP ports the flow table opens to it from the Bastion subnet."""
    flows = [f for f in active_flows(config)
             if f.source == f"subnet:{BASTION_SUBNET}" and f.protocol.lower() == "tcp"]
    targets = {}
    for machine in plan_machines(config):
        ports = sorted({port for flow in flows if _reaches(flow.destination, machine) for port in flow.ports})
        targets[machine.name] = {"address": machine.private_ip, "ports": ports}
    return targets


def bastion_state(config: dict[str, Any]) -> dict[str, Any]:
    """What the stand-in decides with: who may open tunnels, to what, and from which address."""
    return {
        "client_ranges": list(config["network"].get("allowed_client_ranges") or []),
        "targets": allowed_targets(config),
        "source": instance_address(config),
    }


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    address: str | None = None  # the target's address when allowed


def decide(state: dict[str, Any], peer: str, machine: str, port: int) -> Decision:
    """Azure Bastion's answer to a tunnel from ``peer`` to ``machine``:``port``."""
    try:
        client = ipaddress.ip_address(peer)
    except ValueError:
        return Decision(False, f"client {peer!r} is not an address")
    if not any(client in ipaddress.ip_network(r) for r in state["client_ranges"]):
        allowed = ", ".join(state["client_ranges"]) or "none"
        return Decision(False, f"client {peer} is outside network.allowed_client_ranges ({allowed})")
    target = state["targets"].get(machine)
    if target is None:
        return Decision(False, f"machine {machine!r} is not a VM of this stack "
                               f"(VMs: {', '.join(sorted(state['targets']))})")
    if port not in target["ports"]:
        opened = ", ".join(str(p) for p in target["ports"]) or "none"
        return Decision(False, f"port {port} of {machine} is not open to the Bastion subnet (open: {opened})")
    return Decision(True, "allowed", target["address"])


def parse_request(line: bytes) -> tuple[str, int]:
    """``TUNNEL <machine> <port>`` -> (machine, port); BastionError names what is wrong."""
    words = line.decode("ascii", errors="replace").split()
    if len(words) != 3 or words[0] != "TUNNEL":
        raise BastionError(f"expected 'TUNNEL <machine> <port>', got {line[:60]!r}")
    if not words[2].isdigit() or not 0 < int(words[2]) < 65536:
        raise BastionError(f"port {words[2]!r} is not a TCP port (1-65535)")
    return words[1], int(words[2])


# --- the stand-in ----------------------------------------------------------------------------------

async def _session(state_dir: Path, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Read for every tunnel, so `lab apply` of new client ranges or VMs' ports counts at once.
    state = json.loads((state_dir / STATE_FILE).read_text())
    log = state_dir / LOG_FILE
    peer = writer.get_extra_info("peername")[0]
    entry: dict[str, Any] = {"client": peer}
    try:
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), REQUEST_SECONDS)
            if len(line) > REQUEST_LIMIT:
                raise BastionError("request line too long")
            machine, port = parse_request(line)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            raise BastionError(f"no request line ({type(error).__name__})") from None
        entry.update(machine=machine, port=port)
        decision = decide(state, peer, machine, port)
        if not decision.allowed:
            raise BastionError(decision.reason)
        try:
            # From the instance's own address, as Azure Bastion connects from inside its subnet.
            target_reader, target_writer = await asyncio.wait_for(
                asyncio.open_connection(decision.address, port, local_addr=(state["source"], 0)), CONNECT_SECONDS)
        except (TimeoutError, OSError) as error:
            raise BastionError(f"{machine} ({decision.address}) port {port} did not answer from "
                               f"{state['source']}: {error or type(error).__name__}") from None
    except BastionError as refusal:
        append_log(log, {**entry, "result": "refused", "reason": str(refusal)})
        with contextlib.suppress(OSError):
            writer.write(f"REFUSED {refusal}\n".encode())
            await writer.drain()
        writer.close()
        return
    append_log(log, {**entry, "result": "connected", "source": state["source"], "address": decision.address})
    writer.write(b"OK\n")
    await writer.drain()
    await relay((reader, writer), (target_reader, target_writer))


async def serve(state_dir: Path, address: str, port: int = PORT,
                ready: Callable[[int], None] | None = None) -> None:
    """Answer tunnels at ``address``:``port`` until cancelled; ``ready`` gets the port once it listens."""
    server = await asyncio.start_server(lambda r, w: _session(state_dir, r, w), address, port,
                                        limit=REQUEST_LIMIT * 4)
    if ready is not None:
        ready(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


# --- the client (`az network bastion tunnel`) ------------------------------------------------------

def open_tunnel(bastion: tuple[str, int], machine: str, port: int, timeout: float = 15) -> socket.socket:
    """A connection to ``machine``:``port`` through the stand-in; BastionError with its reason if refused."""
    connection = socket.create_connection(bastion, timeout)
    connection.sendall(f"TUNNEL {machine} {port}\n".encode())
    answer = b""
    while not answer.endswith(b"\n") and len(answer) < 1024:
        chunk = connection.recv(1)
        if not chunk:
            break
        answer += chunk
    if answer != b"OK\n":
        connection.close()
        text = answer.decode(errors="replace").strip() or "the connection closed without an answer"
        raise BastionError(text.removeprefix("REFUSED ").strip())
    connection.settimeout(None)
    return connection


def _copy(source: Any, sink: Any) -> None:
    with contextlib.suppress(OSError):
        while data := source(65536):
            sink(data)


def relay_stdio(connection: socket.socket) -> None:
    """Carry stdin to the tunnel and the tunnel to stdout (an ssh ProxyCommand)."""
    import os

    def upstream() -> None:
        _copy(lambda n: os.read(0, n), connection.sendall)
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, daemon=True).start()
    _copy(connection.recv, lambda data: os.write(1, data))


def _splice(first: socket.socket, second: socket.socket) -> None:
    def one_way(source: socket.socket, sink: socket.socket) -> None:
        _copy(source.recv, sink.sendall)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=one_way, args=(second, first), daemon=True)
    other.start()
    one_way(first, second)
    other.join()
    first.close()
    second.close()


def serve_local_port(bastion: tuple[str, int], machine: str, port: int, local_port: int,
                     ready: Callable[[int], None] | None = None) -> None:
    """Each connection to 127.0.0.1:``local_port`` becomes a tunnel, as `az network bastion tunnel --port`."""
    listener = socket.create_server(("127.0.0.1", local_port))
    if ready is not None:
        ready(listener.getsockname()[1])
    while True:
        accepted, _ = listener.accept()
        try:
            tunnel = open_tunnel(bastion, machine, port)
        except (OSError, BastionError) as error:
            print(f"bastion tunnel: {machine} port {port}: {error}", file=sys.stderr, flush=True)
            accepted.close()
            continue
        threading.Thread(target=_splice, args=(accepted, tunnel), daemon=True).start()


# --- lab up and lab down ---------------------------------------------------------------------------

def write_state(directory: Path, config: dict[str, Any]) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    state = bastion_state(config)
    (directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    return state


def update_state(directory: Path, config: dict[str, Any]) -> bool:
    """With `lab apply`: the running stand-in's state as the edited stack has it; True when there is one."""
    if not (directory / STATE_FILE).exists() or not wanted(config):
        return False
    write_state(directory, config)
    return True


def start_in_namespace(netns: str, directory: Path, address: str, wait_seconds: float = 30) -> int:
    """Run the stand-in in ``netns`` (the Bastion subnet's instance); returns its pid once it listens."""
    from lab.host_processes import HostProcessError, start_listening_in

    log = directory / "bastion.log"
    argv = [sys.executable, "-m", "lab.bastion", "serve", "--state-dir", str(directory), "--address", address]
    try:
        pid = start_listening_in(netns, argv, log, address, PORT, "the Bastion stand-in", wait_seconds)
    except HostProcessError as error:
        raise BastionError(str(error)) from None
    (directory / PID_FILE).write_text(f"{pid}\n")
    return pid


def stop_process(directory: Path) -> bool:
    """End this lab's stand-in if it runs; True when one was stopped."""
    from lab.host_processes import stop_recorded

    return stop_recorded(directory / PID_FILE, "lab.bastion", str(directory))


def running(directory: Path) -> bool | None:
    """Whether this lab's stand-in runs; None when its pid file cannot be read (not root)."""
    try:
        pid = int((directory / PID_FILE).read_text())
    except PermissionError:
        return None
    except (OSError, ValueError):
        return False
    try:
        return "lab.bastion" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected ADDRESS:PORT")
    return host, int(port)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.bastion", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="the stand-in (run by lab up in tb-bastion)")
    serve_parser.add_argument("--state-dir", type=Path, required=True)
    serve_parser.add_argument("--address", required=True)
    serve_parser.add_argument("--port", type=int, default=PORT)
    for name, text in (("connect", "one tunnel on stdin and stdout (ssh -o ProxyCommand=...)"),
                       ("tunnel", "a local port whose connections are tunnels (az network bastion tunnel)")):
        client = commands.add_parser(name, help=text)
        client.add_argument("--bastion", type=_endpoint, required=True, help="Bastion's public ADDRESS:PORT")
        client.add_argument("machine")
        client.add_argument("--resource-port", type=int, default=22)
        if name == "tunnel":
            client.add_argument("--port", type=int, required=True, help="the local port on 127.0.0.1")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.command == "serve":
        if not (args.state_dir / STATE_FILE).is_file():
            print(f"lab bastion: {args.state_dir / STATE_FILE} does not exist", file=sys.stderr)
            return 2
        asyncio.run(serve(args.state_dir, args.address, args.port))
        return 0
    if args.command == "connect":
        try:
            connection = open_tunnel(args.bastion, args.machine, args.resource_port)
        except (OSError, BastionError) as error:
            print(f"bastion tunnel refused: {error}", file=sys.stderr)
            return 1
        relay_stdio(connection)
        return 0
    print(f"Tunnel to {args.machine} port {args.resource_port} on 127.0.0.1:{args.port}; Ctrl-C ends it.",
          flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        serve_local_port(args.bastion, args.machine, args.resource_port, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
