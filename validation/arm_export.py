"""The offline plan as an ARM template, for scanners that read Azure Resource Manager JSON.

azure-native takes each resource's ARM body flattened: the fields ARM nests under
``properties`` arrive at the top level beside ``location`` and ``tags``, and so do those of the
sub-resources inside it (a security rule's ``protocol``, a NIC IP configuration's ``subnet``);
the names in the request path (resource group, parent, resource name) arrive as inputs too, and
a few settings carry the SDK's spelling where ARM's differs (a storage account's
``networkRuleSet`` is ARM's ``networkAcls``). This export puts every field back where ARM has
it, under ARM's name, as ``SHAPES`` declares for each type; tests/policy/test_arm_conformance.py
checks the result against the Azure SDK's models of the same API versions. It is for review and
scanning; Pulumi deploys the stack.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from validation.plan_recorder import ARM_TYPES, Plan, PlannedResource

TEMPLATE_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
# Fields ARM keeps beside a resource's ``properties`` rather than inside it.
TOP_LEVEL = frozenset({"location", "tags", "sku", "identity", "kind", "zones", "plan", "extendedLocation"})
# Fields ARM keeps beside a sub-resource's ``properties`` (a security rule, an IP configuration).
SUB_RESOURCE_FIELDS = frozenset({"id", "name"})
# Read-only fields of a sub-resource: Azure sets them, a request never carries them.
SUB_RESOURCE_READ_ONLY = frozenset({"etag", "type", "provisioningState"})
# Inputs that name the request path of a resource, in the order they build its ARM name.
PATH_NAMES: dict[str, tuple[str, ...]] = {
    "azure-native:network:Subnet": ("virtualNetworkName", "subnetName"),
    "azure-native:network:VirtualNetworkPeering": ("virtualNetworkName", "virtualNetworkPeeringName"),
    "azure-native:compute:VirtualMachineExtension": ("vmName", "vmExtensionName"),
    "azure-native:keyvault:Secret": ("vaultName", "secretName"),
    "azure-native:recoveryservices:ProtectionPolicy": ("vaultName", "policyName"),
    "azure-native:recoveryservices:ProtectedItem": ("vaultName", "fabricName", "containerName",
                                                    "protectedItemName"),
    "azure-native:privatedns:VirtualNetworkLink": ("privateZoneName", "virtualNetworkLinkName"),
    "azure-native:privatedns:PrivateRecordSet": ("privateZoneName", "relativeRecordSetName"),
    "azure-native:storage:BlobServiceProperties": ("accountName", "blobServicesName"),
    # "=default": a fixed segment of the ARM name with no input of its own (the one blob service).
    "azure-native:storage:BlobContainer": ("accountName", "=default", "containerName"),
    "azure-native:network:PrivateDnsZoneGroup": ("privateEndpointName", "privateDnsZoneGroupName"),
    "azure-native:monitor:PrivateLinkScopedResource": ("scopeName", "name"),
    "azure-native:dnsresolver:DnsSecurityRule": ("dnsResolverPolicyName", "dnsSecurityRuleName"),
    "azure-native:dnsresolver:DnsResolverPolicyVirtualNetworkLink":
        ("dnsResolverPolicyName", "dnsResolverPolicyVirtualNetworkLinkName"),
}
# Extension resources: ARM attaches them to another resource through ``scope``.
SCOPE_INPUT = {
    "azure-native:monitor:DataCollectionRuleAssociation": "resourceUri",
    "azure-native:authorization:RoleAssignment": "scope",
    "azure-native:monitor:DiagnosticSetting": "resourceUri",
}
PATH_ONLY = {"resourceGroupName", "recordType"}
# How the offline plan writes an input whose value Pulumi keeps secret (validation/plan_recorder.py).
SECRET = "[secret]"  # noqa: S105 (a marker, not a password)
_API_VERSION = re.compile(r"Uses Azure REST API version (\d{4}-\d{2}-\d{2}(?:-preview)?)")


@dataclass(frozen=True, eq=False)
class Shape:
    """Where ARM keeps the fields of one object of a resource body.

    A bagged object (a resource, or a sub-resource such as a security rule) keeps the fields
    named in ``beside`` next to its ``properties`` and every other field inside them; a plain
    object keeps its fields where they are. ``renamed`` gives ARM's name of a field azure-native
    spells differently; ``nested`` the shape of a field's value (of each item, for a list).
    Both are keyed by azure-native's name of the field.
    """

    bagged: bool
    beside: frozenset[str] = frozenset()
    renamed: Mapping[str, str] = field(default_factory=dict)
    nested: Mapping[str, Shape] = field(default_factory=dict)
    dropped: frozenset[str] = frozenset()


def plain(renamed: Mapping[str, str] | None = None, **nested: Shape) -> Shape:
    """An object ARM writes as it is (a profile, a rule set), perhaps holding shaped fields."""
    return Shape(False, renamed=renamed or {}, nested=nested)


def sub_resource(**nested: Shape) -> Shape:
    """An object ARM writes as {id, name, properties: {...}}: a sub-resource, or a reference."""
    return Shape(True, SUB_RESOURCE_FIELDS, nested=nested, dropped=SUB_RESOURCE_READ_ONLY)


def resource(beside: frozenset[str] = TOP_LEVEL, renamed: Mapping[str, str] | None = None,
             **nested: Shape) -> Shape:
    """A resource body: ``beside`` at the top, the rest under ``properties``."""
    return Shape(True, beside, renamed=renamed or {}, nested=nested)


# Another resource named by its id (a subnet, a public IP, an NSG). ARM types it as that
# resource, so anything beyond {id} would go under its properties.
REFERENCE = sub_resource()
SECURITY_RULE = sub_resource(sourceApplicationSecurityGroups=REFERENCE,
                             destinationApplicationSecurityGroups=REFERENCE)
SUBNET_FIELDS: dict[str, Shape] = {
    "networkSecurityGroup": REFERENCE, "natGateway": REFERENCE, "routeTable": REFERENCE,
    "serviceEndpointPolicies": REFERENCE, "delegations": sub_resource(),
}
IP_CONFIGURATION = sub_resource(subnet=REFERENCE, publicIPAddress=REFERENCE, applicationSecurityGroups=REFERENCE,
                                loadBalancerBackendAddressPools=REFERENCE, loadBalancerInboundNatRules=REFERENCE)
RESOURCE = resource()

# The ARM layout of each type the program declares (RESOURCE: every field but TOP_LEVEL's under
# ``properties``, nothing nested): the sub-resources each one holds, as the stacks' plans show them
# (`blueprints plan STACK --json`), and the fields azure-native names otherwise than ARM. A type
# missing here is laid out as RESOURCE.
SHAPES: dict[str, Shape] = {
    "azure-native:resources:ResourceGroup": RESOURCE,
    "azure-native:network:VirtualNetwork": resource(subnets=sub_resource(**SUBNET_FIELDS),
                                                    virtualNetworkPeerings=sub_resource(remoteVirtualNetwork=REFERENCE)),
    "azure-native:network:Subnet": resource(**SUBNET_FIELDS),
    "azure-native:network:VirtualNetworkPeering": resource(remoteVirtualNetwork=REFERENCE),
    "azure-native:network:NetworkSecurityGroup": resource(securityRules=SECURITY_RULE),
    "azure-native:network:NatGateway": RESOURCE,
    "azure-native:network:RouteTable": resource(routes=sub_resource()),
    "azure-native:network:PublicIPAddress": RESOURCE,
    "azure-native:network:NetworkInterface": resource(ipConfigurations=IP_CONFIGURATION,
                                                      networkSecurityGroup=REFERENCE),
    "azure-native:network:BastionHost": resource(ipConfigurations=IP_CONFIGURATION, virtualNetwork=REFERENCE),
    # A VM names its NICs as {id, properties: {primary, deleteOption}}.
    "azure-native:compute:VirtualMachine": resource(networkProfile=plain(networkInterfaces=sub_resource())),
    "azure-native:compute:VirtualMachineExtension": RESOURCE,
    "azure-native:keyvault:Vault": RESOURCE,
    "azure-native:keyvault:Secret": RESOURCE,
    # A workspace's SKU is one of its properties, not a resource SKU.
    "azure-native:operationalinsights:Workspace": resource(beside=TOP_LEVEL - {"sku"}),
    "azure-native:monitor:DataCollectionRule": RESOURCE,
    "azure-native:monitor:DataCollectionRuleAssociation": RESOURCE,
    "azure-native:recoveryservices:Vault": RESOURCE,
    "azure-native:recoveryservices:ProtectionPolicy": RESOURCE,
    "azure-native:recoveryservices:ProtectedItem": RESOURCE,
    "azure-native:privatedns:PrivateZone": RESOURCE,
    "azure-native:privatedns:VirtualNetworkLink": RESOURCE,
    "azure-native:privatedns:PrivateRecordSet": RESOURCE,
    "azure-native:devtestlab:GlobalSchedule": RESOURCE,
    "azure-native:authorization:RoleAssignment": RESOURCE,
    "azure-native:storage:StorageAccount": resource(
        renamed={"enableHttpsTrafficOnly": "supportsHttpsTrafficOnly", "enableNfsV3": "isNfsV3Enabled",
                 "networkRuleSet": "networkAcls"},
        networkRuleSet=plain(virtualNetworkRules=plain({"virtualNetworkResourceId": "id"}),
                             ipRules=plain({"iPAddressOrRange": "value"})),
        encryption=plain({"encryptionIdentity": "identity", "keyVaultProperties": "keyvaultproperties"}),
    ),
    "azure-native:storage:BlobServiceProperties": RESOURCE,
    "azure-native:storage:BlobContainer": RESOURCE,
    # A private endpoint's connection and fixed addresses are sub-resources; its subnet a reference.
    "azure-native:network:PrivateEndpoint": resource(
        subnet=REFERENCE, privateLinkServiceConnections=sub_resource(), ipConfigurations=sub_resource(),
        manualPrivateLinkServiceConnections=sub_resource(), applicationSecurityGroups=REFERENCE),
    "azure-native:network:PrivateDnsZoneGroup": resource(privateDnsZoneConfigs=sub_resource()),
    "azure-native:monitor:PrivateLinkScope": RESOURCE,
    "azure-native:monitor:PrivateLinkScopedResource": RESOURCE,
    "azure-native:monitor:DataCollectionEndpoint": RESOURCE,
    "azure-native:monitor:DiagnosticSetting": RESOURCE,
    "azure-native:compute:Disk": RESOURCE,
    "azure-native:dnsresolver:DnsResolverPolicy": RESOURCE,
    "azure-native:dnsresolver:DnsResolverDomainList": RESOURCE,
    "azure-native:dnsresolver:DnsSecurityRule": RESOURCE,
    "azure-native:dnsresolver:DnsResolverPolicyVirtualNetworkLink": RESOURCE,
}


@cache
def api_version(type_token: str) -> str:
    """The REST API version the installed azure-native provider uses for this type."""
    _, module, class_name = type_token.split(":")
    cls = getattr(importlib.import_module(f"pulumi_azure_native.{module}"), class_name)
    source = inspect.getsource(cls)
    match = _API_VERSION.search(source)
    if not match:
        raise LookupError(f"no API version documented for {type_token}")
    return match.group(1)


def _name_key(resource: PlannedResource) -> str | None:
    for key, value in resource.inputs.items():
        if value == resource.azure_name and (key.endswith("Name") or key == "name"):
            return key
    return None


def arm_name(resource: PlannedResource) -> str:
    """The resource's name as ARM writes it: parent names first, joined by slashes."""
    path = PATH_NAMES.get(resource.type)
    if not path:
        return resource.azure_name
    return "/".join(key[1:] if key.startswith("=") else str(resource.inputs[key]) for key in path)


