"""The airlock's two paths in a running lab, timed: a large extract in, and a checked output out.

Needs a running lab of a stack with an airlock (root; `blueprints lab up stacks/example.yaml`):

    .venv/bin/python benchmarks/airlock_lab.py ingress [SIZE_MIB] [RUNS]   # default 1024 MiB, 1 run
    .venv/bin/python benchmarks/airlock_lab.py egress

ingress: a data provider on the trust network uploads SIZE_MIB of random bytes to the ingress
container (TLS, the front's token and grant checks, Azurite's writes), then the first reading
analytics VM's copy service fetches it with the VM's own identity. Prints seconds and MiB/s for
each leg, checks the copy's size, then deletes the blob and the copy.

egress: from the Git server's own audit log, the time from each checker's merge on main
("approval-merged", recorded as the push is accepted) to its publication in the egress container
("published"). Run it after an egress proposal went through (the acceptance suite
tests/acceptance/test_airlock_egress.py makes one).
"""

from __future__ import annotations

import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REPO = Path(__file__).resolve().parent.parent
PROVIDER = "data.provider@example.nhs.uk"
API_VERSION = "2021-08-06"


def _running_lab() -> tuple[dict[str, Any], dict[str, Any], Path]:
    from lab.layout import read_record, running_labs
    from validation.stack_config import load_stack

    labs = running_labs()
    if not labs:
        raise SystemExit("no lab is running: blueprints lab up stacks/example.yaml (as root)")
    record = read_record(labs[0])
    return record, load_stack(record["stack_file"]), labs[0].root


def _on(machine: str, command: str) -> str:
    import testinfra

    import lab.testinfra_backend  # noqa: F401  (registers nspawn://)

    result = testinfra.get_host(f"nspawn://{machine}").run(command)
    if result.rc != 0:
        raise SystemExit(f"{machine}: {command!r} failed ({result.rc}): {result.stderr.strip()}")
    return result.stdout


def _provider_curl(record: dict[str, Any], config: dict[str, Any], state_dir: Path, method: str, path: str,
                   data: Path | None = None) -> str:
    from lab.trust_network import provider_addresses

    token = subprocess.run([sys.executable, "-m", "cli", "lab", "storage-token", PROVIDER], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.strip()
    host = f"{record['airlock_account']}.blob.core.windows.net"
    argv = ["ip", "netns", "exec", "tb-trust", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
            "--max-time", "3600", "--cacert", str(state_dir / "platform" / "ca" / "ca.crt"),
            "--resolve", f"{host}:443:{record['airlock_address']}", "--interface", provider_addresses(config)[0],
            "-X", method, "-H", f"x-ms-version: {API_VERSION}", "-H", "x-ms-blob-type: BlockBlob",
            "-H", f"Authorization: Bearer {token}"]
    if data is not None:
        argv += ["-T", str(data)]
    result = subprocess.run([*argv, f"https://{host}{path}"], capture_output=True, text=True, check=False)
    return result.stdout.strip() or result.stderr.strip()


def ingress(size_mib: int, runs: int) -> int:
    from blueprints.airlock_settings import INGRESS_CONTAINER, INGRESS_FOLDER, ingress_readers

    record, config, state_dir = _running_lab()
    readers = ingress_readers(config)
    if not readers:
        raise SystemExit("this lab's stack has no airlock readers")
    reader = readers[0]
    print(f"ingress of {size_mib} MiB to {reader}, {runs} run(s)")
    uploads, copies = [], []
    with tempfile.TemporaryDirectory(prefix="airlock-bench-", dir="/var/tmp") as work:
        extract = Path(work) / "extract.bin"
        subprocess.run(["head", "-c", f"{size_mib}M", "/dev/urandom"], stdout=extract.open("wb"), check=True)
        for run in range(1, runs + 1):
            name = f"benchmark-{int(time.time())}-{run}.bin"
            started = time.monotonic()
            status = _provider_curl(record, config, state_dir, "PUT", f"/{INGRESS_CONTAINER}/{name}", extract)
            uploaded = time.monotonic() - started
            if status != "201":
                raise SystemExit(f"upload answered {status}")
            started = time.monotonic()
            _on(reader, "systemctl start analytics-ingress-sync.service")
            copied = time.monotonic() - started
            size = int(_on(reader, f"stat -c %s {shlex.quote(f'{INGRESS_FOLDER}/{name}')}").strip())
            if size != size_mib << 20:
                raise SystemExit(f"the copy on {reader} has {size} bytes, not {size_mib << 20}")
            uploads.append(uploaded)
            copies.append(copied)
            print(f"run {run}: upload {uploaded:.1f} s ({size_mib / uploaded:.0f} MiB/s), "
                  f"copy to {reader} {copied:.1f} s ({size_mib / copied:.0f} MiB/s), size checked")
            _provider_curl(record, config, state_dir, "DELETE", f"/{INGRESS_CONTAINER}/{name}")
            _on(reader, f"rm -f {shlex.quote(f'{INGRESS_FOLDER}/{name}')}")
    print(f"median: upload {statistics.median(uploads):.1f} s, copy {statistics.median(copies):.1f} s")
    return 0


def _moment(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


def egress() -> int:
    from blueprints.git_server.server_commands import EGRESS_AUDIT
    from blueprints.topology import plan_machines

    _record, config, _state_dir = _running_lab()
    git = next(machine.name for machine in plan_machines(config) if machine.role == "git_server")
    entries = [json.loads(line) for line in _on(git, f"cat {EGRESS_AUDIT}").splitlines() if line.strip()]
    # A proposal may be pushed more than once; its path starts at the last push before the merge.
    pushed = {entry["proposal"]: _moment(entry["time"]) for entry in entries if entry["event"] == "proposal-pushed"}
    merged = {entry["commit"]: _moment(entry["time"]) for entry in entries if entry["event"] == "approval-merged"}
    totals, publications = [], []
    for entry in entries:
        if entry["event"] != "published" or entry["commit"] not in merged:
            continue
        published = _moment(entry["time"])
        publication = (published - merged[entry["commit"]]).total_seconds()
        publications.append(publication)
        line = f"{entry['proposal']}: merged to published {publication:.1f} s"
        if entry["proposal"] in pushed:
            total = (published - pushed[entry["proposal"]]).total_seconds()
            totals.append(total)
            line += f", pushed to published {total:.1f} s (the checker's review time included)"
        print(line)
    if not publications:
        raise SystemExit("no published proposal in the audit log: run tests/acceptance/test_airlock_egress.py first")
    print(f"median over {len(publications)}: merged to published {statistics.median(publications):.1f} s"
          + (f", pushed to published {statistics.median(totals):.1f} s" if totals else ""))
    return 0


def _positive(argv: list[str], index: int, name: str, default: int) -> int:
    if len(argv) <= index:
        return default
    if not argv[index].isdigit() or int(argv[index]) < 1:
        print(f"airlock_lab.py: {name} must be a whole number of at least 1, not {argv[index]!r}", file=sys.stderr)
        raise SystemExit(2)
    return int(argv[index])


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("ingress", "egress"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if argv[0] == "egress":
        return egress()
    return ingress(_positive(argv, 1, "SIZE_MIB", 1024), _positive(argv, 2, "RUNS", 1))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
