"""The analytics VM, checked like an auditor would: packages, services, kernels, sign-in, egress.

Runs against the first analytics VM of the lab (or a deployment, `--target ssh`). Requests that
an analyst's browser would send through the gateway are sent from the gateway machine, from its
own private address, with the header the gateway sets after single sign-on.
"""

from __future__ import annotations

import json
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from blueprints.analytics.origins import own_origins, user_host
from blueprints.data_disk import data_disk_layout
from blueprints.topology import private_dns_zone
from tests.acceptance.machine_commands import CRAN_ALLOWED, CRAN_REFUSED, data_disk_problems

pytestmark = pytest.mark.lab

SESSION_SCRIPT = Path(__file__).with_name("jupyter_session.py")
HUB_PORT = 8000

PACKAGES = [
    "r-base", "r-base-dev", "python3", "python3-venv", "python3-pip", "build-essential", "git", "npm",
    "jupyterhub", "jupyterlab", "python3-ipykernel", "r-cran-irkernel", "jupyter-core", "jupyter-client",
    "unixodbc", "tdsodbc",
    "python3-pandas", "python3-matplotlib", "python3-pyodbc", "r-cran-dplyr", "r-cran-ggplot2",
    "r-cran-readr", "r-cran-tidyr", "r-cran-dbi", "unattended-upgrades", "chrony",
]
MIRROR_CLIENT_FILES = ["/etc/pip.conf", "/etc/npmrc", "/etc/R/Rprofile.site"]
# Public registries the VM must not reach by itself (only the mirror fetches from them).
PUBLIC_REGISTRIES = ["pypi.org", "deb.debian.org", "registry.npmjs.org"]


# ---------------------------------------------------------------------------- helpers

def _analytics_machine(lab: Any) -> Any:
    return next(m for m in lab.machines if m.role == "analytics")


def _hub_url(lab: Any) -> str:
    machine = _analytics_machine(lab).name
    # The hub's base URL is the path the gateway publishes it under.
    return f"https://{machine}.{private_dns_zone(lab.config)}:{HUB_PORT}/{machine}"


def _gateway(lab: Any) -> tuple[Any, str]:
    for machine in lab.machines:
        if machine.role == "gateway":
            return lab.host(machine.name), machine.private_ip
    pytest.skip("this stack has no self-hosted gateway: nobody signs in to JupyterHub")


def _sign_in(host: Any, source: str, hub: str, user: str, extra: str = "") -> tuple[int, str]:
    """GET the hub's gateway sign-in page from ``source`` naming ``user``; (HTTP status, body)."""
    result = host.run(
        f"curl -sS --interface {shlex.quote(source)} -H {shlex.quote('X-Remote-User: ' + user)} {extra} "
        f"-w '\\n%{{http_code}}' {shlex.quote(hub + '/hub/gateway-login')}")
    assert result.rc == 0, result.stderr
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


def _as_user(host: Any, user: str, command: str) -> Any:
    return host.run(f"runuser -l {shlex.quote(user)} -c {shlex.quote(command)}")


def _mapped_hub_account(lab: Any) -> str:
    """An account the stack maps a person to that the hub accepts (no dot), other than the browser
    tests' analyst and the hub's admins: the hub refuses any account the map does not hold."""
    identity = (lab.config["roles"].get("gateway") or {}).get("identity") or {}
    admins = set((lab.config["roles"].get("analytics") or {}).get("admin_users", []))
    accounts = [entry["account"] for entry in identity.get("accounts", [])]
    usable = [name for name in accounts if "." not in name and name not in admins]
    preferred = [name for name in usable if name != "analyst"]
    if not (preferred or usable):
        pytest.skip("roles.gateway.identity.accounts maps nobody to an account the hub accepts")
    return (preferred or usable)[0]


