"""`lab apply STACK_FILE`: an edited stack applied to the running lab the way Azure applies it.

On Azure, `pulumi up` after an ordinary edit changes each affected VM's user data in place
(blueprints/vm_settings.py) and the NSG rules; each VM's settings program picks the change up on
its next run. The lab does the same: it serves the new user data from its metadata stand-in,
recompiles the NSG rules, and runs each changed machine's settings program at once (on Azure the
program's timer runs it within minutes).

Which VMs Azure would replace is what the preview says: `blueprints plan --diff` of the plan the
lab last applied (lab/deployed_plan.py, the lab's stand-in for Pulumi's state) against the edited
stack, the same command a pipeline stops on. So a stack file edited in place, and code whose
templates render new custom data, are previewed as Azure would meet them. A replacement (a size
family change, a new image, changed custom data) is refused with exit 3, naming the machines,
unless `--replace` approves it, as a pipeline's reviewer would: then each replaced machine gets a
new OS disk (a fresh overlay with the new custom data) and keeps its data disk (lab/data_disks.py),
as Azure keeps a disk attached with deleteOption Detach, and boots until cloud-init is done. A
machine added or removed, or an address that moves, is refused (`lab down` and `lab up` instead).
Changed custom data that the preview calls an in-place update is an error of the program: Azure
refuses to change custom data, so the lab refuses it too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from blueprints.airlock_settings import airlock_grants, airlock_settings
from blueprints.cloud_init import RenderError, render_user_data
from blueprints.vm_settings import settings_document
from lab import (
    bastion,
    deployed_plan,
    egress_trust,
    firewall,
    hub_firewall,
    lifecycle,
    machines,
    network,
    platform_services,
    seeds,
    storage_service,
    trust_network,
)
from lab import secrets as lab_secrets
from lab.address_plan import address_plan
from lab.layout import write_record
from lab.progress import Progress
from validation.plan_diff import EXIT_DESTRUCTIVE, REPLACE, VM_TYPE
from validation.stack_config import load_stack
from validation.usage import UsageError

SEED_USER_DATA = "var/lib/cloud/seed/nocloud/user-data"
SETTINGS_COMMAND = ["trust-blueprints-settings", "--now"]


class NotInPlaceError(Exception):
    """The edit needs machines Azure would create, delete or replace; the message names them."""

    exit_code = EXIT_DESTRUCTIVE


def preview(base_stack_file: str, stack_file: str) -> dict[str, Any]:
    """`blueprints plan --diff BASE STACK_FILE --format json`, run as a pipeline runs it."""
    result = subprocess.run([sys.executable, "-m", "cli", "plan", "--diff", base_stack_file, stack_file,
                             "--format", "json"], capture_output=True, text=True, check=False, timeout=900,
                            cwd=deployed_plan.REPOSITORY)
    if result.returncode not in (0, EXIT_DESTRUCTIVE):
        raise UsageError(f"the preview `blueprints plan --diff {base_stack_file} {stack_file}` exited "
                         f"{result.returncode}: {result.stderr.strip()[-800:]}")
    return json.loads(result.stdout)


def replaced_machines(diff: dict[str, Any]) -> dict[str, list[str]]:
    """Machine -> the properties that force its VM's replacement, from a preview."""
    return {change["machine"]: [forcing["path"] for forcing in change["forced_by"]]
            for change in diff["changes"] if change["type"] == VM_TYPE and change["action"] == REPLACE}


