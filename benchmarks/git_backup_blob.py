"""Off-VM backup figures on this host: the Git server's backup code sending a ~50 MB repository to
Blob storage and fetching it back, through Debian's rclone, with Azurite as the Blob endpoint.

Needs `make azurite` and rclone (`make host-deps`); no root, no lab:

    .venv/bin/python benchmarks/git_backup_blob.py [--runs 3]

Azurite runs on loopback, so the figures are the cost of bundling, rclone and the checks, not of
the network to Azure; they are an upper bound on what the VM adds to a nightly run on top of the
transfer itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from blueprints.git_server.server_commands import (  # noqa: E402
    BackupSettings,
    RemoteGenerations,
    verified_manifest,
    write_generation,
)

AZURITE_BLOB = REPO / "tests" / "emulator" / "node_modules" / ".bin" / "azurite-blob"


def make_history(root: Path) -> Path:
    """1,000 files of 25 KiB random bytes, then 20 commits rewriting 50 each: ~50 MB, incompressible."""
    identity = ["-c", "user.name=Benchmark", "-c", "user.email=bench@example.nhs.uk"]
    checkout = root / "checkout"

    def git(*args: str) -> None:
        subprocess.run(["git", *identity, "-C", str(checkout), *args], check=True, capture_output=True)

    checkout.mkdir(parents=True)
    git("init", "-q", "-b", "main")
    for index in range(1000):
        folder = checkout / f"dir{index // 100:02d}"
        folder.mkdir(exist_ok=True)
        (folder / f"file{index:04d}.bin").write_bytes(os.urandom(25 * 1024))
    git("add", "-A")
    git("commit", "-qm", "Initial import")
    for batch in range(20):
        for index in range(batch * 50, batch * 50 + 50):
            (checkout / f"dir{index // 100:02d}" / f"file{index:04d}.bin").write_bytes(os.urandom(25 * 1024))
        git("commit", "-qam", f"Update batch {batch}")
    bare = root / "repositories" / "bench-history.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(checkout), str(bare)], check=True)
    return bare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not AZURITE_BLOB.exists() or shutil.which("rclone") is None:
        print("needs Azurite (make azurite) and rclone (make host-deps)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="git-backup-blob-") as scratch:
        root = Path(scratch)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        azurite = subprocess.Popen([str(AZURITE_BLOB), "--blobHost", "127.0.0.1", "--blobPort", str(port),
                                    "--location", str(root / "azurite"), "--silent", "--disableTelemetry"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            config = root / "rclone.conf"
            config.write_text(f"[git-backup]\ntype = azureblob\nuse_emulator = true\n"
                              f"endpoint = http://127.0.0.1:{port}/devstoreaccount1\n")
            remote = "git-backup:git-server-backups"
            subprocess.run(["rclone", "--config", str(config), "mkdir", remote], check=True)
            bare = make_history(root)
            size = sum(path.stat().st_size for path in bare.rglob("*") if path.is_file())
            print(f"repository: 1,000 files, 21 commits, {size / 2**20:.1f} MiB on disk")
            (root / "local").mkdir()
            (root / "blob").mkdir()
            local_only = BackupSettings(root / "local", args.runs, None)
            with_blob = BackupSettings(root / "blob", args.runs, RemoteGenerations(remote, config))
            night = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
            for run in range(args.runs):
                when = night + timedelta(days=run)
                name = when.strftime("%Y%m%dT%H%M%SZ")
                started = time.perf_counter()
                write_generation(local_only, {"bench-history": bare}, when)
                bundles = time.perf_counter() - started
                started = time.perf_counter()
                write_generation(with_blob, {"bench-history": bare}, when)
                both = time.perf_counter() - started
                bundle = root / "blob" / name / "bench-history.bundle"
                started = time.perf_counter()
                fetched = with_blob.remote.fetch(name, root / "fetched")
                verified_manifest(fetched, name)
                fetch = time.perf_counter() - started
                print(f"run {run + 1}: bundle {bundle.stat().st_size / 2**20:.1f} MiB; backup to the directory "
                      f"only {bundles:5.2f} s; with upload, check and prune {both:5.2f} s; "
                      f"fetch and sha256 check {fetch:5.2f} s")
        finally:
            azurite.terminate()
            azurite.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
