"""The package mirror, checked like an auditor would: services, ports, TLS, caches, patching, and
real apt, pip, npm and R clients on an analytics machine installing through it.

CRAN cannot be reached from the lab, so the CRAN checks build two tiny real R packages with R's
own tools (R CMD build, tools::write_PACKAGES) on the analytics machine, serve that CRAN-layout
folder from the mirror's loopback address, and point the mirror's CRAN upstream at it with
`mirror-allowlist upstream cran URL`. The previous upstream and allowlists are restored afterwards.
"""

from __future__ import annotations

import shlex
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from blueprints import cloud_init
from blueprints.topology import private_dns_zone
from tests.acceptance.machine_commands import (
    ALLOWLIST,
    CRAN_ALLOWED,
    CRAN_REFUSED,
    NPM_ALLOWED,
    NPM_REFUSED,
    PYPI_ALLOWED,
    PYPI_REFUSED,
    TEST_CRAN_PORT,
    apt_install,
    check,
    write,
)

SERVICES = ["apt-cacher-ng", "nginx", "devpi", "verdaccio", "unattended-upgrades"]
PUBLIC_PORTS = [443, 3142]
LOOPBACK_ONLY_PORTS = [3141, 4873]  # devpi, Verdaccio: reached only through nginx
CACHE_DIRS = [
    ("/var/cache/apt-cacher-ng", "apt-cacher-ng"),
    ("/var/lib/devpi/server", "devpi"),
    ("/var/lib/verdaccio/storage", "verdaccio"),
    ("/var/cache/nginx/cran", "www-data"),
    ("/var/cache/nginx/pypi-files", "www-data"),
]


# --- The machine ------------------------------------------------------------------------------

@pytest.mark.parametrize("service", SERVICES)
def test_service_is_enabled_and_running(mirror_host, service):
    unit = mirror_host.service(service)
    assert unit.is_enabled
    assert unit.is_running


@pytest.mark.parametrize("port", PUBLIC_PORTS)
def test_listens_for_clients(mirror_host, port):
    assert mirror_host.socket(f"tcp://0.0.0.0:{port}").is_listening or \
        mirror_host.socket(f"tcp://:::{port}").is_listening


@pytest.mark.parametrize("port", LOOPBACK_ONLY_PORTS)
def test_backend_listens_on_loopback_only(mirror_host, port):
    assert mirror_host.socket(f"tcp://127.0.0.1:{port}").is_listening
    assert not mirror_host.socket(f"tcp://0.0.0.0:{port}").is_listening


@pytest.mark.parametrize(("path", "owner"), CACHE_DIRS)
def test_cache_directory_exists_for_its_service(mirror_host, path, owner):
    directory = mirror_host.file(path)
    assert directory.is_directory
    assert directory.user == owner


def test_no_data_disk_in_the_lab_so_caches_stay_on_the_os_disk(mirror_host):
    log = mirror_host.file("/var/log/cloud-init-output.log").content_string
    assert "trust-blueprints: data disk: no data disk at LUN 0" in log
    for path, _ in CACHE_DIRS:
        assert mirror_host.run(f"findmnt --noheadings {path}").rc != 0, f"{path} is a mount of its own"


def test_unattended_upgrades_are_configured(mirror_host):
    assert mirror_host.package("unattended-upgrades").is_installed
    periodic = mirror_host.file("/etc/apt/apt.conf.d/20auto-upgrades").content_string
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    assert 'APT::Periodic::Update-Package-Lists "1";' in periodic


def test_apt_cacher_ng_fetches_from_the_stack_upstream_only(mirror_host, lab):
    upstream = lab.config["roles"]["package_mirror"]["upstreams"]["debian"]
    assert mirror_host.file("/etc/apt-cacher-ng/backends_debian").content_string.strip() == upstream.rstrip("/") + "/"
    assert "ForceManaged: 1" in mirror_host.file("/etc/apt-cacher-ng/zz-trust-blueprints.conf").content_string


