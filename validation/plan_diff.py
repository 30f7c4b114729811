"""What applying one plan over another does: `blueprints plan --diff BASE STACK_FILE`.

Resources are matched by URN without its stack part (two stack files of one environment name
the same resources), and each is created, updated in place, replaced or deleted. A replacement
names the property that forces it, from modules/immutable-properties.yaml; a VM's replacement
also says what outlives it (data disks kept by Azure, with the role's directories on them) and
what does not (its OS disk and everything on it). A VM updated in place lists the settings it
re-applies: the keys of its user data document that differ.

Everything here reads recorded plans only, so it runs offline and takes a plan from the plan
cache, a fresh recording, or a `blueprints plan --json` file kept from the last deployment.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from blueprints.roles import all_roles
from blueprints.topology import plan_machines
from modules.immutable_properties import ImmutableTable, immutable_table
from validation.plan_model import AZURE, Plan, PlannedResource

VM_TYPE = "azure-native:compute:VirtualMachine"
# Exit status of `plan --diff` when a resource holding data would be replaced or deleted, so a
# pipeline can stop for an approval (0: nothing destructive; 1: a failure; 2: bad input).
EXIT_DESTRUCTIVE = 3

CREATE, UPDATE, REPLACE, DELETE = "create", "update", "replace", "delete"
ORDER = (REPLACE, DELETE, CREATE, UPDATE)
_LISTED_PATHS = 6  # changed input paths shown per resource before "and N more"


@dataclass(frozen=True)
class Forcing:
    """A changed property that makes Azure replace the resource, and why."""

    path: str
    reason: str
    sources: tuple[str, ...]  # URLs


@dataclass
class ResourceChange:
    action: str
    key: str  # the URN without its stack
    type: str
    name: str  # Pulumi logical name
    azure_name: str
    machine: str = ""  # a VM's computer name: the machine of the stack (and of the lab)
    changed: list[str] = field(default_factory=list)
    forced_by: list[Forcing] = field(default_factory=list)
    survives: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)  # user data keys a VM re-applies
    destructive: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action, "type": self.type, "name": self.name, "azure_name": self.azure_name,
            "machine": self.machine,
            "changed": self.changed, "settings": self.settings, "survives": self.survives, "lost": self.lost,
            "destructive": self.destructive,
            "forced_by": [{"path": f.path, "reason": f.reason, "sources": list(f.sources)} for f in self.forced_by],
        }


@dataclass
class PlanDiff:
    base: str
    target: str
    changes: list[ResourceChange]
    unchanged: int

    @property
    def destructive(self) -> list[ResourceChange]:
        return [change for change in self.changes if change.destructive]

    def by_action(self, action: str) -> list[ResourceChange]:
        return [change for change in self.changes if change.action == action]

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "target": self.target, "unchanged": self.unchanged,
                "destructive": bool(self.destructive),
                "changes": [change.to_json() for change in self.changes]}


def resource_key(urn: str) -> str:
    """``urn:pulumi:STACK::PROJECT::TYPES::NAME`` without ``urn:pulumi:STACK::``."""
    head, _, rest = urn.partition("::")
    return rest if head.startswith("urn:pulumi:") else urn


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values by path: ``a.b`` for mappings, ``a[0]`` for lists; empty containers are leaves."""
    if isinstance(value, dict) and value:
        leaves: dict[str, Any] = {}
        for key, item in value.items():
            leaves.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return leaves
    if isinstance(value, list) and value:
        leaves = {}
        for index, item in enumerate(value):
            leaves.update(flatten(item, f"{prefix}[{index}]"))
        return leaves
    return {prefix: value}


_MISSING = object()


