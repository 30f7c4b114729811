"""Ingress through the airlock, end to end in the lab: a data provider on the trust's network uploads
a file; the analytics VMs the stack names have it read-only; nothing else can read, write or list.

The lab's storage stand-in (lab/storage_service.py) is Azurite behind a front at the airlock's
private endpoint address that checks tokens and grants as Azure does. The provider's token comes
from the lab's directory (``blueprints lab storage-token``), as a person of the data
providers group gets one from Entra ID; each VM's comes from the metadata stand-in, which any
process on the VM (an analyst's notebook too) may ask. So the read-only promise is tested against
the VM's own token, not only through the copy's file permissions.
"""

from __future__ import annotations

import json
import secrets
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from blueprints.airlock_settings import INGRESS_CONTAINER, INGRESS_FOLDER, airlock_settings, ingress_readers
from tests.acceptance.machine_commands import check

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
PROVIDER = "data.provider@example.nhs.uk"
API_VERSION = "2021-08-06"
SYNC_SERVICE = "analytics-ingress-sync.service"
# Run on a VM as an unprivileged user (an analyst's code): the VM's storage token from the metadata
# service, then one request; prints the status, the error code and the body's first bytes as JSON.
AS_THE_VM = """
import json, sys, urllib.error, urllib.request
method, url = sys.argv[1], sys.argv[2]
body = sys.argv[4].encode() if len(sys.argv) > 4 else None
imds = urllib.request.Request("http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
                              "&resource=https://storage.azure.com", headers={"Metadata": "true"})
token = json.load(urllib.request.urlopen(imds, timeout=10))["access_token"]
headers = {"Authorization": "Bearer " + token, "x-ms-version": sys.argv[3], "x-ms-blob-type": "BlockBlob"}
request = urllib.request.Request(url, data=body, method=method, headers=headers)
try:
    with urllib.request.urlopen(request, timeout=30) as response:
        print(json.dumps({"status": response.status, "code": "", "body": response.read(200).decode("latin-1")}))
except urllib.error.HTTPError as error:
    print(json.dumps({"status": error.code, "code": error.headers.get("x-ms-error-code", ""),
                      "body": error.read(200).decode("latin-1")}))
"""


@pytest.fixture(scope="module")
def airlock(lab: Any) -> dict[str, Any]:
    if not airlock_settings(lab.config):
        pytest.skip("this stack has no airlock")
    if lab.target != "lab":
        pytest.skip("the provider's token comes from the lab's directory; on Azure a person signs in to Entra ID")
    account, address = lab.record.get("airlock_account"), lab.record.get("airlock_address")
    assert account and address, "lab up recorded no airlock account or address"
    return {"account": account, "address": address, "host": f"{account}.blob.core.windows.net",
            "ca": Path(lab.state_dir) / "platform" / "ca" / "ca.crt",
            "storage_dir": Path(lab.state_dir) / "platform" / "storage"}


