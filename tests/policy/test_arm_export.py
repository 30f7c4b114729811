"""The ARM export puts each resource's settings where ARM keeps them, for scanners to read."""

from __future__ import annotations

import json
import re

import pytest

from cli.main import main
from tests.conftest import EXAMPLE
from validation.arm_export import PATH_NAMES, SHAPES, arm_resource, export_template
from validation.plan_model import Plan, PlannedResource
from validation.plan_recorder import ARM_TYPES

# The commands here plan stack files with the code as it is: one plan per stack for the whole run.
pytestmark = pytest.mark.usefixtures("plan_cache")


@pytest.fixture(scope="module")
def template(example_plan):
    return export_template(example_plan)


def by_type(template, arm_type):
    return [r for r in template["resources"] if r["type"] == arm_type]


def test_every_azure_resource_is_exported_with_the_arm_fields(template, example_plan):
    assert len(template["resources"]) == len(example_plan.custom_resources())
    assert template["$schema"].endswith("deploymentTemplate.json#")
    for resource in template["resources"]:
        assert resource["type"] in ARM_TYPES.values()
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", resource["apiVersion"])
        # A secret's properties hold its value: a secure parameter, never the value itself.
        secret = resource["type"] == "Microsoft.KeyVault/vaults/secrets"
        properties = resource["properties"]
        assert resource["name"] and (isinstance(properties, dict) or (secret and properties.startswith("[parameters(")))
        assert isinstance(resource["dependsOn"], list)


