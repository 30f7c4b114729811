"""Git server figures in the running lab: push and clone of a 1,000-file, ~50 MB history over
the lab network (analytics VM -> Git server over SSH), then backup and restore of that repository.

Run as root with a lab up (`sudo blueprints lab up`):

    sudo .venv/bin/python benchmarks/git_server.py

A throw-away user and repository are added through the update path (git-server-apply) and
removed afterwards. Wall times are measured inside the machines, so they exclude entering them.
"""

from __future__ import annotations

import argparse
import base64
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

USER = "bench-user"
REPOSITORY = "bench-history"
SETTINGS = "/etc/trust-blueprints/git-server.yaml"
BENCH_SETTINGS = "/etc/trust-blueprints/git-server-bench.yaml"
WORK = "/root/git-bench"
# 1,000 files of 25 KiB random bytes, then 20 commits each rewriting 50 of them: about
# 25 MB + 20 x 1.25 MB = 50 MB of incompressible history.
MAKE_HISTORY = r"""
import os, subprocess, sys
root = sys.argv[1]
os.makedirs(root, exist_ok=True)
identity = ["-c", "user.name=Benchmark", "-c", "user.email=bench@example.nhs.uk"]
def git(*args): subprocess.run(["git", *identity, "-C", root, *args], check=True, capture_output=True)
git("init", "-q", "-b", "main")
for i in range(1000):
    d = os.path.join(root, f"dir{i // 100:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i:04d}.bin"), "wb") as f: f.write(os.urandom(25 * 1024))
git("add", "-A"); git("commit", "-qm", "Initial import")
for c in range(20):
    for i in range(c * 50, c * 50 + 50):
        with open(os.path.join(root, f"dir{i // 100:02d}", f"file{i:04d}.bin"), "wb") as f:
            f.write(os.urandom(25 * 1024))
    git("commit", "-qam", f"Update batch {c}")
"""


def _host(name: str) -> Any:
    import testinfra

    import lab.testinfra_backend  # noqa: F401  (registers nspawn://)

    return testinfra.get_host(f"nspawn://{name}")


def _ok(host: Any, command: str) -> str:
    result = host.run(command)
    if result.rc != 0:
        raise RuntimeError(f"{command}\n{result.stderr}")
    return result.stdout


def _timed(host: Any, command: str) -> float:
    """Seconds the command took, measured inside the machine."""
    script = f"s=$(date +%s.%N); {command} >/dev/null; e=$(date +%s.%N); echo \"$e - $s\" | bc -l 2>/dev/null " \
             f"|| python3 -c \"print($e - $s)\""
    return float(_ok(host, script).strip().splitlines()[-1])


def _put(host: Any, path: str, data: bytes, mode: str = "0600") -> None:
    encoded = base64.b64encode(data).decode()
    _ok(host, f"mkdir -p {shlex.quote(str(Path(path).parent))} && echo {encoded} | base64 -d > {path} "
              f"&& chmod {mode} {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", default="analytics-1", help="lab machine that runs git (default analytics-1)")
    args = parser.parse_args()
    from lab.layout import read_record, running_labs
    from validation.stack_config import load_stack

    labs = running_labs()
    if not labs:
        print("no lab is running: start one with `sudo blueprints lab up`", file=sys.stderr)
        return 2
    record = read_record(labs[0])
    config = load_stack(record["stack_file"])
    zone = f"{config['trust']['short_name']}-{config['environment']}.internal"
    git, client = _host("git"), _host(args.client)

    with tempfile.TemporaryDirectory() as directory:
        key = Path(directory) / USER
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        private, public = key.read_bytes(), key.with_suffix(".pub").read_text().strip()
    settings = json.loads(json.dumps(config["roles"]["git_server"]))
    settings["teams"].append({"name": "bench"})
    settings["users"].append({"name": USER, "ssh_public_key": public, "teams": ["bench"]})
    settings["repositories"].append({"name": REPOSITORY, "owner_team": "bench", "maintainers": [USER],
                                     "writers": [], "readers": []})
    _put(git, BENCH_SETTINGS, json.dumps(settings).encode(), "0644")
    try:
        _ok(git, f"git-server-apply {BENCH_SETTINGS}")
        if not client.exists("git"):
            _ok(client, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q git openssh-client")
        _ok(client, f"rm -rf {WORK}")
        _put(client, f"{WORK}/key", private)
        _put(client, f"{WORK}/make_history.py", MAKE_HISTORY.encode(), "0644")
        _ok(client, f"python3 {WORK}/make_history.py {WORK}/source")
        files = int(_ok(client, f"git -C {WORK}/source ls-files | wc -l"))
        packed = _ok(client, f"git -C {WORK}/source count-objects -vH | sed -n 's/^size: //p'").strip()
        ssh = (f"ssh -i {WORK}/key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new "
               f"-o UserKnownHostsFile={WORK}/known_hosts")
        env = f"export GIT_SSH_COMMAND={shlex.quote(ssh)}; cd {WORK} &&"
        url = f"git@git.{zone}:{REPOSITORY}"
        push = _timed(client, f"{env} git -C source push -q {url} main")
        clone = _timed(client, f"{env} git clone -q {url} copy")
        bare = f"/srv/git/repositories/{REPOSITORY}.git"
        size_mb = int(_ok(git, f"du -sk {bare}").split()[0]) / 1024
        refs = f"runuser -u git -- git -C {bare} for-each-ref --format='%(objectname) %(refname)'"
        before = _ok(git, refs)
        backup = _timed(git, "git-server-backup")
        _ok(git, f"rm -rf {bare}")
        restore = _timed(git, f"git-server-restore {REPOSITORY}")
        if _ok(git, refs) != before:
            raise RuntimeError("restored refs differ")
        repositories = len(json.loads(_ok(git, "cat $(ls -d $(python3 -c \"import json;print(json.load(open("
                                               "'/etc/trust-blueprints/git-server-backup.json'))['directory'])\")"
                                               "/2* | tail -1)/manifest.json"))["repositories"])
    finally:
        client.run(f"rm -rf {WORK}")
        git.run(f"git-server-apply {SETTINGS} && rm -f {BENCH_SETTINGS} "
                f"&& rm -rf /srv/git/repositories/{REPOSITORY}.git")

    print(f"repository: {files} files, {packed} of loose objects on the client, {size_mb:.1f} MiB on the server")
    print(f"push  (analytics -> git over SSH): {push:6.2f} s  ({size_mb / push:5.1f} MiB/s)")
    print(f"clone (git -> analytics over SSH): {clone:6.2f} s  ({size_mb / clone:5.1f} MiB/s)")
    print(f"backup (all {repositories} repositories, git bundles): {backup:6.2f} s")
    print(f"restore ({REPOSITORY}, refs compared): {restore:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
