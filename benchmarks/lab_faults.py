"""Fault scenarios against the running lab: how many pass and how long recovery takes.

Run as root from the repository with a lab up (it stops the mirror's services, re-runs
cloud-init on two machines and reboots every machine, so nobody else should be using the lab):

    sudo .venv/bin/python benchmarks/lab_faults.py [--skip-acceptance]

It runs the fault tests (tests/lab/machines/test_faults.py) and the Git server's backup-and-restore test,
then, unless --skip-acceptance, every acceptance suite again on the machines that went through the
faults. Recovery times are the ones the tests record (pytest's record_property, read back from a
JUnit XML report): from restarting the mirror's services until each client's install works
again, from `cloud-init clean` to the machine being up with cloud-init done, and from the reboot
request until each machine is up. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GIT_RESTORE = "tests/acceptance/test_git_server.py::test_backup_delete_restore_keeps_every_ref"
FAULTS = "tests/lab/machines/test_faults.py"


def _pytest(report: Path, *targets: str, faults: bool) -> float:
    env = dict(os.environ, BLUEPRINTS_LAB_REQUIRED="1")
    if faults:
        env["BLUEPRINTS_LAB_FAULTS"] = "1"
    began = time.monotonic()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                    # record_property's values reach the report only in this format.
                    "-o", "junit_family=xunit1",
                    *targets], cwd=REPO, env=env, check=False)
    return time.monotonic() - began


def _cases(report: Path) -> list[dict[str, object]]:
    cases = []
    # The report is pytest's own, written by the run just before: not untrusted input.
    for case in ElementTree.parse(report).getroot().iter("testcase"):  # noqa: S314
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        cases.append({"name": case.get("name"), "outcome": outcome, "seconds": float(case.get("time") or 0),
                      "properties": properties})
    return cases


def _find(cases: list[dict[str, object]], prefix: str) -> list[dict[str, object]]:
    return [case for case in cases if str(case["name"]).startswith(prefix)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-acceptance", action="store_true",
                        help="do not run the acceptance suites again after the reboot")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("benchmarks/lab_faults.py enters lab machines: run it as root", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as scratch:
        faults_report = Path(scratch) / "faults.xml"
        faults_wall = _pytest(faults_report, GIT_RESTORE, FAULTS, faults=True)
        cases = _cases(faults_report)
        acceptance: list[dict[str, object]] = []
        acceptance_wall = 0.0
        if not args.skip_acceptance:
            acceptance_report = Path(scratch) / "acceptance.xml"
            acceptance_wall = _pytest(acceptance_report, "tests/acceptance", faults=False)
            acceptance = _cases(acceptance_report)

    scenarios: list[tuple[str, bool, str]] = []
    for case in _find(cases, "test_mirror_stopped"):
        times = ", ".join(f"{key.rsplit('_', 1)[1]} {value}s" for key, value in sorted(case["properties"].items()))
        scenarios.append(("mirror stopped", case["outcome"] == "passed",
                          f"installs work again after the restart: {times or 'not measured'}"))
    for case in _find(cases, "test_cloud_init_run_again"):
        role = str(case["name"]).split("[", 1)[1].rstrip("]")
        seconds = case["properties"].get("rerun_seconds", "?")
        scenarios.append((f"cloud-init run again ({role})", case["outcome"] == "passed",
                          f"clean to up with cloud-init done: {seconds}s"))
    for case in _find(cases, "test_every_machine_reboots"):
        times = ", ".join(f"{key.removeprefix('reboot_seconds_')} {value}s"
                          for key, value in sorted(case["properties"].items()))
        passed = case["outcome"] == "passed"
        detail = f"up again after: {times or 'not measured'}"
        if acceptance:
            counts = {outcome: sum(1 for c in acceptance if c["outcome"] == outcome)
                      for outcome in ("passed", "failed", "xfailed", "skipped")}
            passed = passed and counts["failed"] == 0
            detail += (f"; acceptance suites afterwards: {counts['passed']} passed, {counts['failed']} failed, "
                       f"{counts['xfailed']} expected failures, {counts['skipped']} skipped "
                       f"in {acceptance_wall:.0f}s")
        else:
            detail += "; acceptance suites not run again (--skip-acceptance)"
        scenarios.append(("every machine rebooted", passed, detail))
    for case in _find(cases, "test_backup_delete_restore_keeps_every_ref"):
        scenarios.append(("git repository lost and restored", case["outcome"] == "passed",
                          f"backup, delete, restore, every ref identical: {case['seconds']:.1f}s"))

    passed = sum(1 for _, ok, _ in scenarios if ok)
    print(f"fault scenarios passed: {passed}/{len(scenarios)} (fault tests took {faults_wall:.0f}s)")
    for name, ok, detail in scenarios:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}")
    return 0 if scenarios else 1


if __name__ == "__main__":
    sys.exit(main())
