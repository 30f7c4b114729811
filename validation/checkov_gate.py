"""`make checkov`: export every stack as an ARM template, scan the exports, judge the results.

The scanner runs from its own virtualenv (its dependencies would clash with Pulumi's), so it
is called as a program. A failed check passes the gate only when validation/checkov-skips.yaml
lists it with a reason and a compensating control, on the resource type the entry names; a
listed skip that matches no failure fails the gate too, so the published file (and the page
generated from it, docs/reference/checkov-skips.md) never claims more than it must.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SKIPS_FILE = Path(__file__).with_name("checkov-skips.yaml")
CHECK_ID = re.compile(r"^CKV2?_[A-Z]+_[0-9]+$")
SKIP_FIELDS = ("id", "check", "resource_type", "reason", "compensating_control")


class GateError(Exception):
    """The gate could not run (bad skip file, scanner missing or unreadable output)."""


@dataclass
class StackScan:
    stack: str
    passed: int = 0
    failed: list[str] = field(default_factory=list)  # "CHECK_ID resource" not covered by a skip
    skipped: list[str] = field(default_factory=list)  # failed, but justified in the skip file


def load_skips(path: Path = SKIPS_FILE, section: str = "skips") -> dict[str, dict[str, str]]:
    """The justified entries of one section: ``skips`` (may fail) or ``not_run`` (never run)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = document.get(section, [] if section != "skips" else None) if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise GateError(f"{path}: expected a mapping with a '{section}' list")
    skips: dict[str, dict[str, str]] = {}
    for index, entry in enumerate(entries):
        missing = [key for key in SKIP_FIELDS if not isinstance(entry, dict) or not str(entry.get(key) or "").strip()]
        if missing:
            raise GateError(f"{path}: {section}[{index}] lacks {', '.join(missing)}")
        if not CHECK_ID.match(entry["id"]) or entry["id"] in skips:
            raise GateError(f"{path}: {section}[{index}].id {entry['id']!r} is not a check id, or is listed twice")
        skips[entry["id"]] = entry
    return skips


def _reports(output: Any) -> list[dict[str, Any]]:
    reports = output if isinstance(output, list) else [output]
    return [report for report in reports if isinstance(report, dict) and report.get("check_type") == "arm"]


def judge(output: Any, stacks: Sequence[str], skips: dict[str, dict[str, str]]) -> tuple[list[StackScan], list[str]]:
    """Per-stack results of one scanner run, and the skip ids that matched nothing."""
    scans = {stack: StackScan(stack) for stack in stacks}
    used: set[str] = set()
    for report in _reports(output):
        results = report.get("results", {})
        for check in results.get("passed_checks", []):
            scans[Path(check["file_path"]).stem].passed += 1
        for check in results.get("failed_checks", []):
            scan = scans[Path(check["file_path"]).stem]
            finding = f"{check['check_id']} {check['resource']}: {check['check_name']}"
            skip = skips.get(check["check_id"])
            if skip and check["resource"].startswith(f"{skip['resource_type']}."):
                used.add(check["check_id"])
                scan.skipped.append(finding)
            else:
                scan.failed.append(finding)
    return list(scans.values()), sorted(set(skips) - used)


def export_stacks(stack_files: Sequence[Path], out: Path) -> list[str]:
    """Each stack's offline plan as an ARM template in ``out``, as `blueprints plan --format arm` writes it."""
    from validation.arm_export import export_template
    from validation.plan_cache import recorded_plan
    from validation.policies import evaluate, mandatory_failures
    from validation.problems import StackFileError

    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.json"):
        stale.unlink()
    for stack_file in stack_files:
        try:
            plan = recorded_plan(str(stack_file))
        except StackFileError as error:
            raise GateError(error.report()) from None
        failed = mandatory_failures(evaluate(plan))
        if failed:
            raise GateError(f"{stack_file}: mandatory policies violated: {', '.join(r.rule.id for r in failed)}")
        text = json.dumps(export_template(plan), indent=2, sort_keys=True)
        (out / f"{stack_file.stem}.json").write_text(text + "\n", encoding="utf-8")
    return [stack_file.stem for stack_file in stack_files]


def scan(checkov: Path, out: Path, not_run: Sequence[str] = ()) -> Any:
    if not checkov.exists():
        raise GateError(f"{checkov} not found; `make checkov` installs it")
    command = [str(checkov), "--framework", "arm", "--directory", str(out), "--output", "json", "--skip-download"]
    if not_run:
        command += ["--skip-check", ",".join(not_run)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        return json.loads(completed.stdout)
    except json.JSONDecodeError:
        raise GateError(f"the scanner exited {completed.returncode} without a JSON report:\n"
                        f"{completed.stderr[-2000:]}") from None


def render(scans: list[StackScan], stale: list[str]) -> str:
    lines = [f"{'stack':<24} {'passed':>6} {'failed':>6} {'skipped':>7}"]
    lines += [f"{s.stack:<24} {s.passed:>6} {len(s.failed):>6} {len(s.skipped):>7}" for s in scans]
    for s in scans:
        lines += [f"  FAILED {s.stack}: {finding}" for finding in s.failed]
    lines += [f"  STALE skip {check_id}: no stack fails it any more; remove it from the skip file"
              for check_id in stale]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m validation.checkov_gate", description=__doc__.split("\n")[0])
    parser.add_argument("stack_files", nargs="+", type=Path)
    parser.add_argument("--checkov", type=Path, required=True, help="the scanner's executable")
    parser.add_argument("--out", type=Path, default=Path("out/checkov"), help="where exports and the summary go")
    parser.add_argument("--skips", type=Path, default=SKIPS_FILE)
    args = parser.parse_args(argv)
    try:
        skips = load_skips(args.skips)
        not_run = load_skips(args.skips, "not_run")
        stacks = export_stacks(args.stack_files, args.out)
        scans, stale = judge(scan(args.checkov, args.out, sorted(not_run)), stacks, skips)
    except GateError as error:
        print(f"checkov gate: {error}", file=sys.stderr)
        return 2
    print(render(scans, stale))
    for check_id, entry in sorted(not_run.items()):
        print(f"  NOT RUN {check_id}: {entry['check']} (see {args.skips.name})")
    summary = [{"stack": s.stack, "passed": s.passed, "failed": s.failed, "skipped": s.skipped} for s in scans]
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 1 if stale or any(s.failed for s in scans) else 0


if __name__ == "__main__":
    sys.exit(main())
