"""The properties Azure will not change in place, read from modules/immutable-properties.yaml.

The table is data with a source for every entry because nothing here can prove it: the lab has
no Azure Resource Manager. LinuxVm passes its VM paths to Pulumi as ``replace_on_changes`` so
that `pulumi preview` shows a replacement where Azure would refuse an update, and the offline
`blueprints plan --diff` reads the whole table.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

TABLE_FILE = Path(__file__).with_name("immutable-properties.yaml")


@dataclass(frozen=True)
class SourcePage:
    key: str
    url: str
    says: str


@dataclass(frozen=True)
class ImmutableProperty:
    path: str  # recorded input names (camelCase), dots between levels
    sources: tuple[SourcePage, ...]

    def covers(self, changed: str) -> bool:
        """Whether a changed input path lies at or below this property."""
        return changed == self.path or changed.startswith((self.path + ".", self.path + "["))


@dataclass(frozen=True)
class Resize:
    """A size changes in place only within one side of the local temporary disk line."""

    path: str
    sources: tuple[SourcePage, ...]
    local_temp_disk: dict[str, tuple[bool, tuple[SourcePage, ...]]]

    def forces_replacement(self, old: str, new: str) -> bool | None:
        """True across the line, False on one side of it, None when a size is not in the table."""
        if old not in self.local_temp_disk or new not in self.local_temp_disk:
            return None
        return self.local_temp_disk[old][0] != self.local_temp_disk[new][0]


@dataclass(frozen=True)
class TypeRules:
    replace: tuple[ImmutableProperty, ...]
    resize: Resize | None
    survives: str | None  # input path of what outlives a replacement (data disks)


@dataclass(frozen=True)
class ImmutableTable:
    checked: datetime.date
    sources: dict[str, SourcePage]
    every_resource: tuple[ImmutableProperty, ...]
    holds_data: frozenset[str]
    types: dict[str, TypeRules]

    def rules(self, type_token: str) -> TypeRules:
        return self.types.get(type_token, TypeRules(replace=(), resize=None, survives=None))

    def replacing_properties(self, type_token: str) -> tuple[ImmutableProperty, ...]:
        return self.every_resource + self.rules(type_token).replace


class TableError(ValueError):
    """The table file is malformed; the message names the entry."""


def _sources(keys: Any, where: str, pages: dict[str, SourcePage]) -> tuple[SourcePage, ...]:
    if not isinstance(keys, list) or not keys:
        raise TableError(f"{TABLE_FILE.name}: {where} needs a non-empty list of sources")
    unknown = [key for key in keys if key not in pages]
    if unknown:
        raise TableError(f"{TABLE_FILE.name}: {where} names unknown sources {unknown}")
    return tuple(pages[key] for key in keys)


def _properties(entries: Any, where: str, pages: dict[str, SourcePage]) -> tuple[ImmutableProperty, ...]:
    properties = []
    for index, entry in enumerate(entries or []):
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or not path:
            raise TableError(f"{TABLE_FILE.name}: {where}[{index}] needs a path")
        properties.append(ImmutableProperty(path, _sources(entry.get("sources"), f"{where}.{path}", pages)))
    return tuple(properties)


def parse_table(data: dict[str, Any]) -> ImmutableTable:
    pages: dict[str, SourcePage] = {}
    for key, page in (data.get("sources") or {}).items():
        url, says = page.get("url", ""), page.get("says", "")
        if not str(url).startswith("https://") or not says:
            raise TableError(f"{TABLE_FILE.name}: source {key} needs an https url and what it says")
        pages[key] = SourcePage(key, url, " ".join(str(says).split()))
    checked = data.get("checked")
    if not isinstance(checked, datetime.date):
        raise TableError(f"{TABLE_FILE.name}: checked must be the date the sources were read")
    types: dict[str, TypeRules] = {}
    for type_token, rules in (data.get("resources") or {}).items():
        resize = None
        if "resize" in rules:
            spec = rules["resize"]
            sizes = {
                size: (bool(fact["has"]), _sources(fact.get("sources"), f"{type_token}.resize.{size}", pages))
                for size, fact in spec["local_temp_disk"].items()
            }
            resize = Resize(spec["path"], _sources(spec.get("sources"), f"{type_token}.resize", pages), sizes)
        types[type_token] = TypeRules(
            replace=_properties(rules.get("replace"), f"{type_token}.replace", pages),
            resize=resize,
            survives=rules.get("survives"),
        )
    return ImmutableTable(
        checked=checked,
        sources=pages,
        every_resource=_properties(data.get("every_resource"), "every_resource", pages),
        holds_data=frozenset(data.get("holds_data") or ()),
        types=types,
    )


@cache
def immutable_table() -> ImmutableTable:
    return parse_table(yaml.safe_load(TABLE_FILE.read_text(encoding="utf-8")))


def replace_on_changes(type_token: str) -> list[str]:
    """The property paths of one resource type that Pulumi should treat as replacing it."""
    return [prop.path for prop in immutable_table().rules(type_token).replace]
