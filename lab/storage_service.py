"""The lab's stand-in for the airlock's storage account: Azurite behind a front as strict as Azure.

On Azure the airlock's account (blueprints/airlock.py) takes no shared keys and no SAS, answers
only at its private endpoint, and lets an Entra ID identity do exactly what its role assignments
on one container allow. Azurite, Microsoft's storage emulator (pinned in tests/emulator), keeps
the blobs here but checks none of that, so it listens on the host's loopback alone and this front
stands where the private endpoint is (``blueprints.network_flows.endpoint_addresses``, named
``<account>.blob.core.windows.net`` by the lab's resolver, signed by the platform CA):

- no ``Authorization`` header: 401 ``NoAuthenticationInformation`` with Azure's bearer challenge;
- a shared-key signature or a SAS: 403 ``KeyBasedAuthenticationNotPermitted`` (shared keys are off);
- a bearer token that is forged, expired, from another tenant or meant for another audience than
  ``https://storage.azure.com``: 401 ``InvalidAuthenticationInfo``;
- a valid token whose identity has no grant on the container that allows the operation (Reader may
  list and read; Contributor may also write and delete; nobody holds a grant on the account, so
  listing containers is refused too): 403 ``AuthorizationPermissionMismatch``.

The grants are ``blueprints.airlock_settings.airlock_grants``, the table the Pulumi program turns
into role assignments. A VM's identity is its token's ``oid`` (from the metadata stand-in,
lab/platform_services.py); a data provider's is the group in its token's ``groups`` claim, from a
user token this module issues for the lab's directory (``blueprints lab storage-token UPN``). An allowed request goes
to Azurite with an account SAS of Azurite's own key, which never leaves the host.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from blueprints.airlock_settings import BLOB_CONTRIBUTOR, BLOB_READER, StorageGrant
from lab import platform_services

STORAGE_AUDIENCE = "https://storage.azure.com"
BLOB_DOMAIN = "blob.core.windows.net"
AZURITE_BLOB = Path(__file__).resolve().parent.parent / "tests" / "emulator" / "node_modules" / ".bin" / "azurite-blob"
STATE_FILE = "storage.json"
FRONT_PID_FILE = "storage-front.pid"
AZURITE_PID_FILE = "azurite.pid"
# What each role allows on its container (Azure's built-in data roles, narrowed to what the front tells apart).
ROLE_OPERATIONS = {BLOB_READER: {"read"}, BLOB_CONTRIBUTOR: {"read", "write"}}
# The version of the account SAS the front signs for Azurite (a string-to-sign without an encryption scope).
SAS_VERSION = "2019-12-12"
CHUNK = 1 << 20
UPN_PATTERN = re.compile(r"^[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,}$")
HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer",
               "host", "authorization", "content-length"}


class StorageError(Exception):
    """The stand-in could not be prepared or started; the message says why."""


# State: written by `lab up` (and `lab apply`) as root, read afresh on every request.

def grant_entries(grants: list[StorageGrant], stack: str) -> list[dict[str, str]]:
    """The grants as the front checks them: a VM's by its identity's object id, a group's by its id."""
    return [{"name": g.name, "principal_kind": g.principal_kind, "principal": g.principal, "role": g.role,
             "container": g.container,
             "object_id": platform_services.principal_id(stack, g.principal) if g.principal_kind == "vm"
             else g.principal} for g in grants]


def write_state(directory: Path, *, stack: str, account: str, grants: list[StorageGrant],
                azurite_port: int, providers_group: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    path = directory / STATE_FILE
    previous = json.loads(path.read_text()) if path.exists() else {}
    state = {
        "stack": stack,
        "account": account,
        # Azurite's own account key: kept from an earlier write, so a running Azurite keeps accepting it.
        "azurite_key": previous.get("azurite_key") or base64.b64encode(os.urandom(32)).decode(),
        "azurite_port": azurite_port,
        "providers_group": providers_group,
        "grants": grant_entries(grants, stack),
    }
    _save(path, state)
    return path


def update_grants(directory: Path, stack: str, grants: list[StorageGrant]) -> bool:
    """Replace the grants (a day-two edit of ``airlock.readers``); False when the lab has no stand-in."""
    path = directory / STATE_FILE
    if not path.exists():
        return False
    state = json.loads(path.read_text())
    state["grants"] = grant_entries(grants, stack)
    _save(path, state)
    return True


def _save(path: Path, state: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle, indent=1, sort_keys=True)
    os.replace(temporary, path)


def load_state(directory: Path) -> dict[str, Any]:
    return json.loads((directory / STATE_FILE).read_text())


# Tokens for people: the lab's directory says who is in the data providers group.

def user_object_id(upn: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"trust-blueprints-lab/user/{upn.lower()}"))


