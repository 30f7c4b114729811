"""Each lab machine's hardening index and suggestions, from Debian's own auditor, lynis.

Run as root from the repository with a lab up:

    sudo .venv/bin/python benchmarks/lynis_scores.py

lynis is installed on each machine through the environment's mirror (a real Debian package, as an
administrator would install it), run once (`lynis audit system --quick`) and purged again if the
machine did not have it. The index and every suggestion go to out/lynis/<machine>.txt and the
indices are printed. Figures are printed, never asserted: the hardening floor the issue asks for
(75) is not yet met, and a test that asserted it would fail today.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.layout import read_record, running_labs  # noqa: E402
from lab.machines import nsenter_argv, require_leader  # noqa: E402

EVIDENCE = REPO / "out" / "lynis"
REPORT = "/root/trust-blueprints-lynis-report.dat"
APT = "DEBIAN_FRONTEND=noninteractive apt-get -q"


def _in(machine: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(nsenter_argv(require_leader(machine), ["/bin/sh", "-c", command]),
                          capture_output=True, text=True, check=False)


def audit(machine: str) -> tuple[int, list[str]]:
    had = _in(machine, "dpkg-query -W -f '${Status}' lynis 2>/dev/null | grep -q 'ok installed'").returncode == 0
    if not had:
        installed = _in(machine, f"{APT} update >/dev/null && {APT} install -y lynis >/dev/null")
        if installed.returncode != 0:
            raise SystemExit(f"{machine}: lynis could not be installed: {installed.stderr.strip()}")
    try:
        run = _in(machine, f"lynis audit system --quick --no-colors --no-log --report-file {REPORT} >/dev/null"
                           f" && cat {REPORT}")
    finally:
        _in(machine, f"rm -f {REPORT}" + ("" if had else f"; {APT} purge -y lynis >/dev/null"))
    index = re.search(r"^hardening_index=(\d+)$", run.stdout, re.MULTILINE)
    if run.returncode != 0 or not index:
        raise SystemExit(f"{machine}: lynis wrote no hardening index: {run.stderr.strip()}")
    suggestions = [line.split("=", 1)[1].split("|")[0] + ": " + line.split("|")[1]
                   for line in run.stdout.splitlines() if line.startswith("suggestion[]=")]
    return int(index.group(1)), suggestions


def main() -> int:
    labs = running_labs()
    if not labs:
        print("no lab is running: start one with `blueprints lab up STACK`", file=sys.stderr)
        return 2
    EVIDENCE.mkdir(parents=True, exist_ok=True)
    for machine in read_record(labs[0])["machines"]:
        index, suggestions = audit(machine)
        (EVIDENCE / f"{machine}.txt").write_text(f"hardening index {index}\n" + "\n".join(suggestions) + "\n",
                                                 encoding="utf-8")
        print(f"{machine:14} hardening index {index:3}  suggestions {len(suggestions)}", flush=True)
    print(f"details: {EVIDENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
