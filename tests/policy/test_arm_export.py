"""The ARM export puts each resource's settings where ARM keeps them, for scanners to read."""

from __future__ import annotations

import json
import re

import pytest

from cli.main import main
from tests.conftest import EXAMPLE
from validation.arm_export import PATH_NAMES, export_template
from validation.plan_recorder import ARM_TYPES


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
        assert resource["name"] and isinstance(resource["properties"], dict)
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
    for association in by_type(template, "Microsoft.Insights/dataCollectionRuleAssociations"):
        assert "/virtualMachines/" in association["scope"]
        assert association["properties"]["dataCollectionRuleId"].endswith("dcr-exnhs-dev-uks-syslog")


def test_depends_on_names_resources_of_the_template(template):
    [nic] = [r for r in by_type(template, "Microsoft.Network/networkInterfaces") if r["name"].endswith("-git")]
    assert "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet-exnhs-dev-uks', " \
           "'snet-exnhs-dev-uks-services')]" in nic["dependsOn"]


def test_plan_format_arm_writes_the_template(tmp_path, template):
    target = tmp_path / "example.json"
    assert main(["plan", str(EXAMPLE), "--format", "arm", "-o", str(target)]) == 0
    def keyed(resources):  # registration order under mocks is not fixed
        return {(r["type"], r["name"]): r for r in resources}

    assert keyed(json.loads(target.read_text())["resources"]) == keyed(template["resources"])


def test_storage_settings_carry_their_arm_names_and_containers_their_full_path(template):
    [account] = by_type(template, "Microsoft.Storage/storageAccounts")
    properties = account["properties"]
    assert properties["supportsHttpsTrafficOnly"] is True and "enableHttpsTrafficOnly" not in properties
    assert properties["networkAcls"]["defaultAction"] == "Deny" and "networkRuleSet" not in properties
    assert properties["allowSharedKeyAccess"] is False and properties["minimumTlsVersion"] == "TLS1_2"
    [container] = by_type(template, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert container["name"] == f"{account['name']}/default/git-server-backups"
    assert container["properties"]["publicAccess"] == "None"
