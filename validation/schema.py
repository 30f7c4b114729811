"""The stack file schema: every key, its type, range, default and meaning.

Each field's ``meta.doc`` is its description; the reference docs are generated from it.
"""

from __future__ import annotations

from typing import Any

CIDR_PATTERN = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$"
VM_SIZE_PATTERN = r"^Standard_[A-Z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$"
GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
FQDN_PATTERN = r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
CLAIM_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
LOCAL_ACCOUNT_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
# Letters, digits and a little punctuation: enough for any trust's name, nothing that
# can break out of YAML or a shell line in cloud-init.
DISPLAY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 .,&()'-]{1,78}[A-Za-z0-9.)]$"
# One line of printable text: nothing that could start a second line in a file or a command.
SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f]+$"
PYPI_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"
# A PyPI allowlist entry: a project name, optionally with version specifiers ("pandas>=2,<3").
_PYPI_SPECIFIER = r" *(~=|===|==|!=|<=|>=|<|>) *[A-Za-z0-9.*+!_-]+"
PYPI_ALLOWLIST_PATTERN = (PYPI_NAME_PATTERN[:-1] + "(" + _PYPI_SPECIFIER + r"( *," + _PYPI_SPECIFIER + ")*)?$")
NPM_NAME_PATTERN = r"^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*$"
CRAN_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]$"
# Local account names on the analytics VMs (what Debian's adduser accepts, lower case).
ACCOUNT_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
URL_PATTERN = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$"
# Git server names become gitolite user, group and repository names and file names on the VM.
GIT_ACCOUNT_PATTERN = r"^[a-z][a-z0-9._-]{0,31}$"
GIT_MEMBER_PATTERN = r"^@?[a-z][a-z0-9._-]{0,31}$"
GIT_REPOSITORY_PATTERN = r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9_-]+)*$"
ABSOLUTE_PATH_PATTERN = r"^(/[A-Za-z0-9._-]+)+$"

REGIONS = ["uksouth", "ukwest"]
ENVIRONMENTS = ["dev", "test", "prod"]
CLASSIFICATIONS = ["official", "official-sensitive"]


def _cidr(doc: str, required: bool = True) -> dict[str, Any]:
    return {"type": "string", "regex": CIDR_PATTERN, "required": required,
            "nullable": not required, "meta": {"doc": doc, "allowed": "an IPv4 range such as 10.40.1.0/24"}}


def _vm_size(default: str) -> dict[str, Any]:
    return {"type": "string", "regex": VM_SIZE_PATTERN, "default": default, "maxlength": 64,
            "meta": {"doc": "Azure VM size", "allowed": "an Azure size name such as Standard_B2s"}}


def _disk(doc: str, default: int) -> dict[str, Any]:
    return {"type": "integer", "min": 32, "max": 4095, "default": default, "meta": {"doc": doc}}


def _git_members(doc: str) -> dict[str, Any]:
    return {"type": "list", "default": [], "maxlength": 500,
            "schema": {"type": "string", "regex": GIT_MEMBER_PATTERN,
                       "meta": {"allowed": "a user name, or @team (@all: every user)"}},
            "meta": {"doc": doc}}


def _allowlist(pattern: str, what: str, allowed: str = "") -> dict[str, Any]:
    article = "an" if what[0].lower() in "aeiou" or what == "npm" else "a"
    return {"type": "list", "default": [], "maxlength": 5000,
            "schema": {"type": "string", "regex": pattern, "maxlength": 214,
                       "meta": {"allowed": allowed or f"{article} {what} package name"}},
            "meta": {"doc": f"{what} packages analysts may install (curated mode)"}}


