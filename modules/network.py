"""Virtual network, subnets and one NSG per subnet, built from a declarative rule list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import network

from modules.placement import Placement
from modules.security_rule import SecurityRule

# Azure requires this exact name for the subnet Azure Bastion lives in.
BASTION_SUBNET_NAME = "AzureBastionSubnet"


def _prefixes(field: str, values: Sequence[str]) -> dict[str, object]:
    # Azure takes service tags and "*" only in the singular field.
    if len(values) == 1:
        return {f"{field}_address_prefix": values[0]}
    return {f"{field}_address_prefixes": list(values)}


def security_rule_args(rule: SecurityRule) -> dict[str, object]:
    ports = list(rule.destination_ports)
    return {
        "name": rule.name,
        "priority": rule.priority,
        "direction": rule.direction,
        "access": rule.access,
        "protocol": rule.protocol,
        "description": rule.description,
        "source_port_range": "*",
        **_prefixes("source", rule.source_prefixes),
        **_prefixes("destination", rule.destination_prefixes),
        **({"destination_port_range": ports[0]} if len(ports) == 1 else {"destination_port_ranges": ports}),
    }


@dataclass(frozen=True)
class ExistingNetwork:
    """A virtual network someone else owns (a landing zone's spoke): subnets are added, it is not changed."""

    id: pulumi.Input[str]
    name: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]


@dataclass
class NetworkArgs:
    placement: Placement
    address_space: str
    subnets: Mapping[str, str]  # logical name -> CIDR ("bastion" becomes AzureBastionSubnet)
    rules: Mapping[str, Sequence[SecurityRule]]  # logical subnet name -> its NSG rules
    nat_gateway_id: pulumi.Input[str] | None = None
    egress_subnets: Sequence[str] = ()  # subnets routed to the Internet through the NAT gateway
    storage_subnets: Sequence[str] = ()  # subnets that reach a storage account's firewall (service endpoint)
    existing: ExistingNetwork | None = None  # create the subnets in this network instead of a new one
    route_table_id: pulumi.Input[str] | None = None  # egress subnets route through this instead of NAT


class Network(pulumi.ComponentResource):
    """A VNet whose every subnet has its own NSG and no implicit Internet egress."""

    vnet_id: pulumi.Output[str]
    vnet_name: pulumi.Output[str]
    subnet_ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:Network", name, None, opts)
        placement = args.placement
        naming = placement.naming
        tags = placement.tags_for("network")

        if args.existing is None:
            vnet = network.VirtualNetwork(
                f"{name}-vnet",
                virtual_network_name=naming.name("vnet"),
                resource_group_name=placement.resource_group_name,
                location=placement.location,
                address_space={"address_prefixes": [args.address_space]},
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.vnet_id, self.vnet_name, vnet_group = vnet.id, vnet.name, placement.resource_group_name
        else:
            self.vnet_id = pulumi.Output.from_input(args.existing.id)
            self.vnet_name = pulumi.Output.from_input(args.existing.name)
            vnet_group = args.existing.resource_group_name
        self.subnet_ids = {}
        previous: pulumi.Resource | None = None
        for subnet, cidr in args.subnets.items():
            nsg = network.NetworkSecurityGroup(
                f"{name}-nsg-{subnet}",
                network_security_group_name=naming.name("nsg", subnet),
                resource_group_name=placement.resource_group_name,
                location=placement.location,
                security_rules=[security_rule_args(rule) for rule in args.rules.get(subnet, ())],
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            egress = subnet in args.egress_subnets and args.nat_gateway_id is not None
            routed = subnet in args.egress_subnets and args.route_table_id is not None
            created = network.Subnet(
                f"{name}-snet-{subnet}",
                subnet_name=BASTION_SUBNET_NAME if subnet == "bastion" else naming.name("snet", subnet),
                resource_group_name=vnet_group,
                virtual_network_name=self.vnet_name,
                address_prefix=cidr,
                network_security_group={"id": nsg.id},
                # Explicit egress only: no implicit outbound access from any subnet.
                default_outbound_access=False,
                private_endpoint_network_policies="Enabled",
                service_endpoints=([{"service": "Microsoft.KeyVault"}] if subnet != "bastion" else [])
                + ([{"service": "Microsoft.Storage"}] if subnet in args.storage_subnets else []),
                **({"nat_gateway": {"id": args.nat_gateway_id}} if egress else {}),
                **({"route_table": {"id": args.route_table_id}} if routed else {}),
                # Azure updates subnets of one VNet one at a time.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[previous] if previous else []),
            )
            previous = created
            self.subnet_ids[subnet] = created.id
        self.register_outputs({"vnet_id": self.vnet_id, "subnet_ids": self.subnet_ids})
