"""A data disk outlives its VM: a disk resource of its own, attached by id, retained when Pulumi would
delete it, and untouched by a plan that replaces the VM (a new image: Azure cannot change
storageProfile.imageReference in place, so the VM is created anew)."""

from __future__ import annotations

import pytest
from pulumi_azure_native import compute

from modules import linux_vm
from modules.linux_vm import LinuxVm, LinuxVmArgs
from tests.conftest import EXAMPLE, all_of, only, planned
from validation.plan_recorder import record_plan

VM = "azure-native:compute:VirtualMachine"
DISK = "azure-native:compute:Disk"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPaQRANNGS3AJl+hVDSGny6TDyecqFzA6RndNnIHTNZY test"


@pytest.fixture(scope="module")
def before_and_after():
    """The example planned as it is, and again with every VM on another image."""
    before = planned(EXAMPLE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(linux_vm, "DEBIAN_13_IMAGE", {**linux_vm.DEBIAN_13_IMAGE, "sku": "13-gen2-next"})
        after = record_plan(EXAMPLE)
    return before, after


def test_a_new_image_replaces_the_vm_but_leaves_its_data_disk_as_it_was(before_and_after):
    before, after = before_and_after
    vms = {vm.urn: vm for vm in after.of_type(VM)}
    disks_after = {disk.urn: disk for disk in after.of_type(DISK)}
    assert len(before.of_type(DISK)) == 5  # mirror, git, gateway, analytics-1, analytics-2
    for vm in before.of_type(VM):
        assert vms[vm.urn].inputs["storageProfile"]["imageReference"] != vm.inputs["storageProfile"]["imageReference"]
    for disk in before.of_type(DISK):
        # Same URN, same inputs: the plan keeps the disk, whatever happens to its VM.
        assert disks_after[disk.urn].inputs == disk.inputs, disk.azure_name
        assert disks_after[disk.urn].id == disk.id


def test_each_vm_attaches_its_own_disk_by_id_and_detaches_it_when_deleted(before_and_after):
    _, after = before_and_after
    disks = {disk.id: disk for disk in after.of_type(DISK)}
    attached = []
    for vm in after.of_type(VM):
        for data_disk in vm.inputs["storageProfile"].get("dataDisks", []):
            assert data_disk["createOption"] == "Attach" and data_disk["deleteOption"] == "Detach"
            assert data_disk["lun"] == 0 and "diskSizeGB" not in data_disk and "name" not in data_disk
            disk = disks[data_disk["managedDisk"]["id"]]
            assert disk.azure_name == vm.azure_name.replace("vm-", "disk-", 1) + "-data"
            attached.append(disk.id)
    assert sorted(attached) == sorted(disks)


def test_the_disk_is_created_empty_once_and_offers_no_export_url(before_and_after):
    _, after = before_and_after
    for disk in after.of_type(DISK):
        assert disk.inputs["creationData"] == {"createOption": "Empty"}
        assert disk.inputs["networkAccessPolicy"] == "DenyAll" and disk.inputs["publicNetworkAccess"] == "Disabled"
        assert disk.inputs["sku"] == {"name": "Premium_LRS"}


@pytest.mark.parametrize("protect", [False, True])
def test_the_disk_is_retained_on_delete_and_protected_when_asked(placement, run_component, monkeypatch, protect):
    seen = []
    real = compute.Disk

    def recording_disk(name, opts=None, **kwargs):
        seen.append(opts)
        return real(name, opts=opts, **kwargs)

    monkeypatch.setattr(linux_vm.compute, "Disk", recording_disk)
    args = LinuxVmArgs(placement=placement, host_name="box", component="test", vm_size="Standard_B2s",
                       subnet_id="/subnets/s", private_ip="10.0.0.4", admin_username="trustadmin",
                       ssh_public_keys=[KEY], user_data=b"#cloud-config\n", data_collection_rule_id="/dcr/1",
                       data_disk_gb=64, protect_data_disk=protect)
    resources = run_component(lambda: LinuxVm("box", args))
    assert len(all_of(resources, DISK)) == 1 and only(resources, DISK).inputs["diskSizeGB"] == 64
    [opts] = seen
    assert opts.retain_on_delete is True
    assert bool(opts.protect) is protect
