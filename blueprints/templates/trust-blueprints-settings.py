#!/usr/bin/python3
"""trust-blueprints-settings: apply this VM's changeable settings from its Azure user data.

  trust-blueprints-settings --now          fetch the settings, write the files that changed and run
                                           the apply programs those files feed
  trust-blueprints-settings --show         fetch and check the settings; say what --now would change
  trust-blueprints-settings --files-only   write the files now and leave the apply programs to the
                                           next --now (first boot, before the role is installed)
  trust-blueprints-settings --check FILE   check a settings document (the raw user data) offline

The custom data a VM was created with carries its packages, programs and fixed configuration and
never changes; everything a stack edit can change (keys, users, teams, repositories, allowlists,
hub admins, what the gateway publishes) is in the VM's user data, which Azure updates in place
and serves to the VM from the instance metadata service. A timer runs --now every few minutes, so
an updated document is applied without a reboot. Secrets never travel this way.

Installed by every role's cloud-init (blueprints/templates/settings.yaml.j2); the document is
made by blueprints/vm_settings.py, which checks it with this program's own check_document.
Exit status: 0 applied or nothing to do, 2 the document is refused (nothing changed),
1 the settings could not be fetched or an apply program failed (it is tried again next run).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import grp
import hashlib
import json
import os
import posixpath
import pwd
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

FORMAT = "trust-blueprints-settings"
VERSIONS = (1,)
USER_DATA_URL = "http://169.254.169.254/metadata/instance/compute/userData?api-version=2021-01-01&format=text"
# Tests point these elsewhere; on a VM they are always the defaults.
ROOT = Path(os.environ.get("TRUST_BLUEPRINTS_SETTINGS_ROOT", "/"))
STATE_DIR = Path(os.environ.get("TRUST_BLUEPRINTS_SETTINGS_STATE", "/var/lib/trust-blueprints/settings"))
# Bounded: a first boot waits up to about three minutes for the metadata service; the timer tries again.
FETCH_DELAYS = (2, 4, 8, 15, 30, 30, 30, 60)
HOOK_TIMEOUT = 900

# The apply programs a document may name, and what each runs. Each is idempotent and is run only
# when one of its files changed (or its last run failed). The document names hooks; it never
# carries a command.
HOOKS: dict[str, list[str]] = {
    "git-server-apply": ["/usr/local/sbin/git-server-apply", "/etc/trust-blueprints/git-server.yaml"],
    "mirror-allowlist": ["/usr/local/sbin/mirror-allowlist", "apply",
                         "/etc/trust-blueprints/mirror/stack-allowlist.yaml"],
    # The hub keeps analysts' servers running across a restart (cleanup_servers is off).
    "jupyterhub": ["systemctl", "try-restart", "jupyterhub.service"],
    # Starts or stops an analytics VM's copy of the airlock's ingress (blueprints/analytics/ingress_copy.py).
    "analytics-ingress": ["/usr/local/sbin/analytics-ingress", "apply", "/etc/trust-blueprints/ingress.json"],
    # Analysts' accounts and sshd's rule for them (blueprints/analytics/analyst_accounts.py).
    "analytics-analysts": ["/usr/local/sbin/analytics-analysts", "/etc/trust-blueprints/analysts.json"],
    "gateway-jump-users": ["/bin/sh", "-c", "set -eu; while read -r name; do /usr/local/sbin/gateway-jump-user "
                           "\"$name\"; done < /etc/trust-blueprints/gateway/jump-users"],
    "gateway-sshd": ["/bin/sh", "-c", "/usr/sbin/sshd -t && systemctl try-reload-or-restart ssh.service"],
    "gateway-apache": ["/usr/local/sbin/trust-blueprints-gateway-setup"],
    # fail2ban reads its jails again (the web jail's ignore list); nothing to do while it is stopped.
    "gateway-fail2ban": ["systemctl", "try-reload-or-restart", "fail2ban.service"],
}

# Where a document may write. Secrets, programs and units are custom data's (or Key Vault's) alone.
ALLOWED_DIRECTORIES = ("/etc/trust-blueprints/", "/etc/ssh/trust-blueprints-keys/", "/var/www/trust-blueprints/")
ALLOWED_PATTERNS = (
    re.compile(r"/home/[a-z_][a-z0-9_.-]{0,31}/\.ssh/authorized_keys"),
    re.compile(r"/etc/ssh/sshd_config\.d/[0-9]{2}-trust-blueprints-[a-z0-9-]+\.conf"),
)
FORBIDDEN_DIRECTORIES = ("/etc/trust-blueprints/secrets/",)
PATH_PATTERN = re.compile(r"^(/[A-Za-z0-9_.@-]+)+$")
ACCOUNT_PATTERN = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
MODE_PATTERN = re.compile(r"^0[0-7]{3}$")
FILE_KEYS = {"path", "mode", "owner", "group", "content", "hooks"}
DOCUMENT_KEYS = {"format", "version", "machine", "role", "hooks", "files"}


class DocumentError(ValueError):
    """A settings document this program refuses; nothing is changed."""


class FetchError(RuntimeError):
    """The instance metadata service did not give this VM's user data."""


