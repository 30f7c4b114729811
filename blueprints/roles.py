"""The registry of roles: every role folder's declaration, found by looking, checked together.

A role is a folder ``blueprints/<name>/`` with a ``role.py`` whose ``ROLE`` names itself
``<name>``. Nothing lists the folders: adding one registers the role. Checks that need every
role at once (unique names and addresses, known required roles, one kind per shared secret) run
here at import, so a bad declaration stops the program before anything is planned or booted.
"""

from __future__ import annotations

import importlib
import itertools
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from blueprints.role import MACHINE_SUBNETS, Role

PACKAGE_DIR = Path(__file__).parent


class RoleRegistryError(Exception):
    """Role declarations that contradict each other or are missing."""


def _discover() -> list[Role]:
    found = []
    for info in sorted(pkgutil.iter_modules([str(PACKAGE_DIR)]), key=lambda info: info.name):
        if not info.ispkg or not (PACKAGE_DIR / info.name / "role.py").is_file():
            continue
        declared = getattr(importlib.import_module(f"blueprints.{info.name}.role"), "ROLE", None)
        if not isinstance(declared, Role):
            raise RoleRegistryError(f"blueprints/{info.name}/role.py must define ROLE = Role(...)")
        if declared.name != info.name:
            raise RoleRegistryError(f"blueprints/{info.name}/role.py declares {declared.name!r}; "
                                    f"a role is named after its folder")
        found.append(declared)
    return found


def checked(roles: list[Role]) -> tuple[Role, ...]:
    """The roles in machine order (by subnet, then address), after the checks across roles."""
    problems = []
    by_name: dict[str, Role] = {}
    for role in roles:
        if role.name in by_name:
            problems.append(f"two roles are named {role.name!r}")
        by_name[role.name] = role
    ordered = sorted(by_name.values(), key=lambda r: (MACHINE_SUBNETS.index(r.subnet), r.first_host, r.name))
    hosts: dict[str, str] = {}
    for role in ordered:
        if role.host_name in hosts:
            problems.append(f"roles {hosts[role.host_name]!r} and {role.name!r} share host name {role.host_name!r}")
        hosts[role.host_name] = role.name
        for other, _why in role.requires:
            if other not in by_name:
                problems.append(f"role {role.name!r} requires {other!r}, which is not a role")
    for subnet in MACHINE_SUBNETS:
        in_subnet = [r for r in ordered if r.subnet == subnet]
        for first, second in itertools.pairwise(in_subnet):
            # Single machines take one address each; a numbered role counts up from its first.
            if first.numbered or first.first_host == second.first_host:
                problems.append(f"roles {first.name!r} and {second.name!r} would share addresses in the "
                                f"{subnet} subnet (a numbered role must be the last in its subnet)")
    kinds: dict[str, tuple[str, str]] = {}
    for role in ordered:
        for spec in role.secrets:
            if spec.name in kinds and kinds[spec.name][0] != spec.kind:
                problems.append(f"secret {spec.name!r} is a {kinds[spec.name][0]} for {kinds[spec.name][1]!r} "
                                f"but a {spec.kind} for {role.name!r}")
            kinds.setdefault(spec.name, (spec.kind, role.name))
    if problems:
        raise RoleRegistryError("; ".join(problems))
    return tuple(ordered)


_ROLES: tuple[Role, ...] = checked(_discover())


def all_roles() -> tuple[Role, ...]:
    """Every registered role, in machine order."""
    return _ROLES


def role_names() -> tuple[str, ...]:
    return tuple(role.name for role in _ROLES)


def role(name: str) -> Role:
    for candidate in _ROLES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no role named {name!r}; roles: {', '.join(role_names())}")


@contextmanager
def registered(*extra: Role) -> Iterator[tuple[Role, ...]]:
    """Roles declared outside this package (a trust's own, or a test's) registered for a while; one
    with the name of a registered role stands in for it."""
    global _ROLES
    saved = _ROLES
    names = {role.name for role in extra}
    _ROLES = checked([*(role for role in saved if role.name not in names), *extra])
    try:
        yield _ROLES
    finally:
        _ROLES = saved
