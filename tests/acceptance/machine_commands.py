"""Commands the acceptance suites run inside machines, and the test packages the mirror is given.

The mirror suites and the analytics suite both install real packages through the mirror. They
add their own small set to the mirror's allowlists (and take it away again), and CRAN, which the
lab cannot reach, is stood in for by a CRAN-layout folder of real R packages built with R's own
tools (see the ``test_cran`` fixture in conftest.py).
"""

from __future__ import annotations

import base64
import shlex
from typing import Any

from lab.machines import APT_GET

# Added to the stack's allowlists for these tests (and removed again afterwards).
PYPI_ALLOWED, PYPI_REFUSED = "six", "tabulate"
NPM_ALLOWED, NPM_REFUSED = "left-pad", "is-odd"
CRAN_ALLOWED, CRAN_REFUSED = "tbmirrorok", "tbmirrorno"
TEST_CRAN_PORT = 8089
ALLOWLIST = "/etc/trust-blueprints/mirror/allowlist.yaml"
SETTINGS = "/etc/trust-blueprints/mirror/settings.json"


def check(host: Any, command: str) -> str:
    result = host.run(command)
    assert result.rc == 0, f"{command!r} failed ({result.rc}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


def write(host: Any, path: str, content: str | bytes) -> None:
    data = content.encode() if isinstance(content, str) else content
    encoded = base64.b64encode(data).decode()
    check(host, f"echo {encoded} | base64 -d > {shlex.quote(path)}")


def apt_install(host: Any, *packages: str) -> None:
    missing = [p for p in packages if not host.package(p).is_installed]
    if missing:
        check(host, f"{APT_GET} update >/dev/null && {APT_GET} install -y {' '.join(missing)}")


R_PACKAGE_SOURCE = """\
Package: {name}
Version: 0.1.0
Title: Acceptance Test Package for the Mirror
Description: Exists only to be installed through the trust's package mirror in acceptance tests.
License: MIT + file LICENSE
Authors@R: person("Trust", "Blueprints", role = c("aut", "cre"), email = "platform@example.nhs.uk")
Encoding: UTF-8
"""


DATA_DISK_ROOT = "/srv/data-disk"  # blueprints/data_disk.py DISK_ROOT
DATA_DISK_STEP_LINES = ("trust-blueprints: data disk: formatting blank",
                        "already holds this role's file system; keeping its data")


def data_disk_problems(host: Any, directories: list[str]) -> list[str]:
    """Why ``directories`` are not on the machine's data disk (empty when they are): the data-disk step
    ran, an ext4 file system is mounted at the disk root, and each directory is bound from it."""
    problems = []
    log = host.file("/var/log/cloud-init-output.log").content_string
    if not any(line in log for line in DATA_DISK_STEP_LINES):
        problems.append("the data-disk step neither formatted nor kept a disk (cloud-init-output.log)")
    root = host.run(f"findmnt --noheadings --output SOURCE,FSTYPE {DATA_DISK_ROOT}")
    if root.rc != 0 or not root.stdout.split() or root.stdout.split()[-1] != "ext4":
        problems.append(f"{DATA_DISK_ROOT} is not an ext4 mount: {root.stdout.strip() or root.stderr.strip()}")
        return problems
    device = root.stdout.split()[0].split("[")[0]
    for directory in directories:
        bound = host.run(f"findmnt --noheadings --output SOURCE {directory}").stdout.strip().splitlines()
        if f"{device}[{directory}]" not in bound:
            problems.append(f"{directory} is not bound from the data disk {device}: {bound}")
    return problems
