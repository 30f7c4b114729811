"""Every stack file in stacks/, run as the whole program under mocks: what it records, and the
security invariants that must hold whatever the file says. A new stack file is covered by
being put in stacks/. The policy rules (validation/policies, tests/policy/test_rules.py) are checked on
the same plans; the invariants here are exact where a rule only asks for presence."""

import base64
import ipaddress
import runpy
import shutil

import pulumi
import pytest

from blueprints.airlock_settings import airlock_grants
from blueprints.network_flows import Priority
from blueprints.roles import role
from blueprints.secrets import secret_files
from blueprints.topology import plan_machines, subnet_plan
from modules.linux_vm import DEBIAN_13_IMAGE
from modules.naming import Naming
from tests.conftest import EXAMPLE, REPO, STACK_FILES, all_of, planned
from validation.plan_recorder import Plan, record_plan, record_program

ENTRY = REPO / "stacks" / "__main__.py"
WHOLE_INTERNET = {"*", "Internet", "0.0.0.0/0", "Any"}
REQUIRED_TAGS = {"trust", "environment", "owner", "cost-centre", "data-classification", "blueprint", "managed-by"}
UNTAGGABLE = {"Subnet", "DataCollectionRuleAssociation", "PrivateRecordSet", "RoleAssignment",
              "ProtectedItem", "ProtectionPolicy", "BlobServiceProperties", "BlobContainer",
              "PrivateLinkScopedResource", "PrivateDnsZoneGroup", "VirtualNetworkPeering",
              "DiagnosticSetting"}  # an extension resource of the blob service: ARM gives it no tags


@pytest.fixture(scope="module", params=STACK_FILES, ids=lambda path: path.stem)
def plan(request) -> Plan:
    # Test runners may split one file's tests between workers and set the fixture up again;
    # a plan is recorded once per process, and shared with the other files that read it.
    return planned(request.param)


def _rules(group):
    return group.inputs.get("securityRules", [])


def _sources(rule):
    return [rule["sourceAddressPrefix"]] if "sourceAddressPrefix" in rule else rule["sourceAddressPrefixes"]


def _destinations(rule):
    if "destinationAddressPrefix" in rule:
        return [rule["destinationAddressPrefix"]]
    return rule["destinationAddressPrefixes"]


def _naming(plan):
    return Naming(plan.config["trust"]["short_name"], plan.config["environment"], plan.config["location"])


def test_the_plan_records_every_resource_with_its_place_in_the_tree(plan):
    machines = plan_machines(plan.config)
    assert len(all_of(plan.resources, "azure-native:compute:VirtualMachine")) == len(machines)
    assert len(all_of(plan.resources, "azure-native:network:NetworkInterface")) == len(machines)
    assert len(all_of(plan.resources, "azure-native:network:Subnet")) == len(subnet_plan(plan.config))
    urns = {r.urn for r in plan.resources}
    assert len(urns) == len(plan.resources), "two resources share a URN"
    roots = [r for r in plan.resources if r.parent is None or r.parent not in urns]
    assert [r.type for r in roots] == ["trust-blueprints:blueprints:ReferenceEnvironment"]
    for resource in plan.resources:
        assert set(resource.dependencies) <= urns, f"{resource.name} depends on an unrecorded resource"
    assert plan.outputs["resource_group"] == plan.of_type("azure-native:resources:ResourceGroup")[0].azure_name
    assert set(plan.outputs["internal_names"]) == {m.name for m in machines}