@pytest.fixture(scope="module")
def analyst(lab: Any, analytics_host: Any) -> str:
    """A mapped analyst, signed in through the gateway (the first sign-in creates the local account)."""
    gateway_host, gateway_ip = _gateway(lab)
    user = _mapped_hub_account(lab)
    status, body = _sign_in(gateway_host, gateway_ip, _hub_url(lab), user)
    assert status == 302, body
    return user


@pytest.fixture(scope="module")
def session_outputs(lab: Any, analytics_host: Any, analyst: str) -> dict[str, str]:
    """Start the analyst's server and run a Python cell and an R cell in it."""
    token = analytics_host.run(
        f"cd /var/lib/jupyterhub && jupyterhub token -f /etc/jupyterhub/jupyterhub_config.py {analyst}")
    assert token.rc == 0, token.stderr
    token_value = token.stdout.strip().splitlines()[-1]
    cells = [
        "python3=import os, pwd; print(sum(range(1, 101)), pwd.getpwuid(os.getuid()).pw_name)",
        'ir=cat(sum(1:100), Sys.info()[["effective_user"]])',
    ]
    script = SESSION_SCRIPT.read_text()
    argv = " ".join(shlex.quote(a) for a in [_hub_url(lab), analyst, token_value, *cells])
    result = analytics_host.run(f"python3 - {argv} <<'SESSION'\n{script}\nSESSION")
    assert result.rc == 0, result.stderr + result.stdout
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- packages and services

@pytest.mark.parametrize("package", PACKAGES)
def test_package_installed(analytics_host: Any, package: str) -> None:
    assert analytics_host.package(package).is_installed


def test_jupyterhub_active_and_enabled(analytics_host: Any) -> None:
    service = analytics_host.service("jupyterhub")
    assert service.is_running
    assert service.is_enabled


def test_jupyterhub_listens_on_private_address_only(lab: Any, analytics_host: Any) -> None:
    address = _analytics_machine(lab).private_ip
    assert analytics_host.socket(f"tcp://{address}:{HUB_PORT}").is_listening
    assert not analytics_host.socket(f"tcp://0.0.0.0:{HUB_PORT}").is_listening


def test_jupyterhub_serves_tls_with_the_internal_certificate(lab: Any, analytics_host: Any) -> None:
    # curl verifies against the system store, which holds the environment's CA.
    result = analytics_host.run(f"curl -sS -o /dev/null -w '%{{http_code}}' {_hub_url(lab)}/hub/api")
    assert result.rc == 0, result.stderr
    assert result.stdout == "200"


@pytest.mark.parametrize("kernel", ["python3", "ir"])
def test_kernel_registered_system_wide(analytics_host: Any, kernel: str) -> None:
    listing = analytics_host.run("jupyter kernelspec list --json")
    assert listing.rc == 0, listing.stderr
    specs = json.loads(listing.stdout)["kernelspecs"]
    assert kernel in specs
    assert specs[kernel]["resource_dir"].startswith("/usr/share/jupyter/kernels/")


def test_r_version(analytics_host: Any) -> None:
    version = analytics_host.run("Rscript -e 'cat(as.character(getRversion()))'")
    assert version.rc == 0, version.stderr
    assert tuple(int(p) for p in version.stdout.split(".")[:2]) >= (4, 5)


def test_python_version(analytics_host: Any) -> None:
    version = analytics_host.run("python3 -c 'import sys; print(sys.version_info[0], sys.version_info[1])'")
    assert version.rc == 0, version.stderr
    assert tuple(int(p) for p in version.stdout.split()) >= (3, 13)


def test_freetds_registered_with_unixodbc(analytics_host: Any) -> None:
    drivers = analytics_host.run("odbcinst -q -d")
    assert "[FreeTDS]" in drivers.stdout.split()


def test_freetds_driver_loads_from_python(analytics_host: Any) -> None:
    # No SQL Server here: a FreeTDS error proves the driver loaded (a missing one says "Can't open lib").
    probe = analytics_host.run(
        "python3 -c \"import pyodbc; pyodbc.connect('DRIVER={FreeTDS};SERVER=127.0.0.1;PORT=1;"
        "DATABASE=x;UID=x;PWD=x;TDS_Version=7.4', timeout=3)\"")
    assert probe.rc != 0
    assert "[FreeTDS]" in probe.stderr, probe.stderr


