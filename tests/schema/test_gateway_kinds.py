"""Every gateway kind promises only what it gives: with Azure Bastion no jump host exists and no
VM creates analysts' accounts, so a Bastion stack that lists jump-host users is refused, naming
the fields and what would work; the shipped Bastion stack, which promises neither, is valid.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from cli.main import main
from tests.conftest import REPO

BAD = Path(__file__).parent / "bad"
BASTION_STACK = REPO / "stacks" / "bastion-single-analyst.yaml"


def test_bastion_with_jump_host_users_is_refused_naming_both_fields_and_what_works(capsys):
    bad = BAD / "bastion-with-jump-users.yaml"
    assert main(["validate", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert "1 problem found" in err
    [line] = [line for line in err.splitlines() if ": roles.gateway.ssh_users: " in line]
    assert "roles.gateway.kind: bastion" in line and "no jump host" in line
    assert "(got ['sjones'])" in line
    hint = err.split(line, 1)[1].splitlines()[1]
    assert "hint:" in hint and "roles.gateway.kind: self-hosted" in hint and "admin.username" in hint


def test_the_same_users_with_a_self_hosted_gateway_are_accepted(tmp_path, capsys):
    document = yaml.safe_load((BAD / "bastion-with-jump-users.yaml").read_text())
    gateway = document["roles"]["gateway"]
    gateway.update(kind="self-hosted", hostname="analytics.example-community.nhs.uk",
                   identity={"tenant_id": "00000000-0000-4000-8000-000000000001",
                             "client_id": "00000000-0000-4000-8000-000000000002",
                             "allowed_group": "00000000-0000-4000-8000-000000000003"})
    del gateway["bastion_sku"]
    document["network"]["subnets"]["gateway"] = document["network"]["subnets"].pop("bastion")
    path = tmp_path / "self-hosted-with-jump-users.yaml"
    path.write_text(yaml.safe_dump(document))
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err


def test_the_shipped_bastion_stack_promises_only_the_administrators_path(capsys):
    assert main(["validate", str(BASTION_STACK)]) == 0, capsys.readouterr().err
    document = yaml.safe_load(BASTION_STACK.read_text())
    gateway = document["roles"]["gateway"]
    assert gateway["kind"] == "bastion" and not gateway.get("ssh_users")
    # Native-client tunnels, the analyst's only way to a JupyterLab of their own, need Standard.
    assert gateway["bastion_sku"] == "Standard"
    text = BASTION_STACK.read_text()
    assert "forwarding port 8000" not in text, "JupyterHub refuses every sign-in without the self-hosted gateway"
