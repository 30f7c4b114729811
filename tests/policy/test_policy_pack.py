"""The pulumi-policy pack enforces RULES as Pulumi calls it: each policy's validate function is
given arguments built from recorded plan resources, with props wrapped as the engine wraps them."""

from __future__ import annotations

import copy
import re
import runpy
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from tests.conftest import REPO
from tests.policy.fixtures import FIXTURES, build
from validation.plan_recorder import Plan
from validation.policies import RULES
from validation.policies.rule import check_rule

PACK = runpy.run_path(str(REPO / "policy-pack"), run_name="policy_pack_under_test")
POLICIES = {policy.name: policy for policy in PACK["POLICIES"]}
RULES_BY_ID = {rule.id: rule for rule in RULES}


def _snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", key).lower()


def snake_props(value: Any, rename: bool = True) -> Any:
    if isinstance(value, dict):
        return {(_snake(k) if rename else k): snake_props(v, k != "tags") for k, v in value.items()}
    if isinstance(value, list):
        return [snake_props(item) for item in value]
    return value


def _options(parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], None, [], parent)


def run_policy(rule_id: str, plan: Plan, case=lambda props: props) -> list[tuple[str, str | None]]:
    """Every (message, urn) the pack's policy for ``rule_id`` reports on ``plan``."""
    policy = POLICIES[rule_id]
    reported: list[tuple[str, str | None]] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append((message, urn))

    custom = [r for r in plan.resources if r.custom]
    if isinstance(policy, ResourceValidationPolicy):
        for resource in custom:
            args = ResourceValidationArgs(resource.type, unknown_checking_proxy(case(copy.deepcopy(resource.inputs))),
                                          resource.urn, resource.name, _options(resource.parent), None)
            policy.validate(args, report)
    else:
        assert isinstance(policy, StackValidationPolicy)
        wrapped = {r.urn: PolicyResource(r.type, unknown_checking_proxy(case(copy.deepcopy(r.inputs))), r.urn,
                                         r.name, _options(r.parent), None, None, [], {}) for r in custom}
        for resource in custom:
            wrapped[resource.urn].dependencies = [wrapped[d] for d in resource.dependencies if d in wrapped]
        policy.validate(StackValidationArgs(list(wrapped.values())), report)
    return reported


def test_the_pack_has_one_policy_per_rule_with_its_enforcement():
    assert list(POLICIES) == [rule.id for rule in RULES]
    for rule in RULES:
        policy = POLICIES[rule.id]
        expected = EnforcementLevel.MANDATORY if rule.severity == "mandatory" else EnforcementLevel.ADVISORY
        assert policy.enforcement_level == expected
        assert isinstance(policy, StackValidationPolicy if rule.cross_resource else ResourceValidationPolicy)
        assert rule.reason in policy.description


def test_the_pack_holds_no_rule_of_its_own():
    source = (REPO / "policy-pack" / "__main__.py").read_text()
    assert "TB-" not in source  # every rule id, and so every rule, comes from validation.policies


@pytest.mark.parametrize("rule_id", sorted(FIXTURES))
@pytest.mark.parametrize("case", ["camelCase", "snake_case"])
def test_pack_reports_the_violating_fixture_and_not_the_passing_one(rule_id, case):
    convert = snake_props if case == "snake_case" else (lambda props: props)
    violating = run_policy(rule_id, build(rule_id, "violating"), convert)
    assert violating, f"{rule_id} reported nothing on its violating fixture ({case} props)"
    assert run_policy(rule_id, build(rule_id, "passing"), convert) == []


@pytest.mark.parametrize("rule_id", sorted(FIXTURES))
def test_pack_messages_match_the_offline_plan(rule_id):
    plan = build(rule_id, "violating")
    offline = sorted(v.message for v in check_rule(RULES_BY_ID[rule_id], plan).violations)
    assert sorted(message for message, _ in run_policy(rule_id, plan)) == offline


def test_snake_case_props_come_back_as_the_recorded_camel_case(example_plan):
    to_plain = PACK["plain_props"]
    for resource in example_plan.resources:
        assert to_plain(unknown_checking_proxy(snake_props(copy.deepcopy(resource.inputs)))) == resource.inputs, \
            resource.type


def test_values_unknown_during_preview_do_not_break_a_policy(example_plan):
    plan = copy.deepcopy(example_plan)
    vm = next(r for r in plan.resources if r.type == "azure-native:compute:VirtualMachine")
    vm.inputs["osProfile"]["customData"] = UNKNOWN_STRING_VALUE
    vm.inputs["securityProfile"]["encryptionAtHost"] = UNKNOWN_STRING_VALUE
    assert run_policy("TB-VM-009", plan) == []  # nothing to read yet is not a secret
    messages = run_policy("TB-VM-002", plan)
    assert len(messages) == 1 and vm.azure_name in messages[0][0]  # an unknown is not proof of encryption


def test_stack_policies_attach_violations_to_the_resource(example_plan):
    plan = build("TB-VM-006", "violating")
    [(message, urn)] = run_policy("TB-VM-006", plan)
    git = next(r for r in plan.resources if r.azure_name == "vm-exnhs-dev-uks-git")
    assert urn == git.urn and "vm-exnhs-dev-uks-git" in message


def test_stack_policies_match_by_dependency_when_ids_are_unknown(example_plan):
    plan = copy.deepcopy(example_plan)
    for resource in plan.resources:
        if resource.type == "azure-native:recoveryservices:ProtectedItem":
            resource.inputs["properties"]["sourceResourceId"] = UNKNOWN_STRING_VALUE
    assert run_policy("TB-VM-006", plan) == []


def test_pack_files_pin_what_they_install():
    requirements = (REPO / "policy-pack" / "requirements.txt").read_text().splitlines()
    pins = [line for line in requirements if line and not line.startswith("#")]
    assert pins and all("==" in line for line in pins)
    assert "runtime:" in (REPO / "policy-pack" / "PulumiPolicy.yaml").read_text()
