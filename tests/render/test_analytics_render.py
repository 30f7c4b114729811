"""The analytics VM's rendered cloud-init: what it installs, how JupyterHub trusts the gateway."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from blueprints.cloud_init import render_user_data
from blueprints.topology import plan_machines
from blueprints.vm_settings import document_files, settings_document
from tests.conftest import EXAMPLE
from validation.stack_config import validate_document
from validation.yaml_source import read_stack_source

ADMIN_USERS_FILE = "/etc/trust-blueprints/jupyterhub-admin-users.json"
REQUIRED_PACKAGES = {
    "r-base", "r-base-dev", "python3-venv", "python3-pip", "jupyterhub", "jupyterlab", "python3-ipykernel",
    "r-cran-irkernel", "git", "build-essential", "unixodbc", "tdsodbc", "unattended-upgrades", "chrony",
}


def _analytics(config: dict[str, Any], index: int = 0) -> dict[str, Any]:
    machine = [m for m in plan_machines(config) if m.role == "analytics"][index]
    return yaml.safe_load(render_user_data(config, machine))


def _file(document: dict[str, Any], path: str) -> dict[str, Any]:
    return next(entry for entry in document["write_files"] if entry["path"] == path)


def _hub_config(document: dict[str, Any]) -> str:
    return _file(document, "/etc/jupyterhub/jupyterhub_config.py")["content"]


def _with(config: dict[str, Any], **analytics: Any) -> dict[str, Any]:
    changed = copy.deepcopy(config)
    changed["roles"]["analytics"].update(analytics)
    return changed


def test_installs_the_role_packages_from_debian(example_config):
    assert set(_analytics(example_config)["packages"]) >= REQUIRED_PACKAGES


def test_no_recommended_packages(example_config):
    entry = _file(_analytics(example_config), "/etc/apt/apt.conf.d/60trust-blueprints-no-recommends")
    assert entry["content"] == 'APT::Install-Recommends "false";\n'


def test_jupyterhub_config_is_valid_python(example_config):
    compile(_hub_config(_analytics(example_config)), "jupyterhub_config.py", "exec")


def test_hub_binds_each_vms_private_address_with_tls(example_config):
    for index, address in enumerate(["10.40.3.4", "10.40.3.5"]):
        config = _hub_config(_analytics(example_config, index))
        # The path is the base URL the gateway publishes the hub under.
        assert f'c.JupyterHub.bind_url = "https://{address}:8000/analytics-{index + 1}/"' in config
        assert 'c.JupyterHub.ssl_key = "/etc/trust-blueprints/secrets/tls.key"' in config


def test_hub_trusts_the_header_only_from_the_gateways_address(example_config):
    gateway = next(m for m in plan_machines(example_config) if m.role == "gateway")
    config = _hub_config(_analytics(example_config))
    assert f'GATEWAY_ADDRESS = "{gateway.private_ip}"' in config
    assert "c.LocalAuthenticator.create_system_users = True" in config


def test_without_a_self_hosted_gateway_nobody_is_trusted(example_config):
    config = copy.deepcopy(example_config)
    config["roles"]["gateway"]["kind"] = "bastion"
    config["network"]["subnets"]["bastion"] = "10.40.0.0/26"
    assert 'GATEWAY_ADDRESS = ""' in _hub_config(_analytics(config))


def _admin_users(config: dict[str, Any]) -> list[str]:
    machine = next(m for m in plan_machines(config) if m.role == "analytics")
    return json.loads(document_files(settings_document(config, machine))[ADMIN_USERS_FILE])


def test_admin_users_from_the_stack_reach_the_hub_through_the_settings(example_config):
    assert _admin_users(_with(example_config, admin_users=["jbloggs", "a_smith-2"])) == ["jbloggs", "a_smith-2"]
    hub = _hub_config(_analytics(example_config))
    assert f'ADMIN_USERS_FILE = "{ADMIN_USERS_FILE}"' in hub
    assert "c.Authenticator.admin_users = {name for name in json.load(admins)" in hub


def test_admin_users_default_to_none(example_config):
    config = copy.deepcopy(example_config)
    config["roles"]["analytics"].pop("admin_users", None)
    assert _admin_users(config) == []


def test_a_hub_restart_for_new_admins_keeps_analysts_servers(example_config):
    document = _analytics(example_config)
    assert "c.JupyterHub.cleanup_servers = False" in _hub_config(document)
    unit = _file(document, "/etc/systemd/system/jupyterhub.service.d/trust-blueprints.conf")["content"]
    assert "\n[Service]\nKillMode=process\n" in unit


@pytest.mark.parametrize("name", ["Root", "a b", "x;reboot", "1abc", 'a"b', "a" * 33])
def test_admin_user_names_are_validated(name):
    document, _ = read_stack_source(EXAMPLE)
    document["roles"]["analytics"]["admin_users"] = [name]
    _, problems = validate_document(document)
    assert [p.path for p in problems] == ["roles.analytics.admin_users[0]"]
    assert "local account name" in problems[0].allowed


def test_mirror_clients_point_at_the_mirror(example_config):
    document = _analytics(example_config)
    assert "index-url = https://mirror.exnhs-dev.internal/pypi/" in _file(document, "/etc/pip.conf")["content"]
    assert "registry=https://mirror.exnhs-dev.internal/npm/" in _file(document, "/etc/npmrc")["content"]
    rprofile = _file(document, "/etc/R/Rprofile.site")
    assert 'CRAN = "https://mirror.exnhs-dev.internal/cran"' in rprofile["content"]
    assert rprofile["defer"] is True  # after r-base-core has written its own


def test_freetds_registered_for_odbc(example_config):
    entry = _file(_analytics(example_config), "/etc/odbcinst.ini")
    assert "[FreeTDS]" in entry["content"] and entry["defer"] is True


def test_home_and_hub_state_are_the_data_disk_step_directories(example_config):
    document = _analytics(example_config)
    conf = _file(document, "/etc/trust-blueprints/data-disk.conf")["content"]
    assert "directories='/home /var/lib/jupyterhub'\n" in conf


def test_hub_starts_after_home_is_ready(example_config):
    document = _analytics(example_config)
    commands = [" ".join(c) if isinstance(c, list) else c for c in document["runcmd"]]
    assert commands.index("/usr/local/sbin/trust-blueprints-data-disk || exit 1") < commands.index(
        "systemctl restart jupyterhub.service")
    dropin = _file(document, "/etc/systemd/system/jupyterhub.service.d/50-trust-blueprints-data-disk.conf")
    assert "RequiresMountsFor=/home" in dropin["content"]
