"""Every stack's ARM export is a body Azure Resource Manager would accept, by Azure's own models.

The oracle is the Azure SDK for Python (azure-mgmt-*, pinned in pyproject.toml's test extra):
its generated models know, for each REST API version, every property of every resource, where
ARM nests it (``_attribute_map``: ``properties.securityRules``), which properties are read-only
(``_validation``), which values each enum allows and which subclass a discriminator picks.
Each exported resource is deserialized with the model of its type, then walked against that
model, so that a property ARM does not know (a sub-resource field left beside ``properties``
instead of inside it, an azure-native spelling where ARM differs), a read-only property set, an
enum value ARM does not list, or a value of the wrong kind fails here, naming its path.
"""

from __future__ import annotations

import enum
import functools
import importlib
import json
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.authorization.v2022_04_01 import models as authorization
from azure.mgmt.compute import models as compute
from azure.mgmt.devtestlabs import models as devtestlabs
from azure.mgmt.dnsresolver import models as dnsresolver
from azure.mgmt.keyvault import models as keyvault
from azure.mgmt.loganalytics import models as loganalytics
from azure.mgmt.monitor.v2021_05_01_preview import models as monitor_diagnostics
from azure.mgmt.monitor.v2021_07_01_preview import models as monitor_scopes
from azure.mgmt.monitor.v2022_06_01 import models as monitor
from azure.mgmt.network import models as network
from azure.mgmt.privatedns import models as privatedns
from azure.mgmt.recoveryservices import models as recoveryservices
from azure.mgmt.recoveryservicesbackup.activestamp import models as backup
from azure.mgmt.resource.resources.v2024_07_01 import models as resources
from azure.mgmt.storage import models as storage

from tests.conftest import STACK_FILES, planned
from validation.arm_export import api_version, export_template
from validation.plan_recorder import ARM_TYPES


@dataclass(frozen=True)
class Model:
    cls: type  # the SDK model of the body ARM receives on PUT
    api_version: str  # the REST API version those models were generated from


