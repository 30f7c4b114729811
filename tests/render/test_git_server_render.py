"""The Git server's rendered cloud-config: what it installs, the settings it carries, who may browse."""

import copy

import yaml

from blueprints.cloud_init import render_user_data, written_files
from blueprints.git_server.backup_target import vm_settings
from blueprints.roles import role
from blueprints.topology import plan_machines
from blueprints.vm_settings import document_files, settings_document


def _git_user_data(config):
    machine = next(m for m in plan_machines(config) if m.role == "git_server")
    return yaml.safe_load(render_user_data(config, machine))


def _settings_file(config, path):
    """A file of the Git server's user data (its settings document)."""
    machine = next(m for m in plan_machines(config) if m.role == "git_server")
    return document_files(settings_document(config, machine))[path]


def _file(document, path):
    return next(f for f in document["write_files"] if f["path"] == path)["content"]


def test_rendered_cloud_config_installs_the_role(example_config):
    document = _git_user_data(example_config)
    for package in ("gitolite3", "cgit", "apache2", "fail2ban", "unattended-upgrades"):
        assert package in document["packages"]
    program = (role("git_server").folder / "server_commands.py").read_text()
    assert written_files(document)["/usr/local/sbin/git-server"] == program
    # git-server-apply runs as the settings program's hook, once the settings are written.
    runcmd = document["runcmd"]
    assert runcmd.index("/usr/local/sbin/trust-blueprints-settings --now") > runcmd.index(
        "ln -sf git-server /usr/local/sbin/git-server-apply")
    assert "/etc/trust-blueprints/git-server.yaml" not in written_files(document)
    sshd = _file(document, "/etc/ssh/sshd_config.d/50-trust-blueprints.conf")
    assert "PermitRootLogin no" in sshd and "PasswordAuthentication no" in sshd


def test_rendered_settings_are_the_stack_settings(example_config):
    settings = yaml.safe_load(_settings_file(example_config, "/etc/trust-blueprints/git-server.yaml"))
    assert settings == vm_settings(example_config)
    # backup: the stack's plus the container's names; egress: from the stack's airlock section.
    assert {key: value for key, value in settings.items() if key not in ("backup", "egress")} == \
        {key: value for key, value in example_config["roles"]["git_server"].items() if key != "backup"}
    assert settings["egress"]["checkers"] == example_config["airlock"]["egress"]["checkers"]


def test_web_view_admits_only_the_gateway(example_config):
    site = _file(_git_user_data(example_config), "/etc/apache2/sites-available/git-server.conf")
    gateway = next(m for m in plan_machines(example_config) if m.role == "gateway")
    requires = [line.strip() for line in site.splitlines() if line.strip().startswith("Require")]
    assert requires == [f"Require ip {gateway.private_ip}"] * 2


def test_web_view_is_closed_without_a_self_hosted_gateway(example_config):
    config = copy.deepcopy(example_config)
    config["roles"]["gateway"]["kind"] = "bastion"
    site = _file(_git_user_data(config), "/etc/apache2/sites-available/git-server.conf")
    assert [line.strip() for line in site.splitlines() if line.strip().startswith("Require")] == \
        ["Require all denied"] * 2


def test_quotes_in_descriptions_stay_inside_the_settings_document(example_config):
    config = copy.deepcopy(example_config)
    config["roles"]["git_server"]["repositories"][1]["description"] = "Trust's \"A&E\" waits: {{ x }}"
    settings = yaml.safe_load(_settings_file(config, "/etc/trust-blueprints/git-server.yaml"))
    assert settings["repositories"][1]["description"] == "Trust's \"A&E\" waits: {{ x }}"


def test_rclone_is_installed_only_when_backups_or_outputs_may_leave_the_vm(example_config):
    assert "rclone" in _git_user_data(example_config)["packages"]
    config = copy.deepcopy(example_config)
    config["roles"]["git_server"]["backup"]["target"] = "directory"
    assert "rclone" in _git_user_data(config)["packages"], "the example publishes outputs (airlock.egress)"
    config["airlock"].pop("egress")
    assert "rclone" not in _git_user_data(config)["packages"]


def test_protecting_a_repository_changes_the_settings_not_the_custom_data(example_config):
    # Day two: the two-person rule is a setting; git-server-apply rewrites the review rules in place.
    machine = next(m for m in plan_machines(example_config) if m.role == "git_server")
    edited = copy.deepcopy(example_config)
    edited["roles"]["git_server"]["repositories"][1].update(protected=True, maintainers=["amara.okafor", "tom.evans"])
    assert render_user_data(edited, machine) == render_user_data(example_config, machine)
    settings = yaml.safe_load(_settings_file(edited, "/etc/trust-blueprints/git-server.yaml"))
    assert settings["repositories"][1]["protected"] is True
    assert settings != yaml.safe_load(_settings_file(example_config, "/etc/trust-blueprints/git-server.yaml"))
