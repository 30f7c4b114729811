"""The lab's airlock storage account is as strict as Azure's: Entra ID tokens only, and only what the
stack's grants allow on one container.

The decision is walked case by case (``decide``); then the front runs for real on loopback before
Microsoft's emulator (Azurite, `make azurite`): a data provider uploads, a reading VM reads the same
bytes back, and every refused request leaves the blob as it was.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from blueprints.airlock_settings import BLOB_CONTRIBUTOR, BLOB_READER, INGRESS_CONTAINER, airlock_grants
from lab import platform_services as platform
from lab import storage_service as storage
from tests.conftest import REPO
from validation.stack_config import load_stack

STACK = "test"
TENANT = "11111111-2222-4333-8444-555555555555"
PROVIDERS = "00000000-0000-4000-8000-000000000004"
ACCOUNT = "stairlocktest0a1b2c"
HOST = f"{ACCOUNT}.{storage.BLOB_DOMAIN}"
BLOB = f"/{INGRESS_CONTAINER}/extract.csv"


@pytest.fixture(scope="module")
def config() -> dict:
    loaded = copy.deepcopy(load_stack(REPO / "stacks" / "example.yaml"))
    loaded["airlock"] = {"data_providers_group": PROVIDERS, "readers": ["analytics-1"], "soft_delete_days": 14}
    return loaded


@pytest.fixture
def states(tmp_path: Path, config: dict) -> tuple[Path, Path]:
    platform_dir = tmp_path / "platform"
    platform.write_state(platform_dir, stack=STACK, tenant_id=TENANT, vault="kv-test", secrets={}, machines=[
        platform.LabMachine(name, f"127.0.0.{index}", {}, b"", ())
        for index, name in enumerate(("analytics-1", "analytics-2", "git"), start=1)])
    storage_dir = storage.storage_dir(platform_dir)
    storage.write_state(storage_dir, stack=STACK, account=ACCOUNT, grants=airlock_grants(config),
                        azurite_port=storage.free_port(), providers_group=PROVIDERS)
    return platform_dir, storage_dir


def _vm_token(platform_dir: Path, machine: str, resource: str = storage.STORAGE_AUDIENCE) -> str:
    return platform.issue_token(platform.load_state(platform_dir), machine, resource)["access_token"]


def _provider_token(platform_dir: Path, groups: tuple[str, ...] = (PROVIDERS,)) -> str:
    return storage.issue_user_token(platform.load_state(platform_dir), "provider@example.nhs.uk", list(groups))


def _decide(states: tuple[Path, Path], method: str, path: str = BLOB, token: str | None = None,
            headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
            host: str = HOST, now: float | None = None) -> storage.Decision:
    platform_dir, storage_dir = states
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return storage.decide(platform.load_state(platform_dir), storage.load_state(storage_dir), method, host, path,
                          query or {}, sent, now)


def test_the_grants_are_the_programs_table_providers_write_and_named_readers_read(config):
    grants = {(g.principal_kind, g.principal, g.role, g.container) for g in airlock_grants(config)}
    assert grants == {("group", PROVIDERS, BLOB_CONTRIBUTOR, INGRESS_CONTAINER),
                      ("vm", "analytics-1", BLOB_READER, INGRESS_CONTAINER)}


def test_a_request_without_a_token_gets_azures_bearer_challenge(states):
    decision = _decide(states, "GET")
    assert (decision.status, decision.code) == (401, "NoAuthenticationInformation")
    assert decision.headers["WWW-Authenticate"] == (
        f"Bearer authorization_uri=https://login.microsoftonline.com/{TENANT}/oauth2/authorize "
        "resource_id=https://storage.azure.com")


@pytest.mark.parametrize("how", ["shared key", "shared key lite", "sas"])
def test_shared_keys_and_sas_are_refused_as_the_account_disallows_them(states, how):
    headers = {"Authorization": f"SharedKey {ACCOUNT}:c2lnbmF0dXJl"} if how == "shared key" else (
        {"Authorization": f"SharedKeyLite {ACCOUNT}:c2lnbmF0dXJl"} if how == "shared key lite" else {})
    query = {"sv": "2019-12-12", "sp": "r", "sig": "c2lnbmF0dXJl"} if how == "sas" else {}
    decision = _decide(states, "GET", headers=headers, query=query)
    assert (decision.status, decision.code) == (403, "KeyBasedAuthenticationNotPermitted")


def test_a_token_for_key_vault_expired_or_forged_is_not_accepted(states):
    platform_dir, _ = states
    for token in (_vm_token(platform_dir, "analytics-1", platform.VAULT_AUDIENCE),
                  _vm_token(platform_dir, "analytics-1")[:-4] + "AAAA",
                  "not-a-token"):
        decision = _decide(states, "GET", token=token)
        assert (decision.status, decision.code) == (401, "InvalidAuthenticationInfo"), token
    later = time.time() + platform.TOKEN_LIFETIME + 60
    decision = _decide(states, "GET", token=_vm_token(platform_dir, "analytics-1"), now=later)
    assert (decision.status, decision.code, decision.detail) == (401, "InvalidAuthenticationInfo", "Token expired.")


def test_a_reading_vm_may_list_and_read_the_ingress_container(states):
    token = _vm_token(states[0], "analytics-1")
    assert _decide(states, "GET", token=token) == storage.Decision(0, who=platform.principal_id(STACK, "analytics-1"))
    assert _decide(states, "HEAD", token=token).status == 0
    assert _decide(states, "GET", f"/{INGRESS_CONTAINER}", token=token,
                   query={"restype": "container", "comp": "list"}).status == 0


@pytest.mark.parametrize("method", ["PUT", "DELETE", "POST"])
def test_a_reading_vm_cannot_write_or_delete(states, method):
    decision = _decide(states, method, token=_vm_token(states[0], "analytics-1"))
    assert (decision.status, decision.code) == (403, "AuthorizationPermissionMismatch")


def test_a_vm_the_stack_does_not_name_cannot_read(states):
    for machine in ("analytics-2", "git"):
        decision = _decide(states, "GET", token=_vm_token(states[0], machine))
        assert (decision.status, decision.code) == (403, "AuthorizationPermissionMismatch"), machine


def test_grants_stop_at_the_container_no_other_container_and_no_account_listing(states):
    token = _vm_token(states[0], "analytics-1")
    assert _decide(states, "GET", "/egress/result.csv", token=token).status == 403
    assert _decide(states, "GET", "/egress", token=token, query={"restype": "container", "comp": "list"}).status == 403
    assert _decide(states, "GET", "/", token=_provider_token(states[0]), query={"comp": "list"}).status == 403
    assert _decide(states, "GET", f"/{INGRESS_CONTAINER}", token=_provider_token(states[0]),
                   query={"restype": "container", "comp": "acl"}).status == 403


def test_a_data_provider_writes_through_the_group_and_a_person_outside_it_cannot(states):
    for method in ("PUT", "DELETE", "GET"):
        assert _decide(states, method, token=_provider_token(states[0])).status == 0, method
    outsider = _provider_token(states[0], groups=("00000000-0000-4000-8000-0000000000ff",))
    assert _decide(states, "PUT", token=outsider).code == "AuthorizationPermissionMismatch"


def test_a_person_of_another_tenant_is_not_accepted(states):
    platform_dir, _ = states
    elsewhere = {**platform.load_state(platform_dir), "tenant_id": "99999999-2222-4333-8444-555555555555"}
    token = storage.issue_user_token(elsewhere, "provider@example.org", [PROVIDERS])
    assert _decide(states, "PUT", token=token).code == "InvalidAuthenticationInfo"


def test_another_accounts_host_name_is_not_this_account(states):
    decision = _decide(states, "GET", token=_provider_token(states[0]), host=f"other.{storage.BLOB_DOMAIN}")
    assert decision.status == 400


def test_a_day_two_edit_of_the_readers_reaches_the_front(states, config):
    _, storage_dir = states
    edited = copy.deepcopy(config)
    edited["airlock"]["readers"] = ["analytics-2"]
    assert storage.update_grants(storage_dir, STACK, airlock_grants(edited))
    assert _decide(states, "GET", token=_vm_token(states[0], "analytics-1")).status == 403
    assert _decide(states, "GET", token=_vm_token(states[0], "analytics-2")).status == 0


def test_refusals_carry_azures_error_document():
    body = storage.error_body(storage.Decision(403, "AuthorizationPermissionMismatch", "Not <allowed>."), "rid")
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationPermissionMismatch'
                           b"</Code><Message>Not &lt;allowed&gt;.\nRequestId:rid\nTime:")


# The front for real, before Azurite.

@dataclass
class Front:
    port: int
    platform_dir: Path
    storage_dir: Path

    def request(self, method: str, path: str, token: str | None = None, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        sent = {"Host": HOST, "x-ms-version": "2021-08-06", **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body if method in ("PUT", "POST") else None, headers=sent)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()


@pytest.fixture
def front(states: tuple[Path, Path]) -> Iterator[Front]:
    if not storage.AZURITE_BLOB.exists():
        message = "Azurite is not installed; `make azurite` installs it"
        if os.environ.get("BLUEPRINTS_AZURITE_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    platform_dir, storage_dir = states
    storage.start_azurite(storage_dir)
    server = storage.front_server(storage_dir, platform_dir, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Front(server.server_address[1], platform_dir, storage_dir)
    finally:
        server.shutdown()
        server.server_close()
        assert storage.stop_processes(storage_dir) == ["Azurite"]
        shutil.rmtree(storage_dir / "azurite", ignore_errors=True)


def test_through_the_front_a_provider_uploads_and_only_the_reader_reads_it_back(front):
    provider, reader = _provider_token(front.platform_dir), _vm_token(front.platform_dir, "analytics-1")
    data = os.urandom(3 * storage.CHUNK + 17)
    status, _, body = front.request("PUT", BLOB, provider, data, {"x-ms-blob-type": "BlockBlob"})
    assert status == 201, body
    status, headers, body = front.request("GET", BLOB, reader)
    assert (status, body) == (200, data)
    assert headers["content-length"] == str(len(data))
    status, _, listing = front.request("GET", f"/{INGRESS_CONTAINER}?restype=container&comp=list", reader)
    assert status == 200 and b"<Name>extract.csv</Name>" in listing
    status, headers, _ = front.request("HEAD", BLOB, reader)
    assert (status, headers["content-length"]) == (200, str(len(data)))


def test_through_the_front_every_refusal_leaves_the_blob_as_it_was(front):
    provider, reader = _provider_token(front.platform_dir), _vm_token(front.platform_dir, "analytics-1")
    assert front.request("PUT", BLOB, provider, b"original\n", {"x-ms-blob-type": "BlockBlob"})[0] == 201
    status, headers, body = front.request("PUT", BLOB, reader, b"changed\n", {"x-ms-blob-type": "BlockBlob"})
    assert (status, headers["x-ms-error-code"]) == (403, "AuthorizationPermissionMismatch")
    assert b"<Code>AuthorizationPermissionMismatch</Code>" in body
    assert front.request("DELETE", BLOB, reader)[0] == 403
    assert front.request("GET", BLOB, _vm_token(front.platform_dir, "analytics-2"))[0] == 403
    status, headers, _ = front.request("GET", BLOB)
    assert (status, headers["x-ms-error-code"]) == (401, "NoAuthenticationInformation")
    assert headers["www-authenticate"].startswith("Bearer authorization_uri=")
    status, headers, _ = front.request("GET", BLOB, headers={"Authorization": f"SharedKey {ACCOUNT}:eA=="})
    assert (status, headers["x-ms-error-code"]) == (403, "KeyBasedAuthenticationNotPermitted")
    status, _, body = front.request("GET", BLOB, reader)
    assert (status, body) == (200, b"original\n")


def test_a_container_the_stack_grants_nothing_on_is_closed_even_to_the_providers(front):
    assert storage.create_container(front.storage_dir, "other")
    assert not storage.create_container(front.storage_dir, "other")
    provider = _provider_token(front.platform_dir)
    assert front.request("PUT", "/other/x.txt", provider, b"x", {"x-ms-blob-type": "BlockBlob"})[0] == 403
    assert front.request("GET", "/?comp=list", provider)[0] == 403


def test_the_labs_directory_gives_a_provider_a_token_that_writes_ingress(states):
    token = storage.provider_token("data.provider@example.nhs.uk", states[1])
    assert _decide(states, "PUT", token=token).status == 0
    assert _decide(states, "GET", "/", token=token, query={"comp": "list"}).status == 403


@pytest.mark.parametrize("upn", ["data provider@example.nhs.uk", "no-at-sign", "x@y"])
def test_a_malformed_sign_in_name_gets_no_token(states, upn):
    from validation.usage import UsageError

    with pytest.raises(UsageError, match="must be a sign-in name"):
        storage.provider_token(upn, states[1])


def test_a_lab_without_an_airlock_gives_no_token(tmp_path):
    from validation.usage import UsageError

    with pytest.raises(UsageError, match="no airlock"):
        storage.provider_token("data.provider@example.nhs.uk", tmp_path / "platform" / "storage")


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_through_the_front_every_request_is_recorded_with_who_what_and_when(front):
    # What Azure's StorageBlobLogs would hold (the airlock's diagnostic setting): allowed and refused
    # requests alike, each with the operation, the object, the status and the requester.
    provider, reader = _provider_token(front.platform_dir), _vm_token(front.platform_dir, "analytics-1")
    before = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert front.request("PUT", BLOB, provider, b"id\n1\n", {"x-ms-blob-type": "BlockBlob"})[0] == 201
    assert front.request("GET", BLOB, reader)[0] == 200
    assert front.request("DELETE", BLOB, reader)[0] == 403
    assert front.request("GET", BLOB)[0] == 401
    entries = storage.read_access_log(front.storage_dir)
    assert [(e["OperationName"], e["Category"], e["ObjectKey"], e["StatusCode"], e["Requester"]) for e in entries] == [
        ("PutBlob", "StorageWrite", BLOB, 201, "provider@example.nhs.uk"),
        ("GetBlob", "StorageRead", BLOB, 200, _claims(reader)["oid"]),
        ("DeleteBlob", "StorageDelete", BLOB, 403, _claims(reader)["oid"]),
        ("GetBlob", "StorageRead", BLOB, 401, ""),
    ]
    assert all(e["TimeGenerated"] >= before and e["CallerIpAddress"] == "127.0.0.1" for e in entries)


def test_a_request_is_recorded_before_its_answer_goes_back(front, monkeypatch):
    # A slow disk must not let a client hold its answer while its entry is still to come: a reader of
    # the log right after the answer (an auditor, the lab's suites) would miss the request.
    write_entry = storage.record_access

    def record_slowly(directory: Path, entry: dict) -> None:
        time.sleep(0.5)
        write_entry(directory, entry)

    monkeypatch.setattr(storage, "record_access", record_slowly)
    provider = _provider_token(front.platform_dir)
    for method, expected in (("PUT", 201), ("GET", 200)):
        headers = {"x-ms-blob-type": "BlockBlob"} if method == "PUT" else {}
        assert front.request(method, BLOB, provider, b"id\n1\n" if method == "PUT" else b"", headers)[0] == expected
        assert [e["StatusCode"] for e in storage.read_access_log(front.storage_dir)][-1:] == [expected]
