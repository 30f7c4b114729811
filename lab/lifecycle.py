"""`lab up`, `lab status` and `lab down`: the order things are built and taken apart in.

`lab up` checks everything it can before it changes the host (root, tools, a lab already
running, address clashes, templates that do not render), then builds the base, wires the
network, seeds and boots the machines and waits for cloud-init. If wiring or booting fails,
everything created so far is removed again. If cloud-init fails on a machine, the lab stays up
so the machine can be inspected, and the message says how and what `lab down` removes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from blueprints.airlock_settings import airlock_account_name, airlock_grants, airlock_settings
from blueprints.cloud_init import RenderError
from blueprints.dns_allowlist import allowed_names
from blueprints.git_server.backup_target import storage_account_name
from blueprints.secrets import vault_name
from blueprints.topology import Machine, private_dns_zone
from blueprints.vm_settings import settings_document
from blueprints.vm_tags import platform_tags
from lab import (
    base_image,
    bastion,
    data_disks,
    deployed_plan,
    dns,
    egress_trust,
    firewall,
    host_caches,
    hub_firewall,
    identity_provider,
    machines,
    network,
    platform_services,
    role_layers,
    secrets,
    seeds,
    storage_service,
    trust_network,
)
from lab.address_plan import AddressPlan, address_plan, host_route_conflicts
from lab.layout import (
    BASTION_NETNS,
    STATE_ROOT,
    LabBusyError,
    LabLayout,
    host_lock,
    read_record,
    running_labs,
    write_record,
)
from lab.progress import Progress
from validation.stack_config import load_stack
from validation.usage import UsageError

REQUIRED_TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "nsenter": "util-linux",
    "nft": "nftables",
    "ip": "iproute2",
    "bridge": "iproute2",
    "dnsmasq": "dnsmasq-base",
    "openssl": "openssl",
    "ssh-keygen": "openssh-client",
}
DEFAULT_TIMEOUT_MINUTES = 30


class LabUpError(Exception):
    """The lab came up but a machine did not finish; the message names machine, step and log."""


def preflight() -> None:
    if os.geteuid() != 0:
        raise UsageError("the lab needs root (it creates namespaces, bridges, nftables rules and mounts): "
                         "run it with sudo")
    missing = [f"{tool} (Debian package {package})" for tool, package in REQUIRED_TOOLS.items()
               if shutil.which(tool) is None]
    if missing:
        raise UsageError("missing on this host: " + ", ".join(missing) + "; `sudo make host-deps` installs them")


def _refuse_second_lab() -> None:
    labs = running_labs()
    if labs:
        record = read_record(labs[0])
        raise UsageError(f"a lab is already running here (stack {labs[0].stack}, from {record['stack_file']}, "
                         f"started in {record.get('started_from', '?')}); "
                         "only one lab runs at a time: `sudo blueprints lab down` first")
    leftovers = network.lab_links() + network.lab_namespaces()
    if leftovers or network.nft_table_present():
        raise UsageError("lab network objects are left from an earlier run (" + ", ".join(leftovers or
                         ["nftables table"]) + "): `sudo blueprints lab down` removes them")


def boot_order(all_machines: list[Machine], together: bool = False) -> list[list[Machine]]:
    if together:
        return [all_machines]
    # The machine that fetches from the Internet is the one every other installs through: it boots
    # first (Azure boots all at once; the templates wait for the mirror either way, this only
    # saves CPU on a small host).
    first = [m for m in all_machines if m.internet_egress]
    rest = [m for m in all_machines if not m.internet_egress]
    return [group for group in (first, rest) if group]


def up(stack_file: str, progress: Progress, timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES,
       together: bool = False, role_layers: bool = True) -> dict[str, Any]:
    if timeout_minutes <= 0:
        raise UsageError(f"--timeout {timeout_minutes:g}: must be a number of minutes above 0")
    preflight()
    try:
        with host_lock():
            return _up(stack_file, progress, timeout_minutes, together, role_layers)
    except LabBusyError as error:
        raise UsageError(str(error)) from None


def _up(stack_file: str, progress: Progress, timeout_minutes: float, together: bool,
        use_role_layers: bool = True) -> dict[str, Any]:
    _refuse_second_lab()
    config = load_stack(stack_file)
    stack = Path(stack_file).stem
    layout = LabLayout(stack)
    plan = address_plan(config)
    conflicts = host_route_conflicts(plan)
    if conflicts:
        raise UsageError("the stack's addresses clash with this host's routes: " + "; ".join(conflicts))
    if airlock_settings(config) and not storage_service.AZURITE_BLOB.exists():
        raise UsageError(f"the stack has an airlock, whose storage account the lab runs in Azurite, which is not "
                         f"installed ({storage_service.AZURITE_BLOB}): `make azurite` installs it")
    try:
        seed_files = {m.name: seeds.seed_files(config, stack, m) for m in plan.machines}
    except RenderError as error:
        raise UsageError(f"cloud-init does not render: {error}") from None
    ruleset, skipped = firewall.compile_ruleset(config)

    base = base_image.ensure_base(progress)
    progress.timings.setdefault("base_build", 0.0)
    try:
        layers = role_layers.ensure_layers(config, list(plan.machines), base, progress) if use_role_layers else {}
    except (OSError, subprocess.CalledProcessError, role_layers.LayerBuildError) as error:
        raise LabUpError(f"role layers: {error}") from error
    record: dict[str, Any] = {
        "stack": stack, "stack_file": str(Path(stack_file).resolve()), "base": str(base),
        "zone": private_dns_zone(config), "client_ip": plan.client_ip,
        "public_gateway_ip": plan.public_gateway_ip, "ca_cert": str(layout.ca_cert),
        "identity_provider_ip": plan.identity_provider_ip,
        "public_bastion_ip": plan.public_bastion_ip, "bastion_ip": plan.bastion_ip,
        "hub_firewall_address": plan.hub_firewall_ip,
        "public_hostname": (config["roles"].get("gateway") or {}).get("hostname") if plan.public_gateway_ip else None,
        "started": time.time(), "started_from": os.getcwd(), "skipped_rules": [s.__dict__ for s in skipped],
        "role_layers": {name: str(path) for name, path in layers.items()},
        "machines": {m.name: {"role": m.role, "subnet": m.subnet, "address": m.private_ip,
                              "supervisor_pid": None, "cloud_init": "not started", "seconds": None}
                     for m in plan.machines},
    }
    # Recorded before anything is created, so `lab down` finds a half-built lab too.
    write_record(layout, record)
    # What `lab apply` previews the next edit against, made while the lab is built.
    planning = deployed_plan.start_recording(layout, stack_file)
    try:
        with progress.step("network: bridges, client namespace, NSG rules, DNS", key="network"):
            network.enable_forwarding()
            network.create_subnet_bridges(plan)
            gateway = config["roles"].get("gateway") or {}
            network.create_client(plan, gateway.get("hostname") if plan.public_gateway_ip else None)
            if plan.bastion_ip:
                network.create_bastion_network(plan)
            # The declared data sources' servers, on the trust's network (none: nothing is created).
            trust_network.create(config)
            # A landing zone's hub firewall, where the mirror subnet's route table sends the Internet.
            _wire_hub_firewall(config, layout)
            layout.nft_file.write_text(ruleset)
            network.apply_ruleset(layout.nft_file)
            vault = vault_name(config, platform_services.LAB_SUBSCRIPTION_ID)
            record["key_vault"] = vault
            record["key_vault_address"] = firewall.key_vault_endpoint(config)
            platform_names = {f"{vault}.{platform_services.VAULT_DOMAIN}": record["key_vault_address"]}
            if airlock_settings(config):
                record["airlock_account"] = airlock_account_name(config, platform_services.LAB_SUBSCRIPTION_ID)
                record["airlock_address"] = firewall.airlock_endpoint(config)
                platform_names[f"{record['airlock_account']}.{storage_service.BLOB_DOMAIN}"] = record["airlock_address"]
            dns.start(plan, record["zone"], layout.dns_dir, platform_names,
                      allowed=allowed_names(config, vault,
                                            storage_account_name(config, platform_services.LAB_SUBSCRIPTION_ID),
                                            airlock_account_name(config, platform_services.LAB_SUBSCRIPTION_ID)))
        for rule in skipped:
            progress.note(f"NSG rule {rule.rule} ({rule.subnet}) not in the lab: {rule.reason}")
        if layers and machines.memory_for_tmpfs():
            # With the packages in the role layers, the machines' own disks are small: in memory, they
            # spare the host's disk the writes of a boot and the deletes of `lab down`.
            machines.mount_machine_disks_in_memory(layout)
        with progress.step("machines: overlays, cloud-init seeds, Key Vault and metadata stand-ins", key="prepare"):
            layout.secrets_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(layout.secrets_dir, 0o700)
            ca = secrets.LabCertificateAuthority(layout.ca_dir, f"{config['trust']['short_name']}-"
                                                 f"{config['environment']}")
            ca.ensure()
            platform_ca = _start_platform(config, stack, plan, ca, layout, record["key_vault"],
                                          record["key_vault_address"], record.get("airlock_address"))
            if record.get("airlock_account"):
                _start_storage(config, stack, layout, record["airlock_account"], record["airlock_address"])
            if plan.identity_provider_ip:
                _start_identity_provider(config, plan, ca, layout)
            if plan.bastion_ip:
                _start_bastion(config, plan, layout)
            if plan.hub_firewall_ip:
                _start_hub_firewall(config, layout)
            for machine in plan.machines:
                step = "mounting its overlay"
                try:
                    kept = host_caches.restore(machine.role, layout.machine_dir(machine.name) / "upper",
                                               host_caches.lower_key(str(base), layers.get(machine.name)))
                    if kept:
                        progress.note(f"{machine.name}: caches kept from the last lab: {', '.join(kept)}")
                    root = machines.mount_overlay(base, layout, machine.name, layers.get(machine.name))
                    step = "writing its cloud-init seed"
                    seeds.write_seed(root, seed_files[machine.name])
                    (root / "etc/machine-id").write_text(os.urandom(16).hex() + "\n")
                    step = "trusting the platform CA (Azure's endpoints are signed by public CAs)"
                    secrets.install_platform_anchor(root, platform_ca)
                    if machine.internet_egress:
                        step = "giving it the host's trust anchors for Internet egress"
                        egress_trust.install_host_anchors(root)
                    if data_disks.wanted(machine, config["admin"]["username"]):
                        step = "attaching its data disk"
                        record["machines"][machine.name]["data_disk"] = data_disks.attach(layout, machine)
                        write_record(layout, record)
                    step = "cabling its network namespace"
                    network.create_machine_network(machine.name, machine.subnet)
                except (OSError, machines.MachineError, network.NetworkError, secrets.SecretError,
                        data_disks.DataDiskError) as error:
                    raise LabUpError(f"{machine.name}: {step} failed: {error}") from error
    except BaseException as error:
        progress.note(f"lab up stopped while wiring ({error or type(error).__name__}); removing what was created")
        planning.kill()
        planning.communicate()
        _down(progress, quiet=True)
        raise

    deadline = time.monotonic() + timeout_minutes * 60
    failures = []
    for group in boot_order(list(plan.machines), together):
        failures += boot_and_wait(layout, record, group, progress, deadline)
        if failures:
            break
    try:
        deployed_plan.finish(layout, planning, stack_file)
    except deployed_plan.DeployedPlanError as error:
        failures.append(f"the plan `lab apply` previews edits against: {error}")
    record["timings"] = progress.timings
    write_record(layout, record)
    if failures:
        raise LabUpError("\n".join(failures) + "\nThe lab is still up for inspection; `sudo blueprints lab down` "
                        "stops the machines and removes their namespaces, bridges, nftables table, mounts "
                        f"and {layout.root}.")
    return record


def boot_and_wait(layout: LabLayout, record: dict[str, Any], group: list[Machine], progress: Progress,
                   deadline: float) -> list[str]:
    started: dict[str, float] = {}
    for machine in group:
        entry = record["machines"][machine.name]
        with progress.step(f"{machine.name}: booting ({machine.role}, {machine.private_ip})"):
            entry["supervisor_pid"] = machines.start(layout, machine.name, entry.get("data_disk"))
            entry["started_at"] = time.time()
            write_record(layout, record)
            while machines.leader_pid(machine.name) is None:
                if not Path(f"/proc/{entry['supervisor_pid']}").exists() or time.monotonic() > deadline:
                    return [f"{machine.name}: systemd-nspawn did not start the machine; "
                            f"read {layout.console_log(machine.name)}"]
                time.sleep(0.2)
        started[machine.name] = time.monotonic()
    waiting = {m.name for m in group}
    failures = []
    last_note = time.monotonic()
    progress.note(f"cloud-init: waiting for {', '.join(sorted(waiting))}")
    while waiting:
        for name in sorted(waiting):
            status = machines.cloud_init_status(name)
            entry = record["machines"][name]
            entry["cloud_init"] = status.detail
            if status.finished:
                waiting.discard(name)
                entry["seconds"] = round(time.monotonic() - started[name], 1)
                progress.timings[f"cloud_init:{name}"] = entry["seconds"]
                progress.note(f"{name}: cloud-init {status.detail} after {entry['seconds']:.0f}s")
                if status.status != "done" or "degraded" in status.detail:
                    output = layout.cloud_init_output(name)
                    failures.append(f"{name}: cloud-init finished with {status.detail}; read "
                                    f"`sudo blueprints lab logs {name}` ({output})" + _output_tail(output))
            elif Path(f"/proc/{entry['supervisor_pid']}").exists() is False:
                waiting.discard(name)
                failures.append(f"{name}: the machine stopped while booting; read {layout.console_log(name)}")
        write_record(layout, record)
        if waiting and time.monotonic() > deadline:
            for name in sorted(waiting):
                failures.append(f"{name}: cloud-init still running at the time limit; read "
                                f"`sudo blueprints lab logs {name}`")
            break
        if waiting and time.monotonic() - last_note > 30:
            progress.note(f"cloud-init: still running on {', '.join(sorted(waiting))}")
            last_note = time.monotonic()
        if waiting:
            time.sleep(3)
    return failures


# Enough of a failed machine's cloud-init output to name the failing command: the lab is often taken down
# right after a failed `lab up` (make lab-test does so), and its logs with it.
OUTPUT_TAIL_LINES = 30


def _output_tail(output: Path) -> str:
    try:
        lines = output.read_text(encoding="utf-8", errors="replace").splitlines()[-OUTPUT_TAIL_LINES:]
    except OSError:
        return ""
    return f"\nIts last {len(lines)} lines of output:\n" + "\n".join(f"  | {line}" for line in lines) if lines else ""


def status_rows() -> tuple[LabLayout, dict[str, Any], list[dict[str, str]]]:
    layout, record = machines.running_lab()
    rows = []
    for name, entry in record["machines"].items():
        if os.geteuid() == 0:
            state = "running" if machines.leader_pid(name) is not None else "stopped"
        else:
            state = "unknown (needs root)"
        reach = f"sudo blueprints lab ssh {name}"
        if entry["role"] == "gateway" and record.get("public_hostname"):
            reach += f"; https://{record['public_hostname']} from tb-client"
        if record.get("public_bastion_ip"):
            reach += f"; sudo blueprints lab bastion-tunnel {name} --port PORT"
        rows.append({
            "machine": name, "role": entry["role"], "address": entry["address"],
            "state": state,
            "cloud-init": _short(entry["cloud_init"], name),
            "time": f"{entry['seconds']:.0f}s" if entry.get("seconds") is not None else "-",
            "reach": reach,
        })
    return layout, record, rows


def _short(detail: str, machine: str, limit: int = 40) -> str:
    """A table cell; the whole error is in `lab logs`."""
    return detail if len(detail) <= limit else f"{detail[:limit]}... (lab logs {machine})"


def format_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return ""
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _lab_mounts() -> list[Path]:
    mounts = []
    for line in Path("/proc/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        if target.startswith(str(STATE_ROOT) + "/"):
            mounts.append(Path(target))
    return sorted(mounts, key=lambda p: len(p.parts), reverse=True)


def _start_platform(config: dict[str, Any], stack: str, plan: AddressPlan, ca: secrets.LabCertificateAuthority,
                    layout: LabLayout, vault: str, vault_address: str, airlock_address: str | None = None) -> bytes:
    """The instance metadata service and Key Vault, loaded with what the Pulumi program would create
    and grant; returns the platform CA's certificate, which every machine trusts."""
    try:
        values, grants = secrets.vault_contents(config, list(plan.machines), ca, layout.secrets_dir)
        platform_services.write_state(
            layout.platform_dir, stack=stack, tenant_id=_tenant_id(config), vault=vault, secrets=values,
            # Each VM's tags as the program sets them (the vault's name, the backup account's), in the
            # lab's subscription.
            machines=[platform_services.LabMachine(
                m.name, m.private_ip, platform_tags(config, m, platform_services.LAB_SUBSCRIPTION_ID),
                settings_document(config, m), grants[m.name]) for m in plan.machines])
        platform_ca = secrets.LabCertificateAuthority(layout.platform_dir / "ca", "Azure platform stand-in")
        platform_ca.ensure()
        cert, key = platform_ca.issue([f"{vault}.{platform_services.VAULT_DOMAIN}"], layout.platform_dir)
        network.create_platform_link((platform_services.IMDS_ADDRESS, vault_address)
                                     + ((airlock_address,) if airlock_address else ()))
        platform_services.start_process(layout.platform_dir, cert, key, vault_address)
        return platform_ca.cert.read_bytes()
    except (OSError, network.NetworkError, secrets.SecretError, platform_services.PlatformError) as error:
        raise LabUpError(f"metadata and Key Vault stand-ins: {error}") from error


