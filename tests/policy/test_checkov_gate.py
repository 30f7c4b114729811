"""The ARM scan gate: every failure is justified in the skip file, and every skip is still needed."""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLE, REPO
from validation.arm_export import arm_name, export_template
from validation.checkov_gate import GateError, judge, load_skips, main, scan
from validation.plan_model import Plan, PlannedResource
from validation.policies import evaluate, mandatory_failures


def check(check_id: str, stack: str, resource: str = "Microsoft.Compute/virtualMachines.vm-a") -> dict:
    return {"check_id": check_id, "check_name": f"name of {check_id}", "resource": resource,
            "file_path": f"/{stack}.json"}


def report(passed: list[dict], failed: list[dict]) -> list[dict]:
    return [{"check_type": "arm", "results": {"passed_checks": passed, "failed_checks": failed}}]


SKIPS = {"CKV_AZURE_50": {"id": "CKV_AZURE_50", "resource_type": "Microsoft.Compute/virtualMachines"}}


def test_the_published_skip_file_justifies_every_entry():
    skips = load_skips()
    assert skips
    for entry in skips.values():
        assert len(entry["reason"]) > 40 and len(entry["compensating_control"]) > 40


def test_failures_listed_in_the_skip_file_count_as_skipped_per_stack():
    output = report([check("CKV_AZURE_1", "a"), check("CKV_AZURE_1", "b")],
                    [check("CKV_AZURE_50", "a"), check("CKV_AZURE_50", "b")])
    scans, stale = judge(output, ["a", "b"], SKIPS)
    assert [(s.stack, s.passed, len(s.failed), len(s.skipped)) for s in scans] == [("a", 1, 0, 1), ("b", 1, 0, 1)]
    assert stale == []


def test_an_unlisted_failure_fails_and_an_unused_skip_is_stale():
    scans, stale = judge(report([], [check("CKV_AZURE_189", "a", "Microsoft.KeyVault/vaults.kv")]), ["a"], SKIPS)
    assert scans[0].failed == ["CKV_AZURE_189 Microsoft.KeyVault/vaults.kv: name of CKV_AZURE_189"]
    assert stale == ["CKV_AZURE_50"]


def test_a_skipped_check_failing_on_another_resource_type_still_fails():
    elsewhere = check("CKV_AZURE_50", "a", "Microsoft.Compute/virtualMachineScaleSets.ss")
    output = report([], [check("CKV_AZURE_50", "a"), elsewhere])
    scans, stale = judge(output, ["a"], SKIPS)
    assert scans[0].skipped == ["CKV_AZURE_50 Microsoft.Compute/virtualMachines.vm-a: name of CKV_AZURE_50"]
    assert scans[0].failed == ["CKV_AZURE_50 Microsoft.Compute/virtualMachineScaleSets.ss: name of CKV_AZURE_50"]
    assert stale == []


@pytest.mark.parametrize("entry, problem", [
    ({"id": "CKV_AZURE_50", "check": "x", "reason": "because"}, "compensating_control"),
    ({"id": "not-a-check", "check": "x", "resource_type": "Microsoft.Compute/virtualMachines", "reason": "r",
      "compensating_control": "c"}, "not a check id"),
    ({"id": "CKV_AZURE_50", "check": "x", "reason": "r", "compensating_control": "c"}, "resource_type"),
])
def test_a_skip_without_a_justification_or_resource_type_is_refused(tmp_path, entry, problem):
    path = tmp_path / "skips.yaml"
    path.write_text(yaml.safe_dump({"skips": [entry]}))
    with pytest.raises(GateError, match=problem):
        load_skips(path)