@pytest.mark.parametrize("path", MIRROR_CLIENT_FILES)
def test_mirror_client_configuration_present(lab: Any, analytics_host: Any, path: str) -> None:
    config = analytics_host.file(path)
    assert config.is_file
    assert f"https://mirror.{private_dns_zone(lab.config)}/" in config.content_string


def test_clients_read_the_mirror_settings_without_options(lab: Any, analytics_host: Any) -> None:
    # What `pip install` and `npm install` use when the analyst gives no option at all.
    mirror = f"https://mirror.{private_dns_zone(lab.config)}/"
    assert f"global.index-url='{mirror}" in analytics_host.run("python3 -m pip config list").stdout
    assert analytics_host.run("npm config get registry").stdout.startswith(mirror)


def test_apt_goes_through_the_mirror(lab: Any, analytics_host: Any) -> None:
    proxy = analytics_host.run("apt-config dump Acquire::http::Proxy")
    assert f"mirror.{private_dns_zone(lab.config)}:3142" in proxy.stdout


def test_unattended_upgrades_enabled(analytics_host: Any) -> None:
    periodic = analytics_host.run("apt-config dump APT::Periodic::Unattended-Upgrade")
    assert '"1"' in periodic.stdout


def test_time_sync_uses_the_hyper_v_clock(analytics_host: Any) -> None:
    config = analytics_host.file("/etc/chrony/conf.d/trust-blueprints-azure.conf")
    assert "refclock PHC /dev/ptp_hyperv" in config.content_string


def test_homes_and_the_hubs_state_are_on_the_data_disk(analytics_host: Any) -> None:
    assert data_disk_problems(analytics_host, list(data_disk_layout("analytics").directories)) == []


# ---------------------------------------------------------------------------- no Internet

@pytest.mark.parametrize("registry", PUBLIC_REGISTRIES)
def test_public_registry_unreachable_directly(analytics_host: Any, registry: str) -> None:
    # A bare TCP connection to the registry's real address (resolved here, so the check does not
    # depend on the VM's DNS): no proxy, no TLS, so only a missing route can make it fail.
    address = socket.gethostbyname(registry)
    result = analytics_host.run(
        f"python3 -c 'import socket; socket.create_connection((\"{address}\", 443), timeout=8)'")
    assert result.rc != 0, f"{registry} ({address}) accepted a connection from the analytics VM"


# ---------------------------------------------------------------------------- sign-in

def test_sign_in_through_gateway_creates_local_account(analytics_host: Any, analyst: str) -> None:
    account = analytics_host.user(analyst)
    assert account.exists
    assert account.home == f"/home/{analyst}"
    assert analytics_host.file(account.home).mode == 0o700


def test_header_from_another_address_is_refused(lab: Any, analytics_host: Any) -> None:
    own_address = _analytics_machine(lab).private_ip
    status, _ = _sign_in(analytics_host, own_address, _hub_url(lab), "intruder1")
    assert status == 403
    assert not analytics_host.user("intruder1").exists


def test_forged_real_ip_header_is_refused(lab: Any, analytics_host: Any) -> None:
    # The address a forger would claim: the gateway's, or with Azure Bastion (no gateway) its instance's,
    # where SSH comes from; the hub then trusts no address at all.
    gateway_ip = next((m.private_ip for m in lab.machines if m.role == "gateway"), None) or lab.record.get("bastion_ip")
    if gateway_ip is None:
        pytest.skip("no gateway and no Bastion instance address to claim (a deployment without a gateway)")
    own_address = _analytics_machine(lab).private_ip
    status, _ = _sign_in(analytics_host, own_address, _hub_url(lab), "intruder2",
                         extra=f"-H 'X-Real-Ip: {gateway_ip}' -H 'X-Forwarded-For: {gateway_ip}'")
    assert status == 403
    assert not analytics_host.user("intruder2").exists


