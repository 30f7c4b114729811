"""Policy results as a person reads them under the plan tree, and as tools read them."""

from __future__ import annotations

from typing import Any

from validation.policies.rule import RuleResult


def _result_word(result: RuleResult) -> str:
    if result.checked == 0:
        return "n/a"
    return "pass" if result.passed else ("FAIL" if result.rule.severity == "mandatory" else "warn")


def render_results(results: list[RuleResult]) -> str:
    """A compact table (rule, severity, result, violations), then each violation on its own line."""
    width = max(len(result.rule.title) for result in results)
    lines = [f"Policy checks ({len(results)} rules; n/a: nothing of that type in this plan)",
             f"  {'rule':<11} {'title':<{width}}  {'severity':<9} {'result':<6} violations"]
    for result in results:
        rule = result.rule
        lines.append(f"  {rule.id:<11} {rule.title:<{width}}  {rule.severity:<9} {_result_word(result):<6} "
                     f"{len(result.violations) if result.checked else '-'}")
    failures = [(result, violation) for result in results for violation in result.violations]
    if failures:
        lines.append("")
        lines.extend(f"  {result.rule.id} ({result.rule.severity}): {violation.message}"
                     for result, violation in failures)
    mandatory = sum(1 for result in results if result.rule.severity == "mandatory" and not result.passed)
    advisory = sum(1 for result in results if result.rule.severity == "advisory" and not result.passed)
    passed = sum(1 for result in results if result.passed and result.checked)
    lines.append("")
    lines.append(f"{passed} rules passed, {mandatory} mandatory failed, {advisory} advisory warned, "
                 f"{sum(1 for result in results if not result.checked)} not applicable")
    return "\n".join(lines)


def results_json(results: list[RuleResult]) -> dict[str, Any]:
    return {
        "passed": all(result.passed for result in results if result.rule.severity == "mandatory"),
        "rules": [result.to_json() for result in results],
    }