def test_settings_move_under_properties_and_path_names_are_dropped(template):
    [vm] = [r for r in by_type(template, "Microsoft.Compute/virtualMachines") if r["name"].endswith("-git")]
    assert vm["location"] == "uksouth" and vm["identity"] == {"type": "SystemAssigned"}
    assert vm["tags"]["owner"]
    assert vm["properties"]["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] is True
    assert vm["properties"]["securityProfile"]["encryptionAtHost"] is True
    for resource in template["resources"]:
        assert "resourceGroupName" not in resource["properties"]
        assert not {"vmName", "vaultName", "virtualNetworkName"} & set(resource["properties"])


def test_child_resources_are_named_after_their_parents(template):
    subnets = {r["name"] for r in by_type(template, "Microsoft.Network/virtualNetworks/subnets")}
    assert "vnet-exnhs-dev-uks/snet-exnhs-dev-uks-workloads" in subnets
    extensions = {r["name"] for r in by_type(template, "Microsoft.Compute/virtualMachines/extensions")}
    assert "vm-exnhs-dev-uks-git/AzureMonitorLinuxAgent" in extensions
    assert len(PATH_NAMES) >= 5


def test_settings_already_under_properties_stay_there(template):
    [vault] = by_type(template, "Microsoft.KeyVault/vaults")
    assert vault["properties"]["enablePurgeProtection"] is True
    assert vault["properties"]["networkAcls"]["defaultAction"] == "Deny"


def test_extension_resources_carry_their_scope(template):
    associations = by_type(template, "Microsoft.Insights/dataCollectionRuleAssociations")
    for association in associations:
        assert "/virtualMachines/" in association["scope"]
        if association["name"] == "configurationAccessEndpoint":  # Azure's fixed name for the DCE's
            assert association["properties"]["dataCollectionEndpointId"].endswith("/dce-exnhs-dev-uks")
        else:
            assert association["properties"]["dataCollectionRuleId"].endswith("dcr-exnhs-dev-uks-syslog")
    assert len(associations) == 2 * len(by_type(template, "Microsoft.Compute/virtualMachines"))


def test_depends_on_names_resources_of_the_template(template):
    [nic] = [r for r in by_type(template, "Microsoft.Network/networkInterfaces") if r["name"].endswith("-git")]
    assert "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet-exnhs-dev-uks', " \
           "'snet-exnhs-dev-uks-services')]" in nic["dependsOn"]


def test_plan_format_arm_writes_the_template(tmp_path, template):
    target = tmp_path / "example.json"
    assert main(["plan", str(EXAMPLE), "--format", "arm", "-o", str(target)]) == 0
    def keyed(resources):  # registration order under mocks is not fixed; extension names repeat per scope
        return {(r["type"], r["name"], r.get("scope")): r for r in resources}

    assert keyed(json.loads(target.read_text())["resources"]) == keyed(template["resources"])


def _backup_account(template):
    """The Git server's backup account (the example's airlock has an account of its own)."""
    [account] = [r for r in by_type(template, "Microsoft.Storage/storageAccounts")
                 if (r.get("tags") or {}).get("component") != "airlock"]
    return account


def test_storage_settings_carry_their_arm_names_and_containers_their_full_path(template):
    account = _backup_account(template)
    properties = account["properties"]
    assert properties["supportsHttpsTrafficOnly"] is True and "enableHttpsTrafficOnly" not in properties
    assert properties["networkAcls"]["defaultAction"] == "Deny" and "networkRuleSet" not in properties
    assert properties["allowSharedKeyAccess"] is False and properties["minimumTlsVersion"] == "TLS1_2"
    [container] = [r for r in by_type(template, "Microsoft.Storage/storageAccounts/blobServices/containers")
                   if r["name"].startswith(f"{account['name']}/")]
    assert container["name"] == f"{account['name']}/default/git-server-backups"
    assert container["properties"]["publicAccess"] == "None"


def test_security_rules_are_sub_resources_with_their_settings_under_properties(template):
    [nsg] = [r for r in by_type(template, "Microsoft.Network/networkSecurityGroups") if r["name"].endswith("-gateway")]
    rules = nsg["properties"]["securityRules"]
    assert rules and all(set(rule) == {"name", "properties"} for rule in rules)
    [ssh] = [rule for rule in rules if rule["name"] == "allow-ssh-clients-to-gateway"]
    assert ssh["properties"] == {
        "access": "Allow", "description": "SSH jump host (key and TOTP code)",
        "destinationAddressPrefix": "10.40.1.4/32", "destinationPortRange": "22", "direction": "Inbound",
        "priority": 1010, "protocol": "Tcp",
        "sourceAddressPrefixes": ["203.0.113.0/24", "198.51.100.16/28"], "sourcePortRange": "*"}


def test_ip_configurations_and_a_vms_nic_references_nest_their_settings(template):
    [nic] = [r for r in by_type(template, "Microsoft.Network/networkInterfaces") if r["name"].endswith("-gateway")]
    [configuration] = nic["properties"]["ipConfigurations"]
    assert set(configuration) == {"name", "properties"}
    assert configuration["properties"]["privateIPAllocationMethod"] == "Static"
    assert configuration["properties"]["subnet"]["id"].endswith("/snet-exnhs-dev-uks-gateway")
    assert set(configuration["properties"]["publicIPAddress"]) == {"id"}
    [vm] = [r for r in by_type(template, "Microsoft.Compute/virtualMachines") if r["name"].endswith("-gateway")]
    [reference] = vm["properties"]["networkProfile"]["networkInterfaces"]
    assert reference["id"].endswith("/nic-exnhs-dev-uks-gateway")
    assert reference["properties"] == {"deleteOption": "Detach", "primary": True}


def test_a_workspace_sku_is_one_of_its_properties(template):
    [workspace] = by_type(template, "Microsoft.OperationalInsights/workspaces")
    assert "sku" not in workspace and workspace["properties"]["sku"] == {"name": "PerGB2018"}


def test_a_storage_accounts_network_rules_keep_arms_name(template):
    for account in by_type(template, "Microsoft.Storage/storageAccounts"):
        assert account["properties"]["networkAcls"] == {"defaultAction": "Deny", "bypass": "AzureServices"}
        assert account["properties"]["publicNetworkAccess"] == "Disabled"


def test_a_private_endpoints_connection_and_address_are_sub_resources(template):
    [endpoint] = [r for r in by_type(template, "Microsoft.Network/privateEndpoints") if r["name"].endswith("-kv")]
    [connection] = endpoint["properties"]["privateLinkServiceConnections"]
    assert set(connection) == {"name", "properties"} and connection["properties"]["groupIds"] == ["vault"]
    assert endpoint["properties"]["ipConfigurations"] == [{"name": "kv", "properties": {
        "groupId": "vault", "memberName": "default", "privateIPAddress": "10.40.2.254"}}]
    assert endpoint["properties"]["subnet"]["id"].endswith("/snet-exnhs-dev-uks-services")


def test_every_recorded_type_has_a_declared_shape():
    assert set(ARM_TYPES) <= set(SHAPES)


def _resource(type_token: str, name: str, inputs: dict) -> PlannedResource:
    return PlannedResource(urn=f"urn:{name}", type=type_token, name=name, azure_name=name, custom=True,
                           parent=None, dependencies=[], inputs=inputs)


def test_subnets_inside_a_virtual_network_and_their_own_sub_resources_are_laid_out_as_arm_has_them():
    nsg_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg"
    vnet = _resource("azure-native:network:VirtualNetwork", "vnet", {
        "virtualNetworkName": "vnet", "resourceGroupName": "rg", "location": "uksouth",
        "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
        "subnets": [{"name": "snet", "addressPrefix": "10.0.1.0/24", "networkSecurityGroup": {"id": nsg_id},
                     "delegations": [{"name": "d", "serviceName": "Microsoft.Web/serverFarms"}],
                     "provisioningState": "Succeeded"}],
    })
    body = arm_resource(vnet, {})
    assert body["properties"]["addressSpace"] == {"addressPrefixes": ["10.0.0.0/16"]}
    assert body["properties"]["subnets"] == [{"name": "snet", "properties": {
        "addressPrefix": "10.0.1.0/24", "networkSecurityGroup": {"id": nsg_id},
        "delegations": [{"name": "d", "properties": {"serviceName": "Microsoft.Web/serverFarms"}}]}}]


def test_read_only_fields_of_a_sub_resource_are_dropped():
    nsg = _resource("azure-native:network:NetworkSecurityGroup", "nsg", {
        "networkSecurityGroupName": "nsg", "resourceGroupName": "rg", "location": "uksouth",
        "securityRules": [{"name": "r", "etag": "W/1", "type": "x", "provisioningState": "Succeeded",
                           "protocol": "Tcp"}]})
    assert arm_resource(nsg, {})["properties"]["securityRules"] == [{"name": "r", "properties": {"protocol": "Tcp"}}]


def test_secrets_become_secure_parameters_of_the_template():
    secret = _resource("azure-native:keyvault:Secret", "ca-crt", {
        "secretName": "ca-crt", "vaultName": "kv", "resourceGroupName": "rg", "properties": "[secret]",
        "tags": {"owner": "a"}})
    vm = _resource("azure-native:compute:VirtualMachine", "vm", {
        "vmName": "vm", "resourceGroupName": "rg", "location": "uksouth",
        "osProfile": {"computerName": "vm", "customData": "[secret]"}})
    template = export_template(Plan(stack="s", source="s.yaml", config={}, resources=[secret, vm]))
    [secret_body, vm_body] = template["resources"]
    assert secret_body["name"] == "kv/ca-crt" and secret_body["tags"] == {"owner": "a"}
    assert secret_body["properties"] == "[parameters('kv_ca_crt_properties')]"
    assert vm_body["properties"]["osProfile"]["customData"] == "[parameters('vm_properties_osProfile_customData')]"
    assert {name: p["type"] for name, p in template["parameters"].items()} == {
        "kv_ca_crt_properties": "secureObject", "vm_properties_osProfile_customData": "securestring"}
    assert "[secret]" not in json.dumps(template)
