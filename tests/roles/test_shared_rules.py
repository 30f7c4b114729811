"""One source for each rule that both the stack validator and a VM program apply, compared whole.

The VM programs run on Debian's python3 and cannot import the project, so each keeps its own
rules. The stack file must refuse exactly what they refuse. These tests read each program as the
VM receives it (from the rendered user-data, decoded), parse it with ``ast`` without running it,
and compare its constants with what validation.schema.stack_schema() and
validation.semantic_checks use: whole sets and whole patterns, field by field.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from blueprints.package_mirror import settings as mirror_settings
from blueprints.package_mirror.settings import URL_PATTERN
from blueprints.roles import registered, role
from blueprints.settings_fields import (
    ABSOLUTE_PATH_PATTERN,
    DISPLAY_NAME_PATTERN,
    SINGLE_LINE_PATTERN,
    VM_SIZE_PATTERN,
)
from blueprints.topology import plan_machines
from blueprints.vm_settings import machine_files
from blueprints.vm_tags import STORAGE_ACCOUNT_TAG, platform_tags
from tests.conftest import EXAMPLE
from validation import semantic_checks
from validation.schema import stack_schema
from validation.stack_config import validate_document
from validation.yaml_source import read_stack_source

GIT_PROGRAM = "/usr/local/sbin/git-server"
MIRROR_PROGRAM = "/usr/local/sbin/mirror-allowlist"
MIRROR_SETTINGS = "/etc/trust-blueprints/mirror/settings.json"
SECRETS_DIR = PurePosixPath("/etc/trust-blueprints/secrets")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILjONV4zD7ltOVOXqqugk4Obc41KkgphNV3YLv0N9tr+ a@example.nhs.uk"


# ---------------------------------------------------------------------------------------------
# Reading a program's constants without running it


@dataclass(frozen=True)
class Compiled:
    """``re.compile(pattern)`` as written in the program."""

    pattern: str


class _NotConstantError(Exception):
    pass


def _value(node: ast.expr, known: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in known:
            raise _NotConstantError(node.id)
        return known[node.id]
    if isinstance(node, ast.Set):
        return frozenset(_value(item, known) for item in node.elts)
    if isinstance(node, ast.Tuple):
        return tuple(_value(item, known) for item in node.elts)
    if isinstance(node, ast.List):
        return [_value(item, known) for item in node.elts]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _value(node.left, known), _value(node.right, known)
        if isinstance(left, str) and isinstance(right, str):
            return left + right
    if isinstance(node, ast.Call) and not node.keywords and len(node.args) == 1:
        function = ast.unparse(node.func)
        argument = _value(node.args[0], known)
        if function == "re.compile" and isinstance(argument, str):
            return Compiled(argument)
        if function == "Path" and isinstance(argument, str):
            return PurePosixPath(argument)
    raise _NotConstantError(ast.unparse(node))


def program_constants(text: str) -> dict[str, Any]:
    """Every module-level NAME = <literal> of a program (names, sets, tuples, re.compile, Path)."""
    known: dict[str, Any] = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        else:
            continue
        try:
            known[target] = _value(value, known)
        except _NotConstantError:
            known.pop(target, None)
    return known


def _function(text: str, name: str) -> ast.FunctionDef:
    found = [node for node in ast.parse(text).body if isinstance(node, ast.FunctionDef) and node.name == name]
    assert len(found) == 1, f"the program has no function {name}()"
    return found[0]


def _inline_patterns(function: ast.FunctionDef) -> list[str]:
    """Regex literals written inline in a function: re.match/fullmatch/search("...", ...)."""
    return [node.args[0].value for node in ast.walk(function)
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("re.match", "re.fullmatch", "re.search")
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)]


# ---------------------------------------------------------------------------------------------
# The stack schema, read where each field is


def _field(path: str) -> dict[str, Any]:
    """A field of stack_schema() by dotted path; ``*`` steps into a list's items."""
    node: dict[str, Any] = {"type": "dict", "schema": stack_schema()}
    for part in path.split("."):
        node = node["schema"] if part == "*" else node["schema"][part]
    return node


def _regexes(path: str) -> dict[str, str]:
    """Every field under ``path`` that has a regex rule: its path below ``path`` -> the pattern."""
    found: dict[str, str] = {}

    def walk(node: dict[str, Any], where: str) -> None:
        if "regex" in node:
            found[where] = node["regex"]
        inner = node.get("schema")
        if node.get("type") == "list" and isinstance(inner, dict):
            walk(inner, f"{where}.*" if where else "*")
        elif isinstance(inner, dict):
            for key, child in inner.items():
                walk(child, f"{where}.{key}" if where else key)

    walk(_field(path), "")
    return found


