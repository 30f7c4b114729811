"""The airlock's egress side in a stack file (``airlock.egress``): who checks outputs, who reads what
is published, and the limits a proposal must keep. Kept free of Pulumi, like airlock_settings.py.

When it is set, the Git server hosts an ``outputs`` repository under the two-person rule (proposers
push request branches, checkers merge), refuses proposals that break the limits, and publishes each
approved proposal to the ``egress`` container of the airlock's account with its own managed
identity. The rules themselves live in the Git server's program (server_commands.py), which this
file reads, so the stack validator and the VM refuse the same things.
"""

from __future__ import annotations

from typing import Any

from blueprints.airlock_settings import BLOB_CONTRIBUTOR, BLOB_READER, StorageGrant
from blueprints.git_server import server_commands as vm_program
from blueprints.settings_fields import GUID_PATTERN

__all__ = ["EGRESS_CONTAINER", "EGRESS_SCHEMA", "GIT_SERVER_MACHINE", "egress_grants", "egress_problems",
           "egress_settings", "git_egress_settings"]

EGRESS_CONTAINER = "egress"
# The Git server's single machine (blueprints/git_server/role.py: host_name "git", not numbered).
GIT_SERVER_MACHINE = "git"
_MEMBER = {"type": "string", "regex": vm_program.MEMBER.pattern,
           "meta": {"allowed": "a Git server user name, or @team (@all: every user)"}}


def _limit(field: str, doc: str) -> dict[str, Any]:
    low, high, default = vm_program.EGRESS_LIMITS[field]
    return {"type": "integer", "min": low, "max": high, "default": default,
            "meta": {"doc": doc, "allowed": f"a whole number from {low} to {high}"}}


EGRESS_SCHEMA: dict[str, Any] = {
    "type": "dict", "required": False, "nullable": True, "default": None,
    "meta": {"doc": "Egress with review: analysts propose outputs in the Git server's outputs repository, an output "
                    "checker who is not the author merges them, and the server publishes exactly those files to the "
                    "airlock's egress container (omit for no egress)"},
    "schema": {
        "checkers": {
            "type": "list", "required": True, "minlength": 1, "maxlength": 50, "schema": _MEMBER,
            "meta": {"doc": "Output checkers: Git server users or @teams who approve outputs by merging them; at "
                            "least two people, so that nobody approves their own"}},
        "proposers": {
            "type": "list", "default": ["@all"], "minlength": 1, "maxlength": 50, "schema": _MEMBER,
            "meta": {"doc": "Who may propose outputs (push request branches of the outputs repository)"}},
        "readers_group": {
            "type": "string", "required": True, "regex": GUID_PATTERN,
            "meta": {"doc": "Object id of the Entra group whose members may read published outputs (read-only)",
                     "allowed": "a GUID such as 00000000-0000-4000-8000-000000000005"}},
        "max_file_mb": _limit("max_file_mb", "Largest file a proposal may hold, in MiB"),
        "max_proposal_mb": _limit("max_proposal_mb", "Largest proposal (all its files), in MiB"),
        "max_files": _limit("max_files", "Most files in one proposal, its statement included"),
        "file_types": {
            "type": "list", "minlength": 1, "maxlength": len(vm_program.SAFE_FILE_TYPES),
            "default": list(vm_program.DEFAULT_FILE_TYPES),
            "schema": {"type": "string", "allowed": list(vm_program.SAFE_FILE_TYPES),
                       "meta": {"allowed": ", ".join(vm_program.SAFE_FILE_TYPES)}},
            "meta": {"doc": "File types (extensions) released; html, spreadsheets and archives never are, since a "
                            "checker cannot see all they hold"}},
    },
}


def egress_settings(config: dict[str, Any]) -> dict[str, Any] | None:
    return (config.get("airlock") or {}).get("egress")


def egress_grants(config: dict[str, Any]) -> list[StorageGrant]:
    """The egress container's grants: the Git server writes it (publication), the readers' group reads
    it. No analytics identity has any grant on it (policy TB-ST-007)."""
    egress = egress_settings(config)
    if not egress:
        return []
    return [StorageGrant("git-publish", "vm", GIT_SERVER_MACHINE, BLOB_CONTRIBUTOR, EGRESS_CONTAINER,
                         "the Git server publishes approved outputs to the egress container"),
            StorageGrant("egress-readers-read", "group", egress["readers_group"], BLOB_READER, EGRESS_CONTAINER,
                         "the trust's named readers read published outputs")]


def git_egress_settings(config: dict[str, Any]) -> dict[str, Any] | None:
    """The ``egress`` section of the Git server's settings document (what git-server-apply reads)."""
    egress = egress_settings(config)
    if not egress:
        return None
    return {"checkers": list(egress["checkers"]), "proposers": list(egress["proposers"]),
            "max_file_mb": egress["max_file_mb"], "max_proposal_mb": egress["max_proposal_mb"],
            "max_files": egress["max_files"], "file_types": list(egress["file_types"]),
            "container": EGRESS_CONTAINER}


def egress_problems(config: dict[str, Any]) -> list[tuple[str, Any, str, str]]:
    """(field, value, what is wrong, hint) for egress settings the schema accepts but the stack cannot honour."""
    egress = egress_settings(config)
    if not egress:
        return []
    git = config["roles"].get("git_server")
    if not git:
        return [("airlock.egress", "egress", "needs roles.git_server: outputs are proposed and reviewed in its "
                 "outputs repository", "add the Git server role, or leave egress out")]
    problems: list[tuple[str, Any, str, str]] = []
    teams = {team["name"] for team in git.get("teams", [])}
    users = {user["name"] for user in git.get("users", [])}
    for field in ("checkers", "proposers"):
        for index, member in enumerate(egress[field]):
            known = teams | {"all"} if member.startswith("@") else users
            if member.lstrip("@") not in known:
                # Named as the lists they point into, so a stack that lost one says which.
                problems.append((f"airlock.egress.{field}[{index}]", member, "must name a user in "
                                 "roles.git_server.users or a @team in roles.git_server.teams", ""))
    # Who the checkers are depends on the teams' members: with a user in an unknown team (reported by
    # the Git server's own checks) there is nothing sound to count.
    memberships_known = all(team in teams for user in git.get("users", []) for team in user.get("teams", []))
    if not problems and memberships_known:
        checkers = vm_program.egress_checkers({**git, "egress": git_egress_settings(config)})
        if len(checkers) < 2:
            named = ", ".join(sorted(checkers)) or "nobody"
            problems.append(("airlock.egress.checkers", egress["checkers"], "must be at least two people in "
                             "roles.git_server.users, so "
                             f"that nobody approves their own outputs; they are {named}",
                             "name a second checker, e.g. [first.person, second.person]"))
    if egress["max_file_mb"] > egress["max_proposal_mb"]:
        problems.append(("airlock.egress.max_file_mb", egress["max_file_mb"], "must not exceed "
                         f"airlock.egress.max_proposal_mb ({egress['max_proposal_mb']})", ""))
    for index, repository in enumerate(git.get("repositories", [])):
        if repository["name"] == vm_program.OUTPUTS:
            problems.append((f"roles.git_server.repositories[{index}].name", repository["name"], "is the outputs "
                             "repository the Git server makes when airlock.egress is set", "choose another name"))
    return problems
