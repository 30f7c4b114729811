import base64

import pytest

from modules.linux_vm import DEBIAN_13_IMAGE, LinuxVm, LinuxVmArgs
from tests.conftest import all_of, only

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPaQRANNGS3AJl+hVDSGny6TDyecqFzA6RndNnIHTNZY test"
USER_DATA = b"#cloud-config\nhostname: box\n"


def _args(placement, **overrides):
    values = {"placement": placement, "host_name": "box", "component": "test", "vm_size": "Standard_B2s",
              "subnet_id": "/subnets/s", "private_ip": "10.0.0.4", "admin_username": "trustadmin",
              "ssh_public_keys": [KEY], "user_data": USER_DATA, "data_collection_rule_id": "/dcr/1"}
    values.update(overrides)
    return LinuxVmArgs(**values)


@pytest.fixture
def vm_resources(placement, run_component):
    return run_component(lambda: LinuxVm("box", _args(placement, data_disk_gb=64)))


def test_vm_is_trusted_launch_with_encryption_at_host(vm_resources):
    security = only(vm_resources, "azure-native:compute:VirtualMachine").inputs["securityProfile"]
    assert security["securityType"] == "TrustedLaunch"
    assert security["uefiSettings"] == {"secureBootEnabled": True, "vTpmEnabled": True}
    assert security["encryptionAtHost"] is True


def test_vm_accepts_ssh_keys_only(vm_resources):
    os_profile = only(vm_resources, "azure-native:compute:VirtualMachine").inputs["osProfile"]
    linux = os_profile["linuxConfiguration"]
    assert linux["disablePasswordAuthentication"] is True
    assert "adminPassword" not in os_profile
    assert [k["keyData"] for k in linux["ssh"]["publicKeys"]] == [KEY]
    assert linux["patchSettings"]["patchMode"] == "AutomaticByPlatform"


def test_vm_runs_debian_13_with_the_rendered_user_data(vm_resources):
    inputs = only(vm_resources, "azure-native:compute:VirtualMachine").inputs
    assert inputs["storageProfile"]["imageReference"] == DEBIAN_13_IMAGE
    assert base64.b64decode(inputs["osProfile"]["customData"]) == USER_DATA
    assert inputs["identity"]["type"] == "SystemAssigned"
    assert inputs["diagnosticsProfile"]["bootDiagnostics"] == {"enabled": True}
    assert only(vm_resources, "azure-native:compute:Disk").inputs["diskSizeGB"] == 64


def test_nic_has_no_public_ip_and_no_forwarding_by_default(vm_resources):
    nic = only(vm_resources, "azure-native:network:NetworkInterface").inputs
    assert nic["enableIPForwarding"] is False
    config = nic["ipConfigurations"][0]
    assert "publicIPAddress" not in config
    assert config["privateIPAddress"] == "10.0.0.4"
    assert config["privateIPAllocationMethod"] == "Static"


def test_public_ip_only_when_given(placement, run_component):
    resources = run_component(lambda: LinuxVm("edge", _args(placement, public_ip_id="/pip/1")))
    nic = only(resources, "azure-native:network:NetworkInterface").inputs
    assert nic["ipConfigurations"][0]["publicIPAddress"] == {"id": "/pip/1"}


def test_monitoring_agent_and_data_collection(vm_resources):
    agent = only(vm_resources, "azure-native:compute:VirtualMachineExtension").inputs
    assert (agent["publisher"], agent["type"]) == ("Microsoft.Azure.Monitor", "AzureMonitorLinuxAgent")
    association = only(vm_resources, "azure-native:monitor:DataCollectionRuleAssociation")
    assert association.inputs["dataCollectionRuleId"] == "/dcr/1"


def test_every_taggable_child_carries_the_placement_tags(vm_resources):
    taggable = [r for r in vm_resources if r.custom and "tags" in r.inputs]
    assert len(taggable) == 4  # NIC, VM, agent, data disk
    for resource in taggable:
        assert resource.inputs["tags"]["trust"] == "tst"
        assert resource.inputs["tags"]["component"] == "test"


def test_two_instances_never_collide(placement, run_component):
    def two():
        LinuxVm("a", _args(placement, host_name="a"))
        LinuxVm("b", _args(placement, host_name="b"))

    resources = run_component(two)
    urns = [r.urn for r in resources]
    assert len(urns) == len(set(urns))
    assert len(all_of(resources, "azure-native:compute:VirtualMachine")) == 2
