"""The trust-blueprints policy pack: every rule of validation.policies.RULES, for `pulumi preview`.

Rules are not written here: each one is wrapped as it is. Rules about one resource become
resource policies; rules that relate resources (a VM and its backup) become stack policies.
Mandatory rules block the deployment; advisory ones warn.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

# The pack runs from its own directory; the rules live in the repository around it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import (  # imported after the path is set
    EnforcementLevel,
    Policy,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from validation.plan_recorder import Plan, PlannedResource, _azure_name
from validation.policies import RULES, Rule
from validation.policies.rule import UNKNOWN

PACK_NAME = "trust-blueprints"
ENFORCEMENT = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY}
SEVERITY = {"mandatory": Severity.HIGH, "advisory": Severity.MEDIUM}
# Maps whose keys are data (tag names), not property names: never renamed.
FREE_FORM_KEYS = {"tags"}
# snake_case names whose Azure wire name is not plain camelCase.
IRREGULAR_NAMES = {
    "enable_ip_forwarding": "enableIPForwarding",
    "public_ip_address": "publicIPAddress",
    "private_ip_address": "privateIPAddress",
    "private_ip_allocation_method": "privateIPAllocationMethod",
    "public_ip_allocation_method": "publicIPAllocationMethod",
    "public_ip_address_version": "publicIPAddressVersion",
    "disk_size_gb": "diskSizeGB",
    "provision_vm_agent": "provisionVMAgent",
}
_UNKNOWN_SENTINELS: set[str] = set()


def _wire_name(key: str) -> str:
    """Azure's camelCase name for a property key, whichever case it arrived in."""
    if "_" not in key:
        return key
    if key in IRREGULAR_NAMES:
        return IRREGULAR_NAMES[key]
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _read(container: Any, key: Any) -> Any:
    try:
        return container[key]
    except UnknownValueError:
        return UNKNOWN


def plain_props(value: Any, rename: bool = True) -> Any:
    """Props as plain camelCase data: unknown preview values become UNKNOWN instead of raising."""
    if isinstance(value, Mapping):
        return {(_wire_name(key) if rename else key): plain_props(_read(value, key), key not in FREE_FORM_KEYS)
                for key in list(value)}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain_props(_read(value, index)) for index in range(len(value))]
    if isinstance(value, str) and _is_unknown_sentinel(value):
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire carries only floats; Azure's integers are compared as integers
    return value


def _is_unknown_sentinel(value: str) -> bool:
    if not _UNKNOWN_SENTINELS:
        from pulumi_policy import proxy

        _UNKNOWN_SENTINELS.update(getattr(proxy, name) for name in dir(proxy) if name.startswith("UNKNOWN_"))
    return value in _UNKNOWN_SENTINELS


_ID = re.compile(r"^/subscriptions/", re.IGNORECASE)


def planned(resource_type: str, name: str, urn: str, props: Mapping[str, Any], parent: str | None,
            dependencies: list[str]) -> PlannedResource:
    """One resource as the rules read it, from what the Pulumi engine sends the pack."""
    inputs = plain_props(props)
    azure_name = _azure_name(resource_type, name, inputs)
    if azure_name == name and isinstance(inputs.get("name"), str) and inputs["name"] != UNKNOWN:
        azure_name = inputs["name"]
    resource_id = inputs.get("id") if isinstance(inputs.get("id"), str) and _ID.match(inputs["id"]) else ""
    return PlannedResource(urn=urn, type=resource_type, name=name, azure_name=azure_name, custom=True,
                           parent=parent, dependencies=sorted(dependencies), inputs=inputs, id=resource_id)


def _resource_validation(rule: Rule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.resource_types:
            return
        resource = planned(args.resource_type, args.name, args.urn, args.props, args.opts.parent, [])
        plan = Plan(stack="preview", source="pulumi preview", config={}, resources=[resource])
        for found in rule.check(resource, plan):
            report_violation(found.message, None)

    return validate


def _stack_validation(rule: Rule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [
            planned(r.resource_type, r.name, r.urn, r.props, r.parent.urn if r.parent else None,
                    [dependency.urn for dependency in r.dependencies]
                    + [d.urn for deps in (r.property_dependencies or {}).values() for d in deps])
            for r in args.resources
        ]
        plan = Plan(stack="preview", source="pulumi preview", config={}, resources=resources)
        for resource in resources:
            if rule.applies_to(resource):
                for found in rule.check(resource, plan):
                    report_violation(found.message, resource.urn)

    return validate


def policy_for(rule: Rule) -> Policy:
    common: dict[str, Any] = {
        "name": rule.id,
        "description": f"{rule.title}. {rule.reason} ({rule.reference})",
        "enforcement_level": ENFORCEMENT[rule.severity],
        "display_name": rule.title,
        "severity": SEVERITY[rule.severity],
    }
    if rule.cross_resource:
        return StackValidationPolicy(validate=_stack_validation(rule), **common)
    return ResourceValidationPolicy(validate=_resource_validation(rule), **common)


POLICIES: list[Policy] = [policy_for(rule) for rule in RULES]

if __name__ == "__main__":
    PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY,
               description="Security and governance rules of the trust-blueprints reference environments",
               provider="azure")
