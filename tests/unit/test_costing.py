import copy
import json
from decimal import Decimal

import pytest

from cli.main import main
from reports.costing import PriceTable, estimate, render_markdown, render_text, running_hours
from tests.conftest import EXAMPLE
from validation.plan_recorder import PlannedResource, record_plan

# The commands here plan stack files with the code as it is: one plan per stack for the whole run.
pytestmark = pytest.mark.usefixtures("plan_cache")


@pytest.fixture(scope="module")
def example_estimate(example_plan):
    return estimate(example_plan)


@pytest.fixture(scope="module")
def bastion_plan(tmp_path_factory):
    text = EXAMPLE.read_text()
    text = text.replace("    kind: self-hosted ", "    kind: bastion\n    bastion_sku: Standard #")
    text = text.replace("    workloads: 10.40.3.0/24", "    workloads: 10.40.3.0/24\n    bastion: 10.40.4.0/26")
    path = tmp_path_factory.mktemp("stacks") / "bastion.yaml"
    path.write_text(text)
    return record_plan(path)


def test_every_resource_is_priced_free_or_listed_as_not_priced(example_plan, example_estimate):
    accounted = ([r.name for r in example_estimate.resources] + [r.name for r in example_estimate.free]
                 + [r.name for r in example_estimate.not_priced])
    assert sorted(accounted) == sorted(r.azure_name for r in example_plan.custom_resources())
    assert example_estimate.not_priced == []


def test_total_is_the_sum_of_the_lines_shown(example_estimate):
    lines = [item.monthly for resource in example_estimate.resources for item in resource.items]
    assert example_estimate.total == sum(lines)
    assert all(line == line.quantize(Decimal("0.01")) for line in lines)
    assert example_estimate.total > 0


def test_vm_compute_and_disks_follow_the_price_table(example_estimate):
    prices = PriceTable.load()
    gateway = next(r for r in example_estimate.resources if r.name == "vm-exnhs-dev-uks-gateway")
    compute, os_disk = gateway.items
    assert compute.monthly == (Decimal("730") * Decimal(str(prices["vm_hourly"]["Standard_B2s"]))).quantize(
        Decimal("0.01"))
    assert os_disk.basis == "tier P4"
    mirror = next(r for r in example_estimate.resources if r.name == "vm-exnhs-dev-uks-mirror")
    assert len(mirror.items) == 2  # its data disk is a resource of its own
    cache = next(r for r in example_estimate.resources if r.name == "disk-exnhs-dev-uks-mirror-data")
    assert [item.basis for item in cache.items] == ["tier P15, kept when its VM is replaced"]  # the 256 GB cache
    assert cache.monthly == Decimal(str(prices["premium_ssd_monthly"]["P15"][1]))


def test_each_private_endpoint_costs_its_hours_and_the_data_it_carries(example_estimate):
    prices = PriceTable.load()
    endpoints = [r for r in example_estimate.resources if r.type == "azure-native:network:PrivateEndpoint"]
    assert sorted(r.name for r in endpoints) == ["pep-exnhs-dev-uks-blob-airlock",
                                                 "pep-exnhs-dev-uks-blob-git-server-backups",
                                                 "pep-exnhs-dev-uks-kv", "pep-exnhs-dev-uks-monitor"]
    hourly = Decimal(str(prices["private_endpoint_hourly"])) * 730
    for endpoint in endpoints:
        assert endpoint.items[0].monthly == hourly.quantize(Decimal("0.01"))
    monitor = next(r for r in endpoints if r.name.endswith("-monitor"))
    # Five VMs' logs (1 GB each, assumed), charged in and out.
    assert monitor.items[1].monthly == (Decimal("5") * 2 * Decimal(str(prices["private_endpoint_per_gb"]))
                                        ).quantize(Decimal("0.01"))


def test_unknown_resource_type_is_listed_not_priced_at_zero(example_plan):
    plan = copy.deepcopy(example_plan)
    plan.resources.append(PlannedResource(
        urn="urn:x", type="azure-native:cache:Redis", name="redis", azure_name="redis-exnhs",
        custom=True, parent=None, dependencies=[], inputs={}))
    before = estimate(example_plan).total
    est = estimate(plan)
    assert [(i.name, i.reason) for i in est.not_priced] == [
        ("redis-exnhs", "the price table has no entry for cache.Redis")]
    assert est.total == before
    assert "Not priced (NOT included in the total)" in render_text(est)
    assert "redis-exnhs" in render_markdown(est)


def test_unknown_vm_size_is_not_priced(example_plan):
    plan = copy.deepcopy(example_plan)
    vm = next(r for r in plan.resources if r.azure_name == "vm-exnhs-dev-uks-git")
    vm.inputs["hardwareProfile"]["vmSize"] = "Standard_NC24ads_A100_v4"
    est = estimate(plan)
    assert [(i.name, i.reason) for i in est.not_priced] == [
        ("vm-exnhs-dev-uks-git", "no price for VM size Standard_NC24ads_A100_v4 in the price table")]


def test_auto_shutdown_prices_analytics_vms_for_the_hours_they_run(example_estimate):
    savings = {s.vm: s for s in example_estimate.shutdown}
    assert set(savings) == {"vm-exnhs-dev-uks-analytics-1", "vm-exnhs-dev-uks-analytics-2"}
    saving = savings["vm-exnhs-dev-uks-analytics-1"]
    assert saving.hours_running == Decimal("239.1")  # 08:00-19:00 on 21.74 working days
    assert saving.saving > 0
    assert "off daily at 19:00 GMT Standard Time" in saving.schedule
    assert "started at 08:00" in saving.schedule


@pytest.mark.parametrize(("stop", "hours"), [("19:00", "239.1"), ("02:00", "391.3"), ("08:00", "521.8"),
                                              ("08:30", "10.9")])
def test_running_hours_from_the_schedule(stop, hours):
    assert running_hours(PriceTable.load(), stop) == Decimal(hours)


def test_alternatives_mark_what_the_stack_deploys(example_estimate, bastion_plan):
    deployed = [o.name for o in example_estimate.remote_access if o.deployed]
    assert deployed == ["self-hosted gateway (Standard_B2s)"]
    names = [o.name for o in example_estimate.remote_access]
    assert names[1:] == ["Azure Bastion Basic", "Azure Bastion Standard"]
    assert [o.name for o in example_estimate.firewall if o.deployed] == ["no Azure Firewall (default)"]
    assert all(o.monthly > 0 for o in example_estimate.firewall[1:])

    bastion = estimate(bastion_plan)
    assert [o.name for o in bastion.remote_access if o.deployed] == ["Azure Bastion Standard"]
    host = next(r for r in bastion.resources if r.type == "azure-native:network:BastionHost")
    standard = next(o for o in bastion.remote_access if o.name == "Azure Bastion Standard")
    # The option's price is the deployed host plus its public IP.
    assert standard.monthly.quantize(Decimal("0.01")) == host.monthly + Decimal("2.92")


def test_cost_cli_json_and_markdown(capsys):
    assert main(["cost", str(EXAMPLE), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["currency"] == "GBP"
    assert data["total_monthly"] == pytest.approx(sum(r["monthly"] for r in data["resources"]))
    assert main(["cost", str(EXAMPLE), "--format", "markdown"]) == 0
    assert "| **Total** |" in capsys.readouterr().out


def test_cost_cli_bad_stack_exits_2(tmp_path, capsys):
    assert main(["cost", str(tmp_path / "missing.yaml")]) == 2
    assert "Traceback" not in capsys.readouterr().err
