"""Renders each machine's cloud-init user-data: the same bytes go to Azure and to the lab.

Rendering is a pure function of the validated stack config and the machine. Templates use
StrictUndefined, so a missing value is an error, never a blank line in a VM's config.
These bytes become the VM's custom data, which Azure reads once and never changes: they hold
only what first boot needs. Settings a stack edit can change go in the VM's user data instead
(blueprints/vm_settings.py), which the installed settings program applies in place.
Secrets never appear here: Azure custom data cannot be changed after creation and is
readable on the VM; machines fetch secrets from Key Vault with their managed identity.
"""

from __future__ import annotations

import base64
import gzip
import json
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from blueprints.analytics.origins import own_origins
from blueprints.data_disk import DATA_DISK_SCRIPT, data_disk_settings
from blueprints.package_mirror.client_settings import template_values as mirror_client_values
from blueprints.package_mirror.settings import PACKAGE_NAME_PATTERNS
from blueprints.roles import all_roles, role
from blueprints.secrets import VAULT_NAME_TAG, secret_files
from blueprints.sign_in_names import account_map, gateway_header_lines, hub_settings
from blueprints.topology import Machine, plan_machines, private_dns_zone

SHARED_TEMPLATES = Path(__file__).parent / "templates"
# Installed by every role (templates/settings.yaml.j2); it applies the VM's user data (vm_settings.py).
SETTINGS_PROGRAM = SHARED_TEMPLATES / "trust-blueprints-settings.py"
# Installed by every role (templates/hardening.yaml.j2): the host hardening they share.
HARDENING_SCRIPT = SHARED_TEMPLATES / "hardening.sh"
# Azure's limit on custom data applies to the bytes after base64 decoding, the file the VM gets:
# at most 65,535 of them (Azure Compute REST API reference, OSProfile customData; checked
# 2026-12-02). So the rendered user-data itself is what is measured.
AZURE_CUSTOM_DATA_LIMIT = 65535
MAX_USER_DATA_BYTES = AZURE_CUSTOM_DATA_LIMIT


class RenderError(Exception):
    """A template that did not produce usable cloud-init."""


