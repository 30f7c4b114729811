"""Analysts' own SSH accounts, end to end: from home through the jump host (key and one-time
code) to a shell of their own on an analytics VM, never anyone else's, and gone when the stack
drops them.

The module lists two analysts in roles.gateway.ssh_users with keys made here (both names are
accounts of the lab stack's roles.gateway.identity.accounts), applies that stack with `blueprints
lab apply` as `pulumi up` would, and at the end applies the lab's stack again. With Azure Bastion
the same accounts and sshd rule are used from the Bastion subnet: tests/acceptance/test_bastion_path.py
proves that path through the lab's Bastion stand-in, on a Bastion stack's lab.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from blueprints.topology import private_dns_zone
from tests.acceptance.totp_codes import RESET_SSHD_JAIL, Totp

pytestmark = pytest.mark.lab

ANALYST_A = "analyst"
ANALYST_B = "jbloggs"
ANALYSTS_SSHD_FILE = "/etc/ssh/sshd_config.d/30-trust-blueprints-analysts.conf"


def _lab_apply(stack_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", "lab", "apply", str(stack_file)], capture_output=True,
                          text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def public_host(lab) -> str:
    gateway = lab.config["roles"].get("gateway") or {}
    if gateway.get("kind") != "self-hosted" or lab.target != "lab":
        pytest.skip("needs the lab with a self-hosted gateway (Bastion's path: test_bastion_path.py)")
    mapped = {entry["account"] for entry in gateway["identity"].get("accounts", [])}
    if not {ANALYST_A, ANALYST_B} <= mapped:
        pytest.skip(f"the lab stack does not map {ANALYST_A} and {ANALYST_B} in roles.gateway.identity.accounts")
    return gateway["hostname"]


@pytest.fixture(scope="module")
def analytics_vm(lab) -> Any:
    return next(m for m in lab.machines if m.role == "analytics")


@pytest.fixture(scope="module")
def analysts(lab, public_host, gateway_host) -> Iterator[dict[str, Any]]:
    """Two analysts with keys and enrolled codes, applied to the running lab; the lab's own stack
    is applied again afterwards."""
    current = Path(lab.record["stack_file"])
    document = yaml.safe_load(current.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="analyst-ssh-") as work:
        work_dir = Path(work)
        keys = {}
        for name in (ANALYST_A, ANALYST_B, "stray"):
            key = work_dir / name
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
            keys[name] = key
        users = [{"name": name, "ssh_public_key": keys[name].with_suffix(".pub").read_text().strip()}
                 for name in (ANALYST_A, ANALYST_B)]
        document["roles"]["gateway"]["ssh_users"] = users
        both = lab.state_dir / "analyst-ssh-both.yaml"
        both.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        applied = _lab_apply(both)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        totp = {}
        enrolled_here = []
        for name in (ANALYST_A, ANALYST_B):
            secret_file = f"/var/lib/trust-blueprints/totp/{name}"
            if gateway_host.run(f"test -e {secret_file}").rc != 0:
                assert gateway_host.run(f"gateway-totp-enrol {name}").rc == 0
                enrolled_here.append(name)
            totp[name] = Totp(gateway_host.run(f"head -n 1 {secret_file}").stdout.strip())
        askpass = work_dir / "askpass"
        askpass.write_text(f"#!/bin/sh\ncat {work_dir / 'code'}\n")
        askpass.chmod(0o755)
        try:
            yield {"keys": keys, "totp": totp, "work": work_dir, "askpass": askpass, "document": document,
                   "users": users}
        finally:
            restored = _lab_apply(current)
            for name in enrolled_here:
                gateway_host.run(f"rm -f /var/lib/trust-blueprints/totp/{name}")
            gateway_host.run(RESET_SSHD_JAIL)
            assert restored.returncode == 0, restored.stdout + restored.stderr


@pytest.fixture
def clean_sshd_jail(gateway_host) -> Iterator[None]:
    gateway_host.run(RESET_SSHD_JAIL)
    yield
    gateway_host.run(RESET_SSHD_JAIL)


def _through_the_jump_host(lab, public_host: str, analysts: dict[str, Any], jump_as: str, target_user: str,
                           target: str, key: str, command: str = "id -un; id -Gn") -> subprocess.CompletedProcess:
    """From home: the jump host as ``jump_as`` (their key and code), then ``target_user`` on
    ``target`` with the key of ``key``."""
    (analysts["work"] / "code").write_text(analysts["totp"][jump_as].next_code() + "\n")
    common = ["-F", "/dev/null", "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
              "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=15", "-o", "NumberOfPasswordPrompts=1"]
    proxy = " ".join(["ssh", *common, "-i", str(analysts["keys"][jump_as]), "-W", "%h:%p", f"{jump_as}@{public_host}"])
    argv = ["ssh", *common, "-i", str(analysts["keys"][key]), "-o", "PreferredAuthentications=publickey",
            "-o", f"ProxyCommand={proxy}", f"{target_user}@{target}", command]
    env = {**os.environ, "SSH_ASKPASS": str(analysts["askpass"]), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": "none"}
    return lab.client(argv, env=env, input="", timeout=90)


@pytest.mark.usefixtures("clean_sshd_jail")
def test_an_analyst_reaches_a_shell_of_their_own_without_sudo(lab, public_host, analysts, analytics_vm):
    target = f"{analytics_vm.name}.{private_dns_zone(lab.config)}"
    result = _through_the_jump_host(lab, public_host, analysts, ANALYST_A, ANALYST_A, target, ANALYST_A)
    assert result.returncode == 0, result.stderr
    whoami, groups = result.stdout.strip().splitlines()[-2:]
    assert whoami == ANALYST_A
    assert not {"sudo", "adm", "root", "wheel"} & set(groups.split())


@pytest.mark.usefixtures("clean_sshd_jail")
def test_an_analysts_key_does_not_open_another_analysts_account(lab, public_host, analysts, analytics_vm):
    target = f"{analytics_vm.name}.{private_dns_zone(lab.config)}"
    result = _through_the_jump_host(lab, public_host, analysts, ANALYST_A, ANALYST_B, target, ANALYST_A)
    assert result.returncode != 0
    assert f"{ANALYST_B}@{target}: Permission denied" in result.stderr, result.stderr


@pytest.mark.usefixtures("clean_sshd_jail")
def test_a_key_the_analyst_adds_to_their_own_home_is_not_accepted(lab, public_host, analysts, analytics_vm,
                                                                   analytics_host):
    target = f"{analytics_vm.name}.{private_dns_zone(lab.config)}"
    stray = analysts["keys"]["stray"].with_suffix(".pub").read_text().strip()
    home = analytics_host.run(f"getent passwd {ANALYST_A} | cut -d: -f6").stdout.strip()
    analytics_host.run(f"install -d -o {ANALYST_A} -m 0700 {home}/.ssh && "
                       f"printf '%s\\n' '{stray}' > {home}/.ssh/authorized_keys")
    try:
        result = _through_the_jump_host(lab, public_host, analysts, ANALYST_A, ANALYST_A, target, "stray")
    finally:
        analytics_host.run(f"rm -f {home}/.ssh/authorized_keys")
    assert result.returncode != 0
    assert f"{ANALYST_A}@{target}: Permission denied" in result.stderr, result.stderr


def test_an_analysts_key_is_refused_from_anywhere_but_the_gateway(analysts, analytics_host):
    """The same key from the analytics VM itself (not the gateway's address) is refused by AllowUsers."""
    private = analysts["keys"][ANALYST_A].read_text()
    analytics_host.run(f"install -m 0600 /dev/null /root/tb-analyst-key && printf '%s' '{private}' "
                       "> /root/tb-analyst-key")
    try:
        result = analytics_host.run(
            "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
            f"-o IdentitiesOnly=yes -i /root/tb-analyst-key {ANALYST_A}@127.0.0.1 true")
    finally:
        analytics_host.run("rm -f /root/tb-analyst-key")
    assert result.rc != 0
    assert "Permission denied" in result.stderr


def test_the_vm_holds_no_password_and_no_sudo_for_analysts(analysts, analytics_host):
    for name in (ANALYST_A, ANALYST_B):
        shadow = analytics_host.run(f"getent shadow {name}").stdout.split(":")
        assert shadow[1] in ("*", "!", "!*"), f"{name} has a password"
        assert analytics_host.run(f"sudo -l -U {name}").stdout.count("may run") == 0
    rule = analytics_host.file(ANALYSTS_SSHD_FILE).content_string
    assert f"Match User {ANALYST_A},{ANALYST_B}" in rule


@pytest.mark.usefixtures("clean_sshd_jail")
def test_a_removed_analysts_key_stops_working_after_lab_apply(lab, public_host, analysts, analytics_vm,
                                                              analytics_host):
    target = f"{analytics_vm.name}.{private_dns_zone(lab.config)}"
    before = _through_the_jump_host(lab, public_host, analysts, ANALYST_A, ANALYST_B, target, ANALYST_B)
    assert before.returncode == 0, before.stderr
    assert before.stdout.strip().splitlines()[-2] == ANALYST_B
    document = yaml.safe_load(yaml.safe_dump(analysts["document"]))
    document["roles"]["gateway"]["ssh_users"] = [u for u in analysts["users"] if u["name"] == ANALYST_A]
    one = lab.state_dir / "analyst-ssh-one.yaml"
    one.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    applied = _lab_apply(one)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert analytics_host.run(f"test -e /etc/ssh/trust-blueprints-keys/{ANALYST_B}").rc != 0
    assert ANALYST_B not in analytics_host.file(ANALYSTS_SSHD_FILE).content_string
    # The remaining analyst's jump, then B's key for B's account: refused at the analytics VM.
    after = _through_the_jump_host(lab, public_host, analysts, ANALYST_A, ANALYST_B, target, ANALYST_B)
    assert after.returncode != 0
    assert f"{ANALYST_B}@{target}: Permission denied" in after.stderr, after.stderr
    # Their home and work stay on the VM for the trust to keep or remove.
    assert analytics_host.run(f"id {ANALYST_B}").rc == 0
