"""The package mirror, checked like an auditor would: services, ports, TLS, caches, patching, and
real apt, pip, npm and R clients on an analytics machine installing through it.

CRAN cannot be reached from the lab, so the CRAN checks build two tiny real R packages with R's
own tools (R CMD build, tools::write_PACKAGES) on the analytics machine, serve that CRAN-layout
folder from the mirror's loopback address, and point the mirror's CRAN upstream at it with
`mirror-allowlist upstream cran URL`. The previous upstream and allowlists are restored afterwards.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from blueprints import cloud_init
from blueprints.data_disk import data_disk_layout
from blueprints.package_mirror import verdaccio_lock
from blueprints.topology import private_dns_zone
from tests.acceptance.machine_commands import (
    ALLOWLIST,
    APT_GET,
    CRAN_ALLOWED,
    CRAN_REFUSED,
    NPM_ALLOWED,
    NPM_REFUSED,
    PYPI_ALLOWED,
    PYPI_REFUSED,
    TEST_CRAN_PORT,
    apt_install,
    check,
    data_disk_problems,
    write,
)

SERVICES = ["apt-cacher-ng", "nginx", "devpi", "verdaccio", "mirror-file-check", "unattended-upgrades"]
PUBLIC_PORTS = [443, 3142]
LOOPBACK_ONLY_PORTS = [3141, 4873, 3150]  # devpi, Verdaccio, the PyPI file check: reached only through nginx
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


def test_caches_are_on_the_data_disk(mirror_host):
    assert data_disk_problems(mirror_host, list(data_disk_layout("package_mirror").directories)) == []


def test_unattended_upgrades_are_configured(mirror_host):
    assert mirror_host.package("unattended-upgrades").is_installed
    periodic = mirror_host.file("/etc/apt/apt.conf.d/20auto-upgrades").content_string
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    assert 'APT::Periodic::Update-Package-Lists "1";' in periodic


def test_apt_cacher_ng_fetches_from_the_stack_upstream_only(mirror_host, lab):
    upstream = lab.config["roles"]["package_mirror"]["upstreams"]["debian"]
    assert mirror_host.file("/etc/apt-cacher-ng/backends_debian").content_string.strip() == upstream.rstrip("/") + "/"
    assert "ForceManaged: 1" in mirror_host.file("/etc/apt-cacher-ng/zzz-trust-blueprints.conf").content_string
    remaps = check(mirror_host, "grep -h '^Remap-' /etc/apt-cacher-ng/*.conf").split()
    assert sorted(word for word in remaps if word.startswith("Remap-")) == ["Remap-debrep:", "Remap-secdeb:"]


def test_verdaccio_installed_is_the_repository_lockfile(mirror_host):
    write(mirror_host, "/root/tb-lock-digest.py", verdaccio_lock.DIGEST_PROGRAM)
    digest = check(mirror_host, "python3 /root/tb-lock-digest.py /opt/verdaccio/package-lock.json").strip()
    mirror_host.run("rm -f /root/tb-lock-digest.py")
    assert digest == verdaccio_lock.repository_digest()
    installed = check(mirror_host, "node -p \"require('/opt/verdaccio/node_modules/verdaccio/package.json').version\"")
    assert installed.strip() == json.loads(verdaccio_lock.PACKAGE_FILE.read_text())["dependencies"]["verdaccio"]


def test_devpi_venv_holds_exactly_the_pinned_requirements(mirror_host):
    pins = {line.split()[0].lower().replace("_", "-").replace(".", "-")
            for line in (verdaccio_lock.FILES / "devpi-requirements.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")}
    frozen = check(mirror_host, "/opt/devpi/bin/pip freeze --all --exclude pip").split()
    assert {line.lower().replace("_", "-").replace(".", "-") for line in frozen} == pins


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
    analytics_host.run(f"{APT_GET} remove -y hello")
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


# --- What an analyst cannot reach through the mirror (issue 18) --------------------------------
# Each check runs as an ordinary account with no sudo on an analytics machine, with the machine's
# own apt, pip and npm configuration.

@pytest.fixture(scope="module")
def analyst(analytics_host) -> Iterator[str]:
    name = f"tbanalyst{uuid.uuid4().hex[:6]}"
    check(analytics_host, f"useradd --create-home --shell /bin/bash {name}")
    yield name
    analytics_host.run(f"userdel --remove {name}")


def as_analyst(host: Any, user: str, command: str) -> Any:
    return host.run(f"runuser -l {shlex.quote(user)} -c {shlex.quote(command)}")


def _mirror(lab: Any) -> str:
    return f"mirror.{private_dns_zone(lab.config)}"


def _pypi_files(lab: Any) -> str:
    """Where the mirror serves devpi's cached PyPI files (the file check decides each one)."""
    return f"https://{_mirror(lab)}/pypi/root/pypi/+f"


