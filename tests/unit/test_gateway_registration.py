"""The gateway's Entra ID app registration made by the program (roles.gateway.identity.registration),
planned offline: the registration, its redirect URI and groups claim, a client secret that
expires and lands in Key Vault under the name the gateway reads, and the client id in the
gateway's cloud-init."""

from __future__ import annotations

import base64
import copy
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from blueprints.cloud_init import render_user_data
from blueprints.gateway.registration import CLIENT_SECRET, PLANNED_CLIENT_ID, redirect_uri
from blueprints.gateway.settings import REGISTRATION_SECRET_DAYS, REGISTRATION_SECRET_DAYS_DEFAULT
from blueprints.topology import plan_machines
from cli.vault_secrets import vault_secrets
from modules.entra_application import MAX_SECRET_DAYS, EntraApplication, EntraApplicationArgs
from tests.conftest import all_of, only
from validation.plan_recorder import PLAN_CLOCK, Plan, record_plan
from validation.plan_report import render_summary
from validation.policies import evaluate
from validation.stack_config import load_stack

APPLICATION = "azuread:index/application:Application"
PASSWORD = "azuread:index/applicationPassword:ApplicationPassword"
PRINCIPAL = "azuread:index/servicePrincipal:ServicePrincipal"
SECRET = "azure-native:keyvault:Secret"
VM = "azure-native:compute:VirtualMachine"
GRANT = "azure-native:authorization:RoleAssignment"


def gateway_only(example: dict[str, Any], registration: dict[str, Any] | None) -> dict[str, Any]:
    """The example's gateway alone (a small plan), registered by the program or by a person."""
    document = copy.deepcopy(example)
    document["roles"] = {"gateway": document["roles"]["gateway"]}
    document.pop("airlock", None)
    if registration is not None:
        del document["roles"]["gateway"]["identity"]["client_id"]
        document["roles"]["gateway"]["identity"]["registration"] = registration
    return document


def _plan(tmp_path: Path, document: dict[str, Any]) -> Plan:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return record_plan(path)


@pytest.fixture(scope="module")
def example_document() -> dict[str, Any]:
    from tests.conftest import EXAMPLE

    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def registered(example_document, tmp_path_factory) -> Plan:
    return _plan(tmp_path_factory.mktemp("registered"), gateway_only(example_document, {}))


def test_the_registration_signs_in_this_tenant_with_the_code_flow_at_the_gateways_redirect_uri(registered):
    app = only(registered.resources, APPLICATION).inputs
    assert app["signInAudience"] == "AzureADMyOrg"
    assert app["web"]["redirectUris"] == [f"https://{registered.config['roles']['gateway']['hostname']}/oidc/callback"]
    assert app["web"]["implicitGrant"] == {"accessTokenIssuanceEnabled": False, "idTokenIssuanceEnabled": False}
    # The groups claim: security groups' object ids in the ID token, which the gateway requires.
    assert app["groupMembershipClaims"] == ["SecurityGroup"]
    assert app["optionalClaims"] == {"idTokens": [{"name": "groups"}]}
    principal = only(registered.resources, PRINCIPAL)
    assert principal.inputs["clientId"] == PLANNED_CLIENT_ID
    assert only(registered.resources, APPLICATION).urn in principal.dependencies


def test_the_redirect_uri_is_the_one_the_gateway_receives_the_code_at(example_config):
    gateway = next(m for m in plan_machines(example_config) if m.role == "gateway")
    site = render_user_data(example_config, gateway).decode()
    # The site file is a quoted YAML string in custom data: its lines end in an escaped newline.
    [uri] = set(re.findall(r"OIDCRedirectURI (https://[^\s\\]+)", site))
    assert uri == redirect_uri(example_config)


