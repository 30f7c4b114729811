"""The one table of allowed network flows, and the NSG rules compiled from it.

Every flow the environment needs is a row below; nothing else is allowed. Each subnet's NSG
gets the inbound half of the flows that end in it and the outbound half of those that start
in it, then a final deny in both directions. The lab compiles the same rules to nftables.

Endpoints are written as:
  ``clients``           the trust's allowed client ranges (analysts at home, via the trust VPN)
  ``private-clients``   private ranges of the trust's own network joined by peering, VPN or
                        ExpressRoute (existing analyst machines; present only when listed)
  ``internet``          anything outside the virtual network
  ``hub-bastion``       a landing zone hub's AzureBastionSubnet (network.landing_zone.hub_bastion_range;
                        present only when given)
  ``subnet:NAME``       every address of a subnet
  ``role:ROLE``         the fixed addresses of the machines of one role (``role:*``: every VM)
  ``endpoint:NAME``     a platform service's private endpoint in the ``services`` subnet
                        (``ENDPOINTS``): its fixed address, or the subnet where Azure picks several
  ``tag:NAME``          an Azure service tag (Azure-only; the lab has no such services)
  ``data-source:NAME``  one of the trust's declared data sources (roles.analytics.data_sources):
                        its range on the trust's network; one row each, made by ``data_source_flows``

Every platform service a VM needs has a route (``PLATFORM_SERVICES``): a flow to its private
endpoint, or the host's own channel; validation refuses a stack where a VM would have none.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from blueprints.data_sources import DATA_SOURCE_KINDS, declared_data_sources
from blueprints.roles import role
from blueprints.topology import Machine, plan_machines, role_subnet, subnet_plan
from modules.security_rule import SecurityRule

__all__ = ["ENDPOINTS", "ENDPOINT_SUBNET", "FLOWS", "PLATFORM_SERVICES", "Flow", "PlatformService", "Priority",
           "SecurityRule", "active_flows", "data_source_flows", "endpoint_address_clashes", "endpoint_addresses",
           "missing_platform_routes", "nsg_rules"]


class Priority(IntEnum):
    """Named NSG priority bands (lower number wins). Rules inside a band step by 10."""

    FROM_CLIENTS = 1000
    BETWEEN_SUBNETS = 2000
    TO_TRUST_DATA_SOURCES = 2500
    TO_AZURE_SERVICES = 3000
    TO_INTERNET = 3500
    DENY_ALL = 4096


@dataclass(frozen=True)
class Flow:
    name: str
    source: str
    destination: str
    ports: tuple[int, ...]
    purpose: str
    protocol: str = "Tcp"
    # Which gateway kinds need the flow; None means all.
    gateway_kinds: tuple[str, ...] | None = None
    # Which gateway certificate sources need the flow; None means all.
    certificates: tuple[str, ...] | None = None
    # Which Git server backup targets (roles.git_server.backup.target) need the flow; None means all.
    git_backup_targets: tuple[str, ...] | None = None


SELF_HOSTED = ("self-hosted",)
BASTION = ("bastion",)
LETS_ENCRYPT = ("lets-encrypt",)

FLOWS: tuple[Flow, ...] = (
    # Entry from analysts' networks: only the gateway (or Azure Bastion) is reachable.
    Flow("https-clients-to-gateway", "clients", "role:gateway", (443,),
         "single sign-on web entry to every tool", gateway_kinds=SELF_HOSTED),
    Flow("ssh-clients-to-gateway", "clients", "role:gateway", (22,),
         "SSH jump host (key and TOTP code)", gateway_kinds=SELF_HOSTED),
    Flow("https-clients-to-bastion", "clients", "subnet:bastion", (443,),
         "Azure Bastion portal sessions", gateway_kinds=BASTION),
    Flow("control-gatewaymanager-to-bastion", "tag:GatewayManager", "subnet:bastion", (443,),
         "Azure Bastion control plane", gateway_kinds=BASTION),
    Flow("probe-loadbalancer-to-bastion", "tag:AzureLoadBalancer", "subnet:bastion", (443,),
         "Azure Bastion health probes", gateway_kinds=BASTION),
    # The gateway publishes internal tools.
    Flow("web-gateway-to-analytics", "role:gateway", "role:analytics", (8000,),
         "JupyterHub behind single sign-on", gateway_kinds=SELF_HOSTED),
    Flow("ssh-gateway-to-analytics", "role:gateway", "role:analytics", (22,),
         "SSH onward from the jump host", gateway_kinds=SELF_HOSTED),
    Flow("web-gateway-to-git", "role:gateway", "role:git_server", (443,),
         "Git web view behind single sign-on", gateway_kinds=SELF_HOSTED),
    Flow("ssh-gateway-to-git", "role:gateway", "role:git_server", (22,),
         "git over SSH through the jump host", gateway_kinds=SELF_HOSTED),
    Flow("ssh-bastion-to-analytics", "subnet:bastion", "role:analytics", (22,),
         "Azure Bastion SSH sessions", gateway_kinds=BASTION),
    Flow("ssh-bastion-to-services", "subnet:bastion", "subnet:services", (22,),
         "Azure Bastion SSH sessions for administrators", gateway_kinds=BASTION),
    # A landing zone's spoke has no gateway of its own: SSH comes from the hub's Azure Bastion.
    Flow("ssh-hub-bastion-to-analytics", "hub-bastion", "role:analytics", (22,),
         "SSH sessions through the landing zone hub's Azure Bastion"),
    Flow("ssh-hub-bastion-to-services", "hub-bastion", "subnet:services", (22,),
         "administrators' SSH sessions through the landing zone hub's Azure Bastion"),
    # Everything installs through the mirror; code lives on the Git server.
    Flow("packages-analytics-to-mirror", "role:analytics", "role:package_mirror", (443, 3142),
         "pip, npm, R and apt through the trust's mirror"),
    Flow("packages-gateway-to-mirror", "role:gateway", "role:package_mirror", (443, 3142),
         "security updates for the gateway"),
    Flow("packages-git-to-mirror", "role:git_server", "role:package_mirror", (443, 3142),
         "security updates for the Git server"),
    Flow("git-analytics-to-git", "role:analytics", "role:git_server", (22, 443),
         "clone and push over SSH (the Git web view on 443 answers only the gateway)"),
    Flow("allowlist-mirror-to-git", "role:package_mirror", "role:git_server", (22,),
         "the mirror pulls its allowlists from the package-requests repository"),
    # Existing analyst machines on the trust's own network get what analytics VMs get, no more.
    Flow("packages-private-clients-to-mirror", "private-clients", "role:package_mirror", (443, 3142),
         "pip, npm, R and apt for the trust's existing analyst machines"),
    Flow("git-private-clients-to-git", "private-clients", "role:git_server", (22, 443),
         "clone and push from the trust's existing analyst machines"),
    # Azure platform services, each through its private endpoint: a service tag would reach every
    # tenant's vaults, accounts and workspaces, a way out for stolen data.
    Flow("monitor-vms-to-monitor-endpoint", "role:*", "endpoint:azure-monitor", (443,),
         "Azure Monitor Agent: configuration and logs through the Private Link Scope's endpoint"),
    Flow("secrets-vms-to-key-vault-endpoint", "role:*", "endpoint:key-vault", (443,),
         "VM identities read their secrets through the vault's private endpoint"),
    # The airlock's ingress (only with `airlock:`): providers upload from the trust's network, the
    # analytics VMs read; the storage account grants each only its role on the one container.
    Flow("ingress-private-clients-to-airlock-endpoint", "private-clients", "endpoint:airlock", (443,),
         "data providers upload to the airlock's ingress container (Entra ID sign-in, write to that container)"),
    Flow("ingress-analytics-to-airlock-endpoint", "role:analytics", "endpoint:airlock", (443,),
         "analytics VMs read the airlock's ingress container (managed identity; only readers are granted)"),
    Flow("backup-git-to-blob-endpoint", "role:git_server", "endpoint:blob", (443,),
         "the Git server copies its nightly backups to the environment's Blob container",
         git_backup_targets=("auto", "azure-blob")),
    Flow("signin-gateway-to-entra", "role:gateway", "tag:AzureActiveDirectory", (443,),
         "OpenID Connect token exchange with Entra ID", gateway_kinds=SELF_HOSTED),
    # Only with `certificate: lets-encrypt`: the HTTP-01 challenge comes from anywhere, and certbot
    # talks to the ACME API.
    Flow("acme-internet-to-gateway", "internet", "role:gateway", (80,),
         "Let's Encrypt validates the gateway's host name", gateway_kinds=SELF_HOSTED, certificates=LETS_ENCRYPT),
    Flow("acme-gateway-to-internet", "role:gateway", "internet", (443,),
         "certbot orders and renews the gateway's certificate", gateway_kinds=SELF_HOSTED,
         certificates=LETS_ENCRYPT),
    Flow("dataplane-bastion-to-bastion", "subnet:bastion", "subnet:bastion", (8080, 5701),
         "Azure Bastion host-to-host data plane", gateway_kinds=BASTION),
    Flow("sessions-bastion-to-internet", "subnet:bastion", "internet", (80,),
         "Azure Bastion session and certificate validation", gateway_kinds=BASTION),
    Flow("session-bastion-to-azurecloud", "subnet:bastion", "tag:AzureCloud", (443,),
         "Azure Bastion session logging and diagnostics", gateway_kinds=BASTION),
    # The single route to the Internet: the mirror fetching from public registries.
    Flow("upstream-mirror-to-internet", "role:package_mirror", "internet", (80, 443),
         "the mirror fetches from Debian, PyPI, CRAN and npm"),
)


# Every private endpoint sits in this subnet (the mirror's and the Git server's).
ENDPOINT_SUBNET = "services"


@dataclass(frozen=True)
class Endpoint:
    name: str
    # Steps back from the subnet's broadcast address (1: the last usable address), or None where the
    # endpoint has one address per member and Azure picks them (the whole subnet is the destination).
    from_top: int | None


ENDPOINTS = {e.name: e for e in (
    Endpoint("key-vault", 1),
    Endpoint("blob", 2),
    Endpoint("airlock", 3),  # the airlock's storage account (only with `airlock:`)
    Endpoint("azure-monitor", None),  # about ten addresses: global, regional, workspace and DCE members
)}


def endpoint_addresses(config: dict[str, Any]) -> dict[str, str]:
    """Endpoint name -> its fixed address, for the endpoints that have one ({} without the subnet)."""
    subnet = subnet_plan(config).get(ENDPOINT_SUBNET)
    if subnet is None:
        return {}
    return {e.name: str(subnet.broadcast_address - e.from_top) for e in ENDPOINTS.values()
            if e.from_top and (e.name != "airlock" or config.get("airlock"))}


@dataclass(frozen=True)
class PlatformService:
    """An Azure service a VM's own software talks to, and how it gets there."""

    name: str
    needed_by: str  # every-vm | backed-up | blob-backup (which machines need it)
    flow: str | None  # the flow that carries it; None: the host's channel (no network path needed)
    why: str  # what uses it, and the source for the route


