"""Caches the lab keeps on the host between runs, so a warm `lab up` downloads nothing twice.

On Azure the package mirror's caches live on its data disk and survive a rebuilt VM; a lab machine
is new on every `lab up`. The lab keeps the same directories on the host: `lab down` takes them out
of the machine (hard links, no copying) and the next `lab up` puts them back in the new machine's
disk before it boots, owner and all, as a reattached data disk would bring them. Only caches whose
entries are checked against upstream or named by version are kept (apt-cacher-ng revalidates index
files and serves a .deb only under its exact name and version); services' state (devpi's and
Verdaccio's databases, users and indexes) is made afresh each run, as on a new VM. A cache taken
from a machine of another base or role layer is not used: its accounts' ids may differ (a package
added to a role can take the id a service account had, and the service would then find its kept
cache owned by someone else). Nothing here reaches the
rendered user-data: Azure's VMs run the same configuration without it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from lab.layout import CACHE_ROOT

# role -> directories inside its machines kept on the host
HOST_CACHES: dict[str, tuple[str, ...]] = {
    "package_mirror": ("/var/cache/apt-cacher-ng",),
}
RECORD = "cache.json"


def _host_dir(role: str, directory: str, cache_root: Path) -> Path:
    return cache_root / "host-caches" / role / directory.strip("/").replace("/", "-")


def _link_copy(source: Path, target: Path) -> None:
    """``target`` becomes a copy of ``source`` (owners, modes and times kept): hard links where both
    are on one file system, a copy otherwise (machines' disks in memory)."""
    for link in (["--link"], []):
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["cp", "-a", *link, str(source), str(target)], capture_output=True, text=True,
                                check=False)
        if result.returncode == 0:
            return
    raise OSError(f"copying {source} to {target} failed: {result.stderr.strip()}")


def lower_key(base: str, layer: Any = None) -> str:
    """What a machine's accounts' ids depend on: its base image and, when it has one, its role layer."""
    return f"{base}+{layer}" if layer else base


def restore(role: str, upper: Path, base: str, cache_root: Path = CACHE_ROOT) -> list[str]:
    """Put the kept caches of ``role`` into a machine's overlay upper directory before it is
    mounted; returns the directories restored (none when nothing is kept for this base)."""
    restored = []
    for directory in HOST_CACHES.get(role, ()):
        kept = _host_dir(role, directory, cache_root)
        record = kept.with_name(kept.name + "." + RECORD)
        if not kept.is_dir() or not record.exists() or json.loads(record.read_text()).get("base") != base:
            continue
        _link_copy(kept, upper / directory.strip("/"))
        restored.append(directory)
    return restored


def keep(role: str, machine_root: Path, base: str, cache_root: Path = CACHE_ROOT) -> list[str]:
    """Take a machine's caches out to the host before the machine's disk is removed."""
    kept_dirs = []
    for directory in HOST_CACHES.get(role, ()):
        inside = machine_root / directory.strip("/")
        if not inside.is_dir() or not any(inside.iterdir()):
            continue
        kept = _host_dir(role, directory, cache_root)
        _link_copy(inside, kept)
        kept.with_name(kept.name + "." + RECORD).write_text(json.dumps({"base": base}) + "\n")
        kept_dirs.append(directory)
    return kept_dirs
