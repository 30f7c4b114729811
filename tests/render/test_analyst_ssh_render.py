"""Analysts' own SSH accounts on the analytics VMs (roles.gateway.ssh_users): the keys and the
list travel in user data, so adding or removing an analyst never touches custom data; the VM's
program makes each account with the hub's own rule and lets it in with its key, from the gateway
or the Bastion subnet only."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from blueprints.analytics import analyst_accounts
from blueprints.cloud_init import render_user_data
from blueprints.topology import plan_machines
from blueprints.vm_settings import document_files, settings_document, settings_program
from tests.conftest import REPO
from validation.stack_config import load_stack

ANALYSTS_FILE = "/etc/trust-blueprints/analysts.json"
KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0BqmvOa0gWcDLTEDHcD9G7GXbiYoq7qVTuRLqUuhP analyst@laptop"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB5fV0cYtRvyWk0bWJ6cVkX0DqA1o4rD9hWcS7mO8xZq jbloggs@laptop"


def _with_users(config: dict[str, Any], *users: tuple[str, str]) -> dict[str, Any]:
    changed = copy.deepcopy(config)
    changed["roles"]["gateway"]["ssh_users"] = [{"name": name, "ssh_public_key": key} for name, key in users]
    return changed


def _analytics(config: dict[str, Any]):
    return next(m for m in plan_machines(config) if m.role == "analytics")


def _gateway_ip(config: dict[str, Any]) -> str:
    return next(m.private_ip for m in plan_machines(config) if m.role == "gateway")


def test_each_analysts_key_and_the_list_reach_every_analytics_vm_in_its_user_data(example_config):
    config = _with_users(example_config, ("analyst", KEY_A), ("jbloggs", KEY_B))
    for machine in (m for m in plan_machines(config) if m.role == "analytics"):
        document = json.loads(settings_document(config, machine))
        files = document_files(settings_document(config, machine))
        assert files["/etc/ssh/trust-blueprints-keys/analyst"] == KEY_A + "\n"
        assert files["/etc/ssh/trust-blueprints-keys/jbloggs"] == KEY_B + "\n"
        access = json.loads(files[ANALYSTS_FILE])
        assert access["analysts"] == ["analyst", "jbloggs"]
        assert access["sources"] == [_gateway_ip(config)]
        assert access["administrator"] == config["admin"]["username"]
        assert "analytics-analysts" in document["hooks"]
        fed = {entry["path"] for entry in document["files"] if "analytics-analysts" in entry["hooks"]}
        keys = {"/etc/ssh/trust-blueprints-keys/analyst", "/etc/ssh/trust-blueprints-keys/jbloggs"}
        assert fed == {ANALYSTS_FILE} | keys
        # Root's files: an analyst cannot add a key of their own beside the stack's.
        owners = {(e["owner"], e["mode"]) for e in document["files"] if e["path"].startswith("/etc/ssh/")}
        assert owners == {("root", "0644")}


def test_adding_or_removing_an_analyst_changes_user_data_only(example_config):
    before = _with_users(example_config, ("analyst", KEY_A), ("jbloggs", KEY_B))
    after = _with_users(example_config, ("analyst", KEY_A))
    machine = _analytics(before)
    assert render_user_data(before, machine) == render_user_data(after, machine)
    assert render_user_data(before, machine) == render_user_data(example_config, machine)
    assert settings_document(before, machine) != settings_document(after, machine)


def test_a_removed_analysts_key_file_is_deleted_and_the_accounts_program_runs_again(example_config):
    program = settings_program()
    machine = _analytics(example_config)
    before = json.loads(settings_document(_with_users(example_config, ("analyst", KEY_A), ("jbloggs", KEY_B)),
                                          machine))
    after = json.loads(settings_document(_with_users(example_config, ("analyst", KEY_A)), machine))
    state = {"files": {entry["path"]: {"sha256": program._digest(entry["content"]), "hooks": entry["hooks"]}
                       for entry in before["files"]},
             "hooks": {hook: program.hook_digest(before, hook) for hook in before["hooks"]}}
    _, removals, hooks = program.plan(after, state, as_root=False)
    assert "/etc/ssh/trust-blueprints-keys/jbloggs" in removals
    assert "/etc/ssh/trust-blueprints-keys/analyst" not in removals
    assert "analytics-analysts" in hooks


def test_with_bastion_analysts_come_from_the_bastion_subnet_only():
    config = load_stack(REPO / "stacks" / "bastion-single-analyst.yaml")
    config = copy.deepcopy(config)
    config["roles"]["gateway"]["ssh_users"] = [{"name": "sjones", "ssh_public_key": KEY_A}]
    files = document_files(settings_document(config, _analytics(config)))
    access = json.loads(files[ANALYSTS_FILE])
    assert access["analysts"] == ["sjones"]
    assert access["sources"] == [config["network"]["subnets"]["bastion"]]
    assert files["/etc/ssh/trust-blueprints-keys/sjones"] == KEY_A + "\n"


def test_without_analysts_sshd_lets_in_the_administrator_alone():
    text = analyst_accounts.analysts_sshd_config("trustadmin", [], ["10.0.0.4"])
    assert [line for line in text.splitlines() if line and not line.startswith("#")] == ["AllowUsers trustadmin"]


def test_sshd_rule_names_each_analyst_with_each_source_and_their_root_owned_key():
    text = analyst_accounts.analysts_sshd_config("trustadmin", ["analyst", "jbloggs"], ["10.0.0.4"])
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "AllowUsers trustadmin analyst@10.0.0.4 jbloggs@10.0.0.4"
    match = lines[1:]
    assert match[0] == "Match User analyst,jbloggs"
    for setting in ("AuthorizedKeysFile /etc/ssh/trust-blueprints-keys/%u", "AuthenticationMethods publickey",
                    "PasswordAuthentication no", "KbdInteractiveAuthentication no", "AllowTcpForwarding local",
                    "PermitListen none", "AllowAgentForwarding no", "X11Forwarding no", "PermitTunnel no"):
        assert setting in match
    # No other Match: everything after the analysts' block belongs to it.
    assert sum(line.startswith("Match ") for line in lines) == 1


def _settings(*analysts: str) -> dict[str, Any]:
    return {"analysts": list(analysts), "administrator": "trustadmin", "reserved": ["root", "git", "jupyterhub"],
            "reserved_prefixes": ["systemd-"], "sources": ["10.0.0.4"]}


@pytest.mark.parametrize(("name", "why"), [
    ("trustadmin", "administrator"),
    ("root", "system or service account"),
    ("systemd-network", "system or service account"),
    ("Analyst", "not in lower case"),
    ("olduser", "uid 999"),
    ("sudoer", "group 'sudo'"),
])
def test_the_vm_refuses_a_name_by_the_hubs_own_rule(name, why):
    uids = {"olduser": 999, "sudoer": 1005}
    groups = {"sudoer": [("sudoer", 1005), ("sudo", 27)]}
    allowed, refused = analyst_accounts.accepted_analysts(_settings("analyst", name), uid_of=uids.get,
                                                          groups_of=lambda account: groups.get(account, []))
    assert allowed == ["analyst"]
    [reason] = refused
    assert why in reason and "roles.gateway.ssh_users" in reason


def test_the_rendered_program_runs_on_its_own():
    config = load_stack(REPO / "stacks" / "example.yaml")
    document = yaml.safe_load(render_user_data(config, _analytics(config)))
    entry = next(e for e in document["write_files"] if e["path"] == "/usr/local/sbin/analytics-analysts")
    assert entry["permissions"] == "0755" and entry["encoding"] == "gz+b64"
    program = gzip.decompress(base64.b64decode(entry["content"])).decode("utf-8")
    assert program.startswith("#!/usr/bin/python3\n")
    compile(program, "analytics-analysts", "exec")
    # Without root (or without its one argument) it says how to use it and changes nothing.
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            check=False, cwd="/")
    assert result.returncode == 2
    assert "usage (as root): analytics-analysts" in result.stderr


class _FakeVm:
    """The commands analytics-analysts runs, answered as a VM would: adduser makes an account (or
    fails for the names given), sshd -t passes or fails."""

    def __init__(self, failing_adduser: set[str] = frozenset(), sshd_ok: bool = True) -> None:
        self.accounts: dict[str, int] = {}
        self.failing_adduser = set(failing_adduser)
        self.sshd_ok = sshd_ok
        self.commands: list[list[str]] = []

    def run(self, argv, **_kwargs):
        self.commands.append(list(argv))
        code = 0
        if argv[0] == "adduser":
            name = argv[-1]
            if name in self.failing_adduser:
                code = 1
            else:
                self.accounts[name] = int(argv[argv.index("--uid") + 1])
        elif argv[0] == "/usr/sbin/sshd":
            code = 0 if self.sshd_ok else 255
        return subprocess.CompletedProcess(argv, code, "", "" if code == 0 else "refused")


@dataclass
class _Account:
    pw_name: str
    pw_uid: int

    @property
    def pw_gid(self) -> int:
        return self.pw_uid


@pytest.fixture
def vm(monkeypatch, tmp_path):
    fake = _FakeVm()
    monkeypatch.setattr(analyst_accounts, "ANALYSTS_SSHD_FILE", str(tmp_path / "30-trust-blueprints-analysts.conf"))
    monkeypatch.setattr(analyst_accounts.subprocess, "run", fake.run)
    monkeypatch.setattr(analyst_accounts, "_local_uid", fake.accounts.get)
    monkeypatch.setattr(analyst_accounts, "HOME_ROOT", str(tmp_path / "home"))
    monkeypatch.setattr(analyst_accounts.pwd, "getpwall", lambda: [
        _Account(name, uid) for name, uid in fake.accounts.items()])
    monkeypatch.setattr(analyst_accounts.pwd, "getpwnam", lambda name: _Account(name, fake.accounts[name]))
    monkeypatch.setattr(analyst_accounts, "_local_groups", lambda name: [(name, fake.accounts[name])]
                        if name in fake.accounts else [])
    settings = tmp_path / "analysts.json"
    return fake, settings, Path(analyst_accounts.ANALYSTS_SSHD_FILE)


def test_the_program_makes_accounts_writes_the_rule_and_reloads_sshd_once(vm):
    fake, settings, rule = vm
    settings.write_text(json.dumps(_settings("analyst", "jbloggs")))
    assert analyst_accounts.apply_analysts(str(settings)) == 0
    assert set(fake.accounts) == {"analyst", "jbloggs"}
    assert "AllowUsers trustadmin analyst@10.0.0.4 jbloggs@10.0.0.4" in rule.read_text()
    assert ["systemctl", "try-reload-or-restart", "ssh.service"] in fake.commands
    fake.commands.clear()
    assert analyst_accounts.apply_analysts(str(settings)) == 0
    assert fake.commands == [], "nothing changed, so nothing is made or reloaded"
    settings.write_text(json.dumps(_settings("analyst")))
    assert analyst_accounts.apply_analysts(str(settings)) == 0
    assert "jbloggs" not in rule.read_text()


def test_an_account_adduser_cannot_make_is_left_out_and_the_others_get_in(vm):
    fake, settings, rule = vm
    fake.failing_adduser = {"jbloggs"}
    settings.write_text(json.dumps(_settings("analyst", "jbloggs")))
    assert analyst_accounts.apply_analysts(str(settings)) == 0
    assert "AllowUsers trustadmin analyst@10.0.0.4\n" in rule.read_text()


def test_a_rule_sshd_refuses_is_taken_back(vm):
    fake, settings, rule = vm
    settings.write_text(json.dumps(_settings("analyst")))
    assert analyst_accounts.apply_analysts(str(settings)) == 0
    kept = rule.read_text()
    fake.sshd_ok = False
    fake.commands.clear()
    settings.write_text(json.dumps(_settings("analyst", "jbloggs")))
    assert analyst_accounts.apply_analysts(str(settings)) == 1
    assert rule.read_text() == kept
    assert ["systemctl", "try-reload-or-restart", "ssh.service"] not in fake.commands


# --- Accounts on a rebuilt VM: /home is kept on the data disk, the accounts are made again -------

def test_an_account_made_again_takes_back_its_kept_homes_number() -> None:
    homes = {"jbloggs": (1004, 1004), "asmith": (1002, 1002)}
    assert analyst_accounts.number_for("jbloggs", homes, taken={1000}) == 1004


def test_a_new_account_never_gets_a_number_a_kept_home_has() -> None:
    # asmith has not signed in again since the rebuild: her home is still 1001's. A new analyst
    # given 1001 would own her files.
    homes = {"asmith": (1001, 1001)}
    assert analyst_accounts.number_for("newcomer", homes, taken={1000}) == 1002


def test_a_kept_home_with_a_system_or_taken_number_is_not_adopted() -> None:
    assert analyst_accounts.number_for("jbloggs", {"jbloggs": (0, 0)}, taken={1000}) == 1001
    assert analyst_accounts.number_for("jbloggs", {"jbloggs": (1000, 1000)}, taken={1000}) == 1001


def test_adding_an_account_whose_kept_number_is_taken_gives_it_the_files_by_name(vm, monkeypatch) -> None:
    fake, _settings_file, _rule = vm
    fake.accounts.update({"trustadmin": 1000, "other": 1003})
    monkeypatch.setattr(analyst_accounts, "kept_homes", lambda _root: {"jbloggs": (1003, 1003)})
    assert analyst_accounts.add_analyst("jbloggs") == 0
    assert fake.accounts["jbloggs"] == 1001
    home = f"{analyst_accounts.HOME_ROOT}/jbloggs"
    assert ["chown", "-R", "-h", "--from=1003", "1001", home] in fake.commands
    assert ["chown", "-R", "-h", "--from=:1003", ":1001", home] in fake.commands


def test_adding_an_account_with_its_kept_number_free_changes_no_files(vm, monkeypatch) -> None:
    fake, _settings_file, _rule = vm
    fake.accounts.update({"trustadmin": 1000})
    monkeypatch.setattr(analyst_accounts, "kept_homes", lambda _root: {"jbloggs": (1003, 1003)})
    assert analyst_accounts.add_analyst("jbloggs") == 0
    assert fake.accounts["jbloggs"] == 1003
    assert [command for command in fake.commands if command[0] == "chown"] == []


def test_the_hub_makes_accounts_with_the_same_program() -> None:
    config = (REPO / "blueprints/analytics/jupyterhub_config.py.j2").read_text()
    assert 'add_user_cmd = ["/usr/local/sbin/analytics-analysts", "--add"]' in config


def test_a_name_adduser_would_refuse_is_not_added(vm) -> None:
    fake, _settings_file, _rule = vm
    assert analyst_accounts.add_analyst("Root;id") == 2
    assert fake.commands == []
