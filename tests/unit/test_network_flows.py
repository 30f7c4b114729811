import copy
import ipaddress

from blueprints.network_flows import FLOWS, Priority, active_flows, nsg_rules
from blueprints.topology import plan_machines


def _allows(rules, direction, source, destination, port):
    """First matching rule by priority decides, as in Azure."""
    for rule in sorted((r for r in rules if r.direction == direction), key=lambda r: r.priority):
        if not _matches(rule.source_prefixes, source) or not _matches(rule.destination_prefixes, destination):
            continue
        if rule.destination_ports != ("*",) and str(port) not in rule.destination_ports:
            continue
        return rule.access == "Allow"
    return False


def _matches(prefixes, address):
    if prefixes == ("*",):
        return True
    if address == "Internet":
        return "Internet" in prefixes
    return any(p not in ("Internet", "VirtualNetwork") and "/" in p
               and ipaddress.ip_address(address) in ipaddress.ip_network(p) for p in prefixes)


def test_every_flow_has_a_purpose_and_a_unique_name():
    assert len({flow.name for flow in FLOWS}) == len(FLOWS)
    assert all(flow.purpose for flow in FLOWS)


def test_every_subnet_ends_with_a_deny_in_both_directions(example_config):
    for rules in nsg_rules(example_config).values():
        denies = [r for r in rules if r.access == "Deny"]
        assert {(r.direction, r.priority) for r in denies} == {("Inbound", Priority.DENY_ALL),
                                                             ("Outbound", Priority.DENY_ALL)}
        priorities = [(r.direction, r.priority) for r in rules]
        assert len(priorities) == len(set(priorities)), "two rules share a priority"


def test_clients_reach_only_the_gateway_on_443_and_22(example_config):
    rules = nsg_rules(example_config)
    client = "203.0.113.10"
    machines = {m.name: m for m in plan_machines(example_config)}
    for port in (443, 22):
        assert _allows(rules["gateway"], "Inbound", client, machines["gateway"].private_ip, port)
    assert not _allows(rules["gateway"], "Inbound", client, machines["gateway"].private_ip, 8000)
    assert not _allows(rules["gateway"], "Inbound", "192.0.2.1", machines["gateway"].private_ip, 443)
    for name in ("mirror", "git", "analytics-1"):
        subnet = machines[name].subnet
        assert not _allows(rules[subnet], "Inbound", client, machines[name].private_ip, 22)


def test_only_the_mirror_may_reach_the_internet(example_config):
    rules = nsg_rules(example_config)
    for machine in plan_machines(example_config):
        allowed = _allows(rules[machine.subnet], "Outbound", machine.private_ip, "Internet", 443)
        assert allowed == (machine.role == "package_mirror"), machine.name


def test_analytics_reach_mirror_and_git_but_not_the_gateway(example_config):
    rules = nsg_rules(example_config)
    machines = {m.name: m for m in plan_machines(example_config)}
    analyst = machines["analytics-1"].private_ip
    assert _allows(rules["workloads"], "Outbound", analyst, machines["mirror"].private_ip, 443)
    assert _allows(rules["services"], "Inbound", analyst, machines["mirror"].private_ip, 443)
    assert _allows(rules["services"], "Inbound", analyst, machines["git"].private_ip, 22)
    assert not _allows(rules["workloads"], "Outbound", analyst, machines["gateway"].private_ip, 22)
    assert not _allows(rules["workloads"], "Inbound", machines["mirror"].private_ip, analyst, 22)


def test_bastion_kind_swaps_gateway_flows_for_bastion_flows(example_config):
    config = copy.deepcopy(example_config)
    config["roles"]["gateway"] = {"kind": "bastion", "bastion_sku": "Basic", "vm_size": "Standard_B2s"}
    config["network"]["subnets"]["bastion"] = "10.40.4.0/26"
    names = {flow.name for flow in active_flows(config)}
    assert "https-clients-to-bastion" in names
    assert "ssh-bastion-to-analytics" in names
    assert "https-clients-to-gateway" not in names
    assert "web-gateway-to-analytics" not in names
    rules = nsg_rules(config)
    assert _allows(rules["bastion"], "Inbound", "203.0.113.10", "10.40.4.5", 443)
    assert _allows(rules["workloads"], "Inbound", "10.40.4.5", "10.40.3.4", 22)


def test_private_client_ranges_get_what_analytics_vms_get_and_nothing_more(example_config):
    config = copy.deepcopy(example_config)
    config["network"]["private_client_ranges"], config["airlock"] = [], None
    assert "packages-private-clients-to-mirror" not in {flow.name for flow in active_flows(config)}
    config["network"]["private_client_ranges"] = ["10.20.16.0/22"]
    rules = nsg_rules(config)
    machines = {m.name: m for m in plan_machines(config)}
    desktop = "10.20.17.9"
    for port in (443, 3142):
        assert _allows(rules["services"], "Inbound", desktop, machines["mirror"].private_ip, port)
    for port in (22, 443):
        assert _allows(rules["services"], "Inbound", desktop, machines["git"].private_ip, port)
    assert not _allows(rules["services"], "Inbound", desktop, machines["mirror"].private_ip, 22)
    assert not _allows(rules["workloads"], "Inbound", desktop, machines["analytics-1"].private_ip, 22)
    assert not _allows(rules["gateway"], "Inbound", desktop, machines["gateway"].private_ip, 443)
    assert not _allows(rules["services"], "Inbound", "10.99.0.1", machines["git"].private_ip, 22)


def test_lets_encrypt_opens_only_its_two_flows(example_config):
    import copy

    from blueprints.network_flows import active_flows

    default = {flow.name for flow in active_flows(example_config)}
    config = copy.deepcopy(example_config)
    config["roles"]["gateway"]["certificate"] = "lets-encrypt"
    assert {flow.name for flow in active_flows(config)} - default == {"acme-internet-to-gateway",
                                                                       "acme-gateway-to-internet"}
    assert not {"acme-internet-to-gateway", "acme-gateway-to-internet"} & default
