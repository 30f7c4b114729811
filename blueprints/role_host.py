"""What every role's VM is given: where it sits, who administers it, what it runs at boot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import pulumi

from blueprints.topology import Machine
from modules.linux_vm import LinuxVmArgs
from modules.placement import Placement


@dataclass
class RoleHostArgs:
    placement: Placement
    machine: Machine
    subnet_id: pulumi.Input[str]
    admin_username: str
    ssh_public_keys: Sequence[str]
    user_data: bytes | pulumi.Output[bytes]  # an output when it waits for another resource's value
    data_collection_rule_id: pulumi.Input[str]
    data_collection_endpoint_id: pulumi.Input[str] | None = None
    # Facts the VM reads from its own tags through the instance metadata service at boot (the Key
    # Vault's name): they depend on the subscription, which its rendered cloud-init cannot know.
    vm_tags: Mapping[str, str] = field(default_factory=dict)
    settings_data: bytes | None = None  # the VM's user data (blueprints/vm_settings.py)
    # Pulumi refuses a plan that deletes the VM's data disk (stacks whose environment is prod).
    protect_data_disk: bool = False
    # A gallery image version to boot from (None: Debian 13 from the Marketplace); a role that offers
    # one sets it from its settings (blueprints/analytics/image.py).
    image_id: str | None = None

    def vm_args(self, component: str, public_ip_id: pulumi.Input[str] | None = None) -> LinuxVmArgs:
        machine = self.machine
        return LinuxVmArgs(
            placement=replace(self.placement, tags={**self.placement.tags, "blueprint": component}),
            host_name=machine.name,
            component=component,
            vm_size=machine.vm_size,
            subnet_id=self.subnet_id,
            private_ip=machine.private_ip,
            admin_username=self.admin_username,
            ssh_public_keys=self.ssh_public_keys,
            user_data=self.user_data,
            data_collection_rule_id=self.data_collection_rule_id,
            data_collection_endpoint_id=self.data_collection_endpoint_id,
            data_disk_gb=machine.data_disk_gb,
            protect_data_disk=self.protect_data_disk,
            public_ip_id=public_ip_id,
            platform_tags=dict(self.vm_tags),
            settings_data=self.settings_data,
            image_id=self.image_id,
        )
