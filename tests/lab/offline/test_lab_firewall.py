"""The NSG rule table compiled to nftables: one chain per subnet and direction, in priority order."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess

import pytest

from blueprints.network_flows import active_flows, nsg_rules
from lab.address_plan import address_plan
from lab.firewall import chain_name, compile_chain, compile_ruleset
from modules.network import SecurityRule


def _chains(script: str) -> dict[str, list[str]]:
    chains: dict[str, list[str]] = {}
    current = None
    for line in script.splitlines():
        line = line.strip()
        if match := re.match(r"chain (\S+) \{", line):
            current = match.group(1)
            chains[current] = []
        elif line == "}":
            current = None
        elif current:
            chains[current].append(line)
    return chains


@pytest.fixture(scope="module")
def compiled(example_config):
    return compile_ruleset(example_config)


def test_every_subnet_with_machines_has_both_chains_ending_in_deny_all(example_config, compiled):
    chains = _chains(compiled[0])
    for subnet in address_plan(example_config).subnets:
        for direction in ("Inbound", "Outbound"):
            rules = chains[chain_name(subnet, direction)]
            assert rules[-1].startswith("drop comment \"deny-all-"), rules


def test_every_flow_between_machines_is_an_allow_in_both_subnets(example_config, compiled):
    chains = _chains(compiled[0])
    rules = nsg_rules(example_config)
    checked = 0
    for subnet, subnet_rules in rules.items():
        for rule in subnet_rules:
            if rule.access != "Allow" or not rule.source_prefixes[0][0].isdigit() \
                    or not rule.destination_prefixes[0][0].isdigit():
                continue
            lines = [line for line in chains[chain_name(subnet, rule.direction)] if f'"{rule.name} (' in line]
            assert len(lines) == 1, f"{rule.name} missing from {subnet} {rule.direction}"
            assert lines[0].split(" comment ")[0].endswith(" return")
            for port in rule.destination_ports:
                assert port in lines[0]
            checked += 1
    assert checked >= len([f for f in active_flows(example_config) if f.source.startswith("role:")])


def test_workloads_have_no_internet_rule_and_the_mirror_has_one(compiled):
    chains = _chains(compiled[0])
    assert not any("!= 10.40.0.0/16" in line for line in chains["out_workloads"])
    internet = [line for line in chains["out_services"] if "ip daddr != 10.40.0.0/16" in line]
    assert len(internet) == 1 and "10.40.2.4" in internet[0] and "{ 80, 443 }" in internet[0]


def test_masquerade_only_leaves_the_lab_and_dnat_only_reaches_the_gateway(compiled):
    chains = _chains(compiled[0])
    assert [line.split(" comment ")[0] for line in chains["postrouting"][1:]] == [
        'ip saddr 10.40.0.0/16 ip daddr != 10.40.0.0/16 oifname != "tb-*" masquerade']
    dnat = chains["prerouting"][1:]
    assert len(dnat) == 1
    assert "tcp dport { 443, 22 } dnat ip to 10.40.1.4" in dnat[0]


def test_host_accepts_only_dns_metadata_key_vault_and_the_airlock(compiled):
    rules = _chains(compiled[0])["lab_input"]
    assert rules[-1] == "drop"
    accepts = [r for r in rules if " accept" in r and not r.startswith("ct state")]
    assert len(accepts) == 4
    assert "th dport 53" in accepts[0]
    assert "ip daddr 169.254.169.254 tcp dport 80 accept" in accepts[1]
    assert "ip daddr 10.40.2.254 tcp dport 443 accept" in accepts[2]
    # The airlock's endpoint: from the lab's subnets and the trust's private client ranges (its data providers),
    # after the NSG chains, as the vault's.
    assert ("ip saddr { 10.40.1.0/24, 10.40.2.0/24, 10.40.3.0/24, 10.20.16.0/22 } ip daddr 10.40.2.252 tcp dport 443 "
            "accept") in accepts[3]
    assert "ip daddr 10.40.2.252 jump in_services" in rules


def test_without_an_airlock_the_host_answers_on_no_storage_address(example_config):
    config = copy.deepcopy(example_config)
    config["airlock"] = None
    rules = _chains(compile_ruleset(config)[0])["lab_input"]
    assert not [r for r in rules if "10.40.2.252" in r]


def test_the_vault_at_its_private_endpoint_passes_the_nsg_chains_of_both_ends(compiled):
    """Key Vault listens at its private endpoint's address in the services subnet: each source subnet's
    outbound chain and the services subnet's inbound chain run before the accept, as for a VM there."""
    rules = _chains(compiled[0])["lab_input"]
    accept = next(i for i, r in enumerate(rules) if "10.40.2.254 tcp dport 443 accept" in r)
    jumps = [r for r in rules[:accept] if "ip daddr 10.40.2.254" in r]
    assert jumps == ["ip saddr 10.40.1.0/24 ip daddr 10.40.2.254 jump out_gateway",
                     "ip saddr 10.40.2.0/24 ip daddr 10.40.2.254 jump out_services",
                     "ip saddr 10.40.3.0/24 ip daddr 10.40.2.254 jump out_workloads",
                     "ip daddr 10.40.2.254 jump in_services"]
    allowed = [r for r in _chains(compiled[0])["in_services"] if "10.40.2.254/32" in r]
    assert allowed and all(" return " in r for r in allowed)


