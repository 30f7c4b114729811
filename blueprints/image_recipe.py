"""How to build a role's prebuilt image: its cloud-init's package phase as a script, and the steps that
turn a VM that ran it into an Azure Compute Gallery image version.

The script installs exactly the packages the role's rendered cloud-init lists, with the apt
settings it writes (blueprints/package_phase.py, which the lab's cached role layers read too), on
a VM started from Debian's own Debian 13 image. A VM booted from the captured image runs its
unchanged cloud-init: the package step finds everything installed, and the rest (configuration,
secrets, settings) happens at first boot as before. The image holds packages only: no setting of
the environment, no key, no secret.

`blueprints image-recipe STACK` prints the script; `--az-steps` prints the Azure CLI steps. The
image records the package phase's digest (``/etc/trust-blueprints/image-package-phase`` and the
image version's tag), and the recipe is rebuilt whenever that digest changes.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from blueprints.package_phase import PackagePhase, package_phase
from blueprints.topology import plan_machines
from modules.naming import Naming

__all__ = ["IMAGE_MARKER", "PACKAGE_PHASE_TAG", "ImageRecipe", "ImageRecipeError", "az_steps", "image_recipe",
           "install_script"]

# On the image: the digest of the package phase it was built from.
IMAGE_MARKER = "/etc/trust-blueprints/image-package-phase"
# On the gallery image version: the same digest, so a person can match a version to a stack.
PACKAGE_PHASE_TAG = "trust-blueprints-package-phase"
MARKETPLACE_IMAGE = "Debian:debian-13:13-gen2:latest"


class ImageRecipeError(Exception):
    """The stack has no machine of the role, or the role has no package phase."""


@dataclass(frozen=True)
class ImageRecipe:
    stack_role: str
    trust: str
    environment: str
    location: str
    phase: PackagePhase


def image_recipe(config: dict[str, Any], role_name: str = "analytics") -> ImageRecipe:
    machines = [m for m in plan_machines(config) if m.role == role_name]
    if not machines:
        raise ImageRecipeError(f"the stack has no {role_name} machine (roles.{role_name} is not set)")
    phases = {package_phase(config, machine) for machine in machines}
    if len(phases) != 1:  # one image serves every machine of the role only if they install the same
        raise ImageRecipeError(f"the {role_name} machines install different packages; one image cannot serve them")
    phase = phases.pop()
    if phase is None:
        raise ImageRecipeError(f"the {role_name} role's cloud-init installs no packages; an image would save nothing")
    return ImageRecipe(role_name, config["trust"]["short_name"], config["environment"], config["location"], phase)


def install_script(recipe: ImageRecipe) -> str:
    """A POSIX shell script, run as root on a VM from Debian 13's Marketplace image."""
    phase = recipe.phase
    lines = [
        "#!/bin/sh",
        f"# The package phase of the {recipe.stack_role} role's cloud-init (package phase {phase.digest()}, "
        f"{len(phase.packages)} packages),",
        f"# for a Trusted Launch VM from {MARKETPLACE_IMAGE}. Written by `blueprints image-recipe`; build a",
        "# new image whenever the package phase's digest changes.",
        "set -eu",
        "export DEBIAN_FRONTEND=noninteractive",
        "# The role's apt settings while installing (its cloud-init writes them again at first boot).",
    ]
    for path, content in phase.apt_settings:
        lines.append(f"printf '%s' {shlex.quote(content)} > {shlex.quote(path)}")
    lines += [
        "apt-get update -q",
        "# Every update Debian has published by the build day (Debian's Marketplace image may be older);",
        "# after that, unattended-upgrades on each VM keeps it patched.",
        "apt-get upgrade -y -q --option=Dpkg::Options::=--force-confold",
        "apt-get install -y -q --option=Dpkg::Options::=--force-confold \\",
        *(f"  {shlex.quote(package)} \\" for package in phase.packages[:-1]),
        f"  {shlex.quote(phase.packages[-1])}",
        "apt-get clean",
        "# Packages only, as the lab's role layer: the settings are the VM's own cloud-init's to write.",
        *(f"rm -f {shlex.quote(path)}" for path, _content in phase.apt_settings),
        f"mkdir -p {shlex.quote(IMAGE_MARKER.rsplit('/', 1)[0])}",
        f"echo {phase.digest()} > {IMAGE_MARKER}",
        "# Generalise: the VM made from the image provisions itself with cloud-init, as from Debian's image.",
        "cloud-init clean --logs --machine-id --seed",
        "rm -f /etc/ssh/ssh_host_*",
    ]
    return "\n".join(lines) + "\n"


def az_steps(recipe: ImageRecipe, script_file: str = "analytics-packages.sh") -> str:
    """The Azure CLI steps from the script to a gallery image version (placeholders in <>)."""
    naming = Naming(recipe.trust, recipe.environment, recipe.location)
    group = naming.name("rg", "images")
    gallery = f"gal_{re.sub(r'[^A-Za-z0-9]', '_', recipe.trust)}_images"  # galleries allow no hyphen
    definition = f"trust-blueprints-{recipe.stack_role.replace('_', '-')}"
    builder = naming.name("vm", "image-build")
    digest = recipe.phase.digest()
    steps = [
        f"# Build an image of the {recipe.stack_role} role's package phase {digest}: once per change of that digest.",
        "# 1. Once: a resource group, a gallery and a Trusted Launch, generation 2 image definition.",
        f"az group create --name {group} --location {recipe.location}",
        f"az sig create --resource-group {group} --gallery-name {gallery}",
        f"az sig image-definition create --resource-group {group} --gallery-name {gallery} "
        f"--gallery-image-definition {definition} --publisher {recipe.trust} --offer trust-blueprints "
        f"--sku {recipe.stack_role.replace('_', '-')}-debian-13 --os-type Linux --os-state Generalized "
        "--hyper-v-generation V2 --features SecurityType=TrustedLaunchSupported",
        "# 2. A build VM from Debian's image, outside the environment: it needs Debian's archive, and the",
        "#    environment's analytics subnet has no way out. No inbound rule; the script runs through the agent.",
        f"az vm create --resource-group {group} --name {builder} --image {MARKETPLACE_IMAGE} "
        "--size Standard_D4s_v5 --security-type TrustedLaunch --enable-secure-boot true --enable-vtpm true "
        "--admin-username builder --generate-ssh-keys --nsg-rule NONE",
        f"az vm run-command invoke --resource-group {group} --name {builder} --command-id RunShellScript "
        f"--scripts @{script_file}",
        "# 3. Capture it as a version named by the date, tagged with the package phase, then remove the build VM.",
        f"az vm deallocate --resource-group {group} --name {builder}",
        f"az vm generalize --resource-group {group} --name {builder}",
        f"az sig image-version create --resource-group {group} --gallery-name {gallery} "
        f"--gallery-image-definition {definition} --gallery-image-version <YYYY.MMDD.N> "
        f"--virtual-machine $(az vm show --resource-group {group} --name {builder} --query id --output tsv) "
        f"--tags {PACKAGE_PHASE_TAG}={digest}",
        f"az vm delete --resource-group {group} --name {builder} --yes",
        "# 4. Point the stack at it (roles.analytics.image.gallery_image_version_id), preview, deploy:",
        f"az sig image-version show --resource-group {group} --gallery-name {gallery} "
        f"--gallery-image-definition {definition} --gallery-image-version <YYYY.MMDD.N> --query id --output tsv",
    ]
    return "\n".join(steps) + "\n"
