"""How long an SSH connection through the gateway's jump host takes to set up, from home.

Needs a running lab with a self-hosted gateway (`sudo blueprints lab up`); run as root from the
repository:

    sudo .venv/bin/python benchmarks/gateway_ssh.py [--runs 5]

It adds a throwaway jump account on the gateway (`gateway-jump-user`, `gateway-totp-enrol`),
then, from the lab's client namespace, times each connection from starting `ssh` until the
internal machine's own sshd has answered: the jump host's key and one-time-code sign-in, the
forwarded channel, and the inner key exchange and sign-in attempt (refused, as the throwaway
account has no key on the internal machine; refusal ends the set-up without a session). Each
run uses a fresh code; the gateway allows three attempts per 30 seconds and never the same
code twice, so five runs take a minute or two. The account is removed afterwards. Figures are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from blueprints.topology import plan_machines, private_dns_zone  # noqa: E402
from lab.layout import read_record, running_labs  # noqa: E402
from lab.machines import nsenter_argv, require_leader  # noqa: E402
from tests.acceptance.totp_codes import Totp  # noqa: E402
from validation.stack_config import load_stack  # noqa: E402

ACCOUNT = "tbbenchjump"


def on_gateway(machine: str, command: str) -> str:
    result = subprocess.run(nsenter_argv(require_leader(machine), ["/bin/sh", "-c", command]),
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"on {machine}: {command!r} failed: {result.stderr.strip()}")
    return result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs {args.runs}: must be at least 1")
    labs = running_labs()
    if not labs:
        print("no lab running: run `sudo blueprints lab up` first", file=sys.stderr)
        return 2
    config = load_stack(read_record(labs[0])["stack_file"])
    gateway = config["roles"].get("gateway") or {}
    if gateway.get("kind") != "self-hosted":
        print("the lab's stack has no self-hosted gateway: nothing to measure", file=sys.stderr)
        return 2
    machines = plan_machines(config)
    gateway_machine = next(m.name for m in machines if m.role == "gateway")
    # Analysts jump to their analytics VMs (or the Git server); the mirror takes no SSH from the gateway.
    target = next((m for role in ("analytics", "git_server") for m in machines if m.role == role), None)
    if target is None:
        print("the lab's stack has no analytics VM or Git server to jump to", file=sys.stderr)
        return 2
    target_host = f"{target.name}.{private_dns_zone(config)}"
    with tempfile.TemporaryDirectory(prefix="gateway-ssh-bench-") as folder:
        work = Path(folder)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", ACCOUNT, "-f", str(work / "key")],
                       check=True)
        on_gateway(gateway_machine, f"gateway-jump-user {ACCOUNT} '{(work / 'key.pub').read_text().strip()}'")
        try:
            on_gateway(gateway_machine, f"gateway-totp-enrol {ACCOUNT} >/dev/null")
            totp = Totp(on_gateway(gateway_machine, f"head -n 1 /var/lib/trust-blueprints/totp/{ACCOUNT}").strip())
            (work / "askpass").write_text(f"#!/bin/sh\ncat {work / 'code'}\n")
            (work / "askpass").chmod(0o755)
            options = ["-F", "/dev/null", "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
                       "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=15", "-i", str(work / "key")]
            proxy = " ".join(["ssh", *options, "-W", "%h:%p", f"{ACCOUNT}@{gateway['hostname']}"])
            env = {**os.environ, "SSH_ASKPASS": str(work / "askpass"), "SSH_ASKPASS_REQUIRE": "force",
                   "DISPLAY": "none"}
            seconds = []
            for run in range(1, args.runs + 1):
                (work / "code").write_text(totp.next_code() + "\n")
                started = time.monotonic()
                result = subprocess.run(
                    ["ip", "netns", "exec", "tb-client", "ssh", *options, "-o", "BatchMode=yes",
                     "-o", f"ProxyCommand={proxy}", f"{ACCOUNT}@{target_host}", "true"],
                    capture_output=True, text=True, env=env, input="", check=False, timeout=60)
                elapsed = time.monotonic() - started
                if f"{ACCOUNT}@{target_host}: Permission denied" not in result.stderr:
                    print(f"run {run}: the jump did not reach {target_host}'s sshd:\n{result.stderr[-1500:]}",
                          file=sys.stderr)
                    return 1
                seconds.append(elapsed)
                print(f"run {run}: {elapsed:.3f} s to set up a jump to {target_host} through {gateway['hostname']}")
        finally:
            on_gateway(gateway_machine, f"userdel {ACCOUNT}; rm -f /etc/ssh/trust-blueprints-keys/{ACCOUNT} "
                                        f"/var/lib/trust-blueprints/totp/{ACCOUNT}; fail2ban-client unban --all")
    print(f"median of {len(seconds)}: {statistics.median(seconds):.3f} s "
          f"(min {min(seconds):.3f}, max {max(seconds):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
