"""analytics-ingress: a read-only copy of the airlock's ingress container on the VMs the stack names.

Runs on an analytics VM (Python's standard library and Debian's rclone only; it cannot import the
project). Two commands:

- ``apply SETTINGS`` (the settings program's ``analytics-ingress`` hook, so an edit of
  ``airlock.readers`` reaches the VM in place): on a reading VM, writes rclone's configuration
  (the account from the VM's tag, the VM's managed identity to sign in: no key on the VM), makes
  the root-owned folder and starts the timer; on any other VM, stops the timer and removes the
  configuration and every copied file, as the grant is gone too.
- ``sync``: ``rclone sync`` of the container into the folder (the timer's service, and
  ``systemctl start analytics-ingress-sync.service`` at once). Files are root's, mode 0644, in
  folders of mode 0755: analysts read them and can change nothing.

A copy rather than an ``rclone mount``: it needs no FUSE device and no daemon serving every read
from storage, it is plain files with plain permissions, and it behaves the same on Azure and in
the lab's containers (which have no FUSE). What keeps ingress read-only against an analyst who asks
the metadata service for the VM's token is the grant (Storage Blob Data Reader on this container
alone), never this program.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

RCLONE_CONFIG = Path("/etc/trust-blueprints/ingress-rclone.conf")
TIMER = "analytics-ingress-sync.timer"
REMOTE = "airlock"
IMDS_TAGS = "http://169.254.169.254/metadata/instance/compute/tagsList?api-version=2021-02-01"
ACCOUNT_PATTERN = re.compile(r"^[a-z0-9]{3,24}$")
CONTAINER_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")
# The copy goes under /srv only, never over a folder the system or an analyst owns.
FOLDER_PATTERN = re.compile(r"^/srv/[a-z0-9][a-z0-9._-]{0,63}$")
SETTINGS_KEYS = {"reader", "container", "folder", "account_tag"}


class SettingsError(ValueError):
    """The settings file is not one this program accepts; nothing was changed."""


def load_settings(path: Path) -> dict[str, Any]:
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SettingsError(f"{path}: cannot be read as JSON ({error})") from None
    if not isinstance(settings, dict) or set(settings) != SETTINGS_KEYS:
        raise SettingsError(f"{path}: must hold exactly {', '.join(sorted(SETTINGS_KEYS))}")
    if not isinstance(settings["reader"], bool):
        raise SettingsError(f"{path}: reader {settings['reader']!r} must be true or false")
    for key, pattern in (("container", CONTAINER_PATTERN), ("folder", FOLDER_PATTERN)):
        if not isinstance(settings[key], str) or not pattern.match(settings[key]):
            raise SettingsError(f"{path}: {key} {settings[key]!r} must match {pattern.pattern}")
    if not isinstance(settings["account_tag"], str) or not settings["account_tag"]:
        raise SettingsError(f"{path}: account_tag must name a VM tag")
    return settings


def account_in_tags(tags: list[dict[str, str]], tag: str) -> str:
    account = next((entry.get("value") for entry in tags if entry.get("name") == tag), None)
    if not account or not ACCOUNT_PATTERN.match(account):
        raise RuntimeError(f"this VM's tag {tag} is {account!r}: it must name the airlock's storage account")
    return account


def _tags(delays: tuple[int, ...] = (0, 2, 4, 8, 16)) -> list[dict[str, str]]:
    failure: Exception | None = None
    for delay in delays:
        time.sleep(delay)
        try:
            request = urllib.request.Request(IMDS_TAGS, headers={"Metadata": "true"})
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (a fixed http URL)
                return list(json.load(response))
        except (OSError, ValueError) as error:
            failure = error
    raise RuntimeError(f"cannot read this VM's tags from the instance metadata service ({failure!r})")


def rclone_config(account: str) -> str:
    # The VM's managed identity signs in; its grant allows reading one container and nothing else.
    return f"[{REMOTE}]\ntype = azureblob\naccount = {account}\nuse_msi = true\n"


def _write_if_changed(path: Path, text: str, mode: int) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)
    return True


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True)


def apply(settings_path: Path, tags: Any = _tags, run: Any = _run, root: Path = Path("/")) -> str:
    """Make the VM match its settings; returns what it did, in a few words. (``root``: tests only.)"""
    settings = load_settings(settings_path)
    folder = root / settings["folder"].lstrip("/")
    config = root / str(RCLONE_CONFIG).lstrip("/")
    if settings["reader"]:
        account = account_in_tags(tags(), settings["account_tag"])
        _write_if_changed(config, rclone_config(account), 0o600)
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        _root_owned(folder, 0o755)
        run(["systemctl", "enable", "--now", "--quiet", TIMER])
        return f"reads {account}/{settings['container']} into {folder}"
    run(["systemctl", "disable", "--now", "--quiet", TIMER])
    config.unlink(missing_ok=True)
    # No grant, no copy: what an earlier grant brought here goes too.
    shutil.rmtree(folder, ignore_errors=True)
    return "does not read ingress"


def _root_owned(path: Path, mode: int) -> None:
    if os.geteuid() == 0:  # always on a VM; an unprivileged test keeps its own files
        os.lchown(path, 0, 0)
    if not path.is_symlink():
        path.chmod(mode)


def sync(settings_path: Path, run: Any = _run, root: Path = Path("/")) -> str:
    """Copy the container into the folder; files root's 0644, folders 0755. (``root``: tests only.)"""
    settings = load_settings(settings_path)
    config = root / str(RCLONE_CONFIG).lstrip("/")
    if not settings["reader"] or not config.exists():
        return "not a reader: nothing to copy"
    os.umask(0o022)
    folder = root / settings["folder"].lstrip("/")
    run(["rclone", "--config", str(config), "--retries", "3", "--low-level-retries", "5",
         "sync", f"{REMOTE}:{settings['container']}", str(folder)])
    # rclone writes with the umask above; anything older with another mode is put right.
    for path in [folder, *folder.rglob("*")]:
        _root_owned(path, 0o755 if path.is_dir() else 0o644)
    return f"copied {settings['container']} into {folder}"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("apply", "sync"):
        print("usage: analytics-ingress apply|sync SETTINGS_FILE", file=sys.stderr)
        return 2
    try:
        done = (apply if argv[0] == "apply" else sync)(Path(argv[1]))
    except SettingsError as error:
        print(f"analytics-ingress: {error}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
        print(f"analytics-ingress: {argv[0]} failed: {error}", file=sys.stderr)
        return 1
    print(f"analytics-ingress: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
