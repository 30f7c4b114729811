"""Rules on virtual machines: how they boot, log in, report, recover and stop."""

from __future__ import annotations

import base64
import binascii
import zlib

import yaml

from blueprints.cloud_init import written_files
from blueprints.roles import all_roles
from blueprints.settings_fields import APPROVED_VM_SIZE, APPROVED_VM_SIZES_ALLOWED
from validation.custom_data_secrets import CUSTOM_DATA_SECRET_PATTERNS
from validation.plan_recorder import Plan, PlannedResource
from validation.policies.rule import Rule, Violation, dig, is_known, refers_to, violation

VM = "azure-native:compute:VirtualMachine"
EXTENSION = "azure-native:compute:VirtualMachineExtension"
DCR_ASSOCIATION = "azure-native:monitor:DataCollectionRuleAssociation"
PROTECTED_ITEM = "azure-native:recoveryservices:ProtectedItem"
SHUTDOWN_SCHEDULE = "azure-native:devtestlab:GlobalSchedule"

MONITOR_AGENT = "AzureMonitorLinuxAgent"
# A VM whose data disk holds only what it can fetch again says so by this tag.
DATA_DISK_TAG, CACHE_ONLY = "data-disk", "cache"
# The approved size families are one table beside the VM size field (blueprints/settings_fields.py),
# which `blueprints validate` reads too, so validate, plan and this message agree.
ALLOWED_VM_SIZE = APPROVED_VM_SIZE
# What must never be in custom data (validation/custom_data_secrets.py, which `validate` reads too).
SECRET_PATTERNS = CUSTOM_DATA_SECRET_PATTERNS


def _trusted_launch(resource: PlannedResource, plan: Plan) -> list[Violation]:
    found = []
    security_type = dig(resource.inputs, "securityProfile.securityType")
    if security_type not in ("TrustedLaunch", "ConfidentialVM"):
        found.append(violation(resource, "securityProfile.securityType",
                               f"is {security_type!r}; must be 'TrustedLaunch' (or 'ConfidentialVM')"))
    for field in ("secureBootEnabled", "vTpmEnabled"):
        if dig(resource.inputs, f"securityProfile.uefiSettings.{field}") is not True:
            found.append(violation(resource, f"securityProfile.uefiSettings.{field}", "must be true"))
    return found


def _encryption_at_host(resource: PlannedResource, plan: Plan) -> list[Violation]:
    if dig(resource.inputs, "securityProfile.encryptionAtHost") is not True:
        return [violation(resource, "securityProfile.encryptionAtHost",
                          "must be true so temporary disks and caches are encrypted too")]
    return []


def _ssh_keys_only(resource: PlannedResource, plan: Plan) -> list[Violation]:
    found = []
    profile = resource.inputs.get("osProfile") or {}
    if dig(profile, "linuxConfiguration.disablePasswordAuthentication") is not True:
        found.append(violation(resource, "osProfile.linuxConfiguration.disablePasswordAuthentication",
                               "must be true (SSH keys only)"))
    if profile.get("adminPassword"):
        found.append(violation(resource, "osProfile.adminPassword", "is set; Linux VMs here take SSH keys only"))
    if not dig(profile, "linuxConfiguration.ssh.publicKeys"):
        found.append(violation(resource, "osProfile.linuxConfiguration.ssh.publicKeys",
                               "is empty; the administrator signs in with an SSH key"))
    return found


def _has_companion(resource: PlannedResource, plan: Plan, companion_type: str, field: str) -> bool:
    return any(refers_to(dig(other.inputs, field), other, resource) for other in plan.of_type(companion_type))


def _monitoring_agent(resource: PlannedResource, plan: Plan) -> list[Violation]:
    agents = [ext for ext in plan.of_type(EXTENSION)
              if ext.inputs.get("publisher") == "Microsoft.Azure.Monitor"
              # the extension's type is "type" in its inputs; deployed state reuses "type" for the ARM type
              and MONITOR_AGENT in (ext.inputs.get("type"), ext.inputs.get("vmExtensionName"), ext.azure_name)
              and refers_to(ext.inputs.get("vmName"), ext, resource)]
    if not agents:
        return [violation(resource, "resources (VirtualMachineExtension)",
                          "has no AzureMonitorLinuxAgent extension; every VM sends its logs to the workspace")]
    return []


def _data_collection(resource: PlannedResource, plan: Plan) -> list[Violation]:
    # A rule's association, not the one naming the VM's data collection endpoint.
    if not any(refers_to(other.inputs.get("resourceUri"), other, resource) and other.inputs.get("dataCollectionRuleId")
               for other in plan.of_type(DCR_ASSOCIATION)):
        return [violation(resource, "resources (DataCollectionRuleAssociation)",
                          "has no data collection rule associated; the agent would collect nothing")]
    return []


