"""Fixtures for the acceptance suites: the machines of a running lab, or of an Azure deployment.

Targets (``--target``):
  ``lab`` (default)  the running local lab (`sudo blueprints lab up`); commands run inside each
                     machine as root through the ``nspawn`` testinfra backend; needs root.
  ``ssh``            a deployed environment, over SSH as the stack's admin user with sudo.
                     Hosts are named by machine (gateway, mirror, git, analytics-1, ...) in an
                     OpenSSH config given with testinfra's ``--ssh-config`` whose entries jump through the
                     gateway (``ProxyJump``), e.g.::

                       Host gateway
                         HostName analytics.example.nhs.uk
                       Host mirror git analytics-*
                         ProxyJump gateway
                       Host *
                         User trustadmin

                     then: pytest tests/acceptance --target ssh --ssh-config ~/.ssh/trust.conf --stack stacks/x.yaml

Without a running lab every test is skipped with the reason, unless BLUEPRINTS_LAB_REQUIRED=1,
which turns the skip into a failure (CI and `blueprints lab test` set it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import testinfra
import yaml

from blueprints.topology import Machine, plan_machines
from tests.acceptance import lab_schedule
from tests.acceptance.machine_commands import (
    ALLOWLIST,
    CRAN_ALLOWED,
    CRAN_REFUSED,
    NPM_ALLOWED,
    NPM_REFUSED,
    PYPI_ALLOWED,
    PYPI_REFUSED,
    R_PACKAGE_SOURCE,
    SETTINGS,
    TEST_CRAN_PORT,
    apt_install,
    check,
    write,
)
from validation.stack_config import load_stack

REPO = Path(__file__).resolve().parents[2]
NOT_RUNNING = "lab not running: run `blueprints lab up`"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trust-blueprints acceptance")
    group.addoption("--target", choices=("lab", "ssh"), default=os.environ.get("BLUEPRINTS_TARGET", "lab"),
                    help="where the machines are: the local lab (default) or a deployment over SSH")
    group.addoption("--stack", default="stacks/example.yaml", help="stack file of the deployment (target ssh)")


LAB_FOLDERS = (Path(__file__).parent, Path(__file__).parents[1] / "lab" / "machines")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark this folder's tests ``lab``; mark the lab tests that run alone (lab_schedule.py), and order
    the lab tests as the workers take their groups (the table's order), those that run alone last."""
    here = Path(__file__).parent
    keys = []
    for index, item in enumerate(items):
        path = Path(str(item.fspath))
        if here in path.parents:
            item.add_marker(pytest.mark.lab)
        key: tuple[int, ...] = (0, 0)
        if any(folder in path.parents for folder in LAB_FOLDERS):
            module, test = path.stem, getattr(item, "originalname", item.name)
            if lab_schedule.runs_alone(module, test):
                item.add_marker(pytest.mark.lab_alone)
                key = (len(lab_schedule.GROUPS) + 1, 0)
            else:
                key = lab_schedule.position(module, test)
        keys.append((*key, index))
    items[:] = [item for _key, item in sorted(zip(keys, items, strict=True), key=lambda pair: pair[0])]


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``--dist loadscope`` (`blueprints lab test --workers N`), a scope is a group of
    lab_schedule.py: its modules run in one process, in order. A module it does not name is a scope of
    its own. (xdist's own groups, ``--dist loadgroup``, no longer reach its scheduler under pytest 9.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LabGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return lab_schedule.scope_of(nodeid)

    return LabGroupScheduling(config, log)


def lab_required() -> bool:
    return os.environ.get("BLUEPRINTS_LAB_REQUIRED") == "1"


def unavailable(reason: str) -> None:
    """Skip, or fail when the lab is required."""
    if lab_required():
        pytest.fail(f"{reason} (BLUEPRINTS_LAB_REQUIRED=1)", pytrace=False)
    pytest.skip(reason)


@dataclass
class RunningLab:
    """The environment under test, as the suites see it."""

    config: dict[str, Any]
    machines: list[Machine]
    target: str
    state_dir: Path | None = None
    ca_cert: Path | None = None
    record: dict[str, Any] = field(default_factory=dict)
    ssh_config: str | None = None
    _hosts: dict[str, Any] = field(default_factory=dict)

    def machine(self, name: str) -> Machine:
        for machine in self.machines:
            if machine.name == name:
                return machine
        raise KeyError(f"no machine {name!r} in this stack; machines: {', '.join(m.name for m in self.machines)}")

    def host(self, name: str) -> Any:
        """A testinfra Host running commands as root on machine ``name``."""
        self.machine(name)
        if name not in self._hosts:
            if self.target == "lab":
                self._hosts[name] = testinfra.get_host(f"nspawn://{name}")
            else:
                self._hosts[name] = testinfra.get_host(f"ssh://{name}?sudo=true", ssh_config=self.ssh_config)
        return self._hosts[name]

    def client(self, argv: list[str], **subprocess_kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as the analyst at home: in the lab's client namespace, or here for a deployment."""
        subprocess_kwargs.setdefault("capture_output", True)
        subprocess_kwargs.setdefault("text", True)
        subprocess_kwargs.setdefault("check", False)
        if self.target == "lab":
            argv = ["ip", "netns", "exec", "tb-client", *argv]
        return subprocess.run(argv, **subprocess_kwargs)


def _running_lab() -> RunningLab:
    if os.geteuid() != 0:
        unavailable(f"{NOT_RUNNING} (the lab target needs root to enter machines)")
    from lab.layout import LabLayout, read_record, running_labs

    labs = running_labs()
    if not labs:
        unavailable(NOT_RUNNING)
    layout: LabLayout = labs[0]
    record = read_record(layout)
    import lab.testinfra_backend  # noqa: F401  (registers nspawn://)
    from lab.machines import leader_pid

    stopped = [name for name in record["machines"] if leader_pid(name) is None]
    if stopped:
        unavailable(f"{NOT_RUNNING} (machines not running: {', '.join(stopped)})")
    config = load_stack(record["stack_file"])
    return RunningLab(config=config, machines=plan_machines(config), target="lab", state_dir=layout.root,
                      ca_cert=layout.ca_cert, record=record)


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> RunningLab:
    if request.config.getoption("--target", default="lab") == "ssh":
        stack = request.config.getoption("--stack")
        config = load_stack(REPO / stack if not Path(stack).is_absolute() else stack)
        return RunningLab(config=config, machines=plan_machines(config), target="ssh",
                          ssh_config=request.config.getoption("ssh_config", default=None))
    return _running_lab()


def _role_host(lab: RunningLab, role: str) -> Any:
    for machine in lab.machines:
        if machine.role == role:
            return lab.host(machine.name)
    pytest.skip(f"this stack has no {role} machine")


@pytest.fixture(scope="session")
def mirror_host(lab: RunningLab) -> Any:
    return _role_host(lab, "package_mirror")


@pytest.fixture(scope="session")
def git_host(lab: RunningLab) -> Any:
    return _role_host(lab, "git_server")


@pytest.fixture(scope="session")
def gateway_host(lab: RunningLab) -> Any:
    return _role_host(lab, "gateway")


@pytest.fixture(scope="session")
def analytics_host(lab: RunningLab) -> Any:
    """The first analytics VM."""
    return _role_host(lab, "analytics")


# --- Test packages the mirror is given (used by the mirror and analytics suites) ---------------

PULL_TIMER = "mirror-allowlist-pull.timer"


@pytest.fixture(scope="module")
def test_allowlists(mirror_host) -> Iterator[dict[str, list[str]]]:
    """The stack's allowlists plus the packages these tests install; restored afterwards."""
    with listing_test_packages(mirror_host) as wanted:
        yield wanted


@contextlib.contextmanager
def listing_test_packages(mirror_host) -> Iterator[dict[str, list[str]]]:
    """The mirror's allowlists with the test packages added, its own pull held; both restored after."""
    saved = mirror_host.file(ALLOWLIST).content_string
    current = yaml.safe_load(saved)
    wanted = {key: list(current.get(key) or []) for key in ("pypi", "npm", "cran")}
    for key, name in (("pypi", PYPI_ALLOWED), ("npm", NPM_ALLOWED), ("cran", CRAN_ALLOWED)):
        if name not in wanted[key]:
            wanted[key].append(name)
    for key, name in (("pypi", PYPI_REFUSED), ("npm", NPM_REFUSED), ("cran", CRAN_REFUSED)):
        assert name not in wanted[key], f"{name} must not be on the {key} allowlist for these tests"
    with mirror_pull_held(mirror_host):
        write(mirror_host, "/root/tb-test-allowlist.yaml", yaml.safe_dump(wanted))
        report = check(mirror_host, "mirror-allowlist apply /root/tb-test-allowlist.yaml")
        assert "applied" in report
        try:
            yield wanted
        finally:
            write(mirror_host, "/root/tb-saved-allowlist.yaml", saved)
            mirror_host.run("mirror-allowlist apply /root/tb-saved-allowlist.yaml")
            mirror_host.run("rm -f /root/tb-test-allowlist.yaml /root/tb-saved-allowlist.yaml")


@contextlib.contextmanager
def mirror_pull_held(mirror_host) -> Iterator[None]:
    """The mirror's own pull of package-requests held (and any pull under way finished) until the
    block ends. Its timer fires 5 minutes after boot and every 15 after, and would put main's list
    back in the middle of any test that gives the mirror a list of its own."""
    pulls = mirror_host.run(f"systemctl cat {PULL_TIMER}").rc == 0
    if pulls:
        check(mirror_host, f"systemctl stop {PULL_TIMER}")
        _wait_until_inactive(mirror_host, PULL_TIMER.replace(".timer", ".service"))
    try:
        yield
    finally:
        if pulls:
            check(mirror_host, f"systemctl start {PULL_TIMER}")


def _wait_until_inactive(host: Any, unit: str, seconds: int = 300) -> None:
    """Wait for a running one-shot service to finish (a pull already under way when the timer stopped)."""
    check(host, f"for i in $(seq {seconds}); do state=$(systemctl show -P ActiveState {unit}); "
                f'case "$state" in activating|deactivating|reloading) sleep 1;; *) exit 0;; esac; done; '
                f'echo "{unit} still $state after {seconds} s" >&2; exit 1')


@pytest.fixture(scope="module")
def test_cran(analytics_host, mirror_host, test_allowlists) -> Iterator[str]:
    """A CRAN-layout upstream with two real R packages, served on the mirror's loopback."""
    apt_install(analytics_host, "r-base-core")
    build = f"/tmp/tb-cran-build-{uuid.uuid4().hex[:6]}"
    for name in (CRAN_ALLOWED, CRAN_REFUSED):
        source = f"{build}/{name}"
        check(analytics_host, f"mkdir -p {source}/R")
        write(analytics_host, f"{source}/DESCRIPTION", R_PACKAGE_SOURCE.format(name=name))
        write(analytics_host, f"{source}/LICENSE", "YEAR: 2026\nCOPYRIGHT HOLDER: trust-blueprints\n")
        write(analytics_host, f"{source}/NAMESPACE", "export(greeting)\n")
        write(analytics_host, f"{source}/R/greeting.R", f'greeting <- function() "hello from {name}"\n')
        check(analytics_host, f"cd {build} && R CMD build --no-build-vignettes --no-manual {name}")
    check(analytics_host, f"mkdir -p {build}/cran/src/contrib && mv {build}/*.tar.gz {build}/cran/src/contrib/ && "
                          f"Rscript -e 'tools::write_PACKAGES(\"{build}/cran/src/contrib\", type = \"source\")'")
    archive = check(analytics_host, f"tar -C {build}/cran -cz . | base64 -w0")
    analytics_host.run(f"rm -rf {build}")
    served = "/srv/tb-test-cran"
    check(mirror_host, f"rm -rf {served} && mkdir -p {served} && echo {archive} | base64 -d | tar -C {served} -xz")
    check(mirror_host, f"systemd-run --unit tb-test-cran --property=DynamicUser=yes python3 -m http.server "
                       f"{TEST_CRAN_PORT} --bind 127.0.0.1 --directory {served}")
    check(mirror_host, f"for i in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:{TEST_CRAN_PORT}/ && exit 0; "
                       "sleep 0.2; done; exit 1")
    previous = json.loads(mirror_host.file(SETTINGS).content_string)["upstreams"]["cran"]
    check(mirror_host, f"mirror-allowlist upstream cran http://127.0.0.1:{TEST_CRAN_PORT}")
    yield served
    mirror_host.run(f"mirror-allowlist upstream cran {shlex.quote(previous)}")
    mirror_host.run("systemctl stop tb-test-cran")
    mirror_host.run(f"rm -rf {served}")
