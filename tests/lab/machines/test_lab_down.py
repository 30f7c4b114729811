"""`lab down` leaves nothing behind: no namespace, link, nftables table, mount, process or state.

This takes the lab down, so it runs only when asked (BLUEPRINTS_LAB_TEARDOWN=1), as the last
step of `make lab-test`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.hub_firewall import FIREWALL_RULE_PRIORITY, MAIN_WITHOUT_DEFAULT_PRIORITY
from lab.layout import NFT_TABLE, PREFIX, STATE_ROOT
from lab.machines import CGROUP_PREFIX, CGROUP_ROOTS
from lab.network import lab_namespaces, processes_in

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.environ.get("BLUEPRINTS_LAB_TEARDOWN") != "1",
                       reason="takes the lab down: set BLUEPRINTS_LAB_TEARDOWN=1 (make lab-test does)"),
]


def _lab_processes() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(STATE_ROOT) in cmdline:
            found.append(f"{entry.name}: {cmdline[:120]}")
    return found


def _start_time(pid: int) -> str | None:
    """The process's start time, or None once it has ended (a zombie has ended: only its exit status
    waits for its parent to collect)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def _machine_processes() -> dict[int, str | None]:
    """Every process in a lab namespace (machines' init and everything under it), with its start time."""
    return {pid: _start_time(pid) for netns in lab_namespaces() for pid in processes_in(netns)}


def test_lab_down_leaves_nothing_behind(lab) -> None:
    assert lab.state_dir is not None and lab.state_dir.exists()
    assert _lab_processes(), "the running lab should have host processes (guards the check below)"
    inside = _machine_processes()
    assert len(inside) > len(lab.machines), "every machine should have processes (guards the check below)"
    result = subprocess.run([sys.executable, "-m", "cli", "lab", "down"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[3])
    assert result.returncode == 0, result.stderr

    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert [n for n in namespaces.split() if n.startswith(PREFIX)] == []
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    assert [line for line in links.splitlines() if f": {PREFIX}" in line] == []
    table = subprocess.run(["nft", "list", "table", "inet", NFT_TABLE], capture_output=True)
    assert table.returncode != 0, "the nftables table is still there"
    mounts = Path("/proc/mounts").read_text()
    assert str(STATE_ROOT) not in mounts
    assert _lab_processes() == []
    survivors = [pid for pid, started in inside.items() if started is not None and _start_time(pid) == started]
    assert survivors == [], f"processes of lab machines still running: {survivors}"
    assert not lab.state_dir.exists()
    assert not list(Path("/etc/netns").glob(f"{PREFIX}*"))
    # A landing zone's route to its hub firewall: the policy rules go too (lab/hub_firewall.py).
    rules = subprocess.run(["ip", "rule", "show"], capture_output=True, text=True, check=True).stdout
    assert not [line for line in rules.splitlines()
                if line.split(":")[0].strip() in (str(MAIN_WITHOUT_DEFAULT_PRIORITY), str(FIREWALL_RULE_PRIORITY))]
    left = [str(path) for root in CGROUP_ROOTS if root.is_dir() for path in root.rglob(f"{CGROUP_PREFIX}lab-*")]
    assert left == [], f"machine cgroups left behind: {left}"
