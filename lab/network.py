"""Host-side wiring: one bridge per subnet, a cable and a network namespace per machine, and
the client namespace on the lab's Internet bridge.

Bridge ports are isolated and the host answers ARP for the subnet (private-VLAN proxy ARP), so
every packet between two machines, even in one subnet, is routed through the host's forward
path where the NSG rules apply.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from lab.address_plan import AddressPlan
from lab.bastion import BASTION_SUBNET
from lab.identity_provider import ENTRA_HOST
from lab.layout import (
    BASTION_LINK,
    BASTION_NETNS,
    CLIENT_LINK,
    CLIENT_NETNS,
    IDENTITY_LINK,
    IDENTITY_NETNS,
    INTERNET_BRIDGE,
    NFT_TABLE,
    PLATFORM_LINK,
    PREFIX,
    bridge_name,
    machine_link_name,
    machine_netns,
)

NETNS_ETC = Path("/etc/netns")
# Inside every namespace the lab wires, the cable is eth0, as on an Azure VM.
GUEST_INTERFACE = "eth0"


class NetworkError(Exception):
    """A host networking command failed; the message has the command and its error."""


def _run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetworkError(f"`{' '.join(argv)}` failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def _sysctl(key: str, value: str) -> None:
    Path("/proc/sys", key.replace(".", "/")).write_text(value)


def enable_forwarding() -> None:
    # Left on by `lab down`: other tools on the host may rely on it.
    _sysctl("net.ipv4.ip_forward", "1")


def create_bridge(name: str, address: str, prefixlen: int, isolate_ports: bool) -> None:
    _run("ip", "link", "add", name, "type", "bridge")
    _sysctl(f"net.ipv6.conf.{name}.disable_ipv6", "1")
    _run("ip", "addr", "add", f"{address}/{prefixlen}", "dev", name)
    if isolate_ports:
        _sysctl(f"net.ipv4.conf.{name}.proxy_arp", "1")
        _sysctl(f"net.ipv4.conf.{name}.proxy_arp_pvlan", "1")
        _sysctl(f"net.ipv4.conf.{name}.send_redirects", "0")
    _run("ip", "link", "set", name, "up")


def create_subnet_bridges(plan: AddressPlan) -> list[str]:
    created = []
    for subnet, network in plan.subnets.items():
        name = bridge_name(subnet)
        create_bridge(name, plan.subnet_gateways[subnet], network.prefixlen, isolate_ports=True)
        created.append(name)
    return created


def _plug(netns: str, host_link: str, bridge: str, isolated: bool) -> None:
    """A veth cable: ``host_link`` on ``bridge``, eth0 inside the namespace ``netns``."""
    _run("ip", "netns", "add", netns)
    _run("ip", "link", "add", host_link, "type", "veth", "peer", "name", GUEST_INTERFACE, "netns", netns)
    _sysctl(f"net.ipv6.conf.{host_link}.disable_ipv6", "1")
    _run("ip", "link", "set", host_link, "master", bridge)
    if isolated:
        _run("bridge", "link", "set", "dev", host_link, "isolated", "on")
    _run("ip", "link", "set", host_link, "up")


def create_machine_network(machine: str, subnet: str) -> str:
    """The namespace the machine boots in, cabled to its subnet's bridge; returns its path."""
    netns = machine_netns(machine)
    _plug(netns, machine_link_name(machine), bridge_name(subnet), isolated=True)
    return f"/run/netns/{netns}"


