"""Role layers hold exactly each role's package phase, and are named by it."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import yaml

from blueprints.cloud_init import render_user_data
from blueprints.topology import plan_machines
from lab import role_layers

BASE = Path("/var/cache/trust-blueprints/lab/base-trixie-000000000000")


def test_a_layer_holds_the_packages_and_apt_settings_of_the_rendered_cloud_init(example_config):
    for machine in plan_machines(example_config):
        document = yaml.safe_load(render_user_data(example_config, machine))
        recipe = role_layers.recipe_for(example_config, machine, BASE)
        assert recipe is not None and recipe.role == machine.role
        assert set(recipe.packages) == {str(p) for p in document["packages"]}
        for path, _content in recipe.apt_settings:
            assert path.startswith("/etc/apt/apt.conf.d/")
    analytics = next(m for m in plan_machines(example_config) if m.role == "analytics")
    settings = dict(role_layers.recipe_for(example_config, analytics, BASE).apt_settings)
    assert any("Install-Recommends" in content for content in settings.values())


def test_machines_of_one_role_share_a_layer_and_a_new_package_or_base_names_another(example_config):
    first, second = [m for m in plan_machines(example_config) if m.role == "analytics"][:2]
    recipe = role_layers.recipe_for(example_config, first, BASE)
    assert recipe == role_layers.recipe_for(example_config, second, BASE)
    other_base = role_layers.recipe_for(example_config, first, BASE.with_name("base-trixie-111111111111"))
    assert other_base.digest() != recipe.digest()
    changed = copy.deepcopy(recipe.__dict__)
    changed["packages"] = (*recipe.packages, "htop")
    assert role_layers.LayerRecipe(**changed).digest() != recipe.digest()


def _built(root: Path, name: str, role: str, base: str) -> Path:
    layer = root / name
    layer.mkdir()
    (layer / ".layer.json").write_text(json.dumps({"role": role, "base": base}))
    (root / f"{name}.log").write_text("installed\n")
    return layer


def test_a_lab_of_another_stack_keeps_the_layers_of_roles_it_does_not_have(tmp_path, monkeypatch):
    removed: list[Path] = []
    monkeypatch.setattr(role_layers, "remove_in_background", lambda path, trash: (removed.append(path),
                                                                                  shutil.rmtree(path)))
    base = BASE.name
    analytics = _built(tmp_path, "analytics-aaaaaaaaaaaa", "analytics", base)
    gateway = _built(tmp_path, "gateway-bbbbbbbbbbbb", "gateway", base)
    older_analytics = _built(tmp_path, "analytics-cccccccccccc", "analytics", base)
    other_base = _built(tmp_path, "git_server-dddddddddddd", "git_server", "base-trixie-111111111111")
    unreadable = tmp_path / "package_mirror-eeeeeeeeeeee"
    unreadable.mkdir()
    # A stack with analytics VMs and no gateway (the Bastion stack) boots from the first layer.
    assert role_layers._remove_stale({analytics}, BASE, tmp_path) == [older_analytics, other_base, unreadable]
    assert removed == [older_analytics, other_base, unreadable]
    assert analytics.is_dir() and gateway.is_dir()
    assert sorted(p.name for p in tmp_path.glob("*.log")) == ["analytics-aaaaaaaaaaaa.log", "gateway-bbbbbbbbbbbb.log"]