def _provider_token() -> str:
    result = subprocess.run([str(Path(sys.executable).parent / "blueprints"), "lab", "storage-token", PROVIDER],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _from_trust_network(airlock: dict[str, Any], lab: Any, method: str, path: str, data: Path | None = None,
                        token: str | None = None, namespace: str = "tb-trust") -> tuple[int, str]:
    """curl from a data provider's machine in the trust network (its address in a private client range)."""
    from lab.trust_network import provider_addresses

    argv = ["ip", "netns", "exec", namespace, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
            "--max-time", "30", "--cacert", str(airlock["ca"]),
            "--resolve", f"{airlock['host']}:443:{airlock['address']}", "-X", method,
            "-H", f"x-ms-version: {API_VERSION}", "-H", "x-ms-blob-type: BlockBlob"]
    if namespace == "tb-trust":
        argv += ["--interface", provider_addresses(lab.config)[0]]
    if token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    if data is not None:
        argv += ["--data-binary", f"@{data}"]
    result = subprocess.run([*argv, f"https://{airlock['host']}{path}"], capture_output=True, text=True,
                            check=False)
    return int(result.stdout.strip() or 0), result.stderr


def _as_the_vm(host: Any, method: str, url: str, body: str | None = None) -> dict[str, Any]:
    """A request with the VM's own token. Only root gets one: the VM's firewall refuses the metadata
    service to every other account (templates/base.yaml.j2), which test_an_analyst_gets_no_token_at_all
    shows. Root's token is the most an analyst who broke out could use, so the grant must hold it."""
    argv = ["python3", "-c", AS_THE_VM, method, url, API_VERSION, *([body] if body is not None else [])]
    result = host.run(" ".join(shlex.quote(a) for a in argv))
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def _sync(host: Any) -> None:
    check(host, f"systemctl start {SYNC_SERVICE}")


@pytest.fixture(scope="module")
def uploaded(lab: Any, airlock: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A file a data provider put into the ingress container from the trust network."""
    name = f"acceptance-{secrets.token_hex(4)}.csv"
    content = f"id,value\n1,{secrets.token_hex(8)}\n"
    local = tmp_path_factory.mktemp("airlock") / name
    local.write_text(content)
    status, error = _from_trust_network(airlock, lab, "PUT", f"/{INGRESS_CONTAINER}/{name}", local,
                                        _provider_token())
    assert status == 201, f"the provider's upload answered {status}: {error}"
    return {"name": name, "content": content,
            "url": f"https://{airlock['host']}/{INGRESS_CONTAINER}/{name}"}


def _reader(lab: Any) -> str:
    readers = ingress_readers(lab.config)
    assert readers, "an airlock names at least one reader"
    return readers[0]


def test_a_provider_without_a_token_or_outside_the_trust_network_cannot_upload(lab, airlock, tmp_path):
    local = tmp_path / "refused.csv"
    local.write_text("no\n")
    status, _ = _from_trust_network(airlock, lab, "PUT", f"/{INGRESS_CONTAINER}/refused.csv", local)
    assert status == 401
    # From home (the lab's Internet client): the NSG rules drop it before any token is looked at.
    status, _ = _from_trust_network(airlock, lab, "PUT", f"/{INGRESS_CONTAINER}/refused.csv", local,
                                    _provider_token(), namespace="tb-client")
    assert status == 0


def test_a_reader_vm_has_the_upload_read_only_in_its_copy(lab, uploaded):
    host = lab.host(_reader(lab))
    _sync(host)
    path = f"{INGRESS_FOLDER}/{uploaded['name']}"
    copy = host.file(path)
    assert copy.exists and copy.user == "root" and copy.mode == 0o644
    assert host.file(INGRESS_FOLDER).user == "root" and host.file(INGRESS_FOLDER).mode == 0o755
    read = host.run(f"runuser -u nobody -- cat {shlex.quote(path)}")
    assert (read.rc, read.stdout) == (0, uploaded["content"])
    for attempt in (f"echo changed > {shlex.quote(path)}", f"rm -f {shlex.quote(path)}",
                    f"touch {INGRESS_FOLDER}/new.csv"):
        assert host.run(f"runuser -u nobody -- sh -c {shlex.quote(attempt)}").rc != 0, attempt
    assert host.file(path).content_string == uploaded["content"]


def test_an_analyst_gets_no_token_at_all(lab, uploaded):
    host = lab.host(_reader(lab))
    argv = ["python3", "-c", AS_THE_VM, "GET", uploaded["url"], API_VERSION]
    attempt = host.run("runuser -u nobody -- " + " ".join(shlex.quote(a) for a in argv))
    assert attempt.rc != 0 and "Connection refused" in attempt.stderr, attempt.stdout + attempt.stderr


def test_with_the_vms_own_token_the_upload_reads_but_cannot_be_written_or_deleted(lab, uploaded):
    host = lab.host(_reader(lab))
    read = _as_the_vm(host, "GET", uploaded["url"])
    assert (read["status"], read["body"]) == (200, uploaded["content"])
    for method, body in (("PUT", "overwritten\n"), ("DELETE", None)):
        refused = _as_the_vm(host, method, uploaded["url"], body)
        assert (refused["status"], refused["code"]) == (403, "AuthorizationPermissionMismatch"), method
    assert _as_the_vm(host, "GET", uploaded["url"])["body"] == uploaded["content"]


def test_an_analytics_vm_the_stack_does_not_name_cannot_read_and_keeps_no_copy(lab, uploaded):
    others = [m.name for m in lab.machines if m.role == "analytics" and m.name not in ingress_readers(lab.config)]
    if not others:
        pytest.skip("every analytics VM of this stack reads ingress")
    host = lab.host(others[0])
    refused = _as_the_vm(host, "GET", uploaded["url"])
    assert (refused["status"], refused["code"]) == (403, "AuthorizationPermissionMismatch")
    assert not host.file(INGRESS_FOLDER).exists
    assert not host.service("analytics-ingress-sync.timer").is_running


def test_the_reader_cannot_list_the_account_nor_read_another_container(lab, airlock, uploaded):
    from lab.storage_service import create_container

    # Made as the program would make a second container (the control plane), with no grant on it.
    create_container(airlock["storage_dir"], "acceptance-other")
    host = lab.host(_reader(lab))
    base = f"https://{airlock['host']}"
    for url in (f"{base}/?comp=list", f"{base}/acceptance-other?restype=container&comp=list",
                f"{base}/acceptance-other/{uploaded['name']}"):
        refused = _as_the_vm(host, "GET", url)
        assert (refused["status"], refused["code"]) == (403, "AuthorizationPermissionMismatch"), url


def test_machines_the_flow_table_does_not_send_to_the_airlock_cannot_even_connect(lab, airlock):
    from blueprints.network_flows import active_flows

    # Which roles the table lets reach the account's endpoint (analytics; the Git server with egress).
    allowed = {flow.source.removeprefix("role:") for flow in active_flows(lab.config)
               if flow.destination == "endpoint:airlock"}
    probe = f"import socket; socket.create_connection(({airlock['address']!r}, 443), timeout=5).close()"
    checked = [m for m in lab.machines if m.role not in allowed and "*" not in allowed]
    assert checked, f"every role may reach the airlock: {sorted(allowed)}"
    for machine in checked:
        assert lab.host(machine.name).run(f"python3 -c {shlex.quote(probe)}").rc != 0, machine.name
