"""Landing-zone mode: the environment as a spoke of a trust's existing Azure hub.

A stack with ``network.landing_zone`` deploys into the hub's world instead of building its own:
its subnets go into an existing spoke virtual network, the mirror's Internet egress goes through
the hub's firewall (a route table, no NAT gateway), private endpoints register in the hub's
private DNS zones, and VMs log to a central Log Analytics workspace. Nothing in the spoke has a
public IP. The hub's resources are looked up by id and never changed.

This module is the one place that knows the section's shape: the schema, the parsing of its
ids, and what the hub team is asked to do (the request pack and the docs read it from here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from blueprints.topology import plan_machines
from modules.naming import Naming
from modules.private_link_zones import zones_for

# The private-link sub-resources the environment's own endpoints use (Key Vault, Blob storage,
# Azure Monitor): the hub must hold a zone for each name these need.
ENDPOINT_GROUPS = ("vault", "blob", "azuremonitor")

# Azure's naming rules, from "Naming rules and restrictions for Azure resources"
# (learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules, checked 2026-12-02).
_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GROUP = r"[-\w._()]{0,89}[-\w_()]"
_VNET = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}[A-Za-z0-9_]"
_WORKSPACE = r"[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]"
_HEAD = rf"/subscriptions/({_GUID})/resourceGroups/({_GROUP})/providers/"

VNET_ID_PATTERN = rf"^{_HEAD}Microsoft\.Network/virtualNetworks/({_VNET})$"
WORKSPACE_ID_PATTERN = rf"^{_HEAD}Microsoft\.OperationalInsights/workspaces/({_WORKSPACE})$"
IPV4_PATTERN = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$"
CIDR_PATTERN = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$"  # the stack schema's ranges (validation/schema.py)

_ID_SHAPE = "/subscriptions/<subscription GUID>/resourceGroups/<group>/providers/"
VNET_ID_ALLOWED = f"a virtual network's resource id: {_ID_SHAPE}Microsoft.Network/virtualNetworks/<name>"
WORKSPACE_ID_ALLOWED = (f"a Log Analytics workspace's resource id: {_ID_SHAPE}"
                        "Microsoft.OperationalInsights/workspaces/<name> (4-63 letters, digits or -)")


def zone_id_pattern(zone: str) -> str:
    """A private DNS zone's id whose last segment is exactly that zone's name."""
    return rf"^{_HEAD}Microsoft\.Network/privateDnsZones/({re.escape(zone)})$"


def zone_id_allowed(zone: str) -> str:
    return f"the hub's private DNS zone id: {_ID_SHAPE}Microsoft.Network/privateDnsZones/{zone}"


def hub_zones() -> list[str]:
    """The privatelink zones the hub must hold for this environment's private endpoints."""
    return zones_for(ENDPOINT_GROUPS)


def _id(doc: str, pattern: str, allowed: str) -> dict[str, Any]:
    return {"type": "string", "required": True, "regex": pattern, "maxlength": 1024,
            "meta": {"doc": doc, "allowed": allowed}}


LANDING_ZONE_SCHEMA: dict[str, Any] = {
    "type": "dict", "required": False, "nullable": True, "default": None,
    "meta": {"doc": "Deploy as a spoke of the trust's existing hub (landing-zone mode): no network, NAT gateway, "
                    "public IP, private DNS zone for private endpoints or Log Analytics workspace of its own. "
                    "Every id is looked up, never changed"},
    "schema": {
        "spoke_virtual_network_id": {
            **_id("An existing spoke virtual network the environment's subnets are created in (its address space "
                  "holds network.address_space); it must be in the subscription the stack deploys to. Leave it "
                  "out to have the spoke created (network.address_space) and peered to the hub",
                  VNET_ID_PATTERN, VNET_ID_ALLOWED),
            "required": False},
        "hub_virtual_network_id": _id(
            "The hub virtual network the spoke is peered to: both forms need it (an existing spoke's peering is "
            "the hub team's; a created spoke's own half is made here, the hub's half by the hub team)",
            VNET_ID_PATTERN, VNET_ID_ALLOWED),
        "use_hub_gateways": {
            "type": "boolean", "default": False,
            "meta": {"doc": "A created spoke only: its peering uses the hub's VPN or ExpressRoute gateway "
                            "(use_remote_gateways), so the trust's network reaches it. Azure refuses this until "
                            "the hub's half of the peering exists with gateway transit allowed: deploy once "
                            "without, have the hub team peer back, then set it and deploy again (an update in place)",
                     "allowed": "true or false"}},
        "hub_firewall_address": {
            "type": "string", "required": True, "regex": IPV4_PATTERN,
            "meta": {"doc": "The hub firewall's private address: the mirror's subnet routes 0.0.0.0/0 to it "
                            "instead of a NAT gateway",
                     "allowed": "a private IPv4 address outside network.address_space, such as 10.0.0.4"}},
        "hub_bastion_range": {
            "type": "string", "required": False, "regex": CIDR_PATTERN,
            "meta": {"doc": "The hub's AzureBastionSubnet range: SSH sessions from the hub's Azure Bastion may reach "
                            "the environment's VMs on port 22 (the only way in for administrators, and to the "
                            "analytics VMs); left out, nothing from the hub reaches port 22",
                     "allowed": "a private IPv4 range outside network.address_space, such as 10.88.0.64/26"}},
        "private_dns_zone_ids": {
            "type": "dict", "required": True,
            "meta": {"doc": "The hub's private DNS zones, by zone name, that the environment's private endpoints "
                            "(Key Vault, Blob storage, Azure Monitor) register their addresses in"},
            "schema": {zone: _id(f"The hub's {zone} zone", zone_id_pattern(zone), zone_id_allowed(zone))
                       for zone in hub_zones()},
        },
        "log_analytics_workspace_id": _id(
            "The central Log Analytics workspace every VM's logs go to (no workspace of the environment's own)",
            WORKSPACE_ID_PATTERN, WORKSPACE_ID_ALLOWED),
    },
}