def _backup_when_holding_data(resource: PlannedResource, plan: Plan) -> list[Violation]:
    if not dig(resource.inputs, "storageProfile.dataDisks"):
        return []
    if (resource.inputs.get("tags") or {}).get(DATA_DISK_TAG) == CACHE_ONLY:
        return []  # a cache is rebuilt from upstream, not restored
    if not _has_companion(resource, plan, PROTECTED_ITEM, "properties.sourceResourceId"):
        return [violation(resource, "storageProfile.dataDisks",
                          "holds data but the VM is not enrolled in a backup policy (no ProtectedItem)")]
    return []


def _auto_shutdown(resource: PlannedResource, plan: Plan) -> list[Violation]:
    component = (resource.inputs.get("tags") or {}).get("component")
    if component not in {declared.component for declared in all_roles() if declared.nightly_shutdown}:
        return []
    schedules = [s for s in plan.of_type(SHUTDOWN_SCHEDULE)
                 if refers_to(s.inputs.get("targetResourceId"), s, resource)
                 and s.inputs.get("taskType") == "ComputeVmShutdownTask" and s.inputs.get("status") == "Enabled"]
    if not schedules:
        return [violation(resource, "resources (GlobalSchedule)",
                          f"is a VM of {component}, whose role shuts down at night, without an enabled "
                          "nightly shutdown schedule")]
    return []


def _allowed_size(resource: PlannedResource, plan: Plan) -> list[Violation]:
    size = dig(resource.inputs, "hardwareProfile.vmSize")
    if not isinstance(size, str) or not ALLOWED_VM_SIZE.match(size):
        return [violation(resource, "hardwareProfile.vmSize", f"is {size!r}; allowed: {APPROVED_VM_SIZES_ALLOWED}")]
    return []


class UncheckableCustomDataError(Exception):
    """A write_files entry that cannot be opened, so it cannot be checked for secrets."""


def _decoded_custom_data(value: str) -> str:
    """The custom data as cloud-init reads it, with compressed or encoded files opened too."""
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        text = value  # not base64: look at it as given
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if not isinstance(document, dict):
        return text
    try:
        files = written_files(document)
    except (binascii.Error, OSError, EOFError, UnicodeDecodeError, KeyError, TypeError, AttributeError,
            zlib.error) as error:
        raise UncheckableCustomDataError(str(error) or type(error).__name__) from None
    return "\n".join([text, *files.values()])


def _no_secrets_in_custom_data(resource: PlannedResource, plan: Plan) -> list[Violation]:
    found = []
    for field, value in (("osProfile.customData", dig(resource.inputs, "osProfile.customData")),
                         ("userData", resource.inputs.get("userData"))):
        if not isinstance(value, str) or not is_known(value):
            continue
        try:
            text = _decoded_custom_data(value)
        except UncheckableCustomDataError as error:
            found.append(violation(resource, field, f"has a write_files entry that cannot be decoded ({error}), "
                                                    "so it cannot be checked for secrets"))
            continue
        for what, pattern in SECRET_PATTERNS:
            if pattern.search(text):
                found.append(violation(resource, field,
                                       f"contains {what}; secrets come from Key Vault through the VM's "
                                       "managed identity, never from custom data"))
    return found


def _platform_patching(resource: PlannedResource, plan: Plan) -> list[Violation]:
    settings = dig(resource.inputs, "osProfile.linuxConfiguration.patchSettings") or {}
    return [violation(resource, f"osProfile.linuxConfiguration.patchSettings.{field}",
                      f"is {settings.get(field)!r}; should be 'AutomaticByPlatform'")
            for field in ("patchMode", "assessmentMode") if settings.get(field) != "AutomaticByPlatform"]


def _managed_identity(resource: PlannedResource, plan: Plan) -> list[Violation]:
    kind = str(dig(resource.inputs, "identity.type", ""))
    if "Assigned" not in kind:
        return [violation(resource, "identity.type", f"is {kind or None!r}; the VM needs a managed identity to "
                                                     "read its secrets without stored credentials")]
    return []


def _boot_diagnostics(resource: PlannedResource, plan: Plan) -> list[Violation]:
    if dig(resource.inputs, "diagnosticsProfile.bootDiagnostics.enabled") is not True:
        return [violation(resource, "diagnosticsProfile.bootDiagnostics.enabled",
                          "should be true so a VM that fails to boot can be diagnosed")]
    return []