def test_local_user_cannot_bypass_the_proxy(lab: Any, analytics_host: Any, analyst: str) -> None:
    # An analyst on the VM talks to the hub's internal port directly, claiming to be the gateway.
    gateway_ip = next(m.private_ip for m in lab.machines if m.role == "gateway")
    result = _as_user(analytics_host, analyst,
                      f"curl -sS -o /dev/null -w '%{{http_code}}' -H 'X-Forwarded-For: {gateway_ip}' "
                      f"-H 'X-Remote-User: intruder3' http://127.0.0.1:8081/{_analytics_machine(lab).name}/hub/gateway-login")
    assert result.stdout == "403", result.stderr
    assert not analytics_host.user("intruder3").exists


def test_admin_users_from_stack_are_hub_admins(lab: Any, analytics_host: Any) -> None:
    # The list comes from the VM's user data (blueprints/vm_settings.py); the hub's config reads it.
    admins = lab.config["roles"]["analytics"].get("admin_users", [])
    listed = analytics_host.file("/etc/trust-blueprints/jupyterhub-admin-users.json").content_string
    assert json.loads(listed) == admins
    config = analytics_host.file("/etc/jupyterhub/jupyterhub_config.py").content_string
    assert 'ADMIN_USERS_FILE = "/etc/trust-blueprints/jupyterhub-admin-users.json"' in config


# ---------------------------------------------------------------------------- a real session

def test_python_cell_runs_in_the_analysts_own_process(session_outputs: dict[str, str], analyst: str) -> None:
    assert session_outputs["python3"] == f"5050 {analyst}"


def test_r_cell_runs_in_the_analysts_own_process(session_outputs: dict[str, str], analyst: str) -> None:
    assert session_outputs["ir"] == f"5050 {analyst}"


def test_single_user_server_runs_under_the_analysts_account(
        analytics_host: Any, analyst: str, session_outputs: dict[str, str]) -> None:
    processes = [line.split(None, 1) for line in analytics_host.run("ps -eo user:32=,args=").stdout.splitlines()]
    owners = {user for user, args in processes if "jupyterhub-singleuser" in args}
    assert analyst in owners


# ---------------------------------------------------------------------------- from home, in a browser

# The same cells, run by a real browser in the lab's client namespace (an analyst at home): it signs
# in at the gateway through the identity provider, opens this VM's JupyterHub through the gateway's
# proxy, and runs the cells from the JupyterLab page over the kernel's WebSocket.
BROWSER_CELLS = {"python3": "import getpass; print(sum(range(101)), getpass.getuser())",
                 "ir": 'cat(sum(0:100), Sys.info()[["user"]])'}


@pytest.fixture(scope="module")
def browser_session(lab: Any) -> dict[str, Any]:
    gateway = lab.config["roles"].get("gateway") or {}
    if gateway.get("kind") != "self-hosted" or lab.target != "lab":
        pytest.skip("needs the lab's client namespace and a self-hosted gateway")
    machine = _analytics_machine(lab).name
    argv = [sys.executable, str(Path(__file__).with_name("gateway_browser.py")),
            "--url", f"https://{gateway['hostname']}/", "--user", "analyst", "--ca-cert", str(lab.ca_cert),
            "--notebook", machine, *[f"--cell={kernel}={code}" for kernel, code in BROWSER_CELLS.items()]]
    result = lab.client(argv, timeout=420)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_browser_from_home_reaches_jupyterlab_through_the_gateway(browser_session: dict[str, Any],
                                                                  lab: Any) -> None:
    assert browser_session["landing_status"] == 200
    notebook = browser_session["notebook"]
    machine = _analytics_machine(lab).name
    host = own_origins(lab.config)
    # With hosts of their own, the analyst's JupyterLab is on theirs (test_own_origins.py).
    expected = f"https://{user_host('analyst', machine, host)}/" if host else \
        f"https://{lab.config['roles']['gateway']['hostname']}/"
    assert notebook["lab_url"].startswith(expected)


