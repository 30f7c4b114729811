"""The names a VM of the environment may resolve: one list, read by Azure's DNS policy and the lab.

Azure's resolver (168.63.129.16) answers any public name for every VM, and NSGs cannot filter
it, so without a list a notebook could carry data out inside DNS queries to a domain whose
name servers its author reads. The environment answers only the names below; everything else
is refused. On Azure the list becomes a DNS security policy on the virtual network
(``modules/dns_security_policy.py``); in the lab the resolver forwards only these names
(``lab/dns.py``).

Each entry covers the name and every name under it, as Azure's domain lists and dnsmasq's
``server=/name/`` both match. A query under an allowed name can only reach that name's own
authoritative servers (Microsoft, Debian, the Python Software Foundation, the R Foundation,
npm), which an analyst cannot read.

The list is the same for every subnet (a policy is linked to a whole network), so an analytics
VM can resolve the mirror's upstreams too. That gives it an address, not a path: the NSGs give
no VM but the mirror a route out.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from blueprints.address_ranges import is_ipv4_address
from blueprints.airlock_settings import airlock_settings
from blueprints.data_sources import declared_data_sources
from blueprints.git_server.backup_target import uses_blob
from blueprints.topology import private_dns_zone
from modules.private_link_zones import zones_for

__all__ = ["AZURE_MONITOR_NAMES", "ENTRA_SIGN_IN", "LETS_ENCRYPT_ACME", "UPSTREAM_FILE_HOSTS", "VAULT_DOMAIN",
           "AllowedName", "allowed_names", "domain_of"]

VAULT_DOMAIN = "vault.azure.net"
BLOB_DOMAIN = "blob.core.windows.net"
ENTRA_SIGN_IN = "login.microsoftonline.com"
LETS_ENCRYPT_ACME = "acme-v02.api.letsencrypt.org"
# The Azure Monitor Agent's services, whose host names carry the workspace's and the data collection
# endpoint's ids (known only once deployed), so their parent names are listed; all are answered by
# the Private Link Scope's zones (learn.microsoft.com/azure/azure-monitor/logs/private-link-configure,
# checked 2026-12-02).
AZURE_MONITOR_NAMES = ("handler.control.monitor.azure.com", "ingest.monitor.azure.com",
                       "ods.opinsights.azure.com", "oms.opinsights.azure.com", "agentsvc.azure-automation.net")
# Registries whose index pages send clients to a second host for the files themselves.
UPSTREAM_FILE_HOSTS = {"pypi.org": ("files.pythonhosted.org",)}


@dataclass(frozen=True)
class AllowedName:
    name: str  # a DNS name without the final dot; the name and every name under it
    why: str
    # True where Azure answers it from a zone the environment creates (or the lab from its own records).
    private: bool = False


def domain_of(url: str) -> str | None:
    """The host name of an upstream URL, lowercase, without port or final dot; None for an address."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host or None
    return None  # an address needs no name


def allowed_names(config: dict[str, Any], key_vault: str, storage_account: str,
                  airlock_account: str | None = None) -> list[AllowedName]:
    """Every name a VM of this stack needs, each once, in a stable order.

    ``key_vault`` and ``storage_account`` are Azure names that depend on the subscription, so the
    caller knows them (blueprints.vm_tags.platform_tags gives both; the account is listed only if the
    stack creates it). ``airlock_account`` likewise (``airlock_account_name``), listed only with an airlock:
    a VM asks for ``<account>.blob.core.windows.net``, which is not under the privatelink zone's name
    that answers it."""
    names = [
        AllowedName(private_dns_zone(config), "the environment's internal names (mirror, git, analytics-N, gateway)",
                    private=True),
        *(AllowedName(zone, "a private endpoint's address, from the environment's privatelink zone", private=True)
          for zone in zones_for(["vault", "blob", "azuremonitor"])),
        AllowedName(f"{key_vault}.{VAULT_DOMAIN}", "every VM fetches its certificate, key and secrets at boot"),
        *(AllowedName(name, "the Azure Monitor Agent's configuration and log ingestion")
          for name in AZURE_MONITOR_NAMES),
    ]
    if uses_blob(config):
        names.append(AllowedName(f"{storage_account}.{BLOB_DOMAIN}",
                                 "the Git server's nightly backups"))
    if airlock_settings(config):
        if not airlock_account:
            raise ValueError("the stack has an airlock: allowed_names needs its account's name (airlock_account)")
        names.append(AllowedName(f"{airlock_account}.{BLOB_DOMAIN}",
                                 "reading analytics VMs copy the airlock's ingress container"))
    gateway = config["roles"].get("gateway")
    if gateway and gateway["kind"] == "self-hosted":
        names.append(AllowedName(ENTRA_SIGN_IN, "the gateway's OpenID Connect sign-in with Entra ID"))
        if gateway.get("certificate") == "lets-encrypt":
            names.append(AllowedName(LETS_ENCRYPT_ACME, "certbot orders and renews the gateway's certificate"))
    # A data source named by DNS name: the policy lets the query through; the trust's DNS must answer it
    # (a forwarding rule or resolver for its zone), as Azure's resolver knows no trust-internal name.
    for source in declared_data_sources(config):
        server = source.get("server")
        if server and not is_ipv4_address(server):
            names.append(AllowedName(server, f"analytics VMs reach the trust's data source {source['name']}"))
    mirror = config["roles"].get("package_mirror")
    if mirror:
        for ecosystem, url in sorted(mirror.get("upstreams", {}).items()):
            host = domain_of(url)
            if not host:
                continue
            names.append(AllowedName(host, f"the mirror's {ecosystem} upstream"))
            names += [AllowedName(extra, f"the mirror's {ecosystem} upstream serves its files from here")
                      for extra in UPSTREAM_FILE_HOSTS.get(host, ())]
    unique: dict[str, AllowedName] = {}
    for entry in names:
        unique.setdefault(entry.name, entry)
    return list(unique.values())
