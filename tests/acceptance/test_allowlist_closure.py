"""The shared-services stack's PyPI allowlist, as `blueprints allowlist resolve --write` left it, on a real mirror.

The lab's mirror is given that list (and its own list back afterwards). An unprivileged account on
an analytics machine, with the machine's own pip configuration, then installs pandas, seaborn and
statsmodels through the mirror; taken one recorded dependency away, the same install fails on it.
The resolver's CRAN reading is checked against the lab's CRAN-layout stand-in (the ``test_cran``
fixture: packages built and indexed by R's own tools), fetched through the mirror as R fetches it.
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from blueprints.topology import private_dns_zone
from tests.acceptance.conftest import mirror_pull_held
from tests.acceptance.machine_commands import ALLOWLIST, CRAN_ALLOWED, CRAN_REFUSED, apt_install, check, write
from tests.conftest import REPO
from validation.allowlist_closure import read_record, record_path
from validation.allowlist_resolver import cran_needs, parse_packages_index
from validation.stack_config import load_stack

SHARED = REPO / "stacks" / "shared-services.yaml"
WANTED = "pandas seaborn statsmodels"


def _apply(mirror_host: Any, pypi: list[str], others: dict[str, Any]) -> None:
    write(mirror_host, "/root/tb-closure-allowlist.yaml", yaml.safe_dump({**others, "pypi": pypi}))
    assert "applied" in check(mirror_host, "mirror-allowlist apply /root/tb-closure-allowlist.yaml")


@pytest.fixture(scope="module")
def shared_services_pypi(mirror_host) -> Iterator[tuple[list[str], dict[str, Any]]]:
    """The mirror serving shared-services' PyPI list (its npm and CRAN lists unchanged); restored after."""
    saved = mirror_host.file(ALLOWLIST).content_string
    current = yaml.safe_load(saved) or {}
    others = {key: list(current.get(key) or []) for key in ("npm", "cran")}
    pypi = list(load_stack(SHARED)["roles"]["package_mirror"]["allowlists"]["pypi"])
    # The mirror's own pull would put main's list (numpy on it) back in the middle of these tests.
    with mirror_pull_held(mirror_host):
        _apply(mirror_host, pypi, others)
        try:
            yield pypi, others
        finally:
            write(mirror_host, "/root/tb-closure-saved.yaml", saved)
            mirror_host.run("mirror-allowlist apply /root/tb-closure-saved.yaml")
            mirror_host.run("rm -f /root/tb-closure-allowlist.yaml /root/tb-closure-saved.yaml")


@pytest.fixture(scope="module")
def analyst_account(analytics_host) -> Iterator[str]:
    """An ordinary account with no sudo, as an analyst has."""
    apt_install(analytics_host, "python3-venv")
    name = f"tbclosure{uuid.uuid4().hex[:6]}"
    check(analytics_host, f"useradd --create-home --shell /bin/bash {name}")
    yield name
    analytics_host.run(f"userdel --remove {name}")


def _pip_install_as(host: Any, user: str, projects: str) -> Any:
    venv = f"venv-{uuid.uuid4().hex[:6]}"
    command = (f"python3 -m venv ~/{venv} && ~/{venv}/bin/pip install --no-cache-dir "
               f"--disable-pip-version-check {projects}")
    return host.run(f"runuser -l {shlex.quote(user)} -c {shlex.quote(command)}")


def test_pandas_seaborn_statsmodels_install_with_the_resolved_list(analytics_host, analyst_account,
                                                                     shared_services_pypi):
    result = _pip_install_as(analytics_host, analyst_account, WANTED)
    assert result.rc == 0, result.stdout + result.stderr
    assert "Successfully installed" in result.stdout


def test_without_one_recorded_dependency_the_install_fails_on_it(analytics_host, mirror_host, analyst_account,
                                                                  shared_services_pypi):
    pypi, others = shared_services_pypi
    needed = {package.name for package in read_record(record_path(SHARED))["pypi"].needs["pandas"]}
    # numpy: every pandas release needs it on every platform (tzdata, for one, only on some).
    assert "numpy" in needed
    _apply(mirror_host, [entry for entry in pypi if entry != "numpy"], others)
    try:
        # Wheels only: otherwise pip backtracks to a source release whose build fails for other reasons.
        result = _pip_install_as(analytics_host, analyst_account, "--only-binary=:all: pandas")
    finally:
        _apply(mirror_host, pypi, others)
    output = result.stdout + result.stderr
    assert result.rc != 0
    # pip names the missing project: either it finds no distribution of it, or it explains the
    # conflict every pandas release then has (each depends on numpy).
    assert "No matching distribution found for numpy" in output or (
        "ResolutionImpossible" in output and "depends on numpy" in output), output[-3000:]


def test_the_cran_index_r_writes_reads_as_the_resolver_expects(lab, analytics_host, test_cran):
    url = f"https://mirror.{private_dns_zone(lab.config)}/cran/src/contrib/PACKAGES"
    index = parse_packages_index(check(analytics_host, f"curl -sSf {url}"))
    assert {CRAN_ALLOWED, CRAN_REFUSED} <= set(index)
    assert index[CRAN_ALLOWED]["Version"] == "0.1.0"
    needs, notes = cran_needs(index, [CRAN_ALLOWED])
    assert needs == {CRAN_ALLOWED: ()} and notes == ()  # it needs only R itself
