"""Checks across fields that a schema cannot express: address plan, keys, roles, names."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import posixpath
import struct
import uuid
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from blueprints.accounts import reserved_account, reserved_account_hint
from blueprints.address_ranges import is_private, parse_range
from blueprints.airlock_egress import egress_problems
from blueprints.airlock_settings import airlock_problems
from blueprints.data_sources import data_source_problems
from blueprints.gateway.registration import registration_problems
from blueprints.git_server.settings import (
    BACKUP_ROOTS,
    GIT_RESERVED_ACCOUNTS,
    GIT_RESERVED_REPOSITORIES,
    PACKAGE_REQUESTS_REPOSITORY,
    backup_directory_problem,
    git_review_problems,
)
from blueprints.network_flows import ENDPOINT_SUBNET, endpoint_address_clashes, missing_platform_routes
from blueprints.package_mirror.settings import ALLOWLIST_MAX_ENTRIES, canonical_pypi, split_pypi_entry
from blueprints.regions import region_facts
from blueprints.roles import all_roles, role_names
from blueprints.settings_fields import APPROVED_VM_SIZES_ALLOWED, approved_vm_size
from blueprints.sign_in_names import mapping_problems
from blueprints.topology import FIRST_USABLE_HOST, plan_machines
from modules.naming import NAME_RULES, Naming, name_problems
from validation.analyst_checks import analyst_access_problems
from validation.custom_data_secrets import CUSTOM_DATA_SECRET_PATTERNS
from validation.problems import MISSING, Problem

# Azure refuses these admin user names on Linux VMs.
RESERVED_USERNAMES = {
    "administrator", "admin", "user", "user1", "test", "user2", "test1", "user3", "admin1", "1",
    "123", "a", "actuser", "adm", "admin2", "aspnet", "backup", "console", "david", "guest",
    "john", "owner", "root", "server", "sql", "support", "support_388945a0", "sys", "test2",
    "test3", "user4", "user5",
}
KEY_TYPES = {"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"}
MIN_RSA_BITS = 3072
AZURE_RESERVED_ADDRESSES = 5  # the first four and the last address of every subnet
WIDEST_CLIENT_PREFIX = 8  # a client range wider than /8 is "the Internet" in practice
__all__ = ["GIT_RESERVED_ACCOUNTS", "GIT_RESERVED_REPOSITORIES", "PACKAGE_REQUESTS_REPOSITORY", "allowlist_problems",
           "semantic_problems"]
def _opens_ssh_to_clients(config: dict[str, Any]) -> bool:
    gateway = config["roles"].get("gateway")
    return bool(gateway) and gateway.get("kind") == "self-hosted"


def _parsed_subnets(config: dict[str, Any]) -> dict[str, ipaddress.IPv4Network]:
    """The subnets whose ranges parse (the others are reported by _address_plan)."""
    parsed = {name: parse_range(value) for name, value in config["network"]["subnets"].items() if value is not None}
    return {name: network for name, network in parsed.items() if isinstance(network, ipaddress.IPv4Network)}


def free_range(config: dict[str, Any], prefix: int, replacing: str | None = None) -> str:
    """A hint naming the first /prefix of the stack's address space that no other subnet of the stack
    uses (``replacing``: the subnet the range would replace, whose own range counts as free)."""
    space = parse_range(config["network"]["address_space"])
    if isinstance(space, str):
        return "first give network.address_space a valid private range"
    if prefix < space.prefixlen:
        return f"network.address_space {space} is smaller than a /{prefix}; widen it first"
    taken = [network for name, network in _parsed_subnets(config).items() if name != replacing]
    for candidate in space.subnets(new_prefix=prefix):
        if not any(candidate.overlaps(other) for other in taken):
            return f"e.g. {candidate}, free in the address space {space}"
    return f"the address space {space} has no free /{prefix} left; widen network.address_space"


def _smallest_prefix(hosts: int) -> int:
    """The longest prefix whose subnet holds ``hosts`` machines besides Azure's 5 reserved addresses."""
    prefix = 29
    while prefix > 8 and 2 ** (32 - prefix) - AZURE_RESERVED_ADDRESSES < hosts:
        prefix -= 1
    return prefix


