"""Rules on where data and secrets live: Key Vault, storage, backup and logs."""

from __future__ import annotations

import re

from blueprints.airlock_settings import AIRLOCK_COMPONENT
from blueprints.gateway.settings import REGISTRATION_SECRET_DAYS
from modules.blob_storage import STORAGE_BLOB_DATA_CONTRIBUTOR, STORAGE_BLOB_DATA_READER
from modules.key_vault import EXPIRES_TAG
from validation.plan_recorder import Plan, PlannedResource
from validation.policies.rule import Rule, Violation, dig, is_known, is_number, refers_to, violation

KEY_VAULT = "azure-native:keyvault:Vault"
KEY_VAULT_SECRET = "azure-native:keyvault:Secret"  # noqa: S105 (type tokens, not values)
ENTRA_APPLICATION_PASSWORD = "azuread:index/applicationPassword:ApplicationPassword"  # noqa: S105
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_CONTAINER = "azure-native:storage:BlobContainer"
BACKUP_VAULT = "azure-native:recoveryservices:Vault"
BACKUP_POLICY = "azure-native:recoveryservices:ProtectionPolicy"
WORKSPACE = "azure-native:operationalinsights:Workspace"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
PRIVATE_LINK_SCOPE = "azure-native:monitor:PrivateLinkScope"
DATA_COLLECTION_ENDPOINT = "azure-native:monitor:DataCollectionEndpoint"
DCR_ASSOCIATION = "azure-native:monitor:DataCollectionRuleAssociation"
VM = "azure-native:compute:VirtualMachine"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"

MIN_LOG_RETENTION_DAYS = 30
MAX_ENTRA_SECRET_DAYS = REGISTRATION_SECRET_DAYS[1]
MIN_DAILY_BACKUPS = 7
STRONG_TLS = ("TLS1_2", "TLS1_3")


def _purge_protection(resource: PlannedResource, plan: Plan) -> list[Violation]:
    properties = resource.inputs.get("properties") or {}
    found = []
    if properties.get("enablePurgeProtection") is not True:
        found.append(violation(resource, "properties.enablePurgeProtection",
                               "must be true so deleted secrets can be recovered for the retention period"))
    if properties.get("enableSoftDelete") is False:
        found.append(violation(resource, "properties.enableSoftDelete", "is false; must be true"))
    return found


def _vault_rbac(resource: PlannedResource, plan: Plan) -> list[Violation]:
    properties = resource.inputs.get("properties") or {}
    found = []
    if properties.get("enableRbacAuthorization") is not True:
        found.append(violation(resource, "properties.enableRbacAuthorization",
                               "must be true (Azure RBAC, not vault access policies)"))
    if properties.get("accessPolicies"):
        found.append(violation(resource, "properties.accessPolicies",
                               "is set; grants go through role assignments on single secrets"))
    return found


def _entra_secret_expires(resource: PlannedResource, plan: Plan) -> list[Violation]:
    """A client secret the program makes in Entra ID expires, and is kept in Key Vault with its expiry."""
    found = []
    relative = resource.inputs.get("endDateRelative")
    if not resource.inputs.get("endDate") and not relative:
        found.append(violation(resource, "endDate", "is not set; a client secret must expire (endDate or "
                                                    f"endDateRelative, at most {MAX_ENTRA_SECRET_DAYS} days)"))
    elif isinstance(relative, str) and is_known(relative):
        hours = _relative_hours(relative)
        if hours is None or hours > MAX_ENTRA_SECRET_DAYS * 24:
            found.append(violation(resource, "endDateRelative", f"is {relative!r}; allowed: hours such as "
                                   f"'4320h', at most {MAX_ENTRA_SECRET_DAYS * 24}h ({MAX_ENTRA_SECRET_DAYS} days)"))
    stored = [secret for secret in plan.of_type(KEY_VAULT_SECRET) if resource.urn in secret.dependencies]
    if not stored:
        found.append(violation(resource, "value", "is stored in no Key Vault secret; the gateway reads its client "
                                                  "secret from the environment's Key Vault"))
    for secret in stored:
        tags = secret.inputs.get("tags") if isinstance(secret.inputs.get("tags"), dict) else {}
        if not tags.get(EXPIRES_TAG):
            found.append(violation(secret, f"tags.{EXPIRES_TAG}", "is missing; the Key Vault copy of a client "
                                   "secret carries its expiry (and properties.attributes.expires)"))
        properties = secret.inputs.get("properties")
        if isinstance(properties, dict) and dig(properties, "attributes.expires") is None:
            found.append(violation(secret, "properties.attributes.expires", "is not set; Key Vault must know "
                                   "when the client secret stops working"))
    return found