def test_the_client_secret_expires_after_the_default_and_lands_in_key_vault_with_its_expiry(registered):
    password = only(registered.resources, PASSWORD)
    assert password.inputs["endDateRelative"] == f"{REGISTRATION_SECRET_DAYS_DEFAULT * 24}h"
    [stored] = [s for s in all_of(registered.resources, SECRET) if s.inputs["secretName"] == CLIENT_SECRET]
    assert password.urn in stored.dependencies
    expires = (PLAN_CLOCK + timedelta(days=REGISTRATION_SECRET_DAYS_DEFAULT)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert stored.inputs["tags"]["expires"] == expires
    assert stored.inputs["properties"] == "[secret]"  # the value never shows in a plan


def test_the_gateway_reads_the_stored_secret_under_its_usual_name_once_it_exists(registered):
    [stored] = [s for s in all_of(registered.resources, SECRET) if s.inputs["secretName"] == CLIENT_SECRET]
    [grant] = [g for g in all_of(registered.resources, GRANT)
               if g.inputs["scope"].endswith(f"/secrets/{CLIENT_SECRET}")]
    assert stored.urn in grant.dependencies


def test_the_gateways_cloud_init_carries_the_registrations_client_id_and_is_what_the_lab_renders(registered):
    vm = only(registered.resources, VM)
    custom = base64.b64decode(vm.inputs["osProfile"]["customData"])
    assert f"OIDCClientID {PLANNED_CLIENT_ID}".encode() in custom
    gateway = next(m for m in plan_machines(registered.config) if m.role == "gateway")
    assert custom == render_user_data(registered.config, gateway)


def test_a_registration_passes_every_policy_and_is_summarised_as_free_directory_objects(registered):
    results = {result.rule.id: result for result in evaluate(registered)}
    assert results["TB-KV-004"].checked == 1 and results["TB-KV-004"].passed
    assert not [r.rule.id for r in results.values() if r.rule.severity == "mandatory" and not r.passed]
    summary = render_summary(registered)
    assert "3 in Entra ID (the gateway's app registration; no charge): 1 Application, 1 ApplicationPassword, " \
           "1 ServicePrincipal" in summary
    assert all(not r.type.startswith("azuread:") for r in registered.custom_resources())  # costed and scanned: none


def test_the_program_supplies_the_client_secret_when_it_registers(registered, example_document, tmp_path):
    by_name = {secret.name: secret for secret in vault_secrets(registered.config)}
    assert by_name[CLIENT_SECRET].supplied_by is None
    path = tmp_path / "by-hand.yaml"
    path.write_text(yaml.safe_dump(gateway_only(example_document, None)), encoding="utf-8")
    by_hand = {secret.name: secret for secret in vault_secrets(load_stack(path))}
    assert by_hand[CLIENT_SECRET].supplied_by


def test_a_stack_that_registers_by_hand_plans_no_directory_objects(example_document, tmp_path):
    plan = _plan(tmp_path, gateway_only(example_document, None))
    assert [r for r in plan.resources if r.type.startswith("azuread:")] == []
    assert "Entra ID" not in render_summary(plan)
    vm = only(plan.resources, VM)
    client_id = plan.config["roles"]["gateway"]["identity"]["client_id"]
    assert f"OIDCClientID {client_id}".encode() in base64.b64decode(vm.inputs["osProfile"]["customData"])


def test_a_longer_secret_lifetime_reaches_the_password_and_its_key_vault_expiry(example_document, tmp_path):
    plan = _plan(tmp_path, gateway_only(example_document, {"client_secret_days": 365}))
    assert only(plan.resources, PASSWORD).inputs["endDateRelative"] == "8760h"
    [stored] = [s for s in all_of(plan.resources, SECRET) if s.inputs["secretName"] == CLIENT_SECRET]
    assert stored.inputs["tags"]["expires"] == (PLAN_CLOCK + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_stack_setting_and_the_module_agree_on_the_longest_secret(run_component):
    assert REGISTRATION_SECRET_DAYS[1] == MAX_SECRET_DAYS
    with pytest.raises(ValueError, match="secret_days 731"):
        run_component(lambda: EntraApplication("app", EntraApplicationArgs("x", ["https://a.example/cb"], 731)))


def _kv004(plan: Plan) -> list[str]:
    from validation.policies.data_rules import RULES
    from validation.policies.rule import check_rule

    [rule] = [r for r in RULES if r.id == "TB-KV-004"]
    return [found.message for found in check_rule(rule, plan).violations]


def _stored(plan: Plan):
    [stored] = [s for s in all_of(plan.resources, SECRET) if s.inputs["secretName"] == CLIENT_SECRET]
    return stored


def test_the_expiry_policy_names_each_fault_it_finds(registered):
    assert _kv004(registered) == []
    too_long = copy.deepcopy(registered)
    only(too_long.resources, PASSWORD).inputs["endDateRelative"] = "17521h"
    assert any("endDateRelative is '17521h'" in m for m in _kv004(too_long))
    unstored = copy.deepcopy(registered)
    unstored.resources.remove(_stored(unstored))
    assert any("is stored in no Key Vault secret" in m for m in _kv004(unstored))
    untagged = copy.deepcopy(registered)
    del _stored(untagged).inputs["tags"]["expires"]
    assert any("tags.expires is missing" in m for m in _kv004(untagged))
    # Where a preview shows the properties (the pack sees them), the attribute itself is checked.
    visible = copy.deepcopy(registered)
    _stored(visible).inputs["properties"] = {"value": "x", "contentType": "text/plain"}
    assert any("properties.attributes.expires is not set" in m for m in _kv004(visible))
    _stored(visible).inputs["properties"]["attributes"] = {"expires": 1782777600}
    assert _kv004(visible) == []


def test_preflight_names_the_directory_role_only_when_the_program_registers(registered, example_document, tmp_path):
    from cli.preflight import render_needs, stack_needs

    text = render_needs("gateway.yaml", stack_needs(registered))
    assert "Entra ID (the tenant, not the subscription): the program creates Application, ApplicationPassword, " \
           "ServicePrincipal" in text and "Application Administrator" in text
    by_hand = render_needs("gateway.yaml", stack_needs(_plan(tmp_path, gateway_only(example_document, None))))
    assert "Entra ID" not in by_hand


def test_the_cost_report_lists_the_registration_as_free(registered):
    from reports.costing import estimate

    est = estimate(registered)
    free = {item.type: item for item in est.free}
    assert {APPLICATION, PASSWORD, PRINCIPAL} <= set(free)
    assert "free" in free[APPLICATION].reason
    assert not [item for item in est.resources + est.not_priced if item.type.startswith("azuread:")]