def yaml_value(value: Any) -> str:
    """A value as one line of YAML flow text that reads back exactly.

    Strings are YAML double-quoted scalars from YAML's own emitter, which escapes what JSON
    would leave raw or split (line separators, characters beyond the Basic Multilingual Plane).
    """
    if isinstance(value, str):
        return yaml.safe_dump(value, default_style='"', allow_unicode=False, width=2**31).rstrip("\n")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(yaml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_value(str(k))}: {yaml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def gzip_base64(text: str) -> str:
    """A file's text for write_files' ``encoding: gz+b64``: the roles' own programs travel
    compressed, as Azure allows 65,535 bytes of custom data. No timestamp and a fixed level keep
    the bytes the same on every run here; zlib implementations other than the reference one
    (zlib-ng) may compress differently, which Pulumi would show as a custom-data change."""
    return base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")


def written_files(document: dict[str, Any]) -> dict[str, str]:
    """path -> text of a rendered cloud-config's write_files, decoding gz+b64 entries."""
    files = {}
    for entry in document.get("write_files") or []:
        content = entry.get("content", "")
        if entry.get("encoding") in ("gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
            content = gzip.decompress(base64.b64decode(content)).decode("utf-8")
        elif entry.get("encoding") in ("b64", "base64"):
            content = base64.b64decode(content).decode("utf-8")
        files[entry["path"]] = content
    return files


def runcmd_steps(document: dict[str, Any]) -> list[str]:
    """A rendered cloud-config's runcmd, each step as one line of text (argument lists joined by spaces)."""
    return [step if isinstance(step, str) else " ".join(step) for step in document.get("runcmd") or []]


def _environment() -> jinja2.Environment:
    """Templates by role: ``<role>/...`` is a file of that role's folder; anything else is shared."""
    return _environment_for(tuple((declared.name, str(declared.folder)) for declared in all_roles()))


@cache
def _environment_for(role_folders: tuple[tuple[str, str], ...]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([
            jinja2.PrefixLoader({name: jinja2.FileSystemLoader(folder) for name, folder in role_folders}),
            jinja2.FileSystemLoader(str(SHARED_TEMPLATES)),
        ]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        # The output is YAML, not HTML: values go through |yaml or |sh instead.
        autoescape=False,  # noqa: S701
    )
    # Every interpolated value passes through one of these, so no input can break out.
    env.filters["yaml"] = yaml_value
    env.filters["sh"] = lambda value: shlex.quote(str(value))
    env.filters["gzip_base64"] = gzip_base64
    return env


def template_context(config: dict[str, Any], machine: Machine) -> dict[str, Any]:
    machines = plan_machines(config)
    zone = private_dns_zone(config)
    by_role = {m.role: m for m in machines}
    mirror = by_role.get("package_mirror")
    mirror_host = f"{mirror.name}.{zone}" if mirror else None
    git = by_role.get("git_server")
    return {
        "machine": machine,
        "machines": machines,
        "trust": config["trust"],
        "environment": config["environment"],
        "admin": config["admin"],
        "role_settings": role(machine.role).template_settings(config, machine.role),
        "dns_zone": zone,
        "mirror_host": mirror_host,
        # pip/npm/R settings for package_mirror/client-config.yaml.j2 (None without a mirror).
        "mirror_client": mirror_client_values(mirror_host),
        "git_host": f"{git.name}.{zone}" if git else None,
        # The Git server starts its package-requests repository from these (None without a mirror).
        "mirror_allowlists": _mirror_allowlists(config) if mirror else None,
        # The stack's own package-name rules, so the mirror's allowlist command checks the same way.
        "package_name_patterns": dict(PACKAGE_NAME_PATTERNS),
        # What the self-hosted gateway publishes behind its sign-in: each role's Publication, with its machines.
        "publications": _publications(machines),
        # The gateway host under which each analyst's server has a host of its own, or None
        # (blueprints/analytics/origins.py): the hubs and the gateway's sites both follow it.
        "own_origins": own_origins(config),
        # Who signs in as which account (blueprints/sign_in_names.py): the gateway applies the map,
        # the analytics VMs' hubs check each account against it.
        "sign_in_header_lines": gateway_header_lines(account_map(config)),
        "sign_in": hub_settings(config),
        # Machines fetch their secrets from the vault this VM tag names (templates/base.yaml.j2): the
        # vault's name depends on the subscription, so the boot step reads it from instance metadata.
        "vault_name_tag": VAULT_NAME_TAG,
        "secret_files": secret_files(machine),
        # The data-disk step (templates/data-disk.yaml.j2); None for a machine without a data disk.
        "data_disk": data_disk_settings(machine, config["admin"]["username"]),
        "data_disk_script": DATA_DISK_SCRIPT.read_text(encoding="utf-8"),
        # The settings step (templates/settings.yaml.j2): the program that applies the user data.
        "settings_program": SETTINGS_PROGRAM.read_text(encoding="utf-8"),
        # The shared host hardening (templates/hardening.yaml.j2).
        "hardening_script": HARDENING_SCRIPT.read_text(encoding="utf-8"),
    }


def _mirror_allowlists(config: dict[str, Any]) -> dict[str, list[str]]:
    allowlists = config["roles"]["package_mirror"].get("allowlists") or {}
    return {ecosystem: list(allowlists.get(ecosystem) or []) for ecosystem in ("pypi", "npm", "cran")}


def _publications(machines: list[Machine]) -> list[dict[str, Any]]:
    publications = []
    for declared in all_roles():
        published = [m for m in machines if m.role == declared.name]
        if declared.publication and published:
            publications.append({
                "template": f"{declared.name}/{declared.publication.location}",
                "site": f"{declared.name}/{declared.publication.site}" if declared.publication.site else None,
                "machines": published,
                "path": declared.publication.path,
                "link": declared.publication.link,
                "description": declared.publication.description,
            })
    return publications


def render_template(template_name: str, context: dict[str, Any]) -> str:
    """One template of a role's folder (``<role>/...``) or a shared one, with the given context."""
    return _environment().get_template(template_name).render(context)


def render_user_data(config: dict[str, Any], machine: Machine) -> bytes:
    """The cloud-config for one machine, as the bytes Azure and the lab receive."""
    template_name = f"{machine.role}/cloud-init.yaml.j2"
    try:
        text = render_template(template_name, template_context(config, machine))
    except jinja2.UndefinedError as error:
        raise RenderError(f"{template_name}: {error.message}") from None
    data = text.encode("utf-8")
    if not text.startswith("#cloud-config\n"):
        raise RenderError(f"{template_name}: output must start with #cloud-config")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RenderError(f"{template_name}: rendered YAML does not parse: {error}") from None
    if not isinstance(document, dict):
        raise RenderError(f"{template_name}: rendered cloud-config is not a mapping")
    if len(data) > MAX_USER_DATA_BYTES:
        raise RenderError(f"{template_name}: {len(data)} bytes; Azure allows {MAX_USER_DATA_BYTES}")
    return data