RULES: tuple[Rule, ...] = (
    Rule(
        id="TB-VM-001",
        title="VMs use Trusted Launch with Secure Boot and vTPM",
        severity="mandatory",
        reason="Trusted Launch stops boot kits and rootkits from loading before the OS and lets Azure attest "
               "the boot chain.",
        reference="MCSB PV-3 (secure configurations for compute); NCSC Cloud Security Principle 5 "
                  "(operational security)",
        resource_types=(VM,),
        check=_trusted_launch,
    ),
    Rule(
        id="TB-VM-002",
        title="VMs encrypt at host",
        severity="mandatory",
        reason="Encryption at host covers the temporary disk and disk caches, which storage-side encryption "
               "leaves in clear on the host.",
        reference="MCSB DP-4 (encrypt data at rest by default); NCSC Cloud Security Principle 2 (asset "
                  "protection)",
        resource_types=(VM,),
        check=_encryption_at_host,
    ),
    Rule(
        id="TB-VM-003",
        title="SSH keys only, no passwords",
        severity="mandatory",
        reason="Passwords can be guessed and reused; keys cannot be brute-forced and are revoked by removing "
               "one line.",
        reference="MCSB IM-6 (strong authentication); NCSC Cloud Security Principle 10 (identity and "
                  "authentication)",
        resource_types=(VM,),
        check=_ssh_keys_only,
    ),
    Rule(
        id="TB-VM-004",
        title="Every VM runs the Azure Monitor Agent",
        severity="mandatory",
        reason="Sign-ins, sudo and daemon logs must leave the VM, so an intruder cannot erase the evidence.",
        reference="MCSB LT-3 (logging for security investigation); NCSC Cloud Security Principle 13 (audit "
                  "information)",
        resource_types=(VM,),
        check=_monitoring_agent,
        cross_resource=True,
    ),
    Rule(
        id="TB-VM-005",
        title="Every VM is associated with a data collection rule",
        severity="mandatory",
        reason="The agent collects nothing until a data collection rule names what to send and where.",
        reference="MCSB LT-5 (centralise security log management); NCSC Cloud Security Principle 13 (audit "
                  "information)",
        resource_types=(VM,),
        check=_data_collection,
        cross_resource=True,
    ),
    Rule(
        id="TB-VM-006",
        title="VMs that hold data are backed up",
        severity="mandatory",
        reason="A VM with a data disk holds analysts' work or repositories; without a backup, one mistake or "
               "one ransomware run loses it. A disk that only caches what can be fetched again is exempt when "
               "its VM carries the tag data-disk: cache.",
        reference="MCSB BR-1 (regular automated backups); NCSC Cloud Security Principle 2 (asset protection "
                  "and resilience)",
        resource_types=(VM,),
        check=_backup_when_holding_data,
        cross_resource=True,
    ),
    Rule(
        id="TB-VM-007",
        title="Analytics VMs shut down every night",
        severity="mandatory",
        reason="Analytics VMs are the largest cost and sit idle overnight; a nightly shutdown halves the bill "
               "and shortens the time they are exposed.",
        reference="Azure Well-Architected cost optimisation (shut down idle resources); NCSC Cloud Security "
                  "Principle 14 (secure use of the service)",
        resource_types=(VM,),
        check=_auto_shutdown,
        cross_resource=True,
    ),
    Rule(
        id="TB-VM-008",
        title="VM sizes come from the approved families",
        severity="mandatory",
        reason="Approved sizes support premium disks, Trusted Launch and encryption at host, and keep spend "
               "within what a trust budgets for.",
        reference="MCSB AM-2 (use only approved services); NCSC Cloud Security Principle 4 (governance)",
        resource_types=(VM,),
        check=_allowed_size,
    ),
    Rule(
        id="TB-VM-009",
        title="No secrets in custom data",
        severity="mandatory",
        reason="Custom data stays readable on the VM and in its Azure model for the VM's life and cannot be "
               "changed; secrets belong in Key Vault.",
        reference="MCSB DP-6 (secure key management); NCSC Cloud Security Principle 2 (asset protection)",
        resource_types=(VM,),
        check=_no_secrets_in_custom_data,
    ),
    Rule(
        id="TB-VM-010",
        title="Azure patches VMs on its schedule",
        severity="advisory",
        reason="Platform patching applies security updates in safe, availability-aware waves and reports "
               "which VMs lag behind.",
        reference="MCSB PV-6 (remediate vulnerabilities rapidly); NCSC Cloud Security Principle 5.2 "
                  "(vulnerability management)",
        resource_types=(VM,),
        check=_platform_patching,
    ),
    Rule(
        id="TB-VM-011",
        title="VMs have a managed identity",
        severity="advisory",
        reason="A managed identity lets a VM read its secrets from Key Vault with no credential stored on it.",
        reference="MCSB IM-3 (manage application identities securely); NCSC Cloud Security Principle 10 "
                  "(identity and authentication)",
        resource_types=(VM,),
        check=_managed_identity,
    ),
    Rule(
        id="TB-VM-012",
        title="Boot diagnostics are on",
        severity="advisory",
        reason="The serial log and screenshot are the only way to see why a VM with no public address does "
               "not boot.",
        reference="MCSB LT-3 (logging for security investigation)",
        resource_types=(VM,),
        check=_boot_diagnostics,
    ),
)