def log(message: str) -> None:
    print(f"trust-blueprints-settings: {message}", flush=True)


def check_document(raw: bytes) -> dict[str, Any]:
    """The parsed document, or DocumentError naming every problem found."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise DocumentError(f"the user data is not a JSON settings document ({error})") from None
    if not isinstance(document, dict):
        raise DocumentError("the user data is not a JSON object")
    if document.get("format") != FORMAT:
        raise DocumentError(f"format: {document.get('format')!r}; expected {FORMAT!r}")
    if document.get("version") not in VERSIONS:
        raise DocumentError(f"version: {document.get('version')!r}; this program reads versions "
                            f"{', '.join(map(str, VERSIONS))} (a newer document needs a rebuilt VM)")
    problems = [f"{key}: not a known key" for key in sorted(set(document) - DOCUMENT_KEYS)]
    problems += [f"{key}: missing" for key in sorted(DOCUMENT_KEYS - set(document))]
    if problems:
        raise DocumentError("; ".join(problems))
    for key in ("machine", "role"):
        if not isinstance(document[key], str) or not document[key]:
            problems.append(f"{key}: must be a non-empty string")
    hooks = document["hooks"]
    if not isinstance(hooks, list) or not all(isinstance(name, str) for name in hooks):
        raise DocumentError("hooks: must be a list of names")
    for name in hooks:
        if name not in HOOKS:
            problems.append(f"hooks: {name!r} is not one of {', '.join(sorted(HOOKS))}")
    if len(set(hooks)) != len(hooks):
        problems.append("hooks: a name is repeated")
    files = document["files"]
    if not isinstance(files, list):
        raise DocumentError("files: must be a list")
    seen: set[str] = set()
    for index, entry in enumerate(files):
        where = f"files[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object")
            continue
        if set(entry) != FILE_KEYS:
            problems.append(f"{where}: keys must be {', '.join(sorted(FILE_KEYS))} (got {', '.join(sorted(entry))})")
            continue
        path = entry["path"]
        problem = path_problem(path)
        if problem:
            problems.append(f"{where}.path {path!r}: {problem}")
        elif path in seen:
            problems.append(f"{where}.path {path!r}: listed twice")
        seen.add(str(path))
        if not isinstance(entry["mode"], str) or not MODE_PATTERN.match(entry["mode"]):
            problems.append(f"{where}.mode {entry['mode']!r}: must be an octal string such as \"0644\" "
                            "(no setuid, setgid or sticky bit)")
        for key in ("owner", "group"):
            if not isinstance(entry[key], str) or not ACCOUNT_PATTERN.match(entry[key]):
                problems.append(f"{where}.{key} {entry[key]!r}: must be an account name")
        if not isinstance(entry["content"], str):
            problems.append(f"{where}.content: must be text")
        if not isinstance(entry["hooks"], list) or not all(name in hooks for name in entry["hooks"]):
            problems.append(f"{where}.hooks {entry['hooks']!r}: each must be listed in the document's hooks")
    if problems:
        raise DocumentError("; ".join(problems))
    return document


def path_problem(path: Any) -> str | None:
    if not isinstance(path, str) or not PATH_PATTERN.match(path) or posixpath.normpath(path) != path:
        return "must be a plain absolute path (no '..', no doubled or trailing '/')"
    if ".." in path.split("/"):
        return "must not contain '..'"
    if path.startswith(FORBIDDEN_DIRECTORIES):
        return "secrets come from Key Vault, never from user data"
    if path.startswith(ALLOWED_DIRECTORIES) or any(pattern.fullmatch(path) for pattern in ALLOWED_PATTERNS):
        return None
    return (f"is outside what settings may write ({', '.join(ALLOWED_DIRECTORIES)}, an account's "
            "~/.ssh/authorized_keys, /etc/ssh/sshd_config.d/NN-trust-blueprints-*.conf)")


def fetch(delays: tuple[int, ...] = FETCH_DELAYS) -> bytes:
    """This VM's user data (Azure answers its base64), retried with a bounded backoff."""
    request = urllib.request.Request(USER_DATA_URL, headers={"Metadata": "true"})
    attempt = 0
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (a fixed http URL)
                text = response.read().decode("ascii").strip()
            if not text:
                raise FetchError("this VM has no user data: the deployment did not set it")
            return base64.b64decode(text, validate=True)
        except (OSError, UnicodeDecodeError, binascii.Error) as error:
            reason = f"HTTP {error.code}" if isinstance(error, urllib.error.HTTPError) else str(error)
            if attempt >= len(delays):
                raise FetchError(f"gave up on the instance metadata service after {attempt + 1} tries "
                                 f"({reason})") from None
            log(f"waiting for this VM's user data from the instance metadata service ({reason}); "
                f"next try in {delays[attempt]} s")
            time.sleep(delays[attempt])
            attempt += 1