@dataclass(frozen=True)
class ArmId:
    """A resource id split into the parts a lookup or a child resource needs."""

    id: str
    subscription_id: str
    resource_group: str
    name: str


def parse_id(resource_id: str) -> ArmId:
    """The parts of a schema-valid resource id (any of the patterns above)."""
    parts = resource_id.split("/")
    return ArmId(id=resource_id, subscription_id=parts[2], resource_group=parts[4], name=parts[-1])


def landing_zone(config: dict[str, Any]) -> dict[str, Any] | None:
    """The stack's landing-zone section, or None when the environment builds its own network."""
    return config["network"].get("landing_zone")


def existing_spoke_id(config: dict[str, Any]) -> str | None:
    """The id of the spoke network the platform team gave, or None (no landing zone, or a spoke we create)."""
    zone = landing_zone(config)
    return zone.get("spoke_virtual_network_id") if zone else None


def creates_spoke(config: dict[str, Any]) -> bool:
    """A landing zone whose spoke network this program creates and peers to the hub."""
    return landing_zone(config) is not None and existing_spoke_id(config) is None


def spoke_form(config: dict[str, Any]) -> str:
    """The landing zone's form, in words, for messages that depend on it."""
    if creates_spoke(config):
        return "the spoke is created and peered to the hub (no spoke_virtual_network_id)"
    return "the spoke is the existing network spoke_virtual_network_id names"


def created_spoke_id(config: dict[str, Any]) -> str:
    """The id a created spoke will have, with its subscription left for the deployment to fill in."""
    naming = Naming(config["trust"]["short_name"], config["environment"], config["location"])
    return (f"/subscriptions/<subscription the stack deploys to>/resourceGroups/{naming.name('rg')}"
            f"/providers/Microsoft.Network/virtualNetworks/{naming.name('vnet')}")


# Names the mirror reaches besides its configured upstreams' own hosts: PyPI's index links to
# files on files.pythonhosted.org ("PyPI simple API", docs.pypi.org/api/index-api, checked
# 2026-12-02); the others serve what their index names from the same host.
_EXTRA_HOSTS = {"pypi": ("files.pythonhosted.org",)}
_SCHEME_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class FirewallRule:
    host: str
    port: int
    purpose: str


def firewall_rules(config: dict[str, Any]) -> list[FirewallRule]:
    """Host names and ports the hub firewall must let the mirror reach, from the stack's upstreams."""
    mirror = config["roles"].get("package_mirror")
    if not mirror:
        return []
    found: dict[tuple[str, int], list[str]] = {}
    for ecosystem, url in sorted(mirror["upstreams"].items()):
        parts = urlsplit(url)
        port = parts.port or _SCHEME_PORTS[parts.scheme]
        for host in (parts.hostname or "", *_EXTRA_HOSTS.get(ecosystem, ())):
            found.setdefault((host, port), []).append(ecosystem.replace("_", " "))
    return [FirewallRule(host, port, f"{', '.join(uses)} packages for the mirror")
            for (host, port), uses in sorted(found.items())]


