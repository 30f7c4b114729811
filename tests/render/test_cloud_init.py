import copy

import pytest
import yaml

from blueprints import cloud_init
from blueprints.cloud_init import MAX_USER_DATA_BYTES, RenderError, render_user_data
from blueprints.topology import plan_machines


def test_every_machine_renders_parseable_cloud_config(example_config):
    for machine in plan_machines(example_config):
        data = render_user_data(example_config, machine)
        document = yaml.safe_load(data)
        assert document["hostname"] == machine.name
        assert document["ssh_pwauth"] is False
        assert len(data) <= MAX_USER_DATA_BYTES


def test_non_mirror_machines_install_through_the_mirror(example_config):
    for machine in plan_machines(example_config):
        document = yaml.safe_load(render_user_data(example_config, machine))
        if machine.role == "package_mirror":
            assert "apt" not in document or "proxy" not in document["apt"]
        else:
            assert document["apt"]["proxy"] == "http://mirror.exnhs-dev.internal:3142"


def test_rendering_is_deterministic(example_config):
    machine = plan_machines(example_config)[0]
    assert render_user_data(example_config, machine) == render_user_data(example_config, machine)


def test_a_missing_template_value_is_an_error_not_a_blank(example_config, monkeypatch):
    config = copy.deepcopy(example_config)
    machine = plan_machines(config)[0]
    original = cloud_init.template_context

    def without_admin(config, machine):
        context = original(config, machine)
        del context["admin"]
        return context

    monkeypatch.setattr(cloud_init, "template_context", without_admin)
    with pytest.raises(RenderError, match="admin"):
        render_user_data(config, machine)