def _start_storage(config: dict[str, Any], stack: str, layout: LabLayout, account: str, address: str) -> None:
    """The airlock's storage account: Azurite on loopback behind the authorising front at the private
    endpoint's address, with a platform-CA certificate for ``<account>.blob.core.windows.net``."""
    directory = storage_service.storage_dir(layout.platform_dir)
    try:
        storage_service.write_state(directory, stack=stack, account=account, grants=airlock_grants(config),
                                    azurite_port=storage_service.free_port(),
                                    providers_group=config["airlock"]["data_providers_group"])
        storage_service.start_azurite(directory)
        platform_ca = secrets.LabCertificateAuthority(layout.platform_dir / "ca", "Azure platform stand-in")
        cert, key = platform_ca.issue([f"{account}.{storage_service.BLOB_DOMAIN}"], directory)
        storage_service.start_front(directory, layout.platform_dir, address, cert, key)
    except (OSError, secrets.SecretError, storage_service.StorageError) as error:
        raise LabUpError(f"the airlock's storage stand-in: {error}") from error


def _wire_hub_firewall(config: dict[str, Any], layout: LabLayout) -> None:
    try:
        hub_firewall.create(config, layout.hub_firewall_dir, dns.upstream_resolvers())
    except (OSError, hub_firewall.HubFirewallError) as error:
        raise LabUpError(f"the hub firewall stand-in: {error}") from error


