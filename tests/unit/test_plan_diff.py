"""`blueprints plan --diff`: the diff engine on small plans, then every day-two edit of the example."""

from __future__ import annotations

import base64
import copy
import json

import pytest
import yaml

from cli.main import main
from reports import change_matrix
from tests.conftest import EXAMPLE, planned
from validation.plan_diff import (
    CREATE,
    DELETE,
    EXIT_DESTRUCTIVE,
    REPLACE,
    UPDATE,
    PlanDiff,
    diff_plans,
    flatten,
    render_diff,
    resource_key,
)
from validation.plan_model import Plan, PlannedResource
from validation.stack_edits import DESTRUCTIVE_EDITS, ORDINARY_EDITS, by_name

VM = "azure-native:compute:VirtualMachine"


def _vm(name: str = "git", size: str = "Standard_B2s", custom_data: str = "Ym9vdA==", user_data: bytes | None = None,
        stack: str = "a") -> PlannedResource:
    inputs = {
        "vmName": f"vm-{name}", "resourceGroupName": "rg", "location": "uksouth",
        "hardwareProfile": {"vmSize": size},
        "osProfile": {"computerName": name, "customData": custom_data, "adminUsername": "trustadmin"},
        "networkProfile": {"networkInterfaces": [{"id": f"/x/networkInterfaces/nic-{name}", "deleteOption": "Delete"}]},
        "storageProfile": {
            "imageReference": {"offer": "debian-13"},
            "osDisk": {"name": f"disk-{name}-os", "deleteOption": "Delete"},
            "dataDisks": [{"name": f"disk-{name}-data", "diskSizeGB": 64, "deleteOption": "Detach"}],
        },
    }
    if user_data is not None:
        inputs["userData"] = base64.b64encode(user_data).decode()
    return PlannedResource(urn=f"urn:pulumi:{stack}::p::mod$azure-native:compute:VirtualMachine::{name}-vm",
                           type=VM, name=f"{name}-vm", azure_name=f"vm-{name}", custom=True, parent=None,
                           dependencies=[], inputs=inputs)


def _plan(*resources: PlannedResource, stack: str = "a") -> Plan:
    return Plan(stack=stack, source=f"{stack}.yaml", config={}, resources=list(resources))


def _other(type_token: str, name: str, stack: str = "a", **inputs) -> PlannedResource:
    return PlannedResource(urn=f"urn:pulumi:{stack}::p::{type_token}::{name}", type=type_token, name=name,
                           azure_name=name, custom=True, parent=None, dependencies=[], inputs=dict(inputs))


def test_flatten_names_every_leaf_by_path() -> None:
    assert flatten({"a": {"b": [1, {"c": 2}]}, "d": {}}) == {"a.b[0]": 1, "a.b[1].c": 2, "d": {}}


def test_resources_match_across_stack_names() -> None:
    assert resource_key(_vm(stack="one").urn) == resource_key(_vm(stack="two").urn)
    diff = diff_plans(_plan(_vm(stack="one"), stack="one"), _plan(_vm(stack="two"), stack="two"))
    assert diff.changes == [] and diff.unchanged == 1


def test_a_custom_data_change_replaces_the_vm_and_says_what_survives() -> None:
    diff = diff_plans(_plan(_vm()), _plan(_vm(custom_data="bmV3")))
    [change] = diff.changes
    assert change.action == REPLACE and change.destructive
    assert [f.path for f in change.forced_by] == ["osProfile.customData"]
    assert all(url.startswith("https://") for url in change.forced_by[0].sources)
    assert any("disk-git-data" in item and "kept" in item for item in change.survives)
    assert any("disk-git-os" in item for item in change.lost)
    assert any("nic-git" in item for item in change.lost)


def test_a_data_disk_attached_by_id_is_named_in_what_survives() -> None:
    old = _vm()
    old.inputs["storageProfile"]["dataDisks"] = [
        {"createOption": "Attach", "deleteOption": "Detach", "managedDisk": {"id": "/x/disks/disk-git-data"}}]
    new = copy.deepcopy(old)
    new.inputs["osProfile"]["customData"] = "bmV3"
    [change] = diff_plans(_plan(old), _plan(new)).changes
    assert change.survives == ["data disk disk-git-data: kept by Azure (deleteOption Detach)"]


