"""Every machine holds its secrets privately, and machines trust each other's certificates by name."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from lab.machines import run

pytestmark = pytest.mark.lab

SECRETS = "/etc/trust-blueprints/secrets"

_TLS_SERVER = """
import http.server, ssl, sys, threading, time
server = http.server.HTTPServer(("0.0.0.0", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain("/etc/trust-blueprints/secrets/tls.crt", "/etc/trust-blueprints/secrets/tls.key")
server.socket = context.wrap_socket(server.socket, server_side=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
time.sleep(120)
"""


def test_secrets_directory_is_private_on_every_machine(lab: Any) -> None:
    for machine in lab.machines:
        host = lab.host(machine.name)
        directory = host.file(SECRETS)
        assert directory.is_directory and directory.mode == 0o700 and directory.user == "root", machine.name
        for name in ("ca.crt", "tls.crt", "tls.key"):
            secret = host.file(f"{SECRETS}/{name}")
            assert secret.mode == 0o600 and secret.user == "root", f"{machine.name}:{name}"


def test_machine_certificates_chain_to_the_lab_ca(lab: Any, tmp_path: Any) -> None:
    for machine in lab.machines:
        cert = tmp_path / f"{machine.name}.crt"
        cert.write_text(lab.host(machine.name).file(f"{SECRETS}/tls.crt").content_string)
        verified = subprocess.run(["openssl", "verify", "-CAfile", str(lab.ca_cert), str(cert)],
                                  capture_output=True, text=True)
        assert verified.returncode == 0, f"{machine.name}: {verified.stderr}"


def test_lab_ca_is_trusted_system_wide(lab: Any) -> None:
    body = "".join(line for line in lab.ca_cert.read_text().splitlines() if not line.startswith("-----"))
    for machine in lab.machines:
        bundle = lab.host(machine.name).file("/etc/ssl/certs/ca-certificates.crt").content_string
        assert body in bundle.replace("\n", ""), f"{machine.name} does not trust the lab CA"


def test_a_machine_verifies_another_by_its_internal_name(lab: Any) -> None:
    # The analytics VM reaches the Git server on 443 (a flow in the table) and checks its
    # certificate with the system trust store only.
    git = next((m for m in lab.machines if m.role == "git_server"), None)
    analytics = next((m for m in lab.machines if m.role == "analytics"), None)
    if git is None or analytics is None:
        pytest.skip("needs a Git server and an analytics VM")
    # The Git server's own HTTPS service when it has one (it serves tls.crt), else a stand-in.
    server = None
    if run(None, git.name, ["sh", "-c", "ss -Hltn 'sport = :443' | grep -q ."]).returncode != 0:
        started = run(None, git.name, ["sh", "-c", 'nohup python3 -c "$0" 443 >/dev/null 2>&1 & echo $!',
                                       _TLS_SERVER], check=True)
        server = started.stdout.strip()
        run(None, git.name, ["sh", "-c", "for i in $(seq 50); do ss -Hltn 'sport = :443' | grep -q . && exit 0; "
                             "sleep 0.1; done; exit 1"], check=True)
    url = f"https://{git.name}.{lab.record['zone']}/"
    try:
        result = run(None, analytics.name, ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                                            "10", url])
    finally:
        if server:
            run(None, git.name, ["kill", server])
    assert result.returncode == 0, f"TLS to {url} failed: {result.stderr}"
