"""What the reference environment hands each role when the role declares its Azure resources.

A role's ``deploy`` (named in its role.py as "module:function") is called once per stack that
names the role, with the environment's shared parts and the role's machines (none, for a role
that deploys no VM for these settings, such as the gateway as Azure Bastion). It returns the
identity of each machine's VM and what it adds to the environment's outputs (:class:`RoleOutputs`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi

from blueprints.role import Role
from blueprints.role_host import RoleHostArgs
from blueprints.topology import Machine
from modules.backup import Backup
from modules.placement import Placement
from modules.private_endpoint import EndpointSubnet


@dataclass
class EnvironmentParts:
    """The environment's shared resources, as every role's deploy function sees them."""

    name: str  # the environment component's name: the prefix of every role's component name
    config: dict[str, Any]  # the validated stack config
    placement: Placement
    child: pulumi.ResourceOptions  # parent=the environment component
    subnet_ids: dict[str, pulumi.Output[str]]
    backup: Backup | None  # the Recovery Services vault, when a deployed role is backed up
    subscription_id: pulumi.Input[str]
    host: Callable[[Machine], RoleHostArgs]  # what a machine's VM is given (address, user-data, ...)
    # Where a role puts the private endpoints of the platform services it creates (a storage account).
    endpoints: EndpointSubnet | None = None


@dataclass
class RoleOutputs:
    """What a role's deploy function hands back to the environment.

    identities: machine name -> the principal id of its VM's managed identity, for every machine
                the role was given; the environment grants each one exactly the secrets its
                machine reads (a machine missing here is an error, never a VM left without).
    """

    identities: dict[str, pulumi.Output[str]] = field(default_factory=dict)
    gateway_public_ip: pulumi.Output[str | None] | None = None


DeployFunction = Callable[[EnvironmentParts, list[Machine]], RoleOutputs]


def deploy_function(role: Role) -> DeployFunction:
    """The role's deploy function, imported when an environment is declared (it needs Pulumi)."""
    module_name, _, function_name = role.deploy.partition(":")
    function = getattr(importlib.import_module(module_name), function_name, None)
    if not callable(function):
        raise TypeError(f"role {role.name!r}: deploy {role.deploy!r} is not a function")
    return function