def test_a_user_data_change_updates_in_place_and_lists_the_settings() -> None:
    settings = {"git": {"users": ["a"], "backup": "01:30"}, "admin": {"keys": ["k"]}}
    old = _vm(user_data=json.dumps(settings).encode())
    settings["git"]["users"].append("b")
    new = _vm(user_data=json.dumps(settings).encode())
    diff = diff_plans(_plan(old), _plan(new))
    [change] = diff.changes
    assert change.action == UPDATE and not change.destructive
    assert change.settings == ["git.users"]
    assert change.changed == ["userData"]


def test_a_settings_document_names_each_file_written_and_the_programs_it_feeds() -> None:
    def document(users: str) -> bytes:
        return json.dumps({"format": 1, "files": [
            {"path": "/etc/git-server/users.yaml", "content": users, "hooks": ["git-server-apply"]},
            {"path": "/etc/motd", "content": "hello", "hooks": []},
        ]}).encode()

    old, new = _vm(user_data=document("a")), _vm(user_data=document("a\nb"))
    [change] = diff_plans(_plan(old), _plan(new)).changes
    assert change.settings == ["writes /etc/git-server/users.yaml, then runs git-server-apply"]
    # A VM that had no user data before receives every file.
    [first] = diff_plans(_plan(_vm()), _plan(new)).changes
    assert len(first.settings) == 2 and first.action == UPDATE


def test_a_resize_replaces_only_across_the_temporary_disk_line() -> None:
    within = diff_plans(_plan(_vm(size="Standard_D2s_v5")), _plan(_vm(size="Standard_D4s_v5")))
    assert [c.action for c in within.changes] == [UPDATE]
    across = diff_plans(_plan(_vm(size="Standard_B2s")), _plan(_vm(size="Standard_D2s_v5")))
    assert [c.action for c in across.changes] == [REPLACE]
    assert across.changes[0].forced_by[0].path == "hardwareProfile.vmSize"
    unknown = diff_plans(_plan(_vm(size="Standard_B2s")), _plan(_vm(size="Standard_Q9")))
    assert "unknown" in unknown.changes[0].forced_by[0].reason


def test_create_delete_and_what_counts_as_destructive() -> None:
    nsg = "azure-native:network:NetworkSecurityGroup"
    base = _plan(_vm("git"), _other(nsg, "nsg-1", rules=[1]), _other("tls:index/privateKey:PrivateKey", "k", bits=1))
    target = _plan(_vm("mirror"), _other(nsg, "nsg-1", rules=[1, 2]),
                   _other("tls:index/privateKey:PrivateKey", "k", bits=2))
    diff = diff_plans(base, target)
    actions = {(c.action, c.azure_name) for c in diff.changes}
    assert actions == {(CREATE, "vm-mirror"), (DELETE, "vm-git"), (UPDATE, "nsg-1"), (REPLACE, "k")}
    assert [c.azure_name for c in diff.destructive] == ["vm-git"]
    text = render_diff(diff)
    assert "DESTRUCTIVE" in text and "vm-git" in text


def test_a_renamed_resource_is_replaced() -> None:
    old = _other("azure-native:network:NetworkSecurityGroup", "nsg")
    new = copy.deepcopy(old)
    new.azure_name = "nsg-renamed"
    [change] = diff_plans(_plan(old), _plan(new)).changes
    assert change.action == REPLACE and change.forced_by[0].path == "name" and not change.destructive


# The example and each edit of it, planned offline once for these tests and the change matrix.

@pytest.fixture(scope="module")
def base_plan() -> Plan:
    return planned(EXAMPLE)


@pytest.fixture(scope="module")
def edit_diffs(base_plan) -> dict[str, PlanDiff]:
    # Each plan once for the run (planned()): the edited files are the ones `blueprints docs` plans
    # for the matrix, so the docs tests read these plans from the run's plan cache, and back.
    return {edit.name: diff for edit, diff in change_matrix.diffs(planned, EXAMPLE)}