def _machine(config: dict[str, Any], role_name: str):
    return next(m for m in plan_machines(config) if m.role == role_name)


def _files(config: dict[str, Any], role_name: str) -> dict[str, str]:
    """Every file the role's machine is given: its custom data's and its settings' (user data)."""
    return machine_files(config, _machine(config, role_name))


@pytest.fixture(scope="module")
def git_text(example_config) -> str:
    return _files(example_config, "git_server")[GIT_PROGRAM]


@pytest.fixture(scope="module")
def git(git_text) -> dict[str, Any]:
    return program_constants(git_text)


@pytest.fixture(scope="module")
def mirror_files(example_config) -> dict[str, str]:
    return _files(example_config, "package_mirror")


@pytest.fixture(scope="module")
def mirror(mirror_files) -> dict[str, Any]:
    return program_constants(mirror_files[MIRROR_PROGRAM])


@pytest.fixture(scope="module")
def mirror_vm_settings(mirror_files) -> dict[str, Any]:
    return json.loads(mirror_files[MIRROR_SETTINGS])


def test_the_programs_are_read_as_the_vms_get_them(git_text, git, mirror_files, mirror):
    # Decoded from gz+b64 out of the user-data, parsed whole, with the constants these tests compare.
    assert git_text.startswith("#!/usr/bin/python3\n")
    assert mirror_files[MIRROR_PROGRAM].startswith("#!/usr/bin/python3\n")
    assert {"RESERVED_ACCOUNTS", "RESERVED_REPOSITORIES", "BACKUP_TARGETS", "ACCOUNT", "MEMBER", "REPOSITORY",
            "TIME", "KEY_TYPES", "PACKAGE_REQUESTS"} <= set(git)
    assert {"ECOSYSTEMS", "UPSTREAM_PATTERN", "SPECIFIER_PATTERN", "MAX_ENTRIES"} <= set(mirror)


# ---------------------------------------------------------------------------------------------
# The Git server (blueprints/git_server/server_commands.py)

GIT = "roles.git_server"


def test_every_git_server_name_field_uses_the_programs_pattern(git):
    account, member, repository = git["ACCOUNT"].pattern, git["MEMBER"].pattern, git["REPOSITORY"].pattern
    assert _regexes(GIT) == {
        "vm_size": VM_SIZE_PATTERN,
        "teams.*.name": account,
        "teams.*.description": DISPLAY_NAME_PATTERN,
        "users.*.name": account,
        "users.*.ssh_public_key": SINGLE_LINE_PATTERN,
        "users.*.teams.*": account,
        "repositories.*.name": repository,
        "repositories.*.owner_team": account,
        "repositories.*.description": DISPLAY_NAME_PATTERN,
        "repositories.*.maintainers.*": member,
        "repositories.*.writers.*": member,
        "repositories.*.readers.*": member,
        "backup.directory": ABSOLUTE_PATH_PATTERN,
        "backup.time": git["TIME"].pattern,
    }


def test_the_backup_targets_are_the_programs(git):
    assert tuple(_field(f"{GIT}.backup.target")["allowed"]) == git["BACKUP_TARGETS"]
    assert _field(f"{GIT}.backup.target")["default"] in git["BACKUP_TARGETS"]


def test_the_backup_directory_and_generations_match_the_programs_checks(git_text):
    problems = _function(git_text, "_problems")
    assert _inline_patterns(problems) == [_field(f"{GIT}.backup.directory")["regex"]]
    # `1 <= generations <= 90` in the program; min and max in the schema.
    bounds = [(node.left.value, node.comparators[1].value) for node in ast.walk(problems)
              if isinstance(node, ast.Compare) and len(node.comparators) == 2
              and ast.unparse(node.comparators[0]) == "generations"]
    generations = _field(f"{GIT}.backup_generations")
    assert bounds == [(generations["min"], generations["max"])]


def test_the_reserved_names_are_the_programs(git):
    assert frozenset(semantic_checks.GIT_RESERVED_ACCOUNTS) == git["RESERVED_ACCOUNTS"]
    assert frozenset(semantic_checks.GIT_RESERVED_REPOSITORIES) == git["RESERVED_REPOSITORIES"]
    assert git["PACKAGE_REQUESTS"] == semantic_checks.PACKAGE_REQUESTS_REPOSITORY
    assert git["PACKAGE_REQUESTS"] not in git["RESERVED_REPOSITORIES"]


