"""Secrets and certificates: what the environment's Key Vault holds, and which machine may read what.

On Azure the Pulumi program creates these secrets in Key Vault and grants each VM's identity the
ones it reads; a boot step (blueprints/templates/base.yaml.j2) fetches them into
/etc/trust-blueprints/secrets/. The lab takes the same path: `lab up` makes the same secrets and
loads them, with the same grants (``blueprints.secrets.secret_files``), into its Key Vault stand-in
(lab/platform_services.py), and each machine fetches its own at boot. Nothing is written into a
machine, and secrets never travel in user-data.

Every machine gets ``ca.crt`` (the environment's internal CA), ``tls.crt`` and ``tls.key``
(a certificate for ``<machine>.<zone>``, plus the public host name on the gateway). Role
secrets are declared by each role (``secrets`` in blueprints/<role>/role.py), which Azure and
the lab both read; a name means one value per environment, as one Key Vault secret would, so
two roles declaring the same name share the value.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from blueprints.secrets import SECRET_KINDS, SecretSpec, role_secrets, secret_files
from blueprints.secrets import certificate_names as machine_names
from blueprints.topology import Machine

SECRETS_PATH = "etc/trust-blueprints/secrets"
CA_DAYS = 825
CERT_DAYS = 397


class SecretError(Exception):
    """A certificate or key could not be made; the message says which and why."""


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SecretError(f"openssl {args[0]} failed: {result.stderr.strip()}")


class LabCertificateAuthority:
    """The lab's stand-in for the environment's internal CA (kept on the host for tests)."""

    def __init__(self, directory: Path, environment_label: str) -> None:
        self.directory = directory
        self.label = environment_label
        self.cert = directory / "ca.crt"
        self.key = directory / "ca.key"

    def ensure(self) -> None:
        if self.cert.exists() and self.key.exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", str(self.key), "-out", str(self.cert), "-days", str(CA_DAYS),
                 "-subj", f"/O=trust-blueprints lab/CN={self.label} lab CA",
                 "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        os.chmod(self.key, 0o600)

    def issue(self, names: list[str], out_dir: Path) -> tuple[bytes, bytes]:
        """A server certificate for ``names`` (first is the subject): returns (cert PEM, key PEM)."""
        with tempfile.TemporaryDirectory(dir=out_dir) as work:
            work_dir = Path(work)
            key, csr, cert, ext = (work_dir / n for n in ("tls.key", "tls.csr", "tls.crt", "ext.cnf"))
            ext.write_text(
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth,clientAuth\n"
                f"subjectAltName={','.join('DNS:' + n for n in names)}\n"
            )
            _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={names[0]}")
            _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                     "-CAcreateserial", "-out", str(cert), "-days", str(CERT_DAYS), "-extfile", str(ext))
            return cert.read_bytes(), key.read_bytes()


def _generate(spec: SecretSpec, store: Path) -> dict[str, bytes]:
    """Files for one secret, created once per lab in ``store`` and reused for every machine."""
    if spec.kind not in SECRET_KINDS:
        raise SecretError(f"secret {spec.name!r}: kind {spec.kind!r} is not one of {', '.join(SECRET_KINDS)}")
    path = store / spec.name
    if not path.exists():
        store.mkdir(parents=True, exist_ok=True)
        if spec.kind == "token":
            path.write_text(secrets.token_urlsafe(32) + "\n")
        else:
            result = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", spec.name,
                                     "-f", str(path)], capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise SecretError(f"secret {spec.name!r}: ssh-keygen failed: {result.stderr.strip()}")
        os.chmod(path, 0o600)
    files = {spec.name: path.read_bytes()}
    if spec.kind == "ssh-ed25519":
        files[f"{spec.name}.pub"] = path.with_name(f"{spec.name}.pub").read_bytes()
    return files


def machine_secret_files(config: dict[str, Any], machine: Machine, ca: LabCertificateAuthority,
                         store: Path) -> dict[str, bytes]:
    """File name -> contents for one machine's secrets directory."""
    cert, key = ca.issue(machine_names(config, machine), store)
    files = {"ca.crt": ca.cert.read_bytes(), "tls.crt": cert, "tls.key": key}
    for spec in role_secrets(machine.role):
        files.update(_generate(spec, store))
    return files


def vault_contents(config: dict[str, Any], machines: list[Machine], ca: LabCertificateAuthority,
                   store: Path) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """(Key Vault secret name -> value, machine -> the secret names its identity may read).

    The names and grants come from the table the Pulumi program turns into secrets and role
    assignments; the values are made here, where the program makes them with pulumi-tls and
    pulumi-random (and a person sets the manual ones, e.g. the sign-in client secret).
    """
    values: dict[str, str] = {}
    grants: dict[str, tuple[str, ...]] = {}
    for machine in machines:
        files = machine_secret_files(config, machine, ca, store)
        pairs = secret_files(machine)
        for file_name, vault_name in pairs:
            values[vault_name] = files[file_name].decode()
        grants[machine.name] = tuple(vault_name for _file, vault_name in pairs)
    return values, grants


def install_platform_anchor(machine_root: Path, cert_pem: bytes) -> None:
    """Trust the lab's platform CA in a machine, as Debian's store trusts the CAs that sign Azure's
    endpoints: a public certificate, not a secret, added to the store the machine boots with."""
    anchors = machine_root / "usr/local/share/ca-certificates"
    anchors.mkdir(parents=True, exist_ok=True)
    (anchors / "lab-azure-platform-ca.crt").write_bytes(cert_pem)
    bundle = machine_root / "etc/ssl/certs/ca-certificates.crt"
    existing = bundle.read_bytes() if bundle.exists() else b""
    if cert_pem not in existing:
        # Copied up into the machine's overlay; the base image stays as it is.
        bundle.write_bytes(existing + (b"" if existing.endswith(b"\n") or not existing else b"\n") + cert_pem)


def install_secret_files(machine_root: Path, files: dict[str, bytes]) -> Path:
    """Write the files into a machine's root: directory 0700, files 0600, owned by root."""
    directory = machine_root / SECRETS_PATH
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    for name, content in files.items():
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(path, 0o600)
        if os.geteuid() == 0:
            os.chown(path, 0, 0)
    if os.geteuid() == 0:
        os.chown(directory, 0, 0)
    return directory


__all__ = ["SECRET_KINDS", "LabCertificateAuthority", "SecretError", "SecretSpec", "install_platform_anchor",
           "install_secret_files", "machine_names", "machine_secret_files", "vault_contents"]
