"""The host hardening every role shares (templates/hardening.sh, docs/hardening.md): every machine
of every stack installs the same program and its packages, runs it early in its first boot, and only
the roles nobody forwards ports through turn forwarding off. What it does is proven in the lab
(tests/lab/machines/test_hardening.py)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from blueprints.cloud_init import HARDENING_SCRIPT, render_user_data, runcmd_steps, written_files
from blueprints.topology import plan_machines
from tests.conftest import STACK_FILES
from validation.stack_config import load_stack

PROGRAM = "/usr/local/sbin/trust-blueprints-harden"
PACKAGES = {"libpam-tmpdir", "libpam-passwdqc", "debsums", "apt-show-versions", "needrestart", "apt-listchanges",
            "sysstat", "acct", "auditd", "chkrootkit"}
# Roles whose users forward ports: the gateway (jump host) and analytics (JupyterLab over SSH).
FORWARDING_ROLES = {"gateway", "analytics"}
# Steps that start the role's services; hardening comes before each.
SERVICE_STARTS = ("systemctl enable --now", "systemctl restart", "a2ensite", "gitolite setup")


@pytest.mark.parametrize("stack", STACK_FILES, ids=lambda path: path.stem)
def test_every_machine_installs_and_runs_the_hardening_early(stack):
    config = load_stack(stack)
    for machine in plan_machines(config):
        document = yaml.safe_load(render_user_data(config, machine))
        assert written_files(document)[PROGRAM] == HARDENING_SCRIPT.read_text(encoding="utf-8"), machine.name
        assert set(document["packages"]) >= PACKAGES, (machine.name, PACKAGES - set(document["packages"]))
        steps = runcmd_steps(document)
        [index] = [i for i, step in enumerate(steps) if step.startswith(PROGRAM)]
        assert steps[index].endswith("|| exit 1"), "a failed hardening stops the boot"
        assert index <= 1, f"{machine.name} hardens after {steps[:index]}"
        starts = [i for i, step in enumerate(steps) if any(start in step for start in SERVICE_STARTS)]
        assert all(index < i for i in starts), machine.name
        assert ("--no-ssh-forwarding" in steps[index]) == (machine.role not in FORWARDING_ROLES), machine.name


def test_the_program_is_valid_shell_and_stops_at_the_first_failure():
    text = HARDENING_SCRIPT.read_text(encoding="utf-8")
    assert text.startswith("#!/bin/sh\n") and "\nset -eu\n" in text
    subprocess.run(["sh", "-n", str(HARDENING_SCRIPT)], check=True)


def test_kernel_and_audit_settings_are_the_documented_ones():
    text = HARDENING_SCRIPT.read_text(encoding="utf-8")
    sysctl = text.split("<<'SYSCTL'\n", 1)[1].split("\nSYSCTL\n", 1)[0]
    settings = dict(line.split(" = ") for line in sysctl.splitlines())
    assert settings["kernel.yama.ptrace_scope"] == "1"
    assert settings["kernel.unprivileged_bpf_disabled"] == "1"
    assert settings["fs.suid_dumpable"] == "0"
    assert settings["net.ipv4.conf.all.accept_redirects"] == "0"
    rules = text.split("<<'AUDIT'\n", 1)[1].split("\nAUDIT\n", 1)[0].splitlines()
    # Every command run as root by a person who signed in, on both syscall tables.
    assert sum("-S execve -F euid=0 -F auid>=1000" in rule for rule in rules) == 2