@pytest.mark.parametrize("kernel", sorted(BROWSER_CELLS))
def test_browser_cell_computes_the_known_result(browser_session: dict[str, Any], kernel: str) -> None:
    output = browser_session["notebook"]["cells"][kernel]
    total, _, user = output.partition(" ")
    assert total == "5050", output
    # The lab's identity provider signs "analyst" in; the VM maps it to a local account of its own.
    assert user and user != "root", output


# ---------------------------------------------------------------------------- installs through the mirror

def _allowlist(lab: Any, ecosystem: str) -> list[str]:
    allowed = lab.config["roles"].get("package_mirror", {}).get("allowlists", {}).get(ecosystem, [])
    if not allowed:
        pytest.skip(f"the stack allowlists no {ecosystem} packages")
    return allowed


def _r_install(package: str) -> str:
    return ("mkdir -p ~/Rlib && Rscript -e "
            + shlex.quote(f'install.packages("{package}", lib = file.path(Sys.getenv("HOME"), "Rlib"))'))


def test_pip_installs_an_allowlisted_package(lab: Any, analytics_host: Any, analyst: str) -> None:
    package = "requests" if "requests" in _allowlist(lab, "pypi") else _allowlist(lab, "pypi")[0]
    result = _as_user(analytics_host, analyst,
                      f"python3 -m venv --clear ~/venv-test && ~/venv-test/bin/pip install --no-cache-dir {package}")
    assert result.rc == 0, result.stdout + result.stderr
    assert _as_user(analytics_host, analyst, f"~/venv-test/bin/pip show {package}").rc == 0


def test_pip_refuses_a_package_not_on_the_allowlist(lab: Any, analytics_host: Any, analyst: str) -> None:
    package = "flask"
    assert package not in _allowlist(lab, "pypi")
    result = _as_user(analytics_host, analyst,
                      f"python3 -m venv ~/venv-test2 && ~/venv-test2/bin/pip install --no-cache-dir {package}")
    assert result.rc != 0
    # pip shows the mirror's 403 only at -vv; by default it says no version matched.
    assert "403" in result.stdout + result.stderr or "No matching distribution found" in result.stderr
    # The mirror says why, in words, to anyone who looks at the index page.
    zone = private_dns_zone(lab.config)
    page = analytics_host.run(f"curl -sS https://mirror.{zone}/pypi/root/trust/+simple/{package}/")
    assert "not on this trust's allowlist" in page.stdout


# CRAN is unreachable from the lab: the ``test_cran`` fixture (conftest.py) points the mirror at a
# CRAN-layout folder of two real R packages, one of them added to the allowlist for these tests.
def test_r_installs_an_allowlisted_package(analytics_host: Any, analyst: str, test_cran: str) -> None:
    result = _as_user(analytics_host, analyst, _r_install(CRAN_ALLOWED) + " && Rscript -e " + shlex.quote(
        f'library({CRAN_ALLOWED}, lib.loc = file.path(Sys.getenv("HOME"), "Rlib")); cat(greeting(), "\\n")'))
    assert result.rc == 0, result.stdout + result.stderr
    assert f"hello from {CRAN_ALLOWED}" in result.stdout


def test_r_refuses_a_package_not_on_the_allowlist(analytics_host: Any, mirror_host: Any, analyst: str,
                                                  test_cran: str) -> None:
    # The package exists upstream: only the allowlist stands between the analyst and it.
    result = _as_user(analytics_host, analyst, _r_install(CRAN_REFUSED))
    output = result.stdout + result.stderr
    assert "403" in output or "is not available" in output, output
    assert not analytics_host.file(f"/home/{analyst}/Rlib/{CRAN_REFUSED}").exists
    assert f"refused cran:{CRAN_REFUSED}" in mirror_host.file("/var/log/nginx/mirror-refused.log").content_string
