"""The package mirror's cloud-init: what it installs, how it is configured, how stack values land."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml

from blueprints.cloud_init import MAX_USER_DATA_BYTES, render_user_data, written_files
from blueprints.topology import plan_machines
from blueprints.vm_settings import document_files, settings_document

FILES = Path(__file__).resolve().parents[2] / "blueprints" / "package_mirror" / "files"


def _mirror_document(config) -> dict:
    machine = next(m for m in plan_machines(config) if m.role == "package_mirror")
    data = render_user_data(config, machine)
    assert len(data) <= MAX_USER_DATA_BYTES
    return yaml.safe_load(data)


def _files(document) -> dict[str, dict]:
    return {entry["path"]: entry for entry in document["write_files"]}


def test_installs_debian_packages_for_every_ecosystem(example_config):
    packages = set(_mirror_document(example_config)["packages"])
    assert {"apt-cacher-ng", "nginx", "nodejs", "python3-venv", "unattended-upgrades"} <= packages


def test_the_mirror_itself_has_no_apt_proxy(example_config):
    assert "apt" not in _mirror_document(example_config)


def test_apt_cacher_ng_uses_the_stack_upstreams_and_only_those(example_config):
    config = copy.deepcopy(example_config)
    config["roles"]["package_mirror"]["upstreams"]["debian"] = "http://debian.example.nhs.uk/debian"
    files = _files(_mirror_document(config))
    assert files["/etc/apt-cacher-ng/backends_debian"]["content"] == "http://debian.example.nhs.uk/debian/\n"
    assert files["/etc/apt-cacher-ng/backends_debian"]["defer"] is True
    assert "ForceManaged: 1" in files["/etc/apt-cacher-ng/zz-trust-blueprints.conf"]["content"]


def test_bundled_files_are_written_byte_for_byte(example_config):
    files = written_files(_mirror_document(example_config))
    for path, source in {
        "/usr/local/sbin/mirror-allowlist": "mirror-allowlist.py",
        "/etc/nginx/sites-available/trust-mirror": "nginx-site.conf",
        "/etc/trust-blueprints/mirror/devpi-requirements.txt": "devpi-requirements.txt",
        "/opt/verdaccio/package.json": "verdaccio-package.json",
    }.items():
        assert files[path] == (FILES / source).read_text(), path


def test_every_python_package_is_pinned_exactly(example_config):
    lines = (FILES / "devpi-requirements.txt").read_text().split()
    assert lines and all("==" in line for line in lines)
    assert any(line.startswith("devpi-server==") for line in lines)
    assert any(line.startswith("devpi-constrained==") for line in lines)
    verdaccio = json.loads((FILES / "verdaccio-package.json").read_text())
    assert all(version[0].isdigit() for version in verdaccio["dependencies"].values())


def test_services_restart_on_failure_as_their_own_users(example_config):
    files = _files(_mirror_document(example_config))
    for unit, user in (("devpi", "devpi"), ("verdaccio", "verdaccio")):
        content = files[f"/etc/systemd/system/{unit}.service"]["content"]
        assert "Restart=on-failure" in content
        assert f"User={user}" in content
        assert "--host 127.0.0.1" in content or "127.0.0.1" not in content


def test_stack_mode_upstreams_and_allowlists_reach_the_mirror(example_config):
    config = copy.deepcopy(example_config)
    mirror = config["roles"]["package_mirror"]
    mirror["mode"] = "open"
    mirror["allowlists"]["pypi"] = ["pandas>=2,<3", "numpy"]
    mirror["upstreams"]["cran"] = "https://cran.example.nhs.uk/cran"
    files = _files(_mirror_document(config))
    settings = json.loads(files["/etc/trust-blueprints/mirror/settings.json"]["content"])
    assert settings["mode"] == "open"
    assert settings["upstreams"]["cran"] == "https://cran.example.nhs.uk/cran"
    assert settings["allowlist_repository"] == "git@git.exnhs-dev.internal:package-requests"
    assert "/etc/trust-blueprints/mirror/allowlist.yaml" not in files  # mirror-allowlist writes it
    machine = next(m for m in plan_machines(config) if m.role == "package_mirror")
    allowlists = yaml.safe_load(
        document_files(settings_document(config, machine))["/etc/trust-blueprints/mirror/stack-allowlist.yaml"])
    assert allowlists["pypi"] == ["pandas>=2,<3", "numpy"]
    assert allowlists["cran"] == mirror["allowlists"]["cran"]


def test_without_a_git_server_there_is_no_pull_timer(example_config):
    config = copy.deepcopy(example_config)
    del config["roles"]["git_server"]
    files = _files(_mirror_document(config))
    assert "/etc/systemd/system/mirror-allowlist-pull.timer" not in files
    settings = json.loads(files["/etc/trust-blueprints/mirror/settings.json"]["content"])
    assert settings["allowlist_repository"] is None
    assert "/etc/systemd/system/mirror-allowlist-pull.timer" in _files(_mirror_document(example_config))


def test_unattended_upgrades_are_on(example_config):
    files = _files(_mirror_document(example_config))
    content = files["/etc/apt/apt.conf.d/20auto-upgrades"]["content"]
    assert 'APT::Periodic::Unattended-Upgrade "1";' in content


def test_provisioning_forgets_the_applied_package_requests_commit(example_config):
    # cloud-init writes the stack's lists (again, on a re-run): the next pull must apply main's list
    # even when that commit was applied before, or a merged request would stay undone.
    tool = (FILES / "mirror-allowlist.py").read_text()
    assert 'REQUESTS_CHECKOUT = Path("/var/lib/trust-mirror/package-requests")' in tool
    assert 'REQUESTS_APPLIED = REQUESTS_CHECKOUT.parent / "package-requests-applied"' in tool
    commands = "\n".join(str(step) for step in _mirror_document(example_config)["runcmd"])
    assert "rm -f /var/lib/trust-mirror/package-requests-applied" in commands
    assert commands.index("package-requests-applied") < commands.index("enable --now mirror-allowlist-pull.timer")