# azure-native type token -> the SDK model of its ARM body. A type the export may write but that
# is missing here fails test_every_exported_type_has_a_model: add its model (and package) first.
MODELS: dict[str, Model] = {
    "azure-native:resources:ResourceGroup": Model(resources.ResourceGroup, "2024-07-01"),
    "azure-native:network:VirtualNetwork": Model(network.VirtualNetwork, "2024-05-01"),
    "azure-native:network:Subnet": Model(network.Subnet, "2024-05-01"),
    "azure-native:network:NetworkSecurityGroup": Model(network.NetworkSecurityGroup, "2024-05-01"),
    "azure-native:network:NatGateway": Model(network.NatGateway, "2024-05-01"),
    "azure-native:network:RouteTable": Model(network.RouteTable, "2024-05-01"),
    "azure-native:network:PublicIPAddress": Model(network.PublicIPAddress, "2024-05-01"),
    "azure-native:network:NetworkInterface": Model(network.NetworkInterface, "2024-05-01"),
    "azure-native:network:BastionHost": Model(network.BastionHost, "2024-05-01"),
    "azure-native:network:VirtualNetworkPeering": Model(network.VirtualNetworkPeering, "2024-05-01"),
    "azure-native:compute:VirtualMachine": Model(compute.VirtualMachine, "2024-11-01"),
    "azure-native:compute:VirtualMachineExtension": Model(compute.VirtualMachineExtension, "2024-11-01"),
    "azure-native:keyvault:Vault": Model(keyvault.VaultCreateOrUpdateParameters, "2024-11-01"),
    "azure-native:keyvault:Secret": Model(keyvault.SecretCreateOrUpdateParameters, "2024-11-01"),
    "azure-native:operationalinsights:Workspace": Model(loganalytics.Workspace, "2025-07-01"),
    "azure-native:monitor:DataCollectionRule": Model(monitor.DataCollectionRuleResource, "2022-06-01"),
    "azure-native:monitor:DataCollectionRuleAssociation":
        Model(monitor.DataCollectionRuleAssociationProxyOnlyResource, "2022-06-01"),
    "azure-native:recoveryservices:Vault": Model(recoveryservices.Vault, "2025-02-01"),
    "azure-native:recoveryservices:ProtectionPolicy": Model(backup.ProtectionPolicyResource, "2025-02-01"),
    "azure-native:recoveryservices:ProtectedItem": Model(backup.ProtectedItemResource, "2025-02-01"),
    "azure-native:privatedns:PrivateZone": Model(privatedns.PrivateZone, "2024-06-01"),
    "azure-native:privatedns:VirtualNetworkLink": Model(privatedns.VirtualNetworkLink, "2024-06-01"),
    "azure-native:privatedns:PrivateRecordSet": Model(privatedns.RecordSet, "2024-06-01"),
    "azure-native:devtestlab:GlobalSchedule": Model(devtestlabs.Schedule, "2018-09-15"),
    "azure-native:authorization:RoleAssignment": Model(authorization.RoleAssignmentCreateParameters, "2022-04-01"),
    "azure-native:storage:StorageAccount": Model(storage.StorageAccountCreateParameters, "2024-01-01"),
    "azure-native:storage:BlobServiceProperties": Model(storage.BlobServiceProperties, "2024-01-01"),
    "azure-native:storage:BlobContainer": Model(storage.BlobContainer, "2024-01-01"),
    "azure-native:network:PrivateEndpoint": Model(network.PrivateEndpoint, "2024-05-01"),
    "azure-native:network:PrivateDnsZoneGroup": Model(network.PrivateDnsZoneGroup, "2024-05-01"),
    "azure-native:monitor:DataCollectionEndpoint": Model(monitor.DataCollectionEndpointResource, "2022-06-01"),
    "azure-native:monitor:DiagnosticSetting":
        Model(monitor_diagnostics.DiagnosticSettingsResource, "2021-05-01-preview"),
    "azure-native:monitor:PrivateLinkScope": Model(monitor_scopes.AzureMonitorPrivateLinkScope, "2021-07-01-preview"),
    "azure-native:monitor:PrivateLinkScopedResource": Model(monitor_scopes.ScopedResource, "2021-07-01-preview"),
    "azure-native:compute:Disk": Model(compute.Disk, "2023-10-02"),
    "azure-native:dnsresolver:DnsResolverPolicy": Model(dnsresolver.DnsResolverPolicy, "2025-05-01"),
    "azure-native:dnsresolver:DnsResolverDomainList": Model(dnsresolver.DnsResolverDomainList, "2025-05-01"),
    "azure-native:dnsresolver:DnsSecurityRule": Model(dnsresolver.DnsSecurityRule, "2025-05-01"),
    "azure-native:dnsresolver:DnsResolverPolicyVirtualNetworkLink":
        Model(dnsresolver.DnsResolverPolicyVirtualNetworkLink, "2025-05-01"),
}
# Where no SDK release has models of the API version the export uses, the nearest release's
# models stand in; each such type is named here, and nowhere else may the versions differ.
NEAREST_AVAILABLE = {
    "azure-native:resources:ResourceGroup": "no azure-mgmt-resource release has 2024-03-01 resource group models",
    "azure-native:operationalinsights:Workspace": "no azure-mgmt-loganalytics release has 2023-09-01 models",
    "azure-native:recoveryservices:Vault": "no azure-mgmt-recoveryservices release has 2024-10-01 models",
    "azure-native:recoveryservices:ProtectionPolicy":
        "no azure-mgmt-recoveryservicesbackup release has 2024-10-01 models",
    "azure-native:recoveryservices:ProtectedItem": "no azure-mgmt-recoveryservicesbackup release has 2024-10-01 models",
    "azure-native:monitor:PrivateLinkScope": "no azure-mgmt-monitor release has 2023-06-01-preview scope models",
    "azure-native:monitor:PrivateLinkScopedResource": "no azure-mgmt-monitor release has 2023-06-01-preview models",
    "azure-native:compute:Disk": "the pinned azure-mgmt-compute's disk models are of 2023-10-02, not 2024-03-02",
    # azure-native's default for these is 2023-07-01-preview; 2025-05-01 is the same shape made GA.
    **{f"azure-native:dnsresolver:{kind}": "no azure-mgmt-dnsresolver release has 2023-07-01-preview models"
       for kind in ("DnsResolverPolicy", "DnsResolverDomainList", "DnsSecurityRule",
                    "DnsResolverPolicyVirtualNetworkLink")},
}
# Enums whose list of values Azure no longer keeps: any value the service accepts is allowed.
OPEN_ENUMS = {
    "VirtualMachineSizeTypes": "deprecated in the compute API (its own description says so) and frozen before the "
                               "v5 sizes; the sizes a region offers come from its resource SKU list instead",
}
# Fields of a template's resource entry that are the template's, not the resource body's.
TEMPLATE_FIELDS = {"type", "apiVersion", "name", "dependsOn", "scope", "condition", "copy", "comments"}
PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "long": (int,), "float": (int, float), "decimal": (int, float),
    "bool": (bool,), "iso-8601": (str,), "rfc-1123": (str,), "duration": (str,), "date": (str,),
    "time": (str,), "unix-time": (int,), "base64": (str,), "bytearray": (str,),
}
_UNESCAPED_DOT = re.compile(r"(?<!\\)\.")


