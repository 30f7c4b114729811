"""The dependency closure of a stack's allowlists, from each ecosystem's own resolver or index.

- PyPI: pip's resolver (``pip install --dry-run --ignore-installed --report``) against the stack's PyPI
  upstream, for the analytics VM: Debian 13's CPython 3.13 on x86_64 with glibc 2.41, wheels only
  (``--only-binary :all:`` with every manylinux tag that glibc accepts). pip evaluates environment
  markers with the interpreter it runs under, so a CPython 3.13 interpreter is used when one is found;
  otherwise the running one, and the record says so. Every entry is resolved together, with its
  version specifiers, as the mirror's constrained index applies them; if they conflict, each entry is
  resolved alone with the others' specifiers as constraints.
- npm: the npm client itself (``npm install --package-lock-only --ignore-scripts``) in a temporary
  folder against the stack's npm upstream; the lockfile's packages, less optional ones built for
  another platform than Linux x64 with glibc, less those bundled inside another package's tarball.
- CRAN: the repository's ``src/contrib/PACKAGES`` index, following Depends, Imports and LinkingTo,
  leaving out R itself and the base and recommended packages (Debian's r-base ships those).

With the stack's ``minimum_release_age_days`` set, PyPI and npm versions are chosen among those
their upstream has held that long (pip's ``--uploaded-prior-to`` and npm's ``--before`` at the same
cut-off), as the mirror will serve them; CRAN's index has no upload times, so the age does not apply.

Every client runs with its own configuration files switched off, so the machine's pip or npm
settings (extra indexes, local wheels, constraints) cannot change the answer.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from packaging.markers import InvalidMarker
from packaging.requirements import InvalidRequirement, Requirement

from blueprints.package_mirror.settings import canonical_pypi, split_pypi_entry
from validation.allowlist_closure import EcosystemClosure, Package, package_key, read_record, record_path, render_record
from validation.problems import StackFileError
from validation.stack_config import load_stack
from validation.usage import UsageError

Progress = Callable[[str], None]
REGISTRY_TIMEOUT_SECONDS = 15
TOOL_TIMEOUT_SECONDS = 900
# The analytics VM (blueprints/analytics): Debian 13, CPython 3.13, glibc 2.41, x86_64.
TARGET_PYTHON = (3, 13)
TARGET_GLIBC_MINOR = 41
MANYLINUX_PLATFORMS = tuple(
    [f"manylinux_2_{minor}_x86_64" for minor in range(TARGET_GLIBC_MINOR, 4, -1)]
    + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
)
NPM_PLATFORM = {"os": "linux", "cpu": "x64", "libc": "glibc"}
# R's base packages and the recommended ones: both come with Debian's r-base, not from CRAN.
R_BASE_PACKAGES = frozenset({
    "R", "base", "compiler", "datasets", "graphics", "grDevices", "grid", "methods", "parallel", "splines",
    "stats", "stats4", "tcltk", "tools", "utils",
    "KernSmooth", "MASS", "Matrix", "boot", "class", "cluster", "codetools", "foreign", "lattice", "mgcv",
    "nlme", "nnet", "rpart", "spatial", "survival",
})
CRAN_DEPENDENCY_FIELDS = ("Depends", "Imports", "LinkingTo")


class RegistryUnreachableError(Exception):
    """The registry did not answer: the message names it and says the command needs it (exit 1)."""


class ResolutionError(Exception):
    """The registry answered but the allowlist cannot be resolved: the message says which entry (exit 1).
    ``partial`` is what the other entries need, when they could be resolved without it."""

    def __init__(self, message: str, partial: EcosystemClosure | None = None) -> None:
        super().__init__(message)
        self.partial = partial


def counted(number: int, noun: str) -> str:
    """'1 entry', '2 entries', '1 dependency', '3 packages'."""
    if number == 1:
        return f"1 {noun}"
    return f"{number} {noun[:-1]}ies" if noun.endswith("y") else f"{number} {noun}s"


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def check_reachable(what: str, url: str) -> None:
    """Any HTTP answer from ``url`` will do; no answer at all is RegistryUnreachableError."""
    request = urllib.request.Request(url, method="HEAD")  # noqa: S310 (an http(s) upstream from the stack)
    try:
        with urllib.request.urlopen(request, timeout=REGISTRY_TIMEOUT_SECONDS):  # noqa: S310
            return
    except urllib.error.HTTPError:
        return  # it answered, even if not with 200
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise RegistryUnreachableError(
            f"{what} at {url} is not reachable ({reason}): resolving needs access to it; "
            f"run where {url} answers, or point the stack's upstream at a mirror that does") from error


def _run(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, check=False,
                              timeout=TOOL_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as error:
        raise ResolutionError(f"{argv[0]} took longer than {TOOL_TIMEOUT_SECONDS} s and was stopped") from error


def _last_lines(text: str, count: int = 6) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n    ".join(lines[-count:])


# --- PyPI ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PythonTarget:
    interpreter: str
    version: tuple[int, int]

    def describe(self) -> str:
        markers = ("" if self.version == TARGET_PYTHON else
                   f"; markers evaluated for Python {self.version[0]}.{self.version[1]}, "
                   f"not {TARGET_PYTHON[0]}.{TARGET_PYTHON[1]} (no CPython "
                   f"{TARGET_PYTHON[0]}.{TARGET_PYTHON[1]} found: pass --python)")
        return (f"CPython {TARGET_PYTHON[0]}.{TARGET_PYTHON[1]} on Linux x86_64 with glibc 2.{TARGET_GLIBC_MINOR}"
                f" (Debian 13), wheels only{markers}")


def _interpreter_version(interpreter: str) -> tuple[int, int] | None:
    try:
        result = subprocess.run([interpreter, "-c", "import sys; print(*sys.version_info[:2])"],
                                capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = result.stdout.split()
    if result.returncode != 0 or len(parts) != 2 or not all(part.isdigit() for part in parts):
        return None
    return int(parts[0]), int(parts[1])


def python_target(interpreter: str | None = None) -> PythonTarget:
    """The interpreter pip runs under: ``interpreter`` if given (it must work), else python3.13 on
    PATH when it runs, else this one."""
    if interpreter:
        version = _interpreter_version(interpreter)
        if version is None:
            raise UsageError(f"--python {interpreter!r} does not run as a Python interpreter; "
                             "give the path of a CPython 3.13 (the analytics VM's Python)")
        return PythonTarget(interpreter, version)
    found = shutil.which(f"python{TARGET_PYTHON[0]}.{TARGET_PYTHON[1]}")
    if found and _interpreter_version(found) == TARGET_PYTHON:
        return PythonTarget(found, TARGET_PYTHON)
    return PythonTarget(sys.executable, (sys.version_info[0], sys.version_info[1]))


def _pip_environment() -> dict[str, str]:
    # PIP_CONFIG_FILE=/dev/null makes pip skip every configuration file (global, user, site).
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith("PIP_")}
    env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"})
    return env


def release_cutoff(days: int, now: datetime | None = None) -> str | None:
    """The moment a release must predate to be served under a minimum age of ``days`` (None: no age),
    as an ISO 8601 UTC time both pip and npm read."""
    if days <= 0:
        return None
    moment = (now or datetime.now(UTC)) - timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _aged(assumed: str, cutoff: str | None) -> str:
    return f"{assumed}; only versions published before {cutoff} (minimum release age)" if cutoff else assumed


def _pip_report(requirements: list[str], constraints: list[str], index_url: str, target: PythonTarget,
                workdir: Path, cutoff: str | None = None) -> tuple[dict[str, Any] | None, str]:
    report = workdir / "report.json"
    report.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "pip", "--python", target.interpreter, "install", "--dry-run",
            "--ignore-installed", "--quiet", "--report", str(report), "--index-url", index_url,
            "--only-binary", ":all:", "--python-version", f"{TARGET_PYTHON[0]}.{TARGET_PYTHON[1]}",
            "--implementation", "cp", "--abi", f"cp{TARGET_PYTHON[0]}{TARGET_PYTHON[1]}"]
    for platform in MANYLINUX_PLATFORMS:
        argv += ["--platform", platform]
    if cutoff:
        argv += ["--uploaded-prior-to", cutoff]
    if constraints:
        constraints_file = workdir / "constraints.txt"
        constraints_file.write_text("\n".join(constraints) + "\n", encoding="utf-8")
        argv += ["--constraint", str(constraints_file)]
    result = _run([*argv, "--", *requirements], _pip_environment(), cwd=workdir)
    if result.returncode != 0 or not report.is_file():
        return None, result.stderr + result.stdout
    return json.loads(report.read_text(encoding="utf-8")), ""


def _requires(item: dict[str, Any]) -> list[Requirement]:
    requirements = []
    for text in item.get("metadata", {}).get("requires_dist") or []:
        try:
            requirements.append(Requirement(text))
        except (InvalidRequirement, InvalidMarker):
            continue  # pip skipped it too: an unreadable requirement is not installed
    return requirements


def pypi_needs(report: dict[str, Any], roots: dict[str, str]) -> dict[str, tuple[Package, ...]]:
    """Per entry (canonical name -> entry text), the installed packages its requirements reach,
    walking each wheel's Requires-Dist with the markers of the environment pip reported."""
    items = {canonical_pypi(item["metadata"]["name"]): item for item in report.get("install", [])}
    environment = dict(report.get("environment") or {})

    def applies(requirement: Requirement, extras: frozenset[str]) -> bool:
        if requirement.marker is None:
            return True
        return any(requirement.marker.evaluate({**environment, "extra": extra}) for extra in {"", *extras})

    needs: dict[str, tuple[Package, ...]] = {}
    for root, entry in roots.items():
        seen: set[tuple[str, frozenset[str]]] = set()
        reached: set[str] = set()
        stack = [(root, frozenset[str]())]
        while stack:
            name, extras = stack.pop()
            if (name, extras) in seen or name not in items:
                continue
            seen.add((name, extras))
            reached.add(name)
            for requirement in _requires(items[name]):
                if applies(requirement, extras):
                    stack.append((canonical_pypi(requirement.name), frozenset(requirement.extras)))
        reached.discard(root)
        needs[entry] = tuple(sorted(Package(items[name]["metadata"]["name"], items[name]["metadata"]["version"])
                                    for name in reached))
    return needs


