"""Lab machines: systemd-nspawn containers booted from an overlay of the base, one per VM.

Each machine boots in the network namespace the lab cabled for it, with its own overlay
(``upper``) over the read-only base. A small supervisor loop restarts systemd-nspawn when the
machine reboots itself (nspawn exits with 133 on reboot), as a VM would come back.
Commands run inside a machine by entering its namespaces from the host (nsenter): no SSH,
no system bus and no machinectl are needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.data_disks import SUPERVISOR_MOUNT, nspawn_binds, supervisor_environment
from lab.layout import LabLayout, machine_netns, read_record, running_labs

# Exit status of systemd-nspawn when the machine asked for a reboot.
REBOOT_STATUS = 133
# apt inside a machine, one caller at a time: the lab's tests run side by side, and apt refuses to start
# while another apt holds its locks. flock queues the lab's and the suites' own callers; the lock timeout
# waits out the machine's own (unattended-upgrades), as an administrator's apt would.
APT_GET = ("DEBIAN_FRONTEND=noninteractive flock --wait 900 /run/lock/trust-blueprints-apt "
           "apt-get -q -o DPkg::Lock::Timeout=600")
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Each machine runs in cgroups of its own, as each VM is a machine of its own. Machines started
# from one process would otherwise share one cgroup tree, and with it the cgroup of every unit
# of the same name: a machine stopping apache2 waited 90 s for another machine's apache2, and
# machines booting together raced to create and remove the same unit cgroups.
CGROUP_PREFIX = "trust-blueprints-"
CGROUP_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup"))
OWN_CGROUPS = (
    f'cgroup="{CGROUP_PREFIX}$0"; '
    'while IFS=: read -r _ controllers path; do '
    'case "$controllers" in '
    '"") root=/sys/fs/cgroup; '
    '[ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] && root=/sys/fs/cgroup/unified;; '
    'name=systemd) root=/sys/fs/cgroup/systemd;; '
    '*) continue;; '
    'esac; '
    'dir="$root${path%/}/$cgroup"; '
    '{ mkdir -p "$dir" && echo $$ > "$dir/cgroup.procs"; } 2>/dev/null || '
    'echo "[lab] no cgroup of its own under $root: the machine shares the cgroups of the process that started it"; '
    'done < /proc/self/cgroup; '
)
SUPERVISOR = (
    OWN_CGROUPS
    + 'while :; do '
    + SUPERVISOR_MOUNT
    # Unquoted: empty without a data disk; lab paths hold no blanks.
    + 'systemd-nspawn $data_disk_bind "$@"; status=$?; '
    f'[ "$status" -eq {REBOOT_STATUS} ] || exit "$status"; '
    'echo "[lab] machine rebooted itself: starting it again"; done'
)


class MachineError(Exception):
    """A machine is missing, not running, or failed to start; the message says which."""


@dataclass(frozen=True)
class CloudInitStatus:
    status: str  # not started | running | done | error | disabled
    detail: str  # extended status and errors, for the table and failure messages

    @property
    def finished(self) -> bool:
        return self.status in ("done", "error", "disabled")


# Machines' writable layers go to memory only on a host with at least this much (the example's five
# machines write about 3 GB over their role layers in a full `make lab-test`).
TMPFS_MIN_MEMORY = 12 * 1024**3
TMPFS_SHARE = 0.5


def _memory_total() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def memory_for_tmpfs() -> bool:
    return _memory_total() >= TMPFS_MIN_MEMORY


def mount_machine_disks_in_memory(layout: LabLayout) -> Path:
    """A tmpfs for every machine's writable layer; `lab down` unmounts it with the overlays."""
    directory = layout.root / "machines"
    directory.mkdir(parents=True, exist_ok=True)
    size = int(_memory_total() * TMPFS_SHARE)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "lab-machines", str(directory)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise MachineError(f"tmpfs for the machines' disks on {directory} failed: {result.stderr.strip()}")
    return directory


def mount_overlay(base: Path, layout: LabLayout, machine: str, layer: Path | None = None) -> Path:
    """The machine's disk: its own writable layer over its role's package layer (lab/role_layers.py),
    if any, over the base."""
    directory = layout.machine_dir(machine)
    upper, work, root = directory / "upper", directory / "work", layout.machine_root(machine)
    for path in (upper, work, root):
        path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "overlay", f"lab-{machine}", "-o",
         f"lowerdir={f'{layer}:' if layer else ''}{base},upperdir={upper},workdir={work}", str(root)],
        capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise MachineError(f"{machine}: overlay mount on {root} failed: {result.stderr.strip()}")
    return root


