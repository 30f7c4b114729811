"""How long an extract takes through the lab's airlock front: a provider's upload and a reader's download.

Azurite (`make azurite`) behind the authorising front of lab/storage_service.py, both on loopback
without TLS (the lab adds TLS and the bridge), no root and no lab:

    .venv/bin/python benchmarks/airlock_front.py [SIZE_MIB] [RUNS]

Prints seconds and MiB/s for each run. Loopback leaves out the network and TLS; the figures are the
cost of the token and grant checks, the forwarding and Azurite's own writes.
"""

from __future__ import annotations

import http.client
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from blueprints.airlock_settings import StorageGrant
from lab import platform_services as platform
from lab import storage_service as storage

GROUP = "00000000-0000-4000-8000-000000000004"
ACCOUNT = "stairlockbenchmark"
CHUNK = 1 << 20


def _request(port: int, method: str, path: str, token: str, size: int = 0) -> tuple[int, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"Host": f"{ACCOUNT}.{storage.BLOB_DOMAIN}", "Authorization": f"Bearer {token}",
               "x-ms-version": "2021-08-06", "x-ms-blob-type": "BlockBlob"}
    try:
        if method == "PUT":
            connection.putrequest("PUT", path, skip_host=True)
            for key, value in {**headers, "Content-Length": str(size)}.items():
                connection.putheader(key, value)
            connection.endheaders()
            block = os.urandom(CHUNK)
            for _ in range(size // CHUNK):
                connection.send(block)
            response = connection.getresponse()
            response.read()
            return response.status, size
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        received = 0
        while chunk := response.read(CHUNK):
            received += len(chunk)
        return response.status, received
    finally:
        connection.close()


def main(argv: list[str]) -> int:
    size_mib = int(argv[0]) if argv else 256
    runs = int(argv[1]) if len(argv) > 1 else 3
    if not storage.AZURITE_BLOB.exists():
        print("needs Azurite: make azurite", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as work:
        platform_dir = Path(work) / "platform"
        platform.write_state(platform_dir, stack="bench", tenant_id="11111111-2222-4333-8444-555555555555",
                             vault="kv", secrets={}, machines=[platform.LabMachine("analytics-1", "127.0.0.1", {},
                                                                                    b"", ())])
        storage_dir = storage.storage_dir(platform_dir)
        storage.write_state(storage_dir, stack="bench", account=ACCOUNT, providers_group=GROUP,
                            azurite_port=storage.free_port(), grants=[
                                StorageGrant("providers-write", "group", GROUP, storage.BLOB_CONTRIBUTOR, "ingress",
                                             ""),
                                StorageGrant("analytics-1-read", "vm", "analytics-1", storage.BLOB_READER, "ingress",
                                             "")])
        storage.start_azurite(storage_dir)
        server = storage.front_server(storage_dir, platform_dir, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        state = platform.load_state(platform_dir)
        provider = storage.issue_user_token(state, "provider@example.nhs.uk", [GROUP])
        reader = platform.issue_token(state, "analytics-1", storage.STORAGE_AUDIENCE)["access_token"]
        try:
            print(f"{size_mib} MiB through the front (Azurite {storage.AZURITE_BLOB.parent.parent.name}), "
                  f"{runs} runs, load {os.getloadavg()[0]:.1f}")
            for run in range(1, runs + 1):
                began = time.monotonic()
                status, _ = _request(port, "PUT", f"/ingress/extract-{run}.bin", provider, size_mib * CHUNK)
                upload = time.monotonic() - began
                began = time.monotonic()
                status_get, received = _request(port, "GET", f"/ingress/extract-{run}.bin", reader)
                download = time.monotonic() - began
                assert (status, status_get, received) == (201, 200, size_mib * CHUNK), (status, status_get, received)
                print(f"run {run}: upload {upload:.1f} s ({size_mib / upload:.0f} MiB/s), "
                      f"download {download:.1f} s ({size_mib / download:.0f} MiB/s)")
        finally:
            server.shutdown()
            storage.stop_processes(storage_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