def _git_document() -> dict[str, Any]:
    document, _ = read_stack_source(EXAMPLE)
    return copy.deepcopy(document)


def test_the_stack_refuses_exactly_the_programs_reserved_accounts(git):
    reserved = git["RESERVED_ACCOUNTS"]
    others = {"priya.shah", "gitolite", "admin", "nobody", "git-admin", "server", "mirror"}
    document = _git_document()
    document["roles"]["git_server"]["users"] = [
        {"name": name, "ssh_public_key": KEY, "teams": []} for name in sorted(reserved | others)]
    document["roles"]["git_server"]["repositories"] = []
    _, problems = validate_document(document)
    refused = {p.value for p in problems if p.allowed == "is a name the Git server keeps for itself"}
    assert refused == reserved


def test_the_stack_refuses_exactly_the_programs_reserved_repositories(git):
    reserved = git["RESERVED_REPOSITORIES"]
    others = {git["PACKAGE_REQUESTS"], "waiting-times", "gitolite", "testing-2", "admin"}
    document = _git_document()
    document["roles"]["git_server"]["repositories"] = [
        {"name": name, "owner_team": "platform"} for name in sorted(reserved | others)]
    _, problems = validate_document(document)
    refused = {p.value for p in problems if p.allowed == "is reserved by the Git server"}
    assert refused == reserved


def test_the_names_the_program_refuses_inline_are_refused_by_the_stack(git_text):
    problems = _function(git_text, "_problems")
    # `name == "all"` (teams) and `name.endswith(".git")` (repositories) in the program.
    equal_to = {node.comparators[0].value for node in ast.walk(problems)
                if isinstance(node, ast.Compare) and ast.unparse(node.left) == "name"
                and isinstance(node.ops[0], ast.Eq) and isinstance(node.comparators[0], ast.Constant)}
    suffixes = {node.args[0].value for node in ast.walk(problems)
                if isinstance(node, ast.Call) and ast.unparse(node.func) == "name.endswith"}
    assert (equal_to, suffixes) == ({"all"}, {".git"})
    document = _git_document()
    git = document["roles"]["git_server"]
    git["teams"] += [{"name": team} for team in sorted(equal_to | {"allstaff"})]
    git["repositories"] += [{"name": f"tools{suffix}", "owner_team": "platform"} for suffix in sorted(suffixes)]
    git["repositories"] += [{"name": "tools.gitx", "owner_team": "platform"}]
    _, problems_found = validate_document(document)
    refused = {(p.path.rsplit("[", 1)[0], p.value) for p in problems_found if "reserved" in p.allowed}
    assert refused == {(f"{GIT}.teams", name) for name in equal_to} | {
        (f"{GIT}.repositories", f"tools{suffix}") for suffix in suffixes}


def test_ssh_key_types_are_the_programs(git):
    assert frozenset(semantic_checks.KEY_TYPES) == git["KEY_TYPES"]


def test_the_mirror_pulls_the_repository_and_key_the_git_server_serves(git, mirror, mirror_vm_settings):
    assert mirror_vm_settings["allowlist_repository"] == f"git@git.exnhs-dev.internal:{git['PACKAGE_REQUESTS']}"
    shared = {spec.name for spec in role("git_server").secrets} & {spec.name for spec in role("package_mirror").secrets}
    assert git["MIRROR_READER_KEY"] == SECRETS_DIR / f"{mirror['REQUESTS_KEY'].name}.pub"
    assert mirror["REQUESTS_KEY"].parent == SECRETS_DIR
    assert {mirror["REQUESTS_KEY"].name} == shared


def test_the_blob_names_the_stack_hands_the_vm_pass_the_programs_checks(example_config, git):
    settings = yaml.safe_load(_files(example_config, "git_server")["/etc/trust-blueprints/git-server.yaml"])
    assert re.fullmatch(git["BLOB_CONTAINER"].pattern, settings["backup"]["azure_blob"]["container"])


