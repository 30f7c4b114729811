"""Internal names, as Azure's private DNS zone answers them, and nothing outside the allow-list.

dnsmasq on the host listens on each subnet's ``.1`` (the address the machines use as their
resolver, as Azure VMs use the platform resolver), answers ``<machine>.<zone>`` from the
address plan and says "no such name" for anything else in the zone. It forwards to the host's
own resolver only the names the stack allows (``blueprints/dns_allowlist.py``, the list Azure's
DNS security policy is built from), and refuses every other name: a query never leaves the lab
unless Azure would answer it too. Every query and every forward is logged (``dnsmasq.log``), so a
test can see what reached the upstream (``forwarded_names``).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from blueprints.dns_allowlist import AllowedName
from lab.address_plan import AddressPlan
from lab.host_processes import stop_recorded
from lab.identity_provider import ENTRA_HOST

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
LOG_NAME = "dnsmasq.log"


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
                   platform_names: dict[str, str] | None = None, allowed: Sequence[AllowedName] = (),
                   port: int = 53) -> str:
    """The resolver's configuration: local answers, then forwards for the allowed names alone.

    With no ``server=`` line of its own, dnsmasq refuses any name that no ``server=/name/`` line
    covers, so a name missing from ``allowed`` is never sent upstream."""
    local = [zone, *(entry.name for entry in allowed if entry.private and entry.name != zone)]
    forwarded = [entry.name for entry in allowed if not entry.private]
    lines = [
        "# The lab's stand-in for Azure's resolver, its DNS security policy and the private DNS zones.",
        "no-resolv",
        "no-hosts",
        "no-poll",
        "bind-interfaces",
        f"listen-address={','.join(plan.subnet_gateways.values())}",
        *([f"port={port}"] if port != 53 else []),
        # Private zones are answered here, never asked of the Internet, as on Azure.
        *(f"local=/{name}/" for name in local),
        *(f"host-record={machine.name}.{zone},{machine.private_ip}" for machine in plan.machines),
        # The gateway's unchanged configuration names Entra ID; here that name is the lab's stand-in.
        *([f"host-record={ENTRA_HOST},{plan.identity_provider_ip}"] if plan.identity_provider_ip else []),
        # Platform endpoints (the vault's private endpoint), as the privatelink zones answer on Azure.
        *(f"host-record={name},{address}" for name, address in sorted((platform_names or {}).items())),
        # Only these names (and the names under them) reach the upstream resolver.
        *(f"server=/{name}/{server}" for name in forwarded for server in upstream),
        "cache-size=1000",
        # Every query and every forward, for the tests that check what left the lab.
        "log-queries",
        f"pid-file={directory / 'dnsmasq.pid'}",
        f"log-facility={directory / LOG_NAME}",
    ]
    return "\n".join(lines) + "\n"


# dnsmasq's line for a query it sends upstream: "... forwarded NAME to ADDRESS".
_FORWARDED = re.compile(r"\bforwarded (\S+) to (\S+)$")


def forwarded_names(directory: Path) -> list[str]:
    """Every name the resolver has sent upstream, in order, as its log records them."""
    log = directory / LOG_NAME
    if not log.exists():
        return []
    return [match.group(1).rstrip(".").lower() for line in log.read_text(errors="replace").splitlines()
            if (match := _FORWARDED.search(line.strip()))]


def start(plan: AddressPlan, zone: str, directory: Path, platform_names: dict[str, str] | None = None,
          allowed: Sequence[AllowedName] = ()) -> int:
    upstream = upstream_resolvers()
    if not upstream:
        raise DnsError(f"no upstream resolver in {HOST_RESOLV_CONF}: the mirror could not resolve registries")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "dnsmasq.conf"
    config.write_text(dnsmasq_config(plan, zone, upstream, directory, platform_names, allowed))
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
