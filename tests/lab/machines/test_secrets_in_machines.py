"""Every machine fetches its secrets from Key Vault with its own identity, holds them privately, and
machines trust each other's certificates by name."""

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


# The Azure path: every secret came from the Key Vault stand-in, with the machine's own identity.

_VAULT_GET = """
import json, sys, urllib.error, urllib.request
def get(url, headers):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=20) as response:
        return json.load(response)
imds = "http://169.254.169.254/metadata"
tags = get(imds + "/instance/compute/tagsList?api-version=2021-02-01", {"Metadata": "true"})
vault = next(t["value"] for t in tags if t["name"] == "trust-blueprints-key-vault")
token = get(imds + "/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net",
            {"Metadata": "true"})["access_token"]
try:
    get(f"https://{vault}.vault.azure.net/secrets/{sys.argv[1]}?api-version=7.4", {"Authorization": "Bearer " + token})
    print(200)
except urllib.error.HTTPError as error:
    print(error.code)
"""


def _vault_status(machine: str, secret: str) -> int:
    result = run(None, machine, ["python3", "-c", _VAULT_GET, secret])
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


def _platform_dir(lab: Any) -> Any:
    return lab.state_dir / "platform"


def test_every_secret_file_was_fetched_from_key_vault(lab: Any) -> None:
    from blueprints.secrets import secret_files

    for machine in lab.machines:
        log = lab.host(machine.name).file("/var/log/cloud-init-output.log").content_string
        for file_name, vault_secret in secret_files(machine):
            assert f"{file_name} fetched from Key Vault" in log and f"(secret {vault_secret})" in log, \
                f"{machine.name}: {file_name} was not fetched from Key Vault"


def test_a_vm_reads_its_own_key_and_is_refused_another_vms(lab: Any) -> None:
    first, second = lab.machines[0], lab.machines[1]
    assert _vault_status(first.name, f"{first.name}-tls-key") == 200
    assert _vault_status(first.name, f"{second.name}-tls-key") == 403
    assert _vault_status(second.name, f"{first.name}-tls-key") == 403


def test_only_root_reaches_the_instance_metadata_service(lab: Any) -> None:
    url = "http://169.254.169.254/metadata/instance?api-version=2021-02-01"
    for machine in lab.machines:
        as_root = run(None, machine.name, ["curl", "-sS", "--max-time", "10", "-H", "Metadata: true", url])
        assert as_root.returncode == 0 and machine.name in as_root.stdout, f"{machine.name}: {as_root.stderr}"
        as_user = run(None, machine.name, ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                           "curl", "-sS", "--max-time", "10", "-H", "Metadata: true", url])
        assert as_user.returncode != 0, f"{machine.name}: an unprivileged process reached the metadata service"


def test_a_missing_grant_makes_the_boot_wait_naming_the_secret_until_granted(lab: Any) -> None:
    from lab import platform_services

    # An analytics VM's boot step is the one that can run again without disturbing a service.
    machine = next((m for m in lab.machines if m.role == "analytics"), None)
    if machine is None:
        pytest.skip("this stack has no analytics machine")
    secret_file, vault_secret = "tls.crt", f"{machine.name}-tls-crt"
    path = f"{SECRETS}/{secret_file}"
    before = lab.host(machine.name).file(path).content_string
    run(None, machine.name, ["mv", path, "/root/tls.crt.before-grant-test"], check=True)
    platform_services.set_grant(_platform_dir(lab), machine.name, vault_secret, granted=False)
    log = "/root/bootcmd-grant-test.log"
    try:
        run(None, machine.name, ["rm", "-f", log, f"{log}.rc"], check=True)
        run(None, machine.name, ["sh", "-c", f"(cloud-init single --name bootcmd --frequency always > {log} 2>&1; "
                                             f"echo $? > {log}.rc) >/dev/null 2>&1 &"], check=True)
        waited = run(None, machine.name, ["sh", "-c", f"for i in $(seq 120); do grep -q 'waiting for Key Vault .* "
                                                      f"secret {vault_secret} ' {log} && exit 0; sleep 0.5; done; "
                                                      f"cat {log}; exit 1"])
        assert waited.returncode == 0, f"the boot step did not say it waits for {vault_secret}: {waited.stdout}"
        assert not lab.host(machine.name).file(path).exists
    finally:
        platform_services.set_grant(_platform_dir(lab), machine.name, vault_secret, granted=True)
    finished = run(None, machine.name, ["sh", "-c", f"for i in $(seq 240); do [ -s {log}.rc ] && exit 0; "
                                                    f"sleep 0.5; done; exit 1"])
    assert finished.returncode == 0, "the boot step did not finish after the grant"
    output = lab.host(machine.name).file(log).content_string
    assert lab.host(machine.name).file(f"{log}.rc").content_string.strip() == "0", output
    assert f"{secret_file} fetched from Key Vault" in output
    assert lab.host(machine.name).file(path).content_string == before
    file = lab.host(machine.name).file(path)
    assert file.mode == 0o600 and file.user == "root"
