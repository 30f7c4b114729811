"""The Azure Bastion path, end to end in the lab: from home through Bastion's stand-in (lab/bastion.py) to
the analyst's own account on an analytics VM, and to JupyterLab forwarded in that SSH session.

Runs only on a lab whose stack's roles.gateway.kind is bastion (`make lab-test-bastion` brings up
stacks/bastion-single-analyst.yaml). The module gives two analysts in roles.gateway.ssh_users keys made
here, applies that stack with `blueprints lab apply` as `pulumi up` would, and at the end applies the
lab's own stack again. The analyst's client is the lab's client namespace (tb-client, inside
network.allowed_client_ranges); the tunnel is `blueprints lab bastion-tunnel`, the lab's
`az network bastion tunnel`. The path is the one Azure has: Bastion's public IP on 443, the Bastion
subnet's NSG, an onward connection from the Bastion subnet through the VM subnet's NSG, and sshd's rule
accepting analysts' keys only from the Bastion subnet.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.acceptance.conftest import REPO

pytestmark = pytest.mark.lab

ANALYST = "sjones"  # the analyst of stacks/bastion-single-analyst.yaml
OTHER = "rpatel"  # a second analyst, added by this module
JUPYTER_PORT = 8888  # docs/analysts.md
SSH_OPTIONS = ["-F", "/dev/null", "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
               "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15",
               "-o", "PreferredAuthentications=publickey"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
READY_SECONDS = 120


@pytest.fixture(scope="module")
def bastion_lab(lab) -> Any:
    gateway = lab.config["roles"].get("gateway") or {}
    if lab.target != "lab" or gateway.get("kind") != "bastion":
        pytest.skip("needs the lab running a stack whose roles.gateway.kind is bastion "
                    "(sudo blueprints lab up stacks/bastion-single-analyst.yaml; make lab-test-bastion)")
    if not lab.record.get("public_bastion_ip"):
        pytest.fail("the lab's stack has Azure Bastion but the lab has no Bastion stand-in (lab/bastion.py)")
    return lab


@pytest.fixture(scope="module")
def analytics_vm(bastion_lab) -> Any:
    return next(m for m in bastion_lab.machines if m.role == "analytics")


def _lab_apply(stack_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", "lab", "apply", str(stack_file)], capture_output=True,
                          text=True, timeout=900, check=False, cwd=REPO)


@pytest.fixture(scope="module")
def keys(bastion_lab) -> Iterator[dict[str, Path]]:
    """Keys made here for both analysts and for the administrator (a second key in admin.ssh_public_keys,
    which follows the stack in place; the first, osProfile's, is unchanged), applied with `lab apply`.
    The lab's own stack is applied again afterwards."""
    lab = bastion_lab
    document = yaml.safe_load(Path(lab.record["stack_file"]).read_text(encoding="utf-8"))
    admin = lab.config["admin"]["username"]
    with tempfile.TemporaryDirectory(prefix="bastion-path-") as work:
        made = {}
        for name in (ANALYST, OTHER, admin):
            made[name] = Path(work) / name
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(made[name])],
                           check=True)
        public = {name: made[name].with_suffix(".pub").read_text().strip() for name in made}
        document["roles"]["gateway"]["ssh_users"] = [{"name": name, "ssh_public_key": public[name]}
                                                     for name in (ANALYST, OTHER)]
        document["admin"]["ssh_public_keys"] = [*document["admin"]["ssh_public_keys"], public[admin]]
        edited = lab.state_dir / "bastion-path.yaml"
        edited.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        applied = _lab_apply(edited)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        try:
            yield made
        finally:
            restored = _lab_apply(Path(lab.record["stack_file"]))
            assert restored.returncode == 0, restored.stdout + restored.stderr


def _proxy(machine: str, port: int = 22) -> str:
    """`blueprints lab bastion-tunnel --stdio` as ssh's ProxyCommand (in tb-client already)."""
    return f"{sys.executable} -m cli lab bastion-tunnel {machine} --resource-port {port} --stdio"