SCHEMA: dict[str, Any] = {
    "trust": {
        "type": "dict", "required": True, "meta": {"doc": "The trust that owns the environment"},
        "schema": {
            "name": {"type": "string", "required": True, "regex": DISPLAY_NAME_PATTERN,
                     "meta": {"doc": "Full name, shown on the landing page and in documents",
                              "allowed": "3-80 letters, digits, spaces and . , & ( ) ' -"}},
            "short_name": {"type": "string", "required": True, "regex": r"^[a-z][a-z0-9]{1,7}$",
                           "meta": {"doc": "Short name used in every Azure resource name",
                                    "allowed": "2-8 lowercase letters or digits, starting with a letter"}},
            "ods_code": {"type": "string", "regex": r"^[A-Z0-9]{3,5}$", "required": False,
                         "meta": {"doc": "Organisation Data Service code",
                                  "allowed": "3-5 capital letters or digits"}},
        },
    },
    "environment": {"type": "string", "required": True, "allowed": ENVIRONMENTS,
                    "meta": {"doc": "Lifecycle stage; part of every name"}},
    "location": {"type": "string", "required": True, "allowed": REGIONS,
                 "meta": {"doc": "Azure region (UK regions only, for data residency)"}},
    "tags": {
        "type": "dict", "required": True, "meta": {"doc": "Tags put on every taggable resource"},
        "schema": {
            "owner": {"type": "string", "required": True, "regex": r"^[^\s@]+@[^\s@]+\.[^\s@]+$", "maxlength": 254,
                      "meta": {"doc": "Who answers for the environment", "allowed": "an email address"}},
            "cost_centre": {"type": "string", "required": True, "regex": r"^[A-Za-z0-9 _./-]{1,64}$",
                            "meta": {"doc": "Finance cost centre",
                                     "allowed": "1-64 letters, digits, spaces or _ . / -"}},
            "data_classification": {"type": "string", "required": True, "allowed": CLASSIFICATIONS,
                                    "meta": {"doc": "Government Security Classification of the data"}},
        },
    },
    "network": {
        "type": "dict", "required": True, "meta": {"doc": "Address plan and who may connect"},
        "schema": {
            "address_space": _cidr("The virtual network's address space"),
            "subnets": {
                "type": "dict", "required": True, "meta": {"doc": "One range per subnet"},
                "schema": {
                    "gateway": _cidr("Self-hosted gateway subnet", required=False),
                    "services": _cidr("Package mirror and Git server subnet", required=False),
                    "workloads": _cidr("Analytics VMs subnet", required=False),
                    "bastion": _cidr("AzureBastionSubnet, /26 or larger", required=False),
                },
            },
            "allowed_client_ranges": {
                "type": "list", "default": [], "maxlength": 200,
                "schema": _cidr("A range analysts connect from"),
                "meta": {"doc": "Public ranges allowed to reach the gateway (e.g. the trust's VPN egress); "
                                "at least one when roles.gateway is set"},
            },
            "private_client_ranges": {
                "type": "list", "default": [], "maxlength": 200,
                "schema": _cidr("A private range of the trust's own network"),
                "meta": {"doc": "Private ranges of the trust's network, joined to this one by VNet peering, VPN "
                                "or ExpressRoute, whose existing machines may use the package mirror and the Git "
                                "server directly (as the environment's own analytics VMs do)"},
            },
            "allow_clients_from_anywhere": {
                "type": "boolean", "default": False,
                "meta": {"doc": "Unsafe: allow ranges of /8 or wider, up to the whole Internet"},
            },
        },
    },
    "admin": {
        "type": "dict", "required": True, "meta": {"doc": "The break-glass administrator account"},
        "schema": {
            "username": {"type": "string", "required": True, "regex": r"^[a-z_][a-z0-9_-]{0,31}$",
                         "meta": {"doc": "Linux user name on every VM",
                                  "allowed": "1-32 lowercase letters, digits, _ or -"}},
            "ssh_public_keys": {"type": "list", "required": True, "minlength": 1, "maxlength": 20,
                                "schema": {"type": "string", "maxlength": 16384, "regex": SINGLE_LINE_PATTERN,
                                           "meta": {"allowed": "one line with no control characters"}},
                                "meta": {"doc": "OpenSSH public keys (ed25519, ECDSA or RSA 3072+)"}},
        },
    },
    "roles": {
        "type": "dict", "required": True, "meta": {"doc": "Which roles to deploy, and their settings"},
        "schema": {
            "gateway": {
                "type": "dict", "required": False, "meta": {"doc": "How analysts reach the environment"},
                "schema": {
                    "kind": {"type": "string", "required": True, "allowed": ["self-hosted", "bastion"],
                             "meta": {"doc": "self-hosted: SSO proxy + SSH jump host; bastion: Azure Bastion"}},
                    "vm_size": _vm_size("Standard_B2s"),
                    "hostname": {"type": "string", "regex": FQDN_PATTERN, "required": False,
                                 "meta": {"doc": "Public DNS name of the gateway",
                                          "allowed": "a lowercase DNS name such as analytics.example.nhs.uk"}},
                    "certificate": {"type": "string", "allowed": ["key-vault", "lets-encrypt"],
                                    "default": "key-vault",
                                    "meta": {"doc": "Where the gateway's TLS certificate comes from"}},
                    "ssh_users": {
                        "type": "list", "default": [], "maxlength": 500,
                        "meta": {"doc": "Jump-host accounts (no shell on the gateway; key and TOTP code)"},
                        "schema": {
                            "type": "dict",
                            "schema": {
                                "name": {"type": "string", "required": True, "regex": LOCAL_ACCOUNT_PATTERN,
                                         "meta": {"doc": "Account name, the same as on the analytics VMs",
                                                  "allowed": "1-32 lowercase letters, digits, _ or -, "
                                                             "starting with a letter"}},
                                "ssh_public_key": {"type": "string", "required": True, "maxlength": 16384,
                                                   "meta": {"doc": "The user's OpenSSH public key line"}},
                            },
                        },
                    },
                    "bastion_sku": {"type": "string", "allowed": ["Basic", "Standard"], "default": "Basic",
                                    "meta": {"doc": "Azure Bastion tier (bastion kind only)"}},
                    "identity": {
                        "type": "dict", "required": False,
                        "meta": {"doc": "Entra ID app registration for single sign-on"},
                        "schema": {
                            "tenant_id": {"type": "string", "regex": GUID_PATTERN, "required": True,
                                          "meta": {"doc": "Entra tenant id", "allowed": "a GUID"}},
                            "client_id": {"type": "string", "regex": GUID_PATTERN, "required": True,
                                          "meta": {"doc": "App registration (client) id", "allowed": "a GUID"}},
                            "allowed_group": {"type": "string", "regex": GUID_PATTERN, "required": True,
                                              "meta": {"doc": "Object id of the group allowed to sign in",
                                                       "allowed": "a GUID"}},
                            "username_claim": {"type": "string", "regex": CLAIM_NAME_PATTERN,
                                               "default": "preferred_username",
                                               "meta": {"doc": "Claim whose part before any @ is the local "
                                                               "account name sent to tools as X-Remote-User",
                                                        "allowed": "a claim name: letters, digits, _"}},
                            "groups_claim": {"type": "string", "regex": CLAIM_NAME_PATTERN, "default": "groups",
                                             "meta": {"doc": "Claim that lists the user's group object ids",
                                                      "allowed": "a claim name: letters, digits, _"}},
                        },
                    },
                },
            },
            "package_mirror": {
                "type": "dict", "required": False, "meta": {"doc": "Curated mirror for apt, PyPI, CRAN, npm"},
                "schema": {
                    "vm_size": _vm_size("Standard_B2s"),
                    "cache_disk_gb": _disk("Cache disk size in GB", 256),
                    "mode": {"type": "string", "allowed": ["curated", "open"], "default": "curated",
                             "meta": {"doc": "curated: only allowlisted packages; open: anything upstream"}},
                    "allowlists": {
                        "type": "dict", "default": {}, "meta": {"doc": "Per-ecosystem allowlists"},
                        "schema": {
                            "pypi": _allowlist(PYPI_ALLOWLIST_PATTERN, "PyPI", "a PyPI project name, "
                                               "optionally with version specifiers such as 'pandas>=2,<3'"),
                            "npm": _allowlist(NPM_NAME_PATTERN, "npm"),
                            "cran": _allowlist(CRAN_NAME_PATTERN, "CRAN"),
                        },
                    },
                    "allowlists_file": {
                        "type": "string", "nullable": True, "default": None,
                        "regex": r"^[A-Za-z0-9][A-Za-z0-9._-]*\.ya?ml$",
                        "meta": {"doc": "A YAML file beside the stack file with more allowlist entries "
                                        "(keys pypi, npm, cran; added to the inline allowlists)",
                                 "allowed": "a .yaml file name in the stack's folder, e.g. mirror-allowlist.yaml"}},
                    "upstreams": {
                        "type": "dict", "default": {}, "meta": {"doc": "Where the mirror fetches from"},
                        "schema": {
                            name: {"type": "string", "regex": URL_PATTERN, "default": url, "maxlength": 2048,
                                   "meta": {"doc": f"{name} upstream", "allowed": "an http(s) URL"}}
                            for name, url in {
                                "debian": "http://deb.debian.org/debian",
                                "debian_security": "http://security.debian.org/debian-security",
                                "pypi": "https://pypi.org/simple",
                                "npm": "https://registry.npmjs.org",
                                "cran": "https://cloud.r-project.org",
                            }.items()
                        },
                    },
                },
            },
            "git_server": {
                "type": "dict", "required": False, "meta": {"doc": "Git hosting with review rules"},
                "schema": {
                    "vm_size": _vm_size("Standard_B2s"),
                    "data_disk_gb": _disk("Repository disk size in GB", 64),
                    "backup_generations": {"type": "integer", "min": 1, "max": 90, "default": 14,
                                           "meta": {"doc": "Nightly backups kept"}},
                    "teams": {
                        "type": "list", "default": [], "maxlength": 200,
                        "meta": {"doc": "Groups of users that repositories grant access to"},
                        "schema": {"type": "dict", "schema": {
                            "name": {"type": "string", "required": True, "regex": GIT_ACCOUNT_PATTERN,
                                     "meta": {"doc": "Team name; @name in access lists",
                                              "allowed": "1-32 lowercase letters, digits, . _ or -, "
                                                         "starting with a letter"}},
                            "description": {"type": "string", "regex": DISPLAY_NAME_PATTERN, "required": False,
                                            "meta": {"doc": "What the team is for",
                                                     "allowed": "3-80 letters, digits, spaces and . , & ( ) ' -"}},
                        }},
                    },
                    "users": {
                        "type": "list", "default": [], "maxlength": 2000,
                        "meta": {"doc": "People who use Git over SSH; the name is also the web sign-in account"},
                        "schema": {"type": "dict", "schema": {
                            "name": {"type": "string", "required": True, "regex": GIT_ACCOUNT_PATTERN,
                                     "meta": {"doc": "Account name (as the gateway passes it after sign-in)",
                                              "allowed": "1-32 lowercase letters, digits, . _ or -, "
                                                         "starting with a letter"}},
                            "ssh_public_key": {"type": "string", "required": True, "maxlength": 16384,
                                               "meta": {"doc": "OpenSSH public key (ed25519, ECDSA or RSA 3072+)"}},
                            "teams": {"type": "list", "default": [], "maxlength": 100,
                                      "schema": {"type": "string", "regex": GIT_ACCOUNT_PATTERN,
                                                 "meta": {"allowed": "a team name from roles.git_server.teams"}},
                                      "meta": {"doc": "Teams the user belongs to"}},
                        }},
                    },
                    "repositories": {
                        "type": "list", "default": [], "maxlength": 2000,
                        "meta": {"doc": "Repositories and who may read, push branches, or merge to main"},
                        "schema": {"type": "dict", "schema": {
                            "name": {"type": "string", "required": True, "regex": GIT_REPOSITORY_PATTERN,
                                     "maxlength": 64,
                                     "meta": {"doc": "Repository name (cloned as git@git.<zone>:NAME)",
                                              "allowed": "lowercase letters, digits, _ - and inner dots"}},
                            "owner_team": {"type": "string", "required": True, "regex": GIT_ACCOUNT_PATTERN,
                                           "meta": {"doc": "Team that answers for the repository; its members "
                                                           "are the maintainers unless maintainers is set",
                                                    "allowed": "a team name from roles.git_server.teams"}},
                            "description": {"type": "string", "regex": DISPLAY_NAME_PATTERN, "required": False,
                                            "meta": {"doc": "One line shown in the web view",
                                                     "allowed": "3-80 letters, digits, spaces and . , & ( ) ' -"}},
                            "maintainers": _git_members("May push to main and create tags (default: @owner_team)"),
                            "writers": _git_members("May push branches other than main"),
                            "readers": _git_members("May clone and fetch only"),
                        }},
                    },
                    "backup": {
                        "type": "dict", "default": {}, "meta": {"doc": "Nightly backup of every repository"},
                        "schema": {
                            "directory": {"type": "string", "regex": ABSOLUTE_PATH_PATTERN, "maxlength": 255,
                                          "default": "/var/backups/git-server",
                                          "meta": {"doc": "Directory the git bundles are written to",
                                                   "allowed": "an absolute path of letters, digits, . _ -"}},
                            "time": {"type": "string", "regex": TIME_PATTERN, "default": "01:30",
                                     "meta": {"doc": "Time of the nightly backup (VM local time, HH:MM)",
                                              "allowed": "HH:MM, e.g. 01:30"}},
                            "target": {"type": "string", "allowed": ["auto", "directory", "azure-blob"],
                                       "default": "auto",
                                       "meta": {"doc": "Where each generation also goes, off the VM: auto = the "
                                                       "environment's Blob container when running on Azure, the "
                                                       "directory alone elsewhere (the lab); azure-blob = always "
                                                       "that container (a backup fails without it); directory = "
                                                       "the VM's directory only, and no storage account"}},
                        },
                    },
                },
            },
            "analytics": {
                "type": "dict", "required": False, "meta": {"doc": "Linux analytics VMs (R, Python, JupyterHub)"},
                "schema": {
                    "count": {"type": "integer", "min": 1, "max": 20, "default": 1,
                              "meta": {"doc": "How many analytics VMs"}},
                    "vm_size": _vm_size("Standard_D4s_v5"),
                    "data_disk_gb": _disk("/home disk size in GB", 128),
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
                },
            },
        },
    },
}