def issue_user_token(platform: dict[str, Any], upn: str, groups: list[str], audience: str = STORAGE_AUDIENCE,
                     now: float | None = None, lifetime: int = 3600) -> str:
    """An access token for a signed-in person, as Entra ID issues one (``oid``, ``upn``, ``groups``), signed
    with the platform stand-in's key so the same check verifies VM and user tokens."""
    now = int(time.time() if now is None else now)
    claims = {"aud": audience, "iss": f"https://sts.windows.net/{platform['tenant_id']}/", "iat": now, "nbf": now,
              "exp": now + lifetime, "oid": user_object_id(upn), "sub": user_object_id(upn),
              "tid": platform["tenant_id"], "upn": upn, "groups": list(groups)}
    return platform_services.sign_claims(platform, claims)


# The decision, apart from any socket so the tests can walk it.

@dataclass(frozen=True)
class Decision:
    status: int  # 0: forward to Azurite
    code: str = ""
    message: str = ""
    detail: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    who: str = ""


ALLOWED = Decision(0)


def operation(method: str, path: str, query: dict[str, str]) -> tuple[str | None, str]:
    """(the container the request acts on, or None for the account; ``read``, ``write`` or ``manage``)."""
    container = path.lstrip("/").split("/", 1)[0] or None
    if query.get("comp") in ("acl", "policy", "immutabilityPolicies", "legalhold"):
        return container, "manage"  # access policies and holds: no data role on a container allows them
    return container, "read" if method in ("GET", "HEAD") else "write"


def _challenge(tenant: str) -> dict[str, str]:
    return {"WWW-Authenticate": f"Bearer authorization_uri=https://login.microsoftonline.com/{tenant}/oauth2/"
                                f"authorize resource_id={STORAGE_AUDIENCE}"}


def decide(platform: dict[str, Any], storage: dict[str, Any], method: str, host: str, path: str,
           query: dict[str, str], headers: dict[str, str], now: float | None = None) -> Decision:
    """What Azure would answer before the blob service acts: ALLOWED, or the refusal."""
    lowered = {key.lower(): value for key, value in headers.items()}
    if host.split(":")[0].lower() != f"{storage['account']}.{BLOB_DOMAIN}":
        return Decision(400, "InvalidUri", "The requested URI does not represent any resource on the server.")
    authorization = lowered.get("authorization", "")
    if authorization.startswith(("SharedKey ", "SharedKeyLite ")) or "sig" in query:
        return Decision(403, "KeyBasedAuthenticationNotPermitted",
                        "Key based authentication is not permitted on this storage account.")
    if not authorization:
        return Decision(401, "NoAuthenticationInformation",
                        "Server failed to authenticate the request. Please refer to the information in the "
                        "www-authenticate header.", headers=_challenge(platform["tenant_id"]))
    failed = ("Server failed to authenticate the request. Please refer to the information in the "
              "www-authenticate header.")
    if not authorization.startswith("Bearer "):
        return Decision(401, "InvalidAuthenticationInfo", failed, "Authentication scheme is not supported.",
                        _challenge(platform["tenant_id"]))
    try:
        claims = platform_services.verify_token(platform, authorization.removeprefix("Bearer ").strip(),
                                                STORAGE_AUDIENCE, now)
    except ValueError as error:
        reason = str(error).split(": ", 1)[-1]
        return Decision(401, "InvalidAuthenticationInfo", failed, reason, _challenge(platform["tenant_id"]))
    if claims.get("tid") != platform["tenant_id"]:
        return Decision(401, "InvalidAuthenticationInfo", failed, "Issuer validation failed.",
                        _challenge(platform["tenant_id"]))
    container, action = operation(method, path, query)
    groups = set(claims.get("groups") or [])
    roles = {grant["role"] for grant in storage["grants"]
             if container is not None and grant["container"] == container
             and ((grant["principal_kind"] == "vm" and grant["object_id"] == claims.get("oid"))
                  or (grant["principal_kind"] == "group" and grant["object_id"] in groups))}
    who = claims.get("upn") or claims.get("oid", "")
    if not any(action in ROLE_OPERATIONS.get(role, set()) for role in roles):
        return Decision(403, "AuthorizationPermissionMismatch",
                        "This request is not authorized to perform this operation using this permission.", who=who)
    return Decision(0, who=who)