def start(layout: LabLayout, machine: str, data_disk: str | None = None) -> int:
    """Boot a machine in its namespace, with its data disk's device if it has one (lab/data_disks.py);
    returns the supervisor's pid."""
    root = layout.machine_root(machine)
    nspawn_args = [
        "--quiet", f"--directory={root}", f"--machine={machine}", "--boot",
        # No system bus on the host: do not register with machined or ask for a scope unit.
        "--register=no", "--keep-unit",
        f"--network-namespace-path=/run/netns/{machine_netns(machine)}",
        # systemd-networkd inside needs it to configure the machine's own interface.
        "--capability=CAP_NET_ADMIN",
        # The machine's resolver, clock zone and journal are its own, as on a VM.
        "--resolv-conf=off", "--timezone=off", "--link-journal=no",
        "--console=read-only",
    ]
    environment = dict(os.environ)
    if data_disk:
        nspawn_args += nspawn_binds(data_disk)
        environment.update(supervisor_environment(layout, machine, data_disk))
    log = layout.console_log(machine).open("ab")
    process = subprocess.Popen(["sh", "-c", SUPERVISOR, f"lab-{machine}", *nspawn_args],
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True, env=environment)
    log.close()
    return process.pid


def leader_pid(machine: str) -> int | None:
    """The machine's init (pid 1 inside it): the process in its network namespace whose pid is 1 there."""
    try:
        netns_inode = os.stat(f"/run/netns/{machine_netns(machine)}").st_ino
    except FileNotFoundError:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry / "ns/net").st_ino != netns_inode:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("NSpid:"):
                    pids = line.split()[1:]
                    if len(pids) > 1 and pids[-1] == "1":
                        return int(entry.name)
        except OSError:
            continue
    return None


