"""The Pulumi program itself, shared by `pulumi up` (stacks/__main__.py) and the offline plan."""

from __future__ import annotations

from typing import Any

import pulumi

from blueprints.reference_environment import ReferenceEnvironment, ReferenceEnvironmentArgs


def define_environment(config: dict[str, Any]) -> ReferenceEnvironment:
    """Declare every resource of a validated stack config and export what users need."""
    environment = ReferenceEnvironment("env", ReferenceEnvironmentArgs(config))
    pulumi.export("resource_group", environment.resource_group_name)
    pulumi.export("gateway_public_ip", environment.gateway_public_ip)
    pulumi.export("internal_names", environment.internal_names)
    return environment
