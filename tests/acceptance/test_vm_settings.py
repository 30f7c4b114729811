"""Every machine applied its user data (blueprints/vm_settings.py) at first boot, keeps applying
it from a timer, and puts back a setting changed by hand: what the settings program promises."""

from __future__ import annotations

import json
from typing import Any

import pytest

from blueprints.vm_settings import settings_document

PROGRAM = "/usr/local/sbin/trust-blueprints-settings"


@pytest.fixture(scope="module")
def documents(lab: Any) -> dict[str, dict[str, Any]]:
    return {machine.name: json.loads(settings_document(lab.config, machine)) for machine in lab.machines}


def test_every_machine_has_applied_its_settings_and_has_nothing_left_to_do(lab: Any, documents) -> None:
    for machine in lab.machines:
        host = lab.host(machine.name)
        program = host.file(PROGRAM)
        assert program.user == "root" and program.mode == 0o700, machine.name
        assert host.service("trust-blueprints-settings.timer").is_enabled, machine.name
        shown = host.run("trust-blueprints-settings --show")
        assert shown.rc == 0, f"{machine.name}: {shown.stdout}{shown.stderr}"
        assert "nothing to do" in shown.stdout, f"{machine.name}: {shown.stdout}"


def test_every_setting_is_on_its_machine_with_its_mode_and_owner(lab: Any, documents) -> None:
    for machine in lab.machines:
        host = lab.host(machine.name)
        for entry in documents[machine.name]["files"]:
            written = host.file(entry["path"])
            assert written.content_string == entry["content"], f"{machine.name} {entry['path']}"
            assert written.mode == int(entry["mode"], 8), f"{machine.name} {entry['path']}"
            assert written.user == entry["owner"], f"{machine.name} {entry['path']}"


def test_the_administrators_keys_are_every_key_of_the_stack(lab: Any) -> None:
    admin = lab.config["admin"]
    for machine in lab.machines:
        keys = lab.host(machine.name).file(f"/home/{admin['username']}/.ssh/authorized_keys").content_string
        assert keys.splitlines() == admin["ssh_public_keys"], machine.name


def test_only_root_may_run_the_settings_program(lab: Any) -> None:
    for machine in lab.machines:
        attempt = lab.host(machine.name).run(f"runuser -u nobody -- {PROGRAM} --show")
        assert attempt.rc != 0, machine.name


def test_a_setting_changed_by_hand_is_put_back_by_the_next_run(gateway_host: Any, lab: Any, documents) -> None:
    page = "/var/www/trust-blueprints/index.html"
    wanted = next(entry["content"] for entry in documents["gateway"]["files"] if entry["path"] == page)
    gateway_host.run(f"printf 'changed by hand\\n' > {page}")
    run = gateway_host.run("trust-blueprints-settings --now")
    assert run.rc == 0, run.stdout + run.stderr
    assert f"writing {page}" in run.stdout
    assert gateway_host.file(page).content_string == wanted
