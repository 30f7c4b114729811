from modules.nat_egress import NatEgress, NatEgressArgs
from modules.network import BASTION_SUBNET_NAME, Network, NetworkArgs, SecurityRule, security_rule_args
from tests.conftest import all_of, only

RULE = SecurityRule("allow-web", 1000, "Inbound", "Allow", "Tcp", ("203.0.113.0/24",), ("10.0.1.4/32",),
                    ("443",), "web")
MULTI = SecurityRule("allow-many", 2000, "Outbound", "Allow", "Tcp", ("10.0.1.4/32", "10.0.1.5/32"),
                     ("AzureMonitor",), ("443", "8443"), "many")


def test_security_rule_uses_singular_fields_for_one_value_and_plural_for_many():
    one = security_rule_args(RULE)
    assert one["source_address_prefix"] == "203.0.113.0/24"
    assert one["destination_port_range"] == "443"
    many = security_rule_args(MULTI)
    assert many["source_address_prefixes"] == ["10.0.1.4/32", "10.0.1.5/32"]
    assert many["destination_port_ranges"] == ["443", "8443"]
    assert many["destination_address_prefix"] == "AzureMonitor"


def _network(placement, nat=None):
    return Network("net", NetworkArgs(
        placement=placement,
        address_space="10.0.0.0/16",
        subnets={"gateway": "10.0.1.0/24", "services": "10.0.2.0/24", "bastion": "10.0.4.0/26"},
        rules={"gateway": [RULE], "services": [MULTI]},
        nat_gateway_id=nat,
        egress_subnets=["services"],
    ))


def test_every_subnet_gets_its_own_nsg_with_the_given_rules(placement, run_component):
    resources = run_component(lambda: _network(placement))
    groups = {r.azure_name: r for r in all_of(resources, "azure-native:network:NetworkSecurityGroup")}
    assert set(groups) == {"nsg-tst-dev-uks-gateway", "nsg-tst-dev-uks-services", "nsg-tst-dev-uks-bastion"}
    assert [r["name"] for r in groups["nsg-tst-dev-uks-gateway"].inputs["securityRules"]] == ["allow-web"]
    subnets = all_of(resources, "azure-native:network:Subnet")
    assert len(subnets) == 3
    nsg_ids = {r.id for r in groups.values()}
    for subnet in subnets:
        assert subnet.inputs["networkSecurityGroup"]["id"] in nsg_ids
        assert subnet.inputs["defaultOutboundAccess"] is False


def test_bastion_subnet_has_azures_required_name(placement, run_component):
    resources = run_component(lambda: _network(placement))
    names = {r.inputs["subnetName"] for r in all_of(resources, "azure-native:network:Subnet")}
    assert BASTION_SUBNET_NAME in names


def test_nat_gateway_attaches_only_to_egress_subnets(placement, run_component):
    def program():
        nat = NatEgress("egress", NatEgressArgs(placement))
        _network(placement, nat.nat_gateway_id)

    resources = run_component(program)
    gateway = only(resources, "azure-native:network:NatGateway")
    with_nat = [r.inputs["subnetName"] for r in all_of(resources, "azure-native:network:Subnet")
                if "natGateway" in r.inputs]
    assert with_nat == ["snet-tst-dev-uks-services"]
    assert gateway.inputs["sku"] == {"name": "Standard"}
    address = only(resources, "azure-native:network:PublicIPAddress").inputs
    assert address["sku"]["name"] == "Standard"
    assert address["publicIPAllocationMethod"] == "Static"