def _start_hub_firewall(config: dict[str, Any], layout: LabLayout) -> None:
    """A landing zone hub's firewall stand-in (lab/hub_firewall.py), before the mirror's first fetch."""
    try:
        hub_firewall.write_state(layout.hub_firewall_dir, config)
        hub_firewall.start_in_namespace(layout.hub_firewall_dir)
    except (OSError, hub_firewall.HubFirewallError) as error:
        raise LabUpError(f"the hub firewall stand-in: {error}") from error


def bastion_dir(layout: LabLayout) -> Path:
    return layout.root / "bastion"


def _start_bastion(config: dict[str, Any], plan: AddressPlan, layout: LabLayout) -> None:
    """Azure Bastion's stand-in, in its subnet, behind its public IP stand-in (lab/bastion.py)."""
    directory = bastion_dir(layout)
    try:
        bastion.write_state(directory, config)
        bastion.start_in_namespace(BASTION_NETNS, directory, str(plan.bastion_ip))
    except (OSError, bastion.BastionError) as error:
        raise LabUpError(f"Azure Bastion stand-in: {error}") from error


def _tenant_id(config: dict[str, Any]) -> str:
    identity = (config["roles"].get("gateway") or {}).get("identity") or {}
    return identity.get("tenant_id") or "00000000-0000-4000-8000-0000000000aa"


