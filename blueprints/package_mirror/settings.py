"""roles.package_mirror in a stack file: every setting, its type, default and meaning (cerberus).

The rules the mirror's own program (files/mirror-allowlist.py, which runs on the VM and cannot
import the project) also applies are read from that program: the ecosystems, the version
specifiers, the upstream URL form and the number of entries. The package-name patterns go the
other way: cloud-init hands them to the program, so both check entries the same way.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from blueprints.settings_fields import URL_ALLOWED, disk_field, vm_size_field

VM_PROGRAM_FILE = Path(__file__).parent / "files" / "mirror-allowlist.py"


def _vm_program() -> ModuleType:
    """The mirror's program, loaded as a module (its name has a hyphen) without running its main."""
    spec = importlib.util.spec_from_file_location("mirror_allowlist_program", VM_PROGRAM_FILE)
    assert spec is not None and spec.loader is not None, VM_PROGRAM_FILE  # noqa: S101 (a shipped file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vm_program = _vm_program()
ECOSYSTEMS: tuple[str, ...] = tuple(vm_program.ECOSYSTEMS)
ALLOWLIST_MAX_ENTRIES: int = vm_program.MAX_ENTRIES
URL_PATTERN: str = vm_program.UPSTREAM_PATTERN.pattern
# A year: a longer hold would keep out every fix for longer than any trust would accept.
MAX_RELEASE_AGE_DAYS = 365
PYPI_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"
# A PyPI allowlist entry: a project name, optionally with version specifiers ("pandas>=2,<3"),
# as the program reads them.
PYPI_ALLOWLIST_PATTERN = PYPI_NAME_PATTERN[:-1] + "(" + vm_program.SPECIFIER_PATTERN.pattern + ")?$"
NPM_NAME_PATTERN = r"^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*$"
CRAN_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]$"
# How the program splits a PyPI entry into name and specifiers, and names a project (PEP 503).
split_pypi_entry = vm_program.split_pypi_entry
canonical_pypi = vm_program.canonical_pypi
PACKAGE_NAME_PATTERNS = {"pypi": PYPI_NAME_PATTERN, "npm": NPM_NAME_PATTERN, "cran": CRAN_NAME_PATTERN}


def _allowlist(pattern: str, what: str, allowed: str = "") -> dict[str, Any]:
    article = "an" if what[0].lower() in "aeiou" or what == "npm" else "a"
    return {"type": "list", "default": [], "maxlength": ALLOWLIST_MAX_ENTRIES,
            "schema": {"type": "string", "regex": pattern, "maxlength": 214,
                       "meta": {"allowed": allowed or f"{article} {what} package name"}},
            "meta": {"doc": f"{what} packages analysts may install (curated mode)"}}


SETTINGS_SCHEMA: dict[str, Any] = {
    "vm_size": vm_size_field("Standard_B2s"),
    "cache_disk_gb": disk_field("Cache disk size in GB", 256),
    "mode": {"type": "string", "allowed": ["curated", "open"], "default": "curated",
             "meta": {"doc": "curated: only allowlisted packages; open: anything upstream"}},
    "minimum_release_age_days": {
        "type": "integer", "min": 0, "max": MAX_RELEASE_AGE_DAYS, "default": 0,
        "meta": {"doc": "Serve a PyPI file or npm tarball only once its upstream has held it this many days "
                        "(0: off). Holds back a brand-new malicious release until it is found and pulled, "
                        "but holds back a fresh security fix just as long",
                 "allowed": f"a whole number of days from 0 (off) to {MAX_RELEASE_AGE_DAYS}"}},
    "allowlists": {
        "type": "dict", "default": {}, "meta": {"doc": "Per-ecosystem allowlists"},
        "schema": {
            "pypi": _allowlist(PYPI_ALLOWLIST_PATTERN, "PyPI", "a PyPI project name, "
                               "optionally with version specifiers such as 'pandas>=2,<3'"),
            "npm": _allowlist(NPM_NAME_PATTERN, "npm"),
            "cran": _allowlist(CRAN_NAME_PATTERN, "CRAN"),
        },
    },
    "allowlists_file": {
        "type": "string", "nullable": True, "default": None,
        "regex": r"^[A-Za-z0-9][A-Za-z0-9._-]*\.ya?ml$",
        "meta": {"doc": "A YAML file beside the stack file with more allowlist entries "
                        "(keys pypi, npm, cran; added to the inline allowlists)",
                 "allowed": "a .yaml file name in the stack's folder, e.g. mirror-allowlist.yaml"}},
    "upstreams": {
        "type": "dict", "default": {}, "meta": {"doc": "Where the mirror fetches from"},
        "schema": {
            name: {"type": "string", "regex": URL_PATTERN, "default": url, "maxlength": 2048,
                   "meta": {"doc": f"{name} upstream", "allowed": URL_ALLOWED, "kind": "url"}}
            for name, url in {
                "debian": "http://deb.debian.org/debian",
                "debian_security": "http://security.debian.org/debian-security",
                "pypi": "https://pypi.org/simple",
                "npm": "https://registry.npmjs.org",
                "cran": "https://cloud.r-project.org",
            }.items()
        },
    },
}
