import base64
import hashlib

import pytest

from modules.naming import NAME_RULES, UNIQUE_LENGTH, Naming, name_problems

SUBSCRIPTION = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
OTHER = "11111111-2222-3333-4444-555555555555"


@pytest.mark.parametrize("trust", ["ab", "exnhs", "abcdefgh"])
@pytest.mark.parametrize("environment", ["dev", "test", "prod"])
@pytest.mark.parametrize("location", ["uksouth", "ukwest"])
def test_every_name_kind_meets_azures_rules(trust, environment, location):
    naming = Naming(trust, environment, location, SUBSCRIPTION)
    for kind in NAME_RULES:
        assert name_problems(kind, naming.name(kind, "analytics-20")) is None, kind


def test_names_follow_caf_abbreviation_trust_environment_region():
    naming = Naming("exnhs", "dev", "uksouth")
    assert naming.name("vnet") == "vnet-exnhs-dev-uks"
    assert naming.name("vm", "mirror") == "vm-exnhs-dev-uks-mirror"


def test_key_vault_names_are_short_unique_and_deterministic():
    first = Naming("exnhs", "dev", "uksouth", SUBSCRIPTION).name("kv")
    assert first == Naming("exnhs", "dev", "uksouth", SUBSCRIPTION).name("kv")
    assert first != Naming("exnhs", "prod", "uksouth", SUBSCRIPTION).name("kv")
    assert first != Naming("exnhs2", "dev", "uksouth", SUBSCRIPTION).name("kv")
    assert len(Naming("abcdefgh", "prod", "ukwest", SUBSCRIPTION).name("kv")) <= 24


def test_key_vault_names_differ_between_subscriptions_of_one_stack():
    # The trust, environment and region are public: the subscription is what two deployments do not share.
    first = Naming("exnhs", "dev", "uksouth", SUBSCRIPTION).name("kv")
    assert first != Naming("exnhs", "dev", "uksouth", OTHER).name("kv")
    assert first.startswith("kv-exnhsdevuks")


def test_the_unique_suffix_hashes_the_subscription_and_the_resource_groups_id():
    naming = Naming("exnhs", "dev", "uksouth", SUBSCRIPTION)
    assert naming.resource_group_id == f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-exnhs-dev-uks"
    seed = f"{SUBSCRIPTION}\n{naming.resource_group_id}\n".lower().encode()
    expected = base64.b32encode(hashlib.sha256(seed).digest()).decode().lower()[:UNIQUE_LENGTH]
    assert naming.name("kv").endswith(expected)
    # The same subscription in capitals (as some tools print it) names the same vault.
    assert Naming("exnhs", "dev", "uksouth", SUBSCRIPTION.upper()).name("kv") == naming.name("kv")


@pytest.mark.parametrize("subscription", ["", "prod", "00000000-0000-0000-0000-00000000000g"])
def test_a_key_vault_name_without_a_subscription_id_is_refused(subscription):
    with pytest.raises(ValueError, match="needs the subscription id"):
        Naming("exnhs", "dev", "uksouth", subscription).name("kv")


def test_name_problems_explains_a_too_long_name():
    assert "Azure allows 24" in name_problems("kv", "kv-" + "a" * 30)


def test_storage_account_names_differ_between_subscriptions_and_stay_stable_within_one():
    first = Naming("exnhs", "dev", "uksouth", SUBSCRIPTION).name("st", "git")
    assert first == Naming("exnhs", "dev", "uksouth", SUBSCRIPTION.upper()).name("st", "git")
    assert first != Naming("exnhs", "dev", "uksouth", OTHER).name("st", "git")
    assert first != Naming("exnhs", "dev", "uksouth", SUBSCRIPTION).name("st", "logs")
    assert first == "stexnhsdevuksg" + Naming("exnhs", "dev", "uksouth", SUBSCRIPTION).unique_suffix("git")
    assert name_problems("st", first) is None


def test_a_storage_account_name_without_a_subscription_id_is_refused():
    with pytest.raises(ValueError, match="needs the subscription id"):
        Naming("exnhs", "dev", "uksouth").name("st", "git")
