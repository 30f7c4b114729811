#!/usr/bin/python3
"""mirror-allowlist: see and change what the trust's package mirror serves, without a redeploy.

  mirror-allowlist show                 mode, upstreams and the allowlists in force
  mirror-allowlist apply FILE           check FILE (keys pypi, npm, cran), apply it, report what changed
  mirror-allowlist pull [--again]       fetch the package-requests repository; apply allowlist.yaml from a
                                        commit on main not applied yet (--again: apply it even so)
  mirror-allowlist upstream NAME URL    point pypi, npm or cran at another upstream
  mirror-allowlist sync                 write every service's configuration again from the current state

The allowlist file is YAML with up to three keys, each a list (missing key = empty list):

  pypi: [numpy, "pandas>=2,<3"]     # PyPI project names, optionally with version specifiers
  npm: [left-pad, "@types/node"]     # npm package names, scoped or not
  cran: [dplyr, ggplot2]             # CRAN package names (case matters)

Installed by the package mirror's cloud-init; it needs only Python and python3-yaml.
Exit status: 0 done, 2 bad input (nothing changed), 1 a service refused the new configuration.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

STATE_DIR = Path(os.environ.get("MIRROR_STATE_DIR", "/etc/trust-blueprints/mirror"))
SETTINGS = STATE_DIR / "settings.json"
CURRENT = STATE_DIR / "allowlist.yaml"
DEVPI_PASSWORD = STATE_DIR / "devpi-root-password"
NGINX_DIR = Path("/etc/nginx/trust-mirror")
VERDACCIO_CONFIG = Path("/etc/verdaccio/config.yaml")
VERDACCIO_PING = "http://127.0.0.1:4873/-/ping"
REQUESTS_CHECKOUT = Path("/var/lib/trust-mirror/package-requests")
REQUESTS_KEY = Path("/etc/trust-blueprints/secrets/package-requests-reader")
# The commit of package-requests last applied: a pull applies only a new commit, so a list
# applied by hand (mirror-allowlist apply) stays until the next merge to main.
REQUESTS_APPLIED = REQUESTS_CHECKOUT.parent / "package-requests-applied"
DEVPI = "http://127.0.0.1:3141"
ECOSYSTEMS = ("pypi", "npm", "cran")
UPSTREAM_PATTERN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$")
SPECIFIER_PATTERN = re.compile(
    r" *(~=|===|==|!=|<=|>=|<|>) *[A-Za-z0-9.*+!_-]+( *, *(~=|===|==|!=|<=|>=|<|>) *[A-Za-z0-9.*+!_-]+)* *"
)
MAX_ENTRIES = 5000


class BadInputError(Exception):
    """Input that cannot be applied; the message names the entry and what is allowed."""


class ServiceRefusedError(Exception):
    """A service did not accept the new configuration."""


def load_settings() -> dict[str, Any]:
    return json.loads(SETTINGS.read_text())


def save_settings(settings: dict[str, Any]) -> None:
    write_atomically(SETTINGS, json.dumps(settings, indent=2) + "\n", 0o644)


def canonical_pypi(name: str) -> str:
    """PEP 503 normal form: the name pip puts in index URLs."""
    return re.sub(r"[-_.]+", "-", name).lower()


def split_pypi_entry(entry: str) -> tuple[str, str]:
    match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(.*)$", entry.strip())
    if not match:
        return entry, ""
    name, rest = match.group(1), match.group(2)
    # A trailing separator belongs to no valid name: give it back to the specifier check.
    while name and name[-1] in "._-":
        rest = name[-1] + rest
        name = name[:-1]
    return name, rest.strip()


def check_allowlists(document: Any, patterns: dict[str, str], source: str) -> dict[str, list[str]]:
    """The allowlists in ``document``, or BadInputError listing every problem in it."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise BadInputError(f"{source}: must be a mapping with keys {', '.join(ECOSYSTEMS)}")
    problems = []
    unknown = sorted(str(key) for key in document if key not in ECOSYSTEMS)
    if unknown:
        problems.append(f"{source}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(ECOSYSTEMS)}")
    result: dict[str, list[str]] = {}
    for ecosystem in ECOSYSTEMS:
        entries = document.get(ecosystem) or []
        if not isinstance(entries, list):
            problems.append(f"{source}: {ecosystem} must be a list of package names")
            continue
        if len(entries) > MAX_ENTRIES:
            problems.append(f"{source}: {ecosystem} has {len(entries)} entries; at most {MAX_ENTRIES}")
            continue
        seen: dict[str, str] = {}
        clean: list[str] = []
        for index, entry in enumerate(entries):
            where = f"{source}: {ecosystem}[{index}] {entry!r}"
            if not isinstance(entry, str):
                problems.append(f"{where} must be text")
                continue
            entry = entry.strip()
            name, specifier = split_pypi_entry(entry) if ecosystem == "pypi" else (entry, "")
            starts_specifier = not specifier or specifier[0] in "~=!<>"
            if len(name) > 214 or not re.fullmatch(patterns[ecosystem], name) or not starts_specifier:
                problems.append(f"{where} is not a valid {ecosystem} package name")
                continue
            if specifier and not SPECIFIER_PATTERN.fullmatch(specifier):
                problems.append(f"{where} has a version specifier that is not like '>=1.2,<2'")
                continue
            key = canonical_pypi(name) if ecosystem == "pypi" else name
            if key in seen:
                problems.append(f"{where} repeats {seen[key]!r}")
                continue
            seen[key] = entry
            clean.append(f"{name}{specifier}" if specifier else name)
        result[ecosystem] = clean
    if problems:
        raise BadInputError("\n".join(problems))
    return result