def _start_identity_provider(config: dict[str, Any], plan: AddressPlan, ca: secrets.LabCertificateAuthority,
                             layout: LabLayout) -> None:
    """Entra ID's stand-in, on the Internet side, with a lab-CA certificate for Entra's host name."""
    identity = config["roles"]["gateway"]["identity"]
    try:
        netns = network.create_identity_provider_network(plan)
        cert, key = ca.issue([identity_provider.ENTRA_HOST], layout.secrets_dir)
        # The stack's Git accounts can sign in too: the Git web view shows a person what their account may read.
        people = tuple(user["name"] for user in (config["roles"].get("git_server") or {}).get("users", []))
        identity_provider.start_in_namespace(netns, str(plan.identity_provider_ip), identity["tenant_id"],
                                             identity["allowed_group"], cert, key, layout.root / "identity",
                                             people=people, admin=config["admin"]["username"])
    except (OSError, network.NetworkError, secrets.SecretError, identity_provider.IdentityProviderError) as error:
        raise LabUpError(f"identity provider: {error}") from error


def down(progress: Progress, purge: bool = False, quiet: bool = False) -> list[str]:
    """Stop every machine and remove everything the lab put on the host; returns what was removed."""
    if os.geteuid() != 0:
        raise UsageError("the lab needs root to take down namespaces, bridges, rules and mounts: use sudo")
    try:
        with host_lock():
            return _down(progress, purge, quiet)
    except LabBusyError as error:
        raise UsageError(str(error)) from None


