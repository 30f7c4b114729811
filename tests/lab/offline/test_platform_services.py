"""The lab's metadata and Key Vault stand-ins speak Azure's protocol, and are no kinder than Azure.

Microsoft's own clients (azure-identity's managed identity credential, azure-keyvault-secrets)
talk to the stand-ins here on loopback addresses: if the stand-in answered differently from
Azure's services, the clients would fail. The raw cases pin the refusals a VM meets on Azure.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab import platform_services as platform
from lab.secrets import LabCertificateAuthority

VAULT = "kv-lab-test"
VAULT_HOST = f"{VAULT}.{platform.VAULT_DOMAIN}"
# Two VMs known by their loopback addresses (the lab knows a VM by its private address).
FIRST, SECOND = "127.0.0.1", "127.0.0.2"


@dataclass
class Platform:
    directory: Path
    imds_port: int
    vault_port: int
    ca_file: Path


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[Platform]:
    directory = tmp_path / "platform"
    platform.write_state(directory, stack="test", tenant_id="11111111-2222-4333-8444-555555555555", vault=VAULT,
                         secrets={"ca-crt": "CA PEM", "first-tls-key": "first key", "second-tls-key": "second key"},
                         machines=[
                             platform.LabMachine("first", FIRST, {"trust-blueprints-key-vault": VAULT},
                                                 b"settings: 1\n", ("ca-crt", "first-tls-key", "first-unset")),
                             platform.LabMachine("second", SECOND, {}, b"", ("ca-crt", "second-tls-key")),
                         ])
    ca = LabCertificateAuthority(tmp_path / "ca", "platform test")
    ca.ensure()
    cert, key = ca.issue([VAULT_HOST], tmp_path)
    (tmp_path / "vault.crt").write_bytes(cert)
    (tmp_path / "vault.key").write_bytes(key)
    metadata = platform._server(platform.MetadataHandler, directory, "127.0.0.1", 0)
    vault = platform._server(platform.VaultHandler, directory, "127.0.0.1", 0)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tmp_path / "vault.crt"), str(tmp_path / "vault.key"))
    vault.socket = context.wrap_socket(vault.socket, server_side=True)
    for server in (metadata, vault):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Platform(directory, metadata.server_address[1], vault.server_address[1], ca.cert)
    finally:
        for server in (metadata, vault):
            server.shutdown()
            server.server_close()


def _imds(p: Platform, path: str, headers: dict[str, str] | None = None, source: str = FIRST) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", p.imds_port, timeout=10, source_address=(source, 0))
    connection.request("GET", path, headers={"Metadata": "true"} if headers is None else headers)
    response = connection.getresponse()
    return response.status, response.read()


def _token(p: Platform, source: str = FIRST, resource: str = platform.VAULT_AUDIENCE) -> str:
    status, body = _imds(p, f"/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}",
                         source=source)
    assert status == 200, body
    return json.loads(body)["access_token"]


def _vault(p: Platform, path: str, token: str | None) -> tuple[int, dict, dict]:
    context = ssl.create_default_context(cafile=str(p.ca_file))
    context.check_hostname = False  # the name is checked by the clients' test below, via the resolver
    connection = http.client.HTTPSConnection("127.0.0.1", p.vault_port, timeout=10, context=context)
    headers = {"Host": VAULT_HOST}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"{}"), dict(response.getheaders())


def test_microsofts_clients_read_a_granted_secret_and_are_refused_another_vms(
        stand_in: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    from azure.identity import ManagedIdentityCredential
    from azure.keyvault.secrets import SecretClient

    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", f"http://127.0.0.1:{stand_in.imds_port}")
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):  # the lab's resolver names the vault; here, loopback
        if host == VAULT_HOST:
            return real_getaddrinfo("127.0.0.1", stand_in.vault_port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    client = SecretClient(f"https://{VAULT_HOST}", ManagedIdentityCredential(),
                          connection_verify=str(stand_in.ca_file), retry_total=0)
    assert client.get_secret("first-tls-key").value == "first key"
    with pytest.raises(HttpResponseError) as refused:
        client.get_secret("second-tls-key")
    assert refused.value.status_code == 403
    assert "ForbiddenByRbac" in str(refused.value) or "not authorized" in str(refused.value)
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("first-unset")


def test_metadata_service_refuses_what_azure_refuses(stand_in: Platform) -> None:
    token_path = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
    assert _imds(stand_in, token_path, headers={})[0] == 400
    assert _imds(stand_in, token_path, headers={"Metadata": "true", "X-Forwarded-For": "10.0.0.9"})[0] == 400
    assert _imds(stand_in, "/metadata/identity/oauth2/token?resource=https://vault.azure.net")[0] == 400
    assert _imds(stand_in, "/metadata/identity/oauth2/token?api-version=2018-02-01")[0] == 400
    assert _imds(stand_in, token_path, source="127.0.0.3")[0] == 403


def test_metadata_service_serves_each_vm_its_own_tags_and_user_data(stand_in: Platform) -> None:
    status, body = _imds(stand_in, "/metadata/instance/compute/tagsList?api-version=2021-02-01")
    assert status == 200 and json.loads(body) == [{"name": "trust-blueprints-key-vault", "value": VAULT}]
    status, body = _imds(stand_in, "/metadata/instance/compute/userData?api-version=2021-01-01&format=text")
    assert status == 200 and base64.b64decode(body) == b"settings: 1\n"
    status, body = _imds(stand_in, "/metadata/instance/compute/userData?api-version=2021-01-01&format=text",
                         source=SECOND)
    assert status == 200 and body == b""
    platform.set_user_data(stand_in.directory, "second", b"changed in place\n")
    status, body = _imds(stand_in, "/metadata/instance/compute/userData?api-version=2021-01-01&format=text",
                         source=SECOND)
    assert base64.b64decode(body) == b"changed in place\n"


def test_vault_refuses_missing_forged_and_misaimed_tokens(stand_in: Platform) -> None:
    status, _body, headers = _vault(stand_in, "/secrets/ca-crt?api-version=7.4", None)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer authorization=")
    token = _token(stand_in)
    header, claims, signature = token.split(".")
    forged_claims = base64.urlsafe_b64encode(json.dumps({**json.loads(base64.urlsafe_b64decode(
        claims + "==")), "oid": "someone-else"}).encode()).rstrip(b"=").decode()
    assert _vault(stand_in, "/secrets/ca-crt?api-version=7.4", f"{header}.{forged_claims}.{signature}")[0] == 401
    storage_token = _token(stand_in, resource="https://storage.azure.com")
    assert _vault(stand_in, "/secrets/ca-crt?api-version=7.4", storage_token)[0] == 401
    assert _vault(stand_in, "/secrets/ca-crt", token)[0] == 400


def test_a_vm_reads_its_own_secrets_only_and_grants_apply_at_once(stand_in: Platform) -> None:
    first, second = _token(stand_in), _token(stand_in, source=SECOND)
    assert _vault(stand_in, "/secrets/first-tls-key?api-version=7.4", first)[:2][1]["value"] == "first key"
    assert _vault(stand_in, "/secrets/first-tls-key?api-version=7.4", second)[0] == 403
    assert _vault(stand_in, "/secrets/second-tls-key/?api-version=7.4", second)[0] == 200
    # Not granted and not existing: RBAC answers first, as on Azure.
    assert _vault(stand_in, "/secrets/nobody-has-this?api-version=7.4", first)[0] == 403
    platform.set_grant(stand_in.directory, "first", "first-tls-key", granted=False)
    assert _vault(stand_in, "/secrets/first-tls-key?api-version=7.4", first)[0] == 403
    platform.set_grant(stand_in.directory, "first", "first-tls-key", granted=True)
    assert _vault(stand_in, "/secrets/first-tls-key?api-version=7.4", first)[0] == 200
    with pytest.raises(platform.PlatformError):
        platform.set_grant(stand_in.directory, "third", "ca-crt", granted=True)
