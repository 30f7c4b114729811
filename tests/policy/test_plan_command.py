"""`blueprints plan` reports policy results, includes them in JSON, and fails on mandatory ones."""

from __future__ import annotations

import json

from cli.main import main
from tests.conftest import EXAMPLE
from tests.policy.fixtures import build
from validation import plan_recorder
from validation.policies import RULES


def test_plan_prints_a_row_per_rule_and_exits_0_when_mandatory_rules_pass(capsys, plan_cache):
    assert main(["plan", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    for rule in RULES:
        assert rule.id in out
    assert "0 mandatory failed" in out


def test_plan_exits_1_on_a_mandatory_violation_and_still_prints_the_tree(monkeypatch, capsys):
    monkeypatch.setattr(plan_recorder, "record_plan", lambda path: build("TB-NET-001", "violating"))
    assert main(["plan", str(EXAMPLE)]) == 1
    captured = capsys.readouterr()
    assert "VirtualMachine vm-exnhs-dev-uks-gateway" in captured.out  # the tree
    assert "TB-NET-001 (mandatory): NetworkSecurityGroup nsg-exnhs-dev-uks-gateway:" in captured.out
    assert "1 mandatory policy violated: TB-NET-001" in captured.err


def test_plan_exits_0_on_an_advisory_violation(monkeypatch, capsys):
    monkeypatch.setattr(plan_recorder, "record_plan", lambda path: build("TB-VM-012", "violating"))
    assert main(["plan", str(EXAMPLE)]) == 0
    assert "1 advisory warned" in capsys.readouterr().out


def test_plan_json_carries_policy_results(monkeypatch, tmp_path):
    monkeypatch.setattr(plan_recorder, "record_plan", lambda path: build("TB-KV-003", "violating"))
    target = tmp_path / "plan.json"
    assert main(["plan", str(EXAMPLE), "--json", "-o", str(target)]) == 1
    policies = json.loads(target.read_text())["policies"]
    assert policies["passed"] is False
    by_id = {rule["rule"]: rule for rule in policies["rules"]}
    assert set(by_id) == {rule.id for rule in RULES}
    assert by_id["TB-KV-003"]["violations"][0]["resource"].startswith("kv-exnhs")
    assert by_id["TB-VM-001"]["passed"] is True and by_id["TB-VM-001"]["checked"] == 5