def _down(progress: Progress, purge: bool = False, quiet: bool = False) -> list[str]:
    removed: list[str] = []
    to_stop: dict[str, int | None] = {}
    for layout in running_labs() or [LabLayout(d.name) for d in _state_dirs()]:
        record = read_record(layout) if layout.record.exists() else {"machines": {}}
        for name, entry in record["machines"].items():
            if machines.leader_pid(name) is not None or entry.get("supervisor_pid"):
                to_stop[name] = entry.get("supervisor_pid")
    # Machines not in any record (a record lost mid-way) still have their init in a tb-* namespace.
    for netns in network.lab_namespaces():
        name = netns.removeprefix("tb-")
        if name not in to_stop and machines.leader_pid(name) is not None:
            to_stop[name] = None
    if to_stop:
        with progress.step(f"stopping {', '.join(sorted(to_stop))}"):
            killed = machines.stop_all(to_stop)
        removed += [f"machine {name}" + (" (killed: no clean power-off within 30s)" if name in killed else "")
                    for name in sorted(to_stop)]
        removed += [f"cgroup {path}" for path in machines.remove_cgroups(sorted(to_stop))]
    for layout in [LabLayout(d.name) for d in _state_dirs()]:
        if layout.record.exists():
            record = read_record(layout)
            for name, entry in record["machines"].items():
                # A cache on the machine's data disk is there; without one, in its OS disk's layer.
                with data_disks.mounted_read_only(layout, name, entry.get("data_disk") or "") as on_disk:
                    lower = host_caches.lower_key(record.get("base", ""), record.get("role_layers", {}).get(name))
                    for directory in host_caches.keep(entry["role"], on_disk or layout.machine_dir(name) / "upper",
                                                      lower):
                        removed.append(f"{name}:{directory} (kept on the host for the next lab)")
        if dns.stop(layout.dns_dir):
            removed.append("dnsmasq")
        removed += storage_service.stop_processes(storage_service.storage_dir(layout.platform_dir))
        if platform_services.stop_process(layout.platform_dir):
            removed.append("metadata and Key Vault stand-ins")
        if bastion.stop_process(bastion_dir(layout)):
            removed.append("Azure Bastion stand-in")
        if hub_firewall.stop_process(layout.hub_firewall_dir):
            removed.append("hub firewall stand-in")
    removed += hub_firewall.remove_routing()
    removed += network.remove_all()
    for mount in _lab_mounts():
        machines.unmount(mount)
        removed.append(f"mount {mount}")
    for directory in _state_dirs():
        removed += [f"data disk {device}" for device in data_disks.detach_all(LabLayout(directory.name))]
    for directory in _state_dirs():
        with progress.step(f"removing {directory} (machine disks, seeds, lab CA)"):
            shutil.rmtree(directory)
        removed.append(str(directory))
    if purge:
        removed += [f"cached {p}" for p in base_image.purge_cache()]
    if not quiet:
        progress.note("removed: " + (", ".join(removed) if removed else "nothing (no lab on this host)"))
    return removed


