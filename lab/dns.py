"""Internal names, as Azure's private DNS zone answers them.

dnsmasq on the host listens on each subnet's ``.1`` (the address the machines use as their
resolver, as Azure VMs use the platform resolver), answers ``<machine>.<zone>`` from the
address plan, says "no such name" for anything else in the zone, and forwards other names to
the host's own resolver so the mirror can reach upstream registries.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from lab.address_plan import AddressPlan
from lab.host_processes import stop_recorded
from lab.identity_provider import ENTRA_HOST

HOST_RESOLV_CONF = Path("/etc/resolv.conf")


class DnsError(Exception):
    pass


def upstream_resolvers(resolv_conf: Path = HOST_RESOLV_CONF) -> list[str]:
    servers = []
    for line in resolv_conf.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver" and not fields[1].startswith("127."):
            servers.append(fields[1])
    return servers


def dnsmasq_config(plan: AddressPlan, zone: str, upstream: list[str], directory: Path,
                   platform_names: dict[str, str] | None = None) -> str:
    lines = [
        "# The lab's stand-in for Azure's resolver and the environment's private DNS zone.",
        "no-resolv",
        "no-hosts",
        "no-poll",
        "bind-interfaces",
        f"listen-address={','.join(plan.subnet_gateways.values())}",
        f"local=/{zone}/",
        *(f"host-record={machine.name}.{zone},{machine.private_ip}" for machine in plan.machines),
        # The gateway's unchanged configuration names Entra ID; here that name is the lab's stand-in.
        *([f"host-record={ENTRA_HOST},{plan.identity_provider_ip}"] if plan.identity_provider_ip else []),
        # Platform endpoints (the vault's private endpoint), as the privatelink zones answer on Azure.
        *(f"host-record={name},{address}" for name, address in sorted((platform_names or {}).items())),
        *(f"server={server}" for server in upstream),
        "cache-size=1000",
        f"pid-file={directory / 'dnsmasq.pid'}",
        f"log-facility={directory / 'dnsmasq.log'}",
    ]
    return "\n".join(lines) + "\n"


def start(plan: AddressPlan, zone: str, directory: Path, platform_names: dict[str, str] | None = None) -> int:
    upstream = upstream_resolvers()
    if not upstream:
        raise DnsError(f"no upstream resolver in {HOST_RESOLV_CONF}: the mirror could not resolve registries")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "dnsmasq.conf"
    config.write_text(dnsmasq_config(plan, zone, upstream, directory, platform_names))
    result = subprocess.run(["dnsmasq", f"--conf-file={config}"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DnsError(f"dnsmasq did not start: {result.stderr.strip()} (config {config})")
    pid_file = directory / "dnsmasq.pid"
    for _ in range(50):
        if pid_file.exists() and pid_file.read_text().strip():
            return int(pid_file.read_text())
        time.sleep(0.1)
    raise DnsError(f"dnsmasq wrote no pid file ({pid_file})")


def stop(directory: Path) -> bool:
    return stop_recorded(directory / "dnsmasq.pid", "dnsmasq", str(directory))
