"""Which lab and acceptance tests may run side by side, and which must run alone.

Most of the lab suites' time is spent waiting (a dropped connection's timeout, a browser, a package
install through the mirror), so `blueprints lab test --workers N` runs them in N processes. Tests that
share something a test changes must not overlap, so each test module belongs to a **group**: a group
runs in one process, in order, so its modules take turns with what they share. A test that changes
what every group relies on (a reboot, a `lab apply`, the gateway's SSH jail, a machine's network for a
moment) is **alone**: it runs after the groups, with nothing beside it.

Every test module of the two folders is named here, so a new module is placed on purpose: the offline
test ``tests/lab/offline/test_lab_schedule.py`` fails on a module that is missing.
"""

from __future__ import annotations

# Group -> the modules it holds, with what they share. Listed in the order the workers take them: each of
# three workers starts with one group and holds the next, so this order (from the groups' measured
# times) ends them closest together, with or without tests/lab/machines.
GROUPS: dict[str, tuple[tuple[str, ...], str]] = {
    "airlock": (("test_airlock", "test_data_sources"), "the trust network's namespace"),
    "gateway": (("test_gateway", "test_identity"),
                "the gateway's sign-ins and its fail2ban jails"),
    "mirror": (("test_package_mirror", "test_allowlist_closure", "test_dns", "test_hub_firewall"),
               "the mirror's allowlists and upstreams: each module gives it lists of its own, and an install "
               "through the mirror expects the list its module gave"),
    "hardening": (("test_hardening",), "lynis installed and purged on every machine"),
    "hub": (("test_analytics", "test_own_origins"),
            "the hub accounts `analyst` and `partner-analyst`, whose servers both modules start and stop"),
    "git": (("test_git_server", "test_airlock_egress"),
            "the Git server's settings (each installs its own test users with git-server-apply)"),
    "network": (("test_network_model",), "listeners on the flow table's ports on every machine"),
    "machines": (("test_secrets_in_machines", "test_platform_tags"), "nothing another group changes"),
    # Run only as their own `make test` stages (they skip without their variable): one process is enough.
    "stages": (("test_faults", "test_day_two_upgrade", "test_lab_down"), "their own stages of make test"),
}

# Tests that run in another group than their module's: test -> (group, why).
_THROUGH_THE_MIRROR = "installs through the mirror, which the mirror group's modules give lists of their own"
ELSEWHERE: dict[str, tuple[str, str]] = {
    f"test_analytics::{test}": ("mirror", _THROUGH_THE_MIRROR)
    for test in ("test_pip_installs_an_allowlisted_package", "test_pip_refuses_a_package_not_on_the_allowlist",
                 "test_r_installs_an_allowlisted_package", "test_r_refuses_a_package_not_on_the_allowlist")
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
    # A group may change a machine for a moment only if no other group looks at that machine meanwhile.
    "test_network_model::test_a_machine_cannot_loosen_the_rules":
        "flushes an analytics VM's own nftables rules for a moment, on which other groups' tests of that VM "
        "rely (its metadata service is root's alone by them)",
    **{f"test_package_mirror::test_{client}_second_install_is_served_from_cache":
       "cuts the mirror's egress with TCP resets, which the network group's probes from the mirror would "
       "read as connections that reached their target" for client in ("pip", "npm")},
}


def module_group(module: str) -> str | None:
    """The group of a test module (its file name without .py), or None when the table does not name it."""
    for group, (modules, _shares) in GROUPS.items():
        if module in modules:
            return group
    return None


def group_of(module: str, test: str) -> str | None:
    """The group a test runs in (``test``: its name without parameters), or None when the table names
    neither it nor its module."""
    elsewhere = ELSEWHERE.get(f"{module}::{test}")
    return elsewhere[0] if elsewhere else module_group(module)


def module_and_test(nodeid: str) -> tuple[str, str]:
    """A pytest node id's module (file name without .py) and test (name without parameters)."""
    path, _, rest = nodeid.partition("::")
    return path.rsplit("/", 1)[-1].removesuffix(".py"), rest.split("::")[-1].split("[")[0]


def scope_of(nodeid: str) -> str:
    """The unit of work a worker takes whole for a pytest node id: its group, or its module when the table
    does not name it."""
    module, test = module_and_test(nodeid)
    return group_of(module, test) or module


def position(module: str, test: str) -> tuple[int, int]:
    """Where a test comes in the order the workers take them: its group's place, then its module's place
    in the group (tests from another module's group after the group's own)."""
    group = group_of(module, test)
    if group is None:
        return (len(GROUPS), 0)
    modules = GROUPS[group][0]
    return (list(GROUPS).index(group), modules.index(module) if module in modules else len(modules))


def runs_alone(module: str, test: str) -> bool:
    """True for a test that must run with nothing beside it (``test``: its name without parameters)."""
    return module in ALONE or f"{module}::{test}" in ALONE