@pytest.mark.parametrize("edit", ORDINARY_EDITS, ids=lambda edit: edit.name)
def test_each_ordinary_edit_is_applied_in_place(edit, edit_diffs, base_plan) -> None:
    # Every VM takes its changeable settings from user data, which Azure updates in place.
    assert all("userData" in vm.inputs for vm in base_plan.of_type(VM))
    diff = edit_diffs[edit.name]
    assert diff.changes, "the edit changes the plan"
    assert not diff.by_action(DELETE)
    assert diff.by_action(REPLACE) == [], render_diff(diff)
    assert not diff.destructive


def test_the_size_family_change_replaces_the_git_server_and_keeps_its_data_disk(edit_diffs) -> None:
    diff = edit_diffs["size-family-change"]
    [vm] = [change for change in diff.destructive if change.type == VM]
    assert vm.azure_name.endswith("-git") and vm.action == REPLACE
    assert "hardwareProfile.vmSize" in {forcing.path for forcing in vm.forced_by}
    assert any("/srv/git" in item for item in vm.survives)


def test_the_image_change_replaces_every_vm(edit_diffs) -> None:
    diff = edit_diffs["image-change"]
    vms = [change for change in diff.changes if change.type == VM]
    assert len(vms) == len(diff.destructive) == 5
    assert all(change.action == REPLACE for change in vms)
    assert all("storageProfile.imageReference" in {f.path for f in change.forced_by} for change in vms)


def test_the_change_matrix_in_the_administrators_guide_is_current(edit_diffs) -> None:
    page = EXAMPLE.parent.parent / "docs" / change_matrix.PAGE_NAME
    text = page.read_text()
    results = [(edit, edit_diffs[edit.name]) for edit in ORDINARY_EDITS + DESTRUCTIVE_EDITS]
    fresh = change_matrix.replace_section(text, change_matrix.render_matrix(results))
    assert fresh == text, "the change matrix is out of date: run `blueprints docs` and commit docs/administrators.md"


def test_the_matrix_shows_a_replacement_in_bold_with_its_property(edit_diffs) -> None:
    cell = change_matrix.preview_text(edit_diffs["size-family-change"])
    assert "**replaces VM git**" in cell and "hardwareProfile.vmSize" in cell


# The command line.

@pytest.fixture(scope="module")
def example_document() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def test_the_command_exits_3_on_a_destructive_edit_and_0_on_none(example_document, tmp_path, plan_cache,
                                                                  capsys) -> None:
    edited = tmp_path / "size" / "example.yaml"
    edited.parent.mkdir()
    edited.write_text(yaml.safe_dump(by_name("size-family-change").apply(example_document), sort_keys=False))
    assert main(["plan", "--diff", str(EXAMPLE), str(edited)]) == EXIT_DESTRUCTIVE
    out = capsys.readouterr().out
    assert "forced by hardwareProfile.vmSize" in out and "DESTRUCTIVE" in out
    saved = tmp_path / "base.json"
    assert main(["plan", "--json", "-o", str(saved), str(EXAMPLE)]) == 0
    assert main(["plan", "--diff", str(saved), "--format", "json", str(EXAMPLE)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["changes"] == [] and report["destructive"] is False


@pytest.mark.parametrize("argv, named", [
    (["plan", "--diff", "no-such-base.yaml"], "--diff BASE 'no-such-base.yaml'"),
    (["plan", "--diff", str(EXAMPLE.parent.parent / "README.md")], "must be a stack file"),
    (["plan", "--diff", str(EXAMPLE), "no-such-stack.yaml"], "STACK_FILE 'no-such-stack.yaml'"),
    (["plan", "--diff", str(EXAMPLE), "--format", "arm"], "--format arm"),
])
def test_bad_arguments_exit_2_naming_the_argument(argv, named, capsys) -> None:
    assert main(argv) == 2
    assert named in capsys.readouterr().err


def test_a_base_that_is_not_a_saved_plan_exits_2(tmp_path, capsys) -> None:
    broken = tmp_path / "base.json"
    broken.write_text('{"resources": 3}')
    assert main(["plan", "--diff", str(broken), str(EXAMPLE)]) == 2
    assert "is not a plan saved by `blueprints plan --json`" in capsys.readouterr().err
