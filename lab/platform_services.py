"""The lab's stand-ins for the two Azure endpoints a VM calls: the instance metadata service and Key Vault.

On Azure a VM asks the instance metadata service (IMDS, ``http://169.254.169.254``) for a token of
its managed identity, its tags and its user data, and presents the token to the environment's Key
Vault (``https://<vault>.vault.azure.net``), which answers only the secrets that identity was
granted. The lab takes the same path: nothing is written into a machine. This server answers both
APIs as Azure does, and no more kindly:

- IMDS refuses a request without the ``Metadata: true`` header, one carrying ``X-Forwarded-For``
  (a proxied request), and one without ``api-version``. The caller is known by its address, which
  the lab's bridge rules stop a machine from forging (lab/firewall.py), as Azure's host knows its VM.
- Key Vault answers 401 with Azure's bearer challenge without a token, 401 for a token that is
  expired, forged or meant for another audience, 403 ``ForbiddenByRbac`` when the identity has no
  grant for that secret (whether or not it exists, as RBAC checks come first), 404
  ``SecretNotFound`` for a granted secret nobody has set, and the secret bundle otherwise.

The grants are the same table the Pulumi program turns into role assignments
(``blueprints.secrets.secret_files``), so a machine reads exactly what it would read on Azure.
The state (identities, tags, user data, secret values, grants) is a root-only JSON file read
afresh on every request, so a test can revoke or restore a grant while machines run.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import ssl
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

IMDS_ADDRESS = "169.254.169.254"
# The vault listens at its private endpoint's address in the services subnet (blueprints/network_flows.py
# endpoint_addresses), held by the host and named by the lab's resolver, so the NSG rules of the flow
# table decide who reaches it (lab/firewall.py), as on Azure. This default serves only a stand-alone run.
VAULT_ADDRESS = "169.254.169.250"
VAULT_AUDIENCE = "https://vault.azure.net"
VAULT_DOMAIN = "vault.azure.net"
# The audiences a managed identity may ask IMDS for that the lab can answer.
KNOWN_RESOURCES = (VAULT_AUDIENCE, "https://storage.azure.com", "https://management.azure.com")
TOKEN_LIFETIME = 24 * 3600
# A subscription id of the lab's own (a fixed, visibly fake value), for names Azure derives from one.
LAB_SUBSCRIPTION_ID = "00000000-0000-4000-8000-00000000a1ab"
STATE_FILE = "state.json"


class PlatformError(Exception):
    """The stand-in could not be prepared or started; the message says why."""


def principal_id(stack: str, machine: str) -> str:
    """A stable object id for a machine's system-assigned identity (new per stack, as per VM on Azure)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"trust-blueprints-lab/{stack}/{machine}"))


@dataclass(frozen=True)
class LabMachine:
    """What the platform knows of one VM."""

    name: str
    address: str
    tags: dict[str, str]
    user_data: bytes
    granted: tuple[str, ...]  # Key Vault secret names this VM's identity may read


def write_state(directory: Path, *, stack: str, tenant_id: str, vault: str, machines: list[LabMachine],
                secrets: dict[str, str]) -> Path:
    """The server's state file: identities, tags, user data, secret values and grants (root only)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    state = {
        "stack": stack,
        "tenant_id": tenant_id,
        "subscription_id": LAB_SUBSCRIPTION_ID,
        "vault": vault,
        "signing_key": os.urandom(32).hex(),
        "machines": {
            m.name: {
                "address": m.address,
                "principal_id": principal_id(stack, m.name),
                "tags": m.tags,
                "user_data": encode_user_data(m.user_data),
            } for m in machines
        },
        "secrets": {name: {"value": value, "created": int(time.time())} for name, value in secrets.items()},
        "grants": {principal_id(stack, m.name): sorted(set(m.granted)) for m in machines},
    }
    _save(directory / STATE_FILE, state)
    return directory / STATE_FILE


def _save(path: Path, state: dict[str, Any]) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".state-")
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle, indent=1, sort_keys=True)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def load_state(directory: Path) -> dict[str, Any]:
    return json.loads((directory / STATE_FILE).read_text())


def set_grant(directory: Path, machine: str, secret: str, granted: bool) -> None:
    """Create or delete one role assignment: ``machine``'s identity reading ``secret``."""
    state = load_state(directory)
    if machine not in state["machines"]:
        raise PlatformError(f"no machine {machine!r} in the lab (machines: {', '.join(state['machines'])})")
    principal = state["machines"][machine]["principal_id"]
    names = set(state["grants"].get(principal, []))
    names = names | {secret} if granted else names - {secret}
    state["grants"][principal] = sorted(names)
    _save(directory / STATE_FILE, state)


