"""Role layers: each role's Debian packages installed once, cached, and booted from like an image.

An analytics VM's first boot installs about a thousand Debian packages; unpacking and configuring
them is most of its boot, and two analytics machines repeat the same work side by side. The image
path (docs/architecture.md) answers this on Azure with a gallery image built from the role's package
phase; the lab's equivalent is a cached overlay layer per role: the base, plus exactly the packages
the role's rendered cloud-init lists (with the role's own apt settings, e.g. no recommended
packages), installed from Debian's archive with nothing else. A machine boots from base + layer +
its own writable layer; its unchanged cloud-init then finds the packages installed and goes on to
configure them. Nothing of the machine's configuration, no secret and no key is in a layer.

A layer is named by a hash of the base and the package phase, so it is rebuilt when either
changes; `lab up --no-role-layers` boots from the bare base, as a VM from Debian's own image.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from blueprints.package_phase import package_phase
from blueprints.topology import Machine
from lab.host_processes import remove_in_background
from lab.layout import CACHE_ROOT
from lab.progress import Progress

LAYERS_ROOT = CACHE_ROOT / "layers"
# Outdated layers go here and are deleted in the background (lab/host_processes.py).
TRASH = CACHE_ROOT / ".trash"


class LayerBuildError(Exception):
    """Installing a role's packages into its layer failed; the message names the log."""


@dataclass(frozen=True)
class LayerRecipe:
    """Everything that decides a layer's contents."""

    base: str  # the cached base's directory name (its recipe hash)
    role: str
    packages: tuple[str, ...]
    apt_settings: tuple[tuple[str, str], ...]  # (path, content) of the role's apt.conf.d files
    # Bump when the build steps below change.
    revision: int = 1

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def recipe_for(config: dict[str, Any], machine: Machine, base: Path) -> LayerRecipe | None:
    """The package phase of a machine's rendered cloud-init, on ``base``; None when it installs nothing.

    The same package phase the Azure image recipe holds (blueprints/package_phase.py)."""
    phase = package_phase(config, machine)
    if phase is None:
        return None
    return LayerRecipe(base.name, machine.role, phase.packages, phase.apt_settings)


def layer_dir(recipe: LayerRecipe) -> Path:
    return LAYERS_ROOT / f"{recipe.role}-{recipe.digest()}"


def ensure_layers(config: dict[str, Any], machines: list[Machine], base: Path,
                  progress: Progress) -> dict[str, Path]:
    """machine name -> its role's layer, building each missing layer once."""
    layers: dict[str, Path] = {}
    built: dict[LayerRecipe, Path] = {}
    for machine in machines:
        recipe = recipe_for(config, machine, base)
        if recipe is None:
            continue
        if recipe not in built:
            built[recipe] = _ensure(recipe, base, progress)
        layers[machine.name] = built[recipe]
    _remove_stale(keep=set(built.values()), base=base)
    return layers


def _ensure(recipe: LayerRecipe, base: Path, progress: Progress) -> Path:
    target = layer_dir(recipe)
    if (target / ".layer.json").is_file():
        progress.note(f"role layer: cached {target.name} ({len(recipe.packages)} packages)")
        return target
    LAYERS_ROOT.mkdir(parents=True, exist_ok=True)
    building = target.with_name(target.name + ".building")
    log = LAYERS_ROOT / f"{target.name}.log"
    _remove_building(building)
    upper, work, merged = building / "upper", building / "work", building / "merged"
    for path in (upper, work, merged):
        path.mkdir(parents=True)
    with progress.step(f"role layer {recipe.role}: installing {len(recipe.packages)} packages from Debian's "
                       f"archive (log {log})", key=f"layer:{recipe.role}"):
        subprocess.run(["mount", "-t", "overlay", f"lab-layer-{recipe.role}", "-o",
                        f"lowerdir={base},upperdir={upper},workdir={work}", str(merged)],
                       check=True, capture_output=True)
        try:
            for path, content in recipe.apt_settings:
                (merged / path.lstrip("/")).write_text(content)
            script = ("set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update -q; "
                      "apt-get install -y -q --option=Dpkg::Options::=--force-confold "
                      "--option=Dpkg::options::=--force-unsafe-io " + " ".join(recipe.packages) + "; apt-get clean")
            with log.open("w") as output:
                result = subprocess.run(
                    ["systemd-nspawn", "--quiet", f"--directory={merged}", "--register=no", "--keep-unit",
                     "--resolv-conf=replace-host", "--timezone=off", "--link-journal=no",
                     "--setenv=LANG=C.UTF-8", "sh", "-c", script],
                    stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
            if result.returncode != 0:
                raise LayerBuildError(f"installing the {recipe.role} packages failed (exit {result.returncode}); "
                                      f"read {log}")
            # The layer holds the packages only: the role's settings are written by its cloud-init.
        finally:
            subprocess.run(["umount", str(merged)], check=False, capture_output=True)
        # Removed from the layer itself (removing them through the overlay would hide the base's).
        for path in [p for p, _content in recipe.apt_settings] + ["/etc/resolv.conf"]:
            leftover = upper / path.lstrip("/")
            if leftover.exists() or leftover.is_symlink():
                leftover.unlink()
        (upper / ".layer.json").write_text(json.dumps(asdict(recipe), indent=2) + "\n")
        upper.rename(target)
        shutil.rmtree(building, ignore_errors=True)
    return target


def _remove_building(building: Path) -> None:
    if building.exists():
        subprocess.run(["umount", str(building / "merged")], check=False, capture_output=True)
        shutil.rmtree(building)


def _remove_stale(keep: set[Path], base: Path, root: Path | None = None) -> list[Path]:
    """Drop layers no stack can use again: those on another base, and a role's older package phases.

    A role's layer is kept while the stack in use has no machine of that role: `make test` runs labs
    of several stacks in turn (the Bastion stack has no gateway or Git server), and dropping the
    other stacks' layers made each run rebuild them. One layer per role on the current base bounds
    the disk they take. Returns the layers removed."""
    root = root or LAYERS_ROOT
    if not root.is_dir():
        return []
    roles_in_use = {_recipe_of(layer).get("role") for layer in keep}
    removed = []
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and entry not in keep and not entry.name.endswith(".building"):
            recorded = _recipe_of(entry)
            if recorded.get("base") == base.name and recorded.get("role") not in roles_in_use:
                continue  # another stack's role, on this base
            remove_in_background(entry, TRASH)
            removed.append(entry)
        elif entry.suffix == ".log" and not entry.with_suffix("").is_dir():
            entry.unlink(missing_ok=True)
    return removed


def _recipe_of(layer: Path) -> dict[str, Any]:
    """What a built layer records of its recipe (empty for a layer without a readable record)."""
    try:
        return json.loads((layer / ".layer.json").read_text())
    except (OSError, ValueError):
        return {}
