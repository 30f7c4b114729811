# The hub's own check of the account the gateway names (blueprints/analytics/sign_in.py). The
# gateway sends an account only for a sign-in name the stack maps (blueprints/sign_in_names.py);
# this check refuses, on the VM itself, any account that would hand a person the administrator,
# a service or sudo, whatever reached the header. It is included whole in jupyterhub_config.py
# and imported by the unit tests, so it uses only the standard library.
import grp
import json
import pwd
import re
import unicodedata
from collections.abc import Callable, Collection

# Local account names for analysts: what Debian's adduser accepts by default, lower case.
HUB_ACCOUNT_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# Written from the VM's user data: the mapped accounts, the administrator and the reserved names.
SIGN_IN_SETTINGS_FILE = "/etc/trust-blueprints/jupyterhub-sign-in.json"
# Supplementary groups that give an account power over the machine or a service's data.
PRIVILEGED_GROUPS = frozenset({"root", "sudo", "admin", "wheel", "adm", "shadow", "disk", "staff",
                               "systemd-journal", "docker", "lxd", "libvirt"})
# Debian's "users" group (gid 100) is the only system-range group an analyst may belong to.
USERS_GROUP = "users"
FIRST_PERSON_ID = 1000


def folded(name: str) -> str:
    """How a name is compared with reserved ones: NFKC-normalised, then case-folded, so full-width
    and other compatibility variants (and upper case) of "root" all compare equal to it."""
    return unicodedata.normalize("NFKC", name).casefold()


def _local_groups(name: str) -> list[tuple[str, int]]:
    """(group, gid) of every group that lists ``name`` as a member, and its primary group."""
    groups = [(group.gr_name, group.gr_gid) for group in grp.getgrall() if name in group.gr_mem]
    try:
        primary = pwd.getpwnam(name).pw_gid
        groups.append((grp.getgrgid(primary).gr_name, primary))
    except KeyError:
        pass
    return groups


def _local_uid(name: str) -> int | None:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def refusal(account: str, identity: str, settings: dict,
            uid_of: Callable[[str], int | None] = _local_uid,
            groups_of: Callable[[str], list[tuple[str, int]]] = _local_groups) -> str | None:
    """Why the gateway's ``account`` (for sign-in name ``identity``) may not sign in, or None.

    ``settings`` is the VM's sign-in settings: ``accounts`` (the stack's mapped accounts),
    ``administrator``, ``reserved`` and ``reserved_prefixes``.
    """
    if not account:
        return (f"the gateway named no account for sign-in name {identity!r}: it is not in the stack's "
                "roles.gateway.identity.accounts")
    plain = folded(account)
    administrator = folded(settings.get("administrator", ""))
    reserved: Collection[str] = {folded(name) for name in settings.get("reserved", ())}
    prefixes = tuple(folded(prefix) for prefix in settings.get("reserved_prefixes", ()))
    if not account.isascii():
        imitates = plain == administrator or plain in reserved or (prefixes and plain.startswith(prefixes))
        return (f"account {account!r} is not ASCII" + (f" and reads as {plain!r}, a protected account"
                                                        if imitates else "")
                + f" (sign-in name {identity!r})")
    if plain == administrator:
        return f"account {account!r} is the administrator's (sign-in name {identity!r})"
    if plain in reserved or (prefixes and plain.startswith(prefixes)):
        return f"account {account!r} is a system or service account (sign-in name {identity!r})"
    if plain != account:
        return f"account {account!r} is not in lower case (sign-in name {identity!r})"
    if not HUB_ACCOUNT_NAME.fullmatch(account):
        return (f"account {account!r} is not a name adduser accepts: a lowercase letter, then lowercase "
                f"letters, digits, _ or - (sign-in name {identity!r})")
    if account not in set(settings.get("accounts", ())):
        return f"account {account!r} is not one the stack maps anyone to (sign-in name {identity!r})"
    uid = uid_of(account)
    if uid is not None and uid < FIRST_PERSON_ID:
        return f"account {account!r} is a system account, uid {uid} (sign-in name {identity!r})"
    for group, gid in groups_of(account):
        if group in PRIVILEGED_GROUPS or (gid < FIRST_PERSON_ID and group != USERS_GROUP):
            return (f"account {account!r} is a member of group {group!r} (gid {gid}), which a person "
                    f"signing in must not hold (sign-in name {identity!r})")
    return None


def read_sign_in_settings(path: str = SIGN_IN_SETTINGS_FILE) -> dict:
    """The VM's sign-in settings; missing (settings never applied) means nobody may sign in."""
    try:
        with open(path) as settings:
            return json.load(settings)
    except FileNotFoundError:
        return {"accounts": []}