def resolve_pypi(entries: list[str], index_url: str, target: PythonTarget,
                 progress: Progress | None = None, cutoff: str | None = None) -> EcosystemClosure:
    check_reachable("the PyPI index", index_url.rstrip("/") + "/")
    roots = {canonical_pypi(split_pypi_entry(entry)[0]): entry for entry in entries}
    constraints = [entry for entry in entries if split_pypi_entry(entry)[1]]
    with tempfile.TemporaryDirectory(prefix="allowlist-pypi-") as folder:
        workdir = Path(folder)
        _say(progress, f"pypi: pip resolving {counted(len(entries), 'entry')} together against {index_url}")
        report, errors = _pip_report(list(entries), [], index_url, target, workdir, cutoff)
        if report is not None:
            return EcosystemClosure("pypi", _aged(target.describe(), cutoff), pypi_needs(report, roots))
        if "ResolutionImpossible" not in errors and "conflict" not in errors.lower():
            raise ResolutionError(f"pip could not resolve the PyPI allowlist for {target.describe()}:\n    "
                                  + _last_lines(errors))
        _say(progress, "pypi: the entries conflict when installed together; resolving each alone")
        needs: dict[str, tuple[Package, ...]] = {}
        for number, entry in enumerate(entries, 1):
            _say(progress, f"pypi: [{number}/{len(entries)}] {entry}")
            others = [constraint for constraint in constraints if constraint != entry]
            report, errors = _pip_report([entry], others, index_url, target, workdir, cutoff)
            if report is None:
                raise ResolutionError(f"pip could not resolve the PyPI entry {entry!r} for "
                                      f"{target.describe()}:\n    " + _last_lines(errors))
            root = canonical_pypi(split_pypi_entry(entry)[0])
            needs.update(pypi_needs(report, {root: entry}))
    return EcosystemClosure("pypi", _aged(target.describe(), cutoff), needs)


