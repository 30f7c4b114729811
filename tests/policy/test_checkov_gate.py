"""The ARM scan gate: every failure is justified in the skip file, and every skip is still needed."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import EXAMPLE
from validation.checkov_gate import GateError, judge, load_skips, main


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


def test_a_missing_scanner_is_a_clear_usage_error(tmp_path, capsys):
    assert main([str(EXAMPLE), "--checkov", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    assert "not found; `make checkov` installs it" in capsys.readouterr().err


def test_checks_never_run_are_justified_like_skips():
    not_run = load_skips(section="not_run")
    assert "CKV_AZURE_45" in not_run
    assert all(entry["reason"].strip() and entry["compensating_control"].strip() for entry in not_run.values())
    assert not set(not_run) & set(load_skips()), "a check is either run and allowed to fail, or not run"