def test_only_the_self_hosted_gateway_or_bastion_is_reachable_from_outside(plan):
    by_id = plan.by_id()
    gateway = plan.config["roles"].get("gateway", {}).get("kind")
    public_nics = [nic.azure_name for nic in all_of(plan.resources, "azure-native:network:NetworkInterface")
                   if any("publicIPAddress" in c for c in nic.inputs["ipConfigurations"])]
    assert public_nics == ([_naming(plan).name("nic", "gateway")] if gateway == "self-hosted" else [])
    # Every public address is held by exactly one of: the gateway's NIC, Azure Bastion, the NAT gateway.
    holders = {}
    for resource in plan.custom_resources():
        configs = resource.inputs.get("ipConfigurations", []) + [
            {"publicIPAddress": ip} for ip in resource.inputs.get("publicIpAddresses", [])]
        for config in configs:
            if "publicIPAddress" in config:
                holders.setdefault(config["publicIPAddress"]["id"], []).append(resource.type)
    addresses = all_of(plan.resources, "azure-native:network:PublicIPAddress")
    assert {by_id[address_id].urn for address_id in holders} == {a.urn for a in addresses}
    # A landing zone's spoke has no NAT gateway: the hub's firewall carries the mirror's egress.
    own_egress = not plan.config["network"].get("landing_zone")
    expected = {"azure-native:network:NatGateway"} \
        if own_egress and any(m.internet_egress for m in plan_machines(plan.config)) else set()
    expected |= {"self-hosted": {"azure-native:network:NetworkInterface"},
                 "bastion": {"azure-native:network:BastionHost"}}.get(gateway, set())
    assert {kinds[0] for kinds in holders.values()} == expected
    assert all(len(kinds) == 1 for kinds in holders.values())
    assert (plan.outputs["gateway_public_ip"] is not None) == (gateway == "self-hosted")


def test_only_the_mirror_subnet_has_the_nat_gateway(plan):
    machines = plan_machines(plan.config)
    mirrors = [m for m in machines if m.internet_egress]
    assert [m.name for m in mirrors] == [m.name for m in machines if m.role == "package_mirror"]
    egress = {m.subnet for m in mirrors}
    subnets = all_of(plan.resources, "azure-native:network:Subnet")
    # Egress leaves through the NAT gateway, or in a landing zone through the route to the hub firewall.
    way_out = "routeTable" if plan.config["network"].get("landing_zone") else "natGateway"
    with_egress = {s.azure_name for s in subnets if "natGateway" in s.inputs or "routeTable" in s.inputs}
    assert with_egress == {s.azure_name for s in subnets if way_out in s.inputs}
    assert with_egress == {s.azure_name for s in subnets if s.azure_name.endswith(tuple(f"-{n}" for n in egress))}
    assert egress <= {"services"}
    assert all(s.inputs["defaultOutboundAccess"] is False for s in subnets)
    # ... and its subnet's NSG lets the mirror, and only it, out to the Internet, with one rule.
    mirror_ips = {f"{m.private_ip}/32" for m in mirrors}
    out = sorted((group.azure_name, source)
                 for group in all_of(plan.resources, "azure-native:network:NetworkSecurityGroup")
                 for rule in _rules(group)
                 if rule["direction"] == "Outbound" and rule["access"] == "Allow" and "Internet" in _destinations(rule)
                 for source in _sources(rule) if source in mirror_ips)
    assert out == sorted((_naming(plan).name("nsg", m.subnet), f"{m.private_ip}/32") for m in mirrors)


def test_every_subnet_has_its_own_nsg_ending_in_deny_all(plan):
    by_id = plan.by_id()
    subnets = all_of(plan.resources, "azure-native:network:Subnet")
    attached = [by_id[s.inputs["networkSecurityGroup"]["id"]] for s in subnets]
    assert len({group.urn for group in attached}) == len(subnets)
    for group in attached:
        for direction in ("Inbound", "Outbound"):
            rules = sorted((r for r in _rules(group) if r["direction"] == direction), key=lambda r: r["priority"])
            last = rules[-1]
            assert (last["access"], last["priority"], last["protocol"]) == ("Deny", Priority.DENY_ALL, "*")
            assert _sources(last) == ["*"] and _destinations(last) == ["*"]
            assert all(r["access"] == "Allow" for r in rules[:-1])
            assert len({r["priority"] for r in rules}) == len(rules), f"{group.azure_name}: shared priority"


