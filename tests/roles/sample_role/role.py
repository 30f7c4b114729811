"""The sample role declares itself: a browser code editor beside the mirror and the Git server.

Test-only: it lives outside blueprints/, so the registry never finds it by looking; the tests
register it for a while with ``blueprints.roles.registered(ROLE)``. Its settings schema is here
too, as small as a role's can be (a role must have ``vm_size``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blueprints.role import Role, always, stack_settings
from blueprints.settings_fields import vm_size_field

SETTINGS_SCHEMA: dict[str, Any] = {
    "vm_size": vm_size_field("Standard_B2s"),
    "port": {"type": "integer", "min": 1024, "max": 65535, "default": 8443,
             "meta": {"doc": "Port the editor listens on (behind the gateway)"}},
}


def _reaches_storage(config: dict[str, Any]) -> bool:
    return False


ROLE = Role(
    name="code_server",
    summary="Browser code editor for analysts (test-only sample role)",
    component="code-server",
    settings_schema=SETTINGS_SCHEMA,
    # The services subnet: package_mirror is its host 0 and git_server host 1. The workloads
    # subnet is closed to it: analytics is numbered there, and a numbered role must come last.
    subnet="services",
    first_host=2,
    host_name="code",
    numbered=False,
    has_machines=always,
    data_disk_setting=None,
    data_disk=None,
    internet_egress=False,
    public_entry=False,
    secrets=(),
    # Its deploy declares no shutdown schedule: the nightly-shutdown policy must report its VM.
    nightly_shutdown=True,
    backed_up=False,
    requires=(("package_mirror", "the editor's machine has no Internet access; it installs through the mirror"),),
    publication=None,
    template_settings=stack_settings,
    reaches_storage=_reaches_storage,
    deploy="tests.roles.sample_role.component:deploy",
    folder=Path(__file__).parent,
)
