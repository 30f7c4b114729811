"""The NoCloud seed of each lab machine.

user-data is exactly what Azure receives (``render_user_data``); only meta-data and
network-config are the lab's own: a fixed instance id (so a reboot does not re-run cloud-init),
the machine's Azure private address, the default route through the subnet's ``.1`` on the host
bridge (Azure's default gateway address) and that same address for DNS (Azure's resolver is a
platform address too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from blueprints.cloud_init import render_user_data
from blueprints.topology import Machine, subnet_plan

SEED_PATH = "var/lib/cloud/seed/nocloud"
DATASOURCE_CONFIG = "etc/cloud/cloud.cfg.d/90_trust_blueprints_lab.cfg"
# Inside each machine the lab's cable is eth0, as on an Azure VM.
INTERFACE = "eth0"


def gateway_address(config: dict[str, Any], subnet: str) -> str:
    """The host's address on a subnet's bridge: the first host address, as Azure's gateway."""
    return str(subnet_plan(config)[subnet].network_address + 1)


def instance_id(stack: str, machine: Machine) -> str:
    return f"lab-{stack}-{machine.name}"


def meta_data(stack: str, machine: Machine) -> bytes:
    return yaml.safe_dump({"instance-id": instance_id(stack, machine),
                           "local-hostname": machine.name}, sort_keys=False).encode()


def network_config(config: dict[str, Any], machine: Machine) -> bytes:
    network = subnet_plan(config)[machine.subnet]
    gateway = gateway_address(config, machine.subnet)
    document = {
        "version": 2,
        "ethernets": {
            INTERFACE: {
                "match": {"name": INTERFACE},
                "addresses": [f"{machine.private_ip}/{network.prefixlen}"],
                "routes": [{"to": "default", "via": gateway}],
                "nameservers": {"addresses": [gateway]},
            }
        },
    }
    return yaml.safe_dump(document, sort_keys=False).encode()


def seed_files(config: dict[str, Any], stack: str, machine: Machine) -> dict[str, bytes]:
    """Seed file name -> contents."""
    return {
        "user-data": render_user_data(config, machine),
        "meta-data": meta_data(stack, machine),
        "network-config": network_config(config, machine),
    }


def write_seed(machine_root: Path, files: dict[str, bytes]) -> Path:
    seed = machine_root / SEED_PATH
    seed.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (seed / name).write_bytes(content)
        (seed / name).chmod(0o600)
    # Look only for the NoCloud seed: no probing for cloud metadata services that do not exist here.
    datasource = machine_root / DATASOURCE_CONFIG
    datasource.parent.mkdir(parents=True, exist_ok=True)
    datasource.write_text("datasource_list: [NoCloud, None]\n")
    return seed
