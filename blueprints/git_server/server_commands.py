#!/usr/bin/python3
"""The Git server's own commands. cloud-init installs this file on the VM as /usr/local/sbin/git-server
and links the four commands (and gitolite's VREF git-server-review) to it; the name it is called by
picks the command.

  git-server-apply FILE     make gitolite, the web view and the backup timer match FILE, the role's
                            settings from the stack file (cloud-init runs it at first boot; run it again
                            with a new file to change users, teams or repositories). Idempotent.
  git-server-backup         write one backup generation (a git bundle per repository and a manifest of
                            every ref), copy it off the VM if configured; keep the newest N in each place.
  git-server-restore [--generation NAME] [--from-remote] [--replace] (--all | REPOSITORY...)
                            rebuild repositories from a generation (here or off the VM), check every ref.
  git-server-publish        (with egress set) publish the outputs that checkers merged to main of the
                            outputs repository to the egress container, each once, and record it.

It runs on the VM with Debian's python3 and python3-yaml only; it cannot import the project.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import posixpath
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GIT_USER = "git"
GIT_HOME = Path("/srv/git")
REPOSITORIES = GIT_HOME / "repositories"
STATE = Path("/var/lib/trust-blueprints/git-server")
ADMIN_CLONE = STATE / "gitolite-admin"
CGIT_USERS = Path("/etc/cgit/users")
BACKUP_SETTINGS = Path("/etc/trust-blueprints/git-server-backup.json")
BACKUP_TIMER = Path("/etc/systemd/system/git-server-backup.timer")
# Where and how rclone signs in for the off-VM target: the only part that differs from a test emulator.
RCLONE_CONFIG = Path("/etc/trust-blueprints/git-server-rclone.conf")
RCLONE_REMOTE = "git-backup"
MIRROR_READER_KEY = Path("/etc/trust-blueprints/secrets/package-requests-reader.pub")
# The mirror's allowlists from the stack file (JSON), written at deployment when the stack has a
# mirror: the package-requests repository starts from them, so the mirror's pull of main keeps
# the stack's lists instead of replacing them with empty ones.
PACKAGE_REQUESTS_SEED = Path("/etc/trust-blueprints/package-requests-seed.json")
# The two-person rule's check, a gitolite VREF (git-server-apply installs it in gitolite's LOCAL_CODE):
# gitolite runs it as LOCAL/VREF/git-server-review for every ref a push updates, and the protected
# repositories and their reviewers sit beside it in LOCAL/review-rules.json.
LOCAL_CODE = GIT_HOME / "local"
REVIEW_VREF = "git-server-review"
REVIEW_RULES_NAME = "review-rules.json"
# Request branches: refs/heads/request/<owner>/<name>, written only by <owner>.
REQUEST_PREFIX = "refs/heads/request/"
MAIN = "refs/heads/main"
ZERO = "0" * 40
# gitolite's administrator has no SSH key: only root on this VM changes access, through this command.
ADMIN = "server-admin"
MIRROR_READER = "package-mirror"
PACKAGE_REQUESTS = "package-requests"
RESERVED_ACCOUNTS = {ADMIN, MIRROR_READER, "git", "root", "gitweb", "daemon"}
# gitolite keeps these repositories for itself.
RESERVED_REPOSITORIES = {"gitolite-admin", "testing"}
ACCOUNT = re.compile(r"^[a-z][a-z0-9._-]{0,31}$")
MEMBER = re.compile(r"^@?[a-z][a-z0-9._-]{0,31}$")
REPOSITORY = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9_-]+)*$")
GENERATION = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")
TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
BACKUP_TARGETS = ("auto", "directory", "azure-blob")
# The backup directory lies below one of these (after normalisation, with no ".." in it): never
# the repositories themselves, /etc or anywhere else a path could point.
BACKUP_ROOTS = ("/var/backups", "/srv")


def backup_directory_problem(directory: str) -> str | None:
    """Why ``directory`` cannot hold the backups, or None: no '..', and below an allowed root."""
    if ".." in directory.split("/"):
        return "must not contain '..' segments"
    normal = posixpath.normpath(directory)
    if not any(normal.startswith(root + "/") for root in BACKUP_ROOTS):
        return "must lie below " + " or ".join(BACKUP_ROOTS)
    if normal == str(GIT_HOME) or normal.startswith(str(GIT_HOME) + "/"):
        return f"must not lie in the repositories' own directory {GIT_HOME}"
    return None
STORAGE_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
# The backup account's name is globally unique, so it depends on the subscription, which the
# settings file cannot know: the Pulumi program sets it as this tag of the VM
# (blueprints/git_server/backup_target.py), and apply reads it from the instance metadata service.
STORAGE_ACCOUNT_TAG = "trust-blueprints-storage-account"
IMDS_TAGS = "http://169.254.169.254/metadata/instance/compute/tagsList?api-version=2021-02-01"
BLOB_CONTAINER = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
KEY_TYPES = {"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"}
EXIT_USAGE = 2

PACKAGE_REQUESTS_README = """# Package requests

Ask for a package to be added to the trust's mirror here:

1. clone this repository and create a branch under your own name, e.g.
   `git switch -c request/YOUR.NAME/pyarrow` (only you can push or rewrite `request/YOUR.NAME/...`);
2. add the package under `pypi`, `npm` or `cran` in `allowlist.yaml`, and say why in the commit message;
3. push the branch. A reviewer (a maintainer other than you) merges it to `main` with a merge commit;
   the mirror reads `main`. Nobody merges their own request.
"""
PACKAGE_REQUESTS_ALLOWLIST = """# Packages analysts may install through the mirror, by ecosystem. Changes are reviewed:
# push a branch request/YOUR.NAME/...; another maintainer merges it to main.
pypi: []
npm: []
cran: []
"""


class SettingsError(Exception):
    """Bad input: printed as one line, exit code 2, nothing changed."""


# ---------------------------------------------------------------------------------------------
# Settings


def _problems(settings: Any) -> list[str]:
    """Every problem of a settings document, each with its path (the stack file checks the same)."""
    if not isinstance(settings, dict):
        return ["(file): must be a mapping of the git_server role's settings"]
    problems: list[str] = []

    def entries(key: str) -> list[dict[str, Any]]:
        value = settings.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            problems.append(f"{key}: must be a list of mappings")
            return []
        return value

    teams: set[str] = set()
    for index, team in enumerate(entries("teams")):
        name = team.get("name")
        if not isinstance(name, str) or not ACCOUNT.match(name) or name == "all" or name in teams:
            problems.append(f"teams[{index}].name: {name!r} must be a new name of 1-32 lowercase letters, "
                            "digits, . _ -")
        teams.add(str(name))
    users: set[str] = set()
    for index, user in enumerate(entries("users")):
        name = user.get("name")
        if not isinstance(name, str) or not ACCOUNT.match(name) or name in RESERVED_ACCOUNTS or name in users:
            problems.append(f"users[{index}].name: {name!r} must be a new, unreserved name of 1-32 lowercase "
                            "letters, digits, . _ -")
        users.add(str(name))
        key = user.get("ssh_public_key")
        if not isinstance(key, str) or len(key.split()) < 2 or key.split()[0] not in KEY_TYPES \
                or len(key.splitlines()) != 1:
            problems.append(f"users[{index}].ssh_public_key: must be one OpenSSH public key line")
        for team_index, team in enumerate(user.get("teams", [])):
            if team not in teams:
                problems.append(f"users[{index}].teams[{team_index}]: {team!r} is not a team")
    names: set[str] = set()
    for index, repository in enumerate(entries("repositories")):
        name = repository.get("name")
        if (not isinstance(name, str) or not REPOSITORY.match(name) or name.endswith(".git")
                or name in RESERVED_REPOSITORIES or name in names):
            problems.append(f"repositories[{index}].name: {name!r} must be a new repository name")
        names.add(str(name))
        if repository.get("owner_team") not in teams:
            problems.append(f"repositories[{index}].owner_team: {repository.get('owner_team')!r} is not a team")
        for field in ("maintainers", "writers", "readers"):
            for member_index, member in enumerate(repository.get(field, [])):
                known = teams | {"all"} if str(member).startswith("@") else users
                if not isinstance(member, str) or not MEMBER.match(member) or member.lstrip("@") not in known:
                    problems.append(f"repositories[{index}].{field}[{member_index}]: {member!r} is not a "
                                    "user or @team")
        if "protected" in repository and not isinstance(repository["protected"], bool):
            problems.append(f"repositories[{index}].protected: {repository['protected']!r} must be true or false")
    problems += egress_problems(settings.get("egress"))
    egress = settings.get("egress")
    for field in ("checkers", "proposers") if isinstance(egress, dict) else ():
        for member_index, member in enumerate(egress.get(field) or []):
            known = teams | {"all"} if str(member).startswith("@") else users
            if str(member).lstrip("@") not in known:
                problems.append(f"egress.{field}[{member_index}]: {member!r} is not a user or @team")
    if egress and OUTPUTS in names:
        problems.append(f"repositories: {OUTPUTS!r} is the egress outputs repository, made by the server when "
                        "egress is set; give the stack's repository another name")
    if not problems:  # reviewers are counted from sound teams and users
        problems += [f"{path}: {message} (got {value!r})" for path, value, message in review_problems(settings)]
        if settings.get("egress") and len(egress_checkers(settings)) < 2:
            problems.append(f"egress.checkers: must be at least two people, so that nobody approves their own "
                            f"outputs (got {settings['egress']['checkers']!r})")
    backup = settings.get("backup", {})
    directory = str(backup.get("directory", ""))
    if not directory.startswith("/") or not re.match(r"^(/[A-Za-z0-9._-]+)+$", directory):
        problems.append(f"backup.directory: {directory!r} must be an absolute path")
    elif backup_directory_problem(directory):
        problems.append(f"backup.directory: {directory!r} {backup_directory_problem(directory)}")
    if not TIME.match(str(backup.get("time", ""))):
        problems.append(f"backup.time: {backup.get('time')!r} must be HH:MM")
    target = backup.get("target", "auto")
    if target not in BACKUP_TARGETS:
        problems.append(f"backup.target: {target!r} must be one of {', '.join(BACKUP_TARGETS)}")
    elif target != "directory":
        blob = backup.get("azure_blob")
        blob = blob if isinstance(blob, dict) else {}
        if not BLOB_CONTAINER.match(str(blob.get("container", ""))):
            problems.append(f"backup.azure_blob.container: {blob.get('container')!r} is not a storage container name")
    generations = settings.get("backup_generations")
    if not isinstance(generations, int) or not 1 <= generations <= 90:
        problems.append(f"backup_generations: {generations!r} must be a whole number from 1 to 90")
    return problems


def load_settings(path: Path) -> dict[str, Any]:
    import yaml  # python3-yaml, a dependency of cloud-init

    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SettingsError(f"{path}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise SettingsError(f"{path}: not YAML: {error}") from None
    problems = _problems(settings)
    if problems:
        raise SettingsError("\n".join(f"{path}: {problem}" for problem in problems))
    return settings


def is_protected(repository: dict[str, Any]) -> bool:
    """Main of this repository takes only reviewed merges: package-requests always, others when marked."""
    return repository["name"] == PACKAGE_REQUESTS or repository.get("protected") is True


def review_problems(settings: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(path, value, what is allowed) for each protected repository the two-person rule cannot serve.

    The stack's validator reports the same (validation/semantic_checks.py reads this function).
    """
    problems: list[tuple[str, Any, str]] = []
    access = Access(settings, mirror_reader=False)
    for index, repository in enumerate(settings.get("repositories", [])):
        if repository["name"] == PACKAGE_REQUESTS and repository.get("protected") is False:
            problems.append((f"repositories[{index}].protected", False,
                             f"{PACKAGE_REQUESTS} is always protected (the mirror installs what its main "
                             "lists): leave protected out or set it to true"))
        if not is_protected(repository):
            continue
        reviewers = access.reviewers_of(repository)
        if len(reviewers) < 2:
            field = "maintainers" if repository.get("maintainers") else "owner_team"
            value = repository.get("maintainers") or repository.get("owner_team")
            problems.append((f"repositories[{index}].{field}", value,
                             f"a protected repository's maintainers are its reviewers and must be at least "
                             f"two people, so that nobody merges their own change; they are "
                             f"{', '.join(sorted(reviewers)) or 'nobody'}"))
    return problems


