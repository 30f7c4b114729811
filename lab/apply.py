"""`lab apply STACK_FILE`: an edited stack applied to the running lab the way Azure applies it.

On Azure, `pulumi up` after an ordinary edit changes each affected VM's user data in place
(blueprints/vm_settings.py) and the NSG rules; each VM's settings program picks the change up on
its next run. The lab does the same: it serves the new user data from its metadata stand-in,
recompiles the NSG rules, and runs each changed machine's settings program at once (on Azure the
program's timer runs it within minutes). A change Azure would meet with a new VM (custom data,
the address plan, a machine added or removed) is not applied in place: it is named, and the
command exits 3, as `blueprints plan --diff` does for a pipeline.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from blueprints.cloud_init import RenderError, render_user_data
from blueprints.vm_settings import settings_document
from lab import firewall, machines, network, platform_services
from lab.address_plan import address_plan
from lab.layout import write_record
from lab.progress import Progress
from validation.plan_diff import EXIT_DESTRUCTIVE
from validation.stack_config import load_stack
from validation.usage import UsageError

SEED_USER_DATA = "var/lib/cloud/seed/nocloud/user-data"
SETTINGS_COMMAND = ["trust-blueprints-settings", "--now"]


class NotInPlaceError(Exception):
    """The edit needs machines Azure would create, delete or replace; the message names them."""

    exit_code = EXIT_DESTRUCTIVE


def apply(stack_file: str, progress: Progress) -> dict[str, Any]:
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
                problems.append(f"{machine.name}: its custom data changes (Azure replaces the VM)")
        except RenderError as error:
            raise UsageError(f"{stack_file}: {error}") from None
    if problems:
        raise NotInPlaceError("not applied: this edit is not an in-place change:\n  " + "\n  ".join(problems))

    with progress.step("NSG rules", key="apply:nsg"):
        ruleset, _skipped = firewall.compile_ruleset(config)
        layout.nft_file.write_text(ruleset)
        network.apply_ruleset(layout.nft_file)

    state = platform_services.load_state(layout.platform_dir)
    results: dict[str, Any] = {}
    failures = []
    for machine in plan.machines:
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
    record.setdefault("applied", []).append({"stack_file": record["stack_file"], "at": time.time(),
                                             "machines": results})
    write_record(layout, record)
    if failures:
        raise machines.MachineError("\n".join(failures))
    return results
