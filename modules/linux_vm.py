"""A hardened Debian 13 VM: Trusted Launch, encryption at host, SSH keys only, no public IP
unless asked, managed boot diagnostics, platform patching, a system-assigned identity, and
the Azure Monitor Agent sending syslog to the environment's workspace.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import compute, monitor, network

from modules.immutable_properties import replace_on_changes
from modules.placement import Placement

# Debian's own gen2 image of Debian 13 "trixie" in the Azure Marketplace.
DEBIAN_13_IMAGE = {"publisher": "Debian", "offer": "debian-13", "sku": "13-gen2", "version": "latest"}
# The property path (Pulumi's names) of the administrator keys the VM was created with.
ADMIN_KEYS_AT_CREATION = "osProfile.linuxConfiguration.ssh.publicKeys"

VM_TYPE = "azure-native:compute:VirtualMachine"
# The properties Azure refuses to change on an existing VM (modules/immutable-properties.yaml):
# without this Pulumi previews an update that Azure then refuses. The VM's name is fixed, so the
# old VM must go before its replacement can take the name.
_VM_REPLACEMENT = pulumi.ResourceOptions(replace_on_changes=replace_on_changes(VM_TYPE), delete_before_replace=True)


@dataclass
class LinuxVmArgs:
    placement: Placement
    host_name: str  # computer name and the part of the Azure names: gateway, mirror, analytics-1
    component: str  # the blueprint that owns the VM, for tags
    vm_size: str
    subnet_id: pulumi.Input[str]
    private_ip: str
    admin_username: str
    ssh_public_keys: Sequence[str]
    # Rendered cloud-init, Azure's custom data; never holds a secret. An output when it holds a value
    # another resource makes (the gateway's client id, from a registration the program creates).
    user_data: bytes | pulumi.Output[bytes]
    data_collection_rule_id: pulumi.Input[str]
    # The data collection endpoint the agent reaches through the Private Link Scope (None: public endpoints).
    data_collection_endpoint_id: pulumi.Input[str] | None = None
    data_disk_gb: int | None = None
    # Pulumi refuses to delete the data disk (retained on delete either way); the stack asks for it
    # by being a production environment (blueprints/role_host.py).
    protect_data_disk: bool = False
    public_ip_id: pulumi.Input[str] | None = None
    os_disk_gb: int = 32
    extra_tags: dict[str, str] = field(default_factory=dict)
    # Tags the VM itself reads at boot from the instance metadata service (the Key Vault's name):
    # on the VM resource only, kept apart from extra_tags so a role's own tags never drop them.
    platform_tags: dict[str, str] = field(default_factory=dict)
    # Azure's userData: the VM's changeable settings (blueprints/vm_settings.py), updated in place
    # and read by the VM from the instance metadata service; never holds a secret.
    settings_data: bytes | None = None
    # An Azure Compute Gallery image version to boot from instead of Debian 13 from the Marketplace
    # (a Trusted Launch, generation 2 image of Debian 13). Changing it replaces the VM.
    image_id: pulumi.Input[str] | None = None


class LinuxVm(pulumi.ComponentResource):
    vm_id: pulumi.Output[str]
    vm_name: pulumi.Output[str]
    principal_id: pulumi.Output[str]
    nic_id: pulumi.Output[str]

    def __init__(self, name: str, args: LinuxVmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:modules:LinuxVm", name, None, opts)
        placement = args.placement
        naming = placement.naming
        tags = {**placement.tags_for(args.component), **args.extra_tags}
        child = pulumi.ResourceOptions(parent=self)

        ip_configuration: dict[str, object] = {
            "name": "primary",
            "subnet": {"id": args.subnet_id},
            "private_ip_allocation_method": "Static",
            "private_ip_address": args.private_ip,
            "primary": True,
        }
        if args.public_ip_id is not None:
            ip_configuration["public_ip_address"] = {"id": args.public_ip_id}
        nic = network.NetworkInterface(
            f"{name}-nic",
            network_interface_name=naming.name("nic", args.host_name),
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            ip_configurations=[ip_configuration],
            enable_ip_forwarding=False,
            enable_accelerated_networking=False,
            tags=tags,
            opts=child,
        )

        data_disks = []
        self.data_disk_id: pulumi.Output[str] | None = None
        if args.data_disk_gb:
            # A disk of its own, attached by id: replacing the VM (a new image, a size Azure cannot
            # resize in place) detaches it and attaches the same disk to the new VM, where the
            # data-disk step mounts what it finds. A disk declared inside the VM would be created
            # afresh with it. retain_on_delete: a `pulumi destroy` or a role taken out of the stack
            # leaves the disk and its data in Azure (deleted by hand, it costs until then);
            # protect, where the stack asks: Pulumi refuses any plan that would delete it.
            disk = compute.Disk(
                f"{name}-data-disk",
                disk_name=naming.name("disk", f"{args.host_name}-data"),
                resource_group_name=placement.resource_group_name,
                location=placement.location,
                sku={"name": "Premium_LRS"},
                creation_data={"create_option": "Empty"},
                disk_size_gb=args.data_disk_gb,
                # Platform-managed keys, stated (the VM also encrypts at host); no download or upload
                # URL (SAS) for anyone: the data leaves only through the VM.
                encryption={"type": "EncryptionAtRestWithPlatformKey"},
                network_access_policy="DenyAll",
                public_network_access="Disabled",
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, protect=args.protect_data_disk),
            )
            self.data_disk_id = disk.id
            data_disks.append({
                "lun": 0,  # the cloud-init step finds it by this LUN: blueprints/data_disk.py
                "create_option": "Attach",
                "managed_disk": {"id": disk.id},
                "caching": "ReadOnly",
                "delete_option": "Detach",  # deleting the VM leaves the disk
            })

        vm = compute.VirtualMachine(
            f"{name}-vm",
            vm_name=naming.name("vm", args.host_name),
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            hardware_profile={"vm_size": args.vm_size},
            identity={"type": "SystemAssigned"},
            # Detach: a replaced VM (deleted first, its name is fixed) leaves its NIC for the new one; with
            # Delete, Azure would remove a NIC that Pulumi's state still holds and the new VM could not use it.
            network_profile={"network_interfaces": [{"id": nic.id, "primary": True, "delete_option": "Detach"}]},
            storage_profile={
                "image_reference": {"id": args.image_id} if args.image_id else DEBIAN_13_IMAGE,
                "os_disk": {
                    "name": naming.name("disk", f"{args.host_name}-os"),
                    "create_option": "FromImage",
                    "caching": "ReadWrite",
                    "disk_size_gb": args.os_disk_gb,
                    "delete_option": "Delete",
                    "managed_disk": {"storage_account_type": "Premium_LRS"},
                },
                "data_disks": data_disks,
            },
            os_profile={
                "computer_name": args.host_name,
                "admin_username": args.admin_username,
                "custom_data": pulumi.Output.from_input(args.user_data).apply(
                    lambda data: base64.b64encode(data).decode("ascii"))
                if isinstance(args.user_data, pulumi.Output) else base64.b64encode(args.user_data).decode("ascii"),
                "allow_extension_operations": True,
                "linux_configuration": {
                    "disable_password_authentication": True,
                    "provision_vm_agent": True,
                    "ssh": {"public_keys": [
                        {"path": f"/home/{args.admin_username}/.ssh/authorized_keys", "key_data": key}
                        for key in args.ssh_public_keys
                    ]},
                    "patch_settings": {
                        "patch_mode": "AutomaticByPlatform",
                        "assessment_mode": "AutomaticByPlatform",
                    },
                },
            },
            security_profile={
                "security_type": "TrustedLaunch",
                "uefi_settings": {"secure_boot_enabled": True, "v_tpm_enabled": True},
                "encryption_at_host": True,
            },
            # Managed boot diagnostics: no storage account to secure.
            diagnostics_profile={"boot_diagnostics": {"enabled": True}},
            user_data=base64.b64encode(args.settings_data).decode("ascii") if args.settings_data is not None else None,
            tags={**tags, **args.platform_tags},
            # Azure refuses any change to osProfile's key list on an existing VM, so the list given at
            # creation stays (ignored, never a replacement); later keys reach the VM as authorized_keys
            # in its user data.
            opts=pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions.merge(child, _VM_REPLACEMENT),
                pulumi.ResourceOptions(ignore_changes=[ADMIN_KEYS_AT_CREATION])),
        )

        agent = compute.VirtualMachineExtension(
            f"{name}-ama",
            vm_extension_name="AzureMonitorLinuxAgent",
            vm_name=vm.name,
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            publisher="Microsoft.Azure.Monitor",
            type="AzureMonitorLinuxAgent",
            type_handler_version="1.0",
            auto_upgrade_minor_version=True,
            enable_automatic_upgrade=True,
            tags=tags,
            opts=child,
        )
        monitor.DataCollectionRuleAssociation(
            f"{name}-dcra",
            association_name=f"dcra-{args.host_name}",
            resource_uri=vm.id,
            data_collection_rule_id=args.data_collection_rule_id,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[agent]),
        )
        if args.data_collection_endpoint_id is not None:
            # Azure's fixed name for the association that tells the agent which endpoint to use.
            monitor.DataCollectionRuleAssociation(
                f"{name}-dcea",
                association_name="configurationAccessEndpoint",
                resource_uri=vm.id,
                data_collection_endpoint_id=args.data_collection_endpoint_id,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[agent]),
            )

        self.vm_id = vm.id
        self.vm_name = vm.name
        self.nic_id = nic.id
        self.principal_id = vm.identity.apply(lambda identity: identity.principal_id if identity else "")
        self.register_outputs({"vm_id": self.vm_id, "principal_id": self.principal_id})
