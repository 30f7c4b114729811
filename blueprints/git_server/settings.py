"""roles.git_server in a stack file: every setting, its type, default and meaning (cerberus).

The name rules and reserved names are the Git server's own: they are read from its program
(server_commands.py, which runs on the VM and cannot import the project), so the stack file
and git-server-apply refuse the same names.
"""

from __future__ import annotations

from typing import Any

from blueprints.git_server import server_commands as vm_program
from blueprints.settings_fields import (
    ABSOLUTE_PATH_PATTERN,
    DISPLAY_NAME_PATTERN,
    SINGLE_LINE_ALLOWED,
    SINGLE_LINE_PATTERN,
    TIME_PATTERN,
    disk_field,
    vm_size_field,
)

# Git server names become gitolite user, group and repository names and file names on the VM.
GIT_ACCOUNT_PATTERN = vm_program.ACCOUNT.pattern
GIT_MEMBER_PATTERN = vm_program.MEMBER.pattern
GIT_REPOSITORY_PATTERN = vm_program.REPOSITORY.pattern
# Names the Git server uses for itself (gitolite's administrator and the mirror's reader).
GIT_RESERVED_ACCOUNTS = frozenset(vm_program.RESERVED_ACCOUNTS)
GIT_RESERVED_REPOSITORIES = frozenset(vm_program.RESERVED_REPOSITORIES)
PACKAGE_REQUESTS_REPOSITORY = vm_program.PACKAGE_REQUESTS
BACKUP_TARGETS = vm_program.BACKUP_TARGETS
BACKUP_ROOTS = vm_program.BACKUP_ROOTS
backup_directory_problem = vm_program.backup_directory_problem
# The two-person rule's own checks (at least two reviewers per protected repository).
git_review_problems = vm_program.review_problems


def _git_members(doc: str) -> dict[str, Any]:
    return {"type": "list", "default": [], "maxlength": 500,
            "schema": {"type": "string", "regex": GIT_MEMBER_PATTERN,
                       "meta": {"allowed": "a user name, or @team (@all: every user)"}},
            "meta": {"doc": doc}}


SETTINGS_SCHEMA: dict[str, Any] = {
    "vm_size": vm_size_field("Standard_B2s"),
    "data_disk_gb": disk_field("Repository disk size in GB", 64),
    "backup_generations": {"type": "integer", "min": 1, "max": 90, "default": 14,
                           "meta": {"doc": "Nightly backups kept"}},
    "teams": {
        "type": "list", "default": [], "maxlength": 200,
        "meta": {"doc": "Groups of users that repositories grant access to"},
        "schema": {"type": "dict", "schema": {
            "name": {"type": "string", "required": True, "regex": GIT_ACCOUNT_PATTERN,
                     "meta": {"doc": "Team name; @name in access lists",
                              "allowed": "1-32 lowercase letters, digits, . _ or -, "
                                         "starting with a letter"}},
            "description": {"type": "string", "regex": DISPLAY_NAME_PATTERN, "required": False,
                            "meta": {"doc": "What the team is for",
                                     "allowed": "3-80 letters, digits, spaces and . , & ( ) ' -"}},
        }},
    },
    "users": {
        "type": "list", "default": [], "maxlength": 2000,
        "meta": {"doc": "People who use Git over SSH; the name is also the web sign-in account"},
        "schema": {"type": "dict", "schema": {
            "name": {"type": "string", "required": True, "regex": GIT_ACCOUNT_PATTERN,
                     "meta": {"doc": "Account name (as the gateway passes it after sign-in)",
                              "allowed": "1-32 lowercase letters, digits, . _ or -, "
                                         "starting with a letter"}},
            "ssh_public_key": {"type": "string", "required": True, "maxlength": 16384,
                               "regex": SINGLE_LINE_PATTERN,
                               "meta": {"doc": "OpenSSH public key (ed25519, ECDSA or RSA 3072+)",
                                        "allowed": SINGLE_LINE_ALLOWED}},
            "teams": {"type": "list", "default": [], "maxlength": 100,
                      "schema": {"type": "string", "regex": GIT_ACCOUNT_PATTERN,
                                 "meta": {"allowed": "a team name from roles.git_server.teams"}},
                      "meta": {"doc": "Teams the user belongs to"}},
        }},
    },
    "repositories": {
        "type": "list", "default": [], "maxlength": 2000,
        "meta": {"doc": "Repositories and who may read, push branches, or merge to main"},
        "schema": {"type": "dict", "schema": {
            "name": {"type": "string", "required": True, "regex": GIT_REPOSITORY_PATTERN,
                     "maxlength": 64,
                     "meta": {"doc": "Repository name (cloned as git@git.<zone>:NAME)",
                              "allowed": "lowercase letters, digits, _ - and inner dots"}},
            "owner_team": {"type": "string", "required": True, "regex": GIT_ACCOUNT_PATTERN,
                           "meta": {"doc": "Team that answers for the repository; its members "
                                           "are the maintainers unless maintainers is set",
                                    "allowed": "a team name from roles.git_server.teams"}},
            "description": {"type": "string", "regex": DISPLAY_NAME_PATTERN, "required": False,
                            "meta": {"doc": "One line shown in the web view",
                                     "allowed": "3-80 letters, digits, spaces and . , & ( ) ' -"}},
            "maintainers": _git_members("May push to main and create tags (default: @owner_team)"),
            "writers": _git_members("May push branches other than main"),
            "readers": _git_members("May clone and fetch only"),
            "protected": {"type": "boolean", "required": False,
                          "meta": {"doc": "Two-person rule on main: only a merge commit by a maintainer "
                                          "other than the request's owner, of a request/<owner>/ branch, "
                                          "reaches main (package-requests always); needs two or more "
                                          "maintainers",
                                   "allowed": "true or false"}},
        }},
    },
    "backup": {
        "type": "dict", "default": {}, "meta": {"doc": "Nightly backup of every repository"},
        "schema": {
            "directory": {"type": "string", "regex": ABSOLUTE_PATH_PATTERN, "maxlength": 255,
                          "default": "/var/backups/git-server",
                          "meta": {"doc": "Directory the git bundles are written to",
                                   "allowed": "an absolute path of letters, digits, . _ - below "
                                              + " or ".join(BACKUP_ROOTS)}},
            "time": {"type": "string", "regex": TIME_PATTERN, "default": "01:30",
                     "meta": {"doc": "Time of the nightly backup (VM local time, HH:MM)",
                              "allowed": "HH:MM, e.g. 01:30"}},
            "target": {"type": "string", "allowed": list(BACKUP_TARGETS),
                       "default": "auto",
                       "meta": {"doc": "Where each generation also goes, off the VM: auto = the "
                                       "environment's Blob container when running on Azure, the "
                                       "directory alone elsewhere (the lab); azure-blob = always "
                                       "that container (a backup fails without it); directory = "
                                       "the VM's directory only, and no storage account"}},
        },
    },
}
