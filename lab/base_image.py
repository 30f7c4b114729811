"""The Debian 13 base every lab machine boots from: built once, cached, rebuilt when its recipe changes.

The base stays close to Debian's own Azure image: the base system, cloud-init, sshd, python3
and what networking needs. Role software never goes here; it comes from each role's cloud-init,
exactly as on Azure. Each machine gets its own overlay over this read-only tree.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.host_processes import remove_in_background
from lab.layout import CACHE_ROOT
from lab.progress import Progress

SUITE = "trixie"
ARCHIVE = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class BaseRecipe:
    """Everything that decides the base's contents; its hash names the cached tree."""

    suite: str
    archive: str
    variant: str
    packages: tuple[str, ...]
    # Bump when the post-build steps below change.
    revision: int = 1

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


RECIPE = BaseRecipe(
    suite=SUITE,
    archive=ARCHIVE,
    variant="minbase",
    packages=(
        # init and the system bus, as in a VM image
        "systemd", "systemd-sysv", "dbus",
        # networking as Debian's cloud images do it: cloud-init writes netplan, networkd applies it
        "systemd-resolved", "netplan.io", "iproute2", "nftables", "iputils-ping",
        # first-boot configuration and remote administration
        "cloud-init", "openssh-server", "python3", "sudo",
        # what cloud-init modules and boot scripts expect on a cloud image
        "ca-certificates", "curl", "tzdata", "less",
        # ext4 tools, as in Debian's Azure image: the data-disk step formats and checks disks with them
        "e2fsprogs",
    ),
)


class BaseBuildError(Exception):
    """debootstrap or a post-build step failed; the message names the log."""


def base_dir(recipe: BaseRecipe = RECIPE) -> Path:
    return CACHE_ROOT / f"base-{recipe.suite}-{recipe.digest()}"


def is_built(recipe: BaseRecipe = RECIPE) -> bool:
    return (base_dir(recipe) / ".recipe.json").is_file()


def ensure_base(progress: Progress, recipe: BaseRecipe = RECIPE) -> Path:
    """The path of the cached base for ``recipe``, building it first when missing."""
    target = base_dir(recipe)
    if is_built(recipe):
        progress.note(f"base image: cached {target.name}")
        return target
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    building = target.with_name(target.name + ".building")
    log = CACHE_ROOT / f"{target.name}.log"
    if building.exists():
        shutil.rmtree(building)
    with progress.step(f"base image: debootstrap {recipe.suite} ({len(recipe.packages)} packages, log {log})",
                       key="base_build"):
        with log.open("w") as log_file:
            result = subprocess.run(
                ["debootstrap", f"--variant={recipe.variant}", f"--include={','.join(recipe.packages)}",
                 recipe.suite, str(building), recipe.archive],
                stdout=log_file, stderr=subprocess.STDOUT, check=False,
            )
        if result.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            raise BaseBuildError(f"debootstrap of {recipe.suite} failed (exit {result.returncode}); read {log}")
        _prepare_as_image(building)
        (building / ".recipe.json").write_text(json.dumps(asdict(recipe), indent=2) + "\n")
        building.rename(target)
    _remove_stale_bases(keep=target)
    return target


def _prepare_as_image(root: Path) -> None:
    """Make the tree a generic image: no identity of its own, nothing left from the build."""
    # Each machine gets its own machine-id and SSH host keys (cloud-init regenerates them).
    (root / "etc/machine-id").write_text("")
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True)
    # The image's hostname comes from cloud-init, as on Azure.
    (root / "etc/hostname").write_text("localhost\n")


def _remove_stale_bases(keep: Path) -> None:
    for old in CACHE_ROOT.glob("base-*"):
        if old != keep and old.is_dir() and not old.name.endswith(".building"):
            remove_in_background(old, CACHE_ROOT / ".trash")
        elif old.suffix == ".log" and old.name != f"{keep.name}.log":
            old.unlink(missing_ok=True)


def purge_cache() -> list[Path]:
    """Remove every cached base; returns what was removed."""
    removed = []
    if CACHE_ROOT.exists():
        for entry in CACHE_ROOT.iterdir():
            removed.append(entry)
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    return removed