def test_the_account_name_the_program_tags_the_vm_with_passes_the_programs_check(example_config, git):
    tags = platform_tags(example_config, next(m for m in plan_machines(example_config) if m.role == "git_server"),
                         "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    assert git["STORAGE_ACCOUNT_TAG"] == STORAGE_ACCOUNT_TAG
    assert re.fullmatch(git["STORAGE_ACCOUNT"].pattern, tags[STORAGE_ACCOUNT_TAG])


# ---------------------------------------------------------------------------------------------
# The package mirror (blueprints/package_mirror/files/mirror-allowlist.py)

MIRROR = "roles.package_mirror"
# The schema's PyPI pattern is the program's name pattern followed by the program's specifier,
# exactly (blueprints/package_mirror/settings.py reads the specifier from the program).


@pytest.fixture(scope="module")
def mirror_text_limit(mirror_files) -> int:
    """The program's `len(name) > N` in check_allowlists."""
    check = _function(mirror_files[MIRROR_PROGRAM], "check_allowlists")
    limits = [node.comparators[0].value for node in ast.walk(check)
              if isinstance(node, ast.Compare) and ast.unparse(node.left) == "len(name)"
              and isinstance(node.ops[0], ast.Gt)]
    assert len(limits) == 1, limits
    return limits[0]


def test_the_mirror_gets_the_schemas_package_name_patterns(mirror_vm_settings):
    names = mirror_vm_settings["name_patterns"]
    schema = _regexes(f"{MIRROR}.allowlists")
    assert set(schema) == {"pypi.*", "npm.*", "cran.*"}
    assert set(names) == {"pypi", "npm", "cran"}
    assert names["npm"] == schema["npm.*"]
    assert names["cran"] == schema["cran.*"]
    # PyPI entries may carry version specifiers: the schema's pattern is the name's, then those.
    assert schema["pypi.*"].startswith(names["pypi"].removesuffix("$") + "(")
    assert schema["pypi.*"].endswith(")?$")


def test_the_pypi_entry_pattern_is_the_programs_name_and_specifier(mirror, mirror_vm_settings):
    specifier = mirror["SPECIFIER_PATTERN"].pattern
    name = mirror_vm_settings["name_patterns"]["pypi"]
    assert _field(f"{MIRROR}.allowlists.pypi.*")["regex"] == name.removesuffix("$") + "(" + specifier + ")?$"


def test_the_allowlist_sizes_are_the_programs(mirror, mirror_text_limit):
    for ecosystem in mirror["ECOSYSTEMS"]:
        field = _field(f"{MIRROR}.allowlists.{ecosystem}")
        assert field["maxlength"] == mirror["MAX_ENTRIES"], ecosystem
        # The same number, though the program applies it to the name and the schema to the entry.
        assert field["schema"]["maxlength"] == mirror_text_limit, ecosystem


def test_the_upstreams_follow_the_programs_pattern(mirror, mirror_vm_settings):
    upstreams = _regexes(f"{MIRROR}.upstreams")
    assert set(upstreams) == {"debian", "debian_security", "pypi", "npm", "cran"}
    assert set(upstreams.values()) == {mirror["UPSTREAM_PATTERN"].pattern}
    assert mirror["UPSTREAM_PATTERN"].pattern == URL_PATTERN
    for url in mirror_vm_settings["upstreams"].values():
        assert re.fullmatch(mirror["UPSTREAM_PATTERN"].pattern, url), url


def test_the_ecosystems_are_the_programs(mirror, mirror_vm_settings):
    assert mirror["ECOSYSTEMS"] == mirror_settings.ECOSYSTEMS
    assert tuple(_field(f"{MIRROR}.allowlists")["schema"]) == mirror["ECOSYSTEMS"]
    # settings.json is written with sorted keys: compare as sets.
    assert set(mirror_vm_settings["name_patterns"]) == set(mirror["ECOSYSTEMS"])
    assert set(mirror_vm_settings["upstreams"]) == set(mirror["ECOSYSTEMS"])


# ---------------------------------------------------------------------------------------------
# The comparisons read what the VM gets: a drifted copy of a program is noticed


@pytest.mark.parametrize(("role_name", "program", "file_name", "old", "new", "constant"), [
    ("git_server", GIT_PROGRAM, "server_commands.py", '"gitweb", "daemon"}', '"gitweb", "daemon", "nobody"}',
     "RESERVED_ACCOUNTS"),
    ("package_mirror", MIRROR_PROGRAM, "files/mirror-allowlist.py", "MAX_ENTRIES = 5000", "MAX_ENTRIES = 4000",
     "MAX_ENTRIES"),
])
def test_a_drifted_program_is_read_from_the_user_data(example_config, tmp_path, role_name, program, file_name,
                                                      old, new, constant):
    shipped = role(role_name)
    folder = tmp_path / role_name
    shutil.copytree(shipped.folder, folder)
    source = folder / file_name
    assert source.read_text(encoding="utf-8").count(old) == 1
    source.write_text(source.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    before = program_constants(_files(example_config, role_name)[program])[constant]
    with registered(replace(shipped, folder=folder)):
        after = program_constants(_files(example_config, role_name)[program])[constant]
    assert before != after
    assert after == program_constants(source.read_text(encoding="utf-8"))[constant]
