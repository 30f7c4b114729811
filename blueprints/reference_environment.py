"""The whole environment of one stack file: network, shared services and every role it names.

Shared parts come first (resource group, network, NAT, monitoring, Key Vault, backup vault);
then each registered role that the stack names declares its own resources through its deploy
function (blueprints/<role>/component.py), in machine order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import authorization, resources

from blueprints.airlock import Airlock, AirlockArgs
from blueprints.airlock_settings import airlock_account_name, airlock_grants, airlock_settings
from blueprints.cloud_init import render_user_data
from blueprints.deployment import EnvironmentParts, deploy_function
from blueprints.dns_allowlist import allowed_names
from blueprints.environment_secrets import EnvironmentSecrets, EnvironmentSecretsArgs
from blueprints.gateway.app_registration import GatewayRegistration, GatewayRegistrationArgs
from blueprints.gateway.registration import registration
from blueprints.git_server.backup_target import storage_account_name
from blueprints.landing_zone import existing_spoke_id, landing_zone, parse_id
from blueprints.network_flows import ENDPOINT_SUBNET, endpoint_addresses, nsg_rules
from blueprints.regions import availability_zones
from blueprints.role_host import RoleHostArgs
from blueprints.roles import all_roles
from blueprints.secrets import secret_files
from blueprints.topology import Machine, plan_machines, private_dns_zone
from blueprints.vm_settings import bootstrap_ssh_keys, settings_document
from blueprints.vm_tags import platform_tags
from modules.backup import Backup, BackupArgs
from modules.dns_security_policy import DnsSecurityPolicy, DnsSecurityPolicyArgs
from modules.existing_hub import ExistingHub, ExistingHubArgs
from modules.hub_peering import HubPeering, HubPeeringArgs
from modules.key_vault import KeyVault, KeyVaultArgs
from modules.monitor_private_link import MonitorPrivateLink, MonitorPrivateLinkArgs
from modules.monitoring import Monitoring, MonitoringArgs
from modules.naming import Naming
from modules.nat_egress import NatEgress, NatEgressArgs
from modules.network import ExistingNetwork, Network, NetworkArgs
from modules.placement import Placement
from modules.private_dns import PrivateDns, PrivateDnsArgs
from modules.private_endpoint import (
    EndpointSubnet,
    PrivateEndpoint,
    PrivateEndpointArgs,
    PrivateLinkZones,
    PrivateLinkZonesArgs,
    zones_for,
)
from modules.route_table import FirewallRoute, FirewallRouteArgs


def environment_tags(config: dict[str, Any]) -> dict[str, str]:
    """The tags every taggable resource carries."""
    # A spoke's resources say so: policies that differ in a landing zone read it (validation/policies).
    mode = {"network-mode": "landing-zone"} if landing_zone(config) else {}
    return {**mode,
        "trust": config["trust"]["short_name"],
        "environment": config["environment"],
        "owner": config["tags"]["owner"],
        "cost-centre": config["tags"]["cost_centre"],
        "data-classification": config["tags"]["data_classification"],
        "blueprint": "reference-environment",
        "managed-by": "pulumi",
    }


@dataclass
class ReferenceEnvironmentArgs:
    config: dict[str, Any]  # a validated stack config (validation.stack_config.load_stack)


class ReferenceEnvironment(pulumi.ComponentResource):
    resource_group_name: pulumi.Output[str]
    gateway_public_ip: pulumi.Output[str | None] | None
    internal_names: dict[str, str]

    def __init__(self, name: str, args: ReferenceEnvironmentArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:blueprints:ReferenceEnvironment", name, None, opts)
        config = args.config
        roles = config["roles"]
        # A plain (not Output) answer: globally unique names are built from the subscription id.
        client = authorization.get_client_config(opts=pulumi.InvokeOptions(parent=self))
        naming = Naming(config["trust"]["short_name"], config["environment"], config["location"],
                        client.subscription_id)
        tags = environment_tags(config)
        child = pulumi.ResourceOptions(parent=self)

        group = resources.ResourceGroup(
            f"{name}-rg",
            resource_group_name=naming.name("rg"),
            location=config["location"],
            tags={**tags, "component": "environment"},
            opts=child,
        )
        placement = Placement(group.name, config["location"], naming, tags)
        machines = plan_machines(config)
        deployed = [declared for declared in all_roles() if declared.name in roles]
        subnets = {k: v for k, v in config["network"]["subnets"].items() if v}
        egress_subnets = sorted({m.subnet for m in machines if m.internet_egress})

        # The region's zones from its facts (blueprints/regions.yaml): none in UK West.
        zones = availability_zones(config["location"])
        spoke = landing_zone(config)
        given_spoke = existing_spoke_id(config)
        if given_spoke and parse_id(given_spoke).subscription_id.lower() != client.subscription_id.lower():
            raise ValueError(f"network.landing_zone.spoke_virtual_network_id is in subscription "
                             f"{parse_id(given_spoke).subscription_id}, but the program runs "
                             f"in {client.subscription_id}: deploy the stack in the spoke's subscription, where its "
                             "subnets are created")
        # In a landing zone the hub's firewall carries the mirror's egress, and the hub's zones, the central
        # workspace and a given spoke are looked up, never created (modules/existing_hub.py).
        hub = ExistingHub(f"{name}-hub", ExistingHubArgs(
            given_spoke, spoke["private_dns_zone_ids"], spoke["log_analytics_workspace_id"],
            hub_vnet_id=None if given_spoke else spoke["hub_virtual_network_id"],
        ), child) if spoke else None
        nat = (NatEgress(f"{name}-egress", NatEgressArgs(placement, zones=zones), child)
               if egress_subnets and not spoke else None)
        route = (FirewallRoute(f"{name}-egress", FirewallRouteArgs(placement, spoke["hub_firewall_address"]), child)
                 if egress_subnets and spoke else None)
        net = Network(
            f"{name}-network",
            NetworkArgs(
                placement=placement,
                address_space=config["network"]["address_space"],
                subnets=subnets,
                rules=nsg_rules(config),
                nat_gateway_id=nat.nat_gateway_id if nat else None,
                egress_subnets=egress_subnets,
                existing=(ExistingNetwork(hub.vnet_id, hub.vnet_name, hub.vnet_resource_group_name)
                          if hub and hub.vnet_id is not None and hub.vnet_name is not None
                          and hub.vnet_resource_group_name is not None else None),
                route_table_id=route.route_table_id if route else None,
            ),
            child,
        )
        if spoke and not given_spoke:
            # A spoke of our own: its half of the peering is ours, the hub's half is the hub team's.
            HubPeering(f"{name}-hub-peering", HubPeeringArgs(
                placement, net.vnet_name, spoke["hub_virtual_network_id"], spoke["use_hub_gateways"]), child)
        if ENDPOINT_SUBNET not in net.subnet_ids:  # validation refuses such a stack first
            raise ValueError(f"the platform services' private endpoints need the {ENDPOINT_SUBNET} subnet")
        # Key Vault, Blob storage and Azure Monitor only through private endpoints (blueprints/network_flows.py).
        zone_ids = hub.zone_ids if hub else PrivateLinkZones(f"{name}-privatelink", PrivateLinkZonesArgs(
            placement, zones_for(["vault", "blob", "azuremonitor"]), net.vnet_id), child).zone_ids
        fixed = endpoint_addresses(config)
        endpoints = EndpointSubnet(net.subnet_ids[ENDPOINT_SUBNET], zone_ids,
                                   {"vault": fixed["key-vault"], "blob": fixed["blob"]})
        monitoring = Monitoring(f"{name}-monitoring", MonitoringArgs(
            placement, workspace_id=hub.workspace_id if hub else None), child)
        monitor_link = MonitorPrivateLink(f"{name}-monitor-link", MonitorPrivateLinkArgs(
            placement, monitoring.workspace_id), child)
        vault = KeyVault(f"{name}-secrets", KeyVaultArgs(placement, client.tenant_id, endpoints), child)
        # The gateway's Entra ID app registration, when the stack has the program make it.
        entra = (GatewayRegistration(f"{name}-gateway-registration",
                                     GatewayRegistrationArgs(config, vault, placement.tags_for("gateway")), child)
                 if registration(config) else None)
        needs_backup = any(declared.backed_up for declared in deployed)
        backup = Backup(f"{name}-backup", BackupArgs(placement), child) if needs_backup else None

        def host(machine: Machine) -> RoleHostArgs:
            return RoleHostArgs(
                placement=placement,
                machine=machine,
                subnet_id=net.subnet_ids[machine.subnet],
                admin_username=config["admin"]["username"],
                ssh_public_keys=bootstrap_ssh_keys(config),
                user_data=(entra.user_data(config, machine) if entra and machine.role == "gateway"
                           else render_user_data(config, machine)),
                settings_data=settings_document(config, machine),
                data_collection_rule_id=monitoring.data_collection_rule_id,
                data_collection_endpoint_id=monitor_link.data_collection_endpoint_id,
                # The vault's name, and the storage account's where the role reaches it.
                vm_tags=platform_tags(config, machine, client.subscription_id),
                # A production stack's data disks cannot be deleted by a plan; every stack's are
                # retained when Pulumi would delete them (modules/linux_vm.py).
                protect_data_disk=config["environment"] == "prod",
            )

        parts = EnvironmentParts(name=name, config=config, placement=placement, child=child,
                                 subnet_ids=net.subnet_ids, backup=backup,
                                 subscription_id=client.subscription_id, host=host, endpoints=endpoints)
        secrets = EnvironmentSecrets(f"{name}-vault-secrets", EnvironmentSecretsArgs(config, machines, vault), child)
        if entra:  # the gateway's grant to read the client secret waits for it
            secrets.created[entra.stored_secret_name] = entra.stored_secret
        self.gateway_public_ip = None
        identities: list[pulumi.Output[str]] = []
        by_machine: dict[str, pulumi.Output[str]] = {}
        for declared in deployed:
            given = [m for m in machines if m.role == declared.name]
            outputs = deploy_function(declared)(parts, given)
            missing = [m.name for m in given if m.name not in outputs.identities]
            if missing:
                raise TypeError(f"role {declared.name!r}: its deploy function returned no identity for "
                                f"{', '.join(missing)}; every VM needs one to read its secrets")
            for machine in given:
                self._grant_secrets(name, machine, outputs.identities[machine.name], vault, secrets,
                                    client.subscription_id)
            if outputs.gateway_public_ip is not None:
                self.gateway_public_ip = outputs.gateway_public_ip
            identities += outputs.identities.values()
            by_machine.update(outputs.identities)

        airlock = airlock_settings(config)
        if airlock:
            Airlock(f"{name}-airlock", AirlockArgs(
                placement, airlock_account_name(config, client.subscription_id),
                EndpointSubnet(endpoints.subnet_id, endpoints.zone_ids, {"blob": fixed["airlock"]}),
                airlock_grants(config), {grant.principal: by_machine[grant.principal]
                                         for grant in airlock_grants(config) if grant.principal_kind == "vm"},
                client.subscription_id, monitoring.workspace_id, airlock["soft_delete_days"],
            ), child)

        # Azure gives the scope's endpoint about ten addresses of its choosing, the lowest free ones:
        # created after every VM (its subnet id waits for their identities), it never takes an
        # address a VM is declared with.
        after_vms = pulumi.Output.all(net.subnet_ids[ENDPOINT_SUBNET], *identities).apply(lambda values: values[0])
        PrivateEndpoint(f"{name}-monitor-endpoint", PrivateEndpointArgs(
            placement, "monitor", "monitoring", after_vms, monitor_link.scope_id, "azuremonitor", zone_ids,
        ), child)

        zone = private_dns_zone(config)
        PrivateDns(
            f"{name}-dns",
            PrivateDnsArgs(placement, zone, net.vnet_id, {m.name: m.private_ip for m in machines}),
            child,
        )
        # Azure's resolver answers any public name and NSGs cannot filter it: only the stack's names
        # resolve (blueprints/dns_allowlist.py, which the lab's resolver reads too). A spoke's DNS is
        # the hub's (a network takes one policy, and the hub's resolver may answer for it).
        if not spoke:
            DnsSecurityPolicy(f"{name}-dns-policy", DnsSecurityPolicyArgs(
                placement, net.vnet_id, [entry.name for entry in allowed_names(
                    config, naming.name("kv"), storage_account_name(config, client.subscription_id),
                    airlock_account_name(config, client.subscription_id))]), child)
        self.resource_group_name = group.name
        self.internal_names = {m.name: f"{m.name}.{zone}" for m in machines}
        self.register_outputs({
            "resource_group_name": self.resource_group_name,
            "gateway_public_ip": self.gateway_public_ip,
            "internal_names": self.internal_names,
        })

    def _grant_secrets(self, name: str, machine: Machine, principal_id: pulumi.Output[str], vault: KeyVault,
                       secrets: EnvironmentSecrets, subscription_id: pulumi.Input[str]) -> None:
        """One read grant per secret the machine fetches at boot, scoped to that secret alone."""
        for _file, secret in secret_files(machine):
            created = secrets.created.get(secret)
            vault.grant_secret_read(f"{name}-{machine.name}-reads-{secret}", secret, principal_id, subscription_id,
                                    parent=self, depends_on=[created] if created else ())
