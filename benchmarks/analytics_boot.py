"""The analytics role in the running lab: cloud-init time with a cold and a warm mirror cache,
installed size, and memory with one idle analyst server. Prints figures; asserts nothing.

Cold: the first analytics VM's cloud-init time as `blueprints lab up` recorded it (with its role
layer, the lab's image path, unless the lab was started with --no-role-layers: run both to compare
a first boot with and without a prebuilt image). Warm: the last analytics VM is then given a new OS
disk (its data disk kept, its secrets fetched through the platform stand-ins) as `lab apply
--replace` does, while the mirror's cache holds every package.

    sudo flock /run/tb-lab.lock sh -c '.venv/bin/blueprints lab up && .venv/bin/python benchmarks/analytics_boot.py; \
        .venv/bin/blueprints lab down'
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from lab import apply, machines
from lab.layout import LabLayout
from lab.progress import Progress
from validation.stack_config import load_stack

TIMEOUT = 3600


def in_machine(name: str, script: str) -> str:
    result = machines.run(None, name, ["/bin/sh", "-c", script])
    if result.returncode != 0:
        raise SystemExit(f"{name}: {script!r} failed: {result.stderr.strip()}")
    return result.stdout


def reprovision(layout: LabLayout, record: dict[str, Any], config: dict[str, Any], name: str) -> float:
    """A new OS disk for one machine (its data disk kept), booted through the platform stand-ins, as
    `lab apply --replace` does; seconds until cloud-init finished."""
    machine = next(m for m in machines_of(config) if m.name == name)
    failures = apply.rebuild_machines(layout, record, config, [machine], Progress())
    if failures:
        raise SystemExit("\n".join(failures))
    return float(record["machines"][name]["seconds"])


def machines_of(config: dict[str, Any]) -> list[Any]:
    from blueprints.topology import plan_machines

    return plan_machines(config)


def installed_mib(name: str, base: Path) -> float:
    """MiB of Debian packages (installed size) the role added over the lab's base image."""
    base_packages = set(subprocess.run(
        ["dpkg-query", f"--admindir={base}/var/lib/dpkg", "-W", "-f", "${Package}\n"],
        capture_output=True, text=True, check=True).stdout.split())
    rows = in_machine(name, "dpkg-query -W -f '${Package} ${Installed-Size}\\n'").split("\n")
    added_kib = sum(int(size) for package, _, size in (row.partition(" ") for row in rows if row)
                    if package not in base_packages and size.isdigit())
    return added_kib / 1024


def overlay_mib(layout: LabLayout, name: str) -> float:
    usage = subprocess.run(["du", "-sxk", str(layout.machine_dir(name) / "upper")],
                           capture_output=True, text=True, check=True).stdout.split()[0]
    return int(usage) / 1024


def idle_server_memory(config: dict[str, Any], name: str, gateway: tuple[str, str] | None) -> float | None:
    """MiB resident in the hub, its proxy and one analyst's idle server (ps RSS, summed)."""
    if gateway is None:
        return None
    gateway_name, gateway_ip = gateway
    zone = f"{config['trust']['short_name']}-{config['environment']}.internal"
    hub = f"https://{name}.{zone}:8000/{name}"  # the hub's base URL is the gateway's path for it
    # The hub signs in only accounts the stack maps a person to (roles.gateway.identity.accounts).
    accounts = [entry["account"] for entry in
                ((config["roles"].get("gateway") or {}).get("identity") or {}).get("accounts", [])
                if "." not in entry["account"]]
    if not accounts:
        return None
    user = accounts[0]
    in_machine(gateway_name, f"curl -sS -o /dev/null --interface {gateway_ip} -H 'X-Remote-User: {user}' "
                             f"{hub}/hub/gateway-login")
    token = in_machine(name, f"cd /var/lib/jupyterhub && jupyterhub token -f /etc/jupyterhub/jupyterhub_config.py "
                             f"{user}").split()[-1]
    in_machine(name, f"curl -sS -o /dev/null -X POST -H 'Authorization: token {token}' "
                     f"{hub}/hub/api/users/{user}/server")
    time.sleep(30)
    rows = in_machine(name, "ps -eo rss=,args=").splitlines()
    kib = sum(int(row.split(None, 1)[0]) for row in rows
              if any(word in row for word in ("jupyterhub", "configurable-http-proxy")))
    return kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-warm", action="store_true", help="skip provisioning a VM again with a warm cache")
    args = parser.parse_args()
    layout, record = machines.running_lab()
    config = load_stack(record["stack_file"])
    analytics = [m for m in machines_of(config) if m.role == "analytics"]
    if not analytics:
        raise SystemExit("this lab's stack has no analytics VM")
    gateway = next(((m.name, m.private_ip) for m in machines_of(config) if m.role == "gateway"), None)
    first = analytics[0].name
    figures: dict[str, Any] = {
        "cold_cloud_init_s": record["machines"][first]["seconds"],
        "packages_added_mib": round(installed_mib(first, Path(record["base"]))),
        "overlay_written_mib": round(overlay_mib(layout, first)),
    }
    memory = idle_server_memory(config, first, gateway)
    figures["hub_proxy_one_idle_server_rss_mib"] = None if memory is None else round(memory)
    if not args.no_warm:
        figures["warm_cloud_init_s"] = round(reprovision(layout, record, config, analytics[-1].name), 1)
    for key, value in figures.items():
        print(f"{key:40} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