def test_a_missing_scanner_is_a_clear_usage_error(tmp_path, capsys, plan_cache):
    assert main([str(EXAMPLE), "--checkov", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    assert "not found; `make checkov` installs it" in capsys.readouterr().err


def test_checks_never_run_are_justified_like_skips():
    not_run = load_skips(section="not_run")
    assert "CKV_AZURE_45" in not_run
    assert all(entry["reason"].strip() and entry["compensating_control"].strip() for entry in not_run.values())
    assert not set(not_run) & set(load_skips()), "a check is either run and allowed to fail, or not run"


# ----------------------------------------------------------------------------- known-bad exports
# Each fixture in tests/policy/checkov_fixtures/ is the ARM export (validation/arm_export.py) of one
# resource of the example stack's recorded plan after a careless edit: the scanner must fail it,
# and the gate must report the failure. `python -m tests.policy.test_checkov_gate` writes them again.

FIXTURES = Path(__file__).with_name("checkov_fixtures")
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
NSG = "azure-native:network:NetworkSecurityGroup"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
SSH_FROM_ANYWHERE = {
    "name": "allow-ssh-from-anywhere", "description": "a careless edit: SSH from the whole Internet",
    "access": "Allow", "direction": "Inbound", "priority": 100, "protocol": "Tcp",
    "sourceAddressPrefix": "*", "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "22",
}
# The storage account's settings a careless edit opens: public network access with the firewall
# allowing every network, plain HTTP, shared keys and TLS 1.0.
OPEN_STORAGE = {"publicNetworkAccess": "Enabled", "enableHttpsTrafficOnly": False, "allowSharedKeyAccess": True,
                "minimumTlsVersion": "TLS1_0"}


def _ssh_from_anywhere(plan: Plan) -> PlannedResource:
    [gateway] = [r for r in plan.of_type(NSG) if r.azure_name.endswith("-gateway")]
    gateway.inputs["securityRules"] = [dict(SSH_FROM_ANYWHERE), *gateway.inputs["securityRules"]]
    return gateway


def _open_storage(plan: Plan) -> PlannedResource:
    # The Git server's backup account (the example's airlock has an account of its own).
    [account] = [a for a in plan.of_type(STORAGE_ACCOUNT) if (a.inputs.get("tags") or {}).get("component") != "airlock"]
    account.inputs.update(OPEN_STORAGE)
    account.inputs["networkRuleSet"] = {**account.inputs["networkRuleSet"], "defaultAction": "Allow"}
    return account


MUTATIONS: dict[str, Callable[[Plan], PlannedResource]] = {
    "ssh-from-internet": _ssh_from_anywhere,
    "open-storage-account": _open_storage,
}
# What the gate must report for each fixture: (check id, ARM resource type) of failures not skipped.
MUST_FAIL = {
    "ssh-from-internet": {("CKV_AZURE_10", "Microsoft.Network/networkSecurityGroups")},
    "open-storage-account": {("CKV_AZURE_3", "Microsoft.Storage/storageAccounts"),
                             ("CKV_AZURE_35", "Microsoft.Storage/storageAccounts"),
                             ("CKV_AZURE_44", "Microsoft.Storage/storageAccounts")},
}


def mutated_template(plan: Plan, fixture: str) -> dict[str, Any]:
    """The export of ``plan`` after the fixture's edit, with only the resource it edits."""
    plan = copy.deepcopy(plan)
    edited = MUTATIONS[fixture](plan)
    template = export_template(plan)
    template["resources"] = [r for r in template["resources"] if r["name"] == arm_name(edited)]
    for resource in template["resources"]:
        resource["dependsOn"] = []  # on resources left out of this template
    used = json.dumps(template["resources"])
    template.pop("parameters", None)  # the other resources' secrets
    template["metadata"] = {"generator": template["metadata"]["generator"], "stack": plan.stack,
                            "source": "stacks/example.yaml",
                            "fixture": f"tests/policy/test_checkov_gate.py: {MUTATIONS[fixture].__name__}"}
    assert "[parameters(" not in used, "a fixture's resource holds no secret"
    return template


def _committed(fixture: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{fixture}.json").read_text(encoding="utf-8"))


def _edited_part(template: dict[str, Any], fixture: str) -> Any:
    [resource] = template["resources"]
    if fixture == "ssh-from-internet":
        return [rule for rule in resource["properties"]["securityRules"] if rule["name"] == SSH_FROM_ANYWHERE["name"]]
    properties = resource["properties"]
    return {key: properties.get(key) for key in ("publicNetworkAccess", "supportsHttpsTrafficOnly",
                                                 "allowSharedKeyAccess", "minimumTlsVersion")} | {
        "defaultAction": properties["networkAcls"]["defaultAction"]}


@pytest.mark.parametrize("fixture", sorted(MUTATIONS))
def test_each_fixture_is_the_export_of_its_edit(example_plan, fixture):
    # The edited part is compared, not the whole resource: the rest follows the modules and the
    # example stack, which change without making the fixture any less bad.
    fresh = mutated_template(example_plan, fixture)
    assert _edited_part(_committed(fixture), fixture) == _edited_part(fresh, fixture), \
        "the export changed: run `python -m tests.policy.test_checkov_gate` and review the fixtures"
    [resource] = _committed(fixture)["resources"]
    assert resource["type"] == next(iter(MUST_FAIL[fixture]))[1]


def test_the_ssh_fixture_keeps_the_rule_where_arm_and_the_scanner_read_it():
    [nsg] = _committed("ssh-from-internet")["resources"]
    [rule] = [r for r in nsg["properties"]["securityRules"] if r["name"] == SSH_FROM_ANYWHERE["name"]]
    assert set(rule) == {"name", "properties"}
    assert rule["properties"]["sourceAddressPrefix"] == "*" and rule["properties"]["destinationPortRange"] == "22"


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, example_plan) -> dict[str, Any]:
    """One run of the real scanner over the committed fixtures and the same edits exported now."""
    if not CHECKOV.exists():
        message = f"{CHECKOV.relative_to(REPO)} is missing: `make checkov` installs the scanner"
        # `make test` installs the scanner first and sets this: there a missing scanner is a failure.
        if os.environ.get("BLUEPRINTS_CHECKOV_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path_factory.mktemp("checkov")
    for fixture in MUTATIONS:
        shutil.copy(FIXTURES / f"{fixture}.json", out / f"{fixture}.json")
        text = json.dumps(mutated_template(example_plan, fixture), indent=2, sort_keys=True)
        (out / f"fresh-{fixture}.json").write_text(text + "\n", encoding="utf-8")
    stacks = sorted(path.stem for path in out.glob("*.json"))
    skips = load_skips()
    scans, _ = judge(scan(CHECKOV, out, sorted(load_skips(section="not_run"))), stacks, skips)
    return {s.stack: s for s in scans}


@pytest.mark.parametrize("fixture", sorted(MUTATIONS))
@pytest.mark.parametrize("source", ["committed", "fresh"])
def test_the_gate_fails_each_known_bad_export(scanned, fixture, source):
    result = scanned[fixture if source == "committed" else f"fresh-{fixture}"]
    missing = [(check_id, arm_type) for check_id, arm_type in sorted(MUST_FAIL[fixture])
               if not any(finding.startswith(f"{check_id} {arm_type}.") for finding in result.failed)]
    assert not missing, f"the gate did not fail {missing}; it failed {result.failed}"


@pytest.mark.parametrize("source", ["*", "0.0.0.0/0", "Internet"])
def test_the_plan_policy_refuses_ssh_from_the_internet_however_it_is_written(example_plan, source):
    # checkov 3.3.30's CKV_AZURE_10 matches its own list of spellings ("*", "internet", "any", ...)
    # exactly, so it passes "0.0.0.0/0" and the service tag "Internet": the gate leans on the
    # plan's own rule for those, which export_stacks applies before any scan.
    plan = copy.deepcopy(example_plan)
    _ssh_from_anywhere(plan).inputs["securityRules"][0]["sourceAddressPrefix"] = source
    assert "TB-NET-001" in {result.rule.id for result in mandatory_failures(evaluate(plan))}


def write_fixtures() -> None:
    from validation.plan_recorder import record_plan

    plan = record_plan(EXAMPLE)
    FIXTURES.mkdir(exist_ok=True)
    for fixture in sorted(MUTATIONS):
        text = json.dumps(mutated_template(plan, fixture), indent=2, sort_keys=True)
        (FIXTURES / f"{fixture}.json").write_text(text + "\n", encoding="utf-8")
        print(f"wrote {FIXTURES / fixture}.json")


if __name__ == "__main__":
    write_fixtures()
