"""The table of properties Azure will not change in place, and the VM's use of it."""

from __future__ import annotations

import datetime

import pytest
import yaml

from modules.immutable_properties import TABLE_FILE, TableError, immutable_table, parse_table
from modules.linux_vm import VM_TYPE, LinuxVm
from tests.unit.test_linux_vm import _args
from validation import plan_recorder


def test_every_entry_names_a_source_page_with_what_it_says() -> None:
    table = immutable_table()
    assert isinstance(table.checked, datetime.date)
    cited = {page.key for prop in table.every_resource for page in prop.sources}
    for rules in table.types.values():
        cited |= {page.key for prop in rules.replace for page in prop.sources}
        if rules.resize:
            cited |= {page.key for page in rules.resize.sources}
            cited |= {page.key for _, pages in rules.resize.local_temp_disk.values() for page in pages}
    assert cited == set(table.sources), "every source is cited and every citation has a source"


def test_custom_data_ssh_keys_and_the_image_replace_a_vm() -> None:
    paths = {prop.path for prop in immutable_table().rules(VM_TYPE).replace}
    assert {"osProfile.customData", "osProfile.linuxConfiguration.ssh.publicKeys",
            "storageProfile.imageReference"} <= paths
    # User data is the property Azure does update in place: it must never be in the table.
    assert not any(path.startswith("userData") for path in paths)


def test_a_resize_replaces_only_across_the_temporary_disk_line() -> None:
    resize = immutable_table().rules(VM_TYPE).resize
    assert resize.forces_replacement("Standard_B2s", "Standard_D2s_v5") is True
    assert resize.forces_replacement("Standard_D2s_v5", "Standard_D4s_v5") is False
    assert resize.forces_replacement("Standard_B2s", "Standard_B2ms") is False
    assert resize.forces_replacement("Standard_B2s", "Standard_Z9") is None


def test_every_size_the_regions_offer_is_on_one_side_of_the_line() -> None:
    regions = yaml.safe_load((TABLE_FILE.parent.parent / "blueprints" / "regions.yaml").read_text())
    offered = {size for region in regions["regions"].values() for size in region["vm_sizes"]}
    assert offered <= set(immutable_table().rules(VM_TYPE).resize.local_temp_disk)


@pytest.mark.parametrize("broken, named", [
    ({"sources": {"a": {"url": "http://x", "says": "y"}}}, "source a"),
    ({"sources": {}, "every_resource": [{"path": "location", "sources": ["nowhere"]}]}, "nowhere"),
    ({"sources": {}, "every_resource": [{"path": "location"}]}, "every_resource.location"),
])
def test_a_malformed_table_is_refused_naming_the_entry(broken, named) -> None:
    with pytest.raises(TableError, match=named):
        parse_table({"checked": datetime.date(2026, 1, 1), **broken})


def test_the_vm_asks_pulumi_to_replace_on_the_table_s_properties(placement, monkeypatch) -> None:
    seen = {}
    register = plan_recorder._RecordingMonitor.RegisterResource

    def spy(self, request):
        if request.type == VM_TYPE:
            seen["replace"] = list(request.replaceOnChanges)
            seen["delete_first"] = request.deleteBeforeReplace
        return register(self, request)

    monkeypatch.setattr(plan_recorder._RecordingMonitor, "RegisterResource", spy)
    plan_recorder.record_program(lambda: LinuxVm("box", _args(placement)), "unit")
    assert seen["replace"] == [prop.path for prop in immutable_table().rules(VM_TYPE).replace]
    assert seen["delete_first"] is True