def _relative_hours(text: str) -> float | None:
    """Hours in a Go duration such as '4320h' or '2400h30m' (what endDateRelative takes)."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours + minutes / 60 + seconds / 3600


def _private_endpoint_to(resource: PlannedResource, plan: Plan, group: str) -> bool:
    return any(connection.get("groupIds") == [group]
               and refers_to(connection.get("privateLinkServiceId"), endpoint, resource)
               for endpoint in plan.of_type(PRIVATE_ENDPOINT)
               for connection in endpoint.inputs.get("privateLinkServiceConnections") or [])


def _only_private(resource: PlannedResource, plan: Plan, access: str | None, group: str,
                  field: str) -> list[Violation]:
    found = []
    if access != "Disabled":
        found.append(violation(resource, field, f"is {access!r}; must be 'Disabled' (reached only through its "
                                                "private endpoint)"))
    if not _private_endpoint_to(resource, plan, group):
        found.append(violation(resource, f"resources (PrivateEndpoint, {group})",
                               "has no private endpoint: the VMs would have no route to it"))
    return found


def _vault_network(resource: PlannedResource, plan: Plan) -> list[Violation]:
    properties = resource.inputs.get("properties") or {}
    return _only_private(resource, plan, properties.get("publicNetworkAccess"), "vault",
                         "properties.publicNetworkAccess")


def _storage_network(resource: PlannedResource, plan: Plan) -> list[Violation]:
    return _only_private(resource, plan, resource.inputs.get("publicNetworkAccess"), "blob", "publicNetworkAccess")


def _airlock_grant(resource: PlannedResource, plan: Plan) -> list[Violation]:
    """A grant that touches the airlock's account is a Blob data role on its container, and a VM's is read-only."""
    accounts = [a for a in plan.of_type(STORAGE_ACCOUNT) if (a.inputs.get("tags") or {}).get("component")
                == AIRLOCK_COMPONENT]
    containers = [c for c in plan.of_type(BLOB_CONTAINER)
                  if any(c.inputs.get("accountName") == a.azure_name for a in accounts)]
    scope = resource.inputs.get("scope")
    on_container = any(refers_to(scope, resource, container) for container in containers)
    on_account = any((isinstance(scope, str) and scope.lower().startswith((account.id or "?").lower()))
                     or refers_to(scope, resource, account) for account in accounts)
    if not (on_container or on_account):
        return []
    if not on_container:
        return [violation(resource, "scope", "is the airlock's storage account; grants go on its ingress container "
                                             "alone, so no one gets the account's other containers")]
    role = str(resource.inputs.get("roleDefinitionId", "")).rsplit("/", 1)[-1]
    if role not in (STORAGE_BLOB_DATA_READER, STORAGE_BLOB_DATA_CONTRIBUTOR):
        return [violation(resource, "roleDefinitionId", f"is {role}; the airlock grants only Storage Blob Data "
                                                        "Reader (VMs) or Contributor (the data providers' group)")]
    # The egress container takes the Git server's writes (publication); TB-ST-007 keeps every other VM off it.
    on_egress = any(refers_to(scope, resource, c) for c in containers if c.inputs.get("containerName") == "egress")
    if resource.inputs.get("principalType") != "Group" and role != STORAGE_BLOB_DATA_READER and not on_egress:
        return [violation(resource, "roleDefinitionId", "lets a VM identity write the airlock's ingress; analytics "
                                                        "VMs may only read it (Storage Blob Data Reader)")]
    return []


def _monitor_private(resource: PlannedResource, plan: Plan) -> list[Violation]:
    """The VM's agent uses a data collection endpoint that only a private link scope reaches."""
    endpoints = {dce.urn: dce for dce in plan.of_type(DATA_COLLECTION_ENDPOINT)}
    used = [dce for association in plan.of_type(DCR_ASSOCIATION)
            if refers_to(association.inputs.get("resourceUri"), association, resource)
            for dce in endpoints.values()
            if refers_to(association.inputs.get("dataCollectionEndpointId"), association, dce)
            and association.inputs.get("dataCollectionEndpointId")]
    if not used:
        return [violation(resource, "resources (DataCollectionRuleAssociation configurationAccessEndpoint)",
                          "names no data collection endpoint: its agent would use Azure Monitor's public endpoints")]
    found = []
    for dce in used:
        if dig(dce.inputs, "networkAcls.publicNetworkAccess") != "Disabled":
            found.append(violation(dce, "networkAcls.publicNetworkAccess", "must be 'Disabled'"))
    scopes = [scope for scope in plan.of_type(PRIVATE_LINK_SCOPE)
              if dig(scope.inputs, "accessModeSettings.ingestionAccessMode") == "PrivateOnly"
              and _private_endpoint_to(scope, plan, "azuremonitor")]
    if not scopes:
        found.append(violation(resource, "resources (PrivateLinkScope)",
                               "no Azure Monitor Private Link Scope with ingestion 'PrivateOnly' and a private "
                               "endpoint carries its agent's data"))
    return found


