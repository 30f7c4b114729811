"""Account names a stack file may not give a person: the machines' own accounts.

The administrator (``admin.username``), the gateway's jump users (``roles.gateway.ssh_users``)
and JupyterHub's administrators (``roles.analytics.admin_users``) become, or act as, local
Linux accounts. None of them may be an account Debian or a role already has on the VM:
``useradd`` would fail at first boot, or worse, a person would sign in as a service.
``validation/semantic_checks.py`` refuses these names in every account-name field.
"""

from __future__ import annotations

# Debian's static system accounts: base-passwd's /usr/share/base-passwd/passwd.master
# (uid 0-99 and 65534), as on every Debian 12 image.
DEBIAN_SYSTEM_ACCOUNTS = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
    "proxy", "www-data", "backup", "list", "irc", "gnats", "_apt", "nobody",
})
# Accounts the packages of Debian's cloud image and of every role create as system users:
# dbus (messagebus), openssh-server (sshd), systemd (systemd-*, matched by prefix below),
# chrony (_chrony), polkitd, tcpdump, uuidd, tss (tpm2), Debian-exim (upper case: refused by
# every account pattern already).
DEBIAN_PACKAGE_ACCOUNTS = frozenset({
    "messagebus", "sshd", "_chrony", "polkitd", "tcpdump", "uuidd", "tss", "statd", "_rpc",
})
# Accounts the roles create or install on their VMs.
ROLE_ACCOUNTS = frozenset({
    # git_server: gitolite's owner (server_commands.GIT_USER, useradd in ensure_git_account) and
    # the account Debian's gitolite3 package would make by default; gitolite's own names.
    "git", "gitolite3", "gitweb", "server-admin", "package-mirror",
    # package_mirror: useradd --system devpi / verdaccio (package_mirror/cloud-init.yaml.j2),
    # and Debian's apt-cacher-ng package's system user.
    "devpi", "verdaccio", "apt-cacher-ng",
    # analytics: Debian's jupyterhub package runs as root and creates no account; its name is kept
    # so that nobody signs in to the hub as "jupyterhub".
    "jupyterhub",
    # every role: the log-shipping account the base template makes if missing (templates/base.yaml.j2).
    "syslog",
})
RESERVED_ACCOUNT_PREFIXES = ("systemd-",)
RESERVED_ACCOUNTS = DEBIAN_SYSTEM_ACCOUNTS | DEBIAN_PACKAGE_ACCOUNTS | ROLE_ACCOUNTS


def reserved_account(name: str) -> bool:
    """Whether ``name`` is an account the VMs already have (or a role makes)."""
    return name in RESERVED_ACCOUNTS or name.startswith(RESERVED_ACCOUNT_PREFIXES)


def reserved_account_hint() -> str:
    return ("reserved: Debian's system accounts (root, daemon, bin, ..., _apt, nobody, systemd-*), "
            "messagebus, sshd and the roles' service accounts (git, gitolite3, devpi, verdaccio, "
            "apt-cacher-ng, jupyterhub); see blueprints/accounts.py")
