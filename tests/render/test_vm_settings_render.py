"""Every machine installs the settings program and runs it once its role can apply them; its user
data is a small settings document within Azure's limit, and the limit is enforced clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from blueprints import vm_settings
from blueprints.cloud_init import SETTINGS_PROGRAM, RenderError, render_user_data, runcmd_steps
from blueprints.topology import plan_machines
from blueprints.vm_settings import AZURE_USER_DATA_LIMIT, machine_files, settings_document
from tests.conftest import STACK_FILES
from validation.stack_config import load_stack

NOW = "/usr/local/sbin/trust-blueprints-settings --now"
# The step in each role's runcmd after which its apply programs can run (settings come later).
READY_AFTER = {
    "analytics": "/usr/local/sbin/trust-blueprints-data-disk || exit 1",
    "git_server": "ln -sf git-server /usr/local/sbin/git-server-apply",
    "gateway": "a2ensite -q trust-blueprints-gateway",
    "package_mirror": "enable --now devpi.service",
}


@pytest.mark.parametrize("stack", STACK_FILES, ids=lambda path: path.stem)
def test_every_machine_installs_the_program_and_applies_its_settings_at_first_boot(stack):
    config = load_stack(stack)
    for machine in plan_machines(config):
        files = machine_files(config, machine)
        assert files["/usr/local/sbin/trust-blueprints-settings"] == Path(SETTINGS_PROGRAM).read_text()
        assert f"ExecStart={NOW}" in files["/etc/systemd/system/trust-blueprints-settings.service"]
        assert "OnUnitActiveSec=5min" in files["/etc/systemd/system/trust-blueprints-settings.timer"]
        steps = runcmd_steps(yaml.safe_load(render_user_data(config, machine)))
        now = next(i for i, step in enumerate(steps) if NOW in step)
        ready = next(i for i, step in enumerate(steps) if READY_AFTER[machine.role] in step)
        assert ready <= now, f"{machine.name} applies its settings before its role can"
        if ready == now:  # one script: order inside it
            assert steps[now].index(READY_AFTER[machine.role]) < steps[now].index(NOW)
        if machine.role != "analytics":  # (its settings step comes right after its first step)
            # The admin's keys are in place before the role's long install begins.
            assert steps[0] == "/usr/local/sbin/trust-blueprints-settings --files-only", machine.name
        timer = next(i for i, step in enumerate(steps) if "enable --now trust-blueprints-settings.timer" in step)
        assert timer >= now
        document = json.loads(settings_document(config, machine))
        assert document["machine"] == machine.name and document["version"] == 1
        assert len(settings_document(config, machine)) * 4 // 3 < AZURE_USER_DATA_LIMIT // 4, "far from the limit"


def test_no_secret_reaches_user_data(example_config):
    for machine in plan_machines(example_config):
        text = settings_document(example_config, machine).decode()
        assert "PRIVATE KEY" not in text and "/etc/trust-blueprints/secrets/" not in text


def test_user_data_over_azures_limit_is_refused_naming_the_vm(example_config, monkeypatch):
    machine = next(m for m in plan_machines(example_config) if m.role == "git_server")
    monkeypatch.setattr(vm_settings, "AZURE_USER_DATA_LIMIT", 100)
    with pytest.raises(RenderError, match=r"settings of git: \d+ bytes of user data \(base64\); Azure allows 100"):
        settings_document(example_config, machine)


def test_a_role_template_that_writes_where_settings_may_not_is_refused(example_config, monkeypatch):
    machine = next(m for m in plan_machines(example_config) if m.role == "git_server")
    monkeypatch.setattr(vm_settings, "_role_files", lambda config, machine: [
        {"path": "/usr/local/sbin/git-server", "mode": "0755", "owner": "root", "group": "root",
         "content": "#!/bin/sh\n", "hooks": []}])
    with pytest.raises(RenderError, match=r"settings of git: files\[1\]\.path '/usr/local/sbin/git-server': is out"):
        settings_document(example_config, machine)


@pytest.mark.parametrize("comment", ['$(reboot) `id` {{ 7 * 7 }} "\'', "\\u2028 </script> ${HOME}", "#: x"])
def test_a_hostile_key_comment_reaches_authorized_keys_verbatim(example_config, comment):
    config = json.loads(json.dumps(example_config))
    key = f"{config['admin']['ssh_public_keys'][0].rsplit(' ', 1)[0]} {comment}"
    config["admin"]["ssh_public_keys"] = [key]
    for machine in plan_machines(config):
        files = json.loads(settings_document(config, machine))["files"]
        keys = next(entry for entry in files if entry["path"].endswith("/.ssh/authorized_keys"))
        assert keys["content"] == key + "\n"
