"""The stack schema walked field by field, and ways to write changed copies of the example."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import Any

import yaml

from tests.conftest import EXAMPLE, REPO
from validation.schema import SCHEMA

Path = tuple[str | int, ...]
LANDING_ZONE = REPO / "stacks" / "landing-zone.yaml"
BASTION = REPO / "stacks" / "bastion-single-analyst.yaml"


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


def _with_airlock(document: dict[str, Any]) -> dict[str, Any]:
    document["network"].setdefault("private_client_ranges", ["10.20.32.0/22"])
    document["airlock"] = {"data_providers_group": "00000000-0000-4000-8000-000000000004",
                           "readers": ["analytics-1"]}
    return document


def _with_egress(document: dict[str, Any]) -> dict[str, Any]:
    document = _with_airlock(document)
    document["airlock"]["egress"] = {"checkers": ["@platform"], "readers_group": "00000000-0000-4000-8000-000000000005"}
    return document


def _with_client_ranges(document: dict[str, Any]) -> dict[str, Any]:
    document["network"]["private_client_ranges"] = ["10.20.32.0/22"]
    return document


def _landing_zone(_document: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(LANDING_ZONE.read_text())


def _bastion(_document: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(BASTION.read_text())


def _with_allowlists_file(document: dict[str, Any]) -> dict[str, Any]:
    document["roles"]["package_mirror"]["allowlists_file"] = "mirror-allowlist.yaml"
    return document


def _with_repository_people(document: dict[str, Any]) -> dict[str, Any]:
    repository = document["roles"]["git_server"]["repositories"][0]
    repository.setdefault("maintainers", ["amara.okafor", "sam.patel"])
    repository.setdefault("readers", ["@platform"])
    return document


def _with_gallery_image(document: dict[str, Any]) -> dict[str, Any]:
    document["roles"]["analytics"]["image"] = {"gallery_image_version_id": (
        "/subscriptions/00000000-0000-4000-8000-00000000000a/resourceGroups/rg-images/providers/"
        "Microsoft.Compute/galleries/trust_images/images/analytics/versions/1.0.0")}
    return document


def _with_registration(document: dict[str, Any]) -> dict[str, Any]:
    # The program registers the gateway: Entra ID then chooses the client id, so the stack has none.
    identity = document["roles"]["gateway"]["identity"]
    identity.pop("client_id", None)
    identity.setdefault("registration", {"client_secret_days": 180})
    return document


def _with_data_source_server(document: dict[str, Any]) -> dict[str, Any]:
    document["roles"]["analytics"]["data_sources"][0].setdefault("server", "10.20.1.10")
    return document


# Optional settings the example stack leaves out, each with a valid sample: a field inside one is
# tested in a stack that has it, so its siblings are valid and only the field under test can be
# refused (a payload in airlock.readers must not be refused for the airlock's missing group).
SECTION_SAMPLES: dict[Path, Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("airlock",): _with_airlock,
    ("airlock", "egress"): _with_egress,
    ("network", "private_client_ranges"): _with_client_ranges,
    ("network", "landing_zone"): _landing_zone,
    ("network", "subnets", "bastion"): _bastion,
    ("roles", "package_mirror", "allowlists_file"): _with_allowlists_file,
    ("roles", "git_server", "repositories", 0, "maintainers"): _with_repository_people,
    ("roles", "git_server", "repositories", 0, "readers"): _with_repository_people,
    ("roles", "analytics", "image"): _with_gallery_image,
    ("roles", "analytics", "data_sources", 0, "server"): _with_data_source_server,
    ("roles", "gateway", "identity", "registration"): _with_registration,
}


def example(path: Path = ()) -> dict[str, Any]:
    """The example stack; given a field's path, with a valid sample of the optional section it is in."""
    document = copy.deepcopy(_example())
    for prefix, sample in SECTION_SAMPLES.items():
        if path[:len(prefix)] == prefix:
            document = sample(document)
    return document


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
