"""The security evidence in figures, counted from the repository as it is.

- policy rules: the list in validation/policies, by severity;
- policy fixtures: each rule's violating and passing plan (tests/policy/fixtures.py), evaluated
  here, so the counts say how many actually fail or pass their rule, not how many are declared;
- hypothesis examples: the hostile-input suite (tests/hostile) run with hypothesis' statistics,
  summed per test over every phase: the examples that ran, not the configured maximum;
- checkov: the ARM-scan gate run as `make checkov` runs it (needs .venv-checkov, which
  `make checkov` creates), per stack: check results passed, failed, skipped with a
  justification, and the checks never run.

The lab's fault scenarios are not counted here: they need the lab (`make lab-test`).
Prints figures; asserts nothing. About four minutes on two cores, most of it hypothesis and checkov.

    .venv/bin/python benchmarks/evidence_counts.py [--parts rules fixtures hypothesis checkov]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # the fixtures live in tests/, which is not installed

PARTS = ("rules", "fixtures", "hypothesis", "checkov")
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"

_TEST_HEADER = re.compile(r"^(?P<test>\S+::\S+):$")
_PHASE = re.compile(r"^\s*- during (?P<phase>\w+) phase")
_CASES = re.compile(r"(?P<passing>\d+) passing,? (?P<failing>\d+) failing,? and (?P<invalid>\d+) invalid")


def count_rules() -> None:
    from validation.policies import RULES

    severities = Counter(rule.severity for rule in RULES)
    print(f"policy rules: {len(RULES)} ({', '.join(f'{n} {s}' for s, n in sorted(severities.items()))})")


def count_fixtures() -> None:
    from tests.policy.fixtures import FIXTURES, RuleFixtures, build
    from validation.policies import RULES
    from validation.policies.rule import check_rule

    rules = {rule.id: rule for rule in RULES}
    unchanged = RuleFixtures.__dataclass_fields__["passing"].default
    violating_caught = sum(not check_rule(rules[rule_id], build(rule_id, "violating")).passed for rule_id in FIXTURES)
    passing_clean = 0
    for rule_id in FIXTURES:
        result = check_rule(rules[rule_id], build(rule_id, "passing"))
        passing_clean += result.passed and result.checked > 0
    modified = sum(fixtures.passing is not unchanged for fixtures in FIXTURES.values())
    without = sorted(set(rules) - set(FIXTURES))
    print(f"policy fixtures: {len(FIXTURES)} violating, {violating_caught} of them fail their rule; "
          f"{len(FIXTURES)} passing, {passing_clean} of them pass their rule with something to check "
          f"({modified} modified plans, {len(FIXTURES) - modified} the unchanged recorded plan)")
    print(f"  rules without fixtures: {', '.join(without) if without else 'none'}")


@dataclass
class HypothesisTest:
    name: str
    passing: int = 0
    failing: int = 0
    invalid: int = 0
    phases: list[str] = field(default_factory=list)


def parse_statistics(text: str) -> list[HypothesisTest]:
    """Per-test example counts from pytest's --hypothesis-show-statistics report, every phase summed."""
    tests: list[HypothesisTest] = []
    phase = ""
    for line in text.splitlines():
        if header := _TEST_HEADER.match(line):
            tests.append(HypothesisTest(header["test"]))
        elif (found := _PHASE.match(line)) and tests:
            phase = found["phase"]
        elif (cases := _CASES.search(line)) and tests:
            test = tests[-1]
            test.passing += int(cases["passing"])
            test.failing += int(cases["failing"])
            test.invalid += int(cases["invalid"])
            test.phases.append(phase)
    return tests


def count_hypothesis() -> None:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
               "--hypothesis-show-statistics", "tests/hostile"]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    output = completed.stdout + completed.stderr
    tests = parse_statistics(output)
    summary = next((line for line in reversed(output.splitlines()) if " passed" in line or " failed" in line), "")
    print(f"hostile-input suite (tests/hostile): {summary.strip('= ') or 'no result line'}; "
          f"exit {completed.returncode}")
    if not tests:
        print("  no hypothesis statistics found in pytest's output")
        return
    width = max(len(test.name.split("::")[-1]) for test in tests)
    for test in tests:
        print(f"  {test.name.split('::')[-1]:<{width}} {test.passing:>5} passing {test.failing:>3} failing "
              f"{test.invalid:>4} invalid  ({', '.join(test.phases)})")
    print(f"hypothesis examples run: {sum(t.passing for t in tests)} passing, {sum(t.failing for t in tests)} "
          f"failing, {sum(t.invalid for t in tests)} invalid (discarded), over {len(tests)} property tests")


def count_checkov() -> None:
    if not CHECKOV.exists():
        print(f"checkov: not counted, {CHECKOV.relative_to(REPO)} is missing (`make checkov` installs it)")
        return
    stacks = sorted(str(path.relative_to(REPO)) for path in (REPO / "stacks").glob("*.yaml"))
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "validation.checkov_gate", "--checkov", str(CHECKOV), "--out", out, *stacks]
        completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        summary_file = Path(out) / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.exists() else None
    print(f"checkov gate (as `make checkov`): exit {completed.returncode}")
    if summary is None:
        print("  no summary written:\n" + completed.stderr[-2000:])
        return
    not_run = sorted(set(re.findall(r"NOT RUN (\S+):", completed.stdout)))
    print(f"  {'stack':<24} {'passed':>6} {'failed':>6} {'skipped':>7}  (check results: one per check and resource)")
    for scan in summary:
        print(f"  {scan['stack']:<24} {scan['passed']:>6} {len(scan['failed']):>6} {len(scan['skipped']):>7}")
    skipped_ids = sorted({finding.split()[0] for scan in summary for finding in scan["skipped"]})
    print(f"  total: {sum(s['passed'] for s in summary)} passed, {sum(len(s['failed']) for s in summary)} failed, "
          f"{sum(len(s['skipped']) for s in summary)} skipped (checks {', '.join(skipped_ids) or 'none'}); "
          f"checks never run: {', '.join(not_run) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which figures to count")
    args = parser.parse_args()
    counters = {"rules": count_rules, "fixtures": count_fixtures, "hypothesis": count_hypothesis,
                "checkov": count_checkov}
    for part in PARTS:
        if part in args.parts:
            counters[part]()
            sys.stdout.flush()
    print("fault scenarios: not counted here; they run in the lab (`make lab-test`)")


if __name__ == "__main__":
    main()
