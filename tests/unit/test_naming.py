import pytest

from modules.naming import NAME_RULES, Naming, name_problems


@pytest.mark.parametrize("trust", ["ab", "exnhs", "abcdefgh"])
@pytest.mark.parametrize("environment", ["dev", "test", "prod"])
@pytest.mark.parametrize("location", ["uksouth", "ukwest"])
def test_every_name_kind_meets_azures_rules(trust, environment, location):
    naming = Naming(trust, environment, location)
    for kind in NAME_RULES:
        assert name_problems(kind, naming.name(kind, "analytics-20")) is None, kind


def test_names_follow_caf_abbreviation_trust_environment_region():
    naming = Naming("exnhs", "dev", "uksouth")
    assert naming.name("vnet") == "vnet-exnhs-dev-uks"
    assert naming.name("vm", "mirror") == "vm-exnhs-dev-uks-mirror"


def test_key_vault_names_are_short_unique_and_deterministic():
    first = Naming("exnhs", "dev", "uksouth").name("kv")
    assert first == Naming("exnhs", "dev", "uksouth").name("kv")
    assert first != Naming("exnhs", "prod", "uksouth").name("kv")
    assert first != Naming("exnhs2", "dev", "uksouth").name("kv")
    assert len(Naming("abcdefgh", "prod", "ukwest").name("kv")) <= 24


def test_name_problems_explains_a_too_long_name():
    assert "Azure allows 24" in name_problems("kv", "kv-" + "a" * 30)