def nsenter_argv(leader: int, argv: list[str], environment: dict[str, str] | None = None) -> list[str]:
    env = {"PATH": GUEST_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": os.environ.get("TERM", "dumb")}
    env.update(environment or {})
    return ["nsenter", f"--target={leader}", "--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup",
            "--root", "--wd", "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv]


def require_leader(machine: str) -> int:
    leader = leader_pid(machine)
    if leader is None:
        raise MachineError(f"machine {machine!r} is not running (is the lab up? `blueprints lab status`)")
    return leader


def run(stack_config: dict[str, Any] | None, machine_name: str, argv: list[str],
        **subprocess_kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as root inside a running lab machine; returns the completed process.

    Output is captured as text unless the caller says otherwise. ``stack_config`` is accepted
    for symmetry with the rest of the lab; the running lab's record decides where machines are.
    """
    del stack_config
    subprocess_kwargs.setdefault("capture_output", True)
    subprocess_kwargs.setdefault("text", True)
    subprocess_kwargs.setdefault("check", False)
    return subprocess.run(nsenter_argv(require_leader(machine_name), argv), **subprocess_kwargs)


def cloud_init_status(machine: str) -> CloudInitStatus:
    leader = leader_pid(machine)
    if leader is None:
        return CloudInitStatus("not started", "machine not running")
    result = subprocess.run(nsenter_argv(leader, ["cloud-init", "status", "--format", "json"]),
                            capture_output=True, text=True, check=False, timeout=60)
    try:
        document = json.loads(result.stdout)
    except json.JSONDecodeError:
        return CloudInitStatus("not started", (result.stderr or result.stdout).strip()[:200])
    status = str(document.get("status", "unknown"))
    extended = str(document.get("extended_status", status))
    errors = document.get("errors") or []
    detail = extended if not errors else f"{extended}: {'; '.join(str(e) for e in errors)[:300]}"
    return CloudInitStatus(status, detail)


@dataclass(frozen=True)
class RebootOutcome:
    machine: str
    seconds: float  # from the reboot request until systemd and cloud-init in the machine are done
    system_state: str  # systemd's own verdict: running, or degraded with the failed units
    failed_units: tuple[str, ...]
    cloud_init: CloudInitStatus

    @property
    def healthy(self) -> bool:
        return self.system_state == "running" and self.cloud_init.status == "done"


# systemd states once booting is over (`systemctl is-system-running`).
BOOTED_STATES = ("running", "degraded", "maintenance")


def reboot(names: list[str], timeout: float = 300.0,
           note: Callable[[str], None] | None = None) -> list[RebootOutcome]:
    """Reboot machines together, as VMs rebooted from the portal, and wait until each is up again.

    A machine is up again when a new init runs in its namespace, systemd says booting is over and
    cloud-init has finished. Raises MachineError naming the machines that did not come back in
    ``timeout`` seconds.
    """
    report = note or (lambda message: None)
    before = {name: require_leader(name) for name in names}
    began = time.monotonic()
    for name in names:
        # The request returns once systemd has queued the reboot; the machine then goes away.
        subprocess.run(nsenter_argv(before[name], ["systemctl", "reboot"]), capture_output=True, check=False,
                       timeout=60)
        report(f"{name}: reboot requested")
    outcomes: dict[str, RebootOutcome] = {}
    waiting = list(names)
    deadline = began + timeout
    while waiting and time.monotonic() < deadline:
        for name in list(waiting):
            leader = leader_pid(name)
            if leader in (None, before[name]):
                continue
            state = _system_state(leader)
            if state not in BOOTED_STATES:
                continue
            status = cloud_init_status(name)
            if not status.finished:
                continue
            failed = _failed_units(leader) if state != "running" else ()
            outcomes[name] = RebootOutcome(name, round(time.monotonic() - began, 1), state, failed, status)
            waiting.remove(name)
            report(f"{name}: up again after {outcomes[name].seconds:.0f}s (system {state}"
                   f"{': failed ' + ', '.join(failed) if failed else ''}; cloud-init {status.detail})")
        if waiting:
            time.sleep(1)
    if waiting:
        states = ", ".join(f"{name} ({_describe_boot(name, before[name])})" for name in waiting)
        raise MachineError(f"not up again {timeout:.0f}s after the reboot: {states}; "
                           f"read `blueprints lab logs {waiting[0]}`")
    return [outcomes[name] for name in names]


def _system_state(leader: int) -> str:
    result = subprocess.run(nsenter_argv(leader, ["systemctl", "is-system-running"]), capture_output=True,
                            text=True, check=False, timeout=60)
    return result.stdout.strip() or "unknown"


def _failed_units(leader: int) -> tuple[str, ...]:
    result = subprocess.run(nsenter_argv(leader, ["systemctl", "list-units", "--failed", "--plain", "--no-legend"]),
                            capture_output=True, text=True, check=False, timeout=60)
    return tuple(line.split()[0] for line in result.stdout.splitlines() if line.strip())


def _describe_boot(name: str, old_leader: int) -> str:
    leader = leader_pid(name)
    if leader is None:
        return "not running"
    if leader == old_leader:
        return "still shutting down"
    return f"system {_system_state(leader)}, cloud-init {cloud_init_status(name).status}"


def stop_all(machines: dict[str, int | None], timeout: float = 30.0) -> list[str]:
    """Power machines off together (name -> supervisor pid); kill those still up after ``timeout``.

    Returns the names of the machines that had to be killed.
    """
    for name in machines:
        leader = leader_pid(name)
        if leader is not None:
            # systemd powers off on SIGRTMIN+4.
            _signal(leader, signal.SIGRTMIN + 4)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(leader_pid(name) is not None for name in machines):
        time.sleep(0.5)
    killed = []
    for name in machines:
        leader = leader_pid(name)
        if leader is not None:
            # Killing pid 1 of a pid namespace ends every process in it.
            _signal(leader, signal.SIGKILL)
            killed.append(name)
    for name, supervisor in machines.items():
        if supervisor and _is_supervisor(supervisor, name):
            end = time.monotonic() + 10
            while time.monotonic() < end and Path(f"/proc/{supervisor}").exists():
                time.sleep(0.2)
            if Path(f"/proc/{supervisor}").exists():
                os.killpg(supervisor, signal.SIGKILL)
    return killed


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _is_supervisor(pid: int, machine: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"lab-{machine}".encode() in cmdline


def remove_cgroups(names: list[str]) -> list[str]:
    """Remove the cgroups the stopped machines ran in (innermost first); returns those removed."""
    wanted = {f"{CGROUP_PREFIX}lab-{name}" for name in names}
    removed = []
    for root in CGROUP_ROOTS:
        if not root.is_dir():
            continue
        for directory, subdirectories, _ in os.walk(root):
            for found in [d for d in subdirectories if d in wanted]:
                subdirectories.remove(found)
                top = Path(directory) / found
                for inner, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
                    with contextlib.suppress(OSError):
                        os.rmdir(inner)
                if not top.exists():
                    removed.append(str(top))
    return removed


def unmount(path: Path) -> bool:
    if not os.path.ismount(path):
        return False
    result = subprocess.run(["umount", str(path)], capture_output=True, check=False)
    if result.returncode != 0:
        subprocess.run(["umount", "--lazy", str(path)], capture_output=True, check=False)
    return True


def running_lab() -> tuple[LabLayout, dict[str, Any]]:
    """The lab on this host and its record, or a MachineError saying there is none."""
    labs = running_labs()
    if not labs:
        raise MachineError("no lab on this host: start one with `sudo blueprints lab up`")
    return labs[0], read_record(labs[0])
