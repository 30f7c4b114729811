"""roles.analytics in a stack file: every setting, its type, default and meaning (cerberus).

Read through the role's declaration (role.py) by validation/schema.py and the docs.
"""

from __future__ import annotations

from typing import Any

from blueprints.airlock_settings import ingress_settings
from blueprints.analyst_access import analyst_settings, analysts
from blueprints.analytics.image import IMAGE_SCHEMA
from blueprints.data_sources import DATA_SOURCES_SCHEMA, LINKS, client_files
from blueprints.role import stack_settings
from blueprints.settings_fields import ACCOUNT_NAME_PATTERN, TIME_PATTERN, disk_field, vm_size_field

SETTINGS_SCHEMA: dict[str, Any] = {
    "count": {"type": "integer", "min": 1, "max": 20, "default": 1,
              "meta": {"doc": "How many analytics VMs"}},
    "vm_size": vm_size_field("Standard_D4s_v5"),
    "data_disk_gb": disk_field("/home disk size in GB", 128),
    "image": IMAGE_SCHEMA,
    "auto_shutdown": {
        "type": "dict", "default": {}, "meta": {"doc": "Nightly shutdown to save cost"},
        "schema": {
            "time": {"type": "string", "regex": TIME_PATTERN, "default": "19:00",
                     "meta": {"doc": "Local time, 24-hour HH:MM", "allowed": "HH:MM, e.g. 19:00"}},
            "timezone": {"type": "string", "allowed": ["GMT Standard Time", "UTC"],
                         "default": "GMT Standard Time",
                         "meta": {"doc": "Windows time zone id used by Azure"}},
        },
    },
    "admin_users": {
        "type": "list", "default": [], "maxlength": 50,
        "schema": {"type": "string", "regex": ACCOUNT_NAME_PATTERN,
                   "meta": {"allowed": "a local account name: a lowercase letter, then up to "
                                       "31 lowercase letters, digits, _ or -"}},
        "meta": {"doc": "Accounts (as the gateway names them) that administer JupyterHub"},
    },
    "data_sources": DATA_SOURCES_SCHEMA,
}


def template_settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The role's stack settings, plus the data sources' client files (its VM settings carry them),
    the links from where the clients read to those files (its cloud-init makes them, once), and the
    analysts' SSH accounts and keys (blueprints/analyst_access.py; its VM settings carry them)."""
    return {**stack_settings(config, name), "data_source_files": client_files(config),
            "data_source_links": dict(LINKS), "analyst_access": analyst_settings(config),
            "analyst_keys": analysts(config), "ingress": ingress_settings(config)}
