"""A landing zone's hub firewall (issue 23): the mirror reaches its upstreams through it, by name, and
nothing else leaves the spoke.

Stacks with ``network.landing_zone`` have no NAT gateway: the mirror subnet's route table sends the
Internet to the hub firewall, which the hub team configures from the request pack (the mirror, and only
it, to its upstreams' host names and ports). In the lab the firewall is a stand-in at
``hub_firewall_address`` (lab/hub_firewall.py) that logs each decision; the tests read that log to show
which layer refused what. The attacks are run as root on the mirror, the strongest position an insider
who took the mirror could have: the firewall is outside every VM. On Azure (``--target ssh``) the
refusals are checked the same way and the log checks are skipped (Azure Firewall's own logs hold them).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any

import pytest

from blueprints.landing_zone import landing_zone

pytestmark = pytest.mark.lab

# An address of the documentation range (TEST-NET-3), nobody's server: where a forged name "goes".
NOWHERE = "203.0.113.200"
CURL = "curl -sS -o /dev/null -w '%{http_code}' --max-time 30"
# Where the NSG drops the packets, nothing answers: a refusal shows as a timeout.
CURL_DROPPED = "curl -sS -o /dev/null -w '%{http_code}' --max-time 10"


@pytest.fixture(scope="module")
def spoke(lab: Any) -> dict[str, Any]:
    zone = landing_zone(lab.config)
    if zone is None:
        pytest.skip("this stack builds its own network (no network.landing_zone): its mirror leaves by NAT")
    return zone


@pytest.fixture
def decisions(lab: Any, spoke: dict[str, Any]) -> Iterator[Any]:
    """The firewall's decisions made during the test (None on Azure, where its own logs hold them)."""
    if lab.target != "lab":
        yield None
        return
    from lab import hub_firewall

    directory = lab.state_dir / "hub-firewall"
    before = len(hub_firewall.decisions(directory))

    def made() -> list[dict[str, Any]]:
        return hub_firewall.decisions(directory)[before:]

    yield made


def _address_of(host: Any, name: str) -> str:
    result = host.run(f"getent ahostsv4 {shlex.quote(name)}")
    assert result.rc == 0 and result.stdout.split(), f"{name} does not resolve on {host}: {result.stderr}"
    return result.stdout.split()[0]


def test_the_mirror_reaches_its_upstreams_by_name_through_the_firewall(spoke, mirror_host, lab, decisions):
    https = mirror_host.run(f"{CURL} https://pypi.org/simple/six/")
    http = mirror_host.run(f"{CURL} http://deb.debian.org/debian/dists/trixie/Release")
    assert (https.stdout, http.stdout) == ("200", "200"), f"{https.stderr} {http.stderr}"
    if decisions is not None:
        mirror = next(m.private_ip for m in lab.machines if m.role == "package_mirror")
        allowed = {(d["source"], d["name"], d["port"]) for d in decisions() if d["action"] == "Allow"}
        assert {(mirror, "pypi.org", 443), (mirror, "deb.debian.org", 80)} <= allowed


def test_a_name_the_hub_team_was_not_asked_to_allow_is_refused(spoke, mirror_host, decisions):
    # At an upstream's own address, so only the name differs from an allowed request.
    pypi = _address_of(mirror_host, "pypi.org")
    result = mirror_host.run(f"{CURL} --resolve www.example.com:443:{pypi} https://www.example.com/")
    assert result.rc != 0 and result.stdout in ("", "000"), "a name outside the request pack's rules went out"
    if decisions is not None:
        refused = [d for d in decisions() if d.get("name") == "www.example.com"]
        assert refused and refused[-1]["action"] == "Deny", decisions()
        assert "not an allowed upstream" in refused[-1]["reason"]


def test_an_address_without_a_name_is_refused(spoke, mirror_host, decisions):
    # curl sends no TLS server name to an address: nothing says which upstream it is.
    pypi = _address_of(mirror_host, "pypi.org")
    result = mirror_host.run(f"{CURL} --insecure https://{pypi}/simple/six/")
    assert result.rc != 0, "a connection by address alone went out"
    if decisions is not None:
        refused = [d for d in decisions() if d["destination"] == pypi and d["port"] == 443]
        assert refused and refused[-1]["action"] == "Deny" and "no host name" in refused[-1]["reason"], decisions()


def test_a_host_header_the_hub_team_was_not_asked_to_allow_is_refused(spoke, mirror_host, decisions):
    result = mirror_host.run(f"{CURL} -H 'Host: www.example.com' http://deb.debian.org/debian/")
    assert result.rc != 0, "an HTTP request for another host went out through an allowed upstream's address"
    if decisions is not None:
        refused = [d for d in decisions() if d.get("name") == "www.example.com" and d["port"] == 80]
        assert refused and refused[-1]["action"] == "Deny", decisions()


def test_a_forged_name_reaches_only_the_real_upstream(spoke, mirror_host, lab, decisions):
    if decisions is None:
        pytest.skip("the lab stand-in's behaviour: Azure Firewall's own choice of address is in its logs")
    # The connection is sent to an address of the attacker's choosing, naming an allowed upstream.
    result = mirror_host.run(f"{CURL} --resolve pypi.org:443:{NOWHERE} https://pypi.org/simple/six/")
    assert result.stdout == "200", f"the allowed name did not reach pypi.org: {result.stderr}"
    made = [d for d in decisions() if d["destination"] == NOWHERE]
    assert made and made[-1]["action"] == "Allow" and made[-1]["upstream"] != NOWHERE, made


def test_only_the_mirror_goes_out(spoke, git_host, lab, decisions):
    result = git_host.run(f"{CURL_DROPPED} https://pypi.org/simple/six/")
    assert result.rc != 0, "the Git server reached the Internet"
    if decisions is not None:
        git = next(m.private_ip for m in lab.machines if m.role == "git_server")
        assert not [d for d in decisions() if d["source"] == git and d["action"] == "Allow"]


def test_no_other_port_leaves_the_spoke(spoke, mirror_host):
    pypi = _address_of(mirror_host, "pypi.org")
    # All at once: a dropped connection shows only as the timeout.
    tries = " ".join(f"(timeout 8 bash -c 'exec 3<>/dev/tcp/{pypi}/{port}' 2>/dev/null; echo {port}=$?) &"
                     for port in (22, 53, 8080))
    result = mirror_host.run(f"{tries} wait")
    outcomes = dict(line.split("=") for line in result.stdout.split())
    assert sorted(outcomes) == ["22", "53", "8080"], result.stdout
    opened = [port for port, status in outcomes.items() if status == "0"]
    assert opened == [], f"the mirror opened {pypi} on {opened}: only 80 and 443 go to the hub firewall"