# Azure records each request to the airlock's account in StorageBlobLogs (its diagnostic setting,
# modules/blob_storage.py); the front keeps the same facts, one JSON line per request, allowed or
# refused, so the lab shows who read or wrote what and when, as an auditor would query it.
ACCESS_LOG = "blob-access.jsonl"
_ACCESS_LOG_LOCK = threading.Lock()


def operation_name(method: str, query: dict[str, str]) -> tuple[str, str]:
    """(StorageBlobLogs' OperationName, its Category) for a request."""
    if method == "GET":
        return ("ListBlobs" if query.get("comp") == "list" else "GetBlob"), "StorageRead"
    if method == "HEAD":
        return "GetBlobProperties", "StorageRead"
    if method == "DELETE":
        return "DeleteBlob", "StorageDelete"
    if method == "PUT":
        return {"block": "PutBlock", "blocklist": "PutBlockList"}.get(query.get("comp", ""), "PutBlob"), "StorageWrite"
    return method.title(), "StorageWrite"


def access_entry(method: str, path: str, query: dict[str, str], status: int, who: str, caller: str,
                 when: datetime | None = None) -> dict[str, Any]:
    name, category = operation_name(method, query)
    return {"TimeGenerated": (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "Category": category, "OperationName": name, "ObjectKey": path, "StatusCode": status,
            "Requester": who, "CallerIpAddress": caller}


def record_access(directory: Path, entry: dict[str, Any]) -> None:
    with _ACCESS_LOG_LOCK, (directory / ACCESS_LOG).open("a", encoding="utf-8") as log:
        log.write(json.dumps(entry, sort_keys=True) + "\n")


def read_access_log(directory: Path) -> list[dict[str, Any]]:
    try:
        lines = (directory / ACCESS_LOG).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def error_body(decision: Decision, request_id: str) -> bytes:
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    detail = (f"<AuthenticationErrorDetail>{_xml(decision.detail)}</AuthenticationErrorDetail>"
              if decision.detail else "")
    return (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{decision.code}</Code><Message>'
            f"{_xml(decision.message)}\nRequestId:{request_id}\nTime:{when}</Message>{detail}</Error>").encode()


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Forwarding: Azurite's account, signed with an account SAS of its key.

def account_sas(account: str, key: str, expiry: str = "2099-12-31T00:00:00Z") -> dict[str, str]:
    """An account SAS for every operation on Blob (the string-to-sign of versions before 2020-12-06)."""
    permissions, services, resource_types = "rwdlacup", "b", "sco"
    to_sign = "\n".join([account, permissions, services, resource_types, "", expiry, "", "", SAS_VERSION, ""])
    signature = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest())
    return {"sv": SAS_VERSION, "ss": services, "srt": resource_types, "sp": permissions, "se": expiry,
            "sig": signature.decode()}


