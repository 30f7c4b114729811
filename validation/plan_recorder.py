"""The offline plan: run the real Pulumi program under mocks and record every resource.

No Azure account and no Pulumi CLI are needed. Each registered resource is kept with its
type, logical name, Azure name, inputs as Azure would receive them, parent and dependencies.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from blueprints.gateway.registration import PLANNED_CLIENT_ID
from validation.plan_model import Plan, PlannedResource
from validation.stack_config import load_stack

# The subscription the program is told it runs in, unless a caller picks another (to show that two
# subscriptions deploying one stack file get different globally unique names).
MOCK_SUBSCRIPTION = "00000000-0000-0000-0000-00000000c0de"
MOCK_TENANT = "00000000-0000-0000-0000-0000000071e7"
PROJECT = "trust-blueprints"

# Input that carries the Azure name, where it is not <typeName>Name.
_NAME_KEYS = {
    "VirtualMachine": "vmName",
    "VirtualMachineExtension": "vmExtensionName",
    "PublicIPAddress": "publicIpAddressName",
    "ProtectionPolicy": "policyName",
    "PrivateRecordSet": "relativeRecordSetName",
    "GlobalSchedule": "name",
    "DataCollectionRuleAssociation": "associationName",
    "StorageAccount": "accountName",
    "BlobServiceProperties": "blobServicesName",
    "BlobContainer": "containerName",
    "PrivateLinkScope": "scopeName",
    "PrivateLinkScopedResource": "name",
    "DiagnosticSetting": "name",
    "Application": "displayName",  # an Entra ID app registration (pulumi-azuread)
}


def _type_name(type_token: str) -> str:
    return type_token.rsplit(":", 1)[-1]


def _azure_name(type_token: str, name: str, inputs: dict[str, Any]) -> str:
    type_name = _type_name(type_token)
    key = _NAME_KEYS.get(type_name, type_name[0].lower() + type_name[1:] + "Name")
    value = inputs.get(key)
    return value if isinstance(value, str) else name


# The Azure Resource Manager type of each resource the program declares.
ARM_TYPES = {
    "azure-native:resources:ResourceGroup": "Microsoft.Resources/resourceGroups",
    "azure-native:network:VirtualNetwork": "Microsoft.Network/virtualNetworks",
    "azure-native:network:Subnet": "Microsoft.Network/virtualNetworks/subnets",
    "azure-native:network:NetworkSecurityGroup": "Microsoft.Network/networkSecurityGroups",
    "azure-native:network:NatGateway": "Microsoft.Network/natGateways",
    "azure-native:network:RouteTable": "Microsoft.Network/routeTables",
    "azure-native:network:PublicIPAddress": "Microsoft.Network/publicIPAddresses",
    "azure-native:network:NetworkInterface": "Microsoft.Network/networkInterfaces",
    "azure-native:network:BastionHost": "Microsoft.Network/bastionHosts",
    "azure-native:compute:VirtualMachine": "Microsoft.Compute/virtualMachines",
    "azure-native:compute:VirtualMachineExtension": "Microsoft.Compute/virtualMachines/extensions",
    "azure-native:keyvault:Vault": "Microsoft.KeyVault/vaults",
    "azure-native:keyvault:Secret": "Microsoft.KeyVault/vaults/secrets",
    "azure-native:operationalinsights:Workspace": "Microsoft.OperationalInsights/workspaces",
    "azure-native:monitor:DataCollectionRule": "Microsoft.Insights/dataCollectionRules",
    "azure-native:monitor:DataCollectionRuleAssociation": "Microsoft.Insights/dataCollectionRuleAssociations",
    "azure-native:recoveryservices:Vault": "Microsoft.RecoveryServices/vaults",
    "azure-native:recoveryservices:ProtectionPolicy": "Microsoft.RecoveryServices/vaults/backupPolicies",
    "azure-native:recoveryservices:ProtectedItem":
        "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems",
    "azure-native:privatedns:PrivateZone": "Microsoft.Network/privateDnsZones",
    "azure-native:privatedns:VirtualNetworkLink": "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
    "azure-native:privatedns:PrivateRecordSet": "Microsoft.Network/privateDnsZones/A",
    "azure-native:devtestlab:GlobalSchedule": "Microsoft.DevTestLab/schedules",
    "azure-native:authorization:RoleAssignment": "Microsoft.Authorization/roleAssignments",
    "azure-native:storage:StorageAccount": "Microsoft.Storage/storageAccounts",
    "azure-native:storage:BlobServiceProperties": "Microsoft.Storage/storageAccounts/blobServices",
    "azure-native:storage:BlobContainer": "Microsoft.Storage/storageAccounts/blobServices/containers",
    "azure-native:network:PrivateEndpoint": "Microsoft.Network/privateEndpoints",
    "azure-native:network:PrivateDnsZoneGroup": "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
    "azure-native:monitor:PrivateLinkScope": "Microsoft.Insights/privateLinkScopes",
    "azure-native:monitor:PrivateLinkScopedResource": "Microsoft.Insights/privateLinkScopes/scopedResources",
    "azure-native:monitor:DataCollectionEndpoint": "Microsoft.Insights/dataCollectionEndpoints",
    "azure-native:monitor:DiagnosticSetting": "Microsoft.Insights/diagnosticSettings",
    "azure-native:compute:Disk": "Microsoft.Compute/disks",
    "azure-native:dnsresolver:DnsResolverPolicy": "Microsoft.Network/dnsResolverPolicies",
    "azure-native:dnsresolver:DnsResolverDomainList": "Microsoft.Network/dnsResolverDomainLists",
    "azure-native:dnsresolver:DnsSecurityRule": "Microsoft.Network/dnsResolverPolicies/dnsSecurityRules",
    "azure-native:dnsresolver:DnsResolverPolicyVirtualNetworkLink":
        "Microsoft.Network/dnsResolverPolicies/virtualNetworkLinks",
}


def _mock_id(type_token: str, azure_name: str, inputs: dict[str, Any], subscription_id: str) -> str:
    type_name = type_token.rsplit(":", 1)[-1]
    group = inputs.get("resourceGroupName", azure_name if type_name == "ResourceGroup" else "")
    head = f"/subscriptions/{subscription_id}/resourceGroups/{group}"
    if type_name == "ResourceGroup":
        return head
    arm_type = ARM_TYPES.get(type_token, type_token.replace(":", "/"))
    namespace, _, kinds = arm_type.partition("/")
    return f"{head}/providers/{namespace}/{kinds.rsplit('/', 1)[-1]}/{azure_name}"


# Entra ID's answers offline. The client id is the one the gateway's cloud-init is rendered with
# before Entra ID assigns one, so the plan's custom data is what the lab boots; a client secret's
# end date counts from a fixed day, so plans of one stack file stay identical.
PLAN_CLOCK = datetime(2026, 1, 1, tzinfo=UTC)
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


_ENTRA_APPLICATION = "azuread:index/application:Application"
_ENTRA_PASSWORD = "azuread:index/applicationPassword:ApplicationPassword"  # noqa: S105 (a type token)


def _entra_answer(type_token: str, name: str, state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{PROJECT}/{type_token}/{name}"))
    if type_token == _ENTRA_APPLICATION:
        return f"/applications/{object_id}", {**state, "clientId": PLANNED_CLIENT_ID, "objectId": object_id}
    if type_token == _ENTRA_PASSWORD:
        hours, minutes, seconds = (int(part or 0) for part in _DURATION.fullmatch(
            state.get("endDateRelative") or "").groups())
        end = state.get("endDate") or (PLAN_CLOCK + timedelta(hours=hours, minutes=minutes, seconds=seconds)
                                       ).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{state.get('applicationId')}/password/{object_id}", {
            **state, "keyId": object_id, "endDate": end, "startDate": PLAN_CLOCK.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "value": "[issued by Entra ID at deploy]"}
    return f"/servicePrincipals/{object_id}", {**state, "objectId": object_id}


class _RecordingMocks(pulumi.runtime.Mocks):
    """Answers every resource and invoke with plausible outputs; the monitor records."""

    def __init__(self, subscription_id: str = MOCK_SUBSCRIPTION) -> None:
        self.subscription_id = subscription_id

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if not args.custom:
            return None, {}
        if args.resource_id:
            # A lookup of something that exists (Resource.get, as a landing zone's hub is read): its
            # id comes from the stack file, and so does its name, the id's last segment.
            return args.resource_id, {"name": args.resource_id.rsplit("/", 1)[-1]}
        azure_name = _azure_name(args.typ, args.name, args.inputs)
        resource_id = _mock_id(args.typ, azure_name, args.inputs, self.subscription_id)
        state = dict(args.inputs)
        state.setdefault("name", azure_name)
        if isinstance(state.get("identity"), dict):
            state["identity"] = {**state["identity"], "principalId": f"principal-of-{azure_name}",
                                 "tenantId": MOCK_TENANT}
        if args.typ == "azure-native:network:PublicIPAddress":
            state["ipAddress"] = "[assigned at deploy]"
        if args.typ.startswith("azuread:"):
            return _entra_answer(args.typ, args.name, state)
        if args.typ == "azure-native:keyvault:Vault":
            properties = dict(state.get("properties") or {})
            properties["vaultUri"] = f"https://{azure_name}.vault.azure.net/"
            state["properties"] = properties
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        if args.token == "azure-native:authorization:getClientConfig":  # noqa: S105 (an invoke name)
            return {"clientId": "offline-plan", "objectId": "offline-plan",
                    "subscriptionId": self.subscription_id, "tenantId": MOCK_TENANT}
        raise NotImplementedError(f"the offline plan has no answer for invoke {args.token}")


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, keeping what the SDK tells it about parents and dependencies."""

    def __init__(self, mocks: _RecordingMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[PlannedResource] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = pulumi.runtime.rpc.deserialize_properties(request.object)
            self.recorded.append(PlannedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                azure_name=_azure_name(request.type, request.name, inputs),
                custom=bool(request.custom),
                parent=request.parent or None,
                dependencies=sorted(set(request.dependencies)),
                inputs=_plain(inputs),
                id=response.id,
            ))
        return response


