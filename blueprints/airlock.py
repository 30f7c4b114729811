"""The environment's airlock, ingress side: a private storage account with one ``ingress`` container.

Data providers (an Entra group the stack names by object id) write to the container from the trust's
own network (``network.private_client_ranges``) through the account's private endpoint in the
``services`` subnet; the analytics VMs the stack names read it with their managed identities. Every
grant is scoped to the container, never the account: Storage Blob Data Contributor for the group,
Storage Blob Data Reader for each reading VM, nothing for any other identity. The account takes no
shared keys and no public network traffic, and keeps deleted blobs and containers for a while
(modules/blob_storage.py). Policies check each of these on the plan (validation/policies/data_rules.py).

What is left to a later part: the VM side (a read-only mount with Debian's rclone and the VM's
identity) and egress with review.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from blueprints.airlock_settings import AIRLOCK_COMPONENT, INGRESS_CONTAINER
from modules.blob_storage import (
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DATA_READER,
    BlobStorage,
    BlobStorageArgs,
)
from modules.placement import Placement
from modules.private_endpoint import EndpointSubnet

__all__ = ["Airlock", "AirlockArgs"]


@dataclass
class AirlockArgs:
    placement: Placement
    account_name: str
    endpoints: EndpointSubnet  # with the airlock's own fixed address for group "blob"
    data_providers_group: str
    readers: dict[str, pulumi.Input[str]]  # VM name -> its managed identity's principal id
    subscription_id: pulumi.Input[str]
    soft_delete_days: int = 14


class Airlock(pulumi.ComponentResource):
    account_id: pulumi.Output[str]
    container_id: pulumi.Output[str]

    def __init__(self, name: str, args: AirlockArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("trust-blueprints:blueprints:Airlock", name, None, opts)
        store = BlobStorage(f"{name}-ingress", BlobStorageArgs(
            args.placement, args.account_name, INGRESS_CONTAINER, AIRLOCK_COMPONENT, args.endpoints,
            soft_delete_days=args.soft_delete_days,
        ), pulumi.ResourceOptions(parent=self))
        store.grant(f"{name}-providers-write", args.data_providers_group, args.subscription_id, self,
                    STORAGE_BLOB_DATA_CONTRIBUTOR, "Group", "data providers upload to the ingress container")
        for machine, principal in sorted(args.readers.items()):
            store.grant(f"{name}-{machine}-read", principal, args.subscription_id, self,
                        STORAGE_BLOB_DATA_READER, "ServicePrincipal", f"{machine} reads the ingress container")
        self.account_id = store.account_id
        self.container_id = store.container_id
        self.register_outputs({"account_id": self.account_id, "container_id": self.container_id})
