"""TB-VM-009 reads files the roles ship compressed (write_files ``encoding: gz+b64``) as well."""

from __future__ import annotations

import base64
import copy

import yaml

from blueprints.cloud_init import gzip_base64, written_files
from validation.policies.vm_rules import _no_secrets_in_custom_data

VM = "azure-native:compute:VirtualMachine"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def _with_extra_file(plan, entry: dict):
    plan = copy.deepcopy(plan)
    vm = next(r for r in plan.resources if r.type == VM and "git" in r.azure_name)
    profile = vm.inputs["osProfile"]
    document = yaml.safe_load(base64.b64decode(profile["customData"]))
    document["write_files"].append(entry)
    profile["customData"] = base64.b64encode(("#cloud-config\n" + yaml.safe_dump(document)).encode()).decode()
    return vm, plan


def test_the_roles_programs_travel_compressed_and_read_back_exactly(example_plan):
    vm = next(r for r in example_plan.resources if r.type == VM and "git" in r.azure_name)
    document = yaml.safe_load(base64.b64decode(vm.inputs["osProfile"]["customData"]))
    entry = next(e for e in document["write_files"] if e["path"] == "/usr/local/sbin/git-server")
    assert entry["encoding"] == "gz+b64"
    program = written_files(document)["/usr/local/sbin/git-server"]
    assert program.startswith("#!/usr/bin/python3\n")
    assert gzip_base64(program) == entry["content"]  # same bytes every time


def test_a_secret_inside_a_compressed_file_is_found(example_plan):
    vm, plan = _with_extra_file(example_plan, {"path": "/root/.ssh/id_ed25519", "encoding": "gz+b64",
                                               "content": gzip_base64(PRIVATE_KEY)})
    assert _no_secrets_in_custom_data(vm, plan)


def test_a_compressed_file_that_cannot_be_opened_is_refused(example_plan):
    vm, plan = _with_extra_file(example_plan, {"path": "/etc/x", "encoding": "gz+b64", "content": "bm90IGd6aXA="})
    [violation] = _no_secrets_in_custom_data(vm, plan)
    assert "cannot be decoded" in str(violation)


def test_the_example_plan_has_no_secret_in_its_compressed_files(example_plan):
    for vm in (r for r in example_plan.resources if r.type == VM):
        assert _no_secrets_in_custom_data(vm, example_plan) == []