def _plain(value: Any) -> Any:
    """Inputs as JSON-ready data (unknowns and secrets made explicit)."""
    if isinstance(value, dict):
        if value.get(pulumi.runtime.rpc._special_sig_key) == pulumi.runtime.rpc._special_secret_sig:
            return "[secret]"
        return {key: _plain(item) for key, item in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire format has only floats; Azure's integers read better as such
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if value == pulumi.runtime.rpc.UNKNOWN:
        return "[known after deploy]"
    return str(value)


_STACK_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def record_program(program: Callable[[], Any], stack: str,
                   subscription_id: str = MOCK_SUBSCRIPTION) -> tuple[list[PlannedResource], dict[str, Any]]:
    """Run any Pulumi program function under mocks; return its resources and stack outputs."""
    mocks = _RecordingMocks(subscription_id)
    monitor = _RecordingMonitor(mocks)
    # Each run starts from clean global Pulumi state, so runs never leak into each other.
    pulumi_settings.ROOT.set(None)
    pulumi_mocks.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi_settings.SETTINGS.rpc_manager.clear()
    pulumi_settings.SETTINGS.outputs.clear()
    _sync_await(run_pulumi_func(program))
    # The mocks finish the root stack before the program runs, so its exports never reach the
    # monitor; read them from the stack itself.
    root = pulumi_settings.get_root_resource()
    exported = getattr(root, "outputs", {}) or {}
    outputs = _sync_await(pulumi.Output.from_input(exported).future(with_unknowns=True)) if exported else {}
    return monitor.recorded, _plain(outputs or {})


def record_plan(stack_file: str | Path, subscription_id: str = MOCK_SUBSCRIPTION) -> Plan:
    """Validate a stack file, run the program under mocks, and return what it declares.

    ``subscription_id`` is the subscription the program is told it deploys to (a GUID).

    Raises validation.problems.StackFileError for a bad stack file, before any resource.
    """
    from blueprints.program import define_environment  # the program is imported only to run it

    path = Path(stack_file)
    config = load_stack(path)
    stack = _STACK_NAME.sub("-", path.stem)
    spoke = config["network"].get("landing_zone")
    if spoke and spoke.get("spoke_virtual_network_id") and subscription_id == MOCK_SUBSCRIPTION:
        # A spoke's subnets are created in the spoke's subscription, so a deployment runs there: the plan too.
        subscription_id = spoke["spoke_virtual_network_id"].split("/")[2]
    resources, outputs = record_program(lambda: define_environment(config), stack, subscription_id)
    return Plan(stack=stack, source=str(path), config=config, resources=resources, outputs=outputs)