def arm_reference(resource: PlannedResource) -> str:
    """How a template's dependsOn names a resource: a resourceId() expression, or the name of an
    extension resource (which has no resourceId of its own in the template's scope)."""
    if resource.type in SCOPE_INPUT:
        return arm_name(resource)
    segments = ", ".join(f"'{segment}'" for segment in arm_name(resource).split("/"))
    return f"[resourceId('{ARM_TYPES.get(resource.type, resource.type)}', {segments})]"


def shaped(value: Any, shape: Shape) -> Any:
    """``value`` laid out as ARM has it: an object of ``shape``, or a list of them."""
    if isinstance(value, list):
        return [shaped(item, shape) for item in value]
    if not isinstance(value, dict):
        return value  # a secret or a value known after deploy stands for the whole object
    laid_out: dict[str, Any] = {}
    bag: dict[str, Any] = {}
    given = value.get("properties") if shape.bagged else None  # given already as ARM nests it
    if isinstance(given, dict):
        bag.update(given)
    for key, item in value.items():
        if shape.bagged and (key == "properties" or key in shape.dropped):
            continue
        if key in shape.nested:
            item = shaped(item, shape.nested[key])
        name = shape.renamed.get(key, key)
        if not shape.bagged or key in shape.beside:
            laid_out[name] = item
        else:
            bag[name] = item
    if given is not None and not isinstance(given, dict):
        if bag:
            raise ValueError(f"properties given whole ({given!r}) beside flattened ones: {sorted(bag)}")
        laid_out["properties"] = given
    elif bag:
        laid_out["properties"] = bag
    return laid_out


