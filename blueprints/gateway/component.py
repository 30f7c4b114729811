"""The remote-access gateway: the only thing reachable from analysts' networks.

``self-hosted``: a VM with a public IP running the single sign-on reverse proxy and an SSH
jump host (key and TOTP). ``bastion``: Azure Bastion, for trusts that prefer the managed service.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from blueprints.deployment import EnvironmentParts, RoleOutputs
from blueprints.regions import availability_zones
from blueprints.role_host import RoleHostArgs
from blueprints.topology import Machine
from modules.backup import Backup
from modules.bastion import Bastion, BastionArgs
from modules.linux_vm import LinuxVm
from modules.placement import Placement
from modules.public_ip import PublicIp, PublicIpArgs

# The Key Vault secrets the gateway reads: its rows of the one secrets table.


@dataclass
class RemoteGatewayArgs:
    kind: str  # self-hosted | bastion
    placement: Placement
    host: RoleHostArgs | None = None  # self-hosted only
    bastion_subnet_id: pulumi.Input[str] | None = None  # bastion only
    bastion_sku: str = "Basic"
    backup: Backup | None = None  # self-hosted: its data disk holds every TOTP enrolment


class RemoteGateway(pulumi.ComponentResource):
    public_ip: pulumi.Output[str | None] | None
    principal_id: pulumi.Output[str] | None  # the self-hosted VM's identity (None with Bastion)

    def __init__(self, name: str, args: RemoteGatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:blueprints:RemoteGateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        zones = availability_zones(args.placement.location)  # its public IP's: none where the region has none
        if args.kind == "bastion":
            if args.bastion_subnet_id is None:
                raise ValueError("a bastion gateway needs bastion_subnet_id")
            Bastion(f"{name}-bastion", BastionArgs(args.placement, args.bastion_subnet_id, args.bastion_sku, zones),
                    child)
            self.public_ip = None
            self.principal_id = None
        else:
            if args.host is None:
                raise ValueError("a self-hosted gateway needs host")
            address = PublicIp(f"{name}-ip", PublicIpArgs(args.placement, "gateway", zones=zones), child)
            vm = LinuxVm(f"{name}-host", args.host.vm_args("remote-gateway", public_ip_id=address.id), child)
            if args.backup is not None:
                vm_name = args.host.placement.naming.name("vm", args.host.machine.name)
                args.backup.protect(f"{name}-backup", vm_name=vm_name, vm_id=vm.vm_id, parent=self)
            self.public_ip = address.ip_address
            self.principal_id = vm.principal_id
        self.register_outputs({"public_ip": self.public_ip})


def deploy(env: EnvironmentParts, machines: list[Machine]) -> RoleOutputs:
    settings = env.config["roles"]["gateway"]
    if settings["kind"] == "bastion":
        RemoteGateway(f"{env.name}-gateway",
                      RemoteGatewayArgs("bastion", env.placement, bastion_subnet_id=env.subnet_ids["bastion"],
                                        bastion_sku=settings["bastion_sku"]),
                      env.child)
        return RoleOutputs()
    (machine,) = machines
    gateway = RemoteGateway(
        f"{env.name}-{machine.name}",
        RemoteGatewayArgs("self-hosted", env.placement, env.host(machine), backup=env.backup),
        env.child,
    )
    return RoleOutputs(identities={machine.name: gateway.principal_id}, gateway_public_ip=gateway.public_ip)