def test_tls_is_served_with_the_environment_ca(analytics_host, lab):
    host = f"mirror.{private_dns_zone(lab.config)}"
    # Verified against the CA alone, not the system store: the certificate chains to the lab CA.
    output = check(analytics_host, f"curl -sS --fail --cacert /etc/trust-blueprints/secrets/ca.crt https://{host}/")
    assert "/pypi/" in output
    verify = check(analytics_host, f"echo | openssl s_client -connect {host}:443 -servername {host} "
                                   f"-CAfile /etc/trust-blueprints/secrets/ca.crt -verify_return_error 2>&1")
    assert "Verify return code: 0 (ok)" in verify
    assert f"CN={host}" in verify.replace(" = ", "=")


def test_tls_certificate_is_the_lab_ca_from_the_test_host(lab, mirror_host):
    if lab.ca_cert is None:
        pytest.skip("the host keeps the CA only in the lab")
    pem = mirror_host.file("/etc/trust-blueprints/secrets/tls.crt").content_string
    result = subprocess.run(["openssl", "verify", "-CAfile", str(lab.ca_cert)], input=pem,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# --- Fixtures for real clients -----------------------------------------------------------------

@pytest.fixture(scope="module")
def client_files(lab) -> dict[str, str]:
    """The client configuration the mirror role generates for analytics machines."""
    machine = next(m for m in lab.machines if m.role == "analytics")
    template = cloud_init._environment().from_string(
        '#cloud-config\nwrite_files:\n{% include "package_mirror/client-config.yaml.j2" %}\n')
    document = yaml.safe_load(template.render(cloud_init.template_context(lab.config, machine)))
    return {entry["path"]: entry["content"] for entry in document["write_files"]}


@pytest.fixture(scope="module")
def client_dir(analytics_host, client_files) -> Iterator[str]:
    """A scratch folder on the analytics machine holding the generated pip, npm and R configuration."""
    directory = f"/tmp/tb-mirror-{uuid.uuid4().hex[:8]}"
    check(analytics_host, f"mkdir -p {directory}")
    for path, name in (("/etc/pip.conf", "pip.conf"), ("/etc/npmrc", "npmrc"),
                       ("/etc/R/Rprofile.site", "Rprofile.site")):
        write(analytics_host, f"{directory}/{name}", client_files[path])
    yield directory
    analytics_host.run(f"rm -rf {directory}")


def test_apply_reports_what_changed_per_ecosystem(mirror_host, test_allowlists):
    current = yaml.safe_load(mirror_host.file(ALLOWLIST).content_string)
    trimmed = {**current, "npm": [n for n in current["npm"] if n != NPM_ALLOWED] + ["is-number"]}
    write(mirror_host, "/root/tb-trimmed.yaml", yaml.safe_dump(trimmed))
    write(mirror_host, "/root/tb-back.yaml", yaml.safe_dump(current))
    try:
        report = check(mirror_host, "mirror-allowlist apply /root/tb-trimmed.yaml")
        assert f"npm: added 1: is-number; removed 1: {NPM_ALLOWED}" in report
        assert "pypi: no change" in report and "cran: no change" in report
    finally:
        back = check(mirror_host, "mirror-allowlist apply /root/tb-back.yaml")
        mirror_host.run("rm -f /root/tb-trimmed.yaml /root/tb-back.yaml")
    assert f"npm: added 1: {NPM_ALLOWED}; removed 1: is-number" in back


def test_apply_refuses_a_malformed_list_and_changes_nothing(mirror_host, test_allowlists):
    before = mirror_host.file(ALLOWLIST).content_string
    write(mirror_host, "/root/tb-bad.yaml", "pypi: ['not a name']\nnpm: [Left-Pad]\n")
    result = mirror_host.run("mirror-allowlist apply /root/tb-bad.yaml")
    mirror_host.run("rm -f /root/tb-bad.yaml")
    assert result.rc == 2
    assert "'not a name' is not a valid pypi package name" in result.stderr
    assert "'Left-Pad' is not a valid npm package name" in result.stderr
    assert mirror_host.file(ALLOWLIST).content_string == before


# --- Egress: cut it to prove a second install comes from the cache -----------------------------

class EgressCut:
    """Rejects the mirror's traffic to anything outside the environment's address space."""

    TABLE = "tb_acceptance_egress_cut"

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.space = lab.config["network"]["address_space"]

    def _nft(self, script: str) -> None:
        from lab.machines import leader_pid

        pid = leader_pid(next(m.name for m in self.lab.machines if m.role == "package_mirror"))
        subprocess.run(["nsenter", "-t", str(pid), "-n", "nft", "-f", "-"], input=script, text=True,
                       check=True, capture_output=True)

    def __enter__(self) -> EgressCut:
        self._nft(f"""table inet {self.TABLE} {{
  chain out {{ type filter hook output priority 0; policy accept;
    oifname "lo" accept
    ip daddr {self.space} accept
    meta l4proto tcp counter reject with tcp reset
    counter reject
  }}
}}""")
        return self

    def __exit__(self, *exc: object) -> None:
        self._nft(f"delete table inet {self.TABLE}")


@pytest.fixture
def egress_cut(lab):
    if lab.target != "lab":
        pytest.skip("cutting the mirror's egress is done with the lab's own network namespaces")
    return EgressCut(lab)


# --- apt ----------------------------------------------------------------------------------------

def test_apt_installs_a_debian_package_through_the_mirror(analytics_host, mirror_host):
    analytics_host.run("DEBIAN_FRONTEND=noninteractive apt-get -q remove -y hello")
    apt_install(analytics_host, "hello")
    assert check(analytics_host, "hello").strip() == "Hello, world!"
    assert mirror_host.run("grep -q 'hello_' /var/log/apt-cacher-ng/apt-cacher.log").rc == 0


# --- PyPI ---------------------------------------------------------------------------------------

def pip_install(host: Any, client_dir: str, project: str) -> Any:
    venv = f"{client_dir}/venv-{uuid.uuid4().hex[:6]}"
    apt_install(host, "python3-venv")
    check(host, f"python3 -m venv {venv}")
    return host.run(f"PIP_CONFIG_FILE={client_dir}/pip.conf {venv}/bin/pip install --no-cache-dir "
                    f"--disable-pip-version-check {project}")


def test_pip_installs_an_allowlisted_project(analytics_host, client_dir, test_allowlists):
    result = pip_install(analytics_host, client_dir, PYPI_ALLOWED)
    assert result.rc == 0, result.stdout + result.stderr
    assert f"Successfully installed {PYPI_ALLOWED}" in result.stdout


def test_pip_refuses_a_project_off_the_allowlist_and_says_why(analytics_host, mirror_host, client_dir,
                                                              test_allowlists):
    # pip reports index errors only at -vv; the mirror's refusal log names the project either way.
    result = pip_install(analytics_host, client_dir, f"-vv {PYPI_REFUSED}")
    assert result.rc != 0
    output = result.stdout + result.stderr
    assert "403 Client Error: Forbidden for url" in output, output
    assert f"No matching distribution found for {PYPI_REFUSED}" in output
    log = mirror_host.file("/var/log/nginx/mirror-refused.log").content_string
    assert f"refused pypi:{PYPI_REFUSED}" in log


def test_pip_second_install_is_served_from_cache(analytics_host, client_dir, test_allowlists, egress_cut):
    assert pip_install(analytics_host, client_dir, PYPI_ALLOWED).rc == 0
    with egress_cut:
        result = pip_install(analytics_host, client_dir, PYPI_ALLOWED)
    assert result.rc == 0, result.stdout + result.stderr


# --- npm ----------------------------------------------------------------------------------------

def npm_install(host: Any, client_dir: str, package: str) -> Any:
    apt_install(host, "npm")
    prefix = f"{client_dir}/npm-{uuid.uuid4().hex[:6]}"
    return host.run(f"mkdir -p {prefix} && cd {prefix} && npm install --userconfig {client_dir}/npmrc "
                    f"--cache {prefix}/.cache --no-audit --no-fund {package}")


def test_npm_installs_an_allowlisted_package(analytics_host, client_dir, test_allowlists):
    result = npm_install(analytics_host, client_dir, NPM_ALLOWED)
    assert result.rc == 0, result.stdout + result.stderr
    assert "added 1 package" in result.stdout


def test_npm_refuses_a_package_off_the_allowlist_and_says_why(analytics_host, mirror_host, client_dir,
                                                              test_allowlists):
    result = npm_install(analytics_host, client_dir, NPM_REFUSED)
    assert result.rc != 0
    output = result.stdout + result.stderr
    assert "403" in output
    assert f"npm package '{NPM_REFUSED}' is not on this trust's allowlist" in output, output
    assert f"refused npm:{NPM_REFUSED}" in mirror_host.file("/var/log/nginx/mirror-refused.log").content_string


def test_npm_second_install_is_served_from_cache(analytics_host, client_dir, test_allowlists, egress_cut):
    assert npm_install(analytics_host, client_dir, NPM_ALLOWED).rc == 0
    with egress_cut:
        result = npm_install(analytics_host, client_dir, NPM_ALLOWED)
    assert result.rc == 0, result.stdout + result.stderr


# --- CRAN ---------------------------------------------------------------------------------------

def r_install(host: Any, client_dir: str, package: str) -> Any:
    library = f"{client_dir}/rlib-{uuid.uuid4().hex[:6]}"
    check(host, f"mkdir -p {library}")
    return host.run(f"R_PROFILE={client_dir}/Rprofile.site Rscript -e "
                    + shlex.quote(f'install.packages("{package}", lib = "{library}"); '
                                  f'library({package}, lib.loc = "{library}"); cat(greeting(), "\\n")'))


def test_r_installs_an_allowlisted_package_from_the_cran_proxy(analytics_host, client_dir, test_cran):
    result = r_install(analytics_host, client_dir, CRAN_ALLOWED)
    assert result.rc == 0, result.stdout + result.stderr
    assert f"hello from {CRAN_ALLOWED}" in result.stdout


def test_r_refuses_a_package_off_the_allowlist(analytics_host, mirror_host, client_dir, test_cran):
    result = r_install(analytics_host, client_dir, CRAN_REFUSED)
    assert result.rc != 0
    output = result.stdout + result.stderr
    assert "403" in output, output
    assert f"refused cran:{CRAN_REFUSED}" in mirror_host.file("/var/log/nginx/mirror-refused.log").content_string


def test_r_second_install_is_served_from_cache_with_the_upstream_stopped(analytics_host, mirror_host, client_dir,
                                                                         test_cran, lab):
    assert r_install(analytics_host, client_dir, CRAN_ALLOWED).rc == 0
    check(mirror_host, "systemctl stop tb-test-cran")
    try:
        assert mirror_host.run(f"curl -s -o /dev/null http://127.0.0.1:{TEST_CRAN_PORT}/").rc != 0
        result = r_install(analytics_host, client_dir, CRAN_ALLOWED)
        assert result.rc == 0, result.stdout + result.stderr
        # The tarball R just installed came from nginx's cache, not from the (stopped) upstream.
        headers = check(analytics_host, f"curl -sS -o /dev/null -D - https://mirror.{private_dns_zone(lab.config)}"
                                        f"/cran/src/contrib/{CRAN_ALLOWED}_0.1.0.tar.gz").lower()
        assert "x-cache-status: hit" in headers, headers
    finally:
        mirror_host.run(f"systemd-run --unit tb-test-cran --property=DynamicUser=yes python3 -m http.server "
                        f"{TEST_CRAN_PORT} --bind 127.0.0.1 --directory {test_cran}")