def _storage_https(resource: PlannedResource, plan: Plan) -> list[Violation]:
    if resource.inputs.get("enableHttpsTrafficOnly") is False:
        return [violation(resource, "enableHttpsTrafficOnly", "is false; must be true")]
    return []


def _storage_tls(resource: PlannedResource, plan: Plan) -> list[Violation]:
    version = resource.inputs.get("minimumTlsVersion")
    if version not in STRONG_TLS:
        return [violation(resource, "minimumTlsVersion", f"is {version!r}; must be 'TLS1_2' or newer, set "
                                                         "explicitly (older API versions default to TLS1_0)")]
    return []


def _no_public_blobs(resource: PlannedResource, plan: Plan) -> list[Violation]:
    if resource.type == BLOB_CONTAINER:
        access = resource.inputs.get("publicAccess")
        if access not in (None, "None"):
            return [violation(resource, "publicAccess", f"is {access!r}; must be 'None'")]
        return []
    if resource.inputs.get("allowBlobPublicAccess") is not False:
        return [violation(resource, "allowBlobPublicAccess",
                          f"is {resource.inputs.get('allowBlobPublicAccess')!r}; must be false, set explicitly")]
    return []


def _no_shared_keys(resource: PlannedResource, plan: Plan) -> list[Violation]:
    if resource.inputs.get("allowSharedKeyAccess") is not False:
        return [violation(resource, "allowSharedKeyAccess",
                          "should be false so every access is an Entra identity that logs can name")]
    return []


def _backup_soft_delete(resource: PlannedResource, plan: Plan) -> list[Violation]:
    state = dig(resource.inputs, "properties.securitySettings.softDeleteSettings.softDeleteState")
    if state not in ("Enabled", "AlwaysON"):
        return [violation(resource, "properties.securitySettings.softDeleteSettings.softDeleteState",
                          f"is {state!r}; must be 'Enabled' so deleted backups can be recovered")]
    return []


def _backup_retention(resource: PlannedResource, plan: Plan) -> list[Violation]:
    count = dig(resource.inputs, "properties.retentionPolicy.dailySchedule.retentionDuration.count")
    if not is_number(count) or count < MIN_DAILY_BACKUPS:
        return [violation(resource, "properties.retentionPolicy.dailySchedule.retentionDuration.count",
                          f"is {count!r}; keep at least {MIN_DAILY_BACKUPS} daily backups")]
    return []


def _log_retention(resource: PlannedResource, plan: Plan) -> list[Violation]:
    days = resource.inputs.get("retentionInDays")
    if not is_number(days) or days < MIN_LOG_RETENTION_DAYS:
        return [violation(resource, "retentionInDays",
                          f"is {days!r}; keep logs at least {MIN_LOG_RETENTION_DAYS} days")]
    return []


