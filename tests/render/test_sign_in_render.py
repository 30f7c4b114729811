"""Who is who, as rendered: the gateway keeps the sign-in name whole and applies the stack's
account map from its user data; each hub gets the map's accounts and runs its own check."""

from __future__ import annotations

import copy
import json
from typing import Any

from blueprints.sign_in_names import account_map, gateway_header_lines, hub_settings
from blueprints.topology import plan_machines
from blueprints.vm_settings import document_files, machine_files, settings_document

SITE = "/etc/apache2/sites-available/trust-blueprints-gateway.conf"
ACCOUNTS_CONF = "/etc/trust-blueprints/gateway/accounts.conf"
HUB_SIGN_IN = "/etc/trust-blueprints/jupyterhub-sign-in.json"
HUB_CONFIG = "/etc/jupyterhub/jupyterhub_config.py"


def _machine(config: dict[str, Any], role: str):
    return next(m for m in plan_machines(config) if m.role == role)


def _files(config: dict[str, Any], role: str) -> dict[str, str]:
    return machine_files(config, _machine(config, role))


def test_the_gateway_keeps_the_sign_in_name_whole(example_config):
    site = _files(example_config, "gateway")[SITE]
    assert "    OIDCRemoteUserClaim preferred_username\n" in site
    assert "^([^@]+)" not in site


def test_client_copies_of_both_headers_are_dropped_before_the_map_applies(example_config):
    site = _files(example_config, "gateway")[SITE]
    include = site.index(f"Include {ACCOUNTS_CONF}")
    assert site.index("RequestHeader unset X-Remote-User early") < include
    assert site.index("RequestHeader unset X-Remote-Identity early") < include
    # The whole name travels only when it is printable ASCII (no control character reaches a header).
    assert 'RequestHeader set X-Remote-Identity "expr=%{REMOTE_USER}" "expr=%{REMOTE_USER} =~ /^[!-~]+$/"' in site


def test_the_gateway_logs_each_sign_in_name_with_its_account(example_config):
    site = _files(example_config, "gateway")[SITE]
    assert ('CustomLog ${APACHE_LOG_DIR}/gateway-sign-in.log '
            '"%t %a sign-in=\\"%u\\" account=\\"%{X-Remote-User}i\\" \\"%r\\" %>s"') in site


def test_the_account_map_reaches_the_gateway_in_its_user_data_and_reloads_apache(example_config):
    gateway = _machine(example_config, "gateway")
    document = settings_document(example_config, gateway)
    [entry] = [f for f in json.loads(document)["files"] if f["path"] == ACCOUNTS_CONF]
    assert entry["hooks"] == ["gateway-apache"]
    lines = document_files(document)[ACCOUNTS_CONF].splitlines()
    assert lines[0].startswith("# Written by trust-blueprints-settings")
    assert lines[1:] == gateway_header_lines(account_map(example_config))
    assert 'RequestHeader set X-Remote-User "analyst" ' \
           '"expr=tolower(%{REMOTE_USER}) == \'analyst@example.nhs.uk\'"' in lines


def test_with_nobody_mapped_the_gateway_sets_no_account_header(example_config):
    config = copy.deepcopy(example_config)
    config["roles"]["gateway"]["identity"]["accounts"] = []
    conf = _files(config, "gateway")[ACCOUNTS_CONF]
    assert "RequestHeader" not in conf


def test_the_landing_page_shows_the_mapped_account_not_the_sign_in_name(example_config):
    page = _files(example_config, "gateway")["/var/www/trust-blueprints/index.html"]
    assert '<strong id="account"><!--#echo var="HTTP_X_REMOTE_USER" --></strong>' in page
    assert '<!--#config echomsg="none: your sign-in name is not in the trust\'s account list" -->' in page
    assert page.index("echomsg") < page.index('id="account"')


def test_each_hub_gets_the_mapped_accounts_in_its_user_data(example_config):
    for machine in plan_machines(example_config):
        if machine.role == "analytics":
            settings = json.loads(document_files(settings_document(example_config, machine))[HUB_SIGN_IN])
            assert settings == hub_settings(example_config)


def _hub_check(example_config) -> dict[str, Any]:
    """The check as the rendered hub configuration holds it, run as code."""
    text = _files(example_config, "analytics")[HUB_CONFIG]
    start = text.index("# The hub's own check")
    end = text.index("ACCOUNT_NAME = HUB_ACCOUNT_NAME")
    namespace: dict[str, Any] = {}
    exec(compile(text[start:end], HUB_CONFIG, "exec"), namespace)  # noqa: S102 (our own rendered file)
    return namespace


def test_the_rendered_hub_check_refuses_the_administrator_and_admits_a_mapped_analyst(example_config):
    check = _hub_check(example_config)
    settings = hub_settings(example_config)
    refusal = check["refusal"]
    nobody = {"uid_of": lambda _: None, "groups_of": lambda _: []}
    assert refusal("analyst", "analyst@example.nhs.uk", settings, **nobody) is None
    assert "administrator" in refusal("trustadmin", "trustadmin@example.nhs.uk", settings, **nobody)
    assert "not one the stack maps" in refusal("intruder", "intruder@example.nhs.uk", settings, **nobody)


def test_the_hub_signs_in_only_through_the_check(example_config):
    text = _files(example_config, "analytics")[HUB_CONFIG]
    authenticate = text[text.index("    async def authenticate"):text.index("c.JupyterHub.authenticator_class")]
    assert "why = refusal(name, identity, read_sign_in_settings())" in authenticate
    assert 'self.log.warning("Refused sign-in: %s", why)' in authenticate
    # The header is compared as sent: no lower-casing that would fold "ROOT" into an account.
    assert ".lower()" not in authenticate
