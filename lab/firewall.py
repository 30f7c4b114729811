"""The NSG rule table compiled to nftables, applied in the host's forward path.

Azure evaluates the source subnet's outbound NSG and then the destination subnet's inbound
NSG; each list is read in priority order and the first matching rule decides. The lab does the
same: one chain per subnet and direction, an Allow rule returns to the caller (the next check),
a Deny rule drops. The guests cannot touch these rules: they live in the host's namespace.

Bridge ports are isolated and the host answers ARP for every address of a subnet, so even
traffic between two machines of one subnet passes through this forward path, as NSGs filter
traffic inside a subnet too.

Service tags (AzureMonitor, AzureKeyVault, ...) name Azure platform services that have no lab
equivalent: rules that use them are left out and listed by ``skipped_rules``. The exception is
AzureActiveDirectory: the lab's identity provider (lab/identity_provider.py) stands in for
Entra ID, so rules naming that tag apply to its address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from blueprints.network_flows import ENDPOINT_SUBNET, SecurityRule, endpoint_addresses, nsg_rules
from lab.address_plan import AddressPlan, address_plan
from lab.hub_firewall import NAMESPACE_ADDRESS as HUB_FIREWALL_LINK_ADDRESS
from lab.layout import BASTION_LINK, INTERNET_BRIDGE, NFT_TABLE, PREFIX, machine_link_name
from lab.platform_services import IMDS_ADDRESS

HTTPS, SSH = 443, 22
# The service tag the gateway's sign-in flow names; the lab's identity provider answers for it.
IDENTITY_SERVICE_TAG = "AzureActiveDirectory"
PUBLIC_PORTS = (HTTPS, SSH)


@dataclass(frozen=True)
class SkippedRule:
    subnet: str
    rule: str
    reason: str


def _is_address(prefix: str) -> bool:
    try:
        ipaddress.ip_network(prefix)
    except ValueError:
        return False
    return True


def _address_match(field: str, prefixes: tuple[str, ...], plan: AddressPlan) -> str | None:
    """nft match for a rule's source or destination prefixes; None when it names a service tag."""
    if prefixes == ("*",):
        return ""
    if prefixes == ("VirtualNetwork",):
        return f"ip {field} {plan.address_space}"
    if prefixes == ("Internet",):
        return f"ip {field} != {plan.address_space}"
    if all(_is_address(p) for p in prefixes):
        return f"ip {field} {_set(prefixes)}"
    if prefixes == (IDENTITY_SERVICE_TAG,) and plan.identity_provider_ip:
        return f"ip {field} {plan.identity_provider_ip}"
    return None


