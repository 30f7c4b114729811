"""What a policy rule is, what it finds, and how one plan is checked against a list of rules.

A rule looks at one recorded resource at a time (and the whole plan, for rules that relate
resources to each other, such as "every VM has a backup"). The same rule objects drive the
offline plan and the pulumi-policy pack, so a rule is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from validation.plan_recorder import ARM_TYPES, Plan, PlannedResource

Severity = Literal["mandatory", "advisory"]
# What a value looks like when Azure fills it in only at deploy time.
UNKNOWN = "[known after deploy]"


@dataclass(frozen=True)
class Violation:
    resource: str  # the Azure name of the resource at fault
    message: str  # names the resource and the field, says what is wrong and what is allowed

    def to_json(self) -> dict[str, str]:
        return {"resource": self.resource, "message": self.message}


Check = Callable[[PlannedResource, Plan], list[Violation]]


@dataclass(frozen=True)
class Rule:
    id: str  # TB-<AREA>-<NNN>, stable: docs and exemptions refer to it
    title: str
    severity: Severity
    reason: str  # why the rule exists, in one or two sentences
    reference: str  # the control it implements, e.g. "MCSB NS-1 (network segmentation)"
    resource_types: tuple[str, ...]  # azure-native type tokens the rule looks at
    check: Check
    cross_resource: bool = False  # True when the check needs other resources of the plan

    def applies_to(self, resource: PlannedResource) -> bool:
        return resource.type in self.resource_types

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "severity": self.severity, "reason": self.reason,
                "reference": self.reference, "resource_types": list(self.resource_types)}


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    violations: tuple[Violation, ...]
    checked: int  # how many resources the rule looked at

    @property
    def passed(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule.id, "title": self.rule.title, "severity": self.rule.severity,
                "checked": self.checked, "passed": self.passed,
                "violations": [violation.to_json() for violation in self.violations]}


def check_rule(rule: Rule, plan: Plan) -> RuleResult:
    found: list[Violation] = []
    checked = 0
    for resource in plan.resources:
        if resource.custom and rule.applies_to(resource):
            checked += 1
            found.extend(rule.check(resource, plan))
    return RuleResult(rule, tuple(found), checked)


def evaluate_rules(rules: Sequence[Rule], plan: Plan) -> list[RuleResult]:
    return [check_rule(rule, plan) for rule in rules]


# --- Reading recorded inputs -------------------------------------------------------------

def dig(inputs: Any, path: str, default: Any = None) -> Any:
    """The value at a dotted path of camelCase keys, or ``default`` where any step is missing."""
    value = inputs
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return default
        value = value[key]
    return value


def violation(resource: PlannedResource, field: str, text: str) -> Violation:
    """A finding that names the resource and the field: ``<type> <name>: <field> <text>``."""
    kind = resource.type.rsplit(":", 1)[-1]
    return Violation(resource.azure_name, f"{kind} {resource.azure_name}: {field} {text}")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_known(value: Any) -> bool:
    return value != UNKNOWN


def refers_to(value: Any, holder: PlannedResource, target: PlannedResource) -> bool:
    """Whether ``value`` (an id or name in ``holder``'s inputs) points at ``target``.

    Ids match exactly or by their last two segments (ARM kind and name). A value Azure knows only
    at deploy time, or one a preview leaves out of a resource's state, falls back to the
    dependency the program declared.
    """
    if value is None or not is_known(value):
        return target.urn in holder.dependencies
    if not isinstance(value, str):
        return False
    if target.id and value == target.id:
        return True
    kind = ARM_TYPES.get(target.type, target.type).rsplit("/", 1)[-1]
    return value.lower().endswith(f"/{kind}/{target.azure_name}".lower()) or value == target.azure_name
