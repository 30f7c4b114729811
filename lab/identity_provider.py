"""The lab's stand-in for Entra ID: an OpenID Connect provider served where Entra would be.

The gateway's user-data is the same bytes as on Azure, so it asks for
``https://login.microsoftonline.com/<tenant>/v2.0/.well-known/openid-configuration``. The lab
makes that name resolve to this server and gives it a lab-CA certificate for that name; the
provider (the ``oidc-provider-mock`` package) is mounted under ``/<tenant>/v2.0`` so every
endpoint the gateway discovers lies under the same path as on Entra.

One difference remains and is stated rather than hidden: the provider's ``iss`` is the origin
(``https://login.microsoftonline.com``) rather than Entra's ``.../<tenant>/v2.0``. The gateway
takes the issuer from the discovery document, so its configuration does not change.

Users are fixed at start: each has a ``preferred_username`` (and the same ``upn``) and a list of
group object ids, as Entra sends them when the app registration emits group claims. Beside the
stack's people, the provider signs in hostile members of the allowed group (``hostile_users``):
their sign-in names imitate the administrator, ``root``, a service account, another domain's
person of the same name, upper case, a look-alike letter and full-width letters, so the
acceptance tests can prove each is refused or lands on the right account of its own.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

ENTRA_HOST = "login.microsoftonline.com"


@dataclass(frozen=True)
class LabUser:
    """A person the stand-in can sign in: subject, account claim and groups."""

    sub: str
    preferred_username: str
    name: str
    groups: tuple[str, ...]

    def claims(self) -> dict[str, object]:
        return {
            "preferred_username": self.preferred_username,
            "upn": self.preferred_username,
            "name": self.name,
            "email": self.preferred_username,
            "groups": list(self.groups),
        }


def lab_users(allowed_group: str, domain: str = "example.nhs.uk", people: tuple[str, ...] = (),
              admin: str | None = None) -> tuple[LabUser, ...]:
    """The lab's people: an analyst in the allowed group, a colleague outside it, and ``people``
    (the stack's named users, e.g. its Git server accounts) in the allowed group, so a test can sign
    in as someone the tools behind the gateway know by name; with ``admin`` (the stack's
    administrator), the hostile members too."""
    return (
        LabUser("analyst", f"analyst@{domain}", "Ada Analyst", (allowed_group,)),
        LabUser("outsider", f"outsider@{domain}", "Oscar Outsider", ("00000000-0000-4000-8000-0000000000ff",)),
        *(LabUser(name, f"{name}@{domain}", name, (allowed_group,))
          for name in people if name not in ("analyst", "outsider")),
        *(hostile_users(allowed_group, admin, domain) if admin else ()),
    )


def _full_width(text: str) -> str:
    """ASCII letters and digits as their full-width forms (U+FF01-U+FF5E), which NFKC folds back."""
    return "".join(chr(ord(char) + 0xFEE0) if char.isascii() and char.isalnum() else char for char in text)


# Cyrillic small a (U+0430): looks like the Latin a.
CYRILLIC_A = "\u0430"


def hostile_users(allowed_group: str, admin: str, domain: str = "example.nhs.uk") -> tuple[LabUser, ...]:
    """Members of the allowed group whose sign-in names try to become someone they are not.

    The subject (what a test types at the provider's sign-in form) says what each one tries; the
    stack's own people keep subjects equal to their account names.
    """
    claims = {
        "claims-admin": f"{admin}@{domain}",
        "claims-admin-bare": admin,
        "claims-admin-upper": f"{admin.upper()}@{domain.upper()}",
        "claims-admin-full-width": f"{_full_width(admin)}@{domain}",
        "claims-root": f"root@{domain}",
        "claims-service": f"git@{domain}",
        "claims-other-domain": "analyst@elsewhere.example.com",
        "claims-partner": "analyst@partner.example.org",
        "claims-upper": f"ANALYST@{domain.upper()}",
        "claims-homoglyph": f"{CYRILLIC_A}nalyst@{domain}",
    }
    return tuple(LabUser(sub, name, f"Hostile {sub}", (allowed_group,)) for sub, name in claims.items())


def issuer_path(tenant_id: str) -> str:
    """The path Entra serves a tenant's v2.0 endpoints under."""
    return f"/{tenant_id}/v2.0"


def build_app(tenant_id: str, users: tuple[LabUser, ...]):  # -> WSGI application
    import oidc_provider_mock
    from oidc_provider_mock._storage import User
    from werkzeug.exceptions import NotFound
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    provider = oidc_provider_mock.app(
        require_nonce=True,
        user_claims=tuple(User(sub=user.sub, claims=user.claims()) for user in users),
    )
    # The package turns on Flask's interactive debugger; a service must not offer it.
    provider.debug = False
    provider.wsgi_app = getattr(provider.wsgi_app, "app", provider.wsgi_app)
    return DispatcherMiddleware(NotFound(), {issuer_path(tenant_id): provider})


def serve(address: str, port: int, cert: Path, key: Path, tenant_id: str, users: tuple[LabUser, ...]) -> None:
    from werkzeug.serving import make_server

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    server = make_server(address, port, build_app(tenant_id, users), threaded=True, ssl_context=context)
    print(f"lab identity provider: https://{ENTRA_HOST}{issuer_path(tenant_id)} on {address}:{port}", flush=True)
    server.serve_forever()


class IdentityProviderError(Exception):
    """The stand-in could not be started; the message says why."""


def start_in_namespace(netns: str, address: str, tenant_id: str, allowed_group: str,
                       cert_pem: bytes, key_pem: bytes, directory: Path, wait_seconds: float = 30,
                       people: tuple[str, ...] = (), admin: str | None = None) -> int:
    """Run the provider as a background process inside ``netns``; returns its pid once it listens.

    ``lab down`` ends it with the namespace's other processes.
    """
    import importlib.util

    from lab.host_processes import HostProcessError, start_listening_in

    if importlib.util.find_spec("oidc_provider_mock") is None:
        raise IdentityProviderError("the Python package oidc-provider-mock is not installed: run `make venv`")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key, log = directory / "idp.crt", directory / "idp.key", directory / "identity-provider.log"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    key.chmod(0o600)
    argv = [sys.executable, "-m", "lab.identity_provider", "--address", address, "--cert", str(cert),
            "--key", str(key), "--tenant-id", tenant_id, "--allowed-group", allowed_group,
            *(argument for name in people for argument in ("--person", name)), *(("--admin", admin) if admin else ())]
    try:
        return start_listening_in(netns, argv, log, address, 443, "the identity provider", wait_seconds)
    except HostProcessError as error:
        raise IdentityProviderError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.identity_provider",
                                     description="Serve the lab's stand-in for Entra ID over TLS.")
    parser.add_argument("--address", required=True, help="address to listen on")
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--cert", type=Path, required=True, help=f"PEM certificate for {ENTRA_HOST}")
    parser.add_argument("--key", type=Path, required=True, help="its PEM private key")
    parser.add_argument("--tenant-id", required=True, help="roles.gateway.identity.tenant_id")
    parser.add_argument("--allowed-group", required=True, help="roles.gateway.identity.allowed_group")
    parser.add_argument("--person", action="append", default=[], metavar="NAME",
                        help="a stack user to sign in as, in the allowed group (repeatable)")
    parser.add_argument("--admin", metavar="NAME",
                        help="admin.username: also sign in hostile members whose names imitate it and others")
    args = parser.parse_args(argv)
    for path in (args.cert, args.key):
        if not path.is_file():
            print(f"lab identity provider: {path} does not exist", file=sys.stderr)
            return 2
    users = lab_users(args.allowed_group, people=tuple(args.person), admin=args.admin)
    print(json.dumps({"users": [user.sub for user in users]}), flush=True)
    serve(args.address, args.port, args.cert, args.key, args.tenant_id, users)
    return 0


if __name__ == "__main__":
    sys.exit(main())
