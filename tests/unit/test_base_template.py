"""The boot steps every role shares (templates/base.yaml.j2): secrets, the CA, waiting for the mirror."""

from __future__ import annotations

import subprocess

import yaml

from blueprints.cloud_init import render_user_data
from blueprints.topology import plan_machines
from modules.naming import Naming


def _bootcmd(config, machine) -> list[str]:
    return yaml.safe_load(render_user_data(config, machine))["bootcmd"]


def test_every_machine_trusts_the_environment_ca(example_config):
    for machine in plan_machines(example_config):
        steps = "\n".join(_bootcmd(example_config, machine))
        assert "/etc/trust-blueprints/secrets/ca.crt /usr/local/share/ca-certificates/" in steps
        assert "update-ca-certificates" in steps


def test_secrets_come_from_the_environment_key_vault_on_azure_only(example_config):
    vault = Naming("exnhs", "dev", "uksouth").name("kv")
    for machine in plan_machines(example_config):
        fetch = _bootcmd(example_config, machine)[0]
        assert '"$(cloud-init query platform 2>/dev/null)" = azure' in fetch
        assert f"python3 - {vault} {machine.name} <<'FETCH'" in fetch
        script = fetch.split("<<'FETCH'\n", 1)[1].split("\nFETCH\n", 1)[0]
        compile(script, "fetch-secrets", "exec")
        assert "os.path.exists(path)" in script  # never overwrites a file already there


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