# ----------------------------------------------------------------------------- the walker


def _package(cls: type) -> Any:
    """The models package a model class belongs to, where its other models and enums are."""
    return importlib.import_module(cls.__module__.rsplit(".", 1)[0])


@functools.cache
def _tree(cls: type) -> dict[str, Any]:
    """The model's wire layout: each wire key maps to (attribute, type) or to a nested layout."""
    tree: dict[str, Any] = {}
    for attribute, entry in cls._attribute_map.items():
        if not entry["key"]:  # additional_properties: the model takes any other key
            tree[""] = (attribute, entry["type"])
            continue
        *parents, leaf = [part.replace("\\.", ".") for part in _UNESCAPED_DOT.split(entry["key"])]
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = (attribute, entry["type"])
    return tree


@functools.cache
def _enums(cls: type) -> dict[str, type[enum.Enum]]:
    """attribute -> the enum its __init__ annotation names (``Union[str, "_models.Protocol"]``)."""
    package = _package(cls)
    found: dict[str, type[enum.Enum]] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        for attribute, annotation in getattr(init, "__annotations__", {}).items():
            for name in _forward_names(annotation):
                candidate = getattr(package, name.rsplit(".", 1)[-1], None)
                if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
                    found[attribute] = candidate
    return found


def _forward_names(annotation: Any) -> list[str]:
    if isinstance(annotation, str):
        return re.findall(r"_models\.(\w+)", annotation)
    if isinstance(annotation, typing.ForwardRef):
        return _forward_names(annotation.__forward_arg__)
    return [name for argument in typing.get_args(annotation) for name in _forward_names(argument)]


def _subtypes(cls: type, package: Any) -> tuple[str | None, dict[str, type]]:
    """The discriminator's wire key and every value -> subclass below ``cls``, at any depth."""
    own = cls.__dict__.get("_subtype_map")  # a leaf inherits its parent's map: not its own
    if not own:
        return None, {}
    [(attribute, mapping)] = own.items()
    classes: dict[str, type] = {}
    for value, name in mapping.items():
        subclass = getattr(package, name)
        classes[value] = subclass
        classes.update(_subtypes(subclass, package)[1])
    return cls._attribute_map[attribute]["key"], classes


def _concrete(cls: type, data: dict[str, Any], path: str, problems: list[str]) -> type:
    key, classes = _subtypes(cls, _package(cls))
    if key is None or key not in data:
        return cls
    if data[key] not in classes:
        problems.append(f"{path}.{key}: {data[key]!r} names no subtype of {cls.__name__} "
                        f"(known: {', '.join(sorted(classes))})")
        return cls
    return classes[data[key]]