def _status(host: Any, user: str, command: str) -> str:
    """The HTTP status a curl command (given without -w) ends with, as the analyst ran it."""
    result = as_analyst(host, user, f"{command} -s -o /dev/null -w '%{{http_code}}'")
    return result.stdout.strip()


def _user_apt(directory: str, source: str, command: str) -> str:
    """apt-get with its lists, cache and sources in the analyst's home: no root needed."""
    return (f"d={directory}; mkdir -p $d/lists/partial $d/cache/archives/partial && "
            f"echo {shlex.quote(source)} > $d/sources.list && "
            "apt-get -q -o Debug::NoLocking=1 -o Dir::State::Lists=$d/lists -o Dir::Cache=$d/cache "
            "-o Dir::Etc::SourceList=$d/sources.list -o Dir::Etc::SourceParts=$d/none "
            f"-o Dir::State::status=/var/lib/dpkg/status {command}")


def test_apt_of_a_non_debian_host_is_refused_for_an_analyst(analytics_host, analyst, lab):
    proxy = f"http://{_mirror(lab)}:3142"
    assert _status(analytics_host, analyst,
                   f"curl -x {proxy} http://archive.ubuntu.com/ubuntu/dists/noble/Release") == "403"
    ubuntu = as_analyst(analytics_host, analyst, _user_apt(
        "~/apt-ubuntu", "deb [trusted=yes] http://archive.ubuntu.com/ubuntu noble main", "update"))
    output = ubuntu.stdout + ubuntu.stderr
    assert "403" in output and "archive.ubuntu.com" in output, output
    assert not as_analyst(analytics_host, analyst, "ls ~/apt-ubuntu/lists/*_Packages* 2>/dev/null").stdout.strip()


def test_apt_of_debian_still_works_for_an_analyst_by_decision(analytics_host, analyst, lab):
    # Debian's own packaged libraries (python3-*, r-cran-*, node-*) are served: see the README.
    proxy = f"http://{_mirror(lab)}:3142"
    assert _status(analytics_host, analyst,
                   f"curl -x {proxy} http://deb.debian.org/debian/dists/trixie/Release") == "200"
    result = as_analyst(analytics_host, analyst, "cd ~ && apt-get -q download python3-six && ls python3-six_*.deb")
    assert result.rc == 0, result.stdout + result.stderr


@pytest.mark.parametrize("target", ["bugs.debian.org:443", "changelogs.ubuntu.com:443", "deb.debian.org:443",
                                    "example.com:443"])
def test_apt_cacher_ng_opens_no_connect_tunnel(analytics_host, analyst, lab, target):
    host = target.split(":")[0]
    result = as_analyst(analytics_host, analyst,
                        f"curl -sS -p -x http://{_mirror(lab)}:3142 --max-time 20 https://{host}/")
    assert result.rc != 0
    assert "CONNECT tunnel failed" in result.stderr, result.stderr


def test_apt_cacher_ng_report_page_is_not_reachable(analytics_host, mirror_host, analyst, lab):
    base = f"http://{_mirror(lab)}:3142"
    report = check(mirror_host, "sed -n 's/^ReportPage: *//p' /etc/apt-cacher-ng/zzz-trust-blueprints-admin.conf")
    assert report.strip().startswith("acng-") and len(report.strip()) > 30
    for path in ("/acng-report.html", "/acng-report.html?doCount=1"):
        status = _status(analytics_host, analyst, f"curl {base}{path}")
        assert status != "200", path
    usage = as_analyst(analytics_host, analyst, f"curl -s {base}/").stdout
    assert report.strip() not in usage and "acng-report" not in usage
    assert "permissions: 640" in check(mirror_host, "stat -c 'permissions: %a' "
                                                    "/etc/apt-cacher-ng/zzz-trust-blueprints-admin.conf")


