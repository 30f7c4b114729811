"""A stack `blueprints validate` passes is a stack `blueprints plan` passes: no mandatory policy rule
fails, and nothing crashes. Generated stacks vary what a stack decides that the rules and the
rendering look at: VM sizes and the region, how many analytics VMs fit their subnet, the gateway's
kind and client ranges, text that looks like a secret, lists that outgrow custom data.

The fast path (`validate --no-plan`: schema, cross-field checks, rendered user-data) must already
refuse what the plan's rules would: it is checked against the plan itself, so a rule that starts
depending on a stack value without a matching check in validation/ fails here.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from blueprints.regions import region_facts
from cli.main import main
from tests.conftest import EXAMPLE
from validation.plan_cache import recorded_plan
from validation.policies import evaluate, mandatory_failures

APPROVED = sorted(region_facts().vm_sizes)  # every size the region facts describe is approved (TB-VM-008)
UNAPPROVED = ["Standard_NC6s_v3", "Standard_M128ms", "Standard_D4_v5", "Standard_A2_v2", "Standard_NC24ads_v4"]
CLIENT_RANGES = ["203.0.113.0/24", "198.51.100.16/28", "0.0.0.0/0", "8.0.0.0/7", "100.0.0.0/6"]
KEY_COMMENTS = ["", "analyst@laptop", "client_secret=abcdefgh1234", "api_key: 0123456789ab",
                "Bearer abcdefghijklmnopqrstuvwxyz0123", "sig=" + "a" * 30]
# Each plan is recorded, so examples are few: the strategies aim at the rules' edges instead.
PLANS = settings(max_examples=8, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


TWISTS = ("size", "region", "count", "bastion", "client range", "key comment", "allowlist")


@st.composite
def stacks(draw: st.DrawFn) -> dict[str, Any]:
    """The example with none, one or two twists, so that about half the examples reach the plan."""
    document = yaml.safe_load(EXAMPLE.read_text())
    roles, network = document["roles"], document["network"]
    for name in ("gateway", "package_mirror", "git_server", "analytics"):
        roles[name]["vm_size"] = draw(st.sampled_from(APPROVED))
    roles["analytics"]["count"] = draw(st.integers(1, 6))
    twists = draw(st.lists(st.sampled_from(TWISTS), max_size=2, unique=True))
    if "size" in twists:
        roles[draw(st.sampled_from(sorted(roles)))]["vm_size"] = draw(st.sampled_from(UNAPPROVED))
    if "region" in twists:
        document["location"] = "ukwest"
    if "count" in twists:
        roles["analytics"]["count"] = draw(st.integers(1, 20))
        network["subnets"]["workloads"] = f"10.40.3.0/{draw(st.integers(26, 29))}"
    if "bastion" in twists:
        roles["gateway"] = {"kind": "bastion", "vm_size": roles["gateway"]["vm_size"]}
        if draw(st.booleans()):
            network["subnets"]["bastion"] = "10.40.4.0/26"
    if "client range" in twists:
        network["allowed_client_ranges"] = draw(st.lists(st.sampled_from(CLIENT_RANGES), min_size=1, max_size=2,
                                                         unique=True))
        network["allow_clients_from_anywhere"] = draw(st.booleans())
    if "key comment" in twists:
        key = document["admin"]["ssh_public_keys"][0].split()[:2]
        document["admin"]["ssh_public_keys"][0] = " ".join([*key, draw(st.sampled_from(KEY_COMMENTS[1:]))])
    if "allowlist" in twists:
        roles["package_mirror"]["allowlists"]["pypi"] = [f"project-{index}" for index in range(3000)]
    return document


def _validate(path: Path, *options: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["validate", *options, str(path)])
    return code, err.getvalue()


@pytest.fixture
def plan_cache_dir(tmp_path, monkeypatch) -> Path:
    # validate and the check below share one plan per stack, as the command line does.
    directory = tmp_path / "plans"
    monkeypatch.setenv("BLUEPRINTS_PLAN_CACHE", str(directory))
    return directory


@PLANS
@given(document=stacks())
def test_a_stack_validate_passes_passes_plans_mandatory_rules(tmp_path, plan_cache_dir, document):
    path = tmp_path / "generated.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    quick, quick_err = _validate(path, "--no-plan")
    assert quick in (0, 2), quick_err
    if quick == 2:
        assert "problem" in quick_err and "Traceback" not in quick_err
        event("refused by validate --no-plan")
        return
    event("planned")
    failed = [f"{result.rule.id}: {violation.message}"
              for result in mandatory_failures(evaluate(recorded_plan(path)))
              for violation in result.violations]
    assert not failed, f"validate --no-plan passed, plan refuses: {failed}"
    code, err = _validate(path)  # the whole validate, the plan's rules included, agrees
    assert code == 0, err


def test_the_gpu_size_the_guides_use_passes_validate_and_plan_alike(tmp_path, plan_cache_dir):
    text = EXAMPLE.read_text().replace("vm_size: Standard_D4s_v5", "vm_size: Standard_NC24ads_A100_v4")
    path = tmp_path / "gpu.yaml"
    path.write_text(text)
    assert _validate(path) == (0, "")
    assert not mandatory_failures(evaluate(recorded_plan(path)))


def test_validate_reports_a_mandatory_rule_the_plan_breaks_with_its_field(tmp_path, monkeypatch, plan_cache_dir):
    # A rule that starts looking at a stack value validation/ does not check: the plan stage reports it.
    from validation.policies import vm_rules

    monkeypatch.setattr(vm_rules, "ALLOWED_VM_SIZE", __import__("re").compile(r"^Standard_B"))
    path = tmp_path / "stack.yaml"
    path.write_text(EXAMPLE.read_text())
    code, err = _validate(path)
    assert code == 2
    assert "roles.analytics.vm_size: breaks mandatory policy TB-VM-008" in err, err
    assert _validate(path, "--no-plan")[0] == 0  # the fast path knows nothing of the patched rule


def _too_many_entries(tmp_path: Path) -> Path:
    document = yaml.safe_load(EXAMPLE.read_text())
    document["roles"]["package_mirror"]["allowlists"]["pypi"] = [f"project-{index}" for index in range(4000)]
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_user_data_over_azures_limit_is_refused_by_validate_naming_the_machine(tmp_path):
    code, err = _validate(_too_many_entries(tmp_path), "--no-plan")
    assert code == 2, err
    assert "roles.package_mirror: makes machine mirror's user-data too large" in err and "65535" in err, err


@pytest.mark.parametrize("command", ["plan", "cost"])
def test_every_command_names_the_stack_for_user_data_it_cannot_make(tmp_path, plan_cache_dir, command):
    path = _too_many_entries(tmp_path)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([command, str(path)])
    assert code == 2, err.getvalue()
    assert f"blueprints {command}: {path}: a VM's user data cannot be made" in err.getvalue()
    assert "mirror" in err.getvalue()
