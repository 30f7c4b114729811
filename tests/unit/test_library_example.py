"""The library page's example (docs/examples/mirror_only) planned under mocks, and the wheel's data files.

docs/library.md quotes the example program; planning it here keeps the page true to the code.
"""

from __future__ import annotations

import re
import runpy
import shutil
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pulumi
import pytest
from pulumi.runtime.config import set_all_config

from validation.plan_recorder import MOCK_SUBSCRIPTION, record_program

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "mirror_only"
GROUP = "rg-trust-spoke"
VNET_ID = (f"/subscriptions/{MOCK_SUBSCRIPTION}/resourceGroups/{GROUP}"
           "/providers/Microsoft.Network/virtualNetworks/vnet-trust-spoke")
SUBNET_ID = f"{VNET_ID}/subnets/snet-shared"
EXISTING = {"mirror:resourceGroupName": GROUP, "mirror:virtualNetworkId": VNET_ID, "mirror:subnetId": SUBNET_ID}


def _plan(entry: Path, config: dict[str, str]):
    set_all_config(config)
    try:
        return record_program(lambda: runpy.run_path(str(entry)), "mirror-only")
    finally:
        set_all_config({})


@pytest.fixture(scope="module")
def planned():
    return _plan(EXAMPLE / "__main__.py", EXISTING)


def test_the_example_creates_the_mirror_vm_in_the_existing_subnet(planned):
    resources, outputs = planned
    vms = [r for r in resources if r.type == "azure-native:compute:VirtualMachine"]
    assert [vm.azure_name for vm in vms] == ["vm-exnhs-dev-uks-mirror"]
    assert vms[0].inputs["resourceGroupName"] == GROUP
    assert vms[0].inputs["tags"]["blueprint"] == "package-mirror"
    nics = [r for r in resources if r.type == "azure-native:network:NetworkInterface"]
    assert [nic.inputs["ipConfigurations"][0]["subnet"]["id"] for nic in nics] == [SUBNET_ID]
    assert nics[0].inputs["ipConfigurations"][0]["privateIPAddress"] == outputs["mirror_address"] == "10.60.2.4"


def test_the_example_creates_no_network_group_or_public_address_of_its_own(planned):
    resources, _ = planned
    types = {r.type for r in resources}
    for own in ("azure-native:resources:ResourceGroup", "azure-native:network:VirtualNetwork",
                "azure-native:network:Subnet", "azure-native:network:PublicIPAddress",
                "azure-native:network:NatGateway", "azure-native:network:NetworkSecurityGroup"):
        assert own not in types
    # Every resource goes into the existing group (privatelink zones and links are global, still in it).
    groups = {r.inputs["resourceGroupName"] for r in resources if r.custom and "resourceGroupName" in r.inputs}
    assert groups == {GROUP}


def test_the_example_lets_the_mirror_read_exactly_its_own_secrets(planned):
    resources, _ = planned
    grants = sorted(r.inputs["description"] for r in resources if r.type == "azure-native:authorization:RoleAssignment")
    assert grants == sorted(["read ca-crt", "read mirror-tls-crt", "read mirror-tls-key",
                             "read package-requests-reader", "read package-requests-reader-pub"])
    stored = {r.inputs["secretName"] for r in resources if r.type == "azure-native:keyvault:Secret"}
    assert stored == {g.removeprefix("read ") for g in grants}
    endpoints = [r for r in resources if r.type == "azure-native:network:PrivateEndpoint"]
    assert [e.inputs["subnet"]["id"] for e in endpoints] == [SUBNET_ID]


def test_the_example_without_its_existing_ids_names_the_missing_key():
    with pytest.raises(pulumi.RunError, match="mirror:subnetId"):
        _plan(EXAMPLE / "__main__.py", {k: v for k, v in EXISTING.items() if k != "mirror:subnetId"})


def test_the_example_reports_a_bad_settings_file_without_a_traceback(tmp_path):
    entry = shutil.copy(EXAMPLE / "__main__.py", tmp_path / "__main__.py")
    text = (EXAMPLE / "mirror.yaml").read_text().replace("vm_size: Standard_B2s", "vm_size: Huge")
    (tmp_path / "mirror.yaml").write_text(text)
    with pytest.raises(pulumi.RunError) as raised:
        _plan(Path(entry), EXISTING)
    assert "roles.package_mirror.vm_size" in str(raised.value)
    assert "Traceback" not in str(raised.value)


def test_the_library_page_quotes_the_example_as_it_is():
    page = (REPO / "docs" / "library.md").read_text()
    quoted = re.search(r"```python\n(.*?)```", page, re.S)
    assert quoted is not None
    assert quoted.group(1) == (EXAMPLE / "__main__.py").read_text()


def test_every_data_file_of_the_packages_is_in_the_wheel():
    # The roles read templates and files from their folders at run time; a file that package-data
    # leaves out renders fine from a checkout and fails from a pip install.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["*"]
    packages = project["tool"]["importlinter"]["root_packages"]
    left_out = [
        str(path.relative_to(REPO))
        for package in packages
        for path in (REPO / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".py"
        and not any(fnmatch(path.name, pattern) for pattern in patterns)
    ]
    assert left_out == []