# The mirror's file check reads a project's curated page again after a minute at most
# (mirror-file-check.py, PAGE_SECONDS); the bound leaves room for a loaded machine.
FILE_CHECK_BOUND = 90


@pytest.fixture(scope="module")
def pinned_six(mirror_host, test_allowlists, analytics_host, analyst, lab) -> Iterator[dict[str, str]]:
    """six pinned to 1.17.0 on the mirror; the devpi file paths of 1.17.0 and 1.16.0 wheels. Ready when
    the file check has read six's curated page again (it refuses 1.16.0's file), or at the bound."""
    page = check(mirror_host, "curl -sf http://127.0.0.1:3141/root/pypi/+simple/six/")
    paths = {}
    for version in ("1.17.0", "1.16.0"):
        found = re.search(rf'href="[^"]*?/\+f/([^"#]+/six-{re.escape(version)}-py2\.py3-none-any\.whl)', page)
        assert found, f"devpi's mirror lists no six {version} wheel"
        paths[version] = found.group(1)
    pinned = {**test_allowlists, "pypi": [e for e in test_allowlists["pypi"] if e != PYPI_ALLOWED] + ["six==1.17.0"]}
    write(mirror_host, "/root/tb-pinned.yaml", yaml.safe_dump(pinned))
    check(mirror_host, "mirror-allowlist apply /root/tb-pinned.yaml")
    deadline = time.monotonic() + FILE_CHECK_BOUND
    unpinned = f"{_pypi_files(lab)}/{paths['1.16.0']}"
    while _status(analytics_host, analyst, f"curl {unpinned}") != "403" and time.monotonic() < deadline:
        time.sleep(2)
    yield paths
    write(mirror_host, "/root/tb-pinned.yaml", yaml.safe_dump(test_allowlists))
    check(mirror_host, "mirror-allowlist apply /root/tb-pinned.yaml && rm -f /root/tb-pinned.yaml")


def test_a_pinned_out_pypi_version_is_refused_by_its_file_url(analytics_host, mirror_host, analyst, lab, pinned_six):
    files = _pypi_files(lab)
    refused = as_analyst(analytics_host, analyst, f"curl -s -w ' %{{http_code}}' {files}/{pinned_six['1.16.0']}")
    assert refused.stdout.endswith(" 403"), refused.stdout
    assert "is not offered by the curated index" in refused.stdout
    assert _status(analytics_host, analyst, f"curl {files}/{pinned_six['1.17.0']}") == "200"
    assert "refused pypi-file:" in mirror_host.file("/var/log/nginx/mirror-refused.log").content_string


def test_pip_installs_the_pinned_version_and_not_another(analytics_host, analyst, pinned_six):
    venv = f"~/venv-{uuid.uuid4().hex[:6]}"
    apt_install(analytics_host, "python3-venv")
    pip = f"python3 -m venv {venv} && {venv}/bin/pip install --no-cache-dir --disable-pip-version-check"
    assert as_analyst(analytics_host, analyst, f"{pip} six==1.16.0").rc != 0
    result = as_analyst(analytics_host, analyst, f"{pip} six")
    assert result.rc == 0 and "Successfully installed six-1.17.0" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("path", [
    f"/cran/src/contrib/{CRAN_ALLOWED}_0.1.0.tar.gz/../{CRAN_REFUSED}_0.1.0.tar.gz",
    f"/cran/src/contrib/{CRAN_ALLOWED}_0.1.0.tar.gz/..%2F{CRAN_REFUSED}_0.1.0.tar.gz",
    f"/cran/src/contrib/%2e%2e/contrib/{CRAN_REFUSED}_0.1.0.tar.gz",
    "/cran/src/contrib/../../../etc/passwd",
    f"/cran/src/contrib/Archive/{CRAN_REFUSED}/",
    f"/cran/bin/windows/contrib/4.4/{CRAN_ALLOWED}_0.1.0.zip",
])
def test_a_cran_path_traversal_is_refused(analytics_host, analyst, lab, test_cran, path):
    status = _status(analytics_host, analyst, f"curl --path-as-is 'https://{_mirror(lab)}{path}'")
    assert status in ("400", "403", "404"), status


