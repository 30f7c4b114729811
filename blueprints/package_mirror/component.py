"""The package mirror: the one machine that reaches the Internet, serving apt, PyPI, CRAN
and npm to everything else through curated allowlists."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi

from blueprints.deployment import EnvironmentParts, RoleOutputs
from blueprints.role_host import RoleHostArgs
from blueprints.topology import Machine
from modules.linux_vm import LinuxVm


@dataclass
class PackageMirrorArgs:
    host: RoleHostArgs


class PackageMirror(pulumi.ComponentResource):
    vm_id: pulumi.Output[str]
    principal_id: pulumi.Output[str]
    private_ip: str

    def __init__(self, name: str, args: PackageMirrorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:blueprints:PackageMirror", name, None, opts)
        # The cache disk refills itself from upstream: it is not backed up (policy TB-VM-006).
        vm_args = replace(args.host.vm_args("package-mirror"), extra_tags={"data-disk": "cache"})
        vm = LinuxVm(f"{name}-host", vm_args, pulumi.ResourceOptions(parent=self))
        self.vm_id = vm.vm_id
        self.principal_id = vm.principal_id
        self.private_ip = args.host.machine.private_ip
        self.register_outputs({"vm_id": self.vm_id})


def deploy(env: EnvironmentParts, machines: list[Machine]) -> RoleOutputs:
    identities = {}
    for machine in machines:
        mirror = PackageMirror(f"{env.name}-{machine.name}", PackageMirrorArgs(env.host(machine)), env.child)
        identities[machine.name] = mirror.principal_id
    return RoleOutputs(identities=identities)
