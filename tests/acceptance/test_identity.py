"""Who is who: hostile sign-in names, each signed in through the real login flow, refused or given
the right account of its own.

The lab's identity provider (lab/identity_provider.py, ``hostile_users``) signs in members of the
allowed group whose sign-in names imitate the administrator, ``root``, a service account, a person
of the same name in another domain, upper case, a look-alike letter and full-width letters. A
browser in the client namespace (an analyst at home) signs in as each at the gateway, then asks
the first analytics VM's JupyterHub to sign them in, and opens the Git web view. The stack's
account map (roles.gateway.identity.accounts) decides: a name it holds reaches its own account,
any other name gets no account anywhere, with a log line at the gateway and at the hub.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from blueprints.sign_in_names import account_map, canonical_upn
from lab.identity_provider import hostile_users

pytestmark = pytest.mark.lab

HERE = Path(__file__).resolve().parent
SIGN_IN_LOG = "/var/log/apache2/gateway-sign-in.log"
# The landing page's text where the account would be (gateway vm-settings.yaml.j2, echomsg).
NO_ACCOUNT = "none: your sign-in name is not in the trust's account list"
# What each hostile subject tries; the stack's validation keeps these out of any account map.
NEVER_MAPPED = ("claims-admin", "claims-admin-bare", "claims-admin-upper", "claims-admin-full-width",
                "claims-root", "claims-service", "claims-homoglyph")


@pytest.fixture(scope="module")
def public_host(lab) -> str:
    gateway = lab.config["roles"].get("gateway") or {}
    if gateway.get("kind") != "self-hosted":
        pytest.skip("the stack has no self-hosted gateway")
    if lab.target != "lab":
        pytest.skip("the hostile members exist only in the lab's identity provider")
    return gateway["hostname"]


@pytest.fixture(scope="module")
def claimed_names(lab, public_host) -> dict[str, str]:
    """Subject -> the sign-in name the provider sends for it."""
    identity = lab.config["roles"]["gateway"]["identity"]
    return {user.sub: user.preferred_username
            for user in hostile_users(identity["allowed_group"], lab.config["admin"]["username"])}


@pytest.fixture(scope="module")
def hub_machine(lab) -> str:
    machines = [m.name for m in lab.machines if m.role == "analytics"]
    if not machines:
        pytest.skip("the stack has no analytics VM")
    return machines[0]


def _logged(name: str) -> str:
    """How Apache's access log writes a value: quotes, backslashes, control and non-ASCII bytes escaped."""
    out = []
    for byte in name.encode("utf-8"):
        char = chr(byte)
        if char == '"' or char == "\\":
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


_SESSIONS: dict[str, dict[str, Any]] = {}


def _session(lab, public_host: str, hub_machine: str, sub: str) -> dict[str, Any]:
    """Sign in as ``sub`` in a real browser (once per module), then at the hub and the Git web view."""
    if sub not in _SESSIONS:
        started = time.time()
        argv = [sys.executable, str(HERE / "gateway_browser.py"), "--url", f"https://{public_host}/",
                "--user", sub, "--ca-cert", str(lab.ca_cert), "--hub", hub_machine]
        result = lab.client(argv, timeout=240)
        assert result.returncode == 0, result.stderr[-3000:]
        _SESSIONS[sub] = {**json.loads(result.stdout.strip().splitlines()[-1]), "started": started}
    return _SESSIONS[sub]


def _hub_log(lab, hub_machine: str, since: float) -> str:
    host = lab.host(hub_machine)
    return host.run(f"journalctl -u jupyterhub --no-pager -o cat --since @{int(since) - 1}").stdout


def _expected_account(lab, name: str) -> str | None:
    return account_map(lab.config).get(canonical_upn(name))


@pytest.mark.parametrize("sub", NEVER_MAPPED)
def test_a_name_imitating_a_protected_account_is_in_no_account_map(sub, claimed_names, lab):
    # validate refuses a map that gives the administrator or a service account to anyone, and a
    # look-alike is not a UPN the map accepts: so none of these can be mapped in any valid stack.
    assert _expected_account(lab, claimed_names[sub]) is None


@pytest.mark.parametrize("sub", [*NEVER_MAPPED, "claims-other-domain", "claims-partner", "claims-upper"])
def test_each_hostile_sign_in_is_refused_or_reaches_its_own_account(sub, claimed_names, lab, public_host,
                                                                    hub_machine, gateway_host):
    name = claimed_names[sub]
    expected = _expected_account(lab, name)
    session = _session(lab, public_host, hub_machine, sub)
    # A member of the allowed group: the gateway signs them in and shows their whole sign-in name.
    assert session["landing_status"] == 200, session
    log = gateway_host.run(f"cat {SIGN_IN_LOG}").stdout
    has_git = any(m.role == "git_server" for m in lab.machines)
    hub_log = _hub_log(lab, hub_machine, session["started"])
    if expected is None:
        assert session["account"] == NO_ACCOUNT, session
        assert session["hub_status"] == 403, session
        if has_git:
            assert session["git_status"] == 403, session
        assert f'sign-in="{_logged(name)}" account="-"' in log
        assert "Refused sign-in: the gateway named no account for sign-in name" in hub_log
        if name.isascii():
            assert f"Refused sign-in: the gateway named no account for sign-in name {name!r}" in hub_log
    else:
        assert session["account"] == expected, session
        assert session["hub_status"] == 200, session
        assert f"/{hub_machine}/" in session["hub_url"] and "gateway-login" not in session["hub_url"], session
        assert f'sign-in="{_logged(name)}" account="{expected}"' in log
        assert f"Signed in {name!r} as account {expected}" in hub_log


def test_upper_case_reaches_the_same_account_and_another_domain_a_different_one(lab, claimed_names):
    # Entra ID treats UPNs without regard to case; the same local part in another domain is someone else.
    if _expected_account(lab, "analyst@example.nhs.uk") is None or \
            _expected_account(lab, claimed_names["claims-partner"]) is None:
        pytest.skip("the stack maps neither the lab's analyst nor the partner's (stacks/example.yaml does)")
    assert _expected_account(lab, claimed_names["claims-upper"]) == _expected_account(lab, "analyst@example.nhs.uk")
    partner = _expected_account(lab, claimed_names["claims-partner"])
    assert partner is not None and partner != _expected_account(lab, "analyst@example.nhs.uk")
    assert _expected_account(lab, claimed_names["claims-other-domain"]) is None


def test_no_sign_in_name_became_a_local_account(lab, hub_machine, claimed_names, public_host):
    for sub in claimed_names:
        _session(lab, public_host, hub_machine, sub)
    accounts = lab.host(hub_machine).run("getent passwd | cut -d: -f1").stdout.split()
    assert accounts
    # Every account is a plain ASCII name: no whole sign-in name, no look-alike or full-width one.
    assert [name for name in accounts if not name.isascii() or "@" in name] == []