PLATFORM_SERVICES: tuple[PlatformService, ...] = (
    PlatformService("Key Vault", "every-vm", "secrets-vms-to-key-vault-endpoint",
                    "the boot step fetches the machine's certificate, key and role secrets"),
    PlatformService("Azure Monitor", "every-vm", "monitor-vms-to-monitor-endpoint",
                    "the Azure Monitor Agent sends syslog (learn.microsoft.com/azure/azure-monitor/agents/"
                    "azure-monitor-agent-private-link, checked 2026-12-02)"),
    PlatformService("Azure Backup", "backed-up", None,
                    "the VM agent's snapshot extension talks to the host (168.63.129.16), which NSGs always "
                    "allow: Azure VM backup needs no Internet and no private endpoint (learn.microsoft.com/"
                    "azure/backup/private-endpoints-overview, checked 2026-12-02)"),
    PlatformService("Blob storage", "blob-backup", "backup-git-to-blob-endpoint",
                    "the Git server's nightly backups to the environment's container"),
)


def _needs(service: PlatformService, machine: Machine, config: dict[str, Any]) -> bool:
    if service.needed_by == "every-vm":
        return True
    if service.needed_by == "backed-up":
        return role(machine.role).backed_up
    git = config["roles"].get("git_server")
    target = git.get("backup", {}).get("target", "auto") if git else None
    return machine.role == "git_server" and target in ("auto", "azure-blob")


