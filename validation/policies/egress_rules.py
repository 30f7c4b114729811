"""The airlock's egress container: published outputs leave only through the Git server's review.

Analytics identities never hold a grant on it: one that could write there could publish results
that no checker saw. The Git server (git-server-publish, after a checker's merge) is the only
identity that writes it, and the trust's readers' group the only one that reads it. Azure records
every read of the airlock's blobs (a download of published outputs among them) with who and when:
the account's blob service sends its access logs to a Log Analytics workspace.
"""

from __future__ import annotations

from blueprints.airlock_egress import EGRESS_CONTAINER
from blueprints.airlock_settings import AIRLOCK_COMPONENT
from blueprints.roles import role
from modules.blob_storage import STORAGE_BLOB_DATA_CONTRIBUTOR, STORAGE_BLOB_DATA_READER
from validation.plan_recorder import Plan, PlannedResource
from validation.policies.rule import UNKNOWN, Rule, Violation, refers_to, violation

STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_CONTAINER = "azure-native:storage:BlobContainer"
VM = "azure-native:compute:VirtualMachine"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
# The blob service's log categories a setting must send (or all of them, category group allLogs).
BLOB_ACCESS_CATEGORIES = ("StorageRead", "StorageWrite", "StorageDelete")
# Built-in roles that can write blobs, or give themselves the means to (learn.microsoft.com/azure/
# role-based-access-control/built-in-roles): Owner, Contributor, Storage Account Contributor,
# Storage Blob Data Owner and Contributor.
WRITES_BLOBS = frozenset({
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b", STORAGE_BLOB_DATA_CONTRIBUTOR,
})


def _vms_of(resource: PlannedResource, plan: Plan) -> list[PlannedResource]:
    """The VMs whose identity the grant names: its principal id is a VM's output, so the grant depends on it."""
    principal = str(resource.inputs.get("principalId", ""))
    return [vm for vm in plan.of_type(VM) if vm.urn in resource.dependencies
            or (vm.azure_name and principal.endswith(vm.azure_name))]


def _component(vm: PlannedResource) -> str:
    return str((vm.inputs.get("tags") or {}).get("component", ""))


def _egress_grant(resource: PlannedResource, plan: Plan) -> list[Violation]:
    accounts = [a for a in plan.of_type(STORAGE_ACCOUNT)
                if (a.inputs.get("tags") or {}).get("component") == AIRLOCK_COMPONENT]
    egress = [c for c in plan.of_type(BLOB_CONTAINER) if c.inputs.get("containerName") == EGRESS_CONTAINER
              and any(c.inputs.get("accountName") == a.azure_name for a in accounts)]
    if not egress:
        return []
    scope = resource.inputs.get("scope")
    on_egress = any(refers_to(scope, resource, container) for container in egress)
    # A grant above the container (the account, its group, the subscription) reaches it too.
    above = not on_egress and any(
        refers_to(scope, resource, account) or (isinstance(scope, str) and account.id
                                                and account.id.lower().startswith(scope.lower().rstrip("/") + "/"))
        for account in accounts)
    if not (on_egress or above):
        return []
    role_id = str(resource.inputs.get("roleDefinitionId", "")).rsplit("/", 1)[-1]
    analytics = role("analytics").component
    git_server = role("git_server").component
    found: list[Violation] = []
    for vm in _vms_of(resource, plan):
        if _component(vm) == analytics and (on_egress or role_id in WRITES_BLOBS):
            found.append(violation(resource, "principalId", f"is {vm.azure_name}'s identity, an analytics VM; no "
                                   "analytics identity is granted anything that reaches the egress container: "
                                   "outputs leave only through a checker's merge on the Git server"))
        elif on_egress and role_id != STORAGE_BLOB_DATA_READER and _component(vm) != git_server:
            found.append(violation(resource, "principalId", f"is {vm.azure_name}'s identity; only the Git server "
                                   "writes the egress container (git-server-publish, after review)"))
    return found


def _unlogged(setting: PlannedResource) -> set[str]:
    """The blob access categories the setting does not send to a workspace (all of them without one)."""
    if not setting.inputs.get("workspaceId"):
        return set(BLOB_ACCESS_CATEGORIES)
    logs = [log for log in setting.inputs.get("logs") or [] if isinstance(log, dict) and log.get("enabled")]
    if any(log.get("categoryGroup") == "allLogs" for log in logs):
        return set()
    return set(BLOB_ACCESS_CATEGORIES) - {log.get("category") for log in logs}


def _on_blob_service(setting: PlannedResource, account: PlannedResource) -> bool:
    uri = setting.inputs.get("resourceUri")
    if not isinstance(uri, str) or uri == UNKNOWN:  # known only at deploy: the program's dependency says
        return account.urn in setting.dependencies
    return uri.lower().rstrip("/").endswith(
        f"/storageaccounts/{account.azure_name}/blobservices/default".lower())


def _airlock_access_logged(resource: PlannedResource, plan: Plan) -> list[Violation]:
    if (resource.inputs.get("tags") or {}).get("component") != AIRLOCK_COMPONENT:
        return []
    settings = [setting for setting in plan.of_type(DIAGNOSTIC_SETTING) if _on_blob_service(setting, resource)]
    missing = min((_unlogged(setting) for setting in settings), key=len, default=set(BLOB_ACCESS_CATEGORIES))
    if not missing:
        return []
    named = ", ".join(category for category in BLOB_ACCESS_CATEGORIES if category in missing)
    return [violation(resource, "blobServices/default", f"sends no {named} logs to a Log Analytics workspace "
                      "(a diagnostic setting on the blob service): downloads of published outputs, publications "
                      "and uploads to ingress would go unrecorded")]


RULES: tuple[Rule, ...] = (
    Rule(
        id="TB-ST-007",
        title="No analytics identity reaches the egress container; only the Git server writes it",
        severity="mandatory",
        reason="Outputs leave only after an output checker who is not their author approves them; an analytics "
               "identity that could write egress, or any other writer, would skip the review.",
        reference="SATRE 3.1.05 and 3.1.06 (egress through a governed process, limited to named people); "
                  "MCSB PA-7 (just enough administration)",
        resource_types=(ROLE_ASSIGNMENT,),
        check=_egress_grant,
        cross_resource=True,
    ),
    Rule(
        id="TB-ST-008",
        title="The airlock's blob reads, writes and deletes are logged to Log Analytics",
        severity="mandatory",
        reason="Every step of egress is recorded with who and when: proposal, approval and publication in the "
               "Git server's audit log, each download from the egress container (and each upload to or read of "
               "ingress) in the workspace's StorageBlobLogs.",
        reference="SATRE 2.2.14 (record which datasets are accessed, when and by who); MCSB LT-3 (logging for "
                  "security investigation)",
        resource_types=(STORAGE_ACCOUNT,),
        check=_airlock_access_logged,
        cross_resource=True,
    ),
)
