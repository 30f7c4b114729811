"""The analytics VMs' optional prebuilt image: the stack setting, the plan, what a change of image does,
and the recipe that builds the image from the same package phase as the lab's role layer."""

from __future__ import annotations

import copy
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from blueprints.analytics.image import gallery_image_version_id
from blueprints.cloud_init import render_user_data
from blueprints.image_recipe import (
    IMAGE_MARKER,
    PACKAGE_PHASE_TAG,
    ImageRecipeError,
    az_steps,
    image_recipe,
    install_script,
)
from blueprints.package_phase import package_phase
from blueprints.topology import plan_machines
from cli.main import main
from lab import role_layers
from modules.linux_vm import DEBIAN_13_IMAGE
from tests.conftest import EXAMPLE
from validation.plan_diff import REPLACE, diff_plans
from validation.plan_recorder import Plan, record_plan
from validation.stack_config import validate_document

VM = "azure-native:compute:VirtualMachine"
IMAGE = ("/subscriptions/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/resourceGroups/rg-exnhs-images/providers/"
         "Microsoft.Compute/galleries/gal_exnhs_images/images/trust-blueprints-analytics/versions/2026.1202.0")
FIELD = "roles.analytics.image.gallery_image_version_id"
ANALYTICS_VMS = ["vm-exnhs-dev-uks-analytics-1", "vm-exnhs-dev-uks-analytics-2"]


def _document() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def _with_image(image_id: str) -> dict:
    document = _document()
    document["roles"]["analytics"]["image"] = {"gallery_image_version_id": image_id}
    return document


def _plan(tmp_path: Path, document: dict, folder: str) -> Plan:
    stack = tmp_path / folder / "example.yaml"  # the example's own stack name, so the URNs match
    stack.parent.mkdir()
    stack.write_text(yaml.safe_dump(document, sort_keys=False))
    return record_plan(stack)


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> dict[str, Plan]:
    """The example, and the example with the image: both from one reading of the stack file."""
    document = _document()
    with_image = copy.deepcopy(document)
    with_image["roles"]["analytics"]["image"] = {"gallery_image_version_id": IMAGE}
    folder = tmp_path_factory.mktemp("plans")
    return {"base": _plan(folder, document, "base"), "image": _plan(folder, with_image, "image")}


@pytest.fixture(scope="module")
def image_plan(plans) -> Plan:
    return plans["image"]


def _vms(plan: Plan) -> dict[str, dict]:
    return {vm.inputs["osProfile"]["computerName"]: vm.inputs for vm in plan.of_type(VM)}


# --- The stack setting -------------------------------------------------------------------------

def test_a_gallery_image_version_id_is_accepted():
    config, problems = validate_document(_with_image(IMAGE))
    assert problems == []
    assert gallery_image_version_id(config) == IMAGE


def test_without_the_setting_the_vms_use_debians_marketplace_image(example_config):
    assert gallery_image_version_id(example_config) is None


