"""Each analyst's server on a host of its own: the hubs, the gateway's sites and the certificates agree,
and the gateway's session cookie stays on the gateway's host."""

from __future__ import annotations

import copy
import fnmatch
import re
from typing import Any

import pytest
import yaml

from blueprints.analytics.origins import own_origins, user_host
from blueprints.cloud_init import render_user_data
from blueprints.secrets import certificate_names
from blueprints.topology import plan_machines
from blueprints.vm_settings import machine_files

GATEWAY_HOST = "analytics.example.nhs.uk"
SITE = "/etc/apache2/sites-available/trust-blueprints-gateway.conf"
SITES = "/etc/trust-blueprints/gateway/sites.conf"


def _machine(config: dict[str, Any], name: str) -> Any:
    return next(m for m in plan_machines(config) if m.name == name)


def _gateway_files(config: dict[str, Any]) -> dict[str, str]:
    return machine_files(config, _machine(config, "gateway"))


def _hub_config(config: dict[str, Any], name: str = "analytics-1") -> str:
    document = yaml.safe_load(render_user_data(config, _machine(config, name)))
    return next(f["content"] for f in document["write_files"] if f["path"] == "/etc/jupyterhub/jupyterhub_config.py")


def _lets_encrypt(config: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(config)
    changed["roles"]["gateway"]["certificate"] = "lets-encrypt"
    return changed


def _bastion(config: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(config)
    changed["roles"]["gateway"]["kind"] = "bastion"
    changed["network"]["subnets"]["bastion"] = "10.40.0.0/26"
    return changed


def test_the_example_gives_each_analyst_a_host_under_the_gateways_name(example_config):
    assert own_origins(example_config) == GATEWAY_HOST
    assert own_origins(_lets_encrypt(example_config)) is None
    assert own_origins(_bastion(example_config)) is None


@pytest.mark.parametrize("name", ["analytics-1", "analytics-2"])
def test_each_hub_stays_on_the_gateways_host_and_puts_servers_on_hosts_naming_it(example_config, name):
    config = _hub_config(example_config, name)
    assert f'c.JupyterHub.public_url = "https://{GATEWAY_HOST}/{name}/"' in config
    assert f'USERS_DOMAIN = "users.{GATEWAY_HOST}"' in config and f'MACHINE = "{name}"' in config
    assert 'c.JupyterHub.subdomain_host = "https://" + USERS_DOMAIN' in config
    assert "c.JupyterHub.subdomain_hook = own_host" in config
    assert 'return f"{label}--{MACHINE}.{USERS_DOMAIN}"' in config
    compile(config, "jupyterhub_config.py", "exec")


def test_the_hub_checks_its_cookie_against_the_gateways_person_on_every_request(example_config):
    config = _hub_config(example_config)
    assert "c.Authenticator.auth_refresh_age = 1" in config
    refresh = config[config.index("async def refresh_user"):config.index("c.JupyterHub.authenticator_class")]
    assert "handler.request.headers.get(USER_HEADER" in refresh and "return False" in refresh


@pytest.mark.parametrize("change", [_lets_encrypt, _bastion])
def test_without_own_origins_hubs_keep_one_host_and_the_gateway_adds_no_site(example_config, change):
    config = change(example_config)
    assert "subdomain_host" not in _hub_config(config)
    if config["roles"]["gateway"]["kind"] == "self-hosted":
        assert "<VirtualHost" not in _gateway_files(config)[SITES]
    assert not [n for m in plan_machines(config) for n in certificate_names(config, m) if n.startswith("*.")]


def test_the_gateways_session_cookie_is_host_only_and_never_reaches_a_tool(example_config):
    site = _gateway_files(example_config)[SITE]
    assert not re.search(r"^\s*OIDCCookieDomain", site, re.MULTILINE)
    # The __Host- prefix makes browsers refuse the cookie from any other host, and any Domain.
    assert "OIDCCookie __Host-gateway-session\n" in site and "OIDCCookiePath /\n" in site
    assert "OIDCStripCookies __Host-gateway-session\n" in site


def _set_cookie_edit(conf: str) -> re.Pattern[str]:
    match = re.search(r'^\s*Header edit\* Set-Cookie "([^"]+)" ""$', conf, re.MULTILINE)
    assert match, "no Set-Cookie edit"
    return re.compile(match.group(1))


def test_cookies_from_behind_the_gateway_lose_any_domain(example_config):
    files = _gateway_files(example_config)
    for conf in (files[SITE], files[SITES]):
        drop = _set_cookie_edit(conf)
        assert drop.sub("", "jupyterhub-session-id=1; Domain=analytics.example.nhs.uk; Path=/x/") == \
            "jupyterhub-session-id=1; Path=/x/"
        assert drop.sub("", "a=1; Path=/; DOMAIN=.nhs.uk; Secure") == "a=1; Path=/; Secure"


def test_the_gateway_includes_the_sites_outside_its_own_virtual_host(example_config):
    site = _gateway_files(example_config)[SITE]
    assert site.index("</VirtualHost>\n\n# Hosts of their own") < site.index(
        "Include /etc/trust-blueprints/gateway/sites.conf")
    assert site.rstrip().endswith("Include /etc/trust-blueprints/gateway/sites.conf")


@pytest.mark.parametrize("name", ["analytics-1", "analytics-2"])
def test_each_analytics_vm_has_a_site_for_its_analysts_servers_only(example_config, name):
    sites = _gateway_files(example_config)[SITES]
    start = sites.index(f"    ServerName {name}.users.{GATEWAY_HOST}\n")
    site = sites[start:sites.index("</VirtualHost>", start)]
    assert f"ServerAlias *--{name}.users.{GATEWAY_HOST}\n" in site
    assert "ProxyPreserveHost On" in site
    proxied = re.findall(r"^\s*ProxyPass (\S+) (\S+)", site, re.MULTILINE)
    assert proxied == [(f"/{name}/user/", f"https://{name}.exnhs-dev.internal:8000/{name}/user/")]
    assert f'<LocationMatch "^/(?!{name}/user/)">\n        Require all denied' in site
    # No sign-in here and no person named to the hub: the account headers are removed, never set.
    assert "OIDC" not in site and "AuthType" not in site
    assert "RequestHeader unset X-Remote-User early" in site
    assert "RequestHeader set" not in site


def test_gateway_and_hub_cookies_are_removed_before_an_analysts_server(example_config):
    sites = _gateway_files(example_config)[SITES]
    match = re.search(r'RequestHeader edit\* Cookie "([^"]+)" "" early', sites)
    assert match
    # Apache's PCRE and Python's re agree on this pattern's syntax (look-behind, alternation).
    drop = re.compile(match.group(1))
    sent = ("__Host-gateway-session=s; mod_auth_openidc_state_x=1; keep=1; jupyterhub-session-id=abc; "
            "jupyterhub-user-alice=t; jupyterhub-hub-login=z")
    assert drop.sub("", sent) == "keep=1; jupyterhub-user-alice=t; "
    assert drop.sub("", "xjupyterhub-session-id=1; b=2") == "xjupyterhub-session-id=1; b=2"


def test_certificates_cover_the_analysts_hosts_with_one_name_whatever_the_count(example_config):
    gateway = certificate_names(example_config, _machine(example_config, "gateway"))
    assert gateway[1:] == [GATEWAY_HOST, f"*.users.{GATEWAY_HOST}"]
    # The gateway forwards with the analyst's host name, so the VMs' certificates cover it too.
    assert certificate_names(example_config, _machine(example_config, "analytics-2")) == [
        "analytics-2.exnhs-dev.internal", f"*.users.{GATEWAY_HOST}"]
    assert certificate_names(example_config, _machine(example_config, "git")) == ["git.exnhs-dev.internal"]
    # Adding an analytics VM changes no existing certificate (no certificate is reissued).
    more = copy.deepcopy(example_config)
    more["roles"]["analytics"]["count"] = 3
    for name in ("gateway", "analytics-1"):
        assert certificate_names(more, _machine(more, name)) == certificate_names(
            example_config, _machine(example_config, name))


def test_an_analysts_host_names_the_machine_in_one_label(example_config):
    host = user_host("u-ab--2e7336d", "analytics-12", GATEWAY_HOST)
    assert host == f"u-ab--2e7336d--analytics-12.users.{GATEWAY_HOST}"
    sites = _gateway_files(example_config)[SITES]
    aliases = re.findall(r"ServerAlias (\S+)", sites)
    # Apache's wildcard: the host is matched by exactly one VM's site (analytics-1 is not analytics-12).
    assert [a for a in aliases if fnmatch.fnmatchcase(host.replace("analytics-12", "analytics-1"), a)] == [
        f"*--analytics-1.users.{GATEWAY_HOST}"]
    assert not [a for a in aliases if fnmatch.fnmatchcase(host, a)]
