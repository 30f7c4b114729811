"""Debian's own auditor, lynis, run in a lab machine: its hardening index and suggestions.

lynis is installed through the environment's mirror (a real Debian package, as an administrator
would install it), run once and purged again if the machine did not have it, so the audit leaves
the machine as it found it.

A lab machine is a container on the host's kernel. The few tests that can only read the host's
kernel, not anything the VM sets, are left out of the index with lynis's own ``skip-test`` (each
named in CONTAINER_ONLY_TESTS with why); on an Azure VM they apply and are scored.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from lab.machines import APT_GET, nsenter_argv, require_leader

REPORT = "/root/trust-blueprints-lynis-report.dat"
PROFILE = "/etc/lynis/custom.prf"
# The floor every machine must reach (docs/hardening.md).
HARDENING_FLOOR = 75
CONTAINER_ONLY_TESTS = {
    "KRNL-5788": "looks for the VM's kernel image in /boot; a container boots none",
    "KRNL-6000": "reads kernel settings from /proc/sys, which in a container are the host's; the VM's "
                 "own (/etc/sysctl.d/60-trust-blueprints.conf) apply on Azure",
    "ACCT-9628": "checks that auditd runs; the kernel's audit trail is the host's in a container, so "
                 "auditd is skipped there by condition and runs on Azure",
}


class LynisError(RuntimeError):
    """lynis could not be installed or wrote no hardening index; the message says which machine."""


@dataclass(frozen=True)
class LynisResult:
    machine: str
    index: int
    suggestions: list[str]  # "TEST-ID: text", as lynis reports them


def _in(machine: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(nsenter_argv(require_leader(machine), ["/bin/sh", "-c", command]),
                          capture_output=True, text=True, check=False)


def audit(machine: str) -> LynisResult:
    """One quick audit of ``machine``, leaving it with or without lynis as it was."""
    had = _in(machine, "dpkg-query -W -f '${Status}' lynis 2>/dev/null | grep -q 'ok installed'").returncode == 0
    if not had:
        installed = _in(machine, f"{APT_GET} update >/dev/null && {APT_GET} install -y lynis >/dev/null")
        if installed.returncode != 0:
            raise LynisError(f"{machine}: lynis could not be installed: {installed.stderr.strip()}")
    skips = "".join(f"skip-test={test}\\n" for test in sorted(CONTAINER_ONLY_TESTS))
    try:
        run = _in(machine, f"printf '{skips}' > {PROFILE} && lynis audit system --quick --no-colors --no-log "
                           f"--report-file {REPORT} >/dev/null && cat {REPORT}")
    finally:
        _in(machine, f"rm -f {REPORT} {PROFILE}" + ("" if had else f"; {APT_GET} purge -y lynis >/dev/null"))
    index = re.search(r"^hardening_index=(\d+)$", run.stdout, re.MULTILINE)
    if run.returncode != 0 or not index:
        raise LynisError(f"{machine}: lynis wrote no hardening index: {run.stderr.strip()}")
    suggestions = [line.split("=", 1)[1].split("|")[0] + ": " + line.split("|")[1]
                   for line in run.stdout.splitlines() if line.startswith("suggestion[]=")]
    return LynisResult(machine, int(index.group(1)), suggestions)


def evidence_text(result: LynisResult) -> str:
    return f"hardening index {result.index}\n" + "\n".join(result.suggestions) + "\n"
