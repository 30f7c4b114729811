"""Region facts (blueprints/regions.yaml): well formed, sourced and dated, covering every stack, and used:
the public IPs' zones follow the region, and `blueprints validate` refuses a size the region does not offer."""

import datetime

import pytest

from blueprints.regions import FACTS_FILE, availability_zones, read_facts, region, region_facts
from blueprints.roles import all_roles
from blueprints.topology import plan_machines
from cli.main import main
from modules.bastion import Bastion, BastionArgs
from modules.nat_egress import NatEgress, NatEgressArgs
from modules.public_ip import PublicIp, PublicIpArgs
from tests.conftest import REPO, STACK_FILES, all_of, only, planned
from validation.plan_recorder import ARM_TYPES
from validation.schema import REGIONS
from validation.stack_config import load_stack

PUBLIC_IP = "azure-native:network:PublicIPAddress"
CHECKED = datetime.date(2026, 12, 2)


def test_the_facts_file_is_well_formed_and_describes_every_region_a_stack_may_name():
    facts = region_facts()
    assert sorted(facts.regions) == sorted(REGIONS)
    for described in facts.regions.values():
        assert described.display_name
        # Every region says, for each size the facts know, whether it offers it.
        assert set(described.sizes) == set(facts.vm_sizes), described.name
    for size in facts.vm_sizes.values():
        assert size.vcpus > 0 and size.quota_family.lower().endswith("family"), size.name


def test_the_documented_facts():
    assert availability_zones("uksouth") == ("1", "2", "3")
    assert availability_zones("ukwest") == ()
    for name in ("Standard_B2s", "Standard_D2s_v5", "Standard_D4s_v5", "Standard_NC24ads_A100_v4"):
        assert region("uksouth").offers(name) is True
    assert region("ukwest").offers("Standard_NC24ads_A100_v4") is False
    assert region("uksouth").offers("Standard_Unheard_Of") is None
    features = {feature.full_name: feature for feature in region_facts().features}
    assert features["Microsoft.Compute/EncryptionAtHost"].resource_type == "Microsoft.Compute/virtualMachines"
    with pytest.raises(ValueError, match="has no facts about region 'westeurope'"):
        region("westeurope")


def test_every_fact_names_its_source_and_the_day_it_was_checked():
    sources = region_facts().sources()
    assert len(sources) > 20
    for where, fact in sources:
        assert "https://" in fact.source and ("learn.microsoft.com" in fact.source
                                              or "azure.microsoft.com" in fact.source), where
        assert fact.checked == CHECKED, where
    # What is not confirmed says so, and why.
    uncertain = {where for where, fact in sources if fact.uncertain}
    assert "regions.uksouth.vm_sizes.Standard_NC24ads_A100_v4" in uncertain
    assert "regions.ukwest.vm_sizes.Standard_NC24ads_A100_v4" in uncertain


def test_a_fact_without_source_or_date_is_refused():
    text = FACTS_FILE.read_text(encoding="utf-8")
    broken = text.replace("    checked: 2026-12-02\n", "    checked: soon\n", 1)
    with pytest.raises(ValueError, match=r"regions\.uksouth\.availability_zones\.checked: must be the date"):
        read_facts(broken)
    unsourced = text.replace('      source: "Azure regions list', '      sourced: "Azure regions list', 1)
    with pytest.raises(ValueError, match=r"regions\.uksouth\.availability_zones\.source: must name the page"):
        read_facts(unsourced)
    assert text.count("\n  Standard_B2ms:\n    vcpus:") == 1
    undescribed = text.replace("\n  Standard_B2ms:\n    vcpus:", "\n  Standard_B2ms_gone:\n    vcpus:")
    with pytest.raises(ValueError, match=r"Standard_B2ms: has no entry under vm_sizes"):
        read_facts(undescribed)


def test_every_stack_and_role_default_uses_sizes_the_facts_know_and_its_region_offers():
    facts = region_facts()
    for path in STACK_FILES:
        config = load_stack(path)
        for machine in plan_machines(config):
            assert machine.vm_size in facts.vm_sizes, f"{path.name}: {machine.vm_size} is not in {FACTS_FILE.name}"
            assert region(config["location"]).offers(machine.vm_size), f"{path.name}: {machine.vm_size}"
    for declared in all_roles():
        assert declared.settings_schema["vm_size"]["default"] in facts.vm_sizes, declared.name


def test_every_resource_provider_the_plans_can_use_is_described():
    namespaces = {arm_type.split("/")[0] for arm_type in ARM_TYPES.values()}
    assert namespaces <= set(region_facts().providers)


def test_public_ips_have_the_regions_zones(example_plan):
    west = planned(REPO / "stacks" / "bastion-single-analyst.yaml")
    assert west.config["location"] == "ukwest"
    addresses = all_of(west.resources, PUBLIC_IP)
    assert {address.azure_name.rsplit("-", 1)[-1] for address in addresses} == {"nat", "bastion"}
    assert all("zones" not in address.inputs for address in addresses)
    south = all_of(example_plan.resources, PUBLIC_IP)
    assert south and all(address.inputs["zones"] == ["1", "2", "3"] for address in south)


def test_modules_take_zones_from_their_caller(placement, run_component):
    zonal = run_component(lambda: PublicIp("ip", PublicIpArgs(placement, "gateway", zones=("1", "2", "3"))))
    assert only(zonal, PUBLIC_IP).inputs["zones"] == ["1", "2", "3"]
    for program in (lambda: PublicIp("ip", PublicIpArgs(placement, "gateway")),
                    lambda: PublicIp("ip", PublicIpArgs(placement, "gateway", zones=())),
                    lambda: NatEgress("egress", NatEgressArgs(placement, zones=())),
                    lambda: Bastion("b", BastionArgs(placement, "/subnets/bastion", zones=None))):
        assert "zones" not in only(run_component(program), PUBLIC_IP).inputs
    nat = run_component(lambda: NatEgress("egress", NatEgressArgs(placement, zones=["1", "2", "3"])))
    assert only(nat, PUBLIC_IP).inputs["zones"] == ["1", "2", "3"]
    bastion = run_component(lambda: Bastion("b", BastionArgs(placement, "/subnets/bastion", zones=["1", "2", "3"])))
    assert only(bastion, PUBLIC_IP).inputs["zones"] == ["1", "2", "3"]


def test_validate_refuses_a_size_the_region_does_not_offer(tmp_path, capsys):
    text = (REPO / "stacks" / "bastion-single-analyst.yaml").read_text()
    assert "vm_size: Standard_D2s_v5 " in text
    bad = tmp_path / "gpu-in-ukwest.yaml"
    bad.write_text(text.replace("vm_size: Standard_D2s_v5 ", "vm_size: Standard_NC24ads_A100_v4 ", 1))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "roles.analytics.vm_size: is not offered in ukwest (UK West) (got 'Standard_NC24ads_A100_v4')" in err
    assert "hint: sizes offered there: Standard_B2ms, Standard_B2s, Standard_D2s_v5, Standard_D4s_v5" in err
    # The same size in UK South is valid, and so is a size the facts do not describe.
    south = tmp_path / "gpu-in-uksouth.yaml"
    south.write_text(bad.read_text().replace("location: ukwest ", "location: uksouth ", 1))
    assert main(["validate", str(south)]) == 0
    unknown = tmp_path / "unknown-size.yaml"
    unknown.write_text(text.replace("vm_size: Standard_D2s_v5 ", "vm_size: Standard_E4s_v5 ", 1))
    assert main(["validate", str(unknown)]) == 0
