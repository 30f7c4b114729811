"""The environment's airlock, ingress side: a private storage account with one ``ingress`` container.

Data providers (an Entra group the stack names by object id) write to the container from the trust's
own network (``network.private_client_ranges``) through the account's private endpoint in the
``services`` subnet; the analytics VMs the stack names read it with their managed identities. Every
grant is scoped to the container, never the account: Storage Blob Data Contributor for the group,
Storage Blob Data Reader for each reading VM, nothing for any other identity. The account takes no
shared keys and no public network traffic, and keeps deleted blobs and containers for a while
(modules/blob_storage.py). Every read, write and delete of its blobs (an upload to ingress, a
download of published outputs from egress) is recorded with who and when in the environment's
Log Analytics workspace (StorageBlobLogs; docs/outputs.md). Policies check each of these on the
plan (validation/policies/data_rules.py and egress_rules.py).

The grants come from one table (``airlock_grants``), which the lab's storage stand-in enforces too.
With ``airlock.egress`` the account also holds the ``egress`` container: the Git server writes it,
the readers' group reads it, and no analytics identity has any grant on it.
Reading VMs copy the container with Debian's rclone and their identity (blueprints/analytics).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from blueprints.airlock_settings import (
    AIRLOCK_COMPONENT,
    BLOB_CONTRIBUTOR,
    BLOB_READER,
    INGRESS_CONTAINER,
    StorageGrant,
)
from modules.blob_storage import (
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DATA_READER,
    BlobStorage,
    BlobStorageArgs,
)
from modules.placement import Placement
from modules.private_endpoint import EndpointSubnet

__all__ = ["Airlock", "AirlockArgs"]

ROLE_DEFINITIONS = {BLOB_READER: STORAGE_BLOB_DATA_READER, BLOB_CONTRIBUTOR: STORAGE_BLOB_DATA_CONTRIBUTOR}
PRINCIPAL_TYPES = {"group": "Group", "vm": "ServicePrincipal"}


@dataclass
class AirlockArgs:
    placement: Placement
    account_name: str
    endpoints: EndpointSubnet  # with the airlock's own fixed address for group "blob"
    grants: list[StorageGrant]  # blueprints.airlock_settings.airlock_grants: the lab's stand-in allows the same
    identities: dict[str, pulumi.Input[str]]  # VM name -> its managed identity's principal id
    subscription_id: pulumi.Input[str]
    workspace_id: pulumi.Input[str]  # the environment's Log Analytics workspace (or the landing zone's)
    soft_delete_days: int = 14


def _other_containers(store: BlobStorage, name: str, grants: list[StorageGrant]) -> dict[str, pulumi.Output[str]]:
    """The account's containers besides ingress, one for each the grants name (egress, when
    airlock.egress is set: blueprints/airlock_egress.py)."""
    wanted = sorted({grant.container for grant in grants} - {INGRESS_CONTAINER})
    return {container: store.add_container(f"{name}-{container}-container", container) for container in wanted}


class Airlock(pulumi.ComponentResource):
    account_id: pulumi.Output[str]
    container_id: pulumi.Output[str]

    def __init__(self, name: str, args: AirlockArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:blueprints:Airlock", name, None, opts)
        store = BlobStorage(f"{name}-ingress", BlobStorageArgs(
            args.placement, args.account_name, INGRESS_CONTAINER, AIRLOCK_COMPONENT, args.endpoints,
            soft_delete_days=args.soft_delete_days, log_workspace_id=args.workspace_id,
        ), pulumi.ResourceOptions(parent=self))
        containers = {INGRESS_CONTAINER: store.container_id} | _other_containers(store, name, args.grants)
        for grant in args.grants:
            # Every grant is scoped to one container, never the account.
            principal = args.identities[grant.principal] if grant.principal_kind == "vm" else grant.principal
            store.grant(f"{name}-{grant.name}", principal, args.subscription_id, self,
                        ROLE_DEFINITIONS[grant.role], PRINCIPAL_TYPES[grant.principal_kind], grant.description,
                        container_id=containers[grant.container])
        self.account_id = store.account_id
        self.container_id = store.container_id
        self.register_outputs({"account_id": self.account_id, "container_id": self.container_id})