def test_without_its_flow_a_subnet_cannot_reach_the_vault(example_config, monkeypatch):
    """Take the Key Vault flow away and the compiled rules no longer let the VMs reach the vault."""
    from blueprints import network_flows

    flows = tuple(f for f in network_flows.FLOWS if "key-vault" not in f.name)
    assert len(flows) < len(network_flows.FLOWS)
    monkeypatch.setattr(network_flows, "FLOWS", flows)
    ruleset, _ = compile_ruleset(example_config)
    for chain in ("out_workloads", "in_services"):
        assert not [r for r in _chains(ruleset)[chain] if "10.40.2.254/32" in r and " return " in r], chain


def test_each_machine_sends_and_claims_only_its_own_address(example_config, compiled):
    from blueprints.topology import plan_machines

    rules = _chains(compiled[0])["machine_ports"]
    for machine in plan_machines(example_config):
        port = f'iifname "tb-{machine.name}"'
        assert f"{port} ether type ip ip saddr != {machine.private_ip} drop" in " ".join(rules), machine.name
        assert f"{port} ether type arp arp saddr ip != {machine.private_ip} drop" in " ".join(rules), machine.name


def test_service_tag_rules_are_skipped_and_named(compiled):
    script, skipped = compiled
    names = {s.rule for s in skipped}
    # Platform services are reached at their private endpoints' addresses, which the lab can route;
    # no rule of the example names a service tag the lab has no stand-in for.
    assert names == set()
    for name in ("allow-secrets-vms-to-key-vault-endpoint", "allow-monitor-vms-to-monitor-endpoint",
                 "allow-backup-git-to-blob-endpoint"):
        assert name in script


def test_sign_in_flow_reaches_only_the_lab_identity_provider(compiled, example_config):
    plan = address_plan(example_config)
    gateway_out = _chains(compiled[0])["out_gateway"]
    signin = [r for r in gateway_out if "allow-signin-gateway-to-entra" in r]
    assert signin == [f"ip saddr 10.40.1.4/32 ip daddr {plan.identity_provider_ip} meta l4proto tcp th dport 443 "
                      f"return comment \"allow-signin-gateway-to-entra (3020)\""]


def test_rules_follow_priority_and_deny_drops(example_config):
    plan = address_plan(example_config)
    rules = [
        SecurityRule("allow-late", 300, "Inbound", "Allow", "Tcp", ("10.40.3.4/32",), ("*",), ("22",), ""),
        SecurityRule("deny-early", 100, "Inbound", "Deny", "*", ("10.40.3.0/24",), ("*",), ("*",), ""),
        SecurityRule("allow-udp", 200, "Inbound", "Allow", "Udp", ("VirtualNetwork",), ("Internet",), ("53",), ""),
    ]
    lines = compile_chain(rules, plan, "workloads", [])
    assert lines[0] == 'ip saddr 10.40.3.0/24 drop comment "deny-early (100)"'
    assert lines[1] == ('ip saddr 10.40.0.0/16 ip daddr != 10.40.0.0/16 meta l4proto udp th dport 53 '
                        'return comment "allow-udp (200)"')
    assert lines[2] == 'ip saddr 10.40.3.4/32 meta l4proto tcp th dport 22 return comment "allow-late (300)"'


def test_bastion_stacks_enter_only_through_bastions_public_ip_on_443(example_config):
    config = copy.deepcopy(example_config)
    config["roles"]["gateway"] = {"kind": "bastion", "bastion_sku": "Standard", "vm_size": "Standard_B2s"}
    config["network"]["subnets"]["bastion"] = "10.40.4.0/26"
    script, _ = compile_ruleset(config)
    chains = _chains(script)
    # Bastion's public IP stand-in goes to its instance in the Bastion subnet, on 443 only.
    assert chains["prerouting"][1:] == [
        'iifname "tb-internet" ip daddr 100.64.77.11 tcp dport 443 dnat ip to 10.40.4.4 '
        'comment "Azure Bastion\'s public IP"']
    assert any(line.startswith('iifname "tb-internet" ct original ip daddr != 100.64.77.11 drop')
               for line in chains["lab_forward"])
    # ... where the Bastion subnet's own NSG decides: 443 from the allowed client ranges, then deny.
    assert chains["in_bastion"][0] == (
        "ip saddr { 203.0.113.0/24, 198.51.100.16/28 } ip daddr 10.40.4.0/26 meta l4proto tcp th dport 443 "
        'return comment "allow-https-clients-to-bastion (1000)"')
    assert chains["in_bastion"][-1] == 'drop comment "deny-all-inbound (4096)"'
    assert any("allow-ssh-bastion-to-analytics" in line for line in chains["out_bastion"])
    assert any("allow-ssh-bastion-to-analytics" in line for line in chains["in_workloads"])
    # The instance sends only from its own address, like a machine's cable.
    assert 'iifname "tb-bastion" ether type ip ip saddr != 10.40.4.4 drop' in script


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="nft --check needs root and nftables")
def test_compiled_script_is_valid_nftables(compiled, tmp_path):
    path = tmp_path / "lab.nft"
    path.write_text(compiled[0])
    result = subprocess.run(["nft", "--check", "-f", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