def _target(path: str) -> Path:
    return ROOT / path.lstrip("/")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _ids(entry: dict[str, Any]) -> tuple[int, int]:
    try:
        return pwd.getpwnam(entry["owner"]).pw_uid, grp.getgrnam(entry["group"]).gr_gid
    except KeyError:
        raise DocumentError(f"{entry['path']}: no account {entry['owner']}:{entry['group']} on this VM") from None


def _up_to_date(entry: dict[str, Any], ids: tuple[int, int] | None) -> bool:
    target = _target(entry["path"])
    try:
        status = target.stat()
        same = target.read_bytes() == entry["content"].encode("utf-8")
    except OSError:
        return False
    if not same or (status.st_mode & 0o7777) != int(entry["mode"], 8):
        return False
    return ids is None or (status.st_uid, status.st_gid) == ids


def _make_parents(entry: dict[str, Any], ids: tuple[int, int] | None) -> None:
    parent = _target(entry["path"]).parent
    missing = []
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        # An account's ~/.ssh belongs to the account and stays private; anything else is root's.
        private = directory.name == ".ssh"
        directory.mkdir(mode=0o700 if private else 0o755)
        if ids is not None and private:
            os.chown(directory, *ids)


def write_file(entry: dict[str, Any], ids: tuple[int, int] | None) -> None:
    """Atomically: a temporary file beside the target, its mode and owner set, then renamed."""
    _make_parents(entry, ids)
    target = _target(entry["path"])
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(entry["content"].encode("utf-8"))
            stream.flush()
            os.fchmod(stream.fileno(), int(entry["mode"], 8))
            if ids is not None:
                os.fchown(stream.fileno(), *ids)
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _load_state() -> dict[str, Any]:
    try:
        state = json.loads((STATE_DIR / "applied.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"files": {}, "hooks": {}}
    return {"files": dict(state.get("files") or {}), "hooks": dict(state.get("hooks") or {})}


def _save_state(state: dict[str, Any]) -> None:
    handle, temporary = tempfile.mkstemp(prefix=".applied.", dir=STATE_DIR)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(state, stream, indent=1, sort_keys=True)
    os.replace(temporary, STATE_DIR / "applied.json")


def hook_digest(document: dict[str, Any], hook: str) -> str:
    """What a hook last applied: every file that feeds it, with its content, mode and owner."""
    inputs = sorted((entry["path"], _digest(entry["content"]), entry["mode"], entry["owner"], entry["group"])
                    for entry in document["files"] if hook in entry["hooks"])
    return _digest(json.dumps(inputs))


def plan(document: dict[str, Any], state: dict[str, Any], as_root: bool) -> tuple[list[dict], list[str], list[str]]:
    """(files to write, managed files to remove, hooks to run, in the document's order)."""
    ids = {entry["path"]: (_ids(entry) if as_root else None) for entry in document["files"]}
    writes = [entry for entry in document["files"] if not _up_to_date(entry, ids[entry["path"]])]
    listed = {entry["path"] for entry in document["files"]}
    removals = sorted(path for path in state["files"] if path not in listed and path_problem(path) is None)
    touched = {entry["path"] for entry in writes} | set(removals)
    fed = {path: set(info.get("hooks") or []) for path, info in state["files"].items()}
    fed.update({entry["path"]: set(entry["hooks"]) for entry in document["files"]})
    hooks = [hook for hook in document["hooks"]
             if state["hooks"].get(hook) != hook_digest(document, hook)
             or any(hook in fed.get(path, ()) for path in touched)]
    return writes, removals, hooks


def apply(document: dict[str, Any], dry_run: bool = False, run_hooks: bool = True) -> int:
    as_root = os.geteuid() == 0
    state = _load_state()
    writes, removals, hooks = plan(document, state, as_root)
    if not (writes or removals or hooks):
        log(f"settings of {document['machine']} are applied; nothing to do")
        return 0
    for entry in writes:
        log(f"{'would write' if dry_run else 'writing'} {entry['path']} ({entry['mode']} "
            f"{entry['owner']}:{entry['group']})")
    for path in removals:
        log(f"{'would remove' if dry_run else 'removing'} {path} (no longer in the settings)")
    if dry_run:
        for hook in hooks:
            log(f"would run {hook}: {' '.join(HOOKS[hook])}")
        return 0
    for entry in writes:
        write_file(entry, _ids(entry) if as_root else None)
    for path in removals:
        _target(path).unlink(missing_ok=True)
    state["files"] = {entry["path"]: {"sha256": _digest(entry["content"]), "hooks": entry["hooks"]}
                      for entry in document["files"]}
    for hook in document["hooks"]:
        if hook not in hooks:
            state["hooks"][hook] = hook_digest(document, hook)
    for stale in set(state["hooks"]) - set(document["hooks"]):
        del state["hooks"][stale]
    if not run_hooks:
        # Not recorded as applied: the next --now runs them.
        for hook in hooks:
            state["hooks"].pop(hook, None)
        _save_state(state)
        log(f"files written; left for the next --now: {', '.join(hooks) or 'nothing'}")
        return 0
    failed = []
    for hook in hooks:
        log(f"running {hook}: {' '.join(HOOKS[hook])}")
        try:
            result = subprocess.run(HOOKS[hook], capture_output=True, text=True, timeout=HOOK_TIMEOUT, check=False)
            output, status = (result.stdout + result.stderr).strip(), result.returncode
        except (OSError, subprocess.TimeoutExpired) as error:
            output, status = str(error), -1
        for line in output.splitlines():
            log(f"  {hook}: {line}")
        if status == 0:
            state["hooks"][hook] = hook_digest(document, hook)
        else:
            # Forgotten, so the next run tries it again with the same files.
            state["hooks"].pop(hook, None)
            failed.append(hook)
            log(f"ERROR: {hook} failed (exit {status}); it runs again on the next try")
    _save_state(state)
    if failed:
        return 1
    log(f"settings of {document['machine']} applied: {len(writes)} files written, {len(removals)} removed, "
        f"{len(hooks)} apply programs run")
    return 0


def _for_this_machine(document: dict[str, Any]) -> None:
    here = socket.gethostname().split(".", 1)[0]
    if document["machine"] != here:
        raise DocumentError(f"machine: the settings are for {document['machine']!r}, this VM is {here!r}")


def main(argv: list[str]) -> int:
    if argv not in (["--now"], ["--show"], ["--files-only"]) and not (len(argv) == 2 and argv[0] == "--check"):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    if argv[0] == "--check":
        try:
            document = check_document(Path(argv[1]).read_bytes())
        except (OSError, DocumentError) as error:
            log(f"{argv[1]}: {error}")
            return 2
        log(f"{argv[1]}: settings for {document['machine']} ({document['role']}): {len(document['files'])} files, "
            f"hooks {', '.join(document['hooks']) or '(none)'}")
        return 0
    STATE_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(STATE_DIR / "lock", "w") as lock:
        # One run at a time: the timer and a person's --now wait for each other.
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            document = check_document(fetch())
            _for_this_machine(document)
            return apply(document, dry_run=argv[0] == "--show", run_hooks=argv[0] != "--files-only")
        except DocumentError as error:
            log(f"ERROR: the settings are refused, nothing was changed: {error}")
            return 2
        except FetchError as error:
            log(f"ERROR: {error}")
            return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