def _set(items: tuple[str, ...] | list[str]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _protocol_match(rule: SecurityRule) -> str:
    protocol = rule.protocol.lower()
    ports = () if rule.destination_ports == ("*",) else rule.destination_ports
    if protocol in ("tcp", "udp"):
        return f"meta l4proto {protocol}" + (f" th dport {_set(ports)}" if ports else "")
    if protocol == "icmp":
        return "meta l4proto icmp"
    return "meta l4proto { tcp, udp } th dport " + _set(ports) if ports else ""


def key_vault_endpoint(config: dict[str, Any]) -> str:
    """The Key Vault private endpoint's address in the services subnet, where the lab's vault listens."""
    return endpoint_addresses(config)["key-vault"]


def airlock_endpoint(config: dict[str, Any]) -> str | None:
    """The airlock's private endpoint address, where the lab's storage stand-in listens (None without one)."""
    return endpoint_addresses(config).get("airlock")


def chain_name(subnet: str, direction: str) -> str:
    return f"{'in' if direction == 'Inbound' else 'out'}_{subnet}"


def compile_chain(rules: list[SecurityRule], plan: AddressPlan, subnet: str,
                  skipped: list[SkippedRule]) -> list[str]:
    """One NSG direction as nft rules, in priority order."""
    lines = []
    for rule in sorted(rules, key=lambda r: r.priority):
        source = _address_match("saddr", rule.source_prefixes, plan)
        destination = _address_match("daddr", rule.destination_prefixes, plan)
        if source is None or destination is None:
            skipped.append(SkippedRule(subnet, rule.name, "Azure service tag: no lab equivalent"))
            continue
        verdict = "return" if rule.access == "Allow" else "drop"
        match = " ".join(part for part in (source, destination, _protocol_match(rule)) if part)
        lines.append(f"{match} {verdict} comment \"{rule.name} ({rule.priority})\"".strip())
    return lines


def compile_ruleset(config: dict[str, Any]) -> tuple[str, list[SkippedRule]]:
    """The whole nft script for a stack, and the rules it had to leave out."""
    plan = address_plan(config)
    rules = nsg_rules(config)
    skipped: list[SkippedRule] = []
    chains: dict[str, list[str]] = {}
    for subnet in plan.subnets:
        for direction in ("Outbound", "Inbound"):
            subnet_rules = [r for r in rules.get(subnet, []) if r.direction == direction]
            chains[chain_name(subnet, direction)] = compile_chain(subnet_rules, plan, subnet, skipped)

    space = plan.address_space
    vault = key_vault_endpoint(config)
    lab_subnets = _set([str(net) for net in plan.subnets.values()])
    # Endpoints the host answers for: (address, who may come from, what it is). Data providers reach the
    # airlock from the trust's private client ranges (the lab's trust network holds an address in each).
    served = [(vault, lab_subnets, "the environment's Key Vault")]
    airlock = airlock_endpoint(config)
    if airlock:
        providers = [str(net) for net in plan.subnets.values()] + list(config["network"]["private_client_ranges"])
        served.append((airlock, _set(providers), "the airlock's storage account"))
    dns_servers = _set(list(plan.subnet_gateways.values()))
    public = [ip for ip in (plan.public_gateway_ip, plan.public_bastion_ip) if ip]
    forward = [
        "ct state established,related accept",
        "ct state invalid drop",
        "meta nfproto ipv6 drop comment \"the lab is IPv4, as the stack's address plan\"",
        # Two hosts on the Internet (the analyst and the identity provider) talk across the bridge
        # without the host routing; where br_netfilter is loaded those frames still pass this hook.
        f"iifname \"{INTERNET_BRIDGE}\" oifname \"{INTERNET_BRIDGE}\" accept "
        "comment \"Internet to Internet: not the environment's traffic\"",
        f"iifname \"{INTERNET_BRIDGE}\" "
        + (f"ct original ip daddr != {_set(public)} " if public else "")
        + "drop comment \"from the Internet only through the gateway's (or Bastion's) public address\"",
    ]
    forward += [f"ip saddr {net} jump {chain_name(s, 'Outbound')}" for s, net in plan.subnets.items()]
    forward.append(f"ip saddr {space} ip saddr != {lab_subnets} drop comment \"address space without a lab subnet\"")
    forward += [f"ip daddr {net} jump {chain_name(s, 'Inbound')}" for s, net in plan.subnets.items()]
    forward.append(f"ip daddr {space} ip daddr != {lab_subnets} drop comment \"address space without a lab subnet\"")
    spoke = plan.hub_firewall_ip is not None
    if spoke:
        # A landing zone's spoke has no NAT gateway: its route to the Internet is the hub firewall's link.
        forward.append(f"ip saddr {space} ip daddr != {space} oifname != \"{PREFIX}*\" drop "
                       "comment \"a spoke reaches the Internet only through the hub firewall\"")
    forward.append("accept")

    out: list[str] = [
        f"table inet {NFT_TABLE}",
        f"delete table inet {NFT_TABLE}",
        f"table inet {NFT_TABLE} {{",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        f"    iifname \"{PREFIX}*\" jump lab_forward",
        f"    oifname \"{PREFIX}*\" jump lab_forward",
        "  }",
        "  chain lab_forward {",
        *(f"    {line}" for line in forward),
        "  }",
    ]
    for name, lines in chains.items():
        out += [f"  chain {name} {{", *(f"    {line}" for line in lines), "  }"]
    out += [
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
        f"    iifname \"{PREFIX}*\" jump lab_input",
        "  }",
        "  chain lab_input {",
        "    ct state established,related accept",
        f"    ip saddr {space} ip daddr {dns_servers} meta l4proto {{ tcp, udp }} th dport 53 accept "
        "comment \"the resolver, as Azure's platform DNS\"",
        f"    ip saddr {lab_subnets} ip daddr {IMDS_ADDRESS} tcp dport 80 accept "
        "comment \"the instance metadata service: every VM reaches its own host's\"",
        # The vault's and the airlock's private endpoints are host addresses in the services subnet:
        # traffic to them is the host's input, and passes the same NSG chains as traffic to a VM there.
        *(line for endpoint, sources, what in served for line in (
            *(f"    ip saddr {net} ip daddr {endpoint} jump {chain_name(subnet, 'Outbound')}"
              for subnet, net in plan.subnets.items()),
            f"    ip daddr {endpoint} jump {chain_name(ENDPOINT_SUBNET, 'Inbound')}",
            f"    ip saddr {sources} ip daddr {endpoint} tcp dport 443 accept "
            f"comment \"{what}, at its private endpoint, where the NSG rules allow it\"")),
        "    drop",
        "  }",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
    ]
    gateway = next((m for m in plan.machines if m.public_entry), None)
    if gateway and plan.public_gateway_ip:
        out.append(f"    iifname \"{INTERNET_BRIDGE}\" ip daddr {plan.public_gateway_ip} "
                   f"tcp dport {_set([str(p) for p in PUBLIC_PORTS])} dnat ip to {gateway.private_ip} "
                   "comment \"the gateway's public IP\"")
    if plan.public_bastion_ip and plan.bastion_ip:
        # Azure Bastion's public IP takes 443 only; its instance in the Bastion subnet answers, behind
        # that subnet's inbound NSG chain (443 from the allowed client ranges).
        out.append(f"    iifname \"{INTERNET_BRIDGE}\" ip daddr {plan.public_bastion_ip} "
                   f"tcp dport {HTTPS} dnat ip to {plan.bastion_ip} comment \"Azure Bastion's public IP\"")
    out += [
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        *([f"    ip saddr {space} ip daddr != {space} oifname != \"{PREFIX}*\" masquerade "
           "comment \"Internet egress; the forward rules allow it only where Azure has it\""] if not spoke else []),
        *([f"    ip saddr {HUB_FIREWALL_LINK_ADDRESS} oifname != \"{PREFIX}*\" masquerade "
           "comment \"the hub firewall's own connections to the mirror's upstreams\""] if spoke else []),
        "  }",
        "}",
    ]
    # Azure delivers a VM's packets only from the addresses on its NIC; the metadata service and
    # Key Vault know a VM by that address. Each machine's cable carries its own address only.
    out += [
        f"table bridge {NFT_TABLE}",
        f"delete table bridge {NFT_TABLE}",
        f"table bridge {NFT_TABLE} {{",
        "  chain machine_ports {",
        "    type filter hook prerouting priority -200; policy accept;",
    ]
    for machine in plan.machines:
        port = machine_link_name(machine.name)
        out += [
            f"    iifname \"{port}\" ether type ip ip saddr != {machine.private_ip} drop "
            f"comment \"{machine.name} sends from its own address only\"",
            f"    iifname \"{port}\" ether type arp arp saddr ip != {machine.private_ip} drop "
            f"comment \"{machine.name} claims its own address only\"",
        ]
    if plan.bastion_ip:
        out += [
            f"    iifname \"{BASTION_LINK}\" ether type ip ip saddr != {plan.bastion_ip} drop "
            "comment \"the Bastion instance sends from its own address only\"",
            f"    iifname \"{BASTION_LINK}\" ether type arp arp saddr ip != {plan.bastion_ip} drop "
            "comment \"the Bastion instance claims its own address only\"",
        ]
    out += ["  }", "}"]
    return "\n".join(out) + "\n", skipped
