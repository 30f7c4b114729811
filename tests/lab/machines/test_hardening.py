"""The host hardening every role shares (blueprints/templates/hardening.sh, docs/hardening.md),
measured and attacked in the lab.

Every machine is audited by Debian's lynis (lab/lynis_audit.py: installed through the mirror, run
once, purged) and must reach the hardening floor; each index and suggestion is kept in out/lynis
as evidence. Then, as two unprivileged accounts on an analytics VM, one analyst's temporary files
and the files they leave in /tmp are refused to the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lab.lynis_audit import HARDENING_FLOOR, LynisResult, audit, evidence_text

EVIDENCE = Path(__file__).resolve().parents[3] / "out" / "lynis"


@pytest.fixture(scope="module")
def audits(lab) -> list[LynisResult]:
    names = [machine.name for machine in lab.machines]
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        results = list(pool.map(audit, names))
    EVIDENCE.mkdir(parents=True, exist_ok=True)
    for result in results:
        (EVIDENCE / f"{result.machine}.txt").write_text(evidence_text(result), encoding="utf-8")
    return results


def test_every_machine_reaches_the_hardening_floor(audits):
    scores = {result.machine: result.index for result in audits}
    print("lynis hardening index:", scores)
    below = {machine: index for machine, index in scores.items() if index < HARDENING_FLOOR}
    assert not below, f"below the floor of {HARDENING_FLOOR} (suggestions in {EVIDENCE}): {below}"


def test_the_audit_left_no_lynis_behind(lab, audits):
    for machine in lab.machines:
        assert not lab.host(machine.name).package("lynis").is_installed, machine.name


@pytest.fixture
def two_analysts(analytics_host) -> Iterator[tuple[str, str]]:
    names = ("tbprobe-alice", "tbprobe-bob")
    for name in names:
        analytics_host.run_test(f"useradd --create-home --shell /bin/bash {name}")
    try:
        yield names
    finally:
        for name in names:
            analytics_host.run(f"pkill -u {name}; userdel --remove {name}")
        analytics_host.run("rm -f /tmp/tbprobe-left-in-tmp")


def test_one_analysts_temporary_files_are_refused_to_another(analytics_host, two_analysts):
    alice, bob = two_analysts
    # A login session (su -, as SSH opens one) gets a private TMPDIR and umask from the hardening.
    wrote = analytics_host.run(f"su - {alice} -c 'echo private > \"$TMPDIR/notes\" && echo left > "
                               f"/tmp/tbprobe-left-in-tmp && echo \"$TMPDIR\" && umask'")
    assert wrote.rc == 0, wrote.stderr
    tmpdir, umask = wrote.stdout.split()
    assert tmpdir.startswith("/tmp/user/"), tmpdir
    assert umask in ("0007", "0027"), umask  # 027 from login.defs; private groups widen the group part
    for path in (f"{tmpdir}/notes", "/tmp/tbprobe-left-in-tmp"):
        read = analytics_host.run(f"su - {bob} -c 'cat {path}'")
        assert read.rc != 0 and "Permission denied" in read.stderr, (path, read.stdout, read.stderr)
    listing = analytics_host.run(f"su - {bob} -c 'ls /tmp/user/'")
    assert listing.rc != 0, listing.stdout


def test_analysts_servers_start_with_the_private_umask(analytics_host):
    """Servers are the hub's children and keep its umask: read from the running hub, not its unit."""
    status = analytics_host.check_output("cat /proc/$(systemctl show -p MainPID --value jupyterhub.service)/status")
    assert "Umask:\t0027" in status, [line for line in status.splitlines() if line.startswith("Umask")]
