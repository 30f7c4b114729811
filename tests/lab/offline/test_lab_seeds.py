"""The lab's NoCloud seeds: user-data byte-identical to Azure's, lab-only meta-data and network-config."""

from __future__ import annotations

import yaml

from blueprints.cloud_init import render_user_data
from blueprints.topology import plan_machines
from lab.seeds import DATASOURCE_CONFIG, SEED_PATH, seed_files, write_seed


def test_user_data_is_exactly_what_azure_receives(example_config):
    for machine in plan_machines(example_config):
        assert seed_files(example_config, "example", machine)["user-data"] == render_user_data(example_config, machine)


def test_instance_ids_are_stable_and_distinct(example_config):
    machines = plan_machines(example_config)
    first = [yaml.safe_load(seed_files(example_config, "example", m)["meta-data"]) for m in machines]
    again = [yaml.safe_load(seed_files(example_config, "example", m)["meta-data"]) for m in machines]
    assert first == again
    assert len({doc["instance-id"] for doc in first}) == len(machines)
    assert [doc["local-hostname"] for doc in first] == [m.name for m in machines]


def test_network_config_uses_the_azure_address_and_the_subnet_gateway(example_config):
    for machine in plan_machines(example_config):
        document = yaml.safe_load(seed_files(example_config, "example", machine)["network-config"])
        eth0 = document["ethernets"]["eth0"]
        gateway = machine.private_ip.rsplit(".", 1)[0] + ".1"
        assert eth0["addresses"] == [f"{machine.private_ip}/24"]
        assert eth0["routes"] == [{"to": "default", "via": gateway}]
        assert eth0["nameservers"] == {"addresses": [gateway]}


def test_written_seed_holds_the_same_bytes(example_config, tmp_path):
    machine = plan_machines(example_config)[0]
    files = seed_files(example_config, "example", machine)
    seed = write_seed(tmp_path, files)
    assert seed == tmp_path / SEED_PATH
    for name, content in files.items():
        assert (seed / name).read_bytes() == content
        assert (seed / name).stat().st_mode & 0o777 == 0o600
    assert yaml.safe_load((tmp_path / DATASOURCE_CONFIG).read_text()) == {"datasource_list": ["NoCloud", "None"]}