def walk_model(data: Any, cls: type, path: str, problems: list[str]) -> None:
    if is_expression(data):
        return
    if not isinstance(data, dict):
        problems.append(f"{path}: expected an object ({cls.__name__}), found {type(data).__name__}")
        return
    cls = _concrete(cls, data, path, problems)
    _walk_layout(data, _tree(cls), cls, path, problems)


def _walk_layout(data: dict[str, Any], layout: dict[str, Any], cls: type, path: str, problems: list[str]) -> None:
    for key, value in data.items():
        where = f"{path}.{key}"
        entry = layout.get(key)
        if entry is None:
            if "" not in layout:
                problems.append(f"{where}: {cls.__name__} has no such property")
            continue
        if isinstance(entry, dict):
            if is_expression(value):
                continue
            if isinstance(value, dict):
                _walk_layout(value, entry, cls, where, problems)
            else:
                problems.append(f"{where}: expected an object, found {type(value).__name__}")
            continue
        attribute, type_name = entry
        if cls._validation.get(attribute, {}).get("readonly"):
            problems.append(f"{where}: read-only in {cls.__name__} (ARM ignores or refuses it)")
            continue
        allowed = _enums(cls).get(attribute)
        if allowed is not None and not is_expression(value):
            _check_enum(value, allowed, where, problems)
        walk_value(value, type_name, _package(cls), where, problems)


def _check_enum(value: Any, allowed: type[enum.Enum], where: str, problems: list[str]) -> None:
    if allowed.__name__ in OPEN_ENUMS:
        return
    values = {member.value for member in allowed}
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str) and item not in values:
            problems.append(f"{where}: {item!r} is not a value of {allowed.__name__} ({', '.join(sorted(values))})")


def is_expression(value: Any) -> bool:
    """A template expression (``[parameters('x')]``): ARM evaluates it at deployment."""
    return isinstance(value, str) and value.startswith("[") and value.endswith("]") and not value.startswith("[[")


def walk_value(value: Any, type_name: str, package: Any, where: str, problems: list[str]) -> None:
    if value is None or type_name == "object" or is_expression(value):
        return
    if type_name.startswith("["):
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, found {type(value).__name__}")
            return
        for index, item in enumerate(value):
            walk_value(item, type_name[1:-1], package, f"{where}[{index}]", problems)
    elif type_name.startswith("{"):
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a map, found {type(value).__name__}")
            return
        for key, item in value.items():
            walk_value(item, type_name[1:-1], package, f"{where}.{key}", problems)
    elif type_name in PRIMITIVES:
        kinds = PRIMITIVES[type_name]
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            problems.append(f"{where}: expected {type_name}, found {value!r}")
    else:
        walk_model(value, getattr(package, type_name), where, problems)


def _evaluated(value: Any) -> Any:
    """``value`` as far as it is known before deployment: template expressions left out."""
    if isinstance(value, dict):
        return {key: _evaluated(item) for key, item in value.items() if not is_expression(item)}
    if isinstance(value, list):
        return [_evaluated(item) for item in value if not is_expression(item)]
    return value


def conformance_problems(body: dict[str, Any], cls: type) -> list[str]:
    """What ARM would not accept in one exported resource, by its model; empty when it conforms."""
    data = {key: value for key, value in body.items() if key not in TEMPLATE_FIELDS}
    problems: list[str] = []
    try:
        cls.deserialize(_evaluated(data))
    except Exception as error:  # the SDK's DeserializationError and what it wraps
        problems.append(f"{cls.__name__} does not deserialize it: {error}")
    walk_model(data, cls, body["name"], problems)
    return problems


# ----------------------------------------------------------------------------- the stacks