RULES: tuple[Rule, ...] = (
    Rule(
        id="TB-KV-001",
        title="Key Vault has purge protection and soft delete",
        severity="mandatory",
        reason="Without purge protection an attacker or a slip can destroy every secret at once, beyond "
               "recovery.",
        reference="MCSB DP-8 (security of key and certificate repository); NCSC Cloud Security Principle 2 "
                  "(asset protection and resilience)",
        resource_types=(KEY_VAULT,),
        check=_purge_protection,
    ),
    Rule(
        id="TB-KV-002",
        title="Key Vault uses Azure RBAC",
        severity="mandatory",
        reason="RBAC grants one identity one secret and is audited with every other role assignment; access "
               "policies grant whole vaults.",
        reference="MCSB PA-7 (just enough administration); NCSC Cloud Security Principle 9 (secure user "
                  "management)",
        resource_types=(KEY_VAULT,),
        check=_vault_rbac,
    ),
    Rule(
        id="TB-KV-003",
        title="Key Vault is reached only through its private endpoint",
        severity="mandatory",
        reason="No public network access: the Internet cannot even try a token against the vault, and VMs "
               "need no AzureKeyVault service tag, which would reach every tenant's vaults.",
        reference="MCSB NS-2 (secure cloud services with network controls); NCSC Cloud Security Principle 11 "
                  "(external interface protection)",
        resource_types=(KEY_VAULT,),
        check=_vault_network,
        cross_resource=True,
    ),
    Rule(
        id="TB-KV-004",
        title="A client secret the program makes in Entra ID expires and is kept in Key Vault",
        severity="mandatory",
        reason="A secret that never expires outlives the people who know about it; the gateway reads its "
               "client secret from Key Vault, whose copy carries the expiry so renewal can be planned.",
        reference="MCSB IM-3 (manage application identities securely and automatically); NCSC Cloud Security "
                  "Principle 10 (identity and authentication)",
        resource_types=(ENTRA_APPLICATION_PASSWORD,),
        check=_entra_secret_expires,
        cross_resource=True,
    ),
    Rule(
        id="TB-ST-001",
        title="Storage accepts HTTPS only",
        severity="mandatory",
        reason="Plain HTTP sends data and keys in clear.",
        reference="MCSB DP-3 (encrypt sensitive data in transit); NCSC Cloud Security Principle 1 (data in "
                  "transit protection)",
        resource_types=(STORAGE_ACCOUNT,),
        check=_storage_https,
    ),
    Rule(
        id="TB-ST-002",
        title="Storage requires TLS 1.2 or newer",
        severity="mandatory",
        reason="TLS 1.0 and 1.1 have known weaknesses and are no longer accepted for NHS services.",
        reference="MCSB DP-3 (encrypt sensitive data in transit); NCSC Cloud Security Principle 1 (data in "
                  "transit protection)",
        resource_types=(STORAGE_ACCOUNT,),
        check=_storage_tls,
    ),
    Rule(
        id="TB-ST-003",
        title="No public blob access",
        severity="mandatory",
        reason="One container set to public exposes its data to anyone with the URL, with no sign-in and no "
               "log of who read it.",
        reference="MCSB DP-2 (monitor for threats to sensitive data) and NS-2; NCSC Cloud Security Principle 2 "
                  "(asset protection)",
        resource_types=(STORAGE_ACCOUNT, BLOB_CONTAINER),
        check=_no_public_blobs,
    ),
    Rule(
        id="TB-ST-004",
        title="Storage refuses shared keys",
        severity="advisory",
        reason="An account key grants everything and names no one; Entra sign-in can be scoped and audited.",
        reference="MCSB IM-1 (centralised identity and authentication); NCSC Cloud Security Principle 10 "
                  "(identity and authentication)",
        resource_types=(STORAGE_ACCOUNT,),
        check=_no_shared_keys,
    ),
    Rule(
        id="TB-ST-006",
        title="Airlock grants are Blob data roles on its container, and VMs only read",
        severity="mandatory",
        reason="Data comes in through one container: a grant on the account would reach its other containers, and "
               "an analytics identity that could write ingress could also take data out through it.",
        reference="MCSB PA-7 (just enough administration) and DP-2; SATRE 3.1.04 (data ingress through a "
                  "governed process)",
        resource_types=(ROLE_ASSIGNMENT,),
        check=_airlock_grant,
        cross_resource=True,
    ),
    Rule(
        id="TB-ST-005",
        title="Storage is reached only through a private endpoint",
        severity="mandatory",
        reason="No public network access: VMs need no Storage service tag, which would let them write to any "
               "tenant's storage account.",
        reference="MCSB NS-2 (secure cloud services with network controls); NCSC Cloud Security Principle 11 "
                  "(external interface protection)",
        resource_types=(STORAGE_ACCOUNT,),
        check=_storage_network,
        cross_resource=True,
    ),
    Rule(
        id="TB-LOG-002",
        title="VMs send logs to Azure Monitor privately",
        severity="mandatory",
        reason="Analytics VMs have no Internet route; the agent reaches Azure Monitor through a Private Link "
               "Scope (ingestion private only) instead of the AzureMonitor tag, which reaches every tenant's "
               "workspaces.",
        reference="MCSB NS-2 and LT-3 (enable logging for security investigation); NCSC Cloud Security "
                  "Principle 13 (audit information)",
        resource_types=(VM,),
        check=_monitor_private,
        cross_resource=True,
    ),
    Rule(
        id="TB-BK-001",
        title="Backup vaults keep deleted backups",
        severity="mandatory",
        reason="Ransomware deletes backups first; soft delete keeps them for 14 days or more after deletion.",
        reference="MCSB BR-2 (protect backup and recovery data); NCSC Cloud Security Principle 2 (asset "
                  "protection and resilience)",
        resource_types=(BACKUP_VAULT,),
        check=_backup_soft_delete,
    ),
    Rule(
        id="TB-BK-002",
        title="Backup policies keep at least a week of daily backups",
        severity="advisory",
        reason="Mistakes are often found days later; a week of restore points covers a working week and a "
               "weekend.",
        reference="MCSB BR-1 (regular automated backups)",
        resource_types=(BACKUP_POLICY,),
        check=_backup_retention,
    ),
    Rule(
        id="TB-LOG-001",
        title="Logs are kept at least 30 days",
        severity="advisory",
        reason="Intrusions are often found weeks after they start; logs must outlast the investigation.",
        reference="MCSB LT-6 (log storage retention); NCSC Cloud Security Principle 13 (audit information)",
        resource_types=(WORKSPACE,),
        check=_log_retention,
    ),
)
