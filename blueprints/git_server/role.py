"""The Git server declares itself: SSH hosting, a web view behind single sign-on, backups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blueprints.git_server.backup_target import uses_blob, vm_settings
from blueprints.git_server.settings import SETTINGS_SCHEMA
from blueprints.role import DataDiskLayout, Publication, Role, SecretSpec, always


def _settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The stack's settings plus the Blob container's names (what git-server-apply reads)."""
    return vm_settings(config)


ROLE = Role(
    name="git_server",
    summary="Git hosting with review rules",
    component="git-server",
    settings_schema=SETTINGS_SCHEMA,
    subnet="services",
    first_host=1,
    host_name="git",
    numbered=False,
    has_machines=always,
    data_disk_setting="data_disk_gb",
    # gitolite's home: the repositories and gitolite's own state (server_commands.py).
    data_disk=DataDiskLayout(directories=("/srv/git",), services=("apache2", "git-server-backup")),
    internet_egress=False,
    public_entry=False,
    secrets=(SecretSpec("package-requests-reader", "ssh-ed25519"),),
    nightly_shutdown=False,
    backed_up=True,
    requires=(),
    publication=Publication(location="gateway-location.conf.j2", path="/git/",
                            link="Git repositories", description="browse the trust's code"),
    template_settings=_settings,
    reaches_storage=uses_blob,
    deploy="blueprints.git_server.component:deploy",
    folder=Path(__file__).parent,
)
