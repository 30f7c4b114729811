"""The landing zone hub's firewall (stacks with ``network.landing_zone``): the mirror's only way out.

On Azure the spoke's mirror subnet has a route table sending 0.0.0.0/0 to the hub firewall's private
address (``hub_firewall_address``), and the hub team allows the mirror, and only it, to reach its
upstreams by host name (application rules: the TLS server name, or HTTP's Host header); everything
else from the spoke is denied (the request pack's "What the hub team must allow").

The lab's stand-in is the namespace ``tb-hubfw`` holding ``hub_firewall_address``, on a link of its
own from the host. The host routes every packet from a subnet the route table is on to it unless a
more specific route exists (policy routing: the main table without its default route, then a table
whose default is the firewall), as Azure's user-defined 0.0.0.0/0 route overrides only the system
default. Packets reach it after the source subnet's outbound NSG chain, as on Azure. Inside, TCP 80
and 443 go to one process, which reads the TLS ClientHello's server name or the HTTP request's Host,
and relays the connection only for an allowed (name, port) from an allowed source; anything else is
refused and dropped (the namespace forwards nothing). It connects to the address the name resolves to,
never to the one the client picked, so a forged name reaches only the real upstream. Every decision is
a line of ``decisions.jsonl`` (Azure Firewall's application rule log). A spoke has no other way out:
the host drops the address space's traffic to the Internet that does not come through here.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blueprints.landing_zone import firewall_rules, landing_zone
from blueprints.topology import plan_machines, subnet_plan
from lab.address_plan import address_plan
from lab.layout import HUB_FIREWALL_LINK, HUB_FIREWALL_NETNS
from lab.tcp_relay import append_log, relay

STATE_FILE = "firewall.json"
PID_FILE = "firewall.pid"
LOG_FILE = "decisions.jsonl"
# The link between the host and the firewall (shared address space, RFC 6598, as the lab's other
# links): never a trust's range.
LINK_NETWORK = ipaddress.ip_network("100.64.79.0/30")
HOST_ADDRESS = str(LINK_NETWORK.network_address + 1)
NAMESPACE_ADDRESS = str(LINK_NETWORK.network_address + 2)
GUEST_INTERFACE = "eth0"
# Inside the namespace, redirected TCP 80 and 443 arrive here.
PROXY_PORT = 15000
FILTERED_PORTS = (80, 443)
# The host's policy routing: the main table without its default route, then the firewall's table.
MAIN_WITHOUT_DEFAULT_PRIORITY = 30076
FIREWALL_TABLE = 30077
FIREWALL_RULE_PRIORITY = 30077
NFT_TABLE = "hub_firewall"
# A ClientHello or a request head is small; a client that never sends one does not hold a connection.
HEAD_LIMIT = 16384
HEAD_SECONDS = 10
CONNECT_SECONDS = 15
SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h


class HubFirewallError(Exception):
    """The stand-in could not be wired or started, or a connection was refused; the message says why."""


def wanted(config: dict[str, Any]) -> bool:
    """True for a landing-zone stack with a machine whose Internet egress the hub firewall carries
    (the address plan's ``hub_firewall_ip`` then holds its address)."""
    return address_plan(config).hub_firewall_ip is not None


def routed_subnets(config: dict[str, Any]) -> list[str]:
    """The subnets the route table is on (those of machines with Internet egress), as ranges."""
    plan = subnet_plan(config)
    return sorted({str(plan[m.subnet]) for m in plan_machines(config) if m.internet_egress})


def firewall_state(config: dict[str, Any]) -> dict[str, Any]:
    """What the stand-in decides with: the request pack's firewall rules, and who they are for."""
    return {
        "address": landing_zone(config)["hub_firewall_address"],
        "sources": [m.private_ip for m in plan_machines(config) if m.internet_egress],
        "rules": [{"host": rule.host, "port": rule.port} for rule in firewall_rules(config)],
    }


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def decide(state: dict[str, Any], source: str, name: str | None, port: int) -> Decision:
    """The hub firewall's answer to ``source`` asking for ``name``:``port``."""
    if source not in state["sources"]:
        return Decision(False, f"source {source} is not the mirror ({', '.join(state['sources']) or 'none'})")
    if not name:
        return Decision(False, "no host name in the request (no TLS server name or HTTP Host)")
    wanted_name = name.rstrip(".").lower()
    if not any(rule["host"] == wanted_name and rule["port"] == port for rule in state["rules"]):
        allowed = ", ".join(f"{rule['host']}:{rule['port']}" for rule in state["rules"]) or "none"
        return Decision(False, f"{wanted_name}:{port} is not an allowed upstream (allowed: {allowed})")
    return Decision(True, "allowed")


# --- what the client asked for ----------------------------------------------------------------------

def server_name(client_hello: bytes) -> str | None:
    """The server name of a TLS ClientHello record (type, version and length first); None without one."""
    try:
        if client_hello[0] != 22 or client_hello[5] != 1:  # a handshake record holding a ClientHello
            return None
        if len(client_hello) < 5 + struct.unpack_from("!H", client_hello, 3)[0]:
            return None  # not the whole record: what follows could say otherwise
        at = 5 + 4 + 2 + 32  # record header, handshake header, version, random
        at += 1 + client_hello[at]  # session id
        at += 2 + struct.unpack_from("!H", client_hello, at)[0]  # cipher suites
        at += 1 + client_hello[at]  # compression methods
        end = at + 2 + struct.unpack_from("!H", client_hello, at)[0]
        at += 2
        while at + 4 <= end:
            kind, length = struct.unpack_from("!HH", client_hello, at)
            at += 4
            if kind == 0:  # server_name: a list of (type, name); type 0 is a host name
                names_end = at + 2 + struct.unpack_from("!H", client_hello, at)[0]
                at += 2
                while at + 3 <= names_end:
                    name_type, name_length = client_hello[at], struct.unpack_from("!H", client_hello, at + 1)[0]
                    name = client_hello[at + 3:at + 3 + name_length]
                    if name_type == 0 and len(name) == name_length:
                        return name.decode("ascii")
                    at += 3 + name_length
                return None
            at += length
    except (IndexError, struct.error, UnicodeDecodeError):
        return None
    return None


def host_header(head: bytes) -> str | None:
    """The host of an HTTP/1 request head's Host header (without a port); None without one."""
    try:
        lines = head.decode("latin-1").split("\r\n")
    except UnicodeDecodeError:
        return None
    hosts = [line.split(":", 1)[1].strip() for line in lines[1:] if line.lower().startswith("host:")]
    if len(hosts) != 1 or not hosts[0]:
        return None  # none, or two that could disagree
    host = hosts[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _read_head(reader: asyncio.StreamReader, port: int) -> tuple[bytes, str | None]:
    """The first bytes of a connection, enough to name what it asks for, and that name."""
    if port == 443:
        header = await reader.readexactly(5)
        length = struct.unpack_from("!H", header, 3)[0]
        if header[0] != 22 or length > HEAD_LIMIT:
            return header, None
        head = header + await reader.readexactly(length)
        return head, server_name(head)
    head = await reader.readuntil(b"\r\n\r\n")
    return head, host_header(head)


# --- the stand-in -----------------------------------------------------------------------------------

def original_destination(connection: socket.socket) -> tuple[str, int]:
    """Where a redirected connection was going (the address and port the client asked for)."""
    raw = connection.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(packed), port


async def _session(state_dir: Path, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Read for every connection, so `lab apply` of new upstreams counts at once.
    state = json.loads((state_dir / STATE_FILE).read_text())
    source = writer.get_extra_info("peername")[0]
    destination, port = original_destination(writer.get_extra_info("socket"))
    if port not in FILTERED_PORTS:  # not redirected: the start-up probe on loopback, not a decision
        writer.close()
        return
    entry: dict[str, Any] = {"source": source, "destination": destination, "port": port}
    name = None
    try:
        try:
            head, name = await asyncio.wait_for(_read_head(reader, port), HEAD_SECONDS)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            raise HubFirewallError(f"no request head ({type(error).__name__})") from None
        entry["name"] = name
        decision = decide(state, source, name, port)
        if not decision.allowed:
            raise HubFirewallError(decision.reason)
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(name, port), CONNECT_SECONDS)
        except (TimeoutError, OSError) as error:
            raise HubFirewallError(f"{name}:{port} did not answer: {error or type(error).__name__}") from None
    except HubFirewallError as refusal:
        append_log(state_dir / LOG_FILE, {**entry, "action": "Deny", "reason": str(refusal)})
        writer.close()
        return
    append_log(state_dir / LOG_FILE, {**entry, "action": "Allow",
                                   "upstream": upstream_writer.get_extra_info("peername")[0]})
    upstream_writer.write(head)
    await relay((reader, writer), (upstream_reader, upstream_writer))


async def serve(state_dir: Path, port: int = PROXY_PORT, ready: Callable[[int], None] | None = None) -> None:
    """Take redirected connections on ``port`` until cancelled; ``ready`` gets the port once it listens."""
    # Every address of the firewall's namespace: a redirect lands on the link's, and its input rules
    # let in only redirected connections.
    server = await asyncio.start_server(lambda r, w: _session(state_dir, r, w), "0.0.0.0", port,  # noqa: S104
                                        limit=HEAD_LIMIT + 1024)
    if ready is not None:
        ready(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


# --- lab up, lab apply and lab down ------------------------------------------------------------------

def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HubFirewallError(f"`{' '.join(argv)}` failed: {result.stderr.strip() or result.stdout.strip()}")


def namespace_ruleset() -> str:
    """The firewall namespace's own rules: TCP 80 and 443 passing through go to the stand-in; nothing else
    comes in but replies (the namespace does not forward)."""
    ports = ", ".join(str(port) for port in FILTERED_PORTS)
    return "\n".join([
        f"table inet {NFT_TABLE} {{",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        f"    iifname \"{GUEST_INTERFACE}\" fib daddr type != local tcp dport {{ {ports} }} redirect to :{PROXY_PORT}",
        "  }",
        "  chain input {",
        "    type filter hook input priority filter; policy drop;",
        "    ct state established,related accept",
        "    iifname \"lo\" accept",
        f"    tcp dport {PROXY_PORT} ct status dnat accept comment \"redirected 80 and 443\"",
        "    meta l4proto icmp accept",
        "  }",
        "}",
    ]) + "\n"


def create(config: dict[str, Any], directory: Path, resolvers: list[str]) -> str | None:
    """Wire the firewall's namespace and the host's routes to it; its name, or None for a stack without one.

    ``resolvers``: what the firewall resolves upstream names with (the host's resolvers, as Azure
    Firewall uses Azure's DNS)."""
    if not wanted(config):
        return None
    address = landing_zone(config)["hub_firewall_address"]
    netns = HUB_FIREWALL_NETNS
    _run("ip", "netns", "add", netns)
    _run("ip", "link", "add", HUB_FIREWALL_LINK, "type", "veth", "peer", "name", GUEST_INTERFACE, "netns", netns)
    Path(f"/proc/sys/net/ipv6/conf/{HUB_FIREWALL_LINK}/disable_ipv6").write_text("1")
    _run("ip", "addr", "add", f"{HOST_ADDRESS}/{LINK_NETWORK.prefixlen}", "dev", HUB_FIREWALL_LINK)
    _run("ip", "link", "set", HUB_FIREWALL_LINK, "up")
    inside = ("ip", "netns", "exec", netns)
    _run(*inside, "ip", "link", "set", "lo", "up")
    _run(*inside, "ip", "addr", "add", f"{NAMESPACE_ADDRESS}/{LINK_NETWORK.prefixlen}", "dev", GUEST_INTERFACE)
    _run(*inside, "ip", "addr", "add", f"{address}/32", "dev", GUEST_INTERFACE)
    _run(*inside, "ip", "link", "set", GUEST_INTERFACE, "up")
    _run(*inside, "ip", "route", "add", "default", "via", HOST_ADDRESS)
    # A firewall forwards only what its rules allow: the namespace itself forwards nothing.
    _run(*inside, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward")
    directory.mkdir(parents=True, exist_ok=True)
    rules = directory / "namespace.nft"
    rules.write_text(namespace_ruleset())
    _run(*inside, "nft", "-f", str(rules))
    etc = Path("/etc/netns") / netns
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "resolv.conf").write_text("".join(f"nameserver {server}\n" for server in resolvers))
    # The route table's 0.0.0.0/0 to the firewall's address, on the subnets it is associated with.
    _run("ip", "route", "add", f"{address}/32", "via", NAMESPACE_ADDRESS, "dev", HUB_FIREWALL_LINK)
    _run("ip", "route", "add", "default", "via", NAMESPACE_ADDRESS, "dev", HUB_FIREWALL_LINK,
         "table", str(FIREWALL_TABLE))
    for subnet in routed_subnets(config):
        _run("ip", "rule", "add", "from", subnet, "lookup", "main", "suppress_prefixlength", "0",
             "priority", str(MAIN_WITHOUT_DEFAULT_PRIORITY))
        _run("ip", "rule", "add", "from", subnet, "lookup", str(FIREWALL_TABLE),
             "priority", str(FIREWALL_RULE_PRIORITY))
    return netns


def remove_routing() -> list[str]:
    """The host's policy rules to the firewall (its table's route goes with its link); what was removed."""
    removed = []
    for priority in (MAIN_WITHOUT_DEFAULT_PRIORITY, FIREWALL_RULE_PRIORITY):
        while subprocess.run(["ip", "rule", "del", "priority", str(priority)],
                             capture_output=True, check=False).returncode == 0:
            removed.append(f"ip rule {priority}")
    return removed


def write_state(directory: Path, config: dict[str, Any]) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    state = firewall_state(config)
    (directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    return state


def update_state(directory: Path, config: dict[str, Any]) -> bool:
    """With `lab apply`: the running stand-in's rules as the edited stack has them; True when there is one."""
    if not (directory / STATE_FILE).exists() or not wanted(config):
        return False
    write_state(directory, config)
    return True


def start_in_namespace(directory: Path, wait_seconds: float = 30) -> int:
    """Run the stand-in in the firewall's namespace; returns its pid once it listens."""
    from lab.host_processes import HostProcessError, start_listening_in

    argv = [sys.executable, "-m", "lab.hub_firewall", "serve", "--state-dir", str(directory)]
    try:
        pid = start_listening_in(HUB_FIREWALL_NETNS, argv, directory / "firewall.log", "127.0.0.1", PROXY_PORT,
                                 "the hub firewall stand-in", wait_seconds)
    except HostProcessError as error:
        raise HubFirewallError(str(error)) from None
    (directory / PID_FILE).write_text(f"{pid}\n")
    return pid


def stop_process(directory: Path) -> bool:
    """End this lab's stand-in if it runs; True when one was stopped."""
    from lab.host_processes import stop_recorded

    return stop_recorded(directory / PID_FILE, "lab.hub_firewall", str(directory))


def decisions(directory: Path) -> list[dict[str, Any]]:
    """Every decision the stand-in has logged, in order."""
    log = directory / LOG_FILE
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.hub_firewall", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="the stand-in (run by lab up in tb-hubfw)")
    serve_parser.add_argument("--state-dir", type=Path, required=True)
    serve_parser.add_argument("--port", type=int, default=PROXY_PORT)
    args = parser.parse_args(list(argv) if argv is not None else None)
    if not (args.state_dir / STATE_FILE).is_file():
        print(f"lab hub firewall: {args.state_dir / STATE_FILE} does not exist", file=sys.stderr)
        return 2
    asyncio.run(serve(args.state_dir, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
