"""Key Vault, monitoring, backup, private DNS, Bastion and auto-shutdown under mocks."""

from modules.auto_shutdown import AutoShutdown, AutoShutdownArgs
from modules.backup import Backup, BackupArgs
from modules.bastion import Bastion, BastionArgs
from modules.key_vault import KEY_VAULT_SECRETS_USER, KeyVault, KeyVaultArgs
from modules.monitoring import Monitoring, MonitoringArgs
from modules.private_dns import PrivateDns, PrivateDnsArgs
from modules.private_endpoint import EndpointSubnet, zones_for
from tests.conftest import all_of, only

ZONES = {zone: f"/zones/{zone}" for zone in zones_for(["vault", "blob", "azuremonitor"])}


def test_key_vault_is_rbac_purge_protected_and_reached_only_through_its_private_endpoint(placement, run_component):
    def program():
        endpoints = EndpointSubnet("/subnets/services", ZONES, {"vault": "10.0.2.254"})
        vault = KeyVault("kv", KeyVaultArgs(placement, "tenant-1", endpoints))
        vault.grant_secret_read("reads", "app-secret", "principal-1", "sub-1", parent=vault)

    resources = run_component(program)
    vault = only(resources, "azure-native:keyvault:Vault")
    properties = vault.inputs["properties"]
    assert properties["enableRbacAuthorization"] is True
    assert properties["enablePurgeProtection"] is True
    assert properties["publicNetworkAccess"] == "Disabled"
    assert properties["networkAcls"]["defaultAction"] == "Deny"
    assert "virtualNetworkRules" not in properties["networkAcls"]
    endpoint = only(resources, "azure-native:network:PrivateEndpoint").inputs
    assert endpoint["subnet"] == {"id": "/subnets/services"}
    assert endpoint["privateLinkServiceConnections"][0]["groupIds"] == ["vault"]
    assert endpoint["privateLinkServiceConnections"][0]["privateLinkServiceId"] == vault.id
    assert endpoint["ipConfigurations"] == [{"groupId": "vault", "memberName": "default", "name": "kv",
                                             "privateIPAddress": "10.0.2.254"}]
    zones = only(resources, "azure-native:network:PrivateDnsZoneGroup").inputs["privateDnsZoneConfigs"]
    assert [zone["privateDnsZoneId"] for zone in zones] == ["/zones/privatelink.vaultcore.azure.net"]
    grant = only(resources, "azure-native:authorization:RoleAssignment").inputs
    assert grant["scope"].endswith("/secrets/app-secret")  # one secret, not the vault
    assert grant["roleDefinitionId"].endswith(KEY_VAULT_SECRETS_USER)
    assert grant["principalId"] == "principal-1"


def test_monitoring_sends_syslog_to_the_workspace(placement, run_component):
    resources = run_component(lambda: Monitoring("mon", MonitoringArgs(placement)))
    workspace = only(resources, "azure-native:operationalinsights:Workspace")
    rule = only(resources, "azure-native:monitor:DataCollectionRule").inputs
    assert rule["kind"] == "Linux"
    assert "auth" in rule["dataSources"]["syslog"][0]["facilityNames"]
    assert rule["destinations"]["logAnalytics"][0]["workspaceResourceId"] == workspace.id


def test_backup_policy_is_daily_and_protects_a_vm(placement, run_component):
    def program():
        backup = Backup("bk", BackupArgs(placement))
        backup.protect("bk-vm", "vm-x", "/vms/x", parent=backup)

    resources = run_component(program)
    policy = only(resources, "azure-native:recoveryservices:ProtectionPolicy").inputs["properties"]
    assert policy["schedulePolicy"]["scheduleRunFrequency"] == "Daily"
    assert policy["retentionPolicy"]["dailySchedule"]["retentionDuration"]["count"] == 30
    item = only(resources, "azure-native:recoveryservices:ProtectedItem").inputs
    assert item["properties"]["sourceResourceId"] == "/vms/x"
    assert item["protectedItemName"] == "vm;iaasvmcontainerv2;rg-test;vm-x"


def test_private_dns_has_one_record_per_name(placement, run_component):
    resources = run_component(lambda: PrivateDns("dns", PrivateDnsArgs(
        placement, "tst-dev.internal", "/vnet/1", {"mirror": "10.0.2.4", "git": "10.0.2.5"})))
    records = {r.inputs["relativeRecordSetName"]: r.inputs["aRecords"][0]["ipv4Address"]
               for r in all_of(resources, "azure-native:privatedns:PrivateRecordSet")}
    assert records == {"mirror": "10.0.2.4", "git": "10.0.2.5"}
    assert only(resources, "azure-native:privatedns:VirtualNetworkLink").inputs["registrationEnabled"] is False


def test_bastion_standard_enables_native_client_tunnelling(placement, run_component):
    basic = run_component(lambda: Bastion("b", BastionArgs(placement, "/subnets/bastion")))
    assert only(basic, "azure-native:network:BastionHost").inputs["enableTunneling"] is False
    standard = run_component(lambda: Bastion("b", BastionArgs(placement, "/subnets/bastion", "Standard")))
    host = only(standard, "azure-native:network:BastionHost").inputs
    assert host["sku"] == {"name": "Standard"}
    assert host["enableTunneling"] is True
    assert host["enableShareableLink"] is False


def test_auto_shutdown_uses_azures_schedule_name_and_time(placement, run_component):
    resources = run_component(lambda: AutoShutdown("off", AutoShutdownArgs(
        placement, "analytics-1", "/vms/a1", "19:30", "GMT Standard Time")))
    schedule = only(resources, "azure-native:devtestlab:GlobalSchedule").inputs
    assert schedule["name"] == "shutdown-computevm-vm-tst-dev-uks-analytics-1"
    assert schedule["dailyRecurrence"] == {"time": "1930"}
    assert schedule["targetResourceId"] == "/vms/a1"
    assert schedule["status"] == "Enabled"