def egress_checkers(settings: dict[str, Any]) -> set[str]:
    """The people who may approve outputs: the egress checkers, expanded to users."""
    egress = settings.get("egress")
    return Access(settings, mirror_reader=False).reviewers_of(egress_repository(egress)) if egress else set()


def with_package_requests(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The repositories to host: the stack's, plus package-requests if the stack does not name it."""
    repositories = list(settings.get("repositories", []))
    if not any(repository["name"] == PACKAGE_REQUESTS for repository in repositories):
        # Without named maintainers only an administrator merges; every user may propose.
        repositories.append({"name": PACKAGE_REQUESTS, "owner_team": None, "maintainers": [],
                             "writers": ["@all"], "readers": []})
    return repositories


class Access:
    """Who may do what, from the settings: gitolite rules and each user's readable repositories."""

    def __init__(self, settings: dict[str, Any], mirror_reader: bool) -> None:
        self.users = {user["name"]: user for user in settings.get("users", [])}
        self.members: dict[str, list[str]] = {team["name"]: [] for team in settings.get("teams", [])}
        for user in self.users.values():
            for team in user.get("teams", []):
                self.members[team].append(user["name"])
        self.repositories = with_package_requests(settings)
        # With egress set, the outputs repository: protected, proposers write, checkers merge.
        self.egress = settings.get("egress")
        if self.egress:
            self.repositories.append(egress_repository(self.egress))
        self.mirror_reader = mirror_reader

    def _present(self, entries: list[str]) -> list[str]:
        """Entries gitolite can use: teams without members are left out (they grant nothing)."""
        return [entry for entry in entries if not entry.startswith("@") or entry == "@all"
                or self.members.get(entry[1:])]

    def roles(self, repository: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
        owner = repository.get("owner_team")
        maintainers = repository.get("maintainers") or ([f"@{owner}"] if owner else [])
        return (self._present(maintainers), self._present(repository.get("writers", [])),
                self._present(repository.get("readers", [])))

    def gitolite_conf(self) -> str:
        lines = ["# Generated by git-server-apply from the stack file; changes made here are overwritten.",
                 "# Maintainers push main and tags; writers push other branches; readers clone.",
                 "# Nobody rewrites or deletes main, or moves a tag.", ""]
        for team, members in sorted(self.members.items()):
            if members:
                lines.append(f"@{team} = {' '.join(sorted(members))}")
        lines += ["", "repo gitolite-admin", f"    RW+ = {ADMIN}"]
        for repository in sorted(self.repositories, key=lambda item: item["name"]):
            maintainers, writers, readers = self.roles(repository)
            if repository["name"] == PACKAGE_REQUESTS and self.mirror_reader:
                readers = [*readers, MIRROR_READER]
            lines += ["", f"repo {repository['name']}"]
            # First, so that its refusals win: the two-person rule on main and the owner of each
            # request branch (git-server-review). gitolite puts the pusher's name in for USER.
            rules = [("-", f"VREF/{REVIEW_VREF}", ["@all"]),
                     ("RW", "refs/heads/main$", maintainers), ("-", "refs/heads/main$", ["@all"]),
                     ("RW", "refs/tags/", maintainers), ("-", "refs/tags/", ["@all"]),
                     ("RW+", "refs/heads/request/USER/", maintainers + writers),
                     ("-", "refs/heads/request/", ["@all"]),
                     ("RW+", "refs/heads/", maintainers + writers), ("-", "", ["@all"]), ("R", "", readers)]
            for permission, refex, who in rules:
                if who:
                    lines.append(f"    {permission:<4}{refex:<25} = {' '.join(dict.fromkeys(who))}")
        return "\n".join(lines) + "\n"

    def _expand(self, entries: list[str]) -> set[str]:
        names: set[str] = set()
        for entry in entries:
            if entry == "@all":
                names |= set(self.users)
            elif entry.startswith("@"):
                names |= set(self.members.get(entry[1:], []))
            else:
                names.add(entry)
        return names

    def reviewers_of(self, repository: dict[str, Any]) -> set[str]:
        """The people who may merge to a protected repository's main: its maintainers."""
        return self._expand(self.roles(repository)[0]) & set(self.users)

    def review_rules(self) -> dict[str, Any]:
        """What git-server-review reads: each protected repository and its reviewers."""
        ordered = sorted(self.repositories, key=lambda item: item["name"])
        rules: dict[str, Any] = {"protected": {repository["name"]: sorted(self.reviewers_of(repository))
                                               for repository in ordered if is_protected(repository)}}
        if self.egress:
            rules["egress"] = egress_rules(self.egress)
        return rules

    def readable(self, user: str) -> list[dict[str, Any]]:
        """Repositories the user may read: the web view shows only these."""
        return [repository for repository in sorted(self.repositories, key=lambda item: item["name"])
                if user in self._expand([entry for role in self.roles(repository) for entry in role])]


# ---------------------------------------------------------------------------------------------
# Running things


def run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        capture: bool = False) -> str:
    result = subprocess.run(argv, cwd=cwd, env=env, check=False, text=True,
                            stdout=subprocess.PIPE if capture else None)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed with exit code {result.returncode}")
    return result.stdout if capture else ""


def as_git(argv: list[str], *, cwd: Path | None = None, capture: bool = False) -> str:
    """Run a command as the git user with gitolite's environment."""
    prefix = [] if os.geteuid() != 0 else ["runuser", "-u", GIT_USER, "--"]
    environment = ["env", f"HOME={GIT_HOME}", "PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C.UTF-8"]
    return run([*prefix, *environment, *argv], cwd=cwd, capture=capture)


def write_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(text, encoding="utf-8")
    temporary.chmod(mode)
    temporary.replace(path)
    return True


# ---------------------------------------------------------------------------------------------
# git-server-apply


def _ensure_gitolite() -> None:
    if subprocess.run(["getent", "passwd", GIT_USER], capture_output=True, check=False).returncode != 0:
        run(["adduser", "--system", "--group", "--home", str(GIT_HOME), "--shell", "/bin/sh",
             "--gecos", "Git repositories (gitolite)", GIT_USER])
    # The web view (www-data) reads repositories through the git group; nobody else can.
    run(["usermod", "-a", "-G", GIT_USER, "www-data"])
    # /srv/git can predate the account: made empty by the data-disk step, or kept on the data disk
    # from a VM whose git account had another number. adduser leaves an existing home alone.
    if GIT_HOME.stat().st_uid != pwd.getpwnam(GIT_USER).pw_uid:
        run(["chown", "-R", f"{GIT_USER}:{GIT_USER}", str(GIT_HOME)])
    GIT_HOME.chmod(0o750)
    if not (GIT_HOME / ".gitolite.rc").exists():
        as_git(["git", "config", "--global", "user.name", "Git server"])
        as_git(["git", "config", "--global", "user.email", f"{GIT_USER}@localhost"])
        as_git(["git", "config", "--global", "init.defaultBranch", "master"])
        as_git(["gitolite", "setup", "-a", ADMIN])
        rc = GIT_HOME / ".gitolite.rc"
        # Group-readable repositories, so the web view (in group git) can read them.
        rc.write_text(re.sub(r"UMASK(\s*)=>(\s*)0077", r"UMASK\1=>\g<2>0027", rc.read_text(encoding="utf-8")),
                      encoding="utf-8")
        # New repositories start on main; the administration repository stays on master (gitolite's hook).
        as_git(["git", "config", "--global", "init.defaultBranch", "main"])
        shutil.rmtree(REPOSITORIES / "testing.git", ignore_errors=True)
    REPOSITORIES.chmod(0o750)
    _enable_local_code(GIT_HOME / ".gitolite.rc")
    if not (ADMIN_CLONE / ".git").exists():
        STATE.mkdir(parents=True, exist_ok=True)
        STATE.chmod(0o755)
        shutil.rmtree(ADMIN_CLONE, ignore_errors=True)
        ADMIN_CLONE.mkdir(mode=0o700)
        shutil.chown(ADMIN_CLONE, GIT_USER, GIT_USER)
        as_git(["git", "clone", "--quiet", str(REPOSITORIES / "gitolite-admin.git"), str(ADMIN_CLONE)])


LOCAL_CODE_LINE = re.compile(r'^(\s*)#\s*(LOCAL_CODE\s*=>\s*"\$ENV\{HOME\}/local",)', re.MULTILINE)


def enable_local_code(rc: str) -> str:
    """gitolite's rc with LOCAL_CODE at ~/local, where git-server-review lives (the line ships commented)."""
    if re.search(r'^\s*LOCAL_CODE\s*=>\s*"\$ENV\{HOME\}/local",', rc, re.MULTILINE):
        return rc
    enabled, count = LOCAL_CODE_LINE.subn(r"\1\2", rc, count=1)
    if count == 1:
        return enabled
    # An rc without the commented line (another gitolite version): the setting goes first in %RC.
    enabled, count = re.subn(r"^(%RC = \(\n)", '\\1    LOCAL_CODE => "$ENV{HOME}/local",\n', rc,
                             count=1, flags=re.MULTILINE)
    if count != 1:
        raise RuntimeError("gitolite's .gitolite.rc has no LOCAL_CODE line to enable for git-server-review")
    return enabled


def _enable_local_code(rc_path: Path) -> None:
    text = rc_path.read_text(encoding="utf-8")
    enabled = enable_local_code(text)
    if enabled != text:
        rc_path.write_text(enabled, encoding="utf-8")


def _update_review_rules(access: Access) -> None:
    """Install git-server-review where gitolite looks for VREFs, and the rules it reads.

    Written before the access rules that name the VREF, so a push never meets a rule without its check.
    """
    vref_dir = LOCAL_CODE / "VREF"
    vref_dir.mkdir(parents=True, exist_ok=True)
    link = vref_dir / REVIEW_VREF
    program = Path("/usr/local/sbin/git-server")
    if not link.is_symlink() or Path(os.readlink(link)) != program:
        link.unlink(missing_ok=True)
        link.symlink_to(program)
    write_if_changed(LOCAL_CODE / REVIEW_RULES_NAME, json.dumps(access.review_rules(), indent=2) + "\n")
    run(["chown", "-R", "-h", f"{GIT_USER}:{GIT_USER}", str(LOCAL_CODE)])


def _update_admin_repository(access: Access, settings_path: Path) -> bool:
    """Write the rules and keys into the administration repository; push only when they changed."""
    as_git(["git", "fetch", "--quiet", "origin"], cwd=ADMIN_CLONE)
    as_git(["git", "reset", "--quiet", "--hard", "origin/master"], cwd=ADMIN_CLONE)
    keys = {name: user["ssh_public_key"].strip() for name, user in access.users.items()}
    if access.mirror_reader:
        keys[MIRROR_READER] = MIRROR_READER_KEY.read_text(encoding="utf-8").strip()
    keydir = ADMIN_CLONE / "keydir"
    keydir.mkdir(exist_ok=True)
    for stale in keydir.rglob("*.pub"):
        if stale.stem not in keys or stale.parent != keydir:
            stale.unlink()
    for name, key in keys.items():
        (keydir / f"{name}.pub").write_text(key + "\n", encoding="utf-8")
    (ADMIN_CLONE / "conf" / "gitolite.conf").write_text(access.gitolite_conf(), encoding="utf-8")
    run(["chown", "-R", f"{GIT_USER}:{GIT_USER}", str(ADMIN_CLONE)])
    as_git(["git", "add", "--all"], cwd=ADMIN_CLONE)
    if not as_git(["git", "status", "--porcelain"], cwd=ADMIN_CLONE, capture=True).strip():
        return False
    digest = hashlib.sha256(settings_path.read_bytes()).hexdigest()[:12]
    as_git(["git", "commit", "--quiet", "-m", f"Apply {settings_path} (sha256 {digest})"], cwd=ADMIN_CLONE)
    # Pushed on the server itself: gitolite's `push` skips the access check and runs the compile hook.
    as_git(["gitolite", "push", "--quiet", "origin", "HEAD:master"], cwd=ADMIN_CLONE)
    return True


def package_requests_allowlist(seed: dict[str, Any] | None) -> str:
    """allowlist.yaml for a new package-requests repository: the stack's lists, or empty ones."""
    if not seed:
        return PACKAGE_REQUESTS_ALLOWLIST
    header = PACKAGE_REQUESTS_ALLOWLIST.split("pypi:", 1)[0]
    # JSON lists are YAML flow sequences; quoting keeps names such as @scope/name plain strings.
    return header + "".join(f"{ecosystem}: {json.dumps(list(seed.get(ecosystem) or []))}\n"
                            for ecosystem in ("pypi", "npm", "cran"))


def _seed_package_requests() -> None:
    """Give a new package-requests repository its allowlist on main (once; later changes are reviewed)."""
    bare = REPOSITORIES / f"{PACKAGE_REQUESTS}.git"
    if not bare.exists():
        # Lost (removed by hand, or a disk restored without it): gitolite's setup recreates every
        # repository its rules name and puts their hooks back.
        as_git(["gitolite", "setup"])
    if as_git(["git", "for-each-ref", "--count=1"], cwd=bare, capture=True).strip():
        return
    with tempfile.TemporaryDirectory(prefix="package-requests-") as work:
        shutil.chown(work, GIT_USER, GIT_USER)
        checkout = Path(work) / "checkout"
        as_git(["git", "init", "--quiet", "--initial-branch", "main", str(checkout)])
        seed = json.loads(PACKAGE_REQUESTS_SEED.read_text(encoding="utf-8")) if PACKAGE_REQUESTS_SEED.exists() else None
        (checkout / "allowlist.yaml").write_text(package_requests_allowlist(seed), encoding="utf-8")
        (checkout / "README.md").write_text(PACKAGE_REQUESTS_README, encoding="utf-8")
        run(["chown", "-R", f"{GIT_USER}:{GIT_USER}", str(checkout)])
        as_git(["git", "add", "--all"], cwd=checkout)
        as_git(["git", "commit", "--quiet", "-m", "Start the package allowlist"], cwd=checkout)
        as_git(["gitolite", "push", "--quiet", str(bare), "main:main"], cwd=checkout)


def _cgit_line(value: str) -> str:
    return re.sub(r"[\r\n]", " ", value)


def _update_web_view(access: Access) -> None:
    """One cgit configuration per user, listing only the repositories that user may read."""
    CGIT_USERS.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for name in access.users:
        lines = ["# Generated by git-server-apply: the repositories this user may read.",
                 "include=/etc/cgit/site.cgitrc"]
        for repository in access.readable(name):
            lines += ["", f"repo.url={repository['name']}",
                      f"repo.path={REPOSITORIES / (repository['name'] + '.git')}"]
            if repository.get("owner_team"):
                lines.append(f"repo.owner=@{repository['owner_team']}")
            if repository.get("description"):
                lines.append(f"repo.desc={_cgit_line(repository['description'])}")
        wanted.add(f"{name}.cgitrc")
        write_if_changed(CGIT_USERS / f"{name}.cgitrc", "\n".join(lines) + "\n")
    for stale in CGIT_USERS.glob("*.cgitrc"):
        if stale.name not in wanted:
            stale.unlink()


def _on_azure() -> bool:
    """As cloud-init found at boot (the Key Vault step asks the same)."""
    try:
        found = subprocess.run(["cloud-init", "query", "platform"], capture_output=True, text=True, check=False)
    except OSError:
        return False
    return found.stdout.strip() == "azure"


def account_in_tags(tags: Any) -> str:
    """The storage account named by ``STORAGE_ACCOUNT_TAG`` in IMDS's tagsList, or RuntimeError."""
    names = [tag.get("value") for tag in tags if isinstance(tag, dict) and tag.get("name") == STORAGE_ACCOUNT_TAG] \
        if isinstance(tags, list) else []
    if not names:
        raise RuntimeError(f"this VM has no tag {STORAGE_ACCOUNT_TAG} (the backup storage account's name); "
                           "the Pulumi program sets it on a Git server whose backups go to Blob storage")
    if not STORAGE_ACCOUNT.match(str(names[0])):
        raise RuntimeError(f"this VM's tag {STORAGE_ACCOUNT_TAG}: {names[0]!r} is not a storage account name")
    return str(names[0])


def _vm_tags() -> Any:
    """This VM's tags from the instance metadata service. It can lag a VM's first seconds, so a few
    tries over about half a minute before giving up."""
    import time
    import urllib.request

    failure: Exception | None = None
    for delay in (0, 2, 4, 8, 16):
        time.sleep(delay)
        try:
            request = urllib.request.Request(IMDS_TAGS, headers={"Metadata": "true"})
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (a fixed http URL)
                return json.load(response)
        except (OSError, ValueError) as error:
            failure = error
    raise RuntimeError(f"cannot read this VM's tags from the instance metadata service ({failure!r})")


def _storage_account() -> str:
    """The backup account's name from this VM's tags."""
    return account_in_tags(_vm_tags())


def rclone_azure_blob_config(account: str) -> str:
    # No key on the VM: its managed identity signs in (Storage Blob Data Contributor on one container).
    return f"[{RCLONE_REMOTE}]\ntype = azureblob\naccount = {account}\nuse_msi = true\n"


def _update_backup(settings: dict[str, Any]) -> None:
    backup = settings["backup"]
    directory = Path(backup["directory"])
    directory.mkdir(parents=True, exist_ok=True)
    shutil.chown(directory, GIT_USER, GIT_USER)
    directory.chmod(0o700)
    target = backup.get("target", "auto")
    # auto: Blob on Azure; elsewhere (the lab) the directory alone.
    off_vm = target == "azure-blob" or (target == "auto" and _on_azure())
    remote = None
    if off_vm:
        blob = backup["azure_blob"]
        write_if_changed(RCLONE_CONFIG, rclone_azure_blob_config(_storage_account()))
        remote = f"{RCLONE_REMOTE}:{blob['container']}"
    elif RCLONE_CONFIG.exists():
        RCLONE_CONFIG.unlink()
    write_if_changed(BACKUP_SETTINGS, json.dumps({
        "directory": str(directory), "generations": settings["backup_generations"],
        "remote": remote, "rclone_config": str(RCLONE_CONFIG) if remote else None}) + "\n")
    timer = ("[Unit]\nDescription=Nightly backup of every Git repository\n\n"
             f"[Timer]\nOnCalendar=*-*-* {backup['time']}:00\nPersistent=true\n\n"
             "[Install]\nWantedBy=timers.target\n")
    if write_if_changed(BACKUP_TIMER, timer):
        run(["systemctl", "daemon-reload"])
    run(["systemctl", "enable", "--now", "--quiet", "git-server-backup.timer"])


def apply(settings_path: Path) -> int:
    settings = load_settings(settings_path)
    access = Access(settings, mirror_reader=MIRROR_READER_KEY.exists())
    _ensure_gitolite()
    _update_review_rules(access)
    changed = _update_admin_repository(access, settings_path)
    _seed_package_requests()
    _update_egress(settings)
    _update_web_view(access)
    _update_backup(settings)
    print(f"git-server-apply: {len(access.users)} users, {len(access.members)} teams, "
          f"{len(access.repositories)} repositories; access rules {'updated' if changed else 'unchanged'}")
    return 0


# ---------------------------------------------------------------------------------------------
# git-server-backup and git-server-restore


def _repositories() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(REPOSITORIES.rglob("*.git")):
        if (path / "HEAD").is_file() and not any(parent.suffix == ".git" for parent in path.parents):
            found[str(path.relative_to(REPOSITORIES))[: -len(".git")]] = path
    return found


def _refs(listing: str) -> dict[str, str]:
    refs = {}
    for line in listing.splitlines():
        sha, _, name = line.partition(" ")
        if name.startswith("refs/"):
            refs[name] = sha
    return refs


class RemoteGenerations:
    """Generations kept off the VM, through rclone. Its config alone says where and how to sign in.
    A generation counts once its manifest, uploaded last, is there."""

    def __init__(self, remote: str, config: Path) -> None:
        self.remote = remote.rstrip("/")
        self.config = config

    def __str__(self) -> str:
        return self.remote

    def _rclone(self, *arguments: str, capture: bool = False) -> str:
        return run(["rclone", "--config", str(self.config), "--retries", "3", "--low-level-retries", "5",
                    *arguments], capture=capture)

    def _prefixes(self) -> list[str]:
        listing = self._rclone("lsf", "--dirs-only", "--max-depth", "1", self.remote, capture=True)
        return sorted(name.rstrip("/") for name in listing.splitlines() if GENERATION.match(name.rstrip("/")))

    def names(self) -> list[str]:
        """Complete generations, oldest first."""
        listing = self._rclone("lsf", "--files-only", "--max-depth", "2", "--include", "/*/manifest.json",
                               self.remote, capture=True)
        return sorted(line.split("/")[0] for line in listing.splitlines()
                      if GENERATION.match(line.split("/")[0]) and line.endswith("/manifest.json"))

    def upload(self, generation: Path) -> None:
        """Manifest last, then every file's size and hash compared."""
        destination = f"{self.remote}/{generation.name}"
        self._rclone("copy", "--exclude", "/manifest.json", str(generation), destination)
        self._rclone("copy", "--include", "/manifest.json", str(generation), destination)
        self._rclone("check", "--one-way", str(generation), destination)

    def prune(self, keep: int) -> list[str]:
        """Keep the newest ``keep`` complete generations; unfinished uploads older than them go too."""
        complete = self.names()
        kept = complete[-keep:]
        removed = complete[:-keep]
        if kept:
            removed += [name for name in self._prefixes() if name not in complete and name < kept[0]]
        for name in removed:
            self._rclone("purge", f"{self.remote}/{name}")
        return removed

    def fetch(self, name: str, into: Path) -> Path:
        if into.exists():
            shutil.rmtree(into)
        into.mkdir(mode=0o700, parents=True)
        self._rclone("copy", f"{self.remote}/{name}", str(into))
        return into


@dataclass(frozen=True)
class BackupSettings:
    directory: Path
    generations: int
    remote: RemoteGenerations | None


def _backup_settings() -> BackupSettings:
    try:
        settings = json.loads(BACKUP_SETTINGS.read_text(encoding="utf-8"))
    except OSError:
        raise SettingsError(f"{BACKUP_SETTINGS} is missing: run git-server-apply first") from None
    remote = settings.get("remote")
    return BackupSettings(Path(settings["directory"]), int(settings["generations"]),
                          RemoteGenerations(remote, Path(settings["rclone_config"])) if remote else None)


def _local_generations(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.is_dir() and GENERATION.match(path.name))


def _write_bundles(repositories: dict[str, Path], partial: Path, stamp: str) -> dict[str, Any]:
    manifest: dict[str, Any] = {"generation": stamp, "repositories": {}}
    for name, path in repositories.items():
        head = subprocess.run(["git", "symbolic-ref", "HEAD"], cwd=path, capture_output=True, text=True,
                              check=False).stdout.strip()
        entry: dict[str, Any] = {"head": head, "refs": {}}
        if run(["git", "for-each-ref", "--count=1"], cwd=path, capture=True).strip():
            bundle = partial / f"{name}.bundle"
            bundle.parent.mkdir(parents=True, exist_ok=True)
            # A bundle records the refs it read and every object they need: consistent per repository.
            run(["git", "bundle", "create", "--quiet", str(bundle), "--all"], cwd=path)
            run(["git", "bundle", "verify", "--quiet", str(bundle)], cwd=path)
            entry["refs"] = _refs(run(["git", "bundle", "list-heads", str(bundle)], cwd=path, capture=True))
            entry["bundle"] = f"{name}.bundle"
            entry["sha256"] = hashlib.sha256(bundle.read_bytes()).hexdigest()
        manifest["repositories"][name] = entry
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def write_generation(settings: BackupSettings, repositories: dict[str, Path], now: datetime | None = None,
                     send: bool = True) -> str:
    """One generation in the directory, then (``send``) off the VM; each keeps the newest N."""
    target = settings.directory
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    partial = target / f".partial-{stamp}"
    partial.mkdir(mode=0o700)
    manifest = _write_bundles(repositories, partial, stamp)
    partial.rename(target / stamp)
    for stale in target.glob(".partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    local = _local_generations(target)
    for old in local[: -settings.generations]:
        shutil.rmtree(target / old)
    local = local[-settings.generations:]
    summary = f"generation {stamp}: {len(manifest['repositories'])} repositories in {target}; {len(local)} kept"
    if settings.remote is None or not send:
        return summary
    return f"{summary}; {send_generations(settings)}"


def send_generations(settings: BackupSettings) -> str:
    """Every kept generation the remote lacks (also any an earlier night failed to send), then its pruning."""
    remote = settings.remote
    if remote is None:
        return "no target off the VM"
    local = _local_generations(settings.directory)[-settings.generations:]
    present = set(remote.names())
    sent = [name for name in local if name not in present]
    for name in sent:
        remote.upload(settings.directory / name)
    removed = remote.prune(settings.generations)
    return f"{len(sent)} sent to {remote} and checked, {len(removed)} old deleted there"


def backup(arguments: list[str]) -> int:
    settings = _backup_settings()
    if os.geteuid() == 0:
        # The bundles are written by the repositories' owner. The copy off the VM signs in as the VM,
        # which only root may do: the VM's firewall keeps the metadata service from every other account.
        made = subprocess.run(["runuser", "-u", GIT_USER, "--", sys.argv[0], "--local"], check=False)
        if made.returncode != 0 or settings.remote is None:
            return made.returncode
        print(f"git-server-backup: {send_generations(settings)}")
        return 0
    print(f"git-server-backup: {write_generation(settings, _repositories(), send='--local' not in arguments)}")
    return 0


def verified_manifest(source: Path, generation: str) -> dict[str, Any]:
    """The manifest, once every bundle it names matches its sha256."""
    try:
        manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))["repositories"]
    except (OSError, ValueError, KeyError):
        raise RuntimeError(f"generation {generation} in {source} has no readable manifest.json") from None
    for name, entry in manifest.items():
        if entry.get("bundle"):
            bundle = source / entry["bundle"]
            if not bundle.is_file() or hashlib.sha256(bundle.read_bytes()).hexdigest() != entry["sha256"]:
                raise RuntimeError(f"{bundle} ({name}) is missing or does not match its recorded sha256")
    return manifest