def _state_dirs() -> list[Path]:
    return sorted(d for d in STATE_ROOT.iterdir() if d.is_dir()) if STATE_ROOT.is_dir() else []


def print_up_summary(record: dict[str, Any], stream: Any = sys.stdout) -> None:
    _, _, rows = status_rows()
    print(format_table(rows), file=stream)
    if record.get("public_gateway_ip"):
        print(f"\nThe analyst at home: `sudo ip netns exec tb-client ...` (address {record['client_ip']}); "
              f"the gateway's public address stand-in is {record['public_gateway_ip']} (ports 443, 22).",
              file=stream)
    if record.get("public_bastion_ip"):
        print(f"\n{bastion_summary(record)}", file=stream)
    if record.get("hub_firewall_address"):
        print(f"\nHub firewall stand-in at {record['hub_firewall_address']} (namespace tb-hubfw): the mirror's only "
              f"way out; its decisions are in {LabLayout(record['stack']).hub_firewall_dir / hub_firewall.LOG_FILE}",
              file=stream)
    print(f"Lab CA certificate: {record['ca_cert']}", file=stream)


def bastion_summary(record: dict[str, Any]) -> str:
    """Where Azure Bastion's stand-in answers, and whether it runs (for lab up and lab status)."""
    layout = LabLayout(record["stack"])
    state = {True: "running", False: "not running", None: "unknown (needs root)"}[bastion.running(bastion_dir(layout))]
    return (f"Azure Bastion stand-in ({state}): public IP {record['public_bastion_ip']}:{bastion.PORT} from "
            f"tb-client (address {record['client_ip']}), instance {record['bastion_ip']} in the Bastion subnet; "
            f"`sudo blueprints lab bastion-tunnel MACHINE --port 50022` opens a tunnel in tb-client, "
            f"tunnels are logged in {bastion_dir(layout) / bastion.LOG_FILE}")
