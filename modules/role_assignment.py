"""Role assignment names Azure accepts every time.

A role assignment's name is a GUID that must be unique in the tenant. Derived from the Pulumi
resource name alone, two environments (or a VM replaced by one with a new identity) would ask
for a name another assignment already holds, and Azure refuses the second. Derived from what
Azure itself keeps unique (the scope, the principal and the role definition), as Azure's own
templates do with guid(scope, principal, role), it never collides and stays stable across runs.
"""

from __future__ import annotations

import uuid

import pulumi


def assignment_name(scope: pulumi.Input[str], principal_id: pulumi.Input[str],
                    role_definition_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """The assignment's GUID from (scope, principal, role definition); case does not matter to Azure."""
    return pulumi.Output.all(scope, principal_id, role_definition_id).apply(
        lambda parts: str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(str(part).lower() for part in parts))))
