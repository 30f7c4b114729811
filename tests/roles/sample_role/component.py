"""The sample role's Azure resources: one Linux VM per machine, and deliberately nothing else.

No shutdown schedule is declared, although the role says its VMs shut down at night: the tests
use that to prove the policies read the declaration.
"""

from __future__ import annotations

import pulumi

from blueprints.deployment import EnvironmentParts, RoleOutputs
from blueprints.topology import Machine
from modules.linux_vm import LinuxVm
from tests.roles.sample_role.role import ROLE


class CodeServer(pulumi.ComponentResource):
    vm_id: pulumi.Output[str]
    principal_id: pulumi.Output[str]

    def __init__(self, name: str, env: EnvironmentParts, machine: Machine,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:tests:CodeServer", name, None, opts)
        vm = LinuxVm(f"{name}-host", env.host(machine).vm_args(ROLE.component), pulumi.ResourceOptions(parent=self))
        self.vm_id = vm.vm_id
        self.principal_id = vm.principal_id
        self.register_outputs({"vm_id": self.vm_id})


def deploy(env: EnvironmentParts, machines: list[Machine]) -> RoleOutputs:
    identities = {}
    for machine in machines:
        server = CodeServer(f"{env.name}-{machine.name}", env, machine, env.child)
        identities[machine.name] = server.principal_id
    return RoleOutputs(identities=identities)
