"""Verdaccio's lockfile, and how the mirror installs exactly what it names.

``files/verdaccio-package-lock.json`` is npm's own lockfile for ``files/verdaccio-package.json``:
every package Verdaccio needs, at one version, with the sha512 the registry published for its
tarball. Even compressed it is about 40 KB, more than the mirror's custom data has room for (every
first-boot program within Azure's 64 KB), and the user data must stay small for the allowlists.

So the mirror carries only the lockfile's digest (sha256 over each package's path, version and
integrity) and the moment it was resolved. At first boot it resolves the same package file again
with npm's ``--before`` that moment, which gives the same tree (npm 10.9.4, the installer the
mirror uses, gives byte-identical lockfiles from separate caches), refuses to go on unless the
result has the repository's digest, and then installs it with ``npm ci``, which checks every
tarball against its sha512. A package republished, added or swapped upstream stops the boot.

To change Verdaccio: edit the package file, set RESOLVED_BEFORE to a moment after the releases
wanted, and write the lockfile with the mirror's npm (its tarball is checked in cloud-init.yaml.j2):

    cp files/verdaccio-package.json /tmp/v/package.json && cd /tmp/v && \\
      node npm-10.9.4/bin/npm-cli.js install --package-lock-only --ignore-scripts \\
        --omit-lockfile-registry-resolved --before=<RESOLVED_BEFORE> --registry https://registry.npmjs.org/
    cp /tmp/v/package-lock.json files/verdaccio-package-lock.json

The upstream must serve full package metadata (publication times), as registry.npmjs.org does.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from blueprints.role import stack_settings

FILES = Path(__file__).parent / "files"
LOCK_FILE = FILES / "verdaccio-package-lock.json"
PACKAGE_FILE = FILES / "verdaccio-package.json"
# The moment the lockfile was resolved at (npm --before); after Verdaccio 6.8.0's release.
RESOLVED_BEFORE = "2026-12-01T00:00:00.000Z"
# The same digest, computed on the mirror by cloud-init (the rendered program is tested against this).
DIGEST_PROGRAM = """import hashlib, json, sys
packages = json.load(open(sys.argv[1], encoding="utf-8"))["packages"]
lines = "".join(f"{path} {entry.get('version')} {entry.get('integrity')}\\n"
                for path, entry in sorted(packages.items()) if path)
print(hashlib.sha256(lines.encode()).hexdigest())
"""


def lock_digest(lock: dict[str, Any]) -> str:
    lines = "".join(f"{path} {entry.get('version')} {entry.get('integrity')}\n"
                    for path, entry in sorted(lock["packages"].items()) if path)
    return hashlib.sha256(lines.encode()).hexdigest()


@cache
def repository_digest() -> str:
    return lock_digest(json.loads(LOCK_FILE.read_text(encoding="utf-8")))


def template_settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The stack's settings plus what the mirror's first boot checks Verdaccio's packages against."""
    return {**stack_settings(config, name), "verdaccio_lock_digest": repository_digest(),
            "verdaccio_resolved_before": RESOLVED_BEFORE, "verdaccio_digest_program": DIGEST_PROGRAM}
