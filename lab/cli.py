"""`blueprints lab ...`: run a stack's roles on local machines (registered in cli/main.py)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from validation.usage import DEFAULT_STACK, EXIT_FAILED, EXIT_OK, UsageError

REPO = Path(__file__).resolve().parent.parent


def _lab_errors() -> tuple[type[Exception], ...]:
    """Failures of the host or a machine: reported in one line with what to read, exit 1."""
    from lab.base_image import BaseBuildError
    from lab.data_disks import DataDiskError
    from lab.dns import DnsError
    from lab.machines import MachineError
    from lab.network import NetworkError
    from lab.platform_services import PlatformError
    from lab.role_layers import LayerBuildError
    from lab.secrets import SecretError

    return (BaseBuildError, DataDiskError, DnsError, LayerBuildError, MachineError, NetworkError, PlatformError,
            SecretError)


def _reporting_failures(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except _lab_errors() as error:
            print(f"blueprints lab {args.lab_command}: {error}", file=sys.stderr)
            return EXIT_FAILED

    return run


def _cmd_up(args: argparse.Namespace) -> int:
    from lab import lifecycle
    from lab.progress import Progress

    progress = Progress()
    try:
        record = lifecycle.up(args.stack_file, progress, timeout_minutes=args.timeout, together=args.together,
                              role_layers=not args.no_role_layers)
    except lifecycle.LabUpError as failure:
        print(f"blueprints lab up: {failure}", file=sys.stderr)
        return EXIT_FAILED
    progress.note(f"lab up: all machines finished cloud-init in {progress.elapsed():.0f}s")
    lifecycle.print_up_summary(record)
    return EXIT_OK


def _cmd_apply(args: argparse.Namespace) -> int:
    from lab import apply
    from lab.progress import Progress

    if os.geteuid() != 0:
        raise UsageError("lab apply changes running machines and the host's rules: run it with sudo")
    progress = Progress()
    try:
        results = apply.apply(args.stack_file, progress, replace=args.replace)
    except apply.NotInPlaceError as refused:
        print(f"blueprints lab apply: {refused}", file=sys.stderr)
        return refused.exit_code
    for name, result in results.items():
        done = result["settings"] if result["settings"].startswith("rebuilt") else f"settings {result['settings']}"
        print(f"{name}: {done}" + (f" in {result['seconds']:.1f}s" if result["seconds"] else ""))
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from lab import lifecycle
    from lab.machines import MachineError

    try:
        layout, record, rows = lifecycle.status_rows()
    except MachineError as error:
        print(error)
        return EXIT_FAILED
    print(f"lab of {record['stack_file']}, started in {record.get('started_from', '?')} (state in {layout.root})")
    print(lifecycle.format_table(rows))
    if record.get("airlock_account"):
        print(f"airlock: storage account {record['airlock_account']}.blob.core.windows.net at "
              f"{record['airlock_address']} (Azurite behind the lab's authorising front)")
    if record.get("public_bastion_ip"):
        print(lifecycle.bastion_summary(record))
    for rule in record.get("skipped_rules", []):
        print(f"not enforced in the lab: {rule['rule']} ({rule['subnet']}): {rule['reason']}")
    return EXIT_OK


def _require_root() -> None:
    if os.geteuid() != 0:
        raise UsageError("entering a lab machine needs root: run it with sudo")


def _cmd_ssh(args: argparse.Namespace) -> int:
    from lab import machines

    _require_root()
    try:
        leader = machines.require_leader(args.machine)
    except machines.MachineError as error:
        raise UsageError(str(error)) from None
    argv = args.argv or ["/bin/bash", "--login"]
    return subprocess.run(machines.nsenter_argv(leader, argv), check=False).returncode


def _cmd_logs(args: argparse.Namespace) -> int:
    from lab import machines

    _require_root()
    try:
        layout, record = machines.running_lab()
    except machines.MachineError as error:
        raise UsageError(str(error)) from None
    if args.machine not in record["machines"]:
        raise UsageError(f"no machine {args.machine!r} in this lab; machines: {', '.join(record['machines'])}")
    sections = [("console (systemd-nspawn)", layout.console_log(args.machine)),
                ("/var/log/cloud-init-output.log", layout.cloud_init_output(args.machine))]
    for title, path in sections:
        print(f"===== {title}: {path}")
        if path.exists():
            lines = path.read_text(errors="replace").splitlines()
            print("\n".join(lines[-args.lines:]))
    leader = machines.leader_pid(args.machine)
    print("===== journal (inside the machine)")
    if leader is None:
        print("machine not running")
        return EXIT_OK
    sys.stdout.flush()
    return subprocess.run(machines.nsenter_argv(leader, ["journalctl", "--no-pager", "-n", str(args.lines)]),
                          check=False).returncode


# pytest's exit status when nothing was selected: with --workers, one phase may select nothing (-k).
PYTEST_NO_TESTS = 5
MAX_TEST_WORKERS = 16


def _cmd_test(args: argparse.Namespace) -> int:
    from lab import machines

    if args.pytest_args[:1] == ["--"]:  # `lab test [OPTIONS] -- PYTEST ARGS`: the separator is not pytest's
        args.pytest_args = args.pytest_args[1:]
    if not 1 <= args.workers <= MAX_TEST_WORKERS:
        raise UsageError(f"--workers {args.workers}: must be a whole number from 1 to {MAX_TEST_WORKERS}")
    if args.workers > 1 and any(arg.startswith("-m") for arg in args.pytest_args):
        raise UsageError("-m: with --workers above 1 the run chooses its tests with -m itself; select with -k "
                         "instead, or run with --workers 1")
    _require_root()
    try:
        machines.running_lab()
    except machines.MachineError as error:
        raise UsageError(str(error)) from None
    env = dict(os.environ, BLUEPRINTS_LAB_REQUIRED="1")
    suites = ["tests/acceptance"] if args.acceptance_only else ["tests/lab/machines", "tests/acceptance"]
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *suites]
    if args.workers == 1:
        return subprocess.run([*pytest, *args.pytest_args], cwd=REPO, env=env, check=False).returncode
    # The groups side by side, each in one process (tests/acceptance/lab_schedule.py), then the tests that
    # must run alone, one after another with nothing beside them.
    print(f"blueprints lab test: the test groups, {args.workers} at a time", flush=True)
    together = subprocess.run([*pytest, "-n", str(args.workers), "--dist", "loadscope", "--no-loadscope-reorder",
                               "-m", "not lab_alone", *args.pytest_args], cwd=REPO, env=env, check=False).returncode
    print("blueprints lab test: the tests that run alone", flush=True)
    alone = subprocess.run([*pytest, "-m", "lab_alone", *args.pytest_args], cwd=REPO, env=env,
                           check=False).returncode
    ran = [status for status in (together, alone) if status != PYTEST_NO_TESTS]
    return next((status for status in ran if status != 0), 0) if ran else PYTEST_NO_TESTS


def _cmd_reboot(args: argparse.Namespace) -> int:
    from lab import machines
    from lab.progress import Progress

    if args.timeout <= 0:
        raise UsageError(f"--timeout {args.timeout:g}: must be a number of seconds above 0")
    _require_root()
    try:
        _layout, record = machines.running_lab()
    except machines.MachineError as error:
        raise UsageError(str(error)) from None
    known = list(record["machines"])
    unknown = [name for name in args.machines if name not in known]
    if unknown:
        raise UsageError(f"no machine {', '.join(repr(n) for n in unknown)} in this lab; machines: {', '.join(known)}")
    names = list(dict.fromkeys(args.machines)) or known
    stopped = [name for name in names if machines.leader_pid(name) is None]
    if stopped:
        raise UsageError(f"not running, so not rebooted: {', '.join(stopped)} (`blueprints lab status`)")
    progress = Progress()
    progress.note(f"rebooting {', '.join(names)}")
    outcomes = machines.reboot(names, timeout=args.timeout, note=progress.note)
    unhealthy = [o for o in outcomes if not o.healthy]
    for outcome in unhealthy:
        print(f"blueprints lab reboot: {outcome.machine} came back {outcome.system_state}"
              f"{' (failed: ' + ', '.join(outcome.failed_units) + ')' if outcome.failed_units else ''}, "
              f"cloud-init {outcome.cloud_init.detail}; read `sudo blueprints lab logs {outcome.machine}`",
              file=sys.stderr)
    if unhealthy:
        return EXIT_FAILED
    slowest = max(outcomes, key=lambda o: o.seconds)
    progress.note(f"lab reboot: {len(outcomes)} machine(s) up again; slowest {slowest.machine} "
                  f"after {slowest.seconds:.0f}s")
    return EXIT_OK


def _cmd_storage_token(args: argparse.Namespace) -> int:
    from lab.storage_service import provider_token

    _require_root()
    print(provider_token(args.upn))
    return EXIT_OK


def _cmd_bastion_tunnel(args: argparse.Namespace) -> int:
    from lab import bastion, machines
    from lab.layout import CLIENT_NETNS

    for option, value in (("--resource-port", args.resource_port), ("--port", args.port)):
        if value is not None and not 0 < value < 65536:
            raise UsageError(f"{option} {value}: must be a TCP port, 1 to 65535")
    if os.geteuid() != 0:
        raise UsageError("a tunnel's local port is in the lab's client namespace, which needs root: run it with sudo")
    try:
        _, record = machines.running_lab()
    except machines.MachineError as error:
        raise UsageError(str(error)) from None
    if not record.get("public_bastion_ip"):
        raise UsageError("the running lab's stack has no Azure Bastion (roles.gateway.kind is not bastion): "
                         "reach its gateway from tb-client instead")
    if args.machine not in record["machines"]:
        raise UsageError(f"MACHINE {args.machine!r}: not a VM of this lab; machines: {', '.join(record['machines'])}")
    # The tunnel's local port is the analyst's, at home: in the client namespace.
    mode = ["connect"] if args.stdio else ["tunnel", "--port", str(args.port)]
    argv = ["ip", "netns", "exec", CLIENT_NETNS, sys.executable, "-m", "lab.bastion", *mode,
            "--bastion", f"{record['public_bastion_ip']}:{bastion.PORT}", args.machine,
            "--resource-port", str(args.resource_port)]
    try:
        return subprocess.run(argv, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False).returncode
    except KeyboardInterrupt:
        # Ctrl-C ends the tunnel (the child has it too), as it ends `az network bastion tunnel`.
        return EXIT_OK


def _cmd_down(args: argparse.Namespace) -> int:
    from lab import lifecycle
    from lab.progress import Progress

    lifecycle.down(Progress(), purge=args.purge)
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    lab = commands.add_parser(
        "lab", help="run the stack's roles on local Debian 13 machines (needs root)",
        description="Run a stack's roles on local systemd-nspawn machines booted from the same cloud-init "
                    "Azure receives, with the stack's address plan and NSG rules enforced on the host. "
                    "Needs root.")
    group = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND", required=True)

    up = group.add_parser("up", help="build or reuse the base, boot every machine, wait for cloud-init",
                          description="Build or reuse the cached Debian 13 base, wire the subnets and NSG rules, "
                                      "boot one machine per VM and wait until cloud-init finishes on all.")
    up.add_argument("stack_file", nargs="?", default=DEFAULT_STACK,
                    help=f"stack file to run (default: {DEFAULT_STACK})")
    up.add_argument("--timeout", type=float, default=30, metavar="MINUTES",
                    help="give up waiting for cloud-init after this long (default: 30)")
    up.add_argument("--together", action="store_true",
                    help="boot every machine at once, as Azure does (default: the mirror first, to spare CPU)")
    up.add_argument("--no-role-layers", action="store_true",
                    help="boot every machine from the bare base and let its cloud-init install all its packages, "
                         "as a VM from Debian's own image (default: from its role's cached package layer, the "
                         "lab's image path)")
    up.set_defaults(handler=_reporting_failures(_cmd_up))

    apply_parser = group.add_parser(
        "apply", help="apply an edited stack file to the running lab in place, as Azure applies it",
        description="Serve each machine its new user data, recompile the NSG rules and run each changed machine's "
                    "settings program, as `pulumi up` and the VMs' timers do on Azure. An edit Azure would meet "
                    "with new or replaced VMs is refused, naming them (exit 3); --replace rebuilds the replaced "
                    "ones, keeping their data disks.")
    apply_parser.add_argument("stack_file", help="the edited stack file (the lab keeps its name and state)")
    apply_parser.add_argument("--replace", action="store_true",
                              help="approve the replacements the preview shows: each such machine gets a new OS "
                                   "disk and keeps its data disk, as on Azure (default: refuse them, exit 3)")
    apply_parser.set_defaults(handler=_reporting_failures(_cmd_apply))

    status = group.add_parser("status", help="machines, addresses, cloud-init results",
                              description="Show each lab machine: role, address, whether it runs, and the "
                                          "result of its cloud-init.")
    status.set_defaults(handler=_reporting_failures(_cmd_status))

    ssh = group.add_parser(
        "ssh", help="root shell inside a machine (entered from the host with nsenter, not over SSH)",
        description="Open a root shell (or run COMMAND) inside a lab machine. This does not use SSH: it enters "
                    "the machine's namespaces from the host with nsenter, so it works before sshd is up.")
    ssh.add_argument("machine", help="machine name, e.g. mirror")
    ssh.add_argument("argv", metavar="COMMAND", nargs=argparse.REMAINDER, help="command to run instead of a shell")
    ssh.set_defaults(handler=_reporting_failures(_cmd_ssh))

    logs = group.add_parser("logs", help="console, cloud-init output and journal of a machine",
                            description="Print the end of a lab machine's console log, its cloud-init output "
                                        "and its journal: the first place to look when a role fails.")
    logs.add_argument("machine", help="machine name, e.g. mirror")
    logs.add_argument("-n", "--lines", type=int, default=100, help="lines of each log (default: 100)")
    logs.set_defaults(handler=_reporting_failures(_cmd_logs))

    test = group.add_parser("test", help="run the lab and acceptance suites against the running lab",
                            description="Run tests/lab/machines and tests/acceptance against the running lab; "
                                        "a missing lab machine is a failure, not a skip. With --workers N the "
                                        "test groups run N at a time (tests/acceptance/lab_schedule.py names "
                                        "them), then the tests that must run alone.")
    test.add_argument("--workers", type=int, default=1, metavar="N",
                      help="test groups run side by side (default: 1, every test in one process)")
    test.add_argument("--acceptance-only", action="store_true",
                      help="only tests/acceptance, the suites that also run against a deployment")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER,
                      help="extra pytest arguments, after -- (e.g. -- -k gateway)")
    test.set_defaults(handler=_reporting_failures(_cmd_test))

    reboot = group.add_parser(
        "reboot", help="reboot machines (default: all) and wait until each is up again",
        description="Reboot lab machines from inside, as a VM is rebooted, all at once, and wait until each "
                    "has booted and cloud-init has finished. Fails (exit 1) naming any machine that does not "
                    "come back, or comes back with failed units.")
    reboot.add_argument("machines", metavar="MACHINE", nargs="*", help="machines to reboot (default: every machine)")
    reboot.add_argument("--timeout", type=float, default=300, metavar="SECONDS",
                        help="give up waiting after this long (default: 300)")
    reboot.set_defaults(handler=_reporting_failures(_cmd_reboot))

    storage_token = group.add_parser(
        "storage-token", help="a storage token for a person of the airlock's data providers group",
        description="Print an access token for https://storage.azure.com carrying the airlock's data providers "
                    "group, as Entra ID gives a member of it: the lab's directory stands in for Entra ID. Upload "
                    "with it from the trust network (sudo ip netns exec tb-trust ...).")
    storage_token.add_argument("upn", help="the person's sign-in name, such as data.provider@example.nhs.uk")
    storage_token.set_defaults(handler=_reporting_failures(_cmd_storage_token))

    tunnel = group.add_parser(
        "bastion-tunnel", help="a tunnel through Azure Bastion's stand-in (az network bastion tunnel)",
        description="With a stack whose gateway is Azure Bastion: open a local port in the client namespace "
                    "(tb-client, the analyst at home) whose connections the lab's Bastion stand-in carries to "
                    "MACHINE's port, as `az network bastion tunnel --resource-port 22 --port 50022` does; or, "
                    "with --stdio, one tunnel on stdin and stdout for `ssh -o ProxyCommand=...` run in tb-client.")
    tunnel.add_argument("machine", metavar="MACHINE", help="the VM to reach, such as analytics-1")
    tunnel.add_argument("--resource-port", type=int, default=22, help="the VM's port (default: 22)")
    where = tunnel.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int, help="the local port in tb-client, on 127.0.0.1")
    where.add_argument("--stdio", action="store_true", help="one tunnel on stdin and stdout (a ProxyCommand)")
    tunnel.set_defaults(handler=_reporting_failures(_cmd_bastion_tunnel))

    down = group.add_parser("down", help="stop the machines and remove everything the lab created",
                            description="Stop every machine; remove namespaces, bridges, the nftables table, "
                                        "mounts and the lab's state. The cached base stays unless --purge.")
    down.add_argument("--purge", action="store_true", help="also remove the cached base image")
    down.set_defaults(handler=_reporting_failures(_cmd_down))
