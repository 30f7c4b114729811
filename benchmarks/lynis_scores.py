"""Each lab machine's hardening index and suggestions, from Debian's own auditor, lynis.

Run as root from the repository with a lab up:

    sudo .venv/bin/python benchmarks/lynis_scores.py

Each machine is audited by lab/lynis_audit.py (lynis installed through the mirror, run once, purged
again; the container-only tests it names left out). The index and every suggestion go to
out/lynis/<machine>.txt and the indices are printed. The floor itself is asserted by
tests/lab/machines/test_hardening.py.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.layout import read_record, running_labs  # noqa: E402
from lab.lynis_audit import HARDENING_FLOOR, LynisError, audit, evidence_text  # noqa: E402

EVIDENCE = REPO / "out" / "lynis"


def main() -> int:
    labs = running_labs()
    if not labs:
        print("no lab is running: start one with `blueprints lab up STACK`", file=sys.stderr)
        return 2
    EVIDENCE.mkdir(parents=True, exist_ok=True)
    machines = read_record(labs[0])["machines"]
    try:
        with ThreadPoolExecutor(max_workers=len(machines)) as pool:
            results = list(pool.map(audit, machines))
    except LynisError as error:
        print(error, file=sys.stderr)
        return 1
    for result in results:
        (EVIDENCE / f"{result.machine}.txt").write_text(evidence_text(result), encoding="utf-8")
        print(f"{result.machine:14} hardening index {result.index:3} (floor {HARDENING_FLOOR})  "
              f"suggestions {len(result.suggestions)}", flush=True)
    print(f"details: {EVIDENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