def restore(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="git-server-restore",
                                     description="Rebuild repositories from a backup generation.")
    parser.add_argument("repositories", nargs="*", help="repository names (without .git)")
    parser.add_argument("--all", action="store_true", help="every repository in the generation")
    parser.add_argument("--generation", help="generation name (default: the newest)")
    parser.add_argument("--replace", action="store_true", help="replace repositories that exist")
    parser.add_argument("--from-remote", action="store_true", help="fetch from the off-VM target even if here")
    parser.add_argument("--list", action="store_true", help="list generations and where they are")
    args = parser.parse_args(arguments)
    settings = _backup_settings()
    target, remote = settings.directory, settings.remote
    if args.from_remote and remote is None:
        raise SettingsError("--from-remote: this VM's backups have no off-VM target (backup.target)")
    local = [] if args.from_remote else _local_generations(target)
    offsite: list[str] = []
    if remote is not None:
        try:
            offsite = remote.names()
        except RuntimeError as error:
            if args.from_remote:
                raise
            print(f"git-server-restore: cannot list {remote} ({error}); using {target} only", file=sys.stderr)
    generations = sorted(set(local) | set(offsite))
    if args.list:
        for name in generations:
            places = [str(target)] * (name in local) + [str(remote)] * (name in offsite)
            print(f"{name}  {', '.join(places)}")
        return 0
    where = f"{target}" + (f" or {remote}" if remote else "")
    if not generations:
        raise SettingsError(f"no backup generations in {where}")
    generation = args.generation or generations[-1]
    if generation not in generations:
        raise SettingsError(f"--generation {generation!r} is not in {where}; generations: {', '.join(generations)}")
    names = args.repositories
    if not names and not args.all:
        raise SettingsError("name the repositories to restore, or give --all")
    fetched = None
    if generation in local or remote is None:
        source = target / generation
    else:
        fetched = remote.fetch(generation, target / f".fetched-{generation}")
        run(["chown", "-R", f"{GIT_USER}:{GIT_USER}", str(fetched)])
        source = fetched
        print(f"git-server-restore: generation {generation} fetched from {remote}")
    # Check everything before changing anything.
    manifest = verified_manifest(source, generation)
    names = sorted(manifest) if args.all else names
    for name in names:
        if name not in manifest:
            raise SettingsError(f"repository {name!r} is not in generation {generation}; "
                               f"it has: {', '.join(sorted(manifest))}")
        if (REPOSITORIES / f"{name}.git").exists() and not args.replace:
            raise SettingsError(f"repository {name!r} exists; give --replace to overwrite it")
    for name in names:
        entry = manifest[name]
        final = REPOSITORIES / f"{name}.git"
        building = final.with_name(f".restoring-{final.name}")
        shutil.rmtree(building, ignore_errors=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.chown(final.parent, GIT_USER, GIT_USER)
        as_git(["git", "init", "--quiet", "--bare", str(building)])
        if entry.get("bundle"):
            as_git(["git", "fetch", "--quiet", str(source / entry["bundle"]), "+refs/*:refs/*"], cwd=building)
        if entry.get("head"):
            as_git(["git", "symbolic-ref", "HEAD", entry["head"]], cwd=building)
        restored = _refs(as_git(["git", "for-each-ref", "--format=%(objectname) %(refname)"], cwd=building,
                                capture=True))
        if restored != entry["refs"]:
            shutil.rmtree(building)
            raise RuntimeError(f"{name}: restored refs differ from the manifest; nothing replaced")
        if final.exists():
            shutil.rmtree(final)
        building.rename(final)
        print(f"git-server-restore: {name}: {len(restored)} refs restored from {generation}, every hash matches")
    as_git(["gitolite", "setup"])  # puts gitolite's hooks back into the restored repositories
    if fetched is not None:
        shutil.rmtree(fetched)
    return 0


# ---------------------------------------------------------------------------------------------
# git-server-review: the two-person rule, as a gitolite VREF
#
# gitolite has already checked the ref rules (only maintainers write main; nobody rewinds or deletes
# it) when it runs this for each ref a push updates. Its arguments: REF OLD NEW OLDTREE NEWTREE ACCESS
# VREF; GL_USER is the pusher's account (from the SSH key), GL_REPO the repository. A line
# "VREF/git-server-review <why>" on stdout refuses the push with that reason (the repository's first
# rule denies that VREF to everyone); no output lets it through. Author and committer names, and
# trailers such as Reviewed-by, are text anyone can write: nothing here reads them. What counts is who
# pushes: the owner of a request branch is the only one who can have put its commits there.


class PushRefusedError(Exception):
    """The reason a push is refused, shown to the pusher."""


def _git_out(repository: Path, *arguments: str) -> str:
    environment = {**os.environ, "GIT_DIR": str(repository)}
    result = subprocess.run(["git", *arguments], env=environment, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(arguments)}: {result.stderr.strip()}")
    return result.stdout


def request_owner(ref: str) -> str | None:
    """The owner of refs/heads/request/<owner>/<name>, '' for a malformed request ref, None otherwise."""
    if not ref.startswith(REQUEST_PREFIX):
        return None
    owner, _, name = ref[len(REQUEST_PREFIX):].partition("/")
    return owner if owner and name else ""


def _request_tips(repository: Path) -> dict[str, set[str]]:
    """Each commit that is the tip of a request branch now, and the owners of those branches."""
    tips: dict[str, set[str]] = {}
    listing = _git_out(repository, "for-each-ref", "--format=%(objectname) %(refname)", REQUEST_PREFIX)
    for line in listing.splitlines():
        sha, _, ref = line.partition(" ")
        owner = request_owner(ref)
        if owner:
            tips.setdefault(sha, set()).add(owner)
    return tips


def review_decision(repository: Path, rules: dict[str, Any], repo: str, user: str,
                    ref: str, old: str, new: str) -> None:
    """Raise PushRefusedError unless ``user`` may move ``ref`` of ``repo`` from ``old`` to ``new``."""
    owner = request_owner(ref)
    if owner is not None and owner != user:
        mine = f"request/{user}/NAME"
        raise PushRefusedError(f"{ref[len('refs/heads/'):]} is not yours: request branches are "
                      f"request/<owner>/<name> and only their owner pushes them; push yours as {mine}")
    protected = rules.get("protected", {})
    if ref != MAIN or repo not in protected:
        return
    reviewers = set(protected[repo])
    if new == ZERO:
        raise PushRefusedError(f"main of {repo} is never deleted (its history is the record of what was reviewed)")
    if user not in reviewers:
        raise PushRefusedError(f"main of {repo} takes merges from its reviewers only ({', '.join(sorted(reviewers))}); "
                      f"push your change as request/{user}/NAME and ask one of them to merge it")
    tips = _request_tips(repository)
    if old == ZERO:
        # The first main: a reviewer points it at someone else's request branch, as it is.
        owners = tips.get(new, set())
        if not owners or user in owners:
            raise PushRefusedError(f"a new main of {repo} must be the tip of another person's request/<owner>/ branch")
        return
    if _git_out(repository, "merge-base", old, new).strip() != old:
        raise PushRefusedError(f"main of {repo} is never rewritten: fetch, merge onto the current main and push again")
    chain = _git_out(repository, "rev-list", "--first-parent", "--parents", f"{old}..{new}").splitlines()
    expected_parent = old
    for line in reversed(chain):  # oldest first, so each merge's first parent is the main before it
        commit, *parents = line.split()
        short = commit[:12]
        if len(parents) != 2:
            raise PushRefusedError(f"{short} is not a merge commit: main of {repo} takes only a reviewer's merge of a "
                          f"request branch (git merge --no-ff origin/request/<owner>/<name>), never commits "
                          f"of its own or a fast-forward")
        if parents[0] != expected_parent:
            raise PushRefusedError(f"{short}: its first parent must be main as it was ({expected_parent[:12]}); merge "
                          f"the request into main, not main into the request")
        owners = tips.get(parents[1], set())
        if not owners:
            raise PushRefusedError(f"{short} merges {parents[1][:12]}, which is not the tip of a request/<owner>/ "
                          f"branch here (the branch may have moved since you reviewed it: fetch and look again)")
        if user in owners:
            raise PushRefusedError(f"{short} merges your own request: another reviewer "
                          f"({', '.join(sorted(reviewers - {user})) or 'none'}) must merge it")
        merged = subprocess.run(["git", "merge-tree", "--write-tree", parents[0], parents[1]],
                                env={**os.environ, "GIT_DIR": str(repository)},
                                capture_output=True, text=True, check=False)
        if merged.returncode == 1:
            raise PushRefusedError(f"{short}: the request conflicts with main; its owner merges main into the request "
                          f"branch and resolves it there, then a reviewer merges again")
        if merged.returncode != 0:
            raise RuntimeError(f"git merge-tree: {merged.stderr.strip()}")
        tree = merged.stdout.split()[0]
        if tree != _git_out(repository, "rev-parse", commit + "^" + "{tree}").strip():
            raise PushRefusedError(f"{short} changes more than the request it merges: a reviewer's merge adds nothing "
                          f"of its own (make the change on a request branch)")
        expected_parent = commit


def review(arguments: list[str]) -> int:
    """gitolite's VREF entry point: print a refusal line, or nothing."""
    vref = f"VREF/{REVIEW_VREF}"
    try:
        ref, old, new = arguments[0], arguments[1], arguments[2]
        user, repo = os.environ["GL_USER"], os.environ["GL_REPO"]
        base = os.environ.get("GL_REPO_BASE")
        repository = Path(base) / f"{repo}.git" if base else Path.cwd()
        # Beside this program in gitolite's LOCAL_CODE (LOCAL/VREF/git-server-review).
        rules_file = Path(sys.argv[0]).absolute().parent.parent / REVIEW_RULES_NAME
        try:
            rules = json.loads(rules_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise PushRefusedError(f"the review rules ({rules_file}) cannot be read, so no protected change is "
                          "accepted; the administrator runs git-server-apply") from None
        review_decision(repository, rules, repo, user, ref, old, new)
        egress = rules.get("egress")
        if egress and repo == egress["repository"]:
            egress_decision(repository, egress, user, ref, old, new)
    except PushRefusedError as refusal:
        print(f"{vref} {refusal}")
    except (IndexError, KeyError) as error:
        print(f"{vref} git-server-review runs under gitolite (missing {error})")
    except RuntimeError as error:
        # Fail closed: a check that could not run refuses.
        print(f"{vref} the review check failed ({error}); nothing was changed")
    return 0


# ---------------------------------------------------------------------------------------------
# Egress with review: the outputs repository, its proposal rules, and publication
#
# An analyst proposes outputs on a request/<owner>/<name> branch of OUTPUTS: one new folder
# outputs/<proposal>/ holding the files and a STATEMENT.md. git-server-review refuses a push that
# breaks the limits, and checks the proposal again when a checker's merge reaches main (limits may
# have been lowered since). git-server-publish copies each merge's files, exactly the blobs the
# merge added, to the egress container; every step goes to the audit log and the journal.

OUTPUTS = "outputs"
OUTPUTS_FOLDER = "outputs"
STATEMENT = "STATEMENT.md"
# The statement says what the files are and which disclosure checks were applied, under this heading.
STATEMENT_HEADING = re.compile(r"^#{1,6}\s*disclosure checks\b.*$", re.IGNORECASE | re.MULTILINE)
PROPOSAL = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# Types an output checker can read in full by eye: text tables, plain text, documents and images.
# Not html (scripts, hidden content), not spreadsheets or archives (hidden sheets, embedded files).
SAFE_FILE_TYPES = ("csv", "tsv", "txt", "md", "pdf", "png", "jpg", "jpeg", "svg", "json")
DEFAULT_FILE_TYPES = ("csv", "txt", "md", "pdf", "png", "svg")
EGRESS_LIMITS = {"max_file_mb": (1, 1024, 5), "max_proposal_mb": (1, 4096, 20), "max_files": (1, 500, 50)}
# Both on the data disk (/srv/git), so they outlive the VM: what was published, and who did what when.
EGRESS_STATE = GIT_HOME / "egress"
EGRESS_AUDIT = EGRESS_STATE / "audit.jsonl"
EGRESS_SETTINGS = Path("/etc/trust-blueprints/git-server-egress.json")
EGRESS_RCLONE_CONFIG = Path("/etc/trust-blueprints/git-server-egress-rclone.conf")
EGRESS_REMOTE = "egress"
# The airlock's account is globally unique like the backup's: its name reaches the VM as this tag
# (the analytics VMs that read ingress carry the same tag, blueprints/vm_tags.py).
EGRESS_ACCOUNT_TAG = "trust-blueprints-airlock-account"
PUBLISH_UNITS = Path("/etc/systemd/system")
JOURNAL_TAG = "git-server-egress"
OUTPUTS_README = """# Outputs for release

Results leave the environment only through this repository, after an output checker reviews them.

1. `git switch -c request/YOUR.NAME/PROPOSAL origin/main` (only you can push `request/YOUR.NAME/...`);
2. put the files in a new folder `outputs/PROPOSAL/` (no subfolders) with a `STATEMENT.md` that
   says what the files are and, under a heading `## Disclosure checks`, which checks you applied
   (small-number suppression, rounding, no row-level data);
3. push the branch. The server refuses a proposal outside its folder, over the size limits, or with
   a file type it does not release, and says why;
4. an output checker other than you merges it to `main` with a merge commit; the server then
   publishes exactly those files to the egress container, where the trust's named readers fetch them.
"""


def egress_problems(egress: Any) -> list[str]:
    """Problems of the settings document's ``egress`` section (the stack validator checks the same)."""
    if egress is None:
        return []
    if not isinstance(egress, dict):
        return ["egress: must be a mapping"]
    problems: list[str] = []
    for field, (low, high, _) in EGRESS_LIMITS.items():
        value = egress.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            problems.append(f"egress.{field}: {value!r} must be a whole number from {low} to {high}")
    if isinstance(egress.get("max_file_mb"), int) and isinstance(egress.get("max_proposal_mb"), int) \
            and egress["max_file_mb"] > egress["max_proposal_mb"]:
        problems.append(f"egress.max_file_mb: {egress['max_file_mb']!r} must not exceed egress.max_proposal_mb "
                        f"({egress['max_proposal_mb']})")
    types = egress.get("file_types")
    if not isinstance(types, list) or not types or any(kind not in SAFE_FILE_TYPES for kind in types):
        problems.append(f"egress.file_types: {types!r} must be a list drawn from {', '.join(SAFE_FILE_TYPES)}")
    for field in ("checkers", "proposers"):
        members = egress.get(field)
        if not isinstance(members, list) or not all(isinstance(m, str) and MEMBER.match(m) for m in members):
            problems.append(f"egress.{field}: {members!r} must be a list of users and @teams")
    if not BLOB_CONTAINER.match(str(egress.get("container", ""))):
        problems.append(f"egress.container: {egress.get('container')!r} is not a storage container name")
    return problems


def egress_repository(egress: dict[str, Any]) -> dict[str, Any]:
    """The outputs repository as the stack's repositories are written: protected, checkers merge."""
    return {"name": OUTPUTS, "owner_team": None, "description": "Outputs proposed for release, and their review",
            "maintainers": list(egress["checkers"]), "writers": list(egress["proposers"]), "readers": [],
            "protected": True}


def egress_rules(egress: dict[str, Any], audit: Path = EGRESS_AUDIT) -> dict[str, Any]:
    """What git-server-review and git-server-publish read of the egress settings."""
    return {"repository": OUTPUTS, "max_file_bytes": egress["max_file_mb"] * 1024 * 1024,
            "max_proposal_bytes": egress["max_proposal_mb"] * 1024 * 1024, "max_files": egress["max_files"],
            "file_types": sorted(egress["file_types"]), "audit": str(audit)}


def record(audit: Path, event: str, **fields: Any) -> dict[str, Any]:
    """One audit line: appended to the JSON-lines log on the data disk and sent to the journal."""
    entry = {"time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "event": event, **fields}
    line = json.dumps(entry, sort_keys=True)
    audit.parent.mkdir(parents=True, exist_ok=True)
    with audit.open("a", encoding="utf-8") as log:
        log.write(line + "\n")
    import syslog  # the journal takes syslog lines; where there is no journal nothing is sent

    syslog.openlog(JOURNAL_TAG, 0, syslog.LOG_AUTHPRIV)
    syslog.syslog(syslog.LOG_NOTICE, line)
    return entry


def audit_entries(audit: Path) -> list[dict[str, Any]]:
    try:
        lines = audit.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


@dataclass(frozen=True)
class ProposedFile:
    path: str  # outputs/<proposal>/<file>
    blob: str
    size: int


@dataclass(frozen=True)
class Proposal:
    name: str
    files: tuple[ProposedFile, ...]

    @property
    def size(self) -> int:
        return sum(item.size for item in self.files)

    def to_json(self) -> list[dict[str, Any]]:
        return [{"path": item.path, "blob": item.blob, "bytes": item.size} for item in self.files]


def _tree_has(repository: Path, commit: str, path: str) -> bool:
    return bool(_git_out(repository, "ls-tree", "--name-only", commit, "--", path).strip())


def proposal_in(repository: Path, rules: dict[str, Any], base: str | None, tip: str,
                main: str | None = None) -> Proposal:
    """The proposal ``tip`` makes over ``base`` (None: the empty tree), or PushRefusedError saying why.

    ``main`` (default ``base``) is the main the new folder must not already be on."""
    # The empty tree's id in this repository's hash (an empty file hashed as a tree), for a first proposal.
    empty_tree = _git_out(repository, "hash-object", "-t", "tree", "/dev/null").strip() if base is None else None
    raw = _git_out(repository, "diff", "--raw", "-z", "--no-renames", "--no-abbrev", base or empty_tree or "", tip)
    fields = raw.split("\0")
    changes: list[tuple[str, str, str, str]] = []  # (status, new mode, blob, path)
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        if meta.startswith(":"):
            _, new_mode, _, blob, status = meta[1:].split(" ")
            changes.append((status, new_mode, blob, path))
    if not changes:
        return Proposal("", ())
    folders = {path.split("/")[1] if path.startswith(OUTPUTS_FOLDER + "/") and path.count("/") >= 2 else None
               for _, _, _, path in changes}
    outside = sorted(path for _, _, _, path in changes if not path.startswith(OUTPUTS_FOLDER + "/")
                     or path.count("/") < 2)
    if outside:
        raise PushRefusedError(f"{', '.join(outside[:5])} lie outside {OUTPUTS_FOLDER}/<proposal>/: a proposal "
                               f"adds one new folder {OUTPUTS_FOLDER}/<proposal>/ and nothing else")
    if len(folders) != 1:
        raise PushRefusedError(f"the change touches {len(folders)} folders ({', '.join(sorted(map(str, folders)))}): "
                               f"one proposal, one folder {OUTPUTS_FOLDER}/<proposal>/ (push the others on their "
                               "own request branches)")
    name = str(next(iter(folders)))
    folder = f"{OUTPUTS_FOLDER}/{name}"
    if not PROPOSAL.match(name):
        raise PushRefusedError(f"{folder}/: a proposal's folder name is 1-64 lowercase letters, digits, . _ - "
                               "starting with a letter or digit")
    on_main = main or base
    if on_main is not None and _tree_has(repository, on_main, folder + "/"):
        raise PushRefusedError(f"{folder}/ is already on main (published or approved): a proposal adds a new "
                               "folder; propose the change under a new name")
    allowed_types = set(rules["file_types"])
    files: list[ProposedFile] = []
    for status, mode, blob, path in changes:
        if status != "A":
            raise PushRefusedError(f"{path}: a proposal only adds files (this change is {status})")
        if path.count("/") != 2:
            raise PushRefusedError(f"{path}: files sit directly in {folder}/, with no subfolders")
        if mode != "100644":
            raise PushRefusedError(f"{path}: only plain files are released (this is mode {mode}: a link, an "
                                   "executable or a submodule)")
        file_name = path.rsplit("/", 1)[1]
        kind = file_name.rsplit(".", 1)[1].lower() if "." in file_name else ""
        if not FILE_NAME.match(file_name):
            raise PushRefusedError(f"{path}: file names are letters, digits, . _ - (up to 128)")
        if file_name != STATEMENT and kind not in allowed_types:
            raise PushRefusedError(f"{path}: type {kind or '(none)'!r} is not released; allowed types: "
                                   f"{', '.join(sorted(allowed_types))}")
        size = int(_git_out(repository, "cat-file", "-s", blob).strip())
        if size > rules["max_file_bytes"]:
            raise PushRefusedError(f"{path}: {size} bytes is over the limit of {rules['max_file_bytes']} bytes "
                                   "per file")
        files.append(ProposedFile(path, blob, size))
    if len(files) > rules["max_files"]:
        raise PushRefusedError(f"{folder}/ holds {len(files)} files; the limit is {rules['max_files']} per proposal")
    proposal = Proposal(name, tuple(sorted(files, key=lambda item: item.path)))
    if proposal.size > rules["max_proposal_bytes"]:
        raise PushRefusedError(f"{folder}/ is {proposal.size} bytes; the limit is {rules['max_proposal_bytes']} "
                               "bytes per proposal")
    statement = next((item for item in files if item.path == f"{folder}/{STATEMENT}"), None)
    if statement is None:
        raise PushRefusedError(f"{folder}/{STATEMENT} is missing: say what the files are and, under a heading "
                               "'## Disclosure checks', which checks were applied")
    text = _git_out(repository, "cat-file", "blob", statement.blob)
    heading = STATEMENT_HEADING.search(text)
    if heading is None or not text[heading.end():].strip():
        raise PushRefusedError(f"{folder}/{STATEMENT} has no '## Disclosure checks' section with text under it: "
                               "name the checks applied (small numbers suppressed, rounding, no row-level data)")
    if len(files) < 2:
        raise PushRefusedError(f"{folder}/ holds only its {STATEMENT}: add the files it describes")
    return proposal


def _main_or_none(repository: Path) -> str | None:
    found = subprocess.run(["git", "rev-parse", "--verify", "-q", MAIN], env={**os.environ, "GIT_DIR": str(repository)},
                           capture_output=True, text=True, check=False)
    return found.stdout.strip() or None


def egress_decision(repository: Path, egress: dict[str, Any], user: str, ref: str, old: str, new: str) -> None:
    """The outputs repository's proposal rules for one ref update (after the two-person rule passed)."""
    if new == ZERO:
        return
    audit = Path(egress["audit"])
    if ref == MAIN:
        chain = _git_out(repository, "rev-list", "--first-parent", "--parents", f"{old}..{new}").splitlines() \
            if old != ZERO else []
        approvals = []
        for line in reversed(chain):
            commit, first, second = line.split()
            base = _git_out(repository, "merge-base", first, second).strip()
            proposal = proposal_in(repository, egress, base, second, main=first)
            owner = request_owner(_tip_branch(repository, second) or "") or ""
            approvals.append((commit, proposal, owner))
        for commit, proposal, owner in approvals:
            record(audit, "approval-merged", user=user, repository=egress["repository"], commit=commit,
                   proposal=proposal.name, proposer=owner, files=proposal.to_json())
        return
    if not ref.startswith(REQUEST_PREFIX):
        raise PushRefusedError(f"{egress['repository']} takes proposals on request/{user}/<proposal> branches only")
    main = _main_or_none(repository)
    base = _git_out(repository, "merge-base", main, new).strip() if main else None
    proposal = proposal_in(repository, egress, base, new, main=main)
    if not proposal.files:
        return
    record(audit, "proposal-pushed", user=user, repository=egress["repository"], branch=ref[len("refs/heads/"):],
           commit=new, proposal=proposal.name, files=proposal.to_json(), bytes=proposal.size)


def _tip_branch(repository: Path, commit: str) -> str | None:
    listing = _git_out(repository, "for-each-ref", "--points-at", commit, "--format=%(refname)", REQUEST_PREFIX)
    return next(iter(listing.split()), None)


@dataclass(frozen=True)
class Publication:
    commit: str
    proposal: str
    files: int
    size: int


def publish_approved(repository: Path, egress: dict[str, Any], remote: str, rclone_config: Path,
                     state: Path) -> list[Publication]:
    """Publish each checker's merge on main not yet published, oldest first: exactly the files the merge
    added, to ``remote``/<proposal>/. The state file names the last merge published; nothing else is sent."""
    audit = Path(egress["audit"])
    main = _main_or_none(repository)
    if main is None:
        return []
    last = state.read_text(encoding="utf-8").strip() if state.exists() else ""
    span = f"{last}..{main}" if last else main
    merges = _git_out(repository, "rev-list", "--first-parent", "--reverse", "--merges", "--parents",
                      span).splitlines()
    approvers = {entry.get("commit"): entry.get("user") for entry in audit_entries(audit)
                 if entry.get("event") == "approval-merged"}
    done: list[Publication] = []
    for line in merges:
        commit, first, _second = line.split()
        try:
            proposal = proposal_in(repository, egress, first, commit)
        except PushRefusedError as refusal:
            record(audit, "publication-refused", commit=commit, reason=str(refusal))
            raise RuntimeError(f"merge {commit[:12]} on main breaks the proposal rules ({refusal}); "
                               "nothing of it was published") from None
        if proposal.files:
            with tempfile.TemporaryDirectory(prefix="egress-") as work:
                folder = Path(work) / proposal.name
                folder.mkdir()
                for item in proposal.files:
                    content = subprocess.run(["git", "cat-file", "blob", item.blob],
                                             env={**os.environ, "GIT_DIR": str(repository)},
                                             capture_output=True, check=True).stdout
                    (folder / item.path.rsplit("/", 1)[1]).write_bytes(content)
                destination = f"{remote.rstrip('/')}/{proposal.name}"
                rclone = ["rclone", "--config", str(rclone_config), "--retries", "3", "--low-level-retries", "5"]
                # --immutable: a blob already there with other content is an error, never overwritten.
                run([*rclone, "copy", "--immutable", str(folder), destination])
                run([*rclone, "check", "--one-way", str(folder), destination])
        write_if_changed(state, commit + "\n")
        if not proposal.files:
            continue
        record(audit, "published", commit=commit, proposal=proposal.name, approver=approvers.get(commit),
               destination=f"{remote.rstrip('/')}/{proposal.name}/", files=proposal.to_json(), bytes=proposal.size)
        done.append(Publication(commit, proposal.name, len(proposal.files), proposal.size))
    return done


def rclone_egress_config(account: str) -> str:
    # The VM's managed identity signs in: Storage Blob Data Contributor on the egress container alone.
    return f"[{EGRESS_REMOTE}]\ntype = azureblob\naccount = {account}\nuse_msi = true\n"


def _egress_account() -> str:
    """The airlock's account from this VM's tags."""
    tags = _vm_tags()
    names = [tag.get("value") for tag in tags if isinstance(tag, dict) and tag.get("name") == EGRESS_ACCOUNT_TAG] \
        if isinstance(tags, list) else []
    if not names or not STORAGE_ACCOUNT.match(str(names[0])):
        raise RuntimeError(f"this VM has no usable tag {EGRESS_ACCOUNT_TAG} (the airlock's storage account); "
                           "the Pulumi program sets it when airlock.egress is set")
    return str(names[0])


def _seed_outputs() -> None:
    """Give a new outputs repository its README on main (once), so proposals branch from a main."""
    bare = REPOSITORIES / f"{OUTPUTS}.git"
    if not bare.exists():
        as_git(["gitolite", "setup"])
    if as_git(["git", "for-each-ref", "--count=1"], cwd=bare, capture=True).strip():
        return
    with tempfile.TemporaryDirectory(prefix="outputs-") as work:
        shutil.chown(work, GIT_USER, GIT_USER)
        checkout = Path(work) / "checkout"
        as_git(["git", "init", "--quiet", "--initial-branch", "main", str(checkout)])
        (checkout / "README.md").write_text(OUTPUTS_README, encoding="utf-8")
        run(["chown", "-R", f"{GIT_USER}:{GIT_USER}", str(checkout)])
        as_git(["git", "add", "--all"], cwd=checkout)
        as_git(["git", "commit", "--quiet", "-m", "Start the outputs repository"], cwd=checkout)
        as_git(["gitolite", "push", "--quiet", str(bare), "main:main"], cwd=checkout)


# No start limit: a setup or a few pushes move the outputs repository's refs more than five times in ten
# seconds, and systemd's default limit would then fail the service and stop the path unit from starting
# it at all (measured in the lab: an approval waited for the catch-up timer). A run that finds nothing
# new is cheap.
PUBLISH_SERVICE = """[Unit]
Description=Publish outputs approved on main of the outputs repository to the egress container
StartLimitIntervalSec=0

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/git-server-publish
"""
# Git moves a ref by renaming a lock file over it, which a watch on the ref's own file never sees
# (measured in the lab: no start after a push). The directories holding main and packed-refs see
# every update; pushes to other branches start a publication that finds nothing new, which is cheap.
# The timer catches anything the path unit missed.
PUBLISH_PATH = """[Unit]
Description=Publish approved outputs when a branch of the outputs repository moves

[Path]
PathChanged={refs}/refs/heads
PathChanged={refs}
Unit=git-server-publish.service

[Install]
WantedBy=paths.target
"""
PUBLISH_TIMER = """[Unit]
Description=Publish approved outputs (catch-up)

[Timer]
OnBootSec=2min
OnUnitActiveSec=5min

[Install]
WantedBy=timers.target
"""


def _update_egress(settings: dict[str, Any]) -> None:
    egress = settings.get("egress")
    units = ("git-server-publish.path", "git-server-publish.timer")
    if not egress:
        if EGRESS_SETTINGS.exists():
            run(["systemctl", "disable", "--now", "--quiet", *units])
            EGRESS_SETTINGS.unlink()
        return
    _seed_outputs()
    EGRESS_STATE.mkdir(parents=True, exist_ok=True)
    shutil.chown(EGRESS_STATE, GIT_USER, GIT_USER)
    EGRESS_STATE.chmod(0o750)
    # The account's name from this VM's tag, on Azure and in the lab alike (the lab's storage stand-in
    # answers at the private endpoint's address with the same grants).
    write_if_changed(EGRESS_RCLONE_CONFIG, rclone_egress_config(_egress_account()))
    remote = f"{EGRESS_REMOTE}:{egress['container']}"
    write_if_changed(EGRESS_SETTINGS, json.dumps({**egress_rules(egress), "remote": remote,
                                                 "rclone_config": str(EGRESS_RCLONE_CONFIG)}) + "\n")
    changed = write_if_changed(PUBLISH_UNITS / "git-server-publish.service", PUBLISH_SERVICE)
    changed |= write_if_changed(PUBLISH_UNITS / "git-server-publish.path",
                                PUBLISH_PATH.format(refs=REPOSITORIES / f"{OUTPUTS}.git"))
    changed |= write_if_changed(PUBLISH_UNITS / "git-server-publish.timer", PUBLISH_TIMER)
    if changed:
        run(["systemctl", "daemon-reload"])
    run(["systemctl", "enable", "--now", "--quiet", *units])


def publish() -> int:
    try:
        egress = json.loads(EGRESS_SETTINGS.read_text(encoding="utf-8"))
    except OSError:
        raise SettingsError(f"{EGRESS_SETTINGS} is missing: egress is not set, or git-server-apply has not run") \
            from None
    repository = REPOSITORIES / f"{OUTPUTS}.git"
    if os.geteuid() == 0:
        # Root, because the copy to the egress container signs in as the VM, which only root may do (the
        # VM's firewall keeps the metadata service from every other account). Root reads the git user's
        # repository (git refuses another owner's unless told it is safe) and appends to its audit log,
        # which stays the git user's so that the review check can write it too.
        os.environ.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory",
                           "GIT_CONFIG_VALUE_0": str(repository)})
        audit = Path(egress["audit"])
        if not audit.exists():
            audit.touch(mode=0o640)
            shutil.chown(audit, GIT_USER, GIT_USER)
    done = publish_approved(repository, egress, egress["remote"], Path(egress["rclone_config"]),
                            EGRESS_STATE / "published")
    for item in done:
        print(f"git-server-publish: {item.proposal} ({item.files} files, {item.size} bytes) from merge "
              f"{item.commit[:12]} published to {egress['remote']}/{item.proposal}/")
    return 0


def main() -> int:
    command = Path(sys.argv[0]).name
    if command == REVIEW_VREF:
        return review(sys.argv[1:])
    try:
        if command == "git-server-apply":
            if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
                raise SettingsError("usage: git-server-apply SETTINGS_FILE, e.g. /etc/trust-blueprints/git-server.yaml")
            return apply(Path(sys.argv[1]))
        if command == "git-server-backup":
            return backup(sys.argv[1:])
        if command == "git-server-restore":
            return restore(sys.argv[1:])
        if command == "git-server-publish":
            return publish()
        raise SettingsError(f"call this program as git-server-apply, git-server-backup, git-server-restore or "
                           f"git-server-publish, not {command}")
    except SettingsError as error:
        print(f"{command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as error:
        print(f"{command}: ERROR: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