def read_allowlist_file(path: Path, patterns: dict[str, str]) -> dict[str, list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise BadInputError(f"{path}: cannot be read: {error.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise BadInputError(f"{path}: is not valid YAML: {error}") from None
    return check_allowlists(document, patterns, str(path))


def current_allowlists(settings: dict[str, Any]) -> dict[str, list[str]]:
    if not CURRENT.exists():
        return {ecosystem: [] for ecosystem in ECOSYSTEMS}
    return read_allowlist_file(CURRENT, settings["name_patterns"])


def allowlist_key(ecosystem: str, entry: str) -> str:
    return canonical_pypi(split_pypi_entry(entry)[0]) if ecosystem == "pypi" else entry


def describe_changes(old: dict[str, list[str]], new: dict[str, list[str]]) -> list[str]:
    lines = []
    for ecosystem in ECOSYSTEMS:
        before = {allowlist_key(ecosystem, e): e for e in old.get(ecosystem, [])}
        after = {allowlist_key(ecosystem, e): e for e in new.get(ecosystem, [])}
        added = sorted(after[k] for k in after.keys() - before.keys())
        removed = sorted(before[k] for k in before.keys() - after.keys())
        changed = sorted(f"{before[k]} -> {after[k]}" for k in after.keys() & before.keys() if after[k] != before[k])
        parts = []
        if added:
            parts.append(f"added {len(added)}: {', '.join(added)}")
        if removed:
            parts.append(f"removed {len(removed)}: {', '.join(removed)}")
        if changed:
            parts.append(f"changed {len(changed)}: {', '.join(changed)}")
        lines.append(f"{ecosystem}: {'; '.join(parts) if parts else 'no change'}")
    return lines


# --- What each service is given -------------------------------------------------------------

def nginx_map(keys: list[str], mode: str) -> str:
    """Body of an nginx map: 1 for allowed names. "-" stands for requests that name no package."""
    lines = ["# Written by mirror-allowlist; changes here are overwritten.",
             f"default {1 if mode == 'open' else 0};", '"-" 1;']
    lines += [f'"{key}" 1;' for key in sorted(set(keys))]
    return "\n".join(lines) + "\n"


def system_nameserver(resolv_conf: Path = Path("/etc/resolv.conf")) -> str:
    """The machine's DNS server, in the form nginx's resolver directive takes."""
    try:
        for line in resolv_conf.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                return f"[{parts[1]}]" if ":" in parts[1] else parts[1]
    except OSError:
        pass
    return "127.0.0.53"


def cran_proxy(upstream: str, nameserver: str = "127.0.0.53") -> str:
    """nginx directives that send /cran/... to the CRAN upstream (included in the CRAN locations).

    The upstream host is a variable so nginx resolves it per request: a CRAN whose name does not
    resolve must not stop nginx from starting (and serving everything else, and CRAN's cache).
    """
    match = re.match(r"^(https?)://([^/:]+)(:[0-9]+)?(/.*)?$", upstream)
    if not match:
        raise BadInputError(f"cran upstream {upstream!r} is not an http(s) URL")
    scheme, host, port, path = match.group(1), match.group(2), match.group(3) or "", (match.group(4) or "")
    lines = [
        "# Written by mirror-allowlist from the cran upstream; changes here are overwritten.",
        f"resolver {nameserver} valid=300s;",
        f'set $cran_upstream "{host}{port}";',
        f"rewrite ^/cran/(.*)$ {path.rstrip('/')}/$1 break;",
        f"proxy_pass {scheme}://$cran_upstream;",
        f"proxy_set_header Host {host};",
    ]
    if scheme == "https":
        lines += ["proxy_ssl_server_name on;", f"proxy_ssl_name {host};", "proxy_ssl_verify on;",
                  "proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;"]
    return "\n".join(lines) + "\n"


def verdaccio_config(names: list[str], mode: str, upstream: str) -> str:
    packages: dict[str, Any] = {}
    for name in sorted(set(names)):
        packages[name] = {"access": "$all", "publish": "$nobody", "proxy": "npmjs"}
    # Anything else: served only if already stored (never, in curated mode) and never fetched.
    packages["**"] = {"access": "$all", "publish": "$nobody"}
    if mode == "open":
        packages["**"]["proxy"] = "npmjs"
    config = {
        "storage": "/var/lib/verdaccio/storage",
        "listen": "127.0.0.1:4873",
        "url_prefix": "/npm/",
        "auth": {"htpasswd": {"file": "/var/lib/verdaccio/htpasswd", "max_users": -1}},
        "uplinks": {"npmjs": {"url": upstream.rstrip("/") + "/", "maxage": "30m", "timeout": "30s"}},
        "packages": packages,
        "web": {"enable": False},
        "log": {"type": "stdout", "format": "pretty", "level": "http"},
    }
    return "# Written by mirror-allowlist; changes here are overwritten.\n" + yaml.safe_dump(config, sort_keys=False)


def devpi_constraints(entries: list[str], mode: str) -> list[str]:
    # "*" makes devpi-constrained serve only the listed projects.
    return sorted(entries) + (["*"] if mode == "curated" else [])


def service_files(settings: dict[str, Any], allowlists: dict[str, list[str]]) -> dict[Path, str]:
    mode = settings["mode"]
    upstreams = settings["upstreams"]
    return {
        NGINX_DIR / "pypi-allowed.map": nginx_map(
            [canonical_pypi(split_pypi_entry(e)[0]) for e in allowlists["pypi"]], mode),
        NGINX_DIR / "npm-allowed.map": nginx_map(allowlists["npm"], mode),
        NGINX_DIR / "cran-allowed.map": nginx_map(allowlists["cran"], mode),
        NGINX_DIR / "cran-proxy.conf": cran_proxy(upstreams["cran"], system_nameserver()),
        VERDACCIO_CONFIG: verdaccio_config(allowlists["npm"], mode, upstreams["npm"]),
    }


# --- Applying -------------------------------------------------------------------------------

def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def devpi_request(method: str, path: str, body: Any = None, auth: str | None = None) -> tuple[int, Any]:
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if auth:
        headers["X-Devpi-Auth"] = auth
    data = json.dumps(body).encode() if body is not None else None
    # Always the local devpi over http (DEVPI), never a URL from input.
    request = urllib.request.Request(DEVPI + path, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def configure_devpi(settings: dict[str, Any], allowlists: dict[str, list[str]]) -> None:
    status, reply = devpi_request("POST", "/+login", {"user": "root", "password": DEVPI_PASSWORD.read_text().strip()})
    if status != 200:
        raise ServiceRefusedError(f"devpi login as root failed ({status}): {reply}")
    auth = base64.b64encode(f"root:{reply['result']['password']}".encode()).decode()
    mirror_url = settings["upstreams"]["pypi"].rstrip("/") + "/"
    # No project list: fetching upstream's full list of names (hundreds of thousands) is slow and
    # the curated index never needs it; each allowlisted project's page is fetched on demand.
    status, reply = devpi_request("PATCH", "/root/pypi", [f"mirror_url={mirror_url}", "mirror_no_project_list=True"],
                                  auth)
    if status != 200:
        raise ServiceRefusedError(f"devpi refused the pypi upstream {mirror_url} ({status}): {reply}")
    constraints = devpi_constraints(allowlists["pypi"], settings["mode"])
    status, _ = devpi_request("GET", "/root/trust")
    if status == 404:
        status, reply = devpi_request("PUT", "/root/trust", {
            "type": "constrained", "bases": ["root/pypi"], "constraints": constraints}, auth)
    else:
        status, reply = devpi_request("PATCH", "/root/trust", ["constraints=" + "\n".join(constraints)], auth)
    if status not in (200, 201):
        raise ServiceRefusedError(f"devpi refused the PyPI allowlist ({status}): {reply}")


def install_configuration(settings: dict[str, Any], allowlists: dict[str, list[str]]) -> None:
    """Write every service's files, check nginx, reload; roll the files back if nginx refuses them."""
    files = service_files(settings, allowlists)
    previous = {path: path.read_text() if path.exists() else None for path in files}
    for path, text in files.items():
        write_atomically(path, text)
    check = run(["nginx", "-t"])
    if check.returncode != 0:
        for path, text in previous.items():
            if text is None:
                path.unlink(missing_ok=True)
            else:
                write_atomically(path, text)
        raise ServiceRefusedError(f"nginx refused the new configuration; nothing changed:\n{check.stderr}")
    for unit, action in (("nginx", "reload"), ("verdaccio", "restart")):
        if unit == "verdaccio" and previous[VERDACCIO_CONFIG] == files[VERDACCIO_CONFIG]:
            continue
        result = run(["systemctl", action, unit])
        if result.returncode != 0:
            raise ServiceRefusedError(f"systemctl {action} {unit} failed: {result.stderr.strip()}")
        if unit == "verdaccio":
            wait_until_answering(VERDACCIO_PING, "verdaccio")
    configure_devpi(settings, allowlists)


def wait_until_answering(url: str, unit: str, seconds: float = 120, pause: float = 0.5) -> None:
    """A restarted service is applied only once it answers again: an npm client (or the next
    check) right after an apply would otherwise find nothing listening."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):  # noqa: S310 (a fixed loopback URL)
                return
        except urllib.error.HTTPError:
            return  # it answers, whatever it says
        except OSError as error:
            if time.monotonic() >= deadline:
                raise ServiceRefusedError(f"{unit} did not answer at {url} within {seconds:.0f} s after its "
                                          f"restart ({error}); see journalctl -u {unit}") from None
        time.sleep(pause)


def apply(path: Path) -> int:
    settings = load_settings()
    new = read_allowlist_file(path, settings["name_patterns"])
    old = current_allowlists(settings)
    install_configuration(settings, new)
    write_atomically(CURRENT, "# Applied by mirror-allowlist.\n" + yaml.safe_dump(new, sort_keys=False))
    print(f"applied {path} (mode {settings['mode']})")
    for line in describe_changes(old, new):
        print(line)
    return 0


def pull(option: str | None = None) -> int:
    if option not in (None, "--again"):
        raise BadInputError(f"pull: unknown option {option!r}; the only option is --again")
    settings = load_settings()
    repository = settings.get("allowlist_repository")
    if not repository:
        raise BadInputError("this stack has no Git server, so there is no package-requests repository to pull")
    if not REQUESTS_KEY.exists():
        raise BadInputError(f"{REQUESTS_KEY} is missing: the mirror has no key for {repository}")
    known_hosts = REQUESTS_CHECKOUT.parent / "known_hosts"
    os.environ["GIT_SSH_COMMAND"] = (
        f"ssh -i {REQUESTS_KEY} -o IdentitiesOnly=yes -o BatchMode=yes "
        f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={known_hosts}"
    )
    REQUESTS_CHECKOUT.parent.mkdir(parents=True, exist_ok=True)
    if (REQUESTS_CHECKOUT / ".git").exists():
        steps = [["git", "-C", str(REQUESTS_CHECKOUT), "fetch", "--quiet", "origin"],
                 ["git", "-C", str(REQUESTS_CHECKOUT), "reset", "--quiet", "--hard", "origin/HEAD"]]
    else:
        steps = [["git", "clone", "--quiet", repository, str(REQUESTS_CHECKOUT)]]
    for argv in steps:
        result = run(argv)
        if result.returncode != 0:
            raise ServiceRefusedError(f"{' '.join(argv[:3])} from {repository} failed: {result.stderr.strip()}")
    allowlist = REQUESTS_CHECKOUT / "allowlist.yaml"
    if not allowlist.exists():
        raise BadInputError(f"{repository} has no allowlist.yaml at its root")
    commit = run(["git", "-C", str(REQUESTS_CHECKOUT), "rev-parse", "HEAD"]).stdout.strip()
    applied = REQUESTS_APPLIED.read_text(encoding="utf-8").strip() if REQUESTS_APPLIED.exists() else ""
    if commit and commit == applied and option != "--again":
        print(f"{repository} at {commit[:12]}: already applied, nothing to do")
        return 0
    status = apply(allowlist)
    if status == 0 and commit:
        REQUESTS_APPLIED.write_text(commit + "\n", encoding="utf-8")
        print(f"{repository} at {commit[:12]}: applied")
    return status


def set_upstream(name: str, url: str) -> int:
    if name not in ECOSYSTEMS:
        raise BadInputError(f"upstream name {name!r}: must be one of {', '.join(ECOSYSTEMS)}")
    if not UPSTREAM_PATTERN.fullmatch(url):
        raise BadInputError(f"upstream URL {url!r}: must be an http(s) URL such as https://cloud.r-project.org")
    settings = load_settings()
    old = settings["upstreams"][name]
    settings["upstreams"][name] = url
    install_configuration(settings, current_allowlists(settings))
    save_settings(settings)
    print(f"{name} upstream: {old} -> {url}")
    return 0


def sync() -> int:
    settings = load_settings()
    install_configuration(settings, current_allowlists(settings))
    print("configuration written for nginx, Verdaccio and devpi")
    return 0


def show() -> int:
    settings = load_settings()
    allowlists = current_allowlists(settings)
    print(f"mode: {settings['mode']}")
    for name, url in settings["upstreams"].items():
        print(f"upstream {name}: {url}")
    print(f"allowlist repository: {settings.get('allowlist_repository') or '(none: no Git server)'}")
    for ecosystem in ECOSYSTEMS:
        print(f"{ecosystem} ({len(allowlists[ecosystem])}): {', '.join(allowlists[ecosystem])}")
    return 0


def main(argv: list[str]) -> int:
    commands = {"show": (0, show), "sync": (0, sync), "pull": (0, pull),
                "apply": (1, lambda path: apply(Path(path))), "upstream": (2, set_upstream)}
    optional = {"pull": 1}  # commands that take an optional argument too
    if not argv or argv[0] not in commands or len(argv) - 1 not in (
            commands[argv[0]][0], commands[argv[0]][0] + optional.get(argv[0], 0)):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    command = commands[argv[0]][1]
    try:
        return command(*argv[1:])
    except BadInputError as error:
        print(f"mirror-allowlist: {error}\nnothing was changed", file=sys.stderr)
        return 2
    except ServiceRefusedError as error:
        print(f"mirror-allowlist: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