@pytest.mark.parametrize("bad", [
    IMAGE.rsplit("/versions/", 1)[0],  # a definition alone would follow whatever is published last
    IMAGE.replace("/versions/2026.1202.0", "/versions/latest"),
    IMAGE.replace("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "my-subscription"),
    IMAGE.replace("Microsoft.Compute/galleries", "Microsoft.Compute/images"),
    IMAGE.replace("gal_exnhs_images", "gal-exnhs-images"),  # galleries allow no hyphen
    "Debian:debian-13:13-gen2:latest",
    IMAGE + "\n",
])
def test_a_bad_image_id_names_the_field_the_value_and_what_is_allowed(bad):
    _config, problems = validate_document(_with_image(bad))
    assert [(p.path, p.value) for p in problems] == [(FIELD, bad)]
    assert "Azure Compute Gallery image version id" in problems[0].allowed


def test_an_image_without_its_id_is_refused():
    document = _document()
    document["roles"]["analytics"]["image"] = {}
    _config, problems = validate_document(document)
    assert [p.path for p in problems] == [FIELD]


def test_the_command_line_refuses_a_bad_image_id_with_exit_2(tmp_path, capsys):
    stack = tmp_path / "example.yaml"
    stack.write_text(yaml.safe_dump(_with_image("not-an-id"), sort_keys=False))
    assert main(["validate", str(stack)]) == 2
    err = capsys.readouterr().err
    assert FIELD in err and "'not-an-id'" in err and "Traceback" not in err


# --- The plan ------------------------------------------------------------------------------------

def test_the_analytics_vms_boot_from_the_gallery_image_and_the_others_from_debians(image_plan):
    vms = _vms(image_plan)
    analytics = {m.name for m in plan_machines(image_plan.config) if m.role == "analytics"}
    assert analytics and analytics < set(vms)
    for name, inputs in vms.items():
        expected = {"id": IMAGE} if name in analytics else DEBIAN_13_IMAGE
        assert inputs["storageProfile"]["imageReference"] == expected, name
        # The image changes nothing else of what Azure is asked for: Trusted Launch stays.
        assert inputs["securityProfile"]["securityType"] == "TrustedLaunch"


def test_the_custom_data_and_user_data_are_byte_identical_with_the_image(plans, image_plan):
    base = _vms(plans["base"])
    for name, inputs in _vms(image_plan).items():
        assert inputs["osProfile"]["customData"] == base[name]["osProfile"]["customData"], name
        assert inputs.get("userData") == base[name].get("userData"), name


def test_choosing_an_image_replaces_the_analytics_vms_and_keeps_their_data_disks(plans, image_plan):
    diff = diff_plans(plans["base"], image_plan)
    vms = [change for change in diff.changes if change.type == VM]
    assert sorted(change.azure_name for change in vms) == ANALYTICS_VMS
    for change in vms:
        assert change.action == REPLACE
        assert "storageProfile.imageReference" in {forcing.path for forcing in change.forced_by}
        assert any("/home" in item for item in change.survives), change.survives


def test_a_new_image_version_replaces_the_analytics_vms(image_plan, tmp_path):
    newer_document = _document()
    newer_document["roles"]["analytics"]["image"] = {"gallery_image_version_id": IMAGE.replace("2026.1202.0",
                                                                                               "2027.0105.0")}
    newer = _plan(tmp_path, newer_document, "newer")
    replaced = sorted(change.azure_name for change in diff_plans(image_plan, newer).changes
                      if change.type == VM and change.action == REPLACE)
    assert replaced == ANALYTICS_VMS


# --- The recipe: the same package phase as the lab's role layer ----------------------------------

def _analytics(config):
    return next(m for m in plan_machines(config) if m.role == "analytics")


def test_the_recipe_holds_exactly_the_package_phase_the_lab_layer_installs(example_config):
    recipe = image_recipe(example_config)
    machine = _analytics(example_config)
    layer = role_layers.recipe_for(example_config, machine, Path("/var/cache/base-trixie-000000000000"))
    assert recipe.phase == package_phase(example_config, machine)
    assert (recipe.phase.packages, recipe.phase.apt_settings) == (layer.packages, layer.apt_settings)
    # The rendered cloud-init's own list, not a copy of it.
    document = yaml.safe_load(render_user_data(example_config, machine))
    assert set(recipe.phase.packages) == set(document["packages"])


def test_the_script_installs_each_package_with_the_roles_apt_settings_and_is_valid_shell(example_config, tmp_path):
    recipe = image_recipe(example_config)
    script = install_script(recipe)
    command = script[script.index("apt-get install"):script.index("apt-get clean")].replace("\\\n", " ")
    assert shlex.split(command)[5:] == list(recipe.phase.packages)
    assert 'APT::Install-Recommends "false"' in script
    for path, _content in recipe.phase.apt_settings:
        assert f"> {path}" in script and f"rm -f {path}" in script
    assert f"echo {recipe.phase.digest()} > {IMAGE_MARKER}" in script
    (tmp_path / "recipe.sh").write_text(script)
    assert subprocess.run(["sh", "-n", str(tmp_path / "recipe.sh")], check=False).returncode == 0


def test_the_az_steps_make_a_trusted_launch_image_tagged_with_the_package_phase(example_config):
    recipe = image_recipe(example_config)
    steps = az_steps(recipe)
    assert "--features SecurityType=TrustedLaunchSupported" in steps and "--hyper-v-generation V2" in steps
    assert f"--tags {PACKAGE_PHASE_TAG}={recipe.phase.digest()}" in steps
    assert "--scripts @analytics-packages.sh" in steps and "--nsg-rule NONE" in steps


def test_a_stack_without_analytics_has_no_recipe(example_config):
    config = copy.deepcopy(example_config)
    del config["roles"]["analytics"]
    with pytest.raises(ImageRecipeError, match="no analytics machine"):
        image_recipe(config)


def test_the_command_prints_the_script_and_the_steps(capsys):
    assert main(["image-recipe", str(EXAMPLE)]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("#!/bin/sh\n") and "package phase" in out.err
    assert main(["image-recipe", str(EXAMPLE), "--az-steps"]) == 0
    assert "az sig image-version create" in capsys.readouterr().out


def test_the_command_refuses_a_stack_without_analytics_with_exit_2(tmp_path, capsys):
    document = _document()
    del document["roles"]["analytics"]
    del document["airlock"]  # its readers are analytics VMs
    stack = tmp_path / "no-analytics.yaml"
    stack.write_text(yaml.safe_dump(document, sort_keys=False))
    assert main(["image-recipe", str(stack)]) == 2
    err = capsys.readouterr().err
    assert "--role analytics: the stack has no analytics machine" in err and "Traceback" not in err