def encode_user_data(user_data: bytes) -> str:
    """User data as the metadata service serves it (base64)."""
    return base64.b64encode(user_data).decode("ascii")


def set_user_data(directory: Path, machine: str, user_data: bytes) -> None:
    """Change a VM's user data in place, as `pulumi up` does with the VM's userData property."""
    state = load_state(directory)
    if machine not in state["machines"]:
        raise PlatformError(f"no machine {machine!r} in the lab")
    state["machines"][machine]["user_data"] = encode_user_data(user_data)
    _save(directory / STATE_FILE, state)


# Tokens: a compact JWT signed with the lab's key (HS256). Azure signs with RS256 keys of its own; the
# VM never reads a token, it only presents it, so the difference cannot change what a VM does.

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_claims(state: dict[str, Any], claims: dict[str, Any]) -> str:
    """A compact JWT of ``claims`` signed with the lab's key (the storage stand-in signs people's tokens too)."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64url(json.dumps(claims, sort_keys=True).encode())
    signature = hmac.new(bytes.fromhex(state["signing_key"]), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64url(signature)}"


def issue_token(state: dict[str, Any], machine: str, resource: str, now: float | None = None) -> dict[str, Any]:
    now = int(time.time() if now is None else now)
    entry = state["machines"][machine]
    claims = {
        "aud": resource,
        "iss": f"https://sts.windows.net/{state['tenant_id']}/",
        "iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME,
        "oid": entry["principal_id"], "sub": entry["principal_id"],
        "tid": state["tenant_id"],
        "xms_mirid": vm_resource_id(state, machine),
    }
    return {
        "access_token": sign_claims(state, claims),
        "client_id": entry["principal_id"],
        "expires_in": str(TOKEN_LIFETIME),
        "expires_on": str(now + TOKEN_LIFETIME),
        "ext_expires_in": str(TOKEN_LIFETIME),
        "not_before": str(now),
        "resource": resource,
        "token_type": "Bearer",
    }


def verify_token(state: dict[str, Any], token: str, audience: str, now: float | None = None) -> dict[str, Any]:
    """The token's claims, or ValueError naming what is wrong (Key Vault's AKV100xx reasons)."""
    try:
        header, body, signature = token.split(".")
    except ValueError:
        raise ValueError("AKV10000: Request is missing a Bearer or PoP token.") from None
    expected = hmac.new(bytes.fromhex(state["signing_key"]), f"{header}.{body}".encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(expected, _unb64url(signature)):
            raise ValueError("AKV10032: Invalid issuer or signature.")
        claims = json.loads(_unb64url(body))
    except (ValueError, json.JSONDecodeError) as error:
        raise ValueError(str(error) if str(error).startswith("AKV") else "AKV10032: Invalid token.") from None
    if claims.get("aud") not in (audience, audience + "/"):
        raise ValueError(f"AKV10022: Invalid audience. Expected {audience}, found: {claims.get('aud')}.")
    if claims.get("exp", 0) < int(time.time() if now is None else now):
        raise ValueError("AKV10032: Token expired.")
    return claims


def vm_resource_id(state: dict[str, Any], machine: str) -> str:
    return (f"/subscriptions/{state['subscription_id']}/resourceGroups/lab-{state['stack']}"
            f"/providers/Microsoft.Compute/virtualMachines/{machine}")


class _Handler(BaseHTTPRequestHandler):
    server_version = "trust-blueprints-lab-platform"
    sys_version = ""
    directory: Path = Path()

    def log_message(self, format: str, *args: Any) -> None:
        sys.stdout.write(f"{self.address_string()} {format % args}\n")
        sys.stdout.flush()

    def _reply(self, status: int, body: Any, content_type: str = "application/json; charset=utf-8",
               headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else (json.dumps(body).encode() if not isinstance(body, str)
                                                      else body.encode())
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _caller(self, state: dict[str, Any]) -> str | None:
        address = self.client_address[0]
        return next((name for name, entry in state["machines"].items() if entry["address"] == address), None)


class MetadataHandler(_Handler):
    """http://169.254.169.254/metadata/...: identity tokens, tags, user data, the instance document."""

    def do_GET(self) -> None:
        state = load_state(self.directory)
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if self.headers.get("Metadata", "").lower() != "true":
            return self._reply(400, {"error": "invalid_request",
                                     "error_description": "Required metadata header not specified"})
        if "X-Forwarded-For" in self.headers:
            return self._reply(400, {"error": "invalid_request",
                                     "error_description": "Request contains a forwarded header"})
        if "api-version" not in query:
            return self._reply(400, {"error": "Bad request. api-version was not specified in the request. "
                                              "For more information refer to aka.ms/azureimds",
                                     "newest-versions": ["2023-07-01"]})
        machine = self._caller(state)
        if machine is None:
            return self._reply(403, {"error": "forbidden", "error_description":
                                     f"{self.client_address[0]} is not a VM of this lab"})
        entry = state["machines"][machine]
        path = url.path.rstrip("/")
        if path == "/metadata/identity/oauth2/token":
            resource = unquote(query.get("resource", ""))
            if not resource:
                return self._reply(400, {"error": "invalid_request",
                                         "error_description": "Required query variable 'resource' is missing"})
            if resource.rstrip("/") not in KNOWN_RESOURCES:
                return self._reply(400, {"error": "invalid_resource",
                                         "error_description": f"AADSTS500011: The resource principal named "
                                                              f"{resource} was not found"})
            return self._reply(200, issue_token(state, machine, resource.rstrip("/")))
        if path == "/metadata/instance/compute/tagsList":
            return self._reply(200, [{"name": k, "value": v} for k, v in entry["tags"].items()])
        if path == "/metadata/instance/compute/userData":
            return self._reply(200, entry["user_data"], "text/plain; charset=utf-8")
        if path == "/metadata/instance":
            return self._reply(200, {"compute": {
                "name": machine, "azEnvironment": "AzurePublicCloud",
                "subscriptionId": state["subscription_id"], "resourceGroupName": f"lab-{state['stack']}",
                "resourceId": vm_resource_id(state, machine),
                "tagsList": [{"name": k, "value": v} for k, v in entry["tags"].items()],
            }, "network": {"interface": [{"ipv4": {"ipAddress": [{"privateIpAddress": entry["address"]}]}}]}})
        return self._reply(404, {"error": "Not found"})