# --- npm -------------------------------------------------------------------------------------------

def _npm_matches_platform(package: dict[str, Any]) -> bool:
    """npm's rule for os/cpu/libc lists: any plain name must match, a "!name" must not."""
    for key, wanted in NPM_PLATFORM.items():
        values = package.get(key)
        if not values:
            continue
        values = [values] if isinstance(values, str) else list(values)
        if f"!{wanted}" in values:
            return False
        allowed = [value for value in values if not value.startswith("!")]
        if allowed and wanted not in allowed:
            return False
    return True


def _npm_locate(packages: dict[str, Any], origin: str, name: str) -> str | None:
    """Node's lookup: the nearest node_modules/<name> from ``origin`` up to the top."""
    place = origin
    while True:
        candidate = f"{place}/node_modules/{name}" if place else f"node_modules/{name}"
        if candidate in packages:
            return candidate
        if not place:
            return None
        place = place.rsplit("/node_modules/", 1)[0] if "/node_modules/" in place else ""


def _npm_name(path: str, package: dict[str, Any]) -> str:
    return str(package.get("name") or path.rsplit("node_modules/", 1)[-1])


def npm_needs(lock: dict[str, Any], entries: list[str]) -> dict[str, tuple[Package, ...]]:
    """Per entry, the packages the lockfile installs for it on Linux x64 (glibc), fetched from the registry."""
    packages: dict[str, Any] = lock.get("packages") or {}
    needs: dict[str, tuple[Package, ...]] = {}
    for entry in entries:
        start = _npm_locate(packages, "", entry)
        reached: set[str] = set()
        stack = [start] if start else []
        while stack:
            path = stack.pop()
            if path in reached:
                continue
            reached.add(path)
            package = packages[path]
            wanted = {**package.get("dependencies", {}), **package.get("optionalDependencies", {}),
                      **package.get("peerDependencies", {})}
            for name in wanted:
                found = _npm_locate(packages, path, name)
                if found and _npm_matches_platform(packages[found]):
                    stack.append(found)
        needs[entry] = tuple(sorted({Package(_npm_name(path, packages[path]), str(packages[path].get("version", "")))
                                     for path in reached
                                     if path != start and not packages[path].get("inBundle")}))
    return needs