def _ssh_through_bastion(lab, machine: str, user: str, key: Path, command: str = "id -un; id -Gn",
                         extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    argv = ["ssh", *SSH_OPTIONS, "-i", str(key), "-o", f"ProxyCommand={_proxy(machine)}", *extra,
            f"{user}@{machine}", command]
    return lab.client(argv, env=ENV, cwd=REPO, input="", timeout=90)


def _tunnel_log(lab) -> list[dict[str, Any]]:
    path = lab.state_dir / "bastion" / "tunnels.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_analyst_gets_a_shell_of_their_own_without_sudo(bastion_lab, keys, analytics_vm):
    before = len(_tunnel_log(bastion_lab))
    result = _ssh_through_bastion(bastion_lab, analytics_vm.name, ANALYST, keys[ANALYST])
    assert result.returncode == 0, result.stderr
    whoami, groups = result.stdout.strip().splitlines()[-2:]
    assert whoami == ANALYST
    assert not {"sudo", "adm", "root", "wheel"} & set(groups.split())
    # Bastion's audit: the tunnel, from the analyst's address, onward from the Bastion instance.
    entry = _tunnel_log(bastion_lab)[before]
    assert entry["result"] == "connected" and entry["machine"] == analytics_vm.name and entry["port"] == 22
    assert entry["client"] == bastion_lab.record["client_ip"]
    assert entry["source"] == bastion_lab.record["bastion_ip"]


def test_sshd_sees_the_bastion_instance_as_the_source(bastion_lab, keys, analytics_vm):
    result = _ssh_through_bastion(bastion_lab, analytics_vm.name, ANALYST, keys[ANALYST],
                                  command="echo $SSH_CONNECTION")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == bastion_lab.record["bastion_ip"]


@pytest.mark.parametrize("account", [OTHER, "admin"])
def test_the_analysts_key_opens_no_other_account(bastion_lab, keys, analytics_vm, account):
    user = bastion_lab.config["admin"]["username"] if account == "admin" else account
    result = _ssh_through_bastion(bastion_lab, analytics_vm.name, user, keys[ANALYST])
    assert result.returncode != 0
    assert f"{user}@{analytics_vm.name}: Permission denied" in result.stderr, result.stderr


def test_the_administrator_still_reaches_the_vm_through_bastion(bastion_lab, keys, analytics_vm):
    admin = bastion_lab.config["admin"]["username"]
    result = _ssh_through_bastion(bastion_lab, analytics_vm.name, admin, keys[admin], command="id -un; sudo -n true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[0] == admin


def test_ssh_straight_to_the_vm_bypassing_bastion_fails(bastion_lab, keys, analytics_vm):
    argv = ["ssh", *SSH_OPTIONS, "-i", str(keys[ANALYST]),
            f"{ANALYST}@{analytics_vm.private_ip}", "true"]
    result = bastion_lab.client(argv, input="", timeout=60)
    assert result.returncode == 255
    assert "timed out" in result.stderr or "unreachable" in result.stderr, result.stderr


@pytest.mark.parametrize(("machine", "port", "reason"), [
    ("analytics", 8888, "port 8888 of {machine} is not open to the Bastion subnet"),
    ("analytics", 443, "port 443 of {machine} is not open to the Bastion subnet"),
    ("git", 22, "machine 'git' is not a VM of this stack"),
])
def test_a_tunnel_to_another_port_or_machine_is_refused(bastion_lab, analytics_vm, machine, port, reason):
    name = analytics_vm.name if machine == "analytics" else machine
    argv = [sys.executable, "-m", "lab.bastion", "connect", "--bastion",
            f"{bastion_lab.record['public_bastion_ip']}:443", name, "--resource-port", str(port)]
    result = bastion_lab.client(argv, env=ENV, cwd=REPO, input="", timeout=60)
    assert result.returncode == 1
    assert reason.format(machine=name) in result.stderr, result.stderr
    assert _tunnel_log(bastion_lab)[-1]["result"] == "refused"


def test_bastions_public_ip_answers_nothing_but_443(bastion_lab):
    """Only 443 is forwarded to Bastion; 22 on its public address goes nowhere."""
    code = (f"import socket; socket.create_connection(({bastion_lab.record['public_bastion_ip']!r}, 22), 5)")
    result = bastion_lab.client([sys.executable, "-c", code], timeout=60)
    assert result.returncode != 0
    assert "refused" in result.stderr or "timed out" in result.stderr, result.stderr


@contextlib.contextmanager
def _local_tunnel(lab, machine: str, local_port: int) -> Iterator[None]:
    """`sudo blueprints lab bastion-tunnel MACHINE --port N`, as the docs give it, until the port answers."""
    process = subprocess.Popen([sys.executable, "-m", "cli", "lab", "bastion-tunnel", machine,
                                "--resource-port", "22", "--port", str(local_port)],
                               cwd=REPO, env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    probe = [sys.executable, "-c", f"import socket; socket.create_connection(('127.0.0.1', {local_port}), 2).close()"]
    try:
        deadline = time.monotonic() + 30
        while lab.client(probe, timeout=10).returncode != 0:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, f"the tunnel's port {local_port} did not open in 30s"
            time.sleep(0.3)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)


def _http(lab, url: str, body: dict[str, Any] | None = None, method: str = "GET") -> tuple[int, str]:
    """One request from the client namespace (the analyst's browser at home): status and body text;
    status 0 when nothing answered."""
    data = "None" if body is None else f"json.dumps({body!r}).encode()"
    code = ("import json, urllib.request, urllib.error\n"
            f"request = urllib.request.Request({url!r}, data={data}, method={method!r},"
            " headers={'Content-Type': 'application/json'})\n"
            "try:\n"
            "    r = urllib.request.urlopen(request, timeout=30); print(r.status); print(r.read().decode())\n"
            "except urllib.error.HTTPError as e:\n"
            "    print(e.code); print(e.read().decode())\n"
            "except OSError as e:\n"
            "    print(0); print(e)\n")
    result = lab.client([sys.executable, "-c", code], timeout=90)
    status, _, text = result.stdout.partition("\n")
    return int(status or 0), text


def test_jupyterlab_forwarded_in_the_analysts_session(bastion_lab, keys, analytics_vm, analytics_host):
    """docs/analysts.md: a tunnel to port 22, `ssh -L 8888:127.0.0.1:8888`, `jupyter lab --no-browser
    --port 8888` in that session; the browser at home opens http://127.0.0.1:8888 with the server's token,
    starts a kernel and runs a cell (tests/acceptance/kernel_cell.py speaks the page's kernel protocol)."""
    lab = bastion_lab
    token = secrets.token_hex(16)
    tunnel_port, forwarded = 50022, 58888
    home = analytics_host.run(f"getent passwd {ANALYST} | cut -d: -f6").stdout.strip()
    pid_file = f"{home}/.tb-test-jupyter.pid"
    # The token in the environment (JUPYTER_TOKEN) is the one the browser is given; --port-retries=0 so the
    # server fails rather than moving to another port than the forwarded one.
    command = (f"JUPYTER_TOKEN={token} jupyter lab --no-browser --port {JUPYTER_PORT} --port-retries=0 "
               f"> ~/.tb-test-jupyter.log 2>&1 & echo $! > {pid_file}; wait")
    with _local_tunnel(lab, analytics_vm.name, tunnel_port):
        session = subprocess.Popen(
            ["ip", "netns", "exec", "tb-client", "ssh", *SSH_OPTIONS, "-i", str(keys[ANALYST]), "-p", str(tunnel_port),
             "-o", "ExitOnForwardFailure=yes", "-L", f"{forwarded}:127.0.0.1:{JUPYTER_PORT}",
             f"{ANALYST}@127.0.0.1", command],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{forwarded}"
            deadline = time.monotonic() + READY_SECONDS
            while (status := _http(lab, f"{base}/api/status?token={token}")[0]) != 200:
                assert session.poll() is None, session.stderr.read().decode()
                assert time.monotonic() < deadline, (
                    f"JupyterLab did not answer 200 within {READY_SECONDS}s (last {status}); "
                    + analytics_host.run(f"cat {home}/.tb-test-jupyter.log").stdout)
                time.sleep(1)
            # It is the analyst's own server: their process, refusing anyone without the token.
            owner = analytics_host.run(f"ps -o user= -p $(cat {pid_file})").stdout.strip()
            assert owner == ANALYST
            assert _http(lab, f"{base}/api/status")[0] == 403
            assert _http(lab, f"{base}/lab?token={token}")[0] == 200
            # A kernel starts and runs a cell as the analyst, over its WebSocket through the same forward.
            status, body = _http(lab, f"{base}/api/kernels?token={token}", {"name": "python3"}, "POST")
            assert status == 201, body
            kernel = json.loads(body)["id"]
            cell = lab.client([sys.executable, "-m", "tests.acceptance.kernel_cell", base, token, kernel,
                               "import getpass; print(getpass.getuser(), 6 * 7)"], env=ENV, cwd=REPO, timeout=180)
            assert cell.returncode == 0, cell.stderr
            assert cell.stdout.strip() == f"{ANALYST} 42"
            assert analytics_host.run(f"pgrep -u {ANALYST} -f ipykernel_launcher").rc == 0
            assert _http(lab, f"{base}/api/kernels/{kernel}?token={token}", {}, "DELETE")[0] == 204
        finally:
            analytics_host.run(f"test -s {pid_file} && kill $(cat {pid_file}); rm -f {pid_file}")
            os.killpg(session.pid, signal.SIGTERM)
            session.wait(10)
