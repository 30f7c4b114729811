"""The client configuration the mirror hands to every other role (package_mirror/client-config.yaml.j2)."""

from __future__ import annotations

import configparser
import copy

import yaml

from blueprints import cloud_init
from blueprints.topology import plan_machines


def _client_files(config, role: str = "analytics") -> dict[str, dict]:
    machine = next(m for m in plan_machines(config) if m.role == role)
    template = cloud_init._environment().from_string(
        '#cloud-config\nwrite_files:\n{% include "package_mirror/client-config.yaml.j2" %}\n  - path: /tmp/x\n'
    )
    document = yaml.safe_load(template.render(cloud_init.template_context(config, machine)))
    return {entry["path"]: entry for entry in document["write_files"]}


def test_pip_uses_the_mirror_index_and_the_system_trust_store(example_config):
    pip_conf = configparser.ConfigParser()
    pip_conf.read_string(_client_files(example_config)["/etc/pip.conf"]["content"])
    assert pip_conf["global"]["index-url"] == "https://mirror.exnhs-dev.internal/pypi/root/trust/+simple/"
    assert pip_conf["global"]["cert"] == "/etc/ssl/certs/ca-certificates.crt"


def test_npm_uses_the_mirror_registry_and_the_system_trust_store(example_config):
    lines = _client_files(example_config)["/etc/npmrc"]["content"].splitlines()
    assert "registry=https://mirror.exnhs-dev.internal/npm/" in lines
    assert "cafile=/etc/ssl/certs/ca-certificates.crt" in lines


def test_npm_never_runs_install_scripts_by_default(example_config):
    lines = _client_files(example_config)["/etc/npmrc"]["content"].splitlines()
    assert "ignore-scripts=true" in lines


def test_r_uses_the_mirror_cran_after_r_is_installed(example_config):
    rprofile = _client_files(example_config)["/etc/R/Rprofile.site"]
    assert rprofile["defer"] is True
    assert 'CRAN = "https://mirror.exnhs-dev.internal/cran"' in rprofile["content"]


def test_without_a_mirror_the_fragment_adds_nothing(example_config):
    config = copy.deepcopy(example_config)
    del config["roles"]["package_mirror"]
    assert set(_client_files(config)) == {"/tmp/x"}