class FrontHandler(BaseHTTPRequestHandler):
    server_version = "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    directory: Path = Path()
    platform_directory: Path = Path()

    def log_message(self, format: str, *args: Any) -> None:
        sys.stdout.write(f"{self.address_string()} {format % args}\n")
        sys.stdout.flush()

    def _handle(self) -> None:
        request_id = str(uuid.uuid4())
        storage = load_state(self.directory)
        platform = platform_services.load_state(self.platform_directory)
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        decision = decide(platform, storage, self.command, self.headers.get("Host", ""), url.path, query,
                          dict(self.headers.items()))
        caller = self.client_address[0]
        if decision.status:
            self.log_message("refused %s %s: %s %s", self.command, url.path, decision.status, decision.code)
            record_access(self.directory, access_entry(self.command, url.path, query, decision.status,
                                                       decision.who, caller))
            return self._refuse(decision, request_id)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            record_access(self.directory, access_entry(self.command, url.path, query, 411, decision.who, caller))
            return self._refuse(Decision(411, "MissingContentLengthHeader",
                                         "Content-Length HTTP header is required."), request_id)
        self.log_message("allowed %s %s for %s", self.command, url.path, decision.who)
        recorded = False

        # Recorded before the answer goes back, so a client that has its answer finds its entry.
        def record(status: int) -> None:
            nonlocal recorded
            recorded = True
            record_access(self.directory, access_entry(self.command, url.path, query, status, decision.who, caller))

        try:
            self._forward(storage, url.path, query, record)
        finally:
            if not recorded:
                record(500)

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _refuse(self, decision: Decision, request_id: str) -> None:
        body = error_body(decision, request_id)
        self.send_response(decision.status)
        for key, value in {"Content-Type": "application/xml", "x-ms-error-code": decision.code,
                           "x-ms-request-id": request_id, "Date": formatdate(usegmt=True),
                           **decision.headers}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
        # A refused upload's body is never read: the connection closes rather than be read past.
        if int(self.headers.get("Content-Length") or 0):
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self, storage: dict[str, Any], path: str, query: dict[str, str],
                 record: Callable[[int], None]) -> None:
        """Send the request on to Azurite and its answer back, recording Azurite's status first."""
        target = f"/{storage['account']}{path}?" + urlencode({**query, **account_sas(storage['account'],
                                                                                   storage["azurite_key"])})
        length = int(self.headers.get("Content-Length") or 0)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        connection = http.client.HTTPConnection("127.0.0.1", storage["azurite_port"], timeout=300)
        try:
            connection.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", f"127.0.0.1:{storage['azurite_port']}")
            for key, value in headers.items():
                connection.putheader(key, value)
            if length or self.command in ("PUT", "POST"):
                connection.putheader("Content-Length", str(length))
            connection.endheaders()
            remaining = length
            while remaining:
                chunk = self.rfile.read(min(CHUNK, remaining))
                if not chunk:
                    raise ConnectionError("the client closed the upload early")
                connection.send(chunk)
                remaining -= len(chunk)
            response = connection.getresponse()
            declared = response.getheader("Content-Length")
            body = None if declared is not None or self.command == "HEAD" else response.read()
            record(response.status)
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in HOP_HEADERS:
                    self.send_header(key, value)
            self.send_header("Content-Length", declared if declared is not None else str(len(body or b"")))
            self.end_headers()
            if self.command == "HEAD":
                return
            if body is not None:
                self.wfile.write(body)
                return
            while chunk := response.read(CHUNK):
                self.wfile.write(chunk)
        finally:
            connection.close()


def front_server(directory: Path, platform_directory: Path, address: str, port: int,
                 cert: Path | None = None, key: Path | None = None) -> ThreadingHTTPServer:
    handler = type("Front", (FrontHandler,), {"directory": directory, "platform_directory": platform_directory})
    server = ThreadingHTTPServer((address, port), handler)
    server.daemon_threads = True
    if cert and key:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(cert), str(key))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