def resolve_npm(entries: list[str], registry: str, progress: Progress | None = None,
                cutoff: str | None = None) -> EcosystemClosure:
    npm = shutil.which("npm")
    if npm is None:
        raise UsageError("resolving the npm allowlist needs the npm client on PATH (Debian package npm)")
    registry = registry.rstrip("/") + "/"
    check_reachable("the npm registry", registry)
    with tempfile.TemporaryDirectory(prefix="allowlist-npm-") as folder:
        workdir = Path(folder)
        manifest = {"name": "allowlist-closure", "version": "0.0.0", "private": True,
                    "dependencies": dict.fromkeys(entries, "*")}
        (workdir / "package.json").write_text(json.dumps(manifest), encoding="utf-8")
        # Empty user and global files: the machine's npm settings must not change the answer.
        for name in ("user.npmrc", "global.npmrc"):
            (workdir / name).write_text("", encoding="utf-8")
        env = {key: value for key, value in os.environ.items() if not key.lower().startswith("npm_config_")}
        env["npm_config_cache"] = str(workdir / "cache")
        _say(progress, f"npm: npm resolving {counted(len(entries), 'entry')} against {registry}")
        result = _run([npm, "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund",
                       "--update-notifier=false", "--userconfig", str(workdir / "user.npmrc"),
                       "--globalconfig", str(workdir / "global.npmrc"), "--registry", registry,
                       *(["--before", cutoff] if cutoff else [])], env, cwd=workdir)
        lockfile = workdir / "package-lock.json"
        if result.returncode != 0 or not lockfile.is_file():
            raise ResolutionError("npm could not resolve the npm allowlist:\n    "
                                  + _last_lines(result.stderr + result.stdout))
        lock = json.loads(lockfile.read_text(encoding="utf-8"))
    return EcosystemClosure("npm", _aged("npm's own resolution on Linux x64 (glibc); install scripts not run",
                                         cutoff), npm_needs(lock, entries))


# --- CRAN ------------------------------------------------------------------------------------------

