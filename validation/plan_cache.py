"""One plan per stack: the offline plan of a stack file, recorded once and kept until its inputs change.

Every plan-based command (`plan`, `cost`, `docs`, `request-pack`, the checkov gate) calls
``recorded_plan`` instead of ``validation.plan_recorder.record_plan``. An entry is keyed by a
hash of everything the plan is computed from:

- the stack file's name (it names the Pulumi stack, so every URN) and bytes;
- the bytes of each file the stack file pulls in (``roles.package_mirror.allowlists_file``);
- the code version: every file under ``blueprints/``, ``modules/`` and ``validation/``
  (Python, templates, the files templates include, ...; not bytecode nor READMEs), the Python
  version and the installed pulumi and pulumi-azure-native versions.

An entry is the plan as JSON (``Plan.to_json`` plus the stack's config), written to a temporary
file beside it and renamed into place, so a reader sees a whole entry or none and two runs
racing on an empty cache both end with a valid one. A corrupt or unreadable entry is ignored
and rewritten; any failure of the cache itself falls back to planning. A plan is only kept if
it reads back exactly, and only if the key is the same after recording as before and the code
is still what it was when the process first looked (so the modules it imported are the ones the
key names). The newest few entries of each stack are kept.

Where: ``.cache/plans/`` in the repository, or the directory in ``BLUEPRINTS_PLAN_CACHE``;
``BLUEPRINTS_PLAN_CACHE=off`` turns the cache off. Under pytest it is off unless that variable
says otherwise: tests replace the recorder and the roles, and must not read or fill the
repository's cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
import os
import re
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from validation.plan_model import Plan, PlannedResource
from validation.yaml_source import MAX_FILE_BYTES, read_regular_file

ENV = "BLUEPRINTS_PLAN_CACHE"
OFF = frozenset({"off", "0", "false", "no"})
REPO = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO / ".cache" / "plans"
# What the plan is computed from, beside the stack file: the program, its templates and the files
# they include, the schema and the recorder.
CODE_ROOTS: tuple[Path, ...] = (REPO / "blueprints", REPO / "modules", REPO / "validation")
# Files under the code roots that cannot change a plan.
_NOT_CODE_SUFFIXES = frozenset({".pyc", ".pyo", ".md"})
DISTRIBUTIONS = ("pulumi", "pulumi-azure-native")
FORMAT = 1  # of an entry; a new format never reads an old entry
# Entries kept per stack name: a few versions of the code or of the stack file, each with the dozen
# edits of the example that `blueprints docs` plans under the example's name for the change matrix
# (reports/change_matrix.py); fewer, and every docs run would prune the entries the next one needs.
KEEP = 64
_STALE_TEMP_SECONDS = 3600  # a writer's temporary file this old was left by a killed run
_SAFE = re.compile(r"[^A-Za-z0-9_-]")
MAX_READ_BYTES = 64 * 2**20  # any one code or included file; far above any real one


def cache_dir() -> Path | None:
    """Where entries live, or None when the cache is off."""
    setting = os.environ.get(ENV, "").strip()
    if setting.lower() in OFF:
        return None
    if setting:
        return Path(setting)
    if "PYTEST_CURRENT_TEST" in os.environ or "pytest" in sys.modules:
        return None
    return DEFAULT_DIR


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_or_none(path: Path) -> bytes | None:
    # Bounded, regular files only: an included file named by a stack may be a FIFO or /dev/zero.
    try:
        return read_regular_file(path, MAX_READ_BYTES)
    except OSError:
        return None


def code_files(roots: tuple[Path, ...] | None = None) -> list[tuple[str, Path]]:
    """Every file under the code roots that can change a plan, with its name in the key."""
    files = []
    for root in CODE_ROOTS if roots is None else roots:
        files += sorted((path.relative_to(root.parent).as_posix(), path) for path in root.rglob("*")
                        if path.is_file() and "__pycache__" not in path.parts
                        and path.suffix not in _NOT_CODE_SUFFIXES)
    return files


def code_version(roots: tuple[Path, ...] | None = None) -> str:
    """A hash over every file that makes the program (name and bytes) and the SDK versions."""
    digest = hashlib.sha256()
    for name, path in code_files(roots):
        content = _read_or_none(path)
        digest.update(f"{name}\0".encode())
        digest.update(_digest(content).encode() if content is not None else b"unreadable")
        digest.update(b"\n")
    digest.update(f"python {sys.version}\n".encode())
    for name in DISTRIBUTIONS:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{name} {version}\n".encode())
    return digest.hexdigest()


# The code version each set of code roots had when this process first asked: the version of the
# modules it imported. A plan this process records after the code changed on disk may come from
# modules imported before the change, so it is not kept.
_FIRST_SEEN: dict[tuple[Path, ...], str] = {}


def _first_seen_code_version() -> str:
    return _FIRST_SEEN.setdefault(CODE_ROOTS, code_version())


def included_files(stack_file: Path) -> list[tuple[str, Path]]:
    """The files a stack file pulls in, by the setting that names them.

    A new setting that names a file must be added here, or an edit of that file would not be seen.
    """
    from validation.mirror_allowlists_file import FIELD as ALLOWLISTS_FILE
    from validation.problems import StackFileError
    from validation.yaml_source import read_stack_source

    try:
        document, _ = read_stack_source(stack_file)
    except (StackFileError, OSError, ValueError):
        return []  # refused when planned: nothing is kept
    roles = document.get("roles") if isinstance(document, dict) else None
    mirror = roles.get("package_mirror") if isinstance(roles, dict) else None
    name = mirror.get("allowlists_file") if isinstance(mirror, dict) else None
    if not isinstance(name, str) or not name:
        return []
    return [(ALLOWLISTS_FILE, stack_file.parent / name)]


def plan_key(stack_file: str | Path) -> str:
    """The cache key of a stack file's plan: its name and bytes, its included files' bytes, the code."""
    path = Path(stack_file)
    # An unreadable stack file (or a FIFO, a device, one too large) is left to the recorder to report.
    stack_bytes = read_regular_file(path, MAX_FILE_BYTES)
    parts = [f"format {FORMAT}", f"stack {path.stem}", f"bytes {_digest(stack_bytes)}"]
    for setting, included in included_files(path):
        content = _read_or_none(included)
        parts.append(f"include {setting} {included.name} {_digest(content) if content is not None else 'absent'}")
    parts.append(f"code {code_version()}")
    return _digest("\n".join(parts).encode())


def _entry_path(directory: Path, stack_file: Path, key: str) -> Path:
    return directory / f"{_SAFE.sub('-', stack_file.stem)}.{key}.json"


def _load(entry: Path, key: str) -> Plan | None:
    """The plan in an entry, or None when it is missing, unreadable, corrupt or another key's."""
    try:
        data = json.loads(entry.read_bytes())
        if data.get("format") != FORMAT or data.get("key") != key:
            return None
        return Plan.from_json(data["plan"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _store(entry: Path, key: str, plan: Plan) -> None:
    """Write an entry atomically: a temporary file in the same directory, then os.replace."""
    data = {"format": FORMAT, "key": key, "written": time.time(),
            "plan": {**plan.to_json(), "config": plan.config}}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    if Plan.from_json(json.loads(text)["plan"]) != plan:
        return  # something in the plan does not survive JSON exactly: never serve an altered plan
    entry.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=entry.parent, prefix=f".{entry.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, entry)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _prune(entry: Path) -> None:
    """Keep the newest KEEP entries of this stack name; remove temporary files left by killed runs."""
    stem = entry.name.split(".", 1)[0]
    mine = re.compile(rf"{re.escape(stem)}\.[0-9a-f]{{64}}\.json")
    found: list[tuple[float, Path]] = []
    now = time.time()
    for path in entry.parent.iterdir():
        try:
            modified = path.stat().st_mtime
        except OSError:
            continue  # removed meanwhile by another run
        if mine.fullmatch(path.name):
            found.append((modified, path))
        elif path.name.startswith(".") and path.name.endswith(".tmp") and now - modified > _STALE_TEMP_SECONDS:
            path.unlink(missing_ok=True)
    found.sort(key=lambda item: (item[0], item[1] == entry), reverse=True)
    for _, path in found[KEEP:]:
        if path != entry:
            path.unlink(missing_ok=True)


def in_canonical_order(resources: list[PlannedResource]) -> list[PlannedResource]:
    """The resources in one order whatever order the SDK registered them in (which varies from
    run to run): each after its parent and its dependencies, as registration has them, and
    otherwise by URN."""
    by_urn = {resource.urn: resource for resource in resources}
    if len(by_urn) != len(resources):
        return sorted(resources, key=lambda resource: resource.urn)  # not a real plan: URNs repeat
    waiting = {urn: {need for need in (resource.parent, *resource.dependencies) if need in by_urn and need != urn}
               for urn, resource in by_urn.items()}
    dependents: dict[str, list[str]] = {urn: [] for urn in by_urn}
    for urn, needs in waiting.items():
        for need in needs:
            dependents[need].append(urn)
    ready = [urn for urn, needs in waiting.items() if not needs]
    heapq.heapify(ready)
    ordered: list[PlannedResource] = []
    while ready:
        urn = heapq.heappop(ready)
        ordered.append(by_urn[urn])
        for dependent in dependents[urn]:
            waiting[dependent].discard(urn)
            if not waiting[dependent]:
                heapq.heappush(ready, dependent)
    placed = {resource.urn for resource in ordered}
    return ordered + sorted((r for r in resources if r.urn not in placed), key=lambda r: r.urn)  # a cycle


def _record(stack_file: str | Path) -> Plan:
    from validation import plan_recorder  # looked up at call time (tests replace record_plan); loads Pulumi

    plan = plan_recorder.record_plan(stack_file)
    return dataclasses.replace(plan, resources=in_canonical_order(plan.resources))


def recorded_plan(stack_file: str | Path) -> Plan:
    """The plan of a stack file: from the cache when its inputs are unchanged, else recorded (and kept).

    What ``record_plan`` returns, with the resources in their canonical order (so the same stack
    gives the same output, cached or not); a fresh object each call, ``source`` named as given.
    Raises what ``record_plan`` raises for a bad stack file, and keeps nothing then.
    """
    path = Path(stack_file)
    directory = cache_dir()
    if directory is None:
        return _record(stack_file)
    loaded = _first_seen_code_version()
    try:
        key = plan_key(path)
    except OSError:
        return _record(stack_file)  # the recorder reports the unreadable file
    entry = _entry_path(directory, path, key)
    cached = _load(entry, key)
    if cached is not None:
        cached.source = str(path)  # as record_plan names it
        return cached
    plan = _record(stack_file)
    try:
        # Kept only if nothing changed while it ran, nor since this process loaded the code.
        if plan_key(path) == key and code_version() == loaded:
            _store(entry, key, plan)
            _prune(entry)
    except (OSError, ValueError, TypeError):
        pass  # a cache that cannot be written is only slower
    return plan


def entries(directory: Path | None = None) -> list[Path]:
    """The entries in the cache directory (for tests and benchmarks)."""
    directory = cache_dir() if directory is None else directory
    if directory is None or not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir() if re.fullmatch(r"[^.]+\.[0-9a-f]{64}\.json", path.name))
