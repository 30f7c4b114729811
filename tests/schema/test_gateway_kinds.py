"""Every gateway kind gives the analysts it lists a working path (validation/analyst_checks.py).

With Azure Bastion the analytics VMs hold each SSH user's account and the path to JupyterLab is
an SSH tunnel through Bastion, which needs the Standard tier (JupyterHub has no sign-in without
the self-hosted gateway). With a self-hosted gateway an SSH
user is one of the accounts the identity map gives, so their SSH and hub accounts are one.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from cli.main import main
from tests.conftest import EXAMPLE, REPO

BAD = Path(__file__).parent / "bad"
BASTION_STACK = REPO / "stacks" / "bastion-single-analyst.yaml"
BASIC_WITH_ANALYSTS = BAD / "bastion-basic-with-analysts.yaml"


def _validate(tmp_path: Path, document: dict[str, Any], capsys) -> tuple[int, str]:
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    code = main(["validate", str(path)])
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, err


def _problem_line(err: str, field: str) -> str:
    [line] = [line for line in err.splitlines() if f": {field}: " in line]
    return line


def test_bastion_basic_with_analysts_is_refused_naming_the_tier_and_the_analysts(capsys):
    assert main(["validate", str(BASIC_WITH_ANALYSTS)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert "1 problem found" in err
    line = _problem_line(err, "roles.gateway.bastion_sku")
    assert "(got 'Basic')" in line and "sjones" in line and "roles.gateway.ssh_users" in line
    hint = err.split(line, 1)[1].splitlines()[1]
    assert "hint:" in hint and "bastion_sku: Standard" in hint


def test_the_same_analysts_with_bastion_standard_are_accepted(tmp_path, capsys):
    document = yaml.safe_load(BASIC_WITH_ANALYSTS.read_text())
    document["roles"]["gateway"]["bastion_sku"] = "Standard"
    code, err = _validate(tmp_path, document, capsys)
    assert code == 0, err


def test_bastion_analysts_without_analytics_vms_are_refused(tmp_path, capsys):
    document = yaml.safe_load(BASIC_WITH_ANALYSTS.read_text())
    document["roles"]["gateway"]["bastion_sku"] = "Standard"
    del document["roles"]["analytics"]
    code, err = _validate(tmp_path, document, capsys)
    assert code == 2
    line = _problem_line(err, "roles.gateway.ssh_users")
    assert "no roles.analytics" in line


def test_a_self_hosted_ssh_user_outside_the_identity_map_is_refused_naming_both_fields(tmp_path, capsys):
    document = yaml.safe_load(EXAMPLE.read_text())
    key = document["admin"]["ssh_public_keys"][0]
    document["roles"]["gateway"]["ssh_users"] = [{"name": "jbloggs", "ssh_public_key": key},
                                                 {"name": "nobodymapped", "ssh_public_key": key}]
    code, err = _validate(tmp_path, document, capsys)
    assert code == 2
    line = _problem_line(err, "roles.gateway.ssh_users[1].name")
    assert "(got 'nobodymapped')" in line and "roles.gateway.identity.accounts" in line
    assert ": roles.gateway.ssh_users[0]" not in err
    mapped = copy.deepcopy(document)
    mapped["roles"]["gateway"]["identity"]["accounts"].append({"upn": "nobody.mapped@example.nhs.uk",
                                                               "account": "nobodymapped"})
    code, err = _validate(tmp_path, mapped, capsys)
    assert code == 0, err


def test_the_shipped_bastion_stack_gives_its_analyst_an_account_and_a_tunnel(capsys, plan_cache):
    assert main(["validate", str(BASTION_STACK)]) == 0, capsys.readouterr().err
    document = yaml.safe_load(BASTION_STACK.read_text())
    gateway = document["roles"]["gateway"]
    assert gateway["kind"] == "bastion"
    assert [user["name"] for user in gateway["ssh_users"]] == ["sjones"]
    assert gateway["ssh_users"][0]["name"] != document["admin"]["username"]
    assert gateway["bastion_sku"] == "Standard"
    text = BASTION_STACK.read_text()
    assert "forwarding port 8000" not in text, "JupyterHub refuses every sign-in without the self-hosted gateway"
    assert "az network bastion tunnel" in text and "-L 8888:127.0.0.1:8888" in text