def parse_packages_index(text: str) -> dict[str, dict[str, str]]:
    """A Debian-control-style PACKAGES index: one record per package, keyed by its name."""
    records: dict[str, dict[str, str]] = {}
    for block in re.split(r"\n\s*\n", text):
        record: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1].isspace() and key:
                record[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip()
                record[key] = value.strip()
        if "Package" in record:
            records[record["Package"]] = record
    return records


def cran_dependencies(record: dict[str, str]) -> list[str]:
    names = []
    for field_name in CRAN_DEPENDENCY_FIELDS:
        for part in record.get(field_name, "").split(","):
            name = part.split("(")[0].strip()
            if name and name not in R_BASE_PACKAGES:
                names.append(name)
    return names


def _fetch_index(repository: str) -> str:
    base = repository.rstrip("/") + "/src/contrib/"
    last: Exception | None = None
    for name in ("PACKAGES.gz", "PACKAGES"):
        if base.startswith("file:"):  # a CRAN-layout folder on this machine
            path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(base + name).path))
            if not path.is_file():
                last = FileNotFoundError(f"no {path}")
                continue
            data = path.read_bytes()
            return (gzip.decompress(data) if name.endswith(".gz") else data).decode("utf-8", "replace")
        try:
            with urllib.request.urlopen(base + name, timeout=REGISTRY_TIMEOUT_SECONDS) as response:  # noqa: S310
                data = response.read()
        except urllib.error.HTTPError as error:
            last = error
            continue  # try the uncompressed index
        except (urllib.error.URLError, OSError) as error:
            raise RegistryUnreachableError(
                f"the CRAN repository at {repository} is not reachable ({getattr(error, 'reason', error)}): "
                f"resolving needs its {base}PACKAGES index; run where it answers, or point "
                "roles.package_mirror.upstreams.cran at a CRAN mirror that does") from error
        return (gzip.decompress(data) if name.endswith(".gz") else data).decode("utf-8", "replace")
    raise ResolutionError(f"the CRAN repository at {repository} has no {base}PACKAGES index ({last})")


def cran_needs(index: dict[str, dict[str, str]], entries: list[str]
               ) -> tuple[dict[str, tuple[Package, ...]], tuple[str, ...]]:
    """Per entry, the packages its Depends, Imports and LinkingTo reach; and notes on names the index lacks."""
    unknown = [entry for entry in entries if entry not in index]
    if unknown:
        raise ResolutionError(f"the CRAN index has no package {', '.join(map(repr, unknown))} "
                              "(CRAN names are case-sensitive)")
    notes: set[str] = set()
    needs: dict[str, tuple[Package, ...]] = {}
    for entry in entries:
        reached: set[str] = set()
        stack = [entry]
        while stack:
            name = stack.pop()
            if name in reached:
                continue
            if name not in index:
                notes.add(f"cran: {name} is needed but not in the repository's index (another repository?)")
                continue
            reached.add(name)
            stack.extend(cran_dependencies(index[name]))
        reached.discard(entry)
        needs[entry] = tuple(sorted(Package(name, index[name].get("Version", "")) for name in reached))
    return needs, tuple(sorted(notes))


def _shown_repository(repository: str) -> str:
    """The repository as a closure record names it: a folder inside the working directory by its relative
    path, so a committed record does not carry one machine's checkout path."""
    if not repository.startswith("file://"):
        return repository
    folder = Path(urllib.parse.urlsplit(repository).path).resolve()
    return str(folder.relative_to(Path.cwd().resolve())) if folder.is_relative_to(Path.cwd().resolve()) else repository


def resolve_cran(entries: list[str], repository: str, progress: Progress | None = None) -> EcosystemClosure:
    _say(progress, f"cran: reading the PACKAGES index of {repository}")
    index = parse_packages_index(_fetch_index(repository))
    _say(progress, f"cran: {len(index)} packages in the index; following Depends, Imports and LinkingTo")
    assumed = (f"the PACKAGES index of {_shown_repository(repository)} (Depends, Imports, LinkingTo); "
               "R's base and recommended packages come with Debian's r-base")
    unknown = [entry for entry in entries if entry not in index]
    needs, notes = cran_needs(index, [entry for entry in entries if entry in index])
    closure = EcosystemClosure("cran", assumed, needs, notes)
    if unknown:
        # The others are still worth recording: one unknown name should not hide what they need.
        raise ResolutionError(f"the CRAN index has no package {', '.join(map(repr, unknown))} "
                              "(CRAN names are case-sensitive); the other entries were resolved",
                              closure if needs else None)
    return closure


# --- A stack ---------------------------------------------------------------------------------------

@dataclass
class StackResolution:
    stack_file: Path
    allowlists: dict[str, list[str]]
    allowlists_file: str | None = None  # roles.package_mirror.allowlists_file, where additions go
    closures: dict[str, EcosystemClosure] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # ecosystem -> why it was not resolved
    seconds: dict[str, float] = field(default_factory=dict)

    def additions(self) -> dict[str, list[Package]]:
        """Per ecosystem, what the allowlist lacks of its closure: one package per name, by name."""
        result: dict[str, list[Package]] = {}
        for ecosystem, closure in self.closures.items():
            allowed = {package_key(ecosystem, entry) for entry in self.allowlists.get(ecosystem, [])}
            chosen: dict[str, Package] = {}
            for package in closure.packages():
                key = package_key(ecosystem, package.name)
                if key not in allowed:
                    chosen.setdefault(key, package)
            if chosen:
                result[ecosystem] = sorted(chosen.values(), key=lambda package: package.name.lower())
        return result