class VaultHandler(_Handler):
    """https://<vault>.vault.azure.net/secrets/<name>[/<version>]: Key Vault's secrets API, RBAC mode."""

    def do_GET(self) -> None:
        state = load_state(self.directory)
        vault_host = f"{state['vault']}.{VAULT_DOMAIN}"
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if self.headers.get("Host", "").split(":")[0].lower() != vault_host:
            return self._reply(404, {"error": {"code": "VaultNotFound", "message": "No such vault here."}})
        if "api-version" not in query:
            return self._reply(400, {"error": {"code": "BadParameter", "message":
                                               "The 'api-version' query parameter is missing."}})
        challenge = (f'Bearer authorization="https://login.microsoftonline.com/{state["tenant_id"]}", '
                     f'resource="{VAULT_AUDIENCE}"')
        authorization = self.headers.get("Authorization", "")
        if not authorization.startswith("Bearer "):
            return self._reply(401, {"error": {"code": "Unauthorized", "message":
                                               "AKV10000: Request is missing a Bearer or PoP token."}},
                               headers={"WWW-Authenticate": challenge})
        try:
            claims = verify_token(state, authorization.removeprefix("Bearer ").strip(), VAULT_AUDIENCE)
        except ValueError as error:
            return self._reply(401, {"error": {"code": "Unauthorized", "message": str(error)}},
                               headers={"WWW-Authenticate": challenge})
        parts = [p for p in url.path.split("/") if p]
        if len(parts) not in (2, 3) or parts[0] != "secrets":
            return self._reply(404, {"error": {"code": "NotFound", "message": "Not found."}})
        name = parts[1]
        if name not in state["grants"].get(claims["oid"], []):
            return self._reply(403, {"error": {
                "code": "Forbidden",
                "message": ("Caller is not authorized to perform action on resource.\r\n"
                            f"Caller: appid=;oid={claims['oid']}\r\n"
                            "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\n"
                            f"Resource: '/vaults/{state['vault']}/secrets/{name}'\r\n"
                            "Assignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC'"),
                "innererror": {"code": "ForbiddenByRbac"}}})
        secret = state["secrets"].get(name)
        if secret is None:
            return self._reply(404, {"error": {"code": "SecretNotFound", "message":
                                               f"A secret with (name/id) {name} was not found in this key vault."}})
        version = hashlib.sha256(f"{name}{secret['created']}".encode()).hexdigest()[:32]
        return self._reply(200, {
            "value": secret["value"],
            "id": f"https://{vault_host}/secrets/{name}/{version}",
            "attributes": {"enabled": True, "created": secret["created"], "updated": secret["created"],
                           "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90},
            "tags": {},
        })


def _server(handler: type[_Handler], directory: Path, address: str, port: int) -> ThreadingHTTPServer:
    handler_class = type(handler.__name__, (handler,), {"directory": directory})
    server = ThreadingHTTPServer((address, port), handler_class)
    server.daemon_threads = True
    return server


def serve(directory: Path, imds: tuple[str, int], vault: tuple[str, int], cert: Path, key: Path) -> None:
    """Both endpoints until killed: IMDS over plain HTTP (as on Azure), the vault over TLS."""
    metadata = _server(MetadataHandler, directory, *imds)
    vault_server = _server(VaultHandler, directory, *vault)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    vault_server.socket = context.wrap_socket(vault_server.socket, server_side=True)
    threading.Thread(target=metadata.serve_forever, daemon=True).start()
    print(f"lab platform: IMDS on {imds[0]}:{imds[1]}, Key Vault on {vault[0]}:{vault[1]}", flush=True)
    vault_server.serve_forever()


PID_FILE = "platform.pid"


def start_process(directory: Path, cert_pem: bytes, key_pem: bytes, vault_address: str = VAULT_ADDRESS,
                  wait_seconds: float = 30) -> int:
    """Run the server in the background on the host; returns its pid once both endpoints listen.

    The addresses must already be on the host (lab/network.py create_platform_link).
    """
    import socket
    import subprocess

    cert, key, log = directory / "vault.crt", directory / "vault.key", directory / "platform.log"
    cert.write_bytes(cert_pem)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "lab.platform_services", "--state-dir", str(directory),
             "--cert", str(cert), "--key", str(key), "--vault", f"{vault_address}:443"],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            cwd=str(Path(__file__).resolve().parent.parent))
    (directory / PID_FILE).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PlatformError(f"the metadata and Key Vault stand-in exited ({process.returncode}); see {log}")
        try:
            for address, port in ((IMDS_ADDRESS, 80), (vault_address, 443)):
                socket.create_connection((address, port), 1).close()
            return process.pid
        except OSError:
            time.sleep(0.2)
    raise PlatformError(f"the metadata and Key Vault stand-in did not listen in {wait_seconds:g}s; see {log}")


def stop_process(directory: Path) -> bool:
    """End the server started for this lab, if it runs; True when one was stopped."""
    from lab.host_processes import stop_recorded

    return stop_recorded(directory / PID_FILE, "lab.platform_services", str(directory))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.platform_services",
                                     description="Serve the lab's instance metadata and Key Vault stand-ins.")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--imds", default=f"{IMDS_ADDRESS}:80", help="ADDRESS:PORT for the metadata service")
    parser.add_argument("--vault", default=f"{VAULT_ADDRESS}:443", help="ADDRESS:PORT for Key Vault")
    parser.add_argument("--cert", type=Path, required=True, help="PEM certificate for the vault's host name")
    parser.add_argument("--key", type=Path, required=True)
    args = parser.parse_args(argv)
    if not (args.state_dir / STATE_FILE).is_file():
        print(f"lab platform: {args.state_dir / STATE_FILE} does not exist", file=sys.stderr)
        return 2

    def endpoint(text: str) -> tuple[str, int]:
        host, _, port = text.rpartition(":")
        return host, int(port)

    serve(args.state_dir, endpoint(args.imds), endpoint(args.vault), args.cert, args.key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
