"""Every policy rule fails its violating fixture, passes its passing one, and every stack passes."""

from __future__ import annotations

import pytest

from tests.conftest import STACK_FILES, planned
from tests.policy.fixtures import FIXTURES, build
from validation.policies import RULES, evaluate, mandatory_failures
from validation.policies.rule import check_rule

RULES_BY_ID = {rule.id: rule for rule in RULES}


def test_every_rule_has_both_fixtures_and_no_fixture_is_orphaned():
    assert set(FIXTURES) == set(RULES_BY_ID)


def test_rule_ids_are_unique_and_rules_are_documented():
    assert len(RULES_BY_ID) == len(RULES) >= 25
    for rule in RULES:
        assert rule.severity in ("mandatory", "advisory")
        assert rule.reason.endswith(".") and rule.reference and rule.resource_types, rule.id


@pytest.mark.parametrize("rule_id", sorted(FIXTURES))
def test_rule_fails_violating_fixture(rule_id):
    result = check_rule(RULES_BY_ID[rule_id], build(rule_id, "violating"))
    assert not result.passed
    for found in result.violations:
        assert found.resource and found.resource in found.message


@pytest.mark.parametrize("rule_id", sorted(FIXTURES))
def test_rule_passes_passing_fixture(rule_id):
    result = check_rule(RULES_BY_ID[rule_id], build(rule_id, "passing"))
    assert result.checked > 0, "a passing fixture must give the rule something to look at"
    assert result.passed, [v.message for v in result.violations]


def test_violation_names_the_field():
    result = check_rule(RULES_BY_ID["TB-VM-002"], build("TB-VM-002", "violating"))
    assert [v.message for v in result.violations] == [
        "VirtualMachine vm-exnhs-dev-uks-git: securityProfile.encryptionAtHost must be true so temporary "
        "disks and caches are encrypted too"]


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda path: path.stem)
def test_every_stack_passes_every_mandatory_rule(stack_file):
    results = evaluate(planned(stack_file))
    assert [v.message for r in mandatory_failures(results) for v in r.violations] == []