def stack_allowlists(stack_file: Path) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The stack's package mirror settings and its allowlists with the allowlists file's entries."""
    config = load_stack(stack_file)
    mirror = config["roles"].get("package_mirror")
    if not mirror:
        raise UsageError(f"{stack_file}: roles.package_mirror is not set, so there are no allowlists to resolve")
    return mirror, {ecosystem: list(entries) for ecosystem, entries in mirror["allowlists"].items() if entries}


def resolve_stack(stack_file: Path, ecosystems: Iterable[str] | None = None, python: str | None = None,
                  progress: Progress | None = None, upstreams: dict[str, str] | None = None) -> StackResolution:
    """Resolve each chosen ecosystem's allowlist; an unreachable or failing one is kept in ``failures``.
    ``upstreams`` replaces the stack's upstreams by ecosystem (a closer mirror, a CRAN-layout stand-in)."""
    mirror, allowlists = stack_allowlists(stack_file)
    resolution = StackResolution(stack_file, allowlists, mirror.get("allowlists_file"))
    chosen = [ecosystem for ecosystem in (ecosystems or ("pypi", "npm", "cran")) if allowlists.get(ecosystem)]
    upstreams = {**mirror["upstreams"], **(upstreams or {})}
    # Chosen before any work, so a --python that does not run is refused at once.
    target = python_target(python) if "pypi" in chosen else None
    cutoff = release_cutoff(int(mirror.get("minimum_release_age_days") or 0))
    for ecosystem in chosen:
        started = time.monotonic()
        entries = allowlists[ecosystem]
        try:
            if ecosystem == "pypi":
                closure = resolve_pypi(entries, upstreams["pypi"], target or python_target(python), progress,
                                       cutoff)
            elif ecosystem == "npm":
                closure = resolve_npm(entries, upstreams["npm"], progress, cutoff)
            else:
                closure = resolve_cran(entries, upstreams["cran"], progress)
        except (RegistryUnreachableError, ResolutionError) as error:
            resolution.failures[ecosystem] = str(error)
            partial = getattr(error, "partial", None)
            _say(progress, f"{ecosystem}: not resolved" + (", but for the entries it knows" if partial else ""))
            if partial is None:
                continue
            closure = partial
        if ecosystem == "cran" and cutoff:
            closure = replace(closure, notes=(*closure.notes, "cran: the minimum release age is not applied: CRAN's "
                                              "index gives no upload times, and the mirror does not hold CRAN back"))
        resolution.seconds[ecosystem] = time.monotonic() - started
        resolution.closures[ecosystem] = closure
        _say(progress, f"{ecosystem}: {counted(len(closure.packages()), 'package')} in the closure "
                       f"({resolution.seconds[ecosystem]:.1f} s)")
    return resolution


# --- Writing the additions back, keeping the file's comments and layout -----------------------------

def _yaml_token(name: str) -> str:
    """A plain scalar when YAML reads it back as the same text, else double-quoted (e.g. '@scope/x')."""
    try:
        plain = yaml.safe_load(f"[{name}]") == [name]
    except yaml.YAMLError:
        plain = False
    return name if plain else json.dumps(name)


def _value_node(root: yaml.Node | None, keys: list[str]) -> tuple[yaml.Node | None, yaml.Node | None]:
    """The node at ``keys`` and its parent mapping (None where the path stops)."""
    node, parent = root, None
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return None, None
        parent = node
        node = next((value for key_node, value in node.value
                     if isinstance(key_node, yaml.ScalarNode) and key_node.value == key), None)
        if node is None:
            return None, parent
    return node, parent


def _flow_insert(text: str, node: yaml.SequenceNode, tokens: list[str], width: int) -> tuple[int, int, str]:
    close = node.end_mark.index - 1  # the ']'
    indent = " " * (node.start_mark.column + 1)
    column = close - (text.rfind("\n", 0, close) + 1)
    pieces: list[str] = []
    for token in tokens:
        if not node.value and not pieces:
            piece = token
        elif column + 2 + len(token) + 1 <= width:  # ", token]" still fits on the line
            piece = f", {token}"
        else:
            pieces.append(f",\n{indent}{token}")
            column = len(indent) + len(token)
            continue
        pieces.append(piece)
        column += len(piece)
    return close, close, "".join(pieces)


