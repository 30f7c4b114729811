"""A DNS security policy on the virtual network: listed names resolve, every other query is refused.

Azure's resolver (168.63.129.16) answers public names for every VM and NSGs do not filter it. A
DNS security policy (``Microsoft.Network/dnsResolverPolicies``) linked to the network judges each
query the VMs send it: an Allow rule for the listed domains, then a Block rule for ``.``, the
whole namespace. Azure evaluates rules by priority, lowest first, and a domain list entry matches
the name and every name under it (learn.microsoft.com/azure/dns/dns-security-policy, checked
2026-12-02). Azure answers a blocked query itself; nothing is sent on to the name's servers.

pulumi-azure-native 3.x creates these with ARM API version 2023-07-01-preview (its default for the
``dnsresolver`` resources); 2025-05-01 is the generally available version of the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import dnsresolver

from modules.placement import Placement

# Azure accepts priorities from 100 to 65000; the allow rule must come first.
ALLOW_PRIORITY = 100
BLOCK_PRIORITY = 65000
EVERY_NAME = "."


def fqdn(name: str) -> str:
    """A domain list entry: the name with its final dot."""
    return name.rstrip(".") + "."


@dataclass
class DnsSecurityPolicyArgs:
    placement: Placement
    vnet_id: pulumi.Input[str]
    allowed_domains: Sequence[str]  # each covers the name and every name under it


class DnsSecurityPolicy(pulumi.ComponentResource):
    """Only the listed domains resolve for the VMs of one virtual network."""

    policy_id: pulumi.Output[str]

    def __init__(self, name: str, args: DnsSecurityPolicyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:DnsSecurityPolicy", name, None, opts)
        if not args.allowed_domains:
            raise ValueError("a DNS security policy with no allowed domain would refuse every name, "
                             "the environment's own included")
        placement = args.placement
        naming = placement.naming
        tags = placement.tags_for("dns")
        child = pulumi.ResourceOptions(parent=self)
        common = {"resource_group_name": placement.resource_group_name, "location": placement.location,
                  "tags": tags}

        policy = dnsresolver.DnsResolverPolicy(
            f"{name}-policy", dns_resolver_policy_name=naming.name("dnssp"), **common, opts=child)
        allowed = dnsresolver.DnsResolverDomainList(
            f"{name}-allowed", dns_resolver_domain_list_name=naming.name("dnsdl", "allowed"),
            domains=sorted({fqdn(domain) for domain in args.allowed_domains}), **common, opts=child)
        everything = dnsresolver.DnsResolverDomainList(
            f"{name}-everything", dns_resolver_domain_list_name=naming.name("dnsdl", "all"),
            domains=[EVERY_NAME], **common, opts=child)
        rules = [
            dnsresolver.DnsSecurityRule(
                f"{name}-allow-listed",
                dns_security_rule_name="allow-listed",
                dns_resolver_policy_name=policy.name,
                priority=ALLOW_PRIORITY,
                action={"action_type": "Allow"},
                dns_resolver_domain_lists=[{"id": allowed.id}],
                dns_security_rule_state="Enabled",
                **common, opts=child),
            dnsresolver.DnsSecurityRule(
                f"{name}-block-rest",
                dns_security_rule_name="block-everything-else",
                dns_resolver_policy_name=policy.name,
                priority=BLOCK_PRIORITY,
                # No response code: the GA API (2025-05-01) has none, and the preview's default is SERVFAIL.
                action={"action_type": "Block"},
                dns_resolver_domain_lists=[{"id": everything.id}],
                dns_security_rule_state="Enabled",
                **common, opts=child),
        ]
        # Linked once both rules exist: with the block rule alone even the environment's own names fail.
        dnsresolver.DnsResolverPolicyVirtualNetworkLink(
            f"{name}-vnet-link",
            dns_resolver_policy_virtual_network_link_name=f"link-{naming.name('vnet')}",
            dns_resolver_policy_name=policy.name,
            virtual_network={"id": args.vnet_id},
            **common,
            opts=pulumi.ResourceOptions(parent=self, depends_on=rules),
        )
        self.policy_id = policy.id
        self.register_outputs({"policy_id": self.policy_id})
