"""analytics-ingress, the program that keeps a read-only copy of the airlock's ingress on a reading VM,
run offline: its settings as the stack renders them, the refusals, and a real `rclone sync` (a local
remote standing in for the container) leaving root's read-only files and nothing the source dropped."""

from __future__ import annotations

import copy
import json
import shutil
import stat
from pathlib import Path

import pytest

from blueprints.airlock_settings import AIRLOCK_ACCOUNT_TAG, INGRESS_CONTAINER, INGRESS_FOLDER
from blueprints.analytics import ingress_copy as program
from blueprints.topology import plan_machines
from blueprints.vm_settings import document_files, settings_document
from tests.conftest import REPO
from validation.stack_config import load_stack

SETTINGS_PATH = "/etc/trust-blueprints/ingress.json"
ACCOUNT = "stexnhsdevairlock0a1b"


@pytest.fixture(scope="module")
def airlock_stack() -> dict:
    config = copy.deepcopy(load_stack(REPO / "stacks" / "example.yaml"))
    config["network"]["private_client_ranges"] = ["10.20.16.0/22"]
    config["airlock"] = {"data_providers_group": "00000000-0000-4000-8000-000000000004", "readers": ["analytics-1"],
                         "soft_delete_days": 14}
    return config


def _settings(config: dict, machine_name: str) -> dict:
    machine = next(m for m in plan_machines(config) if m.name == machine_name)
    return json.loads(document_files(settings_document(config, machine))[SETTINGS_PATH])


def test_only_the_vms_the_stack_names_read_and_the_settings_feed_the_hook(airlock_stack):
    assert _settings(airlock_stack, "analytics-1") == {"reader": True, "container": INGRESS_CONTAINER,
                                                       "folder": INGRESS_FOLDER, "account_tag": AIRLOCK_ACCOUNT_TAG}
    assert _settings(airlock_stack, "analytics-2")["reader"] is False
    machine = next(m for m in plan_machines(airlock_stack) if m.name == "analytics-1")
    document = json.loads(settings_document(airlock_stack, machine))
    assert "analytics-ingress" in document["hooks"]
    entry = next(e for e in document["files"] if e["path"] == SETTINGS_PATH)
    assert entry["hooks"] == ["analytics-ingress"]


def test_a_stack_without_an_airlock_reads_nothing(airlock_stack):
    config = copy.deepcopy(airlock_stack)
    config["airlock"] = None
    assert not any(_settings(config, name)["reader"] for name in ("analytics-1", "analytics-2"))


def _write(tmp_path: Path, **changes) -> Path:
    settings = {"reader": True, "container": INGRESS_CONTAINER, "folder": "/srv/ingress",
                "account_tag": AIRLOCK_ACCOUNT_TAG, **changes}
    path = tmp_path / "ingress.json"
    path.write_text(json.dumps(settings))
    return path


@pytest.mark.parametrize("changes, named", [
    ({"reader": "yes"}, "reader"),
    ({"folder": "/home/analyst"}, "folder"),
    ({"folder": "/srv/../etc"}, "folder"),
    ({"container": "In gress"}, "container"),
    ({"extra": 1}, "must hold exactly"),
])
def test_a_bad_settings_file_is_refused_naming_the_key(tmp_path, changes, named, capsys):
    path = _write(tmp_path, **changes)
    with pytest.raises(program.SettingsError, match=named):
        program.load_settings(path)
    assert program.main(["apply", str(path)]) == 2
    assert named in capsys.readouterr().err


def test_usage_is_refused_with_exit_2(capsys):
    assert program.main(["copy"]) == 2
    assert "usage: analytics-ingress apply|sync" in capsys.readouterr().err


def test_the_account_comes_from_the_vms_tag_and_a_bad_one_is_refused():
    assert program.account_in_tags([{"name": AIRLOCK_ACCOUNT_TAG, "value": ACCOUNT}], AIRLOCK_ACCOUNT_TAG) == ACCOUNT
    for tags in ([], [{"name": AIRLOCK_ACCOUNT_TAG, "value": "Not An Account"}]):
        with pytest.raises(RuntimeError, match=AIRLOCK_ACCOUNT_TAG):
            program.account_in_tags(tags, AIRLOCK_ACCOUNT_TAG)


def test_a_reader_signs_in_with_its_identity_and_no_key(tmp_path):
    commands: list[list[str]] = []
    done = program.apply(_write(tmp_path), tags=lambda: [{"name": AIRLOCK_ACCOUNT_TAG, "value": ACCOUNT}],
                         run=commands.append, root=tmp_path)
    assert done == f"reads {ACCOUNT}/{INGRESS_CONTAINER} into {tmp_path / 'srv/ingress'}"
    config = tmp_path / str(program.RCLONE_CONFIG).lstrip("/")
    assert config.read_text() == f"[airlock]\ntype = azureblob\naccount = {ACCOUNT}\nuse_msi = true\n"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "srv/ingress").stat().st_mode) == 0o755
    assert commands == [["systemctl", "enable", "--now", "--quiet", program.TIMER]]


def test_a_vm_no_longer_named_stops_and_loses_its_copy(tmp_path):
    (tmp_path / "srv/ingress").mkdir(parents=True)
    (tmp_path / "srv/ingress/extract.csv").write_text("a,b\n")
    config = tmp_path / str(program.RCLONE_CONFIG).lstrip("/")
    config.parent.mkdir(parents=True)
    config.write_text("[airlock]\n")
    commands: list[list[str]] = []
    assert program.apply(_write(tmp_path, reader=False), run=commands.append, root=tmp_path) == "does not read ingress"
    assert not (tmp_path / "srv/ingress").exists() and not config.exists()
    assert commands == [["systemctl", "disable", "--now", "--quiet", program.TIMER]]


@pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is a host package (make host-deps)")
def test_sync_copies_the_container_read_only_and_drops_what_the_source_dropped(tmp_path, monkeypatch):
    # A local remote: "airlock:ingress" is the folder ./ingress, standing in for the container.
    source = tmp_path / "ingress"
    (source / "2026-12").mkdir(parents=True)
    (source / "2026-12" / "extract.csv").write_text("id,value\n1,2\n")
    (source / "readme.txt").write_text("from the warehouse team\n")
    config = tmp_path / str(program.RCLONE_CONFIG).lstrip("/")
    config.parent.mkdir(parents=True)
    config.write_text("[airlock]\ntype = local\n")
    monkeypatch.chdir(tmp_path)
    settings = _write(tmp_path)
    copy_root = tmp_path / "srv/ingress"
    copy_root.mkdir(parents=True)
    (copy_root / "withdrawn.csv").write_text("gone at the source\n")
    assert program.sync(settings, root=tmp_path) == f"copied {INGRESS_CONTAINER} into {copy_root}"
    assert (copy_root / "2026-12" / "extract.csv").read_text() == "id,value\n1,2\n"
    assert not (copy_root / "withdrawn.csv").exists()
    for path in [copy_root, *copy_root.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path
    assert program.sync(_write(tmp_path, reader=False), root=tmp_path) == "not a reader: nothing to copy"
