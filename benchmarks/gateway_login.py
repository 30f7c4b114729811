"""How long an analyst waits to sign in at the gateway: opening the URL to the landing page.

Needs a running lab (`sudo blueprints lab up`); run as root from the repository:

    sudo .venv/bin/python benchmarks/gateway_login.py [--runs 5]

Each run is a fresh headless chromium in the lab's client namespace (a cold browser: no cookies,
no cache), signing in as the lab's allowed analyst at the lab's stand-in for Entra ID. The time
covers the redirect to the provider, its sign-in form, the code exchange at the gateway and the
landing page; browser start-up is excluded. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.layout import read_record, running_labs  # noqa: E402
from validation.stack_config import load_stack  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    labs = running_labs()
    if not labs:
        print("no lab running: run `sudo blueprints lab up` first", file=sys.stderr)
        return 2
    layout = labs[0]
    record = read_record(layout)
    hostname = load_stack(record["stack_file"])["roles"]["gateway"]["hostname"]
    seconds = []
    for run in range(1, args.runs + 1):
        result = subprocess.run(
            ["ip", "netns", "exec", "tb-client", sys.executable, str(REPO / "tests/acceptance/gateway_browser.py"),
             "--url", f"https://{hostname}/", "--user", "analyst", "--ca-cert", str(layout.ca_cert)],
            capture_output=True, text=True, check=False, timeout=180)
        if result.returncode != 0:
            print(f"run {run}: the browser failed:\n{result.stderr[-2000:]}", file=sys.stderr)
            return 1
        outcome = json.loads(result.stdout.strip().splitlines()[-1])
        if outcome["landing_status"] != 200:
            print(f"run {run}: landing page answered {outcome['landing_status']}", file=sys.stderr)
            return 1
        seconds.append(float(outcome["seconds_to_landing"]))
        print(f"run {run}: {seconds[-1]:.3f} s from opening https://{hostname}/ to the landing page")
    print(f"median of {len(seconds)}: {statistics.median(seconds):.3f} s "
          f"(min {min(seconds):.3f}, max {max(seconds):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