def _carries(flow: Flow, machine: Machine) -> bool:
    kind, _, value = flow.source.partition(":")
    return (kind == "role" and value in ("*", machine.role)) or (kind == "subnet" and value in ("*", machine.subnet))


def missing_platform_routes(config: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(machine, service, why) for every platform service a VM needs but has no route to."""
    active = {flow.name: flow for flow in active_flows(config)}
    known = {flow.name for flow in FLOWS}
    missing = []
    for machine in plan_machines(config):
        for service in PLATFORM_SERVICES:
            if service.flow is None or not _needs(service, machine, config):
                continue
            flow = active.get(service.flow)
            if flow is None:
                no_subnet = service.flow in known and ENDPOINT_SUBNET not in subnet_plan(config)
                why = (f"no {ENDPOINT_SUBNET} subnet holds its private endpoint" if no_subnet
                       else f"the flow {service.flow} is not in the table")
                missing.append((machine.name, service.name, why))
            elif not _carries(flow, machine):
                missing.append((machine.name, service.name, f"the flow {flow.name} does not start at it"))
    return missing


def endpoint_address_clashes(config: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(endpoint, address, machine) where a private endpoint's fixed address is a VM's address."""
    taken = {machine.private_ip: machine.name for machine in plan_machines(config)}
    return [(name, address, taken[address]) for name, address in endpoint_addresses(config).items() if address in taken]


def data_source_flows(config: dict[str, Any]) -> list[Flow]:
    """One row per declared data source: the analytics VMs to its range, on its one port."""
    return [
        Flow(f"data-analytics-to-{source['name']}", "role:analytics", f"data-source:{source['name']}",
             (source["port"],),
             f"{source['kind']} data source {source['name']} on the trust's network"
             + (f" ({source['description']})" if source.get("description") else ""))
        for source in declared_data_sources(config)
        if source["kind"] in DATA_SOURCE_KINDS
    ]


def _band(flow: Flow) -> Priority:
    if flow.source in ("clients", "private-clients", "hub-bastion") or flow.source.startswith("tag:"):
        return Priority.FROM_CLIENTS
    if flow.destination.startswith("data-source:"):
        return Priority.TO_TRUST_DATA_SOURCES
    if flow.destination.startswith(("tag:", "endpoint:")):
        return Priority.TO_AZURE_SERVICES
    if flow.destination == "internet":
        return Priority.TO_INTERNET
    return Priority.BETWEEN_SUBNETS


class _Resolver:
    """Turns flow endpoints into address prefixes and the subnets they sit in."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.subnets = {name: str(net) for name, net in subnet_plan(config).items()}
        self.clients = tuple(config["network"]["allowed_client_ranges"])
        self.private_clients = tuple(config["network"]["private_client_ranges"])
        hub_bastion = (config["network"].get("landing_zone") or {}).get("hub_bastion_range")
        self.hub_bastion = (hub_bastion,) if hub_bastion else ()
        self.role_ips: dict[str, list[str]] = {}
        self.role_subnets: dict[str, list[str]] = {}
        for machine in plan_machines(config):
            self.role_ips.setdefault(machine.role, []).append(f"{machine.private_ip}/32")
            self.role_ips.setdefault("*", []).append(f"{machine.private_ip}/32")
            if machine.subnet not in self.role_subnets.setdefault("*", []):
                self.role_subnets["*"].append(machine.subnet)
        self.endpoints = endpoint_addresses(config)
        self.data_sources = {source["name"]: source["range"] for source in declared_data_sources(config)}

    def present(self, endpoint: str) -> bool:
        kind, _, value = endpoint.partition(":")
        if endpoint == "private-clients":
            return bool(self.private_clients)
        if endpoint == "hub-bastion":
            return bool(self.hub_bastion)
        if kind == "subnet":
            return value == "*" or value in self.subnets
        if kind == "role":
            return value in self.role_ips
        if kind == "endpoint":
            return ENDPOINT_SUBNET in self.subnets and (value != "airlock" or value in self.endpoints)
        if kind == "data-source":
            return value in self.data_sources
        return True

    def prefixes(self, endpoint: str) -> tuple[str, ...]:
        kind, _, value = endpoint.partition(":")
        if endpoint == "clients":
            return self.clients
        if endpoint == "private-clients":
            return self.private_clients
        if endpoint == "hub-bastion":
            return self.hub_bastion
        if endpoint == "internet":
            return ("Internet",)
        if kind == "tag":
            return (value,)
        if kind == "data-source":
            return (self.data_sources[value],)
        if kind == "role":
            return tuple(self.role_ips[value])
        if kind == "endpoint":
            address = self.endpoints.get(value)
            return (f"{address}/32",) if address else self._free_endpoint_space()
        if value == "*":
            return ("VirtualNetwork",)
        return (self.subnets[value],)

    def _free_endpoint_space(self) -> tuple[str, ...]:
        """Where Azure may place an endpoint whose addresses it picks: the endpoint subnet without its
        VMs and the fixed endpoints, so a rule to the endpoint never opens a VM's port."""
        subnet = ipaddress.ip_network(self.subnets[ENDPOINT_SUBNET])
        taken = {ipaddress.ip_network(prefix) for prefixes in self.role_ips.values() for prefix in prefixes}
        taken |= {ipaddress.ip_network(f"{ip}/32") for ip in self.endpoints.values() if ip}
        taken = {network for network in taken if network.subnet_of(subnet)}
        free = [subnet]
        for network in taken:
            free = [part for block in free
                    for part in (block.address_exclude(network) if network.subnet_of(block) else [block])]
        return tuple(str(block) for block in sorted(free))

    def home_subnets(self, endpoint: str) -> tuple[str, ...]:
        """The subnets whose NSG sees this endpoint's traffic (none outside the VNet)."""
        kind, _, value = endpoint.partition(":")
        if kind == "role":
            return tuple(self.role_subnets["*"]) if value == "*" else (role_subnet(value),)
        if kind == "endpoint":
            return (ENDPOINT_SUBNET,)
        if kind == "subnet":
            return tuple(self.subnets) if value == "*" else (value,)
        return ()


def _egress_flows(config: dict[str, Any]) -> list[Flow]:
    """Only with airlock.egress: the Git server publishes approved outputs to the airlock's egress container."""
    if not (config.get("airlock") or {}).get("egress"):
        return []
    return [Flow("egress-git-to-airlock-endpoint", "role:git_server", "endpoint:airlock", (443,),
                 "the Git server publishes outputs a checker approved to the egress container (its identity; "
                 "write to that container alone)")]


def active_flows(config: dict[str, Any]) -> list[Flow]:
    """The flows this stack needs: both ends deployed and the gateway kind matching."""
    resolver = _Resolver(config)
    gateway = config["roles"].get("gateway")
    kind = gateway["kind"] if gateway else None
    certificate = gateway.get("certificate", "key-vault") if gateway else None
    git = config["roles"].get("git_server")
    git_backup_target = git.get("backup", {}).get("target", "auto") if git else None
    return [
        flow
        for flow in (*FLOWS, *data_source_flows(config), *_egress_flows(config))
        if (flow.gateway_kinds is None or kind in flow.gateway_kinds)
        and (flow.certificates is None or certificate in flow.certificates)
        and (flow.git_backup_targets is None or git_backup_target in flow.git_backup_targets)
        and resolver.present(flow.source)
        and resolver.present(flow.destination)
    ]


def nsg_rules(config: dict[str, Any]) -> dict[str, list[SecurityRule]]:
    """Subnet name -> its NSG rules, allow rules by band then the final denies."""
    resolver = _Resolver(config)
    rules: dict[str, list[SecurityRule]] = {name: [] for name in resolver.subnets}
    next_priority: dict[tuple[str, str, Priority], int] = {}

    def add(subnet: str, direction: str, flow: Flow) -> None:
        band = _band(flow)
        key = (subnet, direction, band)
        priority = next_priority.get(key, int(band))
        next_priority[key] = priority + 10
        rules[subnet].append(
            SecurityRule(
                name=f"allow-{flow.name}",
                priority=priority,
                direction=direction,
                access="Allow",
                protocol=flow.protocol,
                source_prefixes=resolver.prefixes(flow.source),
                destination_prefixes=resolver.prefixes(flow.destination),
                destination_ports=tuple(str(port) for port in flow.ports),
                description=flow.purpose,
            )
        )

    for flow in active_flows(config):
        for subnet in resolver.home_subnets(flow.destination):
            add(subnet, "Inbound", flow)
        for subnet in resolver.home_subnets(flow.source):
            add(subnet, "Outbound", flow)

    for subnet_rules in rules.values():
        for direction in ("Inbound", "Outbound"):
            subnet_rules.append(
                SecurityRule(
                    name=f"deny-all-{direction.lower()}",
                    priority=int(Priority.DENY_ALL),
                    direction=direction,
                    access="Deny",
                    protocol="*",
                    source_prefixes=("*",),
                    destination_prefixes=("*",),
                    destination_ports=("*",),
                    description="nothing that the flow table does not name",
                )
            )
    return rules


def address_in(prefix: str, network: str) -> bool:
    """True when an address prefix lies inside a network (service tags never do)."""
    try:
        return ipaddress.ip_network(prefix).subnet_of(ipaddress.ip_network(network))
    except ValueError:
        return False


def endpoint_text(endpoint: str, config: dict[str, Any]) -> str:
    """A flow endpoint in words, with its addresses, for the documents people read."""
    kind, _, value = endpoint.partition(":")
    if endpoint == "clients":
        return "trust client ranges (" + ", ".join(config["network"]["allowed_client_ranges"]) + ")"
    if endpoint == "private-clients":
        return "trust network (" + ", ".join(config["network"]["private_client_ranges"]) + ")"
    if endpoint == "hub-bastion":
        return f"the hub's Azure Bastion ({config['network']['landing_zone']['hub_bastion_range']})"
    if endpoint == "internet":
        return "Internet"
    if kind == "tag":
        return f"Azure service tag {value}"
    if kind == "data-source":
        source = next(s for s in declared_data_sources(config) if s["name"] == value)
        return f"trust data source {value} ({source['kind']}, {source['range']})"
    if kind == "role":
        machines = [m for m in plan_machines(config) if value in ("*", m.role)]
        return ", ".join(f"{m.name} ({m.private_ip})" for m in machines)
    if kind == "endpoint":
        address = endpoint_addresses(config).get(value)
        where = address or f"addresses Azure picks in subnet {ENDPOINT_SUBNET}"
        return f"{value} private endpoint ({where})"
    if value == "*":
        return "every subnet"
    return f"subnet {value} ({config['network']['subnets'][value]})"
