"""The boot steps every role shares (templates/base.yaml.j2): secrets, the CA, waiting for the mirror."""

from __future__ import annotations

import re
import subprocess

import yaml

from blueprints.cloud_init import render_user_data
from blueprints.secrets import VAULT_NAME_TAG, secret_files
from blueprints.topology import plan_machines


def _bootcmd(config, machine) -> list[str]:
    return yaml.safe_load(render_user_data(config, machine))["bootcmd"]


def test_every_machine_trusts_the_environment_ca(example_config):
    for machine in plan_machines(example_config):
        steps = "\n".join(_bootcmd(example_config, machine))
        assert "/etc/trust-blueprints/secrets/ca.crt /usr/local/share/ca-certificates/" in steps
        assert "update-ca-certificates" in steps


def _fetch_step(config, machine) -> str:
    return next(step for step in _bootcmd(config, machine) if "<<'FETCH'" in step)


def test_secrets_come_from_the_environment_key_vault_everywhere(example_config):
    # No platform test: the lab takes the Azure path too (lab/platform_services.py).
    for machine in plan_machines(example_config):
        fetch = _fetch_step(example_config, machine)
        assert "cloud-init query platform" not in fetch
        pairs = " ".join(f"{file} {secret}" for file, secret in secret_files(machine))
        # The vault's name comes from the VM's tag, looked up in the instance metadata.
        assert f"python3 - {VAULT_NAME_TAG} {pairs} <<'FETCH'" in fetch
        script = fetch.split("<<'FETCH' || exit 1\n", 1)[1].split("\nFETCH\n", 1)[0]
        compile(script, "fetch-secrets", "exec")
        assert "os.path.exists(" in script  # never overwrites a file already there
        assert "/instance/compute/tagsList" in script


def test_only_root_may_reach_the_platform_endpoints(example_config):
    for machine in plan_machines(example_config):
        first = _bootcmd(example_config, machine)[0]
        assert "ip daddr 169.254.169.254 meta skuid != { 0, syslog } reject" in first
        assert "ip daddr 168.63.129.16 tcp dport != 53 meta skuid != 0 reject" in first
        fetch_index = _bootcmd(example_config, machine).index(_fetch_step(example_config, machine))
        assert fetch_index > 0, "the rule must be in place before anything else runs"


def test_key_vault_names_are_valid_and_per_machine_where_needed(example_config):
    machines = plan_machines(example_config)
    for machine in machines:
        for _, secret in secret_files(machine):
            assert re.fullmatch(r"[0-9A-Za-z-]{1,127}", secret), secret
        names = dict(secret_files(machine))
        assert names["ca.crt"] == "ca-crt"
        assert names["tls.key"] == f"{machine.name}-tls-key"


def test_azure_fetches_exactly_the_files_the_lab_writes(example_config, tmp_path, monkeypatch):
    # The lab and the Azure boot step read one table: the same file names on both.
    import shutil
    from dataclasses import replace

    import pytest

    from blueprints.roles import registered, role
    from blueprints.secrets import SecretSpec
    from lab import secrets as lab_secrets

    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    git = replace(role("git_server"), secrets=(SecretSpec("git-deploy-key", "ssh-ed25519"),
                                               SecretSpec("git-web-session", "token")))
    ca = lab_secrets.LabCertificateAuthority(tmp_path / "ca", "t")
    ca.ensure()
    with registered(git):
        for machine in plan_machines(example_config):
            written = lab_secrets.machine_secret_files(example_config, machine, ca, tmp_path)
            assert sorted(written) == sorted(file for file, _ in secret_files(machine)), machine.name


def test_machines_wait_for_the_mirror_except_the_mirror(example_config):
    for machine in plan_machines(example_config):
        steps = "\n".join(_bootcmd(example_config, machine))
        waits = "mirror.exnhs-dev.internal:3142" in steps
        assert waits == (machine.role != "package_mirror"), machine.name
        if waits:
            assert "did not answer within" in steps and "limit=900" in steps


def test_boot_steps_are_valid_shell(example_config):
    for machine in plan_machines(example_config):
        for step in _bootcmd(example_config, machine):
            result = subprocess.run(["sh", "-n"], input=step, capture_output=True, text=True)
            assert result.returncode == 0, f"{machine.name}: {result.stderr}"
