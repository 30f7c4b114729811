"""`blueprints preflight`: the checks a subscription needs, printed always and run by a (fake) Azure CLI.

The fake `az` is a shell script on PATH that answers with canned JSON and logs every call, so the
tests also prove that preflight only reads: it never registers anything.
"""

import copy
import json
import stat

import pytest

from cli.main import main
from cli.preflight import TOTAL_CORES, preflight, stack_needs
from tests.conftest import EXAMPLE

REGISTERED = {"properties": {"state": "Registered"}}
USAGE = [
    {"name": {"value": "cores", "localizedValue": "Total Regional vCPUs"}, "currentValue": 10, "limit": 100},
    # Older CLIs answer with strings: both are read.
    {"name": {"value": "standardBSFamily", "localizedValue": "Standard BS Family vCPUs"},
     "currentValue": "0", "limit": "10"},
    {"name": {"value": "standardDSv5Family", "localizedValue": "Standard DSv5 Family vCPUs"},
     "currentValue": 2, "limit": 10},
]


def fake_az(directory, feature=REGISTERED, provider_state="Registered", usage=USAGE, signed_in=True):
    """An `az` in directory that answers the read-only checks; returns the file its calls are logged to."""
    log = directory / "az-calls.log"
    account = "echo '{\"name\": \"Trust dev\", \"id\": \"1111-2222\"}'" if signed_in else \
        "echo \"ERROR: Please run 'az login' to setup account.\" >&2; exit 1"
    script = directory / "az"
    script.write_text("\n".join([
        "#!/bin/sh",
        f"echo \"$*\" >> '{log}'",
        'case "$1 $2" in',
        f'  "account show") {account} ;;',
        f"  \"feature show\") echo '{json.dumps(feature)}' ;;",
        f"  \"provider show\") echo '{json.dumps({'registrationState': provider_state})}' ;;",
        f"  \"vm list-usage\") echo '{json.dumps(usage)}' ;;",
        '  *) echo "unexpected az $*" >&2; exit 3 ;;',
        "esac",
        "",
    ]))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return log


def checks(plan):
    """How many checks run against a subscription: features, providers to register, quotas."""
    needs = stack_needs(plan)
    return len(needs.features) + sum(not p.registered_by_default for p in needs.providers) + len(needs.quotas)


