"""Which lab and acceptance tests may run side by side, and which must run alone.

Most of the lab suites' time is spent waiting (a dropped connection's timeout, a browser, a package
install through the mirror), so `blueprints lab test --workers N` runs them in N processes. Tests that
share something a test changes must not overlap, so each test module belongs to a **group**: a group
runs in one process, in order, so its modules take turns with what they share. A test that changes
what every group relies on (a reboot, a `lab apply`, the gateway's SSH jail) is **alone**: it runs
after the groups, with nothing beside it.

Every test module of the two folders is named here, so a new module is placed on purpose: the offline
test ``tests/lab/offline/test_lab_schedule.py`` fails on a module that is missing.
"""

from __future__ import annotations

# Group -> the modules it holds, with what they share. Listed heaviest first: the workers take groups in
# this order, so the longest start first.
GROUPS: dict[str, tuple[tuple[str, ...], str]] = {
    "mirror": (("test_package_mirror", "test_analytics", "test_allowlist_closure", "test_dns", "test_own_origins",
                "test_hub_firewall"),
               "the mirror's allowlists and upstreams (each module gives it lists of its own), and the hub "
               "accounts `analyst` and `jbloggs`, whose servers test_analytics and test_own_origins start and stop"),
    "git": (("test_git_server", "test_airlock_egress"),
            "the Git server's settings (each installs its own test users with git-server-apply)"),
    "gateway": (("test_gateway", "test_identity"),
                "the gateway's sign-ins and its fail2ban jails"),
    "hardening": (("test_hardening",), "lynis installed and purged on every machine"),
    "network": (("test_network_model",), "listeners on the flow table's ports on every machine"),
    "airlock": (("test_airlock", "test_data_sources"), "the trust network's namespace"),
    "machines": (("test_secrets_in_machines", "test_platform_tags"), "nothing another group changes"),
    # Run only as their own `make test` stages (they skip without their variable): one process is enough.
    "stages": (("test_faults", "test_day_two_upgrade", "test_lab_down"), "their own stages of make test"),
}

# Modules and tests that run alone, after the groups, and why.
ALONE: dict[str, str] = {
    "test_reboot": "reboots a machine",
    "test_commands": "checks that no machine restarted and that the lab's record is unchanged",
    "test_analyst_ssh": "applies edited stacks with `lab apply` and resets the gateway's SSH jail",
    "test_bastion_path": "applies an edited stack with `lab apply`",
    "test_vm_settings": "expects every machine's settings as the stack has them, which other groups change",
    "test_secrets_in_machines::test_a_missing_grant_makes_the_boot_wait_naming_the_secret_until_granted":
        "takes an analytics VM's certificate away until the grant is back",
    "test_git_server::test_merged_request_reaches_the_mirror_and_a_revert_takes_it_away":
        "has the mirror pull the Git server's list, over whatever list the mirror group gave it",
    "test_git_server::test_writer_clones_and_pushes_a_branch_from_home_through_the_jump_host":
        "signs in at the gateway's SSH jump host, whose jail the gateway group fills and resets",
}


def module_group(module: str) -> str | None:
    """The group of a test module (its file name without .py), or None when the table does not name it."""
    for group, (modules, _shares) in GROUPS.items():
        if module in modules:
            return group
    return None


def scope_of(nodeid: str) -> str:
    """The unit of work a worker takes whole for a pytest node id: its module's group, or the module itself
    when the table does not name it."""
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return module_group(module) or module


def runs_alone(module: str, test: str) -> bool:
    """True for a test that must run with nothing beside it (``test``: its name without parameters)."""
    return module in ALONE or f"{module}::{test}" in ALONE


def group_rank(group: str) -> int:
    return list(GROUPS).index(group)
