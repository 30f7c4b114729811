"""The cached base is named by its recipe: a changed recipe means a new base, the same recipe reuses it."""

from __future__ import annotations

import dataclasses

from lab.base_image import RECIPE, base_dir

AZURE_IMAGE_ESSENTIALS = {"systemd", "cloud-init", "openssh-server", "python3", "netplan.io", "ca-certificates"}
ROLE_SOFTWARE = {"apt-cacher-ng", "nginx", "apache2", "gitolite3", "r-base", "jupyterhub", "devpi-server"}


def test_same_recipe_same_base():
    assert base_dir(RECIPE) == base_dir(dataclasses.replace(RECIPE))


def test_changed_recipe_new_base():
    changed = dataclasses.replace(RECIPE, packages=(*RECIPE.packages, "vim-tiny"))
    assert base_dir(changed) != base_dir(RECIPE)
    assert base_dir(dataclasses.replace(RECIPE, revision=RECIPE.revision + 1)) != base_dir(RECIPE)


def test_base_is_debian_13_like_the_azure_image_without_role_software():
    assert RECIPE.suite == "trixie"
    assert set(RECIPE.packages) >= AZURE_IMAGE_ESSENTIALS
    assert not ROLE_SOFTWARE & set(RECIPE.packages)
