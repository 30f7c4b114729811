"""The package mirror declares itself: the one machine that fetches from the Internet."""

from __future__ import annotations

from pathlib import Path

from blueprints.package_mirror.settings import SETTINGS_SCHEMA
from blueprints.package_mirror.verdaccio_lock import template_settings
from blueprints.role import DataDiskLayout, Role, SecretSpec, always, never

ROLE = Role(
    name="package_mirror",
    summary="Curated mirror for apt, PyPI, CRAN, npm",
    component="package-mirror",
    settings_schema=SETTINGS_SCHEMA,
    subnet="services",
    first_host=0,
    host_name="mirror",
    numbered=False,
    has_machines=always,
    data_disk_setting="cache_disk_gb",
    data_disk=DataDiskLayout(
        directories=("/var/cache/apt-cacher-ng", "/var/lib/devpi", "/var/lib/verdaccio", "/var/cache/nginx"),
        services=("apt-cacher-ng", "devpi", "verdaccio", "nginx"),
        stop_services=("apt-cacher-ng", "nginx"),
    ),
    internet_egress=True,
    public_entry=False,
    # The mirror pulls the package-requests repository with this key (mirror-allowlist pull); the
    # Git server admits its .pub read-only. Both roles declare it: one name, one shared value.
    secrets=(SecretSpec("package-requests-reader", "ssh-ed25519"),),
    nightly_shutdown=False,
    # The cache disk refills itself from upstream: it is not backed up (policy TB-VM-006).
    backed_up=False,
    requires=(),
    publication=None,
    # The stack's settings plus Verdaccio's lockfile, which the user data carries (verdaccio_lock.py).
    template_settings=template_settings,
    reaches_storage=never,
    deploy="blueprints.package_mirror.component:deploy",
    folder=Path(__file__).parent,
)
