"""Where each analyst's own server is published: a web origin of its own.

An analyst's server runs that analyst's code. On the gateway's own host name its pages could read
what the browser keeps for that host and script every other analyst's server there, so each
server gets a host of its own, ``<account>--<machine>.users.<gateway host>`` (JupyterHub's per-user
subdomains, the machine in the label so that one wildcard name serves every analytics VM), while
the hub and its sign-in stay on the gateway's host. One wildcard DNS record and one certificate
name, ``*.users.<gateway host>``, cover every analyst of every VM, so adding a VM or an analyst
changes neither; the analytics VMs' own certificates carry the name too (the gateway keeps the
host name when it forwards, so that the hub's proxy can route by host).

One rule decides whether a stack gets them, read by the hub's configuration, the gateway's sites and
the certificates alike.
"""

from __future__ import annotations

from typing import Any

__all__ = ["hub_public_url", "own_origins", "user_host", "users_domain", "wildcard_names"]

# Between the (JupyterHub-encoded) account and the machine in an analyst's host label.
MACHINE_SEPARATOR = "--"


def own_origins(config: dict[str, Any]) -> str | None:
    """The gateway host under which analysts' servers get their own hosts, or None.

    None without a self-hosted gateway (nothing is published on the web), and with a Let's Encrypt
    certificate: its HTTP challenge cannot issue the wildcard name (docs/architecture.md, One origin
    per analyst).
    """
    gateway = (config.get("roles") or {}).get("gateway") or {}
    if gateway.get("kind") != "self-hosted" or not gateway.get("hostname"):
        return None
    if gateway.get("certificate", "key-vault") != "key-vault":
        return None
    return str(gateway["hostname"])


def users_domain(gateway_host: str) -> str:
    """The domain under which every analyst's server has a host of its own."""
    return f"users.{gateway_host}"


def user_host(label: str, machine_name: str, gateway_host: str) -> str:
    """The host of the analyst whose name JupyterHub encodes as ``label``, on ``machine_name``."""
    return f"{label}{MACHINE_SEPARATOR}{machine_name}.{users_domain(gateway_host)}"


def hub_public_url(machine_name: str, gateway_host: str) -> str:
    """Where the hub itself is published: on the gateway's host, under the machine's name."""
    return f"https://{gateway_host}/{machine_name}/"


def wildcard_names(config: dict[str, Any]) -> list[str]:
    """The certificate name that covers every analyst's host (none when the stack has no own origins)."""
    host = own_origins(config)
    return [] if host is None else [f"*.{users_domain(host)}"]
