"""Day two in the lab: every ordinary edit of the stack file reaches the running machines in place.

The lab starts from the example; this applies one edited stack file holding every in-place edit of
validation/stack_edits.py (a new PyPI package, Git user and repository, backup time, hub admin,
admin key and gateway user) with `blueprints lab apply`, as `pulumi up` would on Azure, and checks
each reached its machine without a rebuild and without losing anything already there. `make
lab-test` then runs every acceptance suite again against the edited stack. An edit that needs a new
VM is refused by `lab apply` with exit 3, naming it.

Last, an edit Azure meets with replaced VMs (a size family change on the Git server, the gateway and
the analytics VMs): refused without `--replace`, and with it each of those machines gets a new OS disk
and keeps its data disk. Repositories, TOTP enrolments, analysts' homes and the hub's database come
back; what was only on the old OS disk does not. The acceptance suites then run on the rebuilt machines.

It changes the running lab, so it runs only when asked (BLUEPRINTS_LAB_UPGRADE=1), after the
faults and before the last acceptance run.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from typing import Any

import pytest
import yaml

from lab.machines import run
from validation.stack_edits import NEW_ADMIN_KEY, NEW_GATEWAY_USER_KEY, ORDINARY_EDITS

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.environ.get("BLUEPRINTS_LAB_UPGRADE") != "1",
                       reason="changes the running lab: only with BLUEPRINTS_LAB_UPGRADE=1 (make lab-test sets it)"),
]

# The one edit that needs a VM Azure would create (analytics-3): applied on its own, it is refused.
CREATES_A_VM = "analytics-count-2-to-3"


def _lab_apply(stack_file: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", "lab", "apply", str(stack_file)], capture_output=True,
                          text=True, timeout=900, check=False)


GIT = "git -c safe.directory='*'"  # as root, in repositories that belong to git


def _refs(machine: str) -> dict[tuple[str, str], str]:
    """(repository, ref) -> commit, for every repository on the Git server."""
    script = (f"for r in /srv/git/repositories/*.git; do {GIT} -C \"$r\" for-each-ref "
              f"--format=\"$r %(refname) %(objectname)\"; done")
    lines = run(None, machine, ["sh", "-c", script], check=True).stdout.split("\n")
    return {(repo, ref): commit for repo, ref, commit in (line.split() for line in lines if line.strip())}


@pytest.fixture(scope="module")
def original(lab: Any) -> dict[str, Any]:
    # The stack the lab started from, even when an edit was applied before (a second run of this module).
    return yaml.safe_load(open(lab.record.get("first_stack_file") or lab.record["stack_file"]).read())


def test_an_edit_that_needs_a_new_vm_is_refused_naming_it(lab: Any, original: dict[str, Any]) -> None:
    edit = next(e for e in ORDINARY_EDITS if e.name == CREATES_A_VM)
    stack_file = lab.state_dir / "day-two-new-vm.yaml"
    stack_file.write_text(yaml.safe_dump(edit.apply(original), sort_keys=False))
    refused = _lab_apply(stack_file)
    assert refused.returncode == 3, refused.stderr
    assert "analytics-3" in refused.stderr


def _every_in_place_edit(original: dict[str, Any]) -> dict[str, Any]:
    edited = original
    for edit in ORDINARY_EDITS:
        if edit.name != CREATES_A_VM:
            edited = edit.apply(edited)
    return edited


def test_every_in_place_edit_reaches_its_machines_and_nothing_is_lost(lab: Any, original: dict[str, Any]) -> None:
    git = next(m.name for m in lab.machines if m.role == "git_server")
    before_refs = _refs(git)
    edited = _every_in_place_edit(original)
    stack_file = lab.state_dir / "day-two.yaml"
    stack_file.write_text(yaml.safe_dump(edited, sort_keys=False))
    seeds = {m.name: run(None, m.name, ["cat", "/var/lib/cloud/seed/nocloud/user-data"], check=True).stdout
             for m in lab.machines}
    began = time.monotonic()
    applied = _lab_apply(stack_file)
    seconds = time.monotonic() - began
    assert applied.returncode == 0, applied.stderr
    print(f"\nlab apply of every in-place edit: {seconds:.1f}s\n{applied.stdout}")

    # Applied in place: no machine was rebuilt (its first-boot data is the same) and none rebooted.
    for machine in lab.machines:
        assert run(None, machine.name, ["cat", "/var/lib/cloud/seed/nocloud/user-data"], check=True).stdout \
            == seeds[machine.name]
    # The administrator's new key on every machine.
    for machine in lab.machines:
        admin = original["admin"]["username"]
        keys = run(None, machine.name, ["cat", f"/home/{admin}/.ssh/authorized_keys"], check=True).stdout
        assert NEW_ADMIN_KEY.split()[1] in keys, machine.name
    # The Git server: a new user and repository, the new backup time; every existing ref kept.
    assert run(None, git, ["test", "-d", "/srv/git/repositories/outpatients.git"]).returncode == 0
    keys = run(None, git, ["sh", "-c", 'cat "$(getent passwd git | cut -d: -f6)/.ssh/authorized_keys"'],
               check=True).stdout
    assert "sam.jones" in keys
    timer = run(None, git, ["cat", "/etc/systemd/system/git-server-backup.timer"], check=True).stdout
    assert "OnCalendar=*-*-* 02:45:00" in timer
    # Nothing lost: every ref is still there and its old commit is in its history (the access-rule
    # repository moves forward with each apply; no other should move at all).
    after_refs = _refs(git)
    for (repository, ref), commit in before_refs.items():
        assert (repository, ref) in after_refs, f"{repository} lost {ref}"
        kept = run(None, git, ["sh", "-c", f"{GIT} -C {repository} merge-base --is-ancestor {commit} "
                                           f"{after_refs[repository, ref]}"])
        assert kept.returncode == 0, f"{repository} {ref}: {commit} is no longer in its history"
    # The gateway: the new jump user's account.
    gateway = next((m.name for m in lab.machines if m.role == "gateway"), None)
    if gateway:
        assert run(None, gateway, ["id", "jbloggs"]).returncode == 0
        # Each analytics VM: an account of the same name, with the key the stack gives it.
        for machine in (m for m in lab.machines if m.role == "analytics"):
            assert run(None, machine.name, ["id", "jbloggs"]).returncode == 0, machine.name
            key = run(None, machine.name, ["cat", "/etc/ssh/trust-blueprints-keys/jbloggs"], check=True).stdout
            assert key.split()[:2] == NEW_GATEWAY_USER_KEY.split()[:2], machine.name
    # The mirror serves the newly allowed package.
    analytics = next(m.name for m in lab.machines if m.role == "analytics")
    index_url = run(None, analytics, ["python3", "-c", "import configparser; c = configparser.ConfigParser(); "
                                                       "c.read('/etc/pip.conf'); print(c['global']['index-url'])"],
                    check=True).stdout.strip()
    index = run(None, analytics, ["curl", "-sS", "--max-time", "60", f"{index_url.rstrip('/')}/statsmodels/"])
    assert "statsmodels-" in index.stdout, index.stdout[-500:] + index.stderr[-500:]


# Each crosses Azure's temporary-disk line (modules/immutable-properties.yaml): the VM is replaced.
REPLACING_SIZES = {"git_server": "Standard_D2s_v5", "gateway": "Standard_D2s_v5", "analytics": "Standard_D4ds_v5",
                   "package_mirror": "Standard_D2s_v5"}
# The mirror's caches only grow (a rebuilt analytics VM installs through it meanwhile).
MIRROR_CACHES = "find /var/cache/apt-cacher-ng /var/lib/devpi -type f \\( -name '*.deb' -o -name '*.whl' \\) | sort"
OS_DISK_MARK = "/var/tmp/trust-blueprints-old-os-disk"


def _data_disk_facts(machine: Any, admin: str) -> str:
    """What the machine keeps on its data disk, in a form that compares equal when nothing was lost."""
    if machine.role == "git_server":
        return repr(sorted(_refs(machine.name).items()))
    if machine.role == "package_mirror":
        return run(None, machine.name, ["sh", "-c", MIRROR_CACHES], check=True).stdout
    if machine.role == "gateway":
        script = "cd /var/lib/trust-blueprints/totp && ls -A && sha256sum -- * 2>/dev/null"
    else:
        # The hub's users who have signed in (its state); the stack's admins' rows are made again from the
        # settings whenever the hub starts, so they are not what a disk must keep.
        signed_in = "SELECT name FROM users WHERE last_activity IS NOT NULL"
        hub_users = ("import sqlite3; db = sqlite3.connect('file:/var/lib/jupyterhub/jupyterhub.sqlite?mode=ro', "
                     f"uri=True); print(sorted(row[0] for row in db.execute({signed_in!r})))")
        script = f"cat /home/{admin}/.trust-blueprints-rebuild-mark; python3 -c {shlex.quote(hub_users)}"
    return run(None, machine.name, ["sh", "-c", script], check=True).stdout


def test_replaced_machines_come_back_with_their_data_disks(lab: Any, original: dict[str, Any]) -> None:
    admin = original["admin"]["username"]
    edited = _every_in_place_edit(original)
    for role_name, size in REPLACING_SIZES.items():
        if role_name in edited["roles"]:
            edited["roles"][role_name]["vm_size"] = size
    stack_file = lab.state_dir / "day-two-replaced.yaml"
    stack_file.write_text(yaml.safe_dump(edited, sort_keys=False))
    replaced = [m for m in lab.machines if m.role in REPLACING_SIZES]
    assert replaced
    for machine in replaced:
        run(None, machine.name, ["sh", "-c", f"echo old > {OS_DISK_MARK}"], check=True)
        if machine.role == "analytics":
            run(None, machine.name, ["sh", "-c", f"head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n' "
                                                 f"> /home/{admin}/.trust-blueprints-rebuild-mark"], check=True)
    gateway = next((m for m in replaced if m.role == "gateway"), None)
    if gateway is not None:
        # The day-two stack's new jump user, enrolled as an administrator would (once).
        run(None, gateway.name, ["sh", "-c", "test -e /var/lib/trust-blueprints/totp/jbloggs || "
                                             "gateway-totp-enrol jbloggs >/dev/null"], check=True)
        enrolled = run(None, gateway.name, ["ls", "-A", "/var/lib/trust-blueprints/totp"], check=True).stdout
        assert "jbloggs" in enrolled.split()
        mounted = run(None, gateway.name, ["mountpoint", "-q", "/var/lib/trust-blueprints/totp"])
        assert mounted.returncode == 0, "the gateway's TOTP enrolments are not on its data disk"
    before = {m.name: _data_disk_facts(m, admin) for m in replaced}
    machine_ids = {m.name: run(None, m.name, ["cat", "/etc/machine-id"], check=True).stdout for m in replaced}

    refused = _lab_apply(stack_file)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    for machine in replaced:
        assert machine.name in refused.stderr
    assert "--replace" in refused.stderr
    assert run(None, replaced[0].name, ["test", "-e", OS_DISK_MARK]).returncode == 0, "refused, yet rebuilt"

    began = time.monotonic()
    rebuilt = subprocess.run([sys.executable, "-m", "cli", "lab", "apply", "--replace", str(stack_file)],
                             capture_output=True, text=True, timeout=1800, check=False)
    seconds = time.monotonic() - began
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr[-3000:]
    print(f"\nlab apply --replace ({', '.join(m.name for m in replaced)}): {seconds:.1f}s\n{rebuilt.stdout}")
    for machine in replaced:
        assert "rebuilt" in next(line for line in rebuilt.stdout.splitlines() if line.startswith(machine.name + ":"))
        # A new OS disk: the old one's file and identity are gone.
        assert run(None, machine.name, ["test", "-e", OS_DISK_MARK]).returncode != 0, machine.name
        assert run(None, machine.name, ["cat", "/etc/machine-id"], check=True).stdout != machine_ids[machine.name]
        # The kept data disk, mounted by the new VM's own data-disk step.
        assert run(None, machine.name, ["mountpoint", "-q", "/srv/data-disk"]).returncode == 0, machine.name
        after = _data_disk_facts(machine, admin)
        if machine.role == "package_mirror":
            assert before[machine.name].strip(), "the mirror had no cached package to keep"
            assert set(before[machine.name].split()) <= set(after.split()), "the mirror lost cached packages"
        else:
            assert after == before[machine.name], machine.name
