"""The trust's own network, as far as the lab needs it: the servers of the declared data sources.

On Azure the data sources sit on the trust's network, reached over VNet peering or VPN; only the
analytics subnet's NSG decides what reaches them (roles.analytics.data_sources, compiled to one
outbound rule each). In the lab one namespace holds every declared server's address, on a link of
its own from the host; the host routes each server's address there. Traffic from a machine goes
through the host's forward path like any other, so the compiled NSG rules (lab/firewall.py) decide
exactly as on Azure: the declared port passes, any other port is dropped by the final deny. What
listens inside the namespace is up to the test (a TCP listener standing in for SQL Server).

With an airlock, the namespace also holds a data provider's machine: the first address of each of
``network.private_client_ranges``, from which a person of the data providers group uploads to the
airlock's private endpoint (``provider_addresses``; bind to it, e.g. ``curl --interface``).
"""

from __future__ import annotations

import ipaddress
import subprocess
from typing import Any

from blueprints.airlock_settings import airlock_settings
from blueprints.data_sources import data_source_server, declared_data_sources
from lab.layout import PREFIX
from lab.network import NetworkError

TRUST_NETNS = f"{PREFIX}trust"
TRUST_LINK = f"{PREFIX}trust"
GUEST_INTERFACE = "eth0"
# A link network for the namespace (shared address space, RFC 6598, as the lab's Internet): never a
# trust's range, so the servers' own addresses are only ever the declared ones.
TRUST_LINK_NETWORK = ipaddress.ip_network("100.64.78.0/30")
HOST_ADDRESS = str(TRUST_LINK_NETWORK.network_address + 1)
NAMESPACE_ADDRESS = str(TRUST_LINK_NETWORK.network_address + 2)


class TrustNetworkError(NetworkError):
    """A command wiring the trust network failed; the message has the command and its error."""


def server_addresses(config: dict[str, Any]) -> list[str]:
    """The address that stands in for each declared data source: its server, or its range's first host."""
    addresses = []
    for source in declared_data_sources(config):
        server = data_source_server(source)
        try:
            address = str(ipaddress.IPv4Address(server)) if server else None
        except ValueError:
            address = None  # a DNS name: the lab stands in at the range's first host
        if address is None:
            network = ipaddress.ip_network(source["range"])
            address = str(next(network.hosts(), network.network_address))
        if address not in addresses:
            addresses.append(address)
    return addresses


def provider_addresses(config: dict[str, Any]) -> list[str]:
    """A data provider's machine in each of the trust's private client ranges (none without an airlock)."""
    if not airlock_settings(config):
        return []
    addresses = []
    for prefix in config["network"].get("private_client_ranges") or []:
        network = ipaddress.ip_network(prefix)
        addresses.append(str(next(network.hosts(), network.network_address)))
    return addresses


def namespace_addresses(config: dict[str, Any]) -> list[str]:
    """Every address the trust network holds in the lab: data sources' servers, then data providers."""
    addresses = server_addresses(config)
    return addresses + [address for address in provider_addresses(config) if address not in addresses]


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TrustNetworkError(f"`{' '.join(argv)}` failed: {result.stderr.strip() or result.stdout.strip()}")


def create(config: dict[str, Any]) -> str | None:
    """Wire the namespace with every data source's and data provider's address; its name, or None
    without either.

    ``lab down`` removes it with the lab's other namespaces and links (found by the lab's prefix)."""
    addresses = namespace_addresses(config)
    if not addresses:
        return None
    _run("ip", "netns", "add", TRUST_NETNS)
    _run("ip", "link", "add", TRUST_LINK, "type", "veth", "peer", "name", GUEST_INTERFACE, "netns", TRUST_NETNS)
    _run("ip", "addr", "add", f"{HOST_ADDRESS}/{TRUST_LINK_NETWORK.prefixlen}", "dev", TRUST_LINK)
    _run("ip", "link", "set", TRUST_LINK, "up")
    inside = ("ip", "netns", "exec", TRUST_NETNS)
    _run(*inside, "ip", "link", "set", "lo", "up")
    _run(*inside, "ip", "addr", "add", f"{NAMESPACE_ADDRESS}/{TRUST_LINK_NETWORK.prefixlen}", "dev", GUEST_INTERFACE)
    for address in addresses:
        _run(*inside, "ip", "addr", "add", f"{address}/32", "dev", GUEST_INTERFACE)
    _run(*inside, "ip", "link", "set", GUEST_INTERFACE, "up")
    _run(*inside, "ip", "route", "add", "default", "via", HOST_ADDRESS)
    for address in addresses:
        _run("ip", "route", "add", f"{address}/32", "via", NAMESPACE_ADDRESS, "dev", TRUST_LINK)
    return TRUST_NETNS


def _present() -> bool:
    result = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return any(line.split()[0] == TRUST_NETNS for line in result.stdout.splitlines() if line.strip())


def update(config: dict[str, Any]) -> list[str]:
    """After a day-two edit (`lab apply`): give the namespace the address of each data source declared
    since `lab up`, as the trust's network already has it; returns the addresses added. Addresses of
    sources no longer declared stay: the NSG rules, not the trust's network, stop the traffic."""
    addresses = namespace_addresses(config)
    if not addresses:
        return []
    if not _present():
        create(config)
        return addresses
    inside = ("ip", "netns", "exec", TRUST_NETNS)
    shown = subprocess.run([*inside, "ip", "-o", "-4", "addr", "show", "dev", GUEST_INTERFACE],
                           capture_output=True, text=True, check=False).stdout
    have = {field.split("/")[0] for line in shown.splitlines() for field in line.split()[3:4]}
    added = [address for address in addresses if address not in have]
    for address in added:
        _run(*inside, "ip", "addr", "add", f"{address}/32", "dev", GUEST_INTERFACE)
        _run("ip", "route", "add", f"{address}/32", "via", NAMESPACE_ADDRESS, "dev", TRUST_LINK)
    return added
