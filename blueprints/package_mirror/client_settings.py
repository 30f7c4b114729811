"""Where clients find the mirror: the values every other role's package tools are pointed at.

One function so the mirror's nginx paths and the clients' configuration cannot drift apart.
Templates get these as ``mirror_client`` (None when the stack has no mirror) and write the
files with ``package_mirror/client-config.yaml.j2``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# The devpi index the mirror serves to clients (curated or open, per the stack's mode).
PYPI_INDEX = "root/trust"
APT_PROXY_PORT = 3142
# Debian's system trust store; the base template adds the environment's CA to it.
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class MirrorClientSettings:
    host: str
    apt_proxy: str
    pypi_index_url: str
    npm_registry: str
    cran_repo: str
    ca_bundle: str


def mirror_client_settings(mirror_host: str) -> MirrorClientSettings:
    base = f"https://{mirror_host}"
    return MirrorClientSettings(
        host=mirror_host,
        apt_proxy=f"http://{mirror_host}:{APT_PROXY_PORT}",
        pypi_index_url=f"{base}/pypi/{PYPI_INDEX}/+simple/",
        npm_registry=f"{base}/npm/",
        cran_repo=f"{base}/cran",
        ca_bundle=SYSTEM_CA_BUNDLE,
    )


def template_values(mirror_host: str | None) -> dict[str, Any] | None:
    return asdict(mirror_client_settings(mirror_host)) if mirror_host else None