# Processes: Azurite on loopback, then the front at the private endpoint's address.

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(process: subprocess.Popen[bytes], address: str, port: int, what: str, log: Path,
                    wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StorageError(f"{what} exited ({process.returncode}); see {log}")
        try:
            socket.create_connection((address, port), 1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise StorageError(f"{what} did not listen on {address}:{port} in {wait_seconds:g}s; see {log}")


def start_azurite(directory: Path, wait_seconds: float = 60) -> int:
    """Azurite for the state's account, on loopback only; returns its pid once it listens."""
    if not AZURITE_BLOB.exists():
        raise StorageError(f"Azurite is not installed ({AZURITE_BLOB}): `make azurite` installs it (npm, pinned)")
    state = load_state(directory)
    data, log = directory / "azurite", directory / "azurite.log"
    data.mkdir(exist_ok=True)
    environment = {**os.environ, "AZURITE_ACCOUNTS": f"{state['account']}:{state['azurite_key']}"}
    with log.open("ab") as output:
        process = subprocess.Popen(
            [str(AZURITE_BLOB), "--blobHost", "127.0.0.1", "--blobPort", str(state["azurite_port"]),
             "--location", str(data), "--disableTelemetry", "--skipApiVersionCheck", "--silent"],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environment,
            start_new_session=True)
    (directory / AZURITE_PID_FILE).write_text(f"{process.pid}\n")
    _wait_listening(process, "127.0.0.1", state["azurite_port"], "Azurite", log, wait_seconds)
    for container in sorted({grant["container"] for grant in state["grants"]}):
        create_container(directory, container)
    return process.pid


def create_container(directory: Path, name: str) -> bool:
    """Make a container as the Pulumi program does (the control plane, not a data role); False if it exists."""
    state = load_state(directory)
    query = urlencode({"restype": "container", **account_sas(state["account"], state["azurite_key"])})
    connection = http.client.HTTPConnection("127.0.0.1", state["azurite_port"], timeout=30)
    try:
        connection.request("PUT", f"/{state['account']}/{name}?{query}", headers={"Content-Length": "0"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status not in (201, 409):
        raise StorageError(f"Azurite did not create container {name}: {response.status} {body[:300]!r}")
    return response.status == 201


def start_front(directory: Path, platform_directory: Path, address: str, cert_pem: bytes, key_pem: bytes,
                port: int = 443, wait_seconds: float = 30) -> int:
    cert, key, log = directory / "front.crt", directory / "front.key", directory / "front.log"
    cert.write_bytes(cert_pem)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "lab.storage_service", "serve", "--state-dir", str(directory),
             "--platform-dir", str(platform_directory), "--listen", f"{address}:{port}",
             "--cert", str(cert), "--key", str(key)],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            cwd=str(Path(__file__).resolve().parent.parent))
    (directory / FRONT_PID_FILE).write_text(f"{process.pid}\n")
    _wait_listening(process, address, port, "the storage front", log, wait_seconds)
    return process.pid


def stop_processes(directory: Path) -> list[str]:
    """End the front and Azurite started for this lab; names what was stopped."""
    from lab.host_processes import stop_recorded

    stopped = []
    if stop_recorded(directory / FRONT_PID_FILE, "lab.storage_service", str(directory)):
        stopped.append("storage front")
    if stop_recorded(directory / AZURITE_PID_FILE, "azurite", str(directory)):
        stopped.append("Azurite")
    return stopped


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.storage_service",
                                     description="The lab's airlock storage account: an authorising front for "
                                                 "Azurite (`lab up` starts it; `blueprints lab storage-token` "
                                                 "gives a data provider a token).")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the front until killed")
    serve.add_argument("--state-dir", type=Path, required=True)
    serve.add_argument("--platform-dir", type=Path, required=True)
    serve.add_argument("--listen", required=True, help="ADDRESS:PORT")
    serve.add_argument("--cert", type=Path, required=True)
    serve.add_argument("--key", type=Path, required=True)
    args = parser.parse_args(argv)
    for path in (args.state_dir / STATE_FILE, args.platform_dir / platform_services.STATE_FILE):
        if not path.is_file():
            print(f"lab storage: {path} does not exist", file=sys.stderr)
            return 2
    server = front_server(args.state_dir, args.platform_dir, *_endpoint(args.listen), args.cert, args.key)
    print(f"lab storage: the airlock's account at {args.listen}", flush=True)
    server.serve_forever()
    return 0


def provider_token(upn: str, state_dir: Path | None = None) -> str:
    """A storage token for ``upn`` as a member of the running lab's data providers group.

    UsageError (exit 2) for a malformed name, no running lab, or a lab without an airlock."""
    from validation.usage import UsageError

    if not UPN_PATTERN.match(upn):
        raise UsageError(f"upn {upn!r}: must be a sign-in name such as data.provider@example.nhs.uk")
    if state_dir is None:
        from lab.layout import LabLayout, running_labs

        labs: list[LabLayout] = running_labs()
        if not labs:
            raise UsageError("no lab is running: `sudo blueprints lab up` first")
        state_dir = storage_dir(labs[0].platform_dir)
    if not (state_dir / STATE_FILE).is_file():
        raise UsageError("the running lab's stack has no airlock (add `airlock:` to the stack and `lab up` again)")
    storage = load_state(state_dir)
    return issue_user_token(platform_services.load_state(state_dir.parent), upn, [storage["providers_group"]])


def storage_dir(platform_dir: Path) -> Path:
    """The stand-in's folder, inside the platform stand-in's (whose signing key and tenant it reads)."""
    return platform_dir / "storage"


if __name__ == "__main__":
    sys.exit(main())
