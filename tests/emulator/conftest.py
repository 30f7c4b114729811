"""Azurite, Microsoft's Azure Storage emulator, as a real Blob endpoint on this host.

`make azurite` installs it (npm, pinned by tests/emulator/package-lock.json); rclone is a host
package (tests/host-packages.txt). Without them these tests are skipped with the reason, except
when BLUEPRINTS_AZURITE_REQUIRED=1 (as `make test` sets), where they fail instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

AZURITE_BLOB = Path(__file__).parent / "node_modules" / ".bin" / "azurite-blob"
# rclone's name for the remote in the Git server's own configuration (server_commands.RCLONE_REMOTE).
REMOTE = "git-backup"


def _missing(what: str) -> None:
    message = f"{what}; install it with `make azurite` and `make host-deps`"
    if os.environ.get("BLUEPRINTS_AZURITE_REQUIRED") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Azurite:
    endpoint: str  # http://127.0.0.1:PORT/devstoreaccount1

    def rclone_config(self, path: Path) -> Path:
        """An rclone configuration for the Git server's remote, signing in with the emulator's account key.

        It differs from the one git-server-apply writes on Azure only in how it signs in (account
        key here, the VM's managed identity there) and where the endpoint is.
        """
        path.write_text(f"[{REMOTE}]\ntype = azureblob\n"
                        # rclone's emulator mode: the emulator's well-known account name and key
                        # (shared-key signatures that Azurite checks), at this endpoint.
                        f"use_emulator = true\nendpoint = {self.endpoint}\n", encoding="utf-8")
        return path


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    if shutil.which("rclone") is None:
        _missing("rclone is not installed")
    if not AZURITE_BLOB.exists():
        _missing("Azurite is not installed (tests/emulator/node_modules)")
    port = _free_port()
    data = tmp_path_factory.mktemp("azurite")
    log = (data / "azurite.log").open("w")
    process = subprocess.Popen(
        [str(AZURITE_BLOB), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(data),
         "--silent", "--disableTelemetry"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"Azurite stopped at start: {(data / 'azurite.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"Azurite did not listen on port {port}: {(data / 'azurite.log').read_text()}")
                time.sleep(0.2)
        yield Azurite(f"http://127.0.0.1:{port}/devstoreaccount1")
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def blob_container(azurite: Azurite, tmp_path: Path) -> tuple[str, Path]:
    """A new, empty container (made as the blueprint's Pulumi program makes it on Azure): (remote, config)."""
    config = azurite.rclone_config(tmp_path / "rclone.conf")
    remote = f"{REMOTE}:backups-{uuid.uuid4().hex[:12]}"
    subprocess.run(["rclone", "--config", str(config), "mkdir", remote], check=True)
    return remote, config
