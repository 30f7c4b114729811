"""Region facts as data: zones, VM sizes, subscription features and resource providers.

The facts live in ``blueprints/regions.yaml``, each with the public page it comes from (``source``)
and the day it was compared with that page (``checked``). This module reads and checks the file;
the environment passes the zones to the modules, ``blueprints validate`` refuses a size a region
does not offer, and ``blueprints preflight`` prints (and with the Azure CLI runs) the checks a
subscription needs before ``pulumi up``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

FACTS_FILE = Path(__file__).with_name("regions.yaml")


@dataclass(frozen=True)
class Source:
    """Where a fact comes from, when it was last compared with it, and any doubt about it."""

    source: str
    checked: datetime.date
    uncertain: str | None = None


@dataclass(frozen=True)
class SizeInRegion:
    offered: bool
    fact: Source


@dataclass(frozen=True)
class Region:
    name: str  # as in stack files: uksouth
    display_name: str  # as Azure shows it: UK South
    zones: tuple[str, ...]  # its availability zones; empty where it has none
    zones_fact: Source
    sizes: dict[str, SizeInRegion]

    def offers(self, size: str) -> bool | None:
        """Whether the region offers a VM size; None when the facts do not say."""
        known = self.sizes.get(size)
        return None if known is None else known.offered

    def offered_sizes(self) -> list[str]:
        return sorted(name for name, size in self.sizes.items() if size.offered)


@dataclass(frozen=True)
class VmSize:
    name: str
    vcpus: int
    quota_family: str  # the family `az vm list-usage` counts its vCPUs in (name.value)
    fact: Source


@dataclass(frozen=True)
class Feature:
    namespace: str
    name: str
    why: str
    resource_type: str  # the ARM resource type that needs it, e.g. Microsoft.Compute/virtualMachines
    property: str  # dotted path of the property that asks for it on that type
    fact: Source

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Provider:
    namespace: str
    registered_by_default: bool
    fact: Source


@dataclass(frozen=True)
class RegionFacts:
    regions: dict[str, Region]
    vm_sizes: dict[str, VmSize]
    features: tuple[Feature, ...]
    providers: dict[str, Provider]

    def sources(self) -> list[tuple[str, Source]]:
        """Every fact's place in the file and its source, in file order."""
        found: list[tuple[str, Source]] = []
        for name, described in self.regions.items():
            found.append((f"regions.{name}.availability_zones", described.zones_fact))
            found += [(f"regions.{name}.vm_sizes.{size}", known.fact) for size, known in described.sizes.items()]
        found += [(f"vm_sizes.{name}", size.fact) for name, size in self.vm_sizes.items()]
        found += [(f"subscription_features[{index}]", feature.fact) for index, feature in enumerate(self.features)]
        found += [(f"resource_providers.{name}", provider.fact) for name, provider in self.providers.items()]
        return found