@pytest.fixture(scope="module", params=STACK_FILES, ids=lambda path: path.stem)
def exported(request) -> list[tuple[str, dict[str, Any]]]:
    """(azure-native type token, exported ARM resource) for each Azure resource of one stack."""
    plan = planned(request.param)
    template = export_template(plan)
    custom = plan.custom_resources()
    assert len(template["resources"]) == len(custom)
    return [(resource.type, body) for resource, body in zip(custom, template["resources"], strict=True)]


def test_every_exported_type_has_a_model(exported):
    missing = sorted({token for token, _ in exported if token not in MODELS})
    assert not missing, f"no Azure SDK model mapped for {missing}: add it to MODELS (and pin its package)"


def test_every_exported_resource_conforms_to_its_model(exported):
    problems = []
    for token, body in exported:
        if token in MODELS:
            problems += [f"{body['type']} {problem}" for problem in conformance_problems(body, MODELS[token].cls)]
    assert not problems, "\n".join(problems)


def test_the_models_are_of_the_api_versions_the_export_uses():
    mismatched = {token: (api_version(token), model.api_version) for token, model in MODELS.items()
                  if api_version(token) != model.api_version}
    assert set(mismatched) == set(NEAREST_AVAILABLE), mismatched
    assert set(ARM_TYPES) <= set(MODELS), "every ARM type the recorder knows needs a model here"


# ----------------------------------------------------------------------------- the walker itself


def test_a_sub_resource_field_left_beside_properties_is_refused():
    body = {"type": "Microsoft.Network/networkSecurityGroups", "name": "nsg", "location": "uksouth",
            "properties": {"securityRules": [{"name": "ssh", "protocol": "Tcp", "access": "Allow",
                                               "properties": {"priority": 100}}]}}
    problems = conformance_problems(body, network.NetworkSecurityGroup)
    assert problems == ["nsg.properties.securityRules[0].protocol: SecurityRule has no such property",
                        "nsg.properties.securityRules[0].access: SecurityRule has no such property"]


def test_a_read_only_property_an_unknown_enum_value_and_a_wrong_kind_are_refused():
    body = {"type": "Microsoft.Network/networkSecurityGroups", "name": "nsg", "location": "uksouth",
            "properties": {"provisioningState": "Succeeded", "securityRules": [
                {"name": "ssh", "properties": {"protocol": "SSH", "access": "Allow", "direction": "Inbound",
                                               "priority": "100"}}]}}
    problems = conformance_problems(body, network.NetworkSecurityGroup)
    assert "nsg.properties.provisioningState: read-only in NetworkSecurityGroup (ARM ignores or refuses it)" \
        in problems
    assert any(p.startswith("nsg.properties.securityRules[0].properties.protocol: 'SSH' is not a value of "
                            "SecurityRuleProtocol") for p in problems)
    assert "nsg.properties.securityRules[0].properties.priority: expected int, found '100'" in problems


def test_a_discriminator_picks_the_subtype_whose_properties_are_checked():
    body = {"type": "Microsoft.RecoveryServices/vaults/backupPolicies", "name": "v/p",
            "properties": {"backupManagementType": "AzureIaasVM", "policyType": "V2",
                           "instantRpRetentionRangeInDays": 2, "noSuchSetting": True}}
    assert conformance_problems(body, backup.ProtectionPolicyResource) == [
        "v/p.properties.noSuchSetting: AzureIaaSVMProtectionPolicy has no such property"]
    body["properties"]["backupManagementType"] = "Tape"
    assert any("'Tape' names no subtype of ProtectionPolicy" in p
               for p in conformance_problems(body, backup.ProtectionPolicyResource))


def test_the_checkov_fixtures_conform_too():
    # A known-bad fixture is bad in what it allows, never in its shape: the scanner reads it as ARM would.
    token_of = {arm_type: token for token, arm_type in ARM_TYPES.items()}
    fixtures = sorted((Path(__file__).with_name("checkov_fixtures")).glob("*.json"))
    assert fixtures
    for fixture in fixtures:
        for body in json.loads(fixture.read_text(encoding="utf-8"))["resources"]:
            assert conformance_problems(body, MODELS[token_of[body["type"]]].cls) == [], fixture.name
