"""Only the package mirror, in a resource group, virtual network and subnet that already exist.

Pulumi config (namespace ``mirror``): ``resourceGroupName`` (the existing group's name),
``virtualNetworkId`` and ``subnetId`` (the existing network and subnet, by Azure resource id).
Everything else comes from mirror.yaml beside this file, validated as a stack file is.

Nothing existing is changed: the program adds the mirror's VM, a Key Vault (private endpoint in
the subnet) holding the mirror's certificate and key, a Log Analytics workspace with its syslog
rule, and a private DNS zone with the record ``mirror.<trust>-<environment>.internal``.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
from pulumi_azure_native import authorization

from blueprints.cloud_init import render_user_data
from blueprints.deployment import EnvironmentParts
from blueprints.environment_secrets import EnvironmentSecrets, EnvironmentSecretsArgs
from blueprints.network_flows import endpoint_addresses
from blueprints.package_mirror.component import deploy
from blueprints.reference_environment import environment_tags
from blueprints.role_host import RoleHostArgs
from blueprints.secrets import VAULT_NAME_TAG, secret_files
from blueprints.topology import Machine, plan_machines, private_dns_zone
from blueprints.vm_settings import bootstrap_ssh_keys, settings_document
from modules.key_vault import KeyVault, KeyVaultArgs
from modules.monitoring import Monitoring, MonitoringArgs
from modules.naming import Naming
from modules.placement import Placement
from modules.private_dns import PrivateDns, PrivateDnsArgs
from modules.private_endpoint import EndpointSubnet, PrivateLinkZones, PrivateLinkZonesArgs, zones_for
from validation.problems import StackFileError
from validation.stack_config import load_stack

try:
    config = load_stack(Path(__file__).with_name("mirror.yaml"))
except StackFileError as error:
    # RunError prints the message alone: the report already names every field to fix.
    raise pulumi.RunError(error.report()) from None
existing = pulumi.Config("mirror")
group_name = existing.require("resourceGroupName")
vnet_id = existing.require("virtualNetworkId")
subnet_id = existing.require("subnetId")

client = authorization.get_client_config()
naming = Naming(config["trust"]["short_name"], config["environment"], config["location"], client.subscription_id)
placement = Placement(group_name, config["location"], naming, environment_tags(config))
(mirror,) = plan_machines(config)

# The mirror reads its certificate from Key Vault at boot; the vault is reachable only privately.
zones = PrivateLinkZones("mirror-privatelink", PrivateLinkZonesArgs(placement, zones_for(["vault"]), vnet_id))
endpoints = EndpointSubnet(subnet_id, zones.zone_ids, {"vault": endpoint_addresses(config)["key-vault"]})
vault = KeyVault("mirror-secrets", KeyVaultArgs(placement, client.tenant_id, endpoints))
secrets = EnvironmentSecrets("mirror-vault-secrets", EnvironmentSecretsArgs(config, [mirror], vault))
monitoring = Monitoring("mirror-monitoring", MonitoringArgs(placement))


def host(machine: Machine) -> RoleHostArgs:
    return RoleHostArgs(
        placement=placement,
        machine=machine,
        subnet_id=subnet_id,
        admin_username=config["admin"]["username"],
        ssh_public_keys=bootstrap_ssh_keys(config),
        user_data=render_user_data(config, machine),
        settings_data=settings_document(config, machine),
        data_collection_rule_id=monitoring.data_collection_rule_id,
        vm_tags={VAULT_NAME_TAG: naming.name("kv")},
    )


parts = EnvironmentParts(
    name="mirror", config=config, placement=placement, child=pulumi.ResourceOptions(),
    subnet_ids={mirror.subnet: subnet_id}, backup=None, subscription_id=client.subscription_id, host=host,
)
identity = deploy(parts, [mirror]).identities[mirror.name]
# One read grant per secret file the mirror fetches, each scoped to that one secret.
for _file, secret in secret_files(mirror):
    vault.grant_secret_read(f"mirror-reads-{secret}", secret, identity, client.subscription_id,
                            parent=secrets, depends_on=[secrets.created[secret]])

zone = private_dns_zone(config)
PrivateDns("mirror-dns", PrivateDnsArgs(placement, zone, vnet_id, {mirror.name: mirror.private_ip}))
pulumi.export("mirror_address", mirror.private_ip)
pulumi.export("mirror_name", f"{mirror.name}.{zone}")