def apply(stack_file: str, progress: Progress, replace: bool = False) -> dict[str, Any]:
    """Apply ``stack_file`` to the running lab; returns per machine what was done and how long it took."""
    layout, record = machines.running_lab()
    try:
        config = load_stack(stack_file)
    except FileNotFoundError:
        raise UsageError(f"stack file {stack_file}: no such file") from None
    plan = address_plan(config)
    running = record["machines"]
    problems = []
    added = sorted(m.name for m in plan.machines if m.name not in running)
    removed = sorted(set(running) - {m.name for m in plan.machines})
    if added:
        problems.append(f"new machines {', '.join(added)} (Azure creates them: `lab down` and `lab up` the new stack)")
    if removed:
        problems.append(f"machines {', '.join(removed)} leave the stack (Azure deletes them)")
    custom_data_changes = []
    for machine in plan.machines:
        if machine.name not in running:
            continue
        if running[machine.name]["address"] != machine.private_ip:
            problems.append(f"{machine.name}: its address moves from {running[machine.name]['address']} to "
                            f"{machine.private_ip} (a new network interface)")
            continue
        seed = layout.machine_root(machine.name) / SEED_USER_DATA
        try:
            if seed.read_bytes() != render_user_data(config, machine):
                custom_data_changes.append(machine.name)
        except RenderError as error:
            raise UsageError(f"{stack_file}: {error}") from None
    if problems:
        raise NotInPlaceError("not applied: this edit is not an in-place change:\n  " + "\n  ".join(problems))

    # Against what was applied last, as Pulumi previews against its state: the stack file may have been
    # edited in place since, and the code that rendered the custom data may be newer.
    applied = deployed_plan.path(layout)
    with progress.step("preview: blueprints plan --diff", key="apply:preview"):
        forced = replaced_machines(preview(str(applied) if applied.exists() else record["stack_file"], stack_file))
    unflagged = [name for name in custom_data_changes if name not in forced]
    if unflagged:
        raise machines.MachineError(
            f"{', '.join(unflagged)}: custom data changes but the preview updates the VM in place; Azure refuses "
            "to change custom data (PropertyChangeNotAllowed): the program must mark it as forcing a replacement")
    if forced and not replace:
        raise NotInPlaceError("not applied: Azure would replace " + "; ".join(
            f"{name} (forced by {', '.join(paths)})" for name, paths in sorted(forced.items()))
            + "\n  `blueprints lab apply --replace` rebuilds them as Azure would: a new OS disk, the data disk kept")

    with progress.step("NSG rules", key="apply:nsg"):
        ruleset, _skipped = firewall.compile_ruleset(config)
        layout.nft_file.write_text(ruleset)
        network.apply_ruleset(layout.nft_file)
    # Azure Bastion's allowed clients and the ports open to it follow the stack, as its NSG rules do.
    if bastion.update_state(lifecycle.bastion_dir(layout), config):
        progress.note("Azure Bastion stand-in: client ranges and targets as the stack now names them")
    # The hub firewall's rules are the request pack's, which follow the mirror's upstreams.
    if hub_firewall.update_state(layout.hub_firewall_dir, config):
        progress.note("hub firewall stand-in: the mirror's upstreams as the stack now names them")
    # A data source declared since `lab up` already exists on the trust's network.
    for address in trust_network.update(config):
        progress.note(f"trust network: {address} (a newly declared data source's server)")

    # The airlock's role assignments, as `pulumi up` changes them with airlock.readers. An airlock added
    # since `lab up` has no stand-in yet (its account and endpoint are new resources): `lab down` and up.
    if storage_service.update_grants(storage_service.storage_dir(layout.platform_dir), record["stack"],
                                     airlock_grants(config)):
        progress.note("airlock: grants as the stack now names them")
    elif airlock_settings(config):
        progress.note("airlock: added since `lab up`: the lab has no storage stand-in for it until the next `lab up`")

    state = platform_services.load_state(layout.platform_dir)
    results: dict[str, Any] = {}
    failures = []
    rebuilt = [machine for machine in plan.machines if machine.name in forced]
    for machine in rebuilt:
        platform_services.set_user_data(layout.platform_dir, machine.name, settings_document(config, machine))
    if rebuilt:
        began = time.monotonic()
        failures += rebuild_machines(layout, record, config, rebuilt, progress)
        seconds = round(time.monotonic() - began, 1)
        for machine in rebuilt:
            results[machine.name] = {"settings": "rebuilt (new OS disk, data disk kept)",
                                     "seconds": record["machines"][machine.name].get("seconds") or seconds}
    for machine in plan.machines:
        if machine.name in forced:
            continue
        document = settings_document(config, machine)
        if state["machines"][machine.name]["user_data"] == platform_services.encode_user_data(document):
            results[machine.name] = {"settings": "unchanged", "seconds": 0.0}
            continue
        platform_services.set_user_data(layout.platform_dir, machine.name, document)
        began = time.monotonic()
        with progress.step(f"{machine.name}: applying its new user data", key=f"apply:{machine.name}"):
            result = machines.run(None, machine.name, SETTINGS_COMMAND)
        seconds = round(time.monotonic() - began, 1)
        results[machine.name] = {"settings": "applied" if result.returncode == 0 else "failed", "seconds": seconds}
        if result.returncode != 0:
            failures.append(f"{machine.name}: `{' '.join(SETTINGS_COMMAND)}` exited {result.returncode}: "
                            f"{(result.stderr or result.stdout).strip()[-800:]}")
    # What the machines were first provisioned from (a repository seeded at first boot keeps that start).
    record.setdefault("first_stack_file", record["stack_file"])
    record["stack_file"] = str(Path(stack_file).resolve())
    try:
        deployed_plan.record(layout, stack_file)
    except deployed_plan.DeployedPlanError as error:
        failures.append(f"the plan the next `lab apply` previews against: {error}")
    record.setdefault("applied", []).append({"stack_file": record["stack_file"], "at": time.time(),
                                             "machines": results})
    write_record(layout, record)
    if failures:
        raise machines.MachineError("\n".join(failures))
    return results


def rebuild_machines(layout: Any, record: dict[str, Any], config: dict[str, Any], rebuilt: list[Any],
             progress: Progress) -> list[str]:
    """A new OS disk for each machine, from the base and its role layer, with the new custom data; the
    data disk stays attached. Boots them together and waits for cloud-init; returns failures."""
    platform_ca = lab_secrets.LabCertificateAuthority(layout.platform_dir / "ca", "Azure platform stand-in")
    with progress.step(f"replacing the OS disks of {', '.join(m.name for m in rebuilt)}", key="apply:replace"):
        machines.stop_all({m.name: record["machines"][m.name].get("supervisor_pid") for m in rebuilt})
        machines.remove_cgroups([m.name for m in rebuilt])
        for machine in rebuilt:
            directory = layout.machine_dir(machine.name)
            machines.unmount(layout.machine_root(machine.name))
            # The supervisor's fstab-style mount; the disk itself stays attached.
            machines.unmount(layout.data_disk_mount(machine.name))
            for part in ("upper", "work"):
                shutil.rmtree(directory / part, ignore_errors=True)
            layer = record.get("role_layers", {}).get(machine.name)
            root = machines.mount_overlay(Path(record["base"]), layout, machine.name, Path(layer) if layer else None)
            seeds.write_seed(root, seeds.seed_files(config, record["stack"], machine))
            (root / "etc/machine-id").write_text(os.urandom(16).hex() + "\n")
            lab_secrets.install_platform_anchor(root, platform_ca.cert.read_bytes())
            if machine.internet_egress:
                egress_trust.install_host_anchors(root)
            record["machines"][machine.name].update(cloud_init="not started", seconds=None)
    deadline = time.monotonic() + lifecycle.DEFAULT_TIMEOUT_MINUTES * 60
    return lifecycle.boot_and_wait(layout, record, rebuilt, progress, deadline)
