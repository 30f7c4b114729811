"""Where each analyst's own server is published: a web origin of its own.

An analyst's server runs that analyst's code. On the gateway's own host name its pages could read
what the browser keeps for that host and script every other analyst's server there, so each
server gets a host of its own, ``<account>.<machine>.<gateway host>`` (JupyterHub's per-user
subdomains), while the hub and its sign-in stay on the gateway's host. The gateway's certificate
covers ``*.<machine>.<gateway host>`` for each analytics VM, and so does the VM's own certificate
(the gateway keeps the host name when it forwards, so that the hub's proxy can route by host).

One rule decides whether a stack gets them, read by the hub's configuration, the gateway's sites and
the certificates alike.
"""

from __future__ import annotations

from typing import Any

__all__ = ["hub_public_url", "own_origins", "user_domain", "wildcard_names"]


def own_origins(config: dict[str, Any]) -> str | None:
    """The gateway host under which analysts' servers get their own hosts, or None.

    None without a self-hosted gateway (nothing is published on the web), and with a Let's Encrypt
    certificate: its HTTP challenge cannot issue the wildcard names (docs/architecture.md, Who is who).
    """
    gateway = (config.get("roles") or {}).get("gateway") or {}
    if gateway.get("kind") != "self-hosted" or not gateway.get("hostname"):
        return None
    if gateway.get("certificate", "key-vault") != "key-vault":
        return None
    return str(gateway["hostname"])


def user_domain(machine_name: str, gateway_host: str) -> str:
    """The domain under which ``machine_name``'s analysts each have a host of their own."""
    return f"{machine_name}.{gateway_host}"


def hub_public_url(machine_name: str, gateway_host: str) -> str:
    """Where the hub itself is published: on the gateway's host, under the machine's name."""
    return f"https://{gateway_host}/{machine_name}/"


def wildcard_names(config: dict[str, Any], machine_names: list[str]) -> list[str]:
    """The certificate names that cover every analyst's host on these analytics VMs (none when
    the stack has no own origins)."""
    host = own_origins(config)
    if host is None:
        return []
    return [f"*.{user_domain(name, host)}" for name in machine_names]