def _public_names(config: dict[str, Any]) -> list[str]:
    """The public names a VM of the spoke resolves (blueprints/dns_allowlist.py), with the Azure names that
    are made at deployment written as what they name."""
    from blueprints.dns_allowlist import allowed_names

    return [entry.name for entry in allowed_names(config, "<the environment's Key Vault>",
                                                  "<its backup storage account>", "<its airlock storage account>")
            if not entry.private]


@dataclass(frozen=True)
class HubRequest:
    what: str  # the change the hub team makes
    detail: str  # ids, names, addresses


def hub_requests(config: dict[str, Any], internal_zone: str) -> list[HubRequest]:
    """What the hub team must do before and after this environment is deployed."""
    zone = landing_zone(config)
    if zone is None:
        return []
    spoke = parse_id(zone.get("spoke_virtual_network_id") or created_spoke_id(config))
    hub = parse_id(zone["hub_virtual_network_id"])
    mirrors = ", ".join(m.private_ip for m in plan_machines(config) if m.internet_egress)
    rules = "; ".join(f"{rule.host}:{rule.port}" for rule in firewall_rules(config))
    if creates_spoke(config):
        # The spoke's half is ours (modules/hub_peering.py); the hub's half lives in the hub network.
        peering = [HubRequest(
            "Peer the hub to the spoke (the hub's half; this program makes the spoke's half, "
            f"{'with' if zone['use_hub_gateways'] else 'without yet'} use_remote_gateways), after the first "
            "deployment has created the spoke",
            f"in hub {hub.name} ({hub.id}): a peering to remote_virtual_network {spoke.id} with "
            "allow_virtual_network_access true, allow_forwarded_traffic true (the firewall forwards the mirror's "
            "traffic), allow_gateway_transit true if the hub has a VPN or ExpressRoute gateway (then set "
            "network.landing_zone.use_hub_gateways: true and deploy again), use_remote_gateways false, "
            f"peer_complete_vnets true; the spoke's range is {config['network']['address_space']}")]
    else:
        peering = [HubRequest("Peer the spoke to the hub (both directions, forwarded traffic allowed)",
                              f"spoke {spoke.name} ({spoke.id}) and hub {hub.name} ({hub.id})")]
    rights = (f"Network Contributor on {spoke.name}" if not creates_spoke(config)
              # Azure checks this action on the remote network when a peering to it is created.
              else f"Microsoft.Network/virtualNetworks/peer/action on the hub {hub.name} (a custom role with that "
                   "action alone; Network Contributor has it among much else)")
    bastion = zone.get("hub_bastion_range")
    # The spoke has no public IP: SSH comes only from the hub's Bastion, whose range the NSGs allow.
    remote_access = (
        f"the hub's Azure Bastion: its subnet {bastion} may reach port 22 of every VM (the Standard SKU's "
        "native-client tunnels carry JupyterLab forwarded over SSH); the spoke has no public IP"
        if bastion else
        "none yet: nothing from the hub may reach port 22 until network.landing_zone.hub_bastion_range names the "
        "hub's AzureBastionSubnet; the spoke has no public IP")
    requests = [
        *peering,
        HubRequest("Allow the package mirror through the hub firewall (application rules, TLS or HTTP by host name)",
                   f"from {mirrors or 'no machine (no mirror in this stack)'} to {rules or 'nothing'}; "
                   f"everything else from {config['network']['address_space']} stays denied"),
        HubRequest("Link the hub's private DNS zones to the spoke, or make the hub's DNS resolver answer for "
                   "them (the environment's private endpoints register their addresses there)",
                   ", ".join(zone["private_dns_zone_ids"])),
        HubRequest("Answer the spoke's DNS queries for these public names only (a DNS security policy on the hub's "
                   "resolver, or the firewall's DNS proxy rules): a resolver that answers any name lets code on a VM "
                   "carry data out inside the names it asks for, which no firewall rule sees",
                   f"from {config['network']['address_space']}: " + ", ".join(_public_names(config))
                   + "; each name and the names under it; every other public name refused"),
        HubRequest("Resolve the environment's own internal zone from the trust's network",
                   f"{internal_zone} (linked to the spoke by this program; the hub's resolver or a forwarding "
                   "rule answers for it elsewhere)"),
        HubRequest("Let the deploying identity create subnets in the spoke and join the hub's zones and workspace"
                   if not creates_spoke(config) else
                   "Let the deploying identity peer to the hub and join the hub's zones and workspace",
                   f"{rights}; Private DNS Zone Contributor on the zones above; "
                   f"Log Analytics Contributor on {parse_id(zone['log_analytics_workspace_id']).name}"),
        HubRequest("Remote access for administrators and analysts through the hub", remote_access),
    ]
    return requests
