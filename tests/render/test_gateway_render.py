"""The gateway's rendered cloud-config: what it configures, and that stack values stay inert."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
import yaml

from blueprints.cloud_init import render_user_data
from blueprints.secrets import role_secrets
from blueprints.topology import plan_machines
from blueprints.vm_settings import document_files, machine_files, settings_document


def _gateway_document(config: dict[str, Any]) -> dict[str, Any]:
    machine = next(m for m in plan_machines(config) if m.role == "gateway")
    return yaml.safe_load(render_user_data(config, machine))


def _gateway_files(config: dict[str, Any]) -> dict[str, str]:
    """Everything the gateway is given: custom data's files, then its settings' (user data)."""
    return machine_files(config, next(m for m in plan_machines(config) if m.role == "gateway"))


def _file(document: dict[str, Any], path: str) -> str:
    matches = [f["content"] for f in document["write_files"] if f["path"] == path]
    assert matches, f"{path} is not written"
    return matches[0]


@pytest.fixture(scope="module")
def gateway(example_config) -> dict[str, Any]:
    return _gateway_document(example_config)


def test_installs_the_gateway_packages_from_debian(gateway):
    for package in ("apache2", "libapache2-mod-auth-openidc", "openssh-server", "libpam-google-authenticator",
                    "qrencode", "fail2ban", "unattended-upgrades"):
        assert package in gateway["packages"]


def test_single_sign_on_uses_the_tenant_client_and_group(gateway, example_config):
    identity = example_config["roles"]["gateway"]["identity"]
    site = _file(gateway, "/etc/apache2/sites-available/trust-blueprints-gateway.conf")
    assert (f"OIDCProviderMetadataURL https://login.microsoftonline.com/{identity['tenant_id']}/v2.0/"
            ".well-known/openid-configuration") in site
    assert f"OIDCClientID {identity['client_id']}" in site
    assert f"Require claim groups:{identity['allowed_group']}" in site
    assert "OIDCRedirectURI https://analytics.example.nhs.uk/oidc/callback" in site


def test_client_supplied_remote_user_is_removed_before_the_account_map_sets_it(gateway):
    site = _file(gateway, "/etc/apache2/sites-available/trust-blueprints-gateway.conf")
    unset = site.index("RequestHeader unset X-Remote-User early")
    assert unset < site.index("Include /etc/trust-blueprints/gateway/accounts.conf")
    # The sign-in name itself never becomes the account header.
    assert 'RequestHeader set X-Remote-User "expr=%{REMOTE_USER}"' not in site


def test_every_web_tool_is_proxied_with_verified_tls(gateway, example_config):
    site = _file(gateway, "/etc/apache2/sites-available/trust-blueprints-gateway.conf")
    # The site includes what is published, which the settings program writes from the user data.
    assert "    Include /etc/trust-blueprints/gateway/publications.conf\n</VirtualHost>" in site
    published = _gateway_files(example_config)["/etc/trust-blueprints/gateway/publications.conf"]
    assert "ProxyPass https://git.exnhs-dev.internal/" in published
    for vm in ("analytics-1", "analytics-2"):
        assert f"ProxyPass https://{vm}.exnhs-dev.internal:8000/{vm}/ upgrade=websocket" in published
    assert "SSLProxyVerify require" in site and "SSLProxyCheckPeerName on" in site


def test_tls_is_12_or_newer_with_hsts(gateway):
    hardening = _file(gateway, "/etc/apache2/conf-available/trust-blueprints-hardening.conf")
    assert "SSLProtocol -all +TLSv1.2 +TLSv1.3" in hardening
    site = _file(gateway, "/etc/apache2/sites-available/trust-blueprints-gateway.conf")
    assert "Strict-Transport-Security" in site


def test_landing_page_lists_the_stacks_tools(example_config):
    page = _gateway_files(example_config)["/var/www/trust-blueprints/index.html"]
    assert 'href="/analytics-1/"' in page and 'href="/analytics-2/"' in page and 'href="/git/"' in page
    assert "Example NHS Foundation Trust" in page


def test_sshd_demands_key_and_code_and_limits_forwarding(gateway, example_config):
    sshd = _file(gateway, "/etc/ssh/sshd_config.d/10-trust-blueprints-jump-host.conf")
    assert "AuthenticationMethods publickey,keyboard-interactive" in sshd
    assert "\nPermitOpen" not in sshd
    # sshd keeps the first value it reads: the settings' file comes before the jump-host one.
    permit_open_file = "/etc/ssh/sshd_config.d/09-trust-blueprints-permit-open.conf"
    assert permit_open_file < "/etc/ssh/sshd_config.d/10-trust-blueprints-jump-host.conf"
    permit_open = next(line for line in _gateway_files(example_config)[permit_open_file].splitlines()
                       if line.startswith("PermitOpen "))
    targets = permit_open.split()[1:]
    assert targets and all(target.endswith(":22") for target in targets)
    assert "analytics-1.exnhs-dev.internal:22" in targets and "10.40.3.4:22" in targets
    assert not any(target.startswith("gateway") for target in targets)
    assert "ForceCommand /usr/sbin/nologin" in sshd


def test_secrets_are_read_on_the_machine_never_written_into_user_data(gateway):
    setup = _file(gateway, "/usr/local/sbin/trust-blueprints-gateway-setup")
    for name in ("gateway-oidc-client-secret", "gateway-oidc-crypto-passphrase"):
        assert f"$secrets/{name}" in setup
    text = yaml.safe_dump(gateway)
    assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text


def test_declared_secrets_match_the_key_vault_grants():
    names = tuple(spec.name for spec in role_secrets("gateway"))
    assert names == ("gateway-oidc-client-secret", "gateway-oidc-crypto-passphrase")


def test_jump_users_come_from_the_stack(example_config):
    config = copy.deepcopy(example_config)
    key = example_config["admin"]["ssh_public_keys"][0]
    config["roles"]["gateway"]["ssh_users"] = [{"name": "bob-smith", "ssh_public_key": key}]
    machine = next(m for m in plan_machines(config) if m.role == "gateway")
    settings = json.loads(settings_document(config, machine))
    files = document_files(settings_document(config, machine))
    assert files["/etc/ssh/trust-blueprints-keys/bob-smith"] == key + "\n"
    assert files["/etc/trust-blueprints/gateway/jump-users"] == "bob-smith\n"
    # Both files feed the hook that runs gateway-jump-user for each name.
    assert {"gateway-jump-users"} == {hook for entry in settings["files"] for hook in entry["hooks"]
                                      if entry["path"] in ("/etc/ssh/trust-blueprints-keys/bob-smith",
                                                           "/etc/trust-blueprints/gateway/jump-users")}
    assert settings["hooks"][0] == "gateway-jump-users"


def test_lets_encrypt_adds_certbot_with_the_apache_plugin(example_config):
    config = copy.deepcopy(example_config)
    config["roles"]["gateway"]["certificate"] = "lets-encrypt"
    document = _gateway_document(config)
    assert "python3-certbot-apache" in document["packages"]
    certbot = next(c for c in document["runcmd"] if c[0] == "certbot")
    assert "--apache" in certbot and "analytics.example.nhs.uk" in certbot


def test_key_vault_certificate_adds_no_certbot(gateway):
    assert "certbot" not in gateway["packages"]
    assert not any(c[0] == "certbot" for c in gateway["runcmd"])


def test_trust_name_is_escaped_in_the_landing_page(example_config):
    config = copy.deepcopy(example_config)
    config["trust"]["name"] = "Smith & Jones's Trust"
    page = _gateway_files(config)["/var/www/trust-blueprints/index.html"]
    assert "Smith &amp; Jones&#39;s Trust" in page
    assert not re.search(r"Smith & Jones", page)
