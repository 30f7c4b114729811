"""The analytics VMs declare themselves: R, Python and JupyterHub, no Internet, off at night."""

from __future__ import annotations

from pathlib import Path

from blueprints.analytics.settings import SETTINGS_SCHEMA, template_settings
from blueprints.role import DataDiskLayout, Publication, Role, always, never

ROLE = Role(
    name="analytics",
    summary="Linux analytics VMs (R, Python, JupyterHub)",
    component="analytics-vm",
    settings_schema=SETTINGS_SCHEMA,
    subnet="workloads",
    first_host=0,
    host_name="analytics",
    numbered=True,
    has_machines=always,
    data_disk_setting="data_disk_gb",
    # Analysts' homes and the hub's state (its database of users and servers, its cookie secret) come
    # back on a rebuilt VM. The hub is running (started by its package) when the step moves them.
    # The admin's keys come from the stack: after a redeploy they must be the stack's, not the disk's.
    data_disk=DataDiskLayout(directories=("/home", "/var/lib/jupyterhub"), services=("jupyterhub",),
                             stop_services=("jupyterhub",),
                             refresh_files=("/home/{admin}/.ssh/authorized_keys",)),
    internet_egress=False,
    public_entry=False,
    secrets=(),
    nightly_shutdown=True,
    backed_up=True,
    requires=(
        ("package_mirror", "analytics VMs have no Internet access; they install through the mirror"),
        ("gateway", "analysts reach their VMs only through the gateway or Azure Bastion"),
    ),
    # The hub on the gateway's host; each analyst's own server on a host of its own (origins.py).
    publication=Publication(location="gateway-location.conf.j2", path="/{machine}/",
                            link="JupyterHub on {machine}", description="JupyterLab with Python and R",
                            site="gateway-site.conf.j2"),
    template_settings=template_settings,
    reaches_storage=never,
    deploy="blueprints.analytics.component:deploy",
    folder=Path(__file__).parent,
)
