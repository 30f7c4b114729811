"""The policy rules every plan is checked against, offline and in `pulumi preview --policy-pack`.

``RULES`` is the one list. ``evaluate(plan)`` checks a recorded plan against it; the pack in
policy-pack/ wraps the same rules for Pulumi.
"""

from __future__ import annotations

from validation.plan_recorder import Plan
from validation.policies import data_rules, egress_rules, governance_rules, network_rules, vm_rules
from validation.policies.rule import Rule, RuleResult, Severity, Violation, evaluate_rules

RULES: tuple[Rule, ...] = (
    *network_rules.RULES,
    *vm_rules.RULES,
    *data_rules.RULES,
    *egress_rules.RULES,
    *governance_rules.RULES,
)


def evaluate(plan: Plan) -> list[RuleResult]:
    """Every rule's result for one plan, in RULES order."""
    return evaluate_rules(RULES, plan)


def mandatory_failures(results: list[RuleResult]) -> list[RuleResult]:
    return [result for result in results if result.rule.severity == "mandatory" and not result.passed]


__all__ = ["RULES", "Rule", "RuleResult", "Severity", "Violation", "evaluate", "mandatory_failures"]
