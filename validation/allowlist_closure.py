"""What each allowlist entry needs, as recorded by `blueprints allowlist resolve`, and the warning it feeds.

The record of a stack ``<dir>/<stack>.yaml`` is ``<dir>/closures/<stack>.yaml``: a committed data file,
one per stack, written by every run of the resolver (it records facts about packages; only
``--write`` changes the allowlists themselves). For each ecosystem it keeps, per allowlist entry as
written, the packages installing that entry pulls in, with the versions the resolver chose.

`blueprints validate` (and every command that reads a stack) warns, without failing, when the stack
lists an entry whose recorded needs are not all allowed: an analyst would meet "no matching
distribution" for a package nobody wrote down. An entry whose text changed since the record (a new
version specifier, say) has no record, so nothing is claimed about it.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from blueprints.package_mirror.settings import ECOSYSTEMS, canonical_pypi, split_pypi_entry

RECORDS_FOLDER = "closures"
LOG = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class Package:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name} {self.version}" if self.version else self.name


@dataclass(frozen=True)
class EcosystemClosure:
    """One ecosystem's resolution: what each entry needs, and what the resolver assumed."""

    ecosystem: str
    assumed: str
    needs: dict[str, tuple[Package, ...]]  # entry as written -> packages it pulls in (not itself)
    notes: tuple[str, ...] = ()  # things worth saying that are not failures (a dependency not in the index)

    def packages(self) -> tuple[Package, ...]:
        """Every package some entry needs, once each."""
        return tuple(sorted({package for needs in self.needs.values() for package in needs}))


def record_path(stack_file: Path) -> Path:
    return stack_file.parent / RECORDS_FOLDER / f"{stack_file.stem}.yaml"


def package_key(ecosystem: str, name: str) -> str:
    """How the mirror tells two names apart: PyPI by PEP 503 name (without specifiers), others exactly."""
    if ecosystem == "pypi":
        return canonical_pypi(split_pypi_entry(name)[0])
    return name


def missing_needs(allowlists: dict[str, list[str]], closures: dict[str, EcosystemClosure]
                  ) -> dict[str, dict[str, list[str]]]:
    """Per ecosystem, per listed entry with a record, the names it needs that the allowlist lacks."""
    missing: dict[str, dict[str, list[str]]] = {}
    for ecosystem, closure in closures.items():
        entries = allowlists.get(ecosystem) or []
        allowed = {package_key(ecosystem, entry) for entry in entries}
        for entry in entries:
            lacking = sorted({package.name for package in closure.needs.get(entry, ())
                              if package_key(ecosystem, package.name) not in allowed})
            if lacking:
                missing.setdefault(ecosystem, {})[entry] = lacking
    return missing


def _packages(value: Any, where: str) -> tuple[Package, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValueError(f"{where} must be a list of 'name version' strings")
    packages = []
    for item in value:
        name, _, version = item.strip().partition(" ")
        packages.append(Package(name, version.strip()))
    return tuple(packages)


def read_record(path: Path) -> dict[str, EcosystemClosure]:
    """The closures recorded in ``path``; ValueError naming the place when the file is malformed."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(document, dict):
        raise ValueError(f"{path}: must be a mapping with keys among {', '.join(ECOSYSTEMS)}")
    closures: dict[str, EcosystemClosure] = {}
    for ecosystem in ECOSYSTEMS:
        section = document.get(ecosystem)
        if section is None:
            continue
        if not isinstance(section, dict) or not isinstance(section.get("needs", {}), dict):
            raise ValueError(f"{path}: {ecosystem} must be a mapping with 'assumed' and 'needs'")
        needs = {str(entry): _packages(value or [], f"{path}: {ecosystem}.needs.{entry}")
                 for entry, value in (section.get("needs") or {}).items()}
        closures[ecosystem] = EcosystemClosure(ecosystem, str(section.get("assumed", "")), needs)
    return closures


def render_record(stack_name: str, closures: dict[str, EcosystemClosure], resolved_on: str) -> str:
    """The record file's text: a header saying what it is, then one section per ecosystem."""
    lines = [
        f"# What each allowlist entry of {stack_name} pulls in when installed, as resolved by",
        f"# `blueprints allowlist resolve` on {resolved_on}. `blueprints validate` warns when the stack",
        "# lists an entry here without everything it needs. Written by the resolver; do not edit.",
    ]
    body: dict[str, Any] = {}
    for ecosystem in ECOSYSTEMS:
        closure = closures.get(ecosystem)
        if closure is None:
            continue
        body[ecosystem] = {"assumed": closure.assumed,
                           "needs": {entry: [str(package) for package in packages]
                                     for entry, packages in closure.needs.items()}}
    dumped = yaml.safe_dump(body, sort_keys=False, default_flow_style=False, width=100, allow_unicode=True)
    return "\n".join(lines) + "\n" + dumped


def closure_warnings(config: dict[str, Any], stack_file: Path) -> list[str]:
    """Sentences for each listed entry whose recorded needs the allowlists lack (empty when none)."""
    mirror = config.get("roles", {}).get("package_mirror")
    path = record_path(stack_file)
    if not mirror or not path.is_file():
        return []
    try:
        closures = read_record(path)
    except (OSError, ValueError) as error:
        return [f"the dependency record cannot be read, so it is not checked: {error}"]
    warnings = []
    for ecosystem, entries in missing_needs(mirror.get("allowlists") or {}, closures).items():
        for entry, lacking in entries.items():
            shown = ", ".join(lacking[:8]) + (f" and {len(lacking) - 8} more" if len(lacking) > 8 else "")
            warnings.append(f"roles.package_mirror.allowlists.{ecosystem}: {entry!r} needs {shown}, "
                            "not on the allowlist (installing it through the mirror fails)")
    if warnings:
        warnings.append(f"the needs come from {path}; `blueprints allowlist resolve {stack_file} --write` adds them")
    return warnings


def warn_of_missing_needs(config: dict[str, Any], stack_file: Path) -> None:
    """Log a warning per allowlist entry with unmet recorded needs. A warning, never a failure:
    the record may be older than the allowlist's last change."""
    for sentence in closure_warnings(config, stack_file):
        _warn_once(str(stack_file), sentence)


@functools.cache
def _warn_once(source: str, sentence: str) -> None:
    # A command may read its stack more than once (validate, then plan); one warning is enough.
    LOG.warning("%s: warning: %s", source, sentence)
