"""The Git server's off-VM backups, run for real: git bundles, Debian's rclone, and Azurite as Blob storage.

The code under test is the VM's own (blueprints/git_server/server_commands.py), on repositories
made with real git. Only the rclone configuration differs from Azure: Azurite's account key
instead of the VM's managed identity.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from blueprints.git_server import server_commands
from blueprints.git_server.server_commands import BackupSettings, RemoteGenerations, verified_manifest, write_generation

pytestmark = pytest.mark.azurite

NIGHT = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)


def git(*arguments: str, cwd: Path) -> str:
    return subprocess.run(["git", *arguments], cwd=cwd, check=True, capture_output=True, text=True).stdout


def refs(repository: Path) -> dict[str, str]:
    listing = git("for-each-ref", "--format=%(objectname) %(refname)", cwd=repository)
    return {name: sha for sha, name in (line.split(" ", 1) for line in listing.splitlines())}


@pytest.fixture
def repositories(tmp_path: Path) -> dict[str, Path]:
    """Bare repositories as gitolite keeps them: one with branches and a tag, one nested, one empty."""
    root = tmp_path / "repositories"
    work = tmp_path / "work"
    found = {}
    for name, commits in (("waiting-times", 3), ("team/analysis", 2), ("empty", 0)):
        bare = root / f"{name}.git"
        bare.mkdir(parents=True)
        git("init", "--quiet", "--bare", "--initial-branch", "main", str(bare), cwd=tmp_path)
        if commits:
            checkout = work / name
            git("clone", "--quiet", str(bare), str(checkout), cwd=tmp_path)
            for number in range(commits):
                (checkout / f"file-{number}.txt").write_text(f"{name} {number}\n" * 200)
                git("add", "--all", cwd=checkout)
                git("-c", "user.name=Analyst", "-c", "user.email=a@example.nhs.uk", "commit", "--quiet",
                    "-m", f"Change {number}", cwd=checkout)
            git("tag", "v1", cwd=checkout)
            git("push", "--quiet", "origin", "main", "v1", "main:feature/draft", cwd=checkout)
        found[name] = bare
    return found


def settings(tmp_path: Path, remote: str, config: Path, generations: int = 2) -> BackupSettings:
    directory = tmp_path / "backups"
    directory.mkdir(exist_ok=True)
    return BackupSettings(directory, generations, RemoteGenerations(remote, config))


def blobs(remote: str, config: Path) -> list[str]:
    listing = subprocess.run(["rclone", "--config", str(config), "lsf", "-R", "--files-only", remote],
                             check=True, capture_output=True, text=True).stdout
    return sorted(listing.splitlines())


def test_each_generation_goes_to_blob_and_only_the_newest_n_stay(tmp_path, blob_container, repositories):
    remote, config = blob_container
    backup = settings(tmp_path, remote, config, generations=2)
    summaries = [write_generation(backup, repositories, NIGHT + timedelta(days=day)) for day in range(3)]
    assert "1 sent to" in summaries[-1] and "1 old deleted there" in summaries[-1]
    assert backup.remote.names() == ["20261125T013000Z", "20261126T013000Z"]
    assert sorted(path.name for path in backup.directory.iterdir()) == ["20261125T013000Z", "20261126T013000Z"]
    # Every file of a generation is in the container, nested repositories included, and nothing else.
    assert blobs(remote, config) == sorted(
        f"{generation}/{name}" for generation in ("20261125T013000Z", "20261126T013000Z")
        for name in ("manifest.json", "team/analysis.bundle", "waiting-times.bundle"))


def test_a_generation_fetched_from_blob_rebuilds_every_ref(tmp_path, blob_container, repositories):
    remote, config = blob_container
    backup = settings(tmp_path, remote, config)
    write_generation(backup, repositories, NIGHT)
    original = {name: refs(path) for name, path in repositories.items()}
    # The VM is lost: nothing of the directory is left; a new VM fetches from Blob.
    subprocess.run(["rm", "-rf", str(backup.directory)], check=True)
    fetched = backup.remote.fetch("20261124T013000Z", tmp_path / "fetched")
    manifest = verified_manifest(fetched, "20261124T013000Z")
    assert sorted(manifest) == ["empty", "team/analysis", "waiting-times"]
    for name, entry in manifest.items():
        assert entry["refs"] == original[name]
        rebuilt = tmp_path / "rebuilt" / f"{name}.git"
        rebuilt.mkdir(parents=True)
        git("init", "--quiet", "--bare", str(rebuilt), cwd=tmp_path)
        if entry.get("bundle"):
            git("fetch", "--quiet", str(fetched / entry["bundle"]), "+refs/*:refs/*", cwd=rebuilt)
        assert refs(rebuilt) == original[name]
    assert original["waiting-times"]["refs/tags/v1"] == original["waiting-times"]["refs/heads/main"]


def test_a_bundle_changed_in_blob_is_refused_before_any_restore(tmp_path, blob_container, repositories):
    remote, config = blob_container
    backup = settings(tmp_path, remote, config)
    write_generation(backup, repositories, NIGHT)
    forged = tmp_path / "forged.bundle"
    forged.write_bytes(b"# v2 git bundle\nnot what was backed up\n")
    subprocess.run(["rclone", "--config", str(config), "copyto", str(forged),
                    f"{remote}/20261124T013000Z/waiting-times.bundle"], check=True)
    fetched = backup.remote.fetch("20261124T013000Z", tmp_path / "fetched")
    with pytest.raises(RuntimeError, match=r"waiting-times.*does not match its recorded sha256"):
        verified_manifest(fetched, "20261124T013000Z")


def test_an_upload_without_its_manifest_does_not_count_and_is_cleared(tmp_path, blob_container, repositories):
    remote, config = blob_container
    backup = settings(tmp_path, remote, config, generations=1)
    # An upload cut off before its manifest, the night before a complete one.
    unfinished = tmp_path / "20261123T013000Z"
    unfinished.mkdir()
    (unfinished / "waiting-times.bundle").write_bytes(b"part")
    subprocess.run(["rclone", "--config", str(config), "copy", str(unfinished), f"{remote}/20261123T013000Z"],
                   check=True)
    assert backup.remote.names() == []
    write_generation(backup, repositories, NIGHT)
    assert backup.remote.names() == ["20261124T013000Z"]
    assert not [name for name in blobs(remote, config) if name.startswith("20261123T013000Z/")]


def test_a_night_the_upload_fails_is_sent_the_next_night(tmp_path, blob_container, repositories):
    remote, config = blob_container
    broken = tmp_path / "broken.conf"
    broken.write_text("[another-remote]\ntype = azureblob\nuse_emulator = true\n")
    with pytest.raises(RuntimeError, match="rclone"):
        write_generation(settings(tmp_path, remote, broken), repositories, NIGHT)
    backup = settings(tmp_path, remote, config)
    assert [path.name for path in backup.directory.iterdir()] == ["20261124T013000Z"]  # kept on the VM
    summary = write_generation(backup, repositories, NIGHT + timedelta(days=1))
    assert "2 sent to" in summary
    assert backup.remote.names() == ["20261124T013000Z", "20261125T013000Z"]


def test_restore_lists_generations_on_the_vm_and_in_blob(tmp_path, blob_container, repositories, monkeypatch, capsys):
    remote, config = blob_container
    backup = settings(tmp_path, remote, config, generations=2)
    write_generation(backup, repositories, NIGHT)
    write_generation(backup, repositories, NIGHT + timedelta(days=1))
    subprocess.run(["rm", "-rf", str(backup.directory / "20261124T013000Z")], check=True)
    written = tmp_path / "git-server-backup.json"
    written.write_text(json.dumps({"directory": str(backup.directory), "generations": 2, "remote": remote,
                                   "rclone_config": str(config)}))
    monkeypatch.setattr(server_commands, "BACKUP_SETTINGS", written)
    assert server_commands.restore(["--list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"20261124T013000Z  {remote}",
        f"20261125T013000Z  {backup.directory}, {remote}",
    ]


def test_restore_still_uses_the_vms_generations_when_the_store_cannot_be_reached(
        tmp_path, blob_container, repositories, monkeypatch, capsys):
    remote, config = blob_container
    backup = settings(tmp_path, remote, config)
    write_generation(backup, repositories, NIGHT)
    unreachable = tmp_path / "unreachable.conf"
    unreachable.write_text("[another-remote]\ntype = azureblob\nuse_emulator = true\n")
    written = tmp_path / "git-server-backup.json"
    written.write_text(json.dumps({"directory": str(backup.directory), "generations": 2, "remote": remote,
                                   "rclone_config": str(unreachable)}))
    monkeypatch.setattr(server_commands, "BACKUP_SETTINGS", written)
    assert server_commands.restore(["--list"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"20261124T013000Z  {backup.directory}"]
    assert f"cannot list {remote}" in captured.err
    with pytest.raises(RuntimeError, match="rclone"):
        server_commands.restore(["--list", "--from-remote"])