def _address_plan(config: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    network = config["network"]
    space = parse_range(network["address_space"])
    if isinstance(space, str):
        problems.append(Problem("network.address_space", network["address_space"],
                                space))
    elif not is_private(space):
        problems.append(Problem("network.address_space", network["address_space"],
                                "must be a private range (10/8, 172.16/12, 192.168/16)"))
    subnets: dict[str, ipaddress.IPv4Network] = {}
    for name, value in network["subnets"].items():
        if value is None:
            continue
        parsed = parse_range(value)
        if isinstance(parsed, str):
            problems.append(Problem(f"network.subnets.{name}", value, parsed))
            continue
        if parsed.prefixlen > 29:
            problems.append(Problem(f"network.subnets.{name}", value,
                                    "must be /29 or larger (Azure's smallest subnet)"))
        if name == "bastion" and parsed.prefixlen > 26:
            problems.append(Problem("network.subnets.bastion", value,
                                    "must be /26 or larger (Azure Bastion's requirement)"))
        if isinstance(space, ipaddress.IPv4Network) and not parsed.subnet_of(space):
            problems.append(Problem(f"network.subnets.{name}", value,
                                    f"must lie inside the address space {space}",
                                    free_range(config, max(parsed.prefixlen, space.prefixlen), replacing=name)))
        subnets[name] = parsed
    names = sorted(subnets)
    for index, first in enumerate(names):
        for second in names[index + 1:]:
            if subnets[first].overlaps(subnets[second]):
                problems.append(Problem(f"network.subnets.{second}", str(subnets[second]),
                                        f"overlaps subnet {first} ({subnets[first]})",
                                        "give every subnet its own range, "
                                        + free_range(config, subnets[second].prefixlen, replacing=second)))
    for index, value in enumerate(network["allowed_client_ranges"]):
        path = f"network.allowed_client_ranges[{index}]"
        parsed = parse_range(value)
        if isinstance(parsed, str):
            problems.append(Problem(path, value, parsed))
            continue
        if parsed.prefixlen < WIDEST_CLIENT_PREFIX:
            if not network["allow_clients_from_anywhere"]:
                problems.append(Problem(path, value,
                                        f"is wider than /{WIDEST_CLIENT_PREFIX}, close to the whole Internet",
                                        "name the trust's VPN or office ranges; if you really mean it, "
                                        "set network.allow_clients_from_anywhere: true"))
            elif _opens_ssh_to_clients(config) and not is_private(parsed):
                # The self-hosted gateway's jump host listens on SSH for the client ranges, and mandatory
                # policy TB-NET-001 refuses a management port open to the Internet, asked for or not.
                problems.append(Problem(path, value,
                                        f"is wider than /{WIDEST_CLIENT_PREFIX} and would open the self-hosted "
                                        "gateway's SSH jump host to the whole Internet, which mandatory policy "
                                        "TB-NET-001 refuses even with allow_clients_from_anywhere",
                                        "name the trust's VPN or office ranges, or use roles.gateway.kind: "
                                        "bastion (HTTPS only)"))
            continue  # asked for by name: it contains everything, the environment's own range included
        if isinstance(space, ipaddress.IPv4Network) and parsed.overlaps(space):
            problems.append(Problem(path, value, f"overlaps the environment's own address space {space}",
                                    "client ranges are where analysts connect from, outside Azure"))
    for index, value in enumerate(network["private_client_ranges"]):
        path = f"network.private_client_ranges[{index}]"
        parsed = parse_range(value)
        if isinstance(parsed, str):
            problems.append(Problem(path, value, parsed))
            continue
        if not is_private(parsed):
            problems.append(Problem(path, value, "must be a private range (10/8, 172.16/12, 192.168/16)",
                                    "public ranges belong in network.allowed_client_ranges, for the gateway"))
        elif parsed.prefixlen < WIDEST_CLIENT_PREFIX:
            problems.append(Problem(path, value, f"must be /{WIDEST_CLIENT_PREFIX} or narrower",
                                    "name the subnets the analysts' machines are on"))
        if isinstance(space, ipaddress.IPv4Network) and parsed.overlaps(space):
            problems.append(Problem(path, value, f"overlaps the environment's own address space {space}",
                                    "peered networks need address ranges of their own"))
    return problems


def _capacity(config: dict[str, Any]) -> list[Problem]:
    """Every machine gets a usable address of its subnet, and no two machines the same one.

    Addresses are handed out as blueprints/topology.py does: the subnet's first usable host plus
    the role's first_host plus the machine's index. Azure keeps the first four addresses and the
    last one of every subnet.
    """
    problems: list[Problem] = []
    subnets = _parsed_subnets(config)
    holders: dict[ipaddress.IPv4Address, str] = {}
    for declared in all_roles():
        settings = config["roles"].get(declared.name)
        network = subnets.get(declared.subnet)
        if not settings or network is None:
            continue
        names = declared.machine_names(settings)
        if not names:
            continue
        field = f"roles.{declared.name}.count" if declared.numbered else f"roles.{declared.name}"
        last_usable = network.broadcast_address - 1
        first = network.network_address + FIRST_USABLE_HOST + declared.first_host
        room = max(0, int(last_usable) - int(first) + 1)
        if len(names) > room:
            needed = _smallest_prefix(declared.first_host + len(names))
            problems.append(Problem(
                field, len(names) if declared.numbered else declared.name,
                f"needs {len(names)} address{'es' if len(names) != 1 else ''} in the {declared.subnet} subnet "
                f"({network}), which has room for {room} from its first address for this role "
                f"({AZURE_RESERVED_ADDRESSES} of its {network.num_addresses} addresses are Azure's)",
                f"fewer machines, or a {declared.subnet} subnet of /{needed} or larger: "
                + free_range(config, needed, replacing=declared.subnet)))
            continue
        for index, name in enumerate(names):
            address = first + index
            if address in holders:
                problems.append(Problem(field, name, f"would give machine {name} the address {address}, "
                                        f"already machine {holders[address]}'s",
                                        "roles sharing a subnet must not overlap (blueprints/<role>/role.py "
                                        "first_host)"))
            holders.setdefault(address, name)
    return problems


def _ssh_key_problem(key: str) -> str | None:
    """Why ``key`` is not one acceptable OpenSSH public key line, or None.

    Exactly "type base64 [comment]" on one line (no options prefix such as command="..."),
    of an allowed type, and loaded as a key by cryptography (so an ECDSA point off its curve,
    a truncated body or trailing bytes are refused); RSA keys of at least MIN_RSA_BITS bits.
    """
    if len(key.splitlines()) > 1 or key != key.strip():
        return "must be one OpenSSH public key line, with nothing before or after it"
    parts = key.split(None, 2)
    if len(parts) < 2:
        return "is not an OpenSSH public key line (type, base64 key, optional comment)"
    kind, blob = parts[0], parts[1]
    if kind not in KEY_TYPES:
        return (f"has key type {kind!r}; allowed: {', '.join(sorted(KEY_TYPES))} "
                "(a line starts with its type: no options such as command= or from=)")
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return "has a key body that is not valid base64"
    fields: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            return "has a truncated key body"
        (length,) = struct.unpack(">I", raw[offset:offset + 4])
        offset += 4
        if offset + length > len(raw):
            return "has a truncated key body"
        fields.append(raw[offset:offset + length])
        offset += length
    if not fields or fields[0].decode("ascii", "replace") != kind:
        return f"says {kind} but its body is a different key type"
    try:
        loaded = serialization.load_ssh_public_key(f"{kind} {blob}".encode("ascii"))
    except (ValueError, UnsupportedAlgorithm) as error:
        return f"is not a valid {kind} public key: {error}"
    if isinstance(loaded, rsa.RSAPublicKey) and loaded.key_size < MIN_RSA_BITS:
        return f"is an RSA key of {loaded.key_size} bits; at least {MIN_RSA_BITS} are required"
    return None


def _account_problem(name: str, admin_username: str | None) -> str | None:
    """Why a person's account name cannot be used, or None."""
    if reserved_account(name):
        return "is an account the VMs already have (a Debian system or service account)"
    if admin_username is not None and name == admin_username:
        return f"is the administrator's account (admin.username: {admin_username})"
    return None


def _admin(config: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    username = config["admin"]["username"]
    if username in RESERVED_USERNAMES:
        problems.append(Problem("admin.username", username, "is a name Azure reserves",
                                "choose a trust-specific name such as trustadmin"))
    elif reserved_account(username):
        problems.append(Problem("admin.username", username,
                                "is an account the VMs already have (a Debian system or service account)",
                                "choose a trust-specific name such as trustadmin; " + reserved_account_hint()))
    for index, key in enumerate(config["admin"]["ssh_public_keys"]):
        problem = _ssh_key_problem(key)
        if problem:
            problems.append(Problem(f"admin.ssh_public_keys[{index}]", key, problem,
                                    "paste the single line of a .pub file, e.g. from ssh-keygen -t ed25519"))
    return problems


def _sign_in_accounts(gateway: dict[str, Any], admin_username: str) -> list[Problem]:
    """roles.gateway.identity.accounts: one account per person, never the administrator or a service."""
    entries = (gateway.get("identity") or {}).get("accounts", [])
    return [Problem(f"roles.gateway.identity.accounts[{index}].{field}", value, problem, hint)
            for index, field, value, problem, hint in mapping_problems(entries, admin_username)]


def _jump_users(gateway: dict[str, Any], admin_username: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, user in enumerate(gateway.get("ssh_users", [])):
        path = f"roles.gateway.ssh_users[{index}]"
        account = _account_problem(user["name"], admin_username)
        if account:
            problems.append(Problem(f"{path}.name", user["name"], account,
                                    "jump-host users are analysts; choose their own account name; "
                                    + reserved_account_hint()))
        elif user["name"] in RESERVED_USERNAMES:
            problems.append(Problem(f"{path}.name", user["name"], "is the administrator's or a reserved name",
                                    "jump-host users are analysts; choose their own account name"))
        elif user["name"] in seen:
            problems.append(Problem(f"{path}.name", user["name"], "appears twice", "list each user once"))
        seen.add(user["name"])
        problem = _ssh_key_problem(user["ssh_public_key"])
        if problem:
            problems.append(Problem(f"{path}.ssh_public_key", user["ssh_public_key"], problem,
                                    "paste the single line of the user's .pub file"))
    return problems


def _roles(config: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    roles = config["roles"]
    subnets = config["network"]["subnets"]
    if not roles:
        names = role_names()
        problems.append(Problem("roles", {}, "must name at least one role",
                                ", ".join(names[:-1]) + " or " + names[-1]))
    for declared in all_roles():
        settings = roles.get(declared.name)
        if settings and declared.has_machines(settings) and not subnets.get(declared.subnet):
            problems.append(Problem(f"network.subnets.{declared.subnet}", None, f"is required by roles.{declared.name}",
                                    f"give the {declared.subnet} subnet a range inside the address space, "
                                    + free_range(config, 24)))
    gateway = roles.get("gateway")
    if gateway and not config["network"]["allowed_client_ranges"]:
        problems.append(Problem("network.allowed_client_ranges", [], "needs at least one range when roles.gateway "
                                "is set", "the trust's VPN or office egress ranges, e.g. 203.0.113.0/24"))
    if gateway and gateway["kind"] == "bastion" and not subnets.get("bastion"):
        problems.append(Problem("network.subnets.bastion", None, "is required by roles.gateway.kind: bastion",
                                "add a /26 range, " + free_range(config, 26)))
    if gateway and gateway["kind"] == "self-hosted":
        for key in ("hostname", "identity"):
            if key not in gateway:
                problems.append(Problem(f"roles.gateway.{key}", None, "is required for a self-hosted gateway",
                                        "the gateway signs analysts in with Entra ID at this host name"))
    if gateway:
        problems += _jump_users(gateway, config["admin"]["username"])
        problems += _sign_in_accounts(gateway, config["admin"]["username"])
    for declared in all_roles():
        if declared.name not in roles:
            continue
        for other, why in declared.requires:
            # A landing zone's remote access is the hub's Bastion (validation/landing_zone_checks.py).
            if other == "gateway" and config["network"].get("landing_zone"):
                continue
            if other not in roles:
                problems.append(Problem(f"roles.{other}", None, f"is required by roles.{declared.name}", why))
    mirror = roles.get("package_mirror")
    if mirror and mirror["mode"] == "open" and any(mirror["allowlists"].values()):
        problems.append(Problem("roles.package_mirror.allowlists", "...", "has no effect in open mode",
                                "set mode: curated, or remove the allowlists"))
    return problems


def _gateway_registration(config: dict[str, Any]) -> list[Problem]:
    """roles.gateway.identity: a client id, or a registration the program makes, never both."""
    return [Problem(*problem) for problem in registration_problems(config)]


def _git_server(config: dict[str, Any]) -> list[Problem]:
    """Names unique, keys sound, and every team and user an access list names exists."""
    git = config["roles"].get("git_server")
    if not git:
        return []
    base = "roles.git_server"
    problems: list[Problem] = []
    teams: set[str] = set()
    for index, team in enumerate(git["teams"]):
        path = f"{base}.teams[{index}].name"
        if team["name"] in teams:
            problems.append(Problem(path, team["name"], "names a team twice", "give every team its own name"))
        elif team["name"] == "all":
            problems.append(Problem(path, team["name"], "is reserved (@all means every user)"))
        teams.add(team["name"])
    users: set[str] = set()
    keys: dict[str, str] = {}
    for index, user in enumerate(git["users"]):
        path = f"{base}.users[{index}]"
        if user["name"] in users:
            problems.append(Problem(f"{path}.name", user["name"], "names a user twice",
                                    "one entry per person; each has one key"))
        elif user["name"] in GIT_RESERVED_ACCOUNTS:
            problems.append(Problem(f"{path}.name", user["name"], "is a name the Git server keeps for itself",
                                    "reserved: " + ", ".join(sorted(GIT_RESERVED_ACCOUNTS))))
        users.add(user["name"])
        key = user["ssh_public_key"]
        problem = _ssh_key_problem(key)
        if problem:
            problems.append(Problem(f"{path}.ssh_public_key", key, problem,
                                    "paste the single line of the person's .pub file"))
        elif key.split()[1] in keys:
            problems.append(Problem(f"{path}.ssh_public_key", key,
                                    f"is already the key of user {keys[key.split()[1]]}",
                                    "a key identifies one person; each needs their own"))
        else:
            keys[key.split()[1]] = user["name"]
        for team_index, team in enumerate(user["teams"]):
            if team not in teams:
                problems.append(Problem(f"{path}.teams[{team_index}]", team, "is not a team in roles.git_server.teams",
                                        "known teams: " + (", ".join(sorted(teams)) or "none")))
    repositories: set[str] = set()
    for index, repository in enumerate(git["repositories"]):
        path = f"{base}.repositories[{index}]"
        name = repository["name"]
        if name in repositories:
            problems.append(Problem(f"{path}.name", name, "names a repository twice"))
        elif name in GIT_RESERVED_REPOSITORIES or name.endswith(".git"):
            problems.append(Problem(f"{path}.name", name, "is reserved by the Git server",
                                    "not gitolite-admin or testing, and not ending in .git"))
        repositories.add(name)
        if repository["owner_team"] not in teams:
            problems.append(Problem(f"{path}.owner_team", repository["owner_team"],
                                    "is not a team in roles.git_server.teams",
                                    "known teams: " + (", ".join(sorted(teams)) or "none")))
        for field in ("maintainers", "writers", "readers"):
            for member_index, member in enumerate(repository[field]):
                known = (teams | {"all"}) if member.startswith("@") else users
                if member.lstrip("@") not in known:
                    kind = "team in roles.git_server.teams" if member.startswith("@") else \
                        "user in roles.git_server.users"
                    problems.append(Problem(f"{path}.{field}[{member_index}]", member, f"is not a {kind}",
                                            "teams are written @name; users by their name"))
    if not problems:  # reviewers are counted from sound teams and users (the Git server's own rule)
        problems += [Problem(f"{base}.{where}", value, allowed, "add a second maintainer, e.g. maintainers: "
                             "[first.person, second.person]") for where, value, allowed in git_review_problems(git)]
    return problems


def _backup_directory(config: dict[str, Any]) -> list[Problem]:
    """roles.git_server.backup.directory: normalised, no '..', below an allowed root."""
    git = config["roles"].get("git_server")
    if not git:
        return []
    path = "roles.git_server.backup.directory"
    directory = git["backup"]["directory"]
    problem = backup_directory_problem(directory)
    if problem:
        roots = "" if "must lie below" in problem else f" (allowed roots: {', '.join(BACKUP_ROOTS)})"
        return [Problem(path, directory, problem + roots,
                        "a directory of its own, e.g. /var/backups/git-server")]
    git["backup"]["directory"] = posixpath.normpath(directory)
    return []


def _analytics_admins(config: dict[str, Any]) -> list[Problem]:
    """roles.analytics.admin_users: people, each once, neither the administrator nor a system account."""
    analytics = config["roles"].get("analytics")
    if not analytics:
        return []
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, name in enumerate(analytics["admin_users"]):
        path = f"roles.analytics.admin_users[{index}]"
        account = _account_problem(name, config["admin"]["username"])
        if account:
            problems.append(Problem(path, name, account,
                                    "JupyterHub's administrators are analysts signed in through the gateway; "
                                    + reserved_account_hint()))
        elif name in seen:
            problems.append(Problem(path, name, "appears twice", "list each user once"))
        seen.add(name)
    return problems


def _allowlists(config: dict[str, Any]) -> list[Problem]:
    mirror = config["roles"].get("package_mirror")
    if not mirror:
        return []
    return allowlist_problems(mirror["allowlists"], "roles.package_mirror.allowlists")


def allowlist_problems(allowlists: dict[str, list[str]], base: str, first: int = 0) -> list[Problem]:
    """Allowlist entries unique (PyPI names under PEP 503) and PyPI specifiers that pip can read.

    Entries before index ``first`` are checked only as what later entries repeat (the
    allowlists file's entries come after the stack's own).
    """
    problems: list[Problem] = []
    for ecosystem, entries in allowlists.items():
        if len(entries or []) > ALLOWLIST_MAX_ENTRIES:
            # The mirror's program refuses a longer list at boot (the stack's and the file's together).
            problems.append(Problem(f"{base}.{ecosystem}" if not first else f"{base} {ecosystem}", MISSING,
                                    f"has {len(entries)} entries with the allowlists file's; the mirror takes at "
                                    f"most {ALLOWLIST_MAX_ENTRIES}", "keep each ecosystem's list to the packages "
                                    "analysts need"))
            continue
        seen: dict[str, str] = {}
        for index, entry in enumerate(entries or []):
            path = f"{base}.{ecosystem}[{index - first}]" if not first else f"{base} {ecosystem}"
            key = entry
            if ecosystem == "pypi":
                name, specifier = split_pypi_entry(entry)
                key = canonical_pypi(name)
                if specifier and index >= first:
                    try:
                        parsed = SpecifierSet(specifier)
                    except InvalidSpecifier as error:
                        problems.append(Problem(path, entry, f"has a version specifier pip refuses: {error}",
                                                "PEP 440 specifiers such as 'pandas>=2,<3'"))
                    else:
                        if not _satisfiable(parsed):
                            problems.append(Problem(path, entry, "has version specifiers that no version meets",
                                                    "the bounds contradict each other; e.g. 'pandas>=2,<3'"))
            if key in seen and index >= first:
                same = " (the same project under PEP 503 normalisation)" if seen[key] != entry else ""
                problems.append(Problem(path, entry, f"repeats {seen[key]!r}{same}", "list each package once"))
            seen.setdefault(key, entry)
    return problems


def _satisfiable(specifiers: SpecifierSet) -> bool:
    """Whether some version meets every specifier (``>=3,<2`` or ``<0`` meets none).

    The versions that meet a set form intervals whose ends are the versions it names, so it is
    enough to try each named version, one a hair above it, and versions below and above them
    all. ``===`` compares text, not versions: such a set is taken as meetable.
    """
    candidates = [Version("0"), Version("999999")]
    for specifier in specifiers:
        if specifier.operator == "===":
            return True
        try:
            named = Version(specifier.version.removesuffix(".*"))
        except InvalidVersion:
            return True
        release = ".".join(str(part) for part in named.release)
        epoch = f"{named.epoch}!" if named.epoch else ""
        candidates += [named, Version(f"{epoch}{release}.0.0.0.0.1")]
    return any(specifiers.contains(candidate, prereleases=True) for candidate in candidates)


def _names(config: dict[str, Any]) -> list[Problem]:
    # Any subscription will do: the hash a globally unique name ends in has a fixed length.
    naming = Naming(config["trust"]["short_name"], config["environment"], config["location"], str(uuid.UUID(int=0)))
    problems: list[Problem] = []
    parts = {"kv": [""], "vm": [machine.name for machine in plan_machines(config)]}
    for kind in NAME_RULES:
        for part in parts.get(kind, ["gateway"]):
            problem = name_problems(kind, naming.name(kind, part))
            if problem:
                problems.append(Problem("trust.short_name", config["trust"]["short_name"],
                                        f"makes a name Azure refuses: {problem}", "use a shorter short name"))
    return problems


def _vm_sizes(config: dict[str, Any]) -> list[Problem]:
    """Every machine's size is of an approved family (policy TB-VM-008) and offered in the stack's region,
    as far as its facts say (blueprints/regions.yaml)."""
    region = region_facts().regions.get(config["location"])
    problems: list[Problem] = []
    for declared in all_roles():
        settings = config["roles"].get(declared.name)
        if not settings or not declared.has_machines(settings):
            continue
        size = settings["vm_size"]
        if not approved_vm_size(size):
            problems.append(Problem(f"roles.{declared.name}.vm_size", size,
                                    f"is not in an approved size family (policy TB-VM-008); allowed: "
                                    f"{APPROVED_VM_SIZES_ALLOWED}",
                                    "approved sizes have premium storage, Trusted Launch and encryption at host"))
        elif region is not None and region.offers(size) is False:
            problems.append(Problem(f"roles.{declared.name}.vm_size", size,
                                    f"is not offered in {region.name} ({region.display_name})",
                                    f"sizes offered there: {', '.join(region.offered_sizes())}; "
                                    "the region facts are in blueprints/regions.yaml"))
    return problems


def _platform_routes(config: dict[str, Any]) -> list[Problem]:
    """Every VM reaches each platform service it needs (blueprints/network_flows.py PLATFORM_SERVICES), and
    no private endpoint's fixed address is a VM's."""
    problems = [Problem(f"network.subnets.{ENDPOINT_SUBNET}", config["network"]["subnets"].get(ENDPOINT_SUBNET),
                        f"leaves VM {machine} no route to {service}: {why}",
                        f"the private endpoints of Key Vault, Blob storage and Azure Monitor sit in the "
                        f"{ENDPOINT_SUBNET} subnet; give the stack one")
                for machine, service, why in missing_platform_routes(config)]
    problems += [Problem(f"network.subnets.{ENDPOINT_SUBNET}", config["network"]["subnets"][ENDPOINT_SUBNET],
                         f"is too small: the {endpoint} private endpoint's fixed address {address} is {machine}'s",
                         "private endpoints take the subnet's last usable addresses; use a larger subnet")
                 for endpoint, address, machine in endpoint_address_clashes(config)]
    return problems


def _text_fields(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every text value of a config with its dotted path."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _text_fields(item, f"{path}.{key}" if path else key)]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in _text_fields(item, f"{path}[{index}]")]
    return []


def secret_like_text(config: dict[str, Any]) -> list[Problem]:
    """Text that policy TB-VM-009 would take for a secret once the value is written into custom data.

    Every text value is looked at: the stack's values are what reach the VMs' custom data.
    """
    problems = []
    for path, text in _text_fields(config):
        for what, pattern in CUSTOM_DATA_SECRET_PATTERNS:
            if pattern.search(text):
                problems.append(Problem(path, text, f"looks like {what} to mandatory policy TB-VM-009 (no secrets "
                                        "in custom data), and the VMs' custom data carries this value",
                                        "secrets belong in Key Vault; reword the text (an SSH key's comment "
                                        "is free text)"))
                break
    return problems


def _data_sources(config: dict[str, Any]) -> list[Problem]:
    return [Problem(path, MISSING if value is None else value, allowed, hint)
            for path, value, allowed, hint in data_source_problems(config)]


def _airlock(config: dict[str, Any]) -> list[Problem]:
    # From the role declaration, not the topology: a stack whose roles lack a subnet still gets checked.
    settings = config["roles"].get("analytics")
    analytics = next(r for r in all_roles() if r.name == "analytics").machine_names(settings) if settings else []
    return [Problem(path, value, allowed, hint)
            for path, value, allowed, hint in airlock_problems(config, analytics, ENDPOINT_SUBNET)
            + egress_problems(config)]


def semantic_problems(config: dict[str, Any]) -> list[Problem]:
    """Every cross-field problem of a schema-valid config."""
    address = _address_plan(config)
    problems = (address + _admin(config) + _roles(config) + _gateway_registration(config) + _git_server(config)
                + _backup_directory(config) + analyst_access_problems(config)
                + _analytics_admins(config) + _data_sources(config)
                + _allowlists(config) + _vm_sizes(config) + secret_like_text(config))
    if not address:
        problems += _capacity(config) + _airlock(config)
    if not problems:  # names depend on a sound address plan and role set
        problems += _names(config) + _platform_routes(config)
    return problems
