"""The stack schema walked field by field, and ways to write changed copies of the example."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import Any

import yaml

from tests.conftest import EXAMPLE
from validation.schema import SCHEMA

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Field:
    path: Path
    schema: dict[str, Any]

    @property
    def dotted(self) -> str:
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text

    @property
    def type(self) -> str:
        return self.schema["type"]


def walk_schema(schema: dict[str, Any] = SCHEMA, prefix: Path = ()) -> Iterator[Field]:
    """Every field of the schema; a list's items appear as its first entry ([0])."""
    for key, field in schema.items():
        path = (*prefix, key)
        yield Field(path, field)
        if field["type"] == "dict" and "schema" in field:
            yield from walk_schema(field["schema"], path)
        if field["type"] == "list" and "schema" in field:
            item = field["schema"]
            yield Field((*path, 0), item)
            if item.get("type") == "dict" and "schema" in item:
                yield from walk_schema(item["schema"], (*path, 0))


FIELDS: tuple[Field, ...] = tuple(walk_schema())


@cache
def _example() -> dict[str, Any]:
    document = yaml.safe_load(EXAMPLE.read_text())
    # Every optional list of entries gets one valid entry, so a field inside it is tested against
    # valid siblings (the example stack leaves the gateway's jump-host users out).
    gateway = document["roles"]["gateway"]
    gateway.setdefault("ssh_users", [{"name": "jbloggs",
                                      "ssh_public_key": document["admin"]["ssh_public_keys"][0]}])
    return document


def example() -> dict[str, Any]:
    return copy.deepcopy(_example())


def get(document: Any, path: Path) -> Any:
    for part in path:
        document = document[part]
    return document


def has(document: Any, path: Path) -> bool:
    try:
        get(document, path)
    except (KeyError, IndexError, TypeError):
        return False
    return True


def put(document: dict[str, Any], path: Path, value: Any) -> None:
    """Set the value at ``path``, making the mappings and list entries on the way."""
    node: Any = document
    for part, following in pairwise(path):
        if isinstance(part, int):
            while len(node) <= part:
                node.append({} if isinstance(following, str) else [])
            if not isinstance(node[part], dict | list):
                node[part] = {} if isinstance(following, str) else []
        elif not isinstance(node.get(part), dict | list):
            node[part] = {} if isinstance(following, str) else []
        node = node[part]
    last = path[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value


def remove(document: dict[str, Any], path: Path) -> None:
    parent = get(document, path[:-1])
    del parent[path[-1]]


class _PlainDumper(yaml.SafeDumper):
    """Writes a value shared by two keys out twice: the anchors and aliases PyYAML would add are
    not what the test means to send (and enough of them hit the loader's alias cap)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(document: Any) -> str:
    return yaml.dump(document, Dumper=_PlainDumper, allow_unicode=True, sort_keys=False, width=10_000)


def referenced_list(dotted: str) -> str | None:
    """For a field inside a list entry (``roles.git_server.teams[0].name``), the list's path: a
    renamed entry is reported where it is referenced, as 'is not a team in roles.git_server.teams'."""
    head, bracket, _ = dotted.rpartition("[")
    return head if bracket else None