@pytest.fixture
def az_on_path(tmp_path, monkeypatch):
    """PATH holds only a directory for the fake az (and no real one)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    return directory


def test_the_needs_of_the_example(example_plan):
    needs = stack_needs(example_plan)
    assert needs.location == "uksouth" and needs.machines == 5
    assert [feature.full_name for feature in needs.features] == ["Microsoft.Compute/EncryptionAtHost"]
    providers = {provider.namespace: provider for provider in needs.providers}
    for namespace in ("Microsoft.Network", "Microsoft.Compute", "Microsoft.KeyVault", "Microsoft.Storage",
                      "Microsoft.OperationalInsights", "Microsoft.Insights", "Microsoft.RecoveryServices",
                      "Microsoft.DevTestLab"):
        assert not providers[namespace].registered_by_default, namespace
    assert providers["Microsoft.Resources"].registered_by_default
    assert all(provider.known for provider in needs.providers)
    quotas = {quota.family: quota.vcpus for quota in needs.quotas}
    # Three B2s (2 vCPUs each) and two D4s_v5 (4 each).
    assert quotas == {"standardBSFamily": 6, "standardDSv5Family": 8, TOTAL_CORES: 14}


def test_without_az_it_prints_the_checks_and_runs_none(az_on_path, capsys, plan_cache):
    assert main(["preflight", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Preflight for {EXAMPLE}: uksouth (UK South), 5 VMs\n")
    lines = {line.strip() for line in out.splitlines()}
    assert "az feature register --namespace Microsoft.Compute --name EncryptionAtHost" in lines
    for namespace in ("Microsoft.Network", "Microsoft.Compute", "Microsoft.KeyVault", "Microsoft.Storage",
                      "Microsoft.OperationalInsights", "Microsoft.Insights", "Microsoft.RecoveryServices",
                      "Microsoft.DevTestLab"):
        assert f"az provider register -n {namespace}" in lines
    assert "az provider register -n Microsoft.Resources" not in lines
    assert "vCPU quota needed in uksouth (az vm list-usage --location uksouth):" in lines
    assert any(line.startswith("standardDSv5Family") and "8 vCPUs" in line for line in lines)
    assert out.rstrip().endswith("The Azure CLI (az) is not on PATH: printed the checks above, ran none.")


def test_a_missing_feature_fails_and_nothing_is_registered(az_on_path, example_plan, capsys, plan_cache):
    log = fake_az(az_on_path, feature={"properties": {"state": "NotRegistered"}})
    assert main(["preflight", str(EXAMPLE)]) == 1
    captured = capsys.readouterr()
    assert "Checks against subscription Trust dev (1111-2222), read-only:" in captured.out
    assert "missing  feature Microsoft.Compute/EncryptionAtHost: NotRegistered" in captured.out
    assert "fix: az feature register --namespace Microsoft.Compute --name EncryptionAtHost" in captured.out
    assert "ok       provider Microsoft.Network: Registered" in captured.out
    assert (f"blueprints preflight: 1 of {checks(example_plan)} checks failed: feature "
            "Microsoft.Compute/EncryptionAtHost") in captured.err
    calls = log.read_text().splitlines()
    assert calls[0] == "account show --output json"
    assert "feature show --namespace Microsoft.Compute --name EncryptionAtHost --output json" in calls
    assert "vm list-usage --location uksouth --output json" in calls
    assert not any("register" in call for call in calls)


def test_everything_present_passes(az_on_path, example_plan, capsys, plan_cache):
    fake_az(az_on_path)
    assert main(["preflight", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "ok       quota standardBSFamily in uksouth: 6 vCPUs needed, 10 of 10 free" in out
    assert "ok       quota cores in uksouth: 14 vCPUs needed, 90 of 100 free" in out
    assert out.rstrip().endswith(f"All {checks(example_plan)} checks passed.")


def test_a_provider_or_quota_short_fails(example_plan, tmp_path, capsys):
    short = copy.deepcopy(USAGE)
    short[2]["currentValue"] = 6  # 4 of 10 free, 8 needed
    fake_az(tmp_path, provider_state="NotRegistered", usage=short)
    assert preflight(example_plan, "stacks/example.yaml", str(tmp_path / "az")) == 1
    captured = capsys.readouterr()
    assert "missing  provider Microsoft.DevTestLab: NotRegistered" in captured.out
    assert "fix: az provider register -n Microsoft.DevTestLab" in captured.out
    assert "missing  quota standardDSv5Family in uksouth: 8 vCPUs needed, 4 of 10 free" in captured.out
    providers = sum(not p.registered_by_default for p in stack_needs(example_plan).providers)
    assert f"{providers + 1} of {checks(example_plan)} checks failed" in captured.err


def test_a_family_az_does_not_list_is_missing(example_plan, tmp_path, capsys):
    fake_az(tmp_path, usage=[entry for entry in USAGE if entry["name"]["value"] != "standardBSFamily"])
    assert preflight(example_plan, "stacks/example.yaml", str(tmp_path / "az")) == 1
    assert "missing  quota standardBSFamily in uksouth: 6 vCPUs needed; az vm list-usage lists no such quota" \
        in capsys.readouterr().out


def test_az_signed_out_runs_none(example_plan, tmp_path, capsys):
    log = fake_az(tmp_path, signed_in=False)
    assert preflight(example_plan, "stacks/example.yaml", str(tmp_path / "az")) == 0
    out = capsys.readouterr().out
    assert "not signed in (az account show failed: ERROR: Please run 'az login' to setup account.)" in out
    assert "ran none" in out
    assert log.read_text().splitlines() == ["account show --output json"]


def test_a_size_the_facts_do_not_know_is_listed_not_counted(example_plan, capsys):
    plan = copy.deepcopy(example_plan)
    vm = next(r for r in plan.resources if r.type == "azure-native:compute:VirtualMachine")
    vm.inputs["hardwareProfile"]["vmSize"] = "Standard_E4s_v5"
    needs = stack_needs(plan)
    assert needs.unknown_sizes == ("Standard_E4s_v5",)
    assert preflight(plan, "stacks/example.yaml") == 0
    out = capsys.readouterr().out
    assert ("Standard_E4s_v5: not in regions.yaml, so not counted; its family and vCPUs: "
            "az vm list-skus --location uksouth --size Standard_E4s_v5 --output table") in out


def test_bad_input_exits_2(tmp_path, capsys):
    assert main(["preflight", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot be read" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("environment: dev", "environment: staging"))
    assert main(["preflight", str(bad)]) == 2
    assert "environment: must be one of dev, test, prod (got 'staging')" in capsys.readouterr().err
