"""The lab's Entra ID stand-in answers under Entra's path and knows the lab's two people."""

from __future__ import annotations

import unicodedata

from werkzeug.test import Client

from lab.address_plan import address_plan
from lab.dns import dnsmasq_config
from lab.identity_provider import ENTRA_HOST, build_app, issuer_path, lab_users

TENANT = "00000000-0000-4000-8000-000000000001"
GROUP = "00000000-0000-4000-8000-000000000003"


def test_discovery_is_served_under_the_tenant_path():
    client = Client(build_app(TENANT, lab_users(GROUP)))
    response = client.get(f"{issuer_path(TENANT)}/.well-known/openid-configuration",
                          base_url=f"https://{ENTRA_HOST}/")
    assert response.status_code == 200
    discovery = response.get_json()
    assert discovery["authorization_endpoint"].startswith(f"https://{ENTRA_HOST}/{TENANT}/v2.0/")
    assert discovery["token_endpoint"].startswith(f"https://{ENTRA_HOST}/{TENANT}/v2.0/")


def test_nothing_is_served_outside_the_tenant_path():
    client = Client(build_app(TENANT, lab_users(GROUP)))
    assert client.get("/.well-known/openid-configuration", base_url=f"https://{ENTRA_HOST}/").status_code == 404


def test_only_the_analyst_is_in_the_allowed_group():
    users = {user.sub: user for user in lab_users(GROUP)}
    assert GROUP in users["analyst"].claims()["groups"]
    assert GROUP not in users["outsider"].claims()["groups"]
    assert users["analyst"].claims()["preferred_username"].startswith("analyst@")


def test_stack_people_join_the_allowed_group_under_their_own_names():
    users = {user.sub: user for user in lab_users(GROUP, people=("priya.shah", "analyst"))}
    assert set(users) == {"analyst", "outsider", "priya.shah"}
    assert GROUP in users["priya.shah"].claims()["groups"]
    assert users["priya.shah"].claims()["preferred_username"] == "priya.shah@example.nhs.uk"


def test_lab_resolver_sends_the_entra_name_to_the_stand_in(example_config, tmp_path):
    plan = address_plan(example_config)
    config = dnsmasq_config(plan, "exnhs-dev.internal", ["192.0.2.53"], tmp_path)
    assert f"host-record={ENTRA_HOST},{plan.identity_provider_ip}" in config.splitlines()


def test_with_the_administrator_named_hostile_members_join_the_allowed_group():
    users = {user.sub: user for user in lab_users(GROUP, admin="trustadmin")}
    names = {sub: user.claims()["preferred_username"] for sub, user in users.items()}
    assert names["claims-admin"] == "trustadmin@example.nhs.uk"
    assert names["claims-admin-bare"] == "trustadmin"
    assert names["claims-admin-upper"] == "TRUSTADMIN@EXAMPLE.NHS.UK"
    assert names["claims-root"] == "root@example.nhs.uk"
    assert names["claims-service"] == "git@example.nhs.uk"
    assert names["claims-other-domain"] == "analyst@elsewhere.example.com"
    assert names["claims-partner"] == "analyst@partner.example.org"
    assert names["claims-upper"] == "ANALYST@EXAMPLE.NHS.UK"
    # Look-alikes: a Cyrillic a, and full-width letters that NFKC folds back to the administrator.
    assert names["claims-homoglyph"] == "\u0430nalyst@example.nhs.uk"
    full_width = names["claims-admin-full-width"]
    assert not full_width.isascii()
    assert unicodedata.normalize("NFKC", full_width) == "trustadmin@example.nhs.uk"
    for sub, user in users.items():
        if sub.startswith("claims-"):
            assert GROUP in user.claims()["groups"]
            # Entra's upn claim carries the same name, for a gateway that reads that claim instead.
            assert user.claims()["upn"] == user.claims()["preferred_username"]
