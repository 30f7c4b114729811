"""The stack settings of the airlock (``airlock:`` in a stack file) and their checks.

Kept apart from the component (blueprints/airlock.py) so that validation, and the lab through it,
never import Pulumi.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from blueprints.settings_fields import GUID_PATTERN
from modules.naming import Naming

__all__ = ["AIRLOCK_ACCOUNT_TAG", "AIRLOCK_COMPONENT", "AIRLOCK_SCHEMA", "BLOB_CONTRIBUTOR", "BLOB_READER",
           "INGRESS_CONTAINER", "StorageGrant", "airlock_account_name", "airlock_grants", "airlock_problems",
           "airlock_settings", "ingress_readers", "ingress_settings"]

INGRESS_CONTAINER = "ingress"
# The VM tag that gives analytics VMs the airlock's account name, which hashes the subscription id
# (blueprints/vm_tags.py): every analytics VM has it, and user data says whether that VM reads.
AIRLOCK_ACCOUNT_TAG = "trust-blueprints-airlock-account"
# The component tag on its resources, which the policies read to find the airlock's account.
AIRLOCK_COMPONENT = "airlock"
MACHINE_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,30}$"

AIRLOCK_SCHEMA: dict[str, Any] = {
    "type": "dict", "required": False, "nullable": True, "default": None,
    "meta": {"doc": "Ingress: a private storage account the trust's data providers write and named analytics "
                    "VMs read (omit for none)"},
    "schema": {
        "data_providers_group": {
            "type": "string", "required": True, "regex": GUID_PATTERN,
            "meta": {"doc": "Object id of the Entra group whose members may upload to the ingress container",
                     "allowed": "a GUID such as 00000000-0000-4000-8000-000000000004"}},
        "readers": {
            "type": "list", "required": True, "minlength": 1, "maxlength": 20,
            "schema": {"type": "string", "regex": MACHINE_NAME_PATTERN,
                       "meta": {"allowed": "an analytics VM's name, such as analytics-1"}},
            "meta": {"doc": "Analytics VMs that may read the ingress container (read-only)"}},
        "soft_delete_days": {
            "type": "integer", "min": 7, "max": 365, "default": 14,
            "meta": {"doc": "Days a deleted or overwritten blob stays recoverable"}},
    },
}


def airlock_settings(config: dict[str, Any]) -> dict[str, Any] | None:
    return config.get("airlock")


# The two built-in data roles the airlock grants, by their Azure names (modules/blob_storage.py has their ids).
BLOB_READER = "Storage Blob Data Reader"
BLOB_CONTRIBUTOR = "Storage Blob Data Contributor"


@dataclass(frozen=True)
class StorageGrant:
    """One role assignment on one container of the airlock's account.

    ``principal_kind`` is ``group`` (an Entra group, by object id) or ``vm`` (a VM's system-assigned
    identity, by machine name: its object id is known only once Azure, or the lab, creates it)."""

    name: str  # the assignment's name in the program: unique within the airlock
    principal_kind: str
    principal: str
    role: str
    container: str
    description: str


def airlock_grants(config: dict[str, Any]) -> list[StorageGrant]:
    """Every grant on the airlock's account, all scoped to one container: the Pulumi program makes one
    role assignment of each, and the lab's storage stand-in (lab/storage_service.py) allows exactly these."""
    airlock = airlock_settings(config)
    if not airlock:
        return []
    grants = [StorageGrant("providers-write", "group", airlock["data_providers_group"], BLOB_CONTRIBUTOR,
                           INGRESS_CONTAINER, "data providers upload to the ingress container")]
    grants += [StorageGrant(f"{machine}-read", "vm", machine, BLOB_READER, INGRESS_CONTAINER,
                            f"{machine} reads the ingress container") for machine in sorted(airlock["readers"])]
    # The egress container's (with airlock.egress); imported here because that file builds on this one.
    from blueprints.airlock_egress import egress_grants

    return grants + egress_grants(config)


def ingress_readers(config: dict[str, Any]) -> list[str]:
    """The VMs that read the ingress container (none without an airlock)."""
    return sorted({grant.principal for grant in airlock_grants(config)
                   if grant.principal_kind == "vm" and grant.container == INGRESS_CONTAINER})


# Where a reading VM keeps its read-only copy of the ingress container (blueprints/analytics/ingress_copy.py).
INGRESS_FOLDER = "/srv/ingress"


def ingress_settings(config: dict[str, Any]) -> dict[str, Any]:
    """What an analytics VM's settings say of ingress: which VMs read it, the container, the folder, the tag."""
    return {"readers": ingress_readers(config), "container": INGRESS_CONTAINER, "folder": INGRESS_FOLDER,
            "account_tag": AIRLOCK_ACCOUNT_TAG}


def airlock_account_name(config: dict[str, Any], subscription_id: str) -> str:
    """The airlock's storage account name: globally unique, stable for one stack in one subscription."""
    naming = Naming(config["trust"]["short_name"], config["environment"], config["location"], subscription_id)
    return naming.name("st", "airlock")


def airlock_problems(config: dict[str, Any], analytics_machines: list[str],
                     endpoint_subnet: str) -> list[tuple[str, Any, str, str]]:
    """(field, value, what is wrong, hint) for an airlock the schema accepts but the stack cannot honour."""
    airlock = airlock_settings(config)
    if not airlock:
        return []
    problems: list[tuple[str, Any, str, str]] = []
    if endpoint_subnet not in {name for name, value in config["network"]["subnets"].items() if value}:
        problems.append((f"network.subnets.{endpoint_subnet}", None, "is required by airlock: the storage "
                         "account's private endpoint goes there", f"add a {endpoint_subnet} subnet"))
    if not config["network"].get("private_client_ranges"):
        problems.append(("network.private_client_ranges", [], "needs at least one range when airlock is set: data "
                         "providers upload from the trust's own network, never the Internet",
                         "name the private ranges the data providers' machines are on"))
    if not analytics_machines:
        problems.append(("roles.analytics", None, "is required by airlock.readers: the VMs that read the ingress "
                         "container are analytics VMs", "add roles.analytics, or leave the airlock out"))
        return problems
    seen: set[str] = set()
    for index, reader in enumerate(airlock["readers"]):
        if reader not in analytics_machines:
            problems.append((f"airlock.readers[{index}]", reader, "must name an analytics VM of this stack ("
                             + ", ".join(analytics_machines) + ")", ""))
        elif reader in seen:
            problems.append((f"airlock.readers[{index}]", reader, "is named twice", ""))
        seen.add(reader)
    return problems