def _block_insert(text: str, node: yaml.SequenceNode, tokens: list[str]) -> tuple[int, int, str]:
    line_end = text.find("\n", node.value[-1].end_mark.index)
    lines = "".join(f"{' ' * node.start_mark.column}- {token}\n" for token in tokens)
    if line_end == -1:
        return len(text), len(text), "\n" + lines
    return line_end + 1, line_end + 1, lines


def add_to_yaml_lists(text: str, prefix: list[str], additions: dict[str, list[str]], width: int = 100) -> str:
    """``text`` with each list at ``prefix + [ecosystem]`` extended by the names in ``additions``,
    every other character kept. A flow list ``[a, b]`` grows in place (wrapped under its first item),
    a block list gets ``- name`` lines under its last item, and an empty value becomes a flow list.
    At the top level (an allowlists file) a missing key is added at the end."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    edits: list[tuple[int, int, str]] = []
    for ecosystem, names in additions.items():
        if not names:
            continue
        tokens = [_yaml_token(name) for name in names]
        node, parent = _value_node(root, [*prefix, ecosystem])
        if isinstance(node, yaml.SequenceNode) and node.flow_style:
            edits.append(_flow_insert(text, node, tokens, width))
        elif isinstance(node, yaml.SequenceNode) and node.value:
            edits.append(_block_insert(text, node, tokens))
        elif isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            start, end = node.start_mark.index, node.end_mark.index
            edits.append((start, end, f"{' ' if start == end else ''}[{', '.join(tokens)}]"))
        elif node is None and not prefix and (root is None or parent is root):
            column = root.start_mark.column if root is not None else 0
            ending = "" if not text or text.endswith("\n") else "\n"
            edits.append((len(text), len(text), f"{ending}{' ' * column}{ecosystem}: [{', '.join(tokens)}]\n"))
        else:
            where = ".".join([*prefix, ecosystem])
            raise UsageError(f"{where} is not a list this command can extend; add {', '.join(names)} by hand")
    for start, end, inserted in sorted(edits, reverse=True):
        text = text[:start] + inserted + text[end:]
    return text


def write_additions(resolution: StackResolution) -> Path | None:
    """Add what the allowlists lack to the allowlists file if the stack names one, else to the stack
    file itself; the stack must still validate, or the file is put back and ResolutionError raised."""
    additions = {ecosystem: [package.name for package in packages]
                 for ecosystem, packages in resolution.additions().items()}
    if not additions:
        return None
    stack_file = resolution.stack_file
    named = resolution.allowlists_file
    target = stack_file.parent / named if named else stack_file
    prefix = [] if named else ["roles", "package_mirror", "allowlists"]
    original = target.read_text(encoding="utf-8")
    updated = add_to_yaml_lists(original, prefix, additions)
    target.write_text(updated, encoding="utf-8")
    try:
        _, now = stack_allowlists(stack_file)
    except StackFileError as error:
        target.write_text(original, encoding="utf-8")
        raise ResolutionError(f"adding the closure would make {stack_file} invalid, so {target} is unchanged:\n"
                              + error.report()) from error
    lacking = {ecosystem: [name for name in names
                           if package_key(ecosystem, name) not in {package_key(ecosystem, entry)
                                                                   for entry in now.get(ecosystem, [])}]
               for ecosystem, names in additions.items()}
    if any(lacking.values()):
        target.write_text(original, encoding="utf-8")
        raise ResolutionError(f"{target} did not take the additions as expected ({lacking}); it is unchanged")
    return target


def write_record(resolution: StackResolution, resolved_on: str | None = None) -> Path:
    """Write the stack's closure record, keeping the recorded ecosystems this run did not resolve."""
    path = record_path(resolution.stack_file)
    closures: dict[str, EcosystemClosure] = {}
    if path.is_file():
        try:
            closures = read_record(path)
        except ValueError:
            closures = {}  # unreadable: this run's results replace it
    closures.update(resolution.closures)
    path.parent.mkdir(parents=True, exist_ok=True)
    day = resolved_on or time.strftime("%Y-%m-%d", time.gmtime())
    path.write_text(render_record(resolution.stack_file.name, closures, day), encoding="utf-8")
    return path