def _secured(value: Any, owner: str, path: str, parameters: dict[str, dict[str, Any]]) -> Any:
    """``value`` with each secret replaced by a secure template parameter, declared in ``parameters``:
    the plan never holds a secret's value, and neither does the template."""
    if value == SECRET:
        name = re.sub(r"[^A-Za-z0-9]+", "_", f"{owner}_{path}").strip("_")
        kind = "secureObject" if path.rsplit(".", 1)[-1] == "properties" else "securestring"
        description = f"{owner}: {path}, a secret the plan does not hold"
        parameters[name] = {"type": kind, "metadata": {"description": description}}
        return f"[parameters('{name}')]"
    if isinstance(value, dict):
        return {key: _secured(item, owner, f"{path}.{key}" if path else key, parameters) for key, item in value.items()}
    if isinstance(value, list):
        return [_secured(item, owner, f"{path}[{index}]", parameters) for index, item in enumerate(value)]
    return value


def arm_resource(resource: PlannedResource, references: dict[str, str],
                 parameters: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One template resource: the plan's inputs laid out as ARM's body of the resource's type.
    Secrets become secure parameters, declared in ``parameters`` (the template's)."""
    path = PATH_NAMES.get(resource.type)
    name = arm_name(resource)
    dropped = set(path or ()) | PATH_ONLY | {_name_key(resource)}
    scope_key = SCOPE_INPUT.get(resource.type)
    if scope_key:
        dropped.add(scope_key)
    inputs = {key: value for key, value in resource.inputs.items() if key not in dropped}
    body: dict[str, Any] = {
        "type": ARM_TYPES.get(resource.type, resource.type),
        "apiVersion": api_version(resource.type),
        "name": name,
    }
    if scope_key:
        body["scope"] = resource.inputs.get(scope_key)
    laid_out = shaped(inputs, SHAPES.get(resource.type, RESOURCE))
    body.update(_secured(laid_out, name, "", {} if parameters is None else parameters))
    body.setdefault("properties", {})
    # The resource group is the deployment's scope, not a dependency inside the template.
    body["dependsOn"] = [references[urn] for urn in resource.dependencies if urn in references]
    return body


def export_template(plan: Plan) -> dict[str, Any]:
    """An ARM deployment template of every Azure resource in the plan."""
    custom = plan.custom_resources()
    references = {resource.urn: arm_reference(resource) for resource in custom
                  if resource.type != "azure-native:resources:ResourceGroup"}
    parameters: dict[str, dict[str, Any]] = {}
    resources = [arm_resource(resource, references, parameters) for resource in custom]
    template: dict[str, Any] = {
        "$schema": TEMPLATE_SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {"generator": "trust-blueprints offline plan", "stack": plan.stack, "source": plan.source},
    }
    if parameters:
        template["parameters"] = parameters
    template["resources"] = resources
    return template