def test_an_npm_install_script_does_not_run_for_an_analyst(analytics_host, analyst):
    apt_install(analytics_host, "npm")
    marker = f"/tmp/tb-npm-script-ran-{uuid.uuid4().hex[:6]}"
    package = json.dumps({"name": "tb-install-script", "version": "1.0.0",
                          "scripts": {"preinstall": f"touch {marker}", "postinstall": f"touch {marker}"}})
    make = (f"mkdir -p ~/tbpkg ~/tbapp && cd ~/tbpkg && echo {shlex.quote(package)} > package.json && "
            "npm pack --silent >/dev/null && cd ~/tbapp && echo '{}' > package.json")
    assert as_analyst(analytics_host, analyst, make).rc == 0
    # The machine's own npm configuration (/etc/npmrc), as `npm install` uses it with no option.
    result = as_analyst(analytics_host, analyst, "cd ~/tbapp && npm install --no-audit --no-fund "
                                                 "../tbpkg/tb-install-script-1.0.0.tgz")
    assert result.rc == 0, result.stdout + result.stderr
    assert not analytics_host.file(marker).exists
    # The same package with scripts allowed does run them: the check above can tell.
    forced = as_analyst(analytics_host, analyst, "cd ~/tbapp && npm rebuild --ignore-scripts=false tb-install-script")
    assert forced.rc == 0, forced.stdout + forced.stderr
    assert analytics_host.file(marker).exists
    analytics_host.run(f"rm -f {marker}")


def test_curated_installs_still_pass_for_an_analyst(analytics_host, analyst, test_allowlists):
    apt_install(analytics_host, "npm", "python3-venv")
    venv = f"~/venv-{uuid.uuid4().hex[:6]}"
    pip = as_analyst(analytics_host, analyst, f"python3 -m venv {venv} && {venv}/bin/pip install --no-cache-dir "
                                              f"--disable-pip-version-check {PYPI_ALLOWED}")
    assert pip.rc == 0, pip.stdout + pip.stderr
    npm = as_analyst(analytics_host, analyst, f"mkdir -p ~/tbnpm && cd ~/tbnpm && npm install --no-audit --no-fund "
                                              f"{NPM_ALLOWED}")
    assert npm.rc == 0 and "added 1 package" in npm.stdout, npm.stdout + npm.stderr


# --- A minimum release age ------------------------------------------------------------------------

AGE_FILE = "/etc/trust-blueprints/mirror/minimum-release-age"


@pytest.fixture
def release_age(mirror_host) -> Iterator[Any]:
    """Sets the mirror's minimum release age as its user data would (the checker reads the file
    again when it changes); the stack's own value is put back afterwards."""
    saved = mirror_host.file(AGE_FILE).content_string if mirror_host.file(AGE_FILE).exists else "0\n"

    def set_days(days: int) -> None:
        write(mirror_host, AGE_FILE, f"# set by the acceptance suite\n{days}\n")
        time.sleep(1.1)  # a new modification time the checker can tell apart

    yield set_days
    write(mirror_host, AGE_FILE, saved)


def test_the_minimum_release_age_refuses_young_releases_by_their_upstream_times(
        analytics_host, mirror_host, analyst, test_allowlists, release_age):
    apt_install(analytics_host, "npm", "python3-venv")
    venv = f"~/venv-{uuid.uuid4().hex[:6]}"
    pip = (f"python3 -m venv {venv} && {venv}/bin/pip install --no-cache-dir --disable-pip-version-check "
           f"--force-reinstall {PYPI_ALLOWED}")
    # six 1.17.0 came out in December 2024 and left-pad 1.3.0 in 2018: a month's hold serves them.
    release_age(30)
    allowed = as_analyst(analytics_host, analyst, pip)
    assert allowed.rc == 0, allowed.stdout + allowed.stderr
    # A hold of a century refuses every release, whatever the nginx cache holds.
    release_age(36500)
    refused = as_analyst(analytics_host, analyst, pip)
    assert refused.rc != 0 and "403" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    npm = as_analyst(analytics_host, analyst, f"mkdir -p ~/tbaged && cd ~/tbaged && npm install --no-audit "
                                              f"--no-fund --prefer-online --cache ~/tbaged-cache {NPM_ALLOWED}")
    assert npm.rc != 0, npm.stdout
    assert "was published" in npm.stderr and "minimum_release_age_days" in npm.stderr, npm.stderr
    log = mirror_host.file("/var/log/nginx/mirror-refused.log").content_string
    assert "refused pypi-file:" in log and "days old" in log and "refused npm-file:" in log
