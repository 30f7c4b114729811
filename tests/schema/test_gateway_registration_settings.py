"""roles.gateway.identity: a client id a person copied from their registration, or a registration
the program makes (registration), never both and never neither; each mistake named, exit 2."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.main import main
from tests.conftest import EXAMPLE, REPO


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


def _validate(tmp_path: Path, document: dict[str, Any], capsys) -> tuple[int, str]:
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    code = main(["validate", str(path)])
    _out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, err


def _registered(example: dict[str, Any], **registration: Any) -> dict[str, Any]:
    document = copy.deepcopy(example)
    identity = document["roles"]["gateway"]["identity"]
    del identity["client_id"]
    identity["registration"] = registration
    return document


def test_a_registration_without_a_client_id_is_accepted(example, tmp_path, capsys):
    code, err = _validate(tmp_path, _registered(example), capsys)
    assert code == 0, err


def test_a_client_id_beside_a_registration_is_refused_naming_both(example, tmp_path, capsys):
    document = _registered(example)
    document["roles"]["gateway"]["identity"]["client_id"] = "00000000-0000-4000-8000-000000000002"
    code, err = _validate(tmp_path, document, capsys)
    assert code == 2
    assert "roles.gateway.identity.client_id: is set, but registration creates a new app registration" in err
    assert "(got '00000000-0000-4000-8000-000000000002')" in err


def test_neither_a_client_id_nor_a_registration_is_refused_naming_client_id(example, tmp_path, capsys):
    document = copy.deepcopy(example)
    del document["roles"]["gateway"]["identity"]["client_id"]
    code, err = _validate(tmp_path, document, capsys)
    assert code == 2
    assert "roles.gateway.identity.client_id: is required unless registration is given" in err
    assert "registration: {}" in err


@pytest.mark.parametrize("days", [0, 6, 731, "six months", 180.5])
def test_a_secret_lifetime_outside_a_week_to_two_years_is_refused(example, tmp_path, capsys, days):
    code, err = _validate(tmp_path, _registered(example, client_secret_days=days), capsys)
    assert code == 2
    assert "roles.gateway.identity.registration.client_secret_days" in err


def test_an_unknown_registration_key_is_named(example, tmp_path, capsys):
    code, err = _validate(tmp_path, _registered(example, client_id="x"), capsys)
    assert code == 2
    assert "roles.gateway.identity.registration.client_id" in err


def test_a_registration_needs_entras_own_groups_claim(example, tmp_path, capsys):
    document = _registered(example)
    document["roles"]["gateway"]["identity"]["groups_claim"] = "roles"
    code, err = _validate(tmp_path, document, capsys)
    assert code == 2
    assert "roles.gateway.identity.groups_claim: must be 'groups' with registration" in err


def test_a_registration_with_bastion_is_refused(tmp_path, capsys):
    document = yaml.safe_load((REPO / "stacks" / "bastion-single-analyst.yaml").read_text(encoding="utf-8"))
    document["roles"]["gateway"]["identity"] = {"tenant_id": "00000000-0000-4000-8000-000000000001",
                                                "allowed_group": "00000000-0000-4000-8000-000000000003",
                                                "registration": {}}
    code, err = _validate(tmp_path, document, capsys)
    assert code == 2
    assert "roles.gateway.identity.registration: has nothing to sign in to with roles.gateway.kind: bastion" in err
