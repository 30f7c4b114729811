"""pip through the package mirror: direct from PyPI vs a cold mirror vs a warm mirror.

All three run on the mirror machine itself (the only machine with a route to PyPI), one after
another in one run, each a fresh virtualenv and `pip install --no-cache-dir --only-binary :all:`
of the same fixed wheels; the figure is the median wall time of the pip step over 3 runs.

  direct  --index-url https://pypi.org/simple (through the mirror's Internet egress)
  cold    a brand-new devpi mirror index with an empty cache, per run (http://127.0.0.1:3141)
  warm    the clients' real path: https://mirror.<zone>/pypi/root/trust/+simple/ (nginx, TLS,
          allowlist, devpi) after one warm-up install

Then prints the size of each cache on disk. Usage (root, with the lab running):

  python benchmarks/mirror_pip.py [--stack stacks/example.yaml] [--runs 3]
  python benchmarks/mirror_pip.py --exec "COMMAND PREFIX"   # any way to run a command on the mirror

Every project below must be on the stack's PyPI allowlist (stacks/example.yaml has them).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WHEELS = ["numpy", "pandas", "python-dateutil", "pytz", "tzdata", "six", "requests",
          "charset-normalizer", "idna", "urllib3", "certifi"]

# Runs on the mirror, as root, with only Debian's Python.
ON_MIRROR = r'''
import base64, json, os, shutil, statistics, subprocess, sys, tempfile, time, urllib.request, uuid
wheels, runs, warm_url = json.loads(sys.argv[1])
DEVPI = "http://127.0.0.1:3141"

def devpi(method, path, body=None, auth=None):
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if auth:
        headers["X-Devpi-Auth"] = auth
    request = urllib.request.Request(DEVPI + path, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)

def login():
    password = open("/etc/trust-blueprints/mirror/devpi-root-password").read().strip()
    token = devpi("POST", "/+login", {"user": "root", "password": password})["result"]["password"]
    return base64.b64encode(f"root:{token}".encode()).decode()

def timed_install(index_url):
    work = tempfile.mkdtemp(prefix="bench-pip-")
    try:
        subprocess.run([sys.executable, "-m", "venv", f"{work}/venv"], check=True)
        start = time.monotonic()
        result = subprocess.run([f"{work}/venv/bin/pip", "install", "--quiet", "--no-cache-dir",
                                 "--disable-pip-version-check", "--only-binary", ":all:",
                                 "--cert", "/etc/ssl/certs/ca-certificates.crt",
                                 "--index-url", index_url, *wheels], capture_output=True, text=True)
        elapsed = time.monotonic() - start
        if result.returncode != 0:
            sys.exit(f"pip install from {index_url} failed:\n{result.stderr[-2000:]}")
        return elapsed
    finally:
        shutil.rmtree(work, ignore_errors=True)

upstream = json.load(open("/etc/trust-blueprints/mirror/settings.json"))["upstreams"]["pypi"]
times = {"direct": [], "cold": [], "warm": []}
for _ in range(runs):
    times["direct"].append(timed_install(upstream))
auth = login()
for _ in range(runs):
    name = f"bench-cold-{uuid.uuid4().hex[:8]}"
    devpi("PUT", f"/root/{name}", {"type": "mirror", "mirror_url": upstream.rstrip("/") + "/",
                                          "mirror_no_project_list": True}, auth)
    try:
        times["cold"].append(timed_install(f"{DEVPI}/root/{name}/+simple/"))
    finally:
        devpi("DELETE", f"/root/{name}", None, auth)
timed_install(warm_url)
for _ in range(runs):
    times["warm"].append(timed_install(warm_url))
sizes = {}
for path in ("/var/cache/apt-cacher-ng", "/var/lib/devpi", "/var/cache/nginx/pypi-files",
             "/var/lib/verdaccio/storage", "/var/cache/nginx/cran"):
    du = subprocess.run(["du", "-sb", path], capture_output=True, text=True)
    sizes[path] = int(du.stdout.split()[0]) if du.returncode == 0 else None
print(json.dumps({"times": times, "sizes": sizes}))
'''


def mirror_command(args: argparse.Namespace, argv: list[str]) -> list[str]:
    if args.exec:
        return [*shlex.split(args.exec), *argv]
    from blueprints.topology import plan_machines
    from lab.machines import nsenter_argv, require_leader
    from validation.stack_config import load_stack

    config = load_stack(REPO / args.stack)
    machine = next(m.name for m in plan_machines(config) if m.role == "package_mirror")
    return nsenter_argv(require_leader(machine), argv)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="stacks/example.yaml")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--exec", help="command prefix that runs a command as root on the mirror")
    args = parser.parse_args()

    from blueprints.package_mirror.client_settings import mirror_client_settings
    from blueprints.topology import private_dns_zone
    from validation.stack_config import load_stack

    config = load_stack(REPO / args.stack)
    allowlist = {entry.split("<")[0].split(">")[0].split("=")[0].split("~")[0].split("!")[0].lower()
                 for entry in config["roles"]["package_mirror"]["allowlists"]["pypi"]}
    missing = [w for w in WHEELS if w not in allowlist]
    if missing:
        print(f"{args.stack}: not on the PyPI allowlist: {', '.join(missing)}", file=sys.stderr)
        return 2
    warm_url = mirror_client_settings(f"mirror.{private_dns_zone(config)}").pypi_index_url
    payload = json.dumps([WHEELS, args.runs, warm_url])
    result = subprocess.run(mirror_command(args, ["python3", "-c", ON_MIRROR, payload]),
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        return 1
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"pip install of {len(WHEELS)} wheels ({', '.join(WHEELS)}), {args.runs} runs each, on the mirror")
    for kind in ("direct", "cold", "warm"):
        runs = sorted(report["times"][kind])
        median = runs[len(runs) // 2]
        print(f"  {kind:6s} median {median:6.2f} s   runs: {', '.join(f'{t:.2f}' for t in report['times'][kind])}")
    print("cache size on disk:")
    for path, size in report["sizes"].items():
        shown = "missing" if size is None else f"{size / 2**20:9.1f} MiB ({size} bytes)"
        print(f"  {path:32s} {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
