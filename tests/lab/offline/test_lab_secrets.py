"""Lab secrets: a CA, per-machine certificates for the right names, role secrets shared by name."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace

import pytest

from blueprints.roles import all_roles, registered, role
from blueprints.topology import plan_machines
from lab import secrets
from lab.secrets import SECRET_KINDS, LabCertificateAuthority, SecretSpec

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl (make host-deps)")


@pytest.fixture
def ca(tmp_path):
    authority = LabCertificateAuthority(tmp_path / "ca", "exnhs-dev")
    authority.ensure()
    return authority


def _text(cert: bytes, tmp_path) -> str:
    path = tmp_path / "cert.pem"
    path.write_bytes(cert)
    return subprocess.run(["openssl", "x509", "-in", str(path), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout


def test_machine_certificates_verify_against_the_lab_ca(example_config, ca, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    for machine in plan_machines(example_config):
        files = secrets.machine_secret_files(example_config, machine, ca, store)
        assert set(files) >= {"ca.crt", "tls.crt", "tls.key"}
        cert = tmp_path / f"{machine.name}.crt"
        cert.write_bytes(files["tls.crt"])
        verified = subprocess.run(["openssl", "verify", "-CAfile", str(ca.cert), str(cert)],
                                  capture_output=True, text=True)
        assert verified.returncode == 0, verified.stderr
        names = _text(files["tls.crt"], tmp_path)
        assert f"DNS:{machine.name}.exnhs-dev.internal" in names
        assert ("DNS:analytics.example.nhs.uk" in names) == machine.public_entry


def test_key_matches_certificate(example_config, ca, tmp_path):
    machine = plan_machines(example_config)[0]
    files = secrets.machine_secret_files(example_config, machine, ca, tmp_path)
    (tmp_path / "k").write_bytes(files["tls.key"])
    (tmp_path / "c").write_bytes(files["tls.crt"])
    key_pub = subprocess.run(["openssl", "pkey", "-in", str(tmp_path / "k"), "-pubout"], capture_output=True).stdout
    cert_pub = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "c"), "-noout", "-pubkey"],
                              capture_output=True).stdout
    assert key_pub and key_pub == cert_pub


def test_a_secret_name_has_one_value_for_every_machine(example_config, ca, tmp_path, monkeypatch):
    spec = SecretSpec("shared-token", "token")
    analytics = [m for m in plan_machines(example_config) if m.role == "analytics"]
    with registered(replace(role("analytics"), secrets=(spec,))):
        values = {secrets.machine_secret_files(example_config, m, ca, tmp_path)["shared-token"] for m in analytics}
    assert len(values) == 1 and len(next(iter(values)).strip()) >= 43


def test_ssh_key_secrets_come_with_their_public_half(example_config, ca, tmp_path, monkeypatch):
    git = next(m for m in plan_machines(example_config) if m.role == "git_server")
    with registered(replace(role("git_server"), secrets=(SecretSpec("deploy-key", "ssh-ed25519"),))):
        files = secrets.machine_secret_files(example_config, git, ca, tmp_path)
    assert files["deploy-key"].startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert files["deploy-key.pub"].startswith(b"ssh-ed25519 ")


def test_unknown_kind_is_refused_where_it_is_declared():
    with pytest.raises(ValueError, match="kind 'password'"):
        SecretSpec("x", "password")


def test_declared_role_secrets_use_known_kinds():
    for declared in all_roles():
        for spec in declared.secrets:
            assert spec.kind in SECRET_KINDS, f"{declared.name}: {spec}"
            assert spec.name not in ("ca.crt", "tls.crt", "tls.key")


def test_installed_files_are_private(tmp_path):
    directory = secrets.install_secret_files(tmp_path, {"tls.key": b"k", "ca.crt": b"c"})
    assert directory.stat().st_mode & 0o777 == 0o700
    for name in ("tls.key", "ca.crt"):
        assert (directory / name).stat().st_mode & 0o777 == 0o600
        assert (directory / name).read_bytes() in (b"k", b"c")


def test_the_lab_vault_holds_every_granted_secret_and_grants_follow_the_programs_table(example_config, ca,
                                                                                        tmp_path):
    from blueprints.secrets import secret_files

    machines = plan_machines(example_config)
    values, grants = secrets.vault_contents(example_config, machines, ca, tmp_path)
    for machine in machines:
        assert grants[machine.name] == tuple(name for _file, name in secret_files(machine))
        assert set(grants[machine.name]) <= set(values), machine.name
    # A machine's key is granted to that machine alone.
    for machine in machines:
        holders = [name for name, granted in grants.items() if f"{machine.name}-tls-key" in granted]
        assert holders == [machine.name]


def test_the_platform_anchor_is_added_once_to_the_machines_store(tmp_path):
    bundle = tmp_path / "etc/ssl/certs/ca-certificates.crt"
    bundle.parent.mkdir(parents=True)
    bundle.write_bytes(b"-----BEGIN CERTIFICATE-----\nDEBIAN\n-----END CERTIFICATE-----\n")
    anchor = b"-----BEGIN CERTIFICATE-----\nPLATFORM\n-----END CERTIFICATE-----\n"
    secrets.install_platform_anchor(tmp_path, anchor)
    secrets.install_platform_anchor(tmp_path, anchor)
    assert bundle.read_bytes().count(b"PLATFORM") == 1
    assert (tmp_path / "usr/local/share/ca-certificates/lab-azure-platform-ca.crt").read_bytes() == anchor