def test_no_rule_lets_the_whole_internet_in_and_only_the_mirror_and_bastion_out(plan):
    # Wide client ranges pass only when the file asks for them by name.
    widest_prefix = 0 if plan.config["network"]["allow_clients_from_anywhere"] else 8
    mirror_ips = {f"{m.private_ip}/32" for m in plan_machines(plan.config) if m.internet_egress}
    bastion = plan.config["network"]["subnets"].get("bastion")
    for group in all_of(plan.resources, "azure-native:network:NetworkSecurityGroup"):
        for rule in _rules(group):
            if rule["access"] != "Allow":
                continue
            if rule["direction"] == "Inbound":
                assert not WHOLE_INTERNET & set(_sources(rule)), f"{group.azure_name} {rule['name']}"
                for source in _sources(rule):
                    if "/" in source:
                        assert ipaddress.ip_network(source).prefixlen >= widest_prefix, f"{rule['name']}: {source}"
            elif "Internet" in _destinations(rule):
                assert set(_sources(rule)) <= mirror_ips | {bastion}, f"{group.azure_name} {rule['name']}"
                if set(_sources(rule)) == {bastion}:
                    assert rule.get("destinationPortRange") == "80"  # Azure Bastion's session checks only


def test_every_vm_is_hardened(plan):
    for vm in all_of(plan.resources, "azure-native:compute:VirtualMachine"):
        security = vm.inputs["securityProfile"]
        assert security["securityType"] == "TrustedLaunch", vm.azure_name
        assert security["uefiSettings"] == {"secureBootEnabled": True, "vTpmEnabled": True}
        assert security["encryptionAtHost"] is True
        linux = vm.inputs["osProfile"]["linuxConfiguration"]
        assert linux["disablePasswordAuthentication"] is True
        assert "adminPassword" not in vm.inputs["osProfile"]
        assert [k["keyData"] for k in linux["ssh"]["publicKeys"]] == plan.config["admin"]["ssh_public_keys"]
        assert vm.inputs["storageProfile"]["imageReference"] == DEBIAN_13_IMAGE
        assert vm.inputs["identity"]["type"] == "SystemAssigned"
        assert base64.b64decode(vm.inputs["osProfile"]["customData"]).startswith(b"#cloud-config\n")


def test_every_taggable_resource_carries_the_trusts_tags(plan):
    expected = {"trust": plan.config["trust"]["short_name"], "environment": plan.config["environment"],
                "owner": plan.config["tags"]["owner"]}
    for resource in plan.custom_resources():
        if resource.type.rsplit(":", 1)[-1] in UNTAGGABLE:
            continue
        tags = resource.inputs.get("tags", {})
        assert set(tags) >= REQUIRED_TAGS, f"{resource.type} {resource.azure_name} lacks {REQUIRED_TAGS - set(tags)}"
        assert {key: tags[key] for key in expected} == expected


def test_secrets_stay_in_key_vault_and_each_identity_reads_only_named_secrets(plan):
    vault = plan.of_type("azure-native:keyvault:Vault")[0].inputs["properties"]
    assert vault["enableRbacAuthorization"] is True and vault["enablePurgeProtection"] is True
    assert vault["networkAcls"]["defaultAction"] == "Deny"
    vms = all_of(plan.resources, "azure-native:compute:VirtualMachine")
    principals = {f"principal-of-{vm.azure_name}" for vm in vms}
    read, writers = [], []
    airlock_containers = tuple(f"/containers/{grant.container}" for grant in airlock_grants(plan.config))
    for grant in all_of(plan.resources, "azure-native:authorization:RoleAssignment"):
        if grant.inputs["scope"].endswith("/containers/git-server-backups"):
            # The one grant that is not a secret: the Git server writes its own backup container.
            git_vm = next(vm for vm in vms if vm.azure_name.endswith("-git"))
            assert grant.inputs["principalId"] == f"principal-of-{git_vm.azure_name}"
            assert grant.inputs["roleDefinitionId"].endswith("/ba92f5b4-2d11-453d-a403-e96b0029c9fe")
            writers.append(git_vm.azure_name)
            continue
        if grant.inputs["scope"].endswith(airlock_containers):
            continue  # the airlock's grants on its containers: tests/unit/test_airlock.py and policy TB-ST-006
        assert "/secrets/" in grant.inputs["scope"], grant.inputs["scope"]
        assert grant.inputs["principalId"] in principals
        secret = grant.inputs["scope"].rsplit("/", 1)[-1]
        read.append((grant.inputs["principalId"].removeprefix("principal-of-"), secret))
    git = plan.config["roles"].get("git_server")
    assert len(writers) == (1 if git and git["backup"]["target"] != "directory" else 0)
    # Each VM reads exactly the secrets it fetches at boot (its CA, its own TLS pair and its role's
    # secrets), once each.
    assert sorted(read) == sorted((_naming(plan).name("vm", m.name), secret) for m in plan_machines(plan.config)
                                  for _file, secret in secret_files(m))


