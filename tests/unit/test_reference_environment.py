"""The whole example environment under mocks: the security-relevant inputs of every resource."""

import base64

from blueprints.package_mirror.component import PackageMirror, PackageMirrorArgs
from blueprints.role_host import RoleHostArgs
from blueprints.topology import plan_machines
from tests.conftest import STACK_FILES, all_of
from validation.plan_recorder import record_plan

REQUIRED_TAGS = {"trust", "environment", "owner", "cost-centre", "data-classification", "blueprint", "managed-by"}
UNTAGGABLE = {"Subnet", "DataCollectionRuleAssociation", "PrivateRecordSet", "RoleAssignment",
              "ProtectedItem", "ProtectionPolicy", "BlobServiceProperties", "BlobContainer"}


def test_only_the_gateway_nic_has_a_public_ip(example_plan):
    nics = all_of(example_plan.resources, "azure-native:network:NetworkInterface")
    public = [n.azure_name for n in nics if "publicIPAddress" in n.inputs["ipConfigurations"][0]]
    assert public == ["nic-exnhs-dev-uks-gateway"]
    assert len(nics) == 5


def test_every_vm_is_hardened(example_plan):
    vms = all_of(example_plan.resources, "azure-native:compute:VirtualMachine")
    assert len(vms) == len(plan_machines(example_plan.config))
    for vm in vms:
        assert vm.inputs["securityProfile"]["securityType"] == "TrustedLaunch"
        assert vm.inputs["securityProfile"]["encryptionAtHost"] is True
        assert vm.inputs["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] is True
        assert base64.b64decode(vm.inputs["osProfile"]["customData"]).startswith(b"#cloud-config\n")


def test_every_taggable_resource_has_the_required_tags(example_plan):
    for resource in example_plan.custom_resources():
        if resource.type.rsplit(":", 1)[-1] in UNTAGGABLE:
            continue
        missing = REQUIRED_TAGS - set(resource.inputs.get("tags", {}))
        assert not missing, f"{resource.type} {resource.azure_name} lacks {sorted(missing)}"


def test_internet_egress_only_for_the_mirror_subnet(example_plan):
    subnets = all_of(example_plan.resources, "azure-native:network:Subnet")
    with_nat = sorted(s.inputs["subnetName"] for s in subnets if "natGateway" in s.inputs)
    assert with_nat == ["snet-exnhs-dev-uks-services"]
    groups = all_of(example_plan.resources, "azure-native:network:NetworkSecurityGroup")
    internet_allows = [
        (g.azure_name, r.get("sourceAddressPrefix"))
        for g in groups for r in g.inputs["securityRules"]
        if r["direction"] == "Outbound" and r["access"] == "Allow" and r.get("destinationAddressPrefix") == "Internet"
    ]
    assert internet_allows == [("nsg-exnhs-dev-uks-services", "10.40.2.4/32")]


def test_vm_identities_read_only_their_own_secrets(example_plan):
    grants = all_of(example_plan.resources, "azure-native:authorization:RoleAssignment")
    scopes = sorted(g.inputs["scope"].rsplit("/", 1)[-1] for g in grants)
    # The Git server's identity also writes its own backup container (and nothing else).
    assert scopes == ["gateway-oidc-client-secret", "gateway-oidc-crypto-passphrase", "git-server-backups",
                      "jupyterhub-oidc-client-secret", "jupyterhub-oidc-client-secret"]


def test_data_holding_vms_are_backed_up_and_analytics_shut_down(example_plan):
    protected = {p.inputs["properties"]["sourceResourceId"].rsplit("/", 1)[-1]
                 for p in all_of(example_plan.resources, "azure-native:recoveryservices:ProtectedItem")}
    assert protected == {"vm-exnhs-dev-uks-git", "vm-exnhs-dev-uks-analytics-1", "vm-exnhs-dev-uks-analytics-2"}
    schedules = all_of(example_plan.resources, "azure-native:devtestlab:GlobalSchedule")
    assert len(schedules) == 2


def test_a_blueprint_is_usable_alone_given_a_network(placement, run_component, example_config):
    mirror = next(m for m in plan_machines(example_config) if m.role == "package_mirror")
    host = RoleHostArgs(placement, mirror, "/subnets/services", "trustadmin",
                        example_config["admin"]["ssh_public_keys"], b"#cloud-config\n", "/dcr/1")
    resources = run_component(lambda: PackageMirror("mirror", PackageMirrorArgs(host)))
    vm = all_of(resources, "azure-native:compute:VirtualMachine")
    assert len(vm) == 1
    assert vm[0].inputs["tags"]["blueprint"] == "package-mirror"


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


def test_every_input_reaches_azure_in_its_wire_name(example_plan):
    # A plain dict inside a union-typed input is not renamed: snake_case would reach Azure.
    leaked = [f"{r.type}{path}" for r in example_plan.custom_resources()
              for path, key in _keys(r.inputs) if "_" in key]
    assert leaked == []


def test_plans_in_one_process_do_not_leak_into_each_other(example_plan, tmp_path):
    smaller = tmp_path / "one-analyst.yaml"
    smaller.write_text((STACK_FILES[0].parent / "example.yaml").read_text().replace("count: 2", "count: 1"))
    first = record_plan(smaller)
    again = record_plan(smaller)
    assert len(first.resources) == len(again.resources) < len(example_plan.resources)
    assert {r.urn for r in first.resources} == {r.urn for r in again.resources}
    assert all(r.urn.startswith("urn:pulumi:one-analyst::") for r in first.resources)