class _Reader:
    """Reads the facts file, collecting every problem before raising."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        self.problems.append(f"{where}: must be a mapping")
        return {}

    def fact(self, entry: dict[str, Any], where: str) -> Source:
        source, checked, uncertain = entry.get("source"), entry.get("checked"), entry.get("uncertain")
        if not isinstance(source, str) or not source.strip():
            self.problems.append(f"{where}.source: must name the page the fact comes from")
        if not isinstance(checked, datetime.date):
            self.problems.append(f"{where}.checked: must be the date the fact was checked (YYYY-MM-DD)")
        if uncertain is not None and (not isinstance(uncertain, str) or not uncertain.strip()):
            self.problems.append(f"{where}.uncertain: must say why the fact is uncertain")
        return Source(str(source), checked if isinstance(checked, datetime.date) else datetime.date.min,
                      uncertain if isinstance(uncertain, str) else None)

    def value(self, entry: dict[str, Any], key: str, kind: type, where: str) -> Any:
        value = entry.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problems.append(f"{where}.{key}: must be {kind.__name__}")
            return kind()
        return value


def read_facts(text: str, source: str = str(FACTS_FILE)) -> RegionFacts:
    """Parse and check the facts; ValueError lists every problem."""
    reader = _Reader(source)
    document = reader.mapping(yaml.safe_load(text), "(file)")
    regions: dict[str, Region] = {}
    for name, entry in reader.mapping(document.get("regions"), "regions").items():
        where = f"regions.{name}"
        entry = reader.mapping(entry, where)
        zones_entry = reader.mapping(entry.get("availability_zones"), f"{where}.availability_zones")
        zones = zones_entry.get("zones")
        if not isinstance(zones, list) or not all(isinstance(zone, str) for zone in zones):
            reader.problems.append(f"{where}.availability_zones.zones: must be a list of zone names, [] for none")
            zones = []
        sizes: dict[str, SizeInRegion] = {}
        for size, fact in reader.mapping(entry.get("vm_sizes"), f"{where}.vm_sizes").items():
            at = f"{where}.vm_sizes.{size}"
            fact = reader.mapping(fact, at)
            sizes[size] = SizeInRegion(reader.value(fact, "offered", bool, at), reader.fact(fact, at))
        regions[name] = Region(name, reader.value(entry, "display_name", str, where), tuple(zones),
                               reader.fact(zones_entry, f"{where}.availability_zones"), sizes)
    vm_sizes: dict[str, VmSize] = {}
    for name, entry in reader.mapping(document.get("vm_sizes"), "vm_sizes").items():
        where = f"vm_sizes.{name}"
        entry = reader.mapping(entry, where)
        vm_sizes[name] = VmSize(name, reader.value(entry, "vcpus", int, where),
                                reader.value(entry, "quota_family", str, where), reader.fact(entry, where))
    features: list[Feature] = []
    listed = document.get("subscription_features")
    if not isinstance(listed, list):
        reader.problems.append("subscription_features: must be a list")
        listed = []
    for index, entry in enumerate(listed):
        where = f"subscription_features[{index}]"
        entry = reader.mapping(entry, where)
        needed = reader.mapping(entry.get("needed_when"), f"{where}.needed_when")
        features.append(Feature(
            reader.value(entry, "namespace", str, where), reader.value(entry, "name", str, where),
            reader.value(entry, "why", str, where),
            reader.value(needed, "resource_type", str, f"{where}.needed_when"),
            reader.value(needed, "property", str, f"{where}.needed_when"), reader.fact(entry, where)))
    providers: dict[str, Provider] = {}
    for namespace, entry in reader.mapping(document.get("resource_providers"), "resource_providers").items():
        where = f"resource_providers.{namespace}"
        entry = reader.mapping(entry, where)
        providers[namespace] = Provider(namespace, reader.value(entry, "registered_by_default", bool, where),
                                        reader.fact(entry, where))
    for region in regions.values():
        for size in region.sizes:
            if size not in vm_sizes:
                reader.problems.append(f"regions.{region.name}.vm_sizes.{size}: has no entry under vm_sizes "
                                       "(its vCPUs and quota family)")
    if reader.problems:
        raise ValueError(f"{source}: " + "; ".join(reader.problems))
    return RegionFacts(regions, vm_sizes, tuple(features), providers)


@cache
def region_facts() -> RegionFacts:
    """The shipped facts (blueprints/regions.yaml)."""
    return read_facts(FACTS_FILE.read_text(encoding="utf-8"))


def region(location: str) -> Region:
    """The facts about one region; ValueError for a region the file does not describe."""
    regions = region_facts().regions
    if location not in regions:
        raise ValueError(f"{FACTS_FILE.name} has no facts about region {location!r}; "
                         f"it describes {', '.join(sorted(regions))}")
    return regions[location]


def availability_zones(location: str) -> tuple[str, ...]:
    """The region's availability zones, for zone-redundant resources; () where it has none."""
    return region(location).zones
