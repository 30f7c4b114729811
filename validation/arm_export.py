"""The offline plan as an ARM template, for scanners that read Azure Resource Manager JSON.

azure-native takes each resource's ARM body flattened: the fields ARM nests under
``properties`` arrive at the top level beside ``location`` and ``tags``, and the names in
the request path (resource group, parent, resource name) arrive as inputs too. This export
puts them back where ARM has them. It is for review and scanning; Pulumi deploys the stack.
"""

from __future__ import annotations

import importlib
import inspect
import re
from functools import cache
from typing import Any

from validation.plan_recorder import ARM_TYPES, Plan, PlannedResource

TEMPLATE_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
# Fields ARM keeps beside ``properties`` rather than inside it.
TOP_LEVEL = ("location", "tags", "sku", "identity", "kind", "zones", "plan", "extendedLocation")
# Inputs that name the request path of a resource, in the order they build its ARM name.
PATH_NAMES: dict[str, tuple[str, ...]] = {
    "azure-native:network:Subnet": ("virtualNetworkName", "subnetName"),
    "azure-native:compute:VirtualMachineExtension": ("vmName", "vmExtensionName"),
    "azure-native:recoveryservices:ProtectionPolicy": ("vaultName", "policyName"),
    "azure-native:recoveryservices:ProtectedItem": ("vaultName", "fabricName", "containerName",
                                                    "protectedItemName"),
    "azure-native:privatedns:VirtualNetworkLink": ("privateZoneName", "virtualNetworkLinkName"),
    "azure-native:privatedns:PrivateRecordSet": ("privateZoneName", "relativeRecordSetName"),
    "azure-native:storage:BlobServiceProperties": ("accountName", "blobServicesName"),
    # "=default": a fixed segment of the ARM name with no input of its own (the one blob service).
    "azure-native:storage:BlobContainer": ("accountName", "=default", "containerName"),
}
# Extension resources: ARM attaches them to another resource through ``scope``.
SCOPE_INPUT = {
    "azure-native:monitor:DataCollectionRuleAssociation": "resourceUri",
    "azure-native:authorization:RoleAssignment": "scope",
}
PATH_ONLY = {"resourceGroupName", "recordType"}
# Inputs azure-native names differently from the ARM body (SDK name -> ARM property name).
ARM_PROPERTY_NAMES: dict[str, dict[str, str]] = {
    "azure-native:storage:StorageAccount": {"enableHttpsTrafficOnly": "supportsHttpsTrafficOnly",
                                            "networkRuleSet": "networkAcls"},
}
_API_VERSION = re.compile(r"Uses Azure REST API version (\d{4}-\d{2}-\d{2}(?:-preview)?)")


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


def arm_resource(resource: PlannedResource, references: dict[str, str]) -> dict[str, Any]:
    inputs = dict(resource.inputs)
    path = PATH_NAMES.get(resource.type)
    name = arm_name(resource)
    dropped = set(path or ()) | PATH_ONLY | {_name_key(resource)}
    body: dict[str, Any] = {
        "type": ARM_TYPES.get(resource.type, resource.type),
        "apiVersion": api_version(resource.type),
        "name": name,
    }
    scope_key = SCOPE_INPUT.get(resource.type)
    if scope_key:
        body["scope"] = inputs.get(scope_key)
        dropped.add(scope_key)
    properties = dict(inputs.get("properties") or {})
    dropped.add("properties")
    renamed = ARM_PROPERTY_NAMES.get(resource.type, {})
    for key, value in inputs.items():
        if key in dropped:
            continue
        if key in TOP_LEVEL:
            body[key] = value
        else:
            properties[renamed.get(key, key)] = value
    body["properties"] = properties
    # The resource group is the deployment's scope, not a dependency inside the template.
    body["dependsOn"] = [references[urn] for urn in resource.dependencies if urn in references]
    return body


def export_template(plan: Plan) -> dict[str, Any]:
    """An ARM deployment template of every Azure resource in the plan."""
    custom = plan.custom_resources()
    references = {resource.urn: arm_reference(resource) for resource in custom
                  if resource.type != "azure-native:resources:ResourceGroup"}
    return {
        "$schema": TEMPLATE_SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {"generator": "trust-blueprints offline plan", "stack": plan.stack, "source": plan.source},
        "resources": [arm_resource(resource, references) for resource in custom],
    }