def create_client(plan: AddressPlan, gateway_hostname: str | None) -> None:
    """The analyst at home: a namespace on the Internet bridge, in the first allowed client range."""
    create_bridge(INTERNET_BRIDGE, plan.internet_gateway, plan.internet.prefixlen, isolate_ports=False)
    for public_ip in (plan.public_gateway_ip, plan.public_bastion_ip):
        if public_ip:
            _run("ip", "addr", "add", f"{public_ip}/32", "dev", INTERNET_BRIDGE)
    _plug(CLIENT_NETNS, CLIENT_LINK, INTERNET_BRIDGE, isolated=False)
    inside = ("ip", "netns", "exec", CLIENT_NETNS)
    _run(*inside, "ip", "link", "set", "lo", "up")
    _run(*inside, "ip", "addr", "add", f"{plan.client_ip}/32", "dev", GUEST_INTERFACE)
    _run(*inside, "ip", "link", "set", GUEST_INTERFACE, "up")
    _run(*inside, "ip", "route", "add", str(plan.internet), "dev", GUEST_INTERFACE, "src", plan.client_ip)
    _run(*inside, "ip", "route", "add", "default", "via", plan.internet_gateway, "src", plan.client_ip)
    _run("ip", "route", "add", f"{plan.client_ip}/32", "dev", INTERNET_BRIDGE)
    # `ip netns exec` shows these files as /etc/hosts and /etc/resolv.conf in the namespace.
    etc = NETNS_ETC / CLIENT_NETNS
    etc.mkdir(parents=True, exist_ok=True)
    hosts = "127.0.0.1 localhost\n"
    if gateway_hostname and plan.public_gateway_ip:
        hosts += f"{plan.public_gateway_ip} {gateway_hostname}\n"
    if plan.identity_provider_ip:
        # The analyst's browser signs in at Entra ID, which in the lab is its stand-in.
        hosts += f"{plan.identity_provider_ip} {ENTRA_HOST}\n"
    (etc / "hosts").write_text(hosts)
    # The client has no resolver: names it may use are in its hosts file.
    (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")


def create_identity_provider_network(plan: AddressPlan) -> str:
    """Entra ID's stand-in: a namespace on the Internet bridge; returns its name."""
    if not plan.identity_provider_ip:
        raise NetworkError("no identity provider address: the stack has no self-hosted gateway")
    _plug(IDENTITY_NETNS, IDENTITY_LINK, INTERNET_BRIDGE, isolated=False)
    inside = ("ip", "netns", "exec", IDENTITY_NETNS)
    _run(*inside, "ip", "link", "set", "lo", "up")
    _run(*inside, "ip", "addr", "add", f"{plan.identity_provider_ip}/{plan.internet.prefixlen}",
         "dev", GUEST_INTERFACE)
    _run(*inside, "ip", "link", "set", GUEST_INTERFACE, "up")
    _run(*inside, "ip", "route", "add", "default", "via", plan.internet_gateway)
    # The analyst's browser reaches the provider across the Internet bridge; answer it the same way
    # (through the host, the reply would meet a connection the host never saw).
    _run(*inside, "ip", "route", "add", f"{plan.client_ip}/32", "dev", GUEST_INTERFACE)
    return IDENTITY_NETNS


def create_bastion_network(plan: AddressPlan) -> str:
    """Azure Bastion's instance: a namespace cabled to the Bastion subnet's bridge at its instance
    address, routed through the host like a VM (lab/bastion.py); returns its name."""
    if not plan.bastion_ip:
        raise NetworkError("no Bastion instance address: the stack's gateway is not Azure Bastion")
    subnet = BASTION_SUBNET
    _plug(BASTION_NETNS, BASTION_LINK, bridge_name(subnet), isolated=True)
    inside = ("ip", "netns", "exec", BASTION_NETNS)
    _run(*inside, "ip", "link", "set", "lo", "up")
    _run(*inside, "ip", "addr", "add", f"{plan.bastion_ip}/{plan.subnets[subnet].prefixlen}", "dev", GUEST_INTERFACE)
    _run(*inside, "ip", "link", "set", GUEST_INTERFACE, "up")
    _run(*inside, "ip", "route", "add", "default", "via", plan.subnet_gateways[subnet])
    return BASTION_NETNS


def create_platform_link(addresses: tuple[str, ...]) -> None:
    """The host addresses the Azure platform stand-ins answer on (lab/platform_services.py).

    Machines reach them through their default gateway, as an Azure VM reaches 169.254.169.254
    through its host; the host's input rules (lab/firewall.py) let in only those ports."""
    # A bridge with no ports: only a place for host addresses (some kernels have no dummy links).
    _run("ip", "link", "add", PLATFORM_LINK, "type", "bridge")
    for address in addresses:
        _run("ip", "addr", "add", f"{address}/32", "dev", PLATFORM_LINK)
    _run("ip", "link", "set", PLATFORM_LINK, "up")


def apply_ruleset(nft_file: Path) -> None:
    _run("nft", "-f", str(nft_file))


def lab_links() -> list[str]:
    links = json.loads(_run("ip", "-j", "link", "show") or "[]")
    return [link["ifname"] for link in links if link["ifname"].startswith(PREFIX)]


def lab_namespaces() -> list[str]:
    names = json.loads(_run("ip", "-j", "netns", "list") or "[]")
    return [entry["name"] for entry in names if entry["name"].startswith(PREFIX)]


def processes_in(netns: str) -> list[int]:
    """Host processes whose network namespace is ``netns`` (machines' processes and probes)."""
    try:
        inode = os.stat(f"/run/netns/{netns}").st_ino
    except FileNotFoundError:
        return []
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.stat(entry / "ns/net").st_ino == inode:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _wait_until_gone(pids: list[int], seconds: float = 10) -> None:
    """A killed process ends a moment later; `lab down` returns once each has (or is only a zombie)."""
    deadline = time.monotonic() + seconds
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                break
            if state in ("Z", "X"):
                break
            time.sleep(0.05)


def nft_table_present() -> bool:
    result = subprocess.run(["nft", "list", "table", "inet", NFT_TABLE], capture_output=True, check=False)
    return result.returncode == 0


def remove_all() -> list[str]:
    """Remove every host object the lab wires (found by name, so a half-built lab goes too)."""
    removed = []
    if nft_table_present():
        _run("nft", "delete", "table", "inet", NFT_TABLE)
        removed.append(f"nftables table inet {NFT_TABLE}")
    if subprocess.run(["nft", "list", "table", "bridge", NFT_TABLE], capture_output=True, check=False).returncode == 0:
        _run("nft", "delete", "table", "bridge", NFT_TABLE)
        removed.append(f"nftables table bridge {NFT_TABLE}")
    for netns in lab_namespaces():
        killed = processes_in(netns)
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                removed.append(f"process {pid} in {netns}")
        _wait_until_gone(killed)
        _run("ip", "netns", "delete", netns)
        removed.append(f"namespace {netns}")
    # Deleting a namespace deletes the veth ends inside it, and so their host peers.
    for link in lab_links():
        subprocess.run(["ip", "link", "delete", link], capture_output=True, check=False)
        removed.append(f"link {link}")
    # The namespaces' own /etc files (the client's hosts and resolver, the hub firewall's resolver).
    for etc in sorted(NETNS_ETC.glob(f"{PREFIX}*")) if NETNS_ETC.exists() else []:
        shutil.rmtree(etc)
        removed.append(str(etc))
    return removed