def changed_paths(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    before, after = flatten(old), flatten(new)
    return sorted(path for path in before.keys() | after.keys()
                  if before.get(path, _MISSING) != after.get(path, _MISSING))


def _value(inputs: dict[str, Any], path: str) -> Any:
    node: Any = inputs
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _forcing(table: ImmutableTable, old: PlannedResource, new: PlannedResource, changed: list[str]) -> list[Forcing]:
    forced: list[Forcing] = []
    if old.azure_name != new.azure_name:
        forced.append(Forcing("name", f"the Azure name changes ({old.azure_name} to {new.azure_name}), "
                                      "and a resource's name is part of its id",
                              (table.sources["arm-resource-id"].url,)))
    for prop in table.replacing_properties(new.type):
        if any(prop.covers(path) for path in changed):
            forced.append(Forcing(prop.path, "Azure does not change it on an existing resource",
                                  tuple(page.url for page in prop.sources)))
    resize = table.rules(new.type).resize
    if resize is not None:
        before, after = _value(old.inputs, resize.path), _value(new.inputs, resize.path)
        if before != after:
            across = resize.forces_replacement(str(before), str(after))
            if across:
                forced.append(Forcing(resize.path, f"{before} and {after} are on opposite sides of the "
                                                   "local temporary disk line, which Azure will not resize across",
                                      tuple(page.url for page in resize.sources)))
            elif across is None:
                forced.append(Forcing(resize.path, f"{before} to {after} is not in the table of sizes, so whether "
                                                   "Azure can resize in place is unknown: treated as a replacement",
                                      tuple(page.url for page in resize.sources)))
    if not new.type.startswith(AZURE) and changed:
        forced.append(Forcing(changed[0], "a resource of another provider (keys, certificates, passwords): "
                                          "taken to be replaced on any change of its inputs", ()))
    return forced


def _user_data(inputs: dict[str, Any]) -> Any:
    encoded = inputs.get("userData")
    if not encoded:
        return None
    try:
        text = base64.b64decode(encoded).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return encoded
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _file_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """A settings document's files (blueprints/vm_settings.py): one line per file written or removed,
    with the apply programs it feeds."""
    old = {entry["path"]: entry for entry in before.get("files") or []}
    new = {entry["path"]: entry for entry in after.get("files") or []}
    lines = []
    for path in sorted(old.keys() | new.keys()):
        if old.get(path) == new.get(path):
            continue
        entry = new.get(path) or old[path]
        hooks = entry.get("hooks") or []
        lines.append(f"{'writes' if path in new else 'removes'} {path}"
                     + (f", then runs {', '.join(hooks)}" if hooks else ""))
    return lines


def reapplied_settings(old: PlannedResource, new: PlannedResource) -> list[str]:
    """What a VM re-applies from its user data: the files of a settings document that change, or
    for any other document the keys (two levels deep) that differ."""
    before, after = _user_data(old.inputs), _user_data(new.inputs)
    if before == after:
        return []
    if isinstance(after, dict) and isinstance(after.get("files"), list) and isinstance(before, dict | None):
        return _file_changes(before or {}, after)
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ["userData"]
    keys = set()
    for path in changed_paths(before, after):
        parts = path.replace("[", ".[").split(".")
        keys.add(".".join(part for part in parts[:2] if not part.startswith("[")))
    return sorted(keys)


def _machines_by_vm_name(plans: tuple[Plan, ...]) -> dict[str, str]:
    """VM computer name to role, from whichever plans carry their stack's config."""
    roles: dict[str, str] = {}
    for plan in plans:
        if plan.config:
            roles.update({machine.name: machine.role for machine in plan_machines(plan.config)})
    return roles


def _vm_outcome(vm: PlannedResource, role_of: dict[str, str]) -> tuple[list[str], list[str]]:
    """What outlives a VM's replacement or deletion, and what goes with it."""
    layouts = {declared.name: declared.data_disk for declared in all_roles()}
    computer = (vm.inputs.get("osProfile") or {}).get("computerName", "")
    layout = layouts.get(role_of.get(computer, ""))
    storage = vm.inputs.get("storageProfile") or {}
    survives, lost = [], []
    for disk in storage.get("dataDisks") or []:
        # A disk made with the VM has a name and size here; an attached one only its id.
        name = disk.get("name") or str((disk.get("managedDisk") or {}).get("id", "")).rsplit("/", 1)[-1]
        where = f"data disk {name}" + (f" ({disk['diskSizeGB']} GB)" if disk.get("diskSizeGB") else "")
        if disk.get("deleteOption") == "Detach":
            kept = f"{where}: kept by Azure (deleteOption Detach)"
            if layout is not None:
                kept += " with " + ", ".join(layout.directories)
            survives.append(kept)
        else:
            lost.append(f"{where}: deleted with the VM (deleteOption {disk.get('deleteOption', 'Delete')})")
    os_disk = storage.get("osDisk") or {}
    lost.append(f"OS disk {os_disk.get('name')}: deleted with the VM, and everything on it not kept on a data disk"
                + ("" if layout is not None else " (this role keeps nothing on a data disk)"))
    for nic in (vm.inputs.get("networkProfile") or {}).get("networkInterfaces") or []:
        if nic.get("deleteOption") == "Delete":
            lost.append(f"network interface {str(nic.get('id', '')).rsplit('/', 1)[-1]}: deleted by Azure with "
                        "the VM (deleteOption Delete); the program declares it again")
    return survives, lost


def _change(action: str, key: str, resource: PlannedResource) -> ResourceChange:
    machine = (resource.inputs.get("osProfile") or {}).get("computerName", "") if resource.type == VM_TYPE else ""
    return ResourceChange(action=action, key=key, type=resource.type, name=resource.name,
                          azure_name=resource.azure_name, machine=machine)


def diff_plans(base: Plan, target: Plan, table: ImmutableTable | None = None) -> PlanDiff:
    table = table or immutable_table()
    role_of = _machines_by_vm_name((base, target))
    before = {resource_key(r.urn): r for r in base.resources if r.custom}
    after = {resource_key(r.urn): r for r in target.resources if r.custom}
    changes: list[ResourceChange] = []
    unchanged = 0
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old is None:
            changes.append(_change(CREATE, key, after[key]))
            continue
        if new is None:
            change = _change(DELETE, key, old)
            change.destructive = old.type in table.holds_data
            if old.type == VM_TYPE:
                change.survives, change.lost = _vm_outcome(old, role_of)
            changes.append(change)
            continue
        changed = changed_paths(old.inputs, new.inputs)
        if not changed and old.azure_name == new.azure_name:
            unchanged += 1
            continue
        forced = _forcing(table, old, new, changed)
        change = _change(REPLACE if forced else UPDATE, key, new)
        change.changed, change.forced_by = changed, forced
        if new.type == VM_TYPE:
            change.settings = reapplied_settings(old, new)
            if forced:
                change.survives, change.lost = _vm_outcome(old, role_of)
        change.destructive = bool(forced) and new.type in table.holds_data
        changes.append(change)
    changes.sort(key=lambda change: (ORDER.index(change.action), change.type, change.key))
    return PlanDiff(base=base.source, target=target.source, changes=changes, unchanged=unchanged)


def _short_type(type_token: str) -> str:
    return type_token.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def _listed(paths: list[str]) -> str:
    shown = ", ".join(paths[:_LISTED_PATHS])
    return shown + (f" and {len(paths) - _LISTED_PATHS} more" if len(paths) > _LISTED_PATHS else "")


_HEADINGS = {REPLACE: "replaced (deleted, then created again)", DELETE: "deleted", CREATE: "created",
             UPDATE: "updated in place"}


def render_diff(diff: PlanDiff) -> str:
    lines = [f"Changes from {diff.base} to {diff.target} (offline plans, matched by URN):"]
    for action in ORDER:
        group = diff.by_action(action)
        if not group:
            continue
        lines += ["", f"{len(group)} {_HEADINGS[action]}:"]
        for change in group:
            mark = "  !" if change.destructive else "  -"
            lines.append(f"{mark} {_short_type(change.type)} {change.azure_name}")
            for forcing in change.forced_by:
                lines.append(f"      forced by {forcing.path}: {forcing.reason}")
                lines += [f"        source: {url}" for url in forcing.sources]
            if action == UPDATE and change.changed:
                lines.append(f"      changes {_listed(change.changed)}")
            if change.settings:
                lines.append(f"      re-applies settings: {', '.join(change.settings)}")
            lines += [f"      survives: {item}" for item in change.survives]
            lines += [f"      lost: {item}" for item in change.lost]
    counts = ", ".join(f"{len(diff.by_action(action))} {action}" for action in ORDER)
    lines += ["", f"Summary: {counts}, {diff.unchanged} unchanged."]
    if diff.destructive:
        names = ", ".join(f"{_short_type(c.type)} {c.azure_name}" for c in diff.destructive)
        lines.append(f"DESTRUCTIVE: {len(diff.destructive)} resource(s) holding data would be replaced or "
                     f"deleted ({names}); exit status {EXIT_DESTRUCTIVE}.")
    else:
        lines.append("Nothing that holds data is replaced or deleted.")
    return "\n".join(lines)