def test_the_roles_that_keep_data_are_backed_up_and_analytics_vms_shut_down_at_night(plan):
    # The policy rules ask that every VM holding data is backed up and every VM of a nightly role has a
    # schedule; here, no other VM is (the mirror's disk is a cache, the gateway serves at night).
    machines, naming = plan_machines(plan.config), _naming(plan)
    protected = [p.inputs["properties"]["sourceResourceId"].rsplit("/", 1)[-1]
                 for p in all_of(plan.resources, "azure-native:recoveryservices:ProtectedItem")]
    assert sorted(protected) == sorted(naming.name("vm", m.name) for m in machines if role(m.role).backed_up)
    stopped = [s.inputs["targetResourceId"].rsplit("/", 1)[-1]
               for s in all_of(plan.resources, "azure-native:devtestlab:GlobalSchedule")]
    assert sorted(stopped) == sorted(naming.name("vm", m.name) for m in machines if role(m.role).nightly_shutdown)


def _keys(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            if path.endswith("tags"):
                continue
            yield f"{path}.{key}", key
            yield from _keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item, path)


def test_every_input_reaches_azure_in_its_wire_name(plan):
    # A plain dict inside a union-typed input is not renamed: snake_case would reach Azure.
    leaked = [f"{r.type}{path}" for r in plan.custom_resources() for path, key in _keys(r.inputs) if "_" in key]
    assert leaked == []


def test_the_pulumi_entry_picks_the_stack_file_by_stack_name(plan):
    # `pulumi up` on stack NAME runs stacks/__main__.py with NAME as the stack: the same
    # resources and outputs as the offline plan of stacks/NAME.yaml.
    # In the subscription the offline plan ran in (a landing-zone stack's is its spoke's).
    subscription = next(r.id.split("/")[2] for r in plan.resources if (r.id or "").startswith("/subscriptions/"))
    resources, outputs = record_program(lambda: runpy.run_path(str(ENTRY)), plan.stack, subscription)
    assert sorted(r.urn for r in resources) == sorted(r.urn for r in plan.resources)
    assert sorted(r.azure_name for r in resources) == sorted(r.azure_name for r in plan.resources)
    assert outputs == plan.outputs


def test_the_pulumi_entry_reports_a_bad_stack_file_without_a_traceback(tmp_path):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    entry = shutil.copy(ENTRY, stacks / "__main__.py")
    (stacks / "broken.yaml").write_text((REPO / "stacks" / "example.yaml").read_text()
                                        .replace("location: uksouth", "location: westeurope"))
    with pytest.raises(pulumi.RunError) as raised:
        record_program(lambda: runpy.run_path(str(entry)), "broken")
    message = str(raised.value)
    assert "broken.yaml" in message
    assert "location: must be one of uksouth, ukwest (got 'westeurope')" in message
    # RunError is the SDK's clean exit: the engine prints the message alone, with no stack trace.
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert "Traceback" not in message

    with pytest.raises(pulumi.RunError, match=r"missing\.yaml.*cannot be read"):
        record_program(lambda: runpy.run_path(str(entry)), "missing")


def test_plans_in_one_process_do_not_leak_into_each_other(example_plan, tmp_path):
    smaller = tmp_path / "one-analyst.yaml"
    smaller.write_text(EXAMPLE.read_text().replace("count: 2", "count: 1"))
    first = record_plan(smaller)
    again = record_plan(smaller)
    assert len(first.resources) == len(again.resources) < len(example_plan.resources)
    assert {r.urn for r in first.resources} == {r.urn for r in again.resources}
    assert all(r.urn.startswith("urn:pulumi:one-analyst::") for r in first.resources)
