"""The Git server, checked like an auditor would: what runs, what is closed, and what real git
clients may and may not do. Test users' keys are made here and installed through the update
path (git-server-apply with a changed settings file); the stack's own file is re-applied after.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import shlex
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from blueprints.data_disk import data_disk_layout
from blueprints.git_server.backup_target import vm_settings
from blueprints.git_server.server_commands import Access, with_package_requests
from blueprints.topology import private_dns_zone
from tests.acceptance.machine_commands import ALLOWLIST, APT_GET, check, data_disk_problems
from tests.acceptance.totp_codes import RESET_SSHD_JAIL, Totp
from validation.stack_config import load_stack

pytestmark = pytest.mark.lab

SETTINGS = "/etc/trust-blueprints/git-server.yaml"
TEST_SETTINGS = "/etc/trust-blueprints/git-server-acceptance.yaml"
CLIENT_DIR = "/root/git-acceptance"
REPOSITORY = "acceptance-check"
MIRROR_KEY = "/etc/trust-blueprints/secrets/package-requests-reader.pub"
# Repositories belong to the git user; git refuses to read them as root.
GIT = "runuser -u git -- git"


def _put(host: Any, path: str, data: bytes, mode: str = "0600") -> None:
    encoded = base64.b64encode(data).decode()
    check(host, f"mkdir -p {shlex.quote(str(Path(path).parent))} && echo {encoded} | base64 -d > {shlex.quote(path)}"
              f" && chmod {mode} {shlex.quote(path)}")


# --- What is installed and running ----------------------------------------------------------

@pytest.mark.parametrize("package", ["gitolite3", "cgit", "apache2", "fail2ban", "unattended-upgrades", "git"])
def test_package_installed(git_host, package):
    assert git_host.package(package).is_installed


@pytest.mark.parametrize("service", ["ssh", "apache2", "fail2ban", "unattended-upgrades"])
def test_service_running_and_enabled(git_host, service):
    unit = git_host.service(service)
    assert unit.is_running
    assert unit.is_enabled


def test_repositories_are_on_the_data_disk(git_host):
    assert data_disk_problems(git_host, list(data_disk_layout("git_server").directories)) == []
    assert git_host.file("/srv/git").user == "git"


def test_nightly_backup_timer_is_scheduled(git_host):
    assert git_host.service("git-server-backup.timer").is_enabled
    assert check(git_host, "systemctl is-active git-server-backup.timer").strip() == "active"
    settings = json.loads(check(git_host, f"cat {SETTINGS}"))
    shown = check(git_host, "systemctl show -p TimersCalendar --value git-server-backup.timer")
    assert f"{settings['backup']['time']}:00" in shown
    assert check(git_host, "systemctl show -p NextElapseUSecRealtime --value git-server-backup.timer").strip()


def test_backups_stay_in_the_directory_off_azure(git_host):
    # backup.target auto: the lab is not Azure, so no Blob remote; rclone is installed as on Azure.
    settings = json.loads(check(git_host, f"cat {SETTINGS}"))
    assert settings["backup"].get("target", "auto") == "auto"
    written = json.loads(check(git_host, "cat /etc/trust-blueprints/git-server-backup.json"))
    assert written["remote"] is None and written["directory"] == settings["backup"]["directory"]
    assert not git_host.file("/etc/trust-blueprints/git-server-rclone.conf").exists
    assert git_host.package("rclone").is_installed


@pytest.mark.parametrize(("setting", "value"), [
    ("permitrootlogin", "no"), ("passwordauthentication", "no"), ("kbdinteractiveauthentication", "no"),
    ("pubkeyauthentication", "yes"), ("authenticationmethods", "publickey"), ("x11forwarding", "no"),
])
def test_sshd_is_hardened(git_host, setting, value):
    effective = dict(line.split(" ", 1) for line in check(git_host, "sshd -T").splitlines() if " " in line)
    assert effective[setting] == value


def test_fail2ban_watches_sshd(git_host):
    assert "sshd" in check(git_host, "fail2ban-client status")


def test_web_view_listens_on_tls_only(git_host):
    assert git_host.socket("tcp://0.0.0.0:443").is_listening or git_host.socket("tcp://:::443").is_listening
    assert not git_host.socket("tcp://0.0.0.0:80").is_listening
    assert not git_host.socket("tcp://:::80").is_listening


def test_gitolite_rules_match_the_stack(lab, git_host):
    # What the VM is given: the stack's Git settings, plus the outputs repository with airlock.egress.
    settings = copy.deepcopy(vm_settings(lab.config))
    mirror_reader = git_host.file(MIRROR_KEY).exists
    expected = Access(settings, mirror_reader=mirror_reader).gitolite_conf()
    deployed = check(git_host, f"{GIT} -C /srv/git/repositories/gitolite-admin.git show master:conf/gitolite.conf")
    assert deployed == expected
    keys = check(git_host, f"{GIT} -C /srv/git/repositories/gitolite-admin.git ls-tree --name-only master keydir/")
    expected_keys = {f"keydir/{user['name']}.pub" for user in settings["users"]}
    assert set(keys.split()) - {"keydir/package-mirror.pub"} == expected_keys


def test_apply_is_idempotent(git_host):
    head = f"{GIT} -C /srv/git/repositories/gitolite-admin.git rev-parse master"
    check(git_host, f"git-server-apply {SETTINGS}")
    before = check(git_host, head)
    assert "access rules unchanged" in check(git_host, f"git-server-apply {SETTINGS}")
    assert check(git_host, head) == before


def test_apply_refuses_a_bad_file_and_changes_nothing(git_host):
    head = f"{GIT} -C /srv/git/repositories/gitolite-admin.git rev-parse master"
    before = check(git_host, head)
    _put(git_host, "/tmp/git-server-bad.yaml", b"users: [{name: Bad Name, ssh_public_key: nonsense}]\n", "0644")
    result = git_host.run("git-server-apply /tmp/git-server-bad.yaml")
    assert result.rc == 2
    assert "users[0].name: 'Bad Name'" in result.stderr
    assert check(git_host, head) == before


def test_package_requests_repository_holds_the_allowlist(git_host, lab):
    text = check(git_host, f"{GIT} -C /srv/git/repositories/package-requests.git show main:allowlist.yaml")
    assert {line.split(":")[0] for line in text.splitlines() if line and not line.startswith("#")} >= \
        {"pypi", "npm", "cran"}
    # It starts from the stack's allowlists, so the mirror's first pull keeps what the stack says. After a
    # day-two edit (`lab apply`) the repository keeps its reviewed history: the stack's new entries reach
    # the mirror directly (tests/lab/machines/test_day_two_upgrade.py), so compare with the first stack.
    first = (lab.record or {}).get("first_stack_file")
    config = load_stack(first) if first else lab.config
    mirror = config["roles"].get("package_mirror")
    if mirror:
        listed = yaml.safe_load(text)
        for ecosystem in ("pypi", "npm", "cran"):
            assert listed[ecosystem] == list(mirror["allowlists"].get(ecosystem) or []), ecosystem


# --- Real git clients -----------------------------------------------------------------------

@dataclass
class GitClients:
    """Test users with keys on a client machine, and the server's address."""

    client: Any
    server: str
    zone: str
    private_keys: dict[str, bytes]

    def git(self, user: str, command: str) -> subprocess.CompletedProcess[str] | Any:
        ssh = (f"ssh -i {CLIENT_DIR}/{user} -o IdentitiesOnly=yes -o BatchMode=yes "
               f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={CLIENT_DIR}/known_hosts")
        return self.client.run(f"export GIT_SSH_COMMAND={shlex.quote(ssh)} "
                               f"GIT_AUTHOR_NAME={user} GIT_AUTHOR_EMAIL={user}@example.nhs.uk "
                               f"GIT_COMMITTER_NAME={user} GIT_COMMITTER_EMAIL={user}@example.nhs.uk; "
                               f"cd {CLIENT_DIR} && {command}")

    def url(self, repository: str) -> str:
        return f"git@{self.server}:{repository}"


def _test_users() -> dict[str, tuple[bytes, str]]:
    users = {}
    with tempfile.TemporaryDirectory() as directory:
        for name in ("acc-maintainer", "acc-reviewer", "acc-writer", "acc-outsider"):
            key = Path(directory) / name
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@acceptance",
                            "-f", str(key)], check=True)
            users[name] = (key.read_bytes(), key.with_suffix(".pub").read_text().strip())
    return users


@pytest.fixture(scope="module")
def git_clients(lab, git_host, analytics_host) -> Iterator[GitClients]:
    users = _test_users()
    # The update path starts from the settings the VM holds (the stack's, with what the blueprint
    # derives from them, such as the backup store's names).
    settings = json.loads(git_host.file(SETTINGS).content_string)
    settings["teams"].append({"name": "acceptance"})
    for name, (_, public) in users.items():
        settings["users"].append({"name": name, "ssh_public_key": public,
                                  "teams": ["acceptance"] if name != "acc-outsider" else []})
    # The stack's repositories, or with the program's own package-requests where the stack names none.
    settings["repositories"] = with_package_requests(settings)
    for repository in settings["repositories"]:
        if repository["name"] == "package-requests":
            repository["writers"] = [*repository["writers"], "acc-writer"]
            # Added to the reviewers the stack gives it (its maintainers, by default @owner_team): the
            # two-person rule wants two or more, and acc-maintainer is the one whose key the test holds.
            # Where the stack names nobody (only an administrator merges), acc-reviewer is the second.
            if repository.get("owner_team") is None:
                repository["owner_team"], given = "acceptance", ["acc-reviewer"]
            else:
                given = repository.get("maintainers") or [f"@{repository['owner_team']}"]
            repository["maintainers"] = [*given, "acc-maintainer"]
    settings["repositories"].append({"name": REPOSITORY, "owner_team": "acceptance",
                                     "maintainers": ["acc-maintainer"], "writers": ["@acceptance"],
                                     "readers": []})
    # The update path: a new settings file, applied on the VM.
    _put(git_host, TEST_SETTINGS, json.dumps(settings).encode(), mode="0644")
    check(git_host, f"git-server-apply {TEST_SETTINGS}")
    if not analytics_host.exists("git"):
        # An analytics VM whose role does not yet install git gets Debian's, through the mirror.
        check(analytics_host, f"{APT_GET} install -y git openssh-client")
    check(analytics_host, f"rm -rf {CLIENT_DIR}")
    for name, (private, _) in users.items():
        _put(analytics_host, f"{CLIENT_DIR}/{name}", private)
    zone = private_dns_zone(lab.config)
    yield GitClients(client=analytics_host, server=f"git.{zone}", zone=zone,
                     private_keys={name: private for name, (private, _) in users.items()})
    check(analytics_host, f"rm -rf {CLIENT_DIR}")
    check(git_host, f"git-server-apply {SETTINGS} && rm -f {TEST_SETTINGS}")
    check(git_host, f"rm -rf /srv/git/repositories/{REPOSITORY}.git")


def _refused(result: Any) -> bool:
    return result.rc != 0 and ("DENIED" in result.stderr or "denied" in result.stderr)


@pytest.fixture(scope="module")
def pushed(git_clients) -> dict[str, str]:
    """The history the scenario builds: main from the maintainer, a branch from the writer."""
    g = git_clients
    for step in (f"git clone -q {g.url(REPOSITORY)} maintainer",
                 "cd maintainer && echo '# Acceptance check' > README.md && git add README.md"
                 " && git commit -qm 'Start the acceptance repository' && git push -q origin HEAD:main",
                 f"git clone -q {g.url(REPOSITORY)} writer",
                 "cd writer && git switch -q -c feature/summary && echo 'waits' > summary.txt && git add summary.txt"
                 " && git commit -qm 'Add the weekly waiting-times summary' && git push -q origin feature/summary"):
        user = "acc-writer" if "writer" in step.split("&&")[0] else "acc-maintainer"
        result = g.git(user, step)
        assert result.rc == 0, f"{user}: {step}\n{result.stderr}"
    return {"branch": "feature/summary", "message": "Add the weekly waiting-times summary"}


def test_writer_pushes_a_branch(git_clients, pushed):
    listing = git_clients.git("acc-writer", f"git ls-remote {git_clients.url(REPOSITORY)}")
    assert listing.rc == 0
    assert f"refs/heads/{pushed['branch']}" in listing.stdout


def test_writer_cannot_push_main(git_clients, pushed):
    result = git_clients.git("acc-writer", "cd writer && git commit -q --allow-empty -m 'Writer to main'"
                                           " && git push origin HEAD:main")
    assert _refused(result), result.stderr


def test_writer_cannot_push_tags(git_clients, pushed):
    result = git_clients.git("acc-writer", "cd writer && git tag v-writer && git push origin v-writer")
    assert _refused(result), result.stderr


def test_maintainer_merges_the_branch_into_main(git_clients, pushed):
    result = git_clients.git("acc-maintainer", f"cd maintainer && git pull -q --no-rebase origin {pushed['branch']}"
                                               " && git push -q origin HEAD:main && git rev-parse HEAD")
    assert result.rc == 0, result.stderr
    remote = git_clients.git("acc-maintainer", f"git ls-remote {git_clients.url(REPOSITORY)} refs/heads/main")
    assert remote.stdout.split()[0] == result.stdout.split()[-1]


def test_nobody_force_pushes_main(git_clients, pushed):
    result = git_clients.git("acc-maintainer", "cd maintainer && git commit -q --amend -m 'Rewritten history'"
                                               " && git push --force origin HEAD:main")
    assert _refused(result), result.stderr
    git_clients.git("acc-maintainer", "cd maintainer && git reset -q --hard origin/main")


def test_nobody_deletes_main(git_clients, pushed):
    result = git_clients.git("acc-maintainer", "cd maintainer && git push origin :main")
    assert _refused(result), result.stderr


def test_user_without_access_cannot_clone(git_clients, pushed):
    result = git_clients.git("acc-outsider", f"git clone {git_clients.url(REPOSITORY)} outsider")
    assert _refused(result), result.stderr


def test_package_requests_takes_a_branch_and_keeps_main_for_maintainers(git_clients):
    result = git_clients.git("acc-writer", f"git clone -q {git_clients.url('package-requests')} requests"
                                             " && cd requests && git switch -q -c request/acc-writer/acceptance"
                                             " && echo '# checked' >> allowlist.yaml && git commit -qam 'Ask'"
                                             " && git push -q origin request/acc-writer/acceptance")
    assert result.rc == 0, result.stderr
    refused = git_clients.git("acc-writer", "cd requests && git push origin HEAD:main")
    assert _refused(refused), refused.stderr
    git_clients.git("acc-writer", "cd requests && git push -q origin :request/acc-writer/acceptance")


# --- The two-person rule on package-requests (git-server-review) ------------------------------

def test_review_check_is_installed_where_gitolite_looks(git_clients, git_host):
    assert check(git_host, "readlink /srv/git/local/VREF/git-server-review").strip() == "/usr/local/sbin/git-server"
    rc = check(git_host, "cat /srv/git/.gitolite.rc")
    assert re.search(r'^\s*LOCAL_CODE\s*=>\s*"\$ENV\{HOME\}/local",', rc, re.MULTILINE)
    # The test settings are applied (git_clients): acc-maintainer reviews package-requests beside the stack's.
    settings = json.loads(check(git_host, f"cat {TEST_SETTINGS}"))
    expected = Access(settings, mirror_reader=False).review_rules()
    assert "acc-maintainer" in expected["protected"]["package-requests"]
    assert json.loads(check(git_host, "cat /srv/git/local/review-rules.json")) == expected


def _requests_clone(g: GitClients, folder: str) -> str:
    return f"rm -rf {folder} && git clone -q {g.url('package-requests')} {folder} && cd {folder}"


def _main(g: GitClients) -> str:
    return g.git("acc-maintainer", f"git ls-remote {g.url('package-requests')} refs/heads/main").stdout.split()[0]


def test_a_reviewer_merging_their_own_request_is_refused(git_clients):
    g = git_clients
    before = _main(g)
    own = g.git("acc-maintainer", _requests_clone(g, "self-merge")
                + " && git switch -q -c request/acc-maintainer/self && echo '# mine' >> allowlist.yaml"
                  " && git commit -qam 'My own request' && git push -q origin request/acc-maintainer/self"
                  " && git switch -q main && git merge -q --no-ff --no-edit request/acc-maintainer/self")
    assert own.rc == 0, own.stderr
    refused = g.git("acc-maintainer", "cd self-merge && git push origin HEAD:main")
    assert refused.rc != 0 and "merges your own request" in refused.stderr, refused.stderr
    assert _main(g) == before
    g.git("acc-maintainer", "cd self-merge && git push -q origin :request/acc-maintainer/self")


def test_a_maintainer_cannot_force_push_over_a_writers_request(git_clients):
    g = git_clients
    asked = g.git("acc-writer", _requests_clone(g, "owned")
                  + " && git switch -q -c request/acc-writer/owned && echo '# owned' >> allowlist.yaml"
                    " && git commit -qam 'Ask' && git push -q origin request/acc-writer/owned && git rev-parse HEAD")
    assert asked.rc == 0, asked.stderr
    over = g.git("acc-maintainer", _requests_clone(g, "over")
                 + " && echo '# replaced' >> allowlist.yaml && git commit -qam 'Replaced'"
                   " && git push --force origin HEAD:request/acc-writer/owned")
    assert _refused(over), over.stderr
    deleted = g.git("acc-maintainer", "cd over && git push origin :request/acc-writer/owned")
    assert _refused(deleted), deleted.stderr
    heads = g.git("acc-writer", f"git ls-remote {g.url('package-requests')} refs/heads/request/acc-writer/owned")
    assert heads.stdout.split()[0] == asked.stdout.split()[-1]
    # Its owner may rewrite and delete it.
    rewritten = g.git("acc-writer", "cd owned && git commit -q --amend -m 'Ask again'"
                                    " && git push -q --force origin request/acc-writer/owned"
                                    " && git push -q origin :request/acc-writer/owned")
    assert rewritten.rc == 0, rewritten.stderr


def test_a_reviewers_merge_of_a_writers_request_is_accepted_and_a_fast_forward_is_not(git_clients):
    g = git_clients
    asked = g.git("acc-writer", _requests_clone(g, "reviewed")
                  + " && git switch -q -c request/acc-writer/reviewed && echo '# reviewed' >> allowlist.yaml"
                    " && git commit -qam 'Ask, reviewed' && git push -q origin request/acc-writer/reviewed")
    assert asked.rc == 0, asked.stderr
    fast = g.git("acc-maintainer", _requests_clone(g, "review")
                 + " && git merge -q --ff-only origin/request/acc-writer/reviewed && git push origin HEAD:main")
    assert fast.rc != 0 and "is not a merge commit" in fast.stderr, fast.stderr
    merged = g.git("acc-maintainer", "cd review && git reset -q --hard origin/main"
                                     " && git merge -q --no-ff --no-edit origin/request/acc-writer/reviewed"
                                     " && git push -q origin HEAD:main && git rev-parse HEAD")
    assert merged.rc == 0, merged.stderr
    assert _main(g) == merged.stdout.split()[-1]
    # Undone the same way: the writer asks for the revert, the reviewer merges it.
    undo = g.git("acc-writer", "cd reviewed && git fetch -q origin"
                               " && git switch -q -c request/acc-writer/undo origin/main"
                               " && git revert -m 1 --no-edit HEAD && git push -q origin request/acc-writer/undo"
                               " && git push -q origin :request/acc-writer/reviewed")
    assert undo.rc == 0, undo.stderr
    undone = g.git("acc-maintainer", "cd review && git fetch -q origin"
                                     " && git merge -q --no-ff --no-edit origin/request/acc-writer/undo"
                                     " && git push -q origin HEAD:main")
    assert undone.rc == 0, undone.stderr
    g.git("acc-writer", "cd reviewed && git push -q origin :request/acc-writer/undo")


def test_update_path_keeps_repository_data(git_clients, pushed, git_host):
    bare = f"/srv/git/repositories/{REPOSITORY}.git"
    refs = f"{GIT} -C {bare} for-each-ref --format='%(objectname) %(refname)'"
    before = check(git_host, refs)
    # The stack's own settings: the test users and their repository are no longer listed.
    check(git_host, f"git-server-apply {SETTINGS}")
    assert _refused(git_clients.git("acc-maintainer", f"git ls-remote {git_clients.url(REPOSITORY)}"))
    assert check(git_host, refs) == before
    check(git_host, f"git-server-apply {TEST_SETTINGS}")
    listing = git_clients.git("acc-maintainer", f"git ls-remote {git_clients.url(REPOSITORY)}")
    assert listing.rc == 0 and "refs/heads/main" in listing.stdout


# --- The web view ---------------------------------------------------------------------------

def _web(host: Any, zone: str, path: str, user: str | None) -> Any:
    header = f"-H {shlex.quote('X-Remote-User: ' + user)} " if user else ""
    return host.run(f"curl -sS --cacert /etc/trust-blueprints/secrets/ca.crt -o /dev/stderr -w '%{{http_code}}' "
                    f"{header}https://git.{zone}{path}")


def test_web_view_shows_the_pushed_commit_to_a_reader_via_the_gateway(git_clients, pushed, gateway_host):
    result = _web(gateway_host, git_clients.zone, f"/{REPOSITORY}/log/?h={pushed['branch']}", "acc-maintainer")
    assert result.stdout == "200"
    assert pushed["message"] in result.stderr


def test_web_view_hides_repositories_a_user_cannot_read(git_clients, pushed, gateway_host):
    index = _web(gateway_host, git_clients.zone, "/", "acc-outsider")
    assert index.stdout in ("200", "404")  # cgit answers 404 for an empty index
    assert REPOSITORY not in index.stderr
    assert REPOSITORY in _web(gateway_host, git_clients.zone, "/", "acc-writer").stderr
    assert _web(gateway_host, git_clients.zone, f"/{REPOSITORY}/log/", "acc-outsider").stdout == "404"


def test_web_view_refuses_requests_without_a_signed_in_user(git_clients, gateway_host):
    assert _web(gateway_host, git_clients.zone, "/", None).stdout == "403"
    assert _web(gateway_host, git_clients.zone, "/", "Robert'); DROP").stdout == "403"


def test_web_view_refuses_machines_other_than_the_gateway(git_clients, analytics_host):
    assert _web(analytics_host, git_clients.zone, "/", "acc-maintainer").stdout == "403"


# --- The request-and-review process, end to end ---------------------------------------------

REQUESTED = "attrs"  # a small pure-Python project that neither the stack nor the mirror suite lists


def _index_status(analytics_host, zone: str, project: str) -> str:
    return analytics_host.run(f"curl -sS -o /dev/null -w '%{{http_code}}' "
                              f"https://mirror.{zone}/pypi/root/trust/+simple/{project}/").stdout


def _pull(mirror_host) -> None:
    # What the mirror's timer runs every 15 minutes; started here so the test need not wait.
    check(mirror_host, "systemctl start mirror-allowlist-pull.service")


def test_merged_request_reaches_the_mirror_and_a_revert_takes_it_away(git_clients, mirror_host, analytics_host):
    g = git_clients
    assert _index_status(analytics_host, g.zone, REQUESTED) == "403"
    branch = f"request/acc-writer/{REQUESTED}"
    asked = g.git("acc-writer", f"rm -rf ask && git clone -q {g.url('package-requests')} ask && cd ask"
                                f" && git switch -q -c {branch}"
                                f" && sed -i 's/^pypi: \\[/pypi: [\"{REQUESTED}\", /' allowlist.yaml"
                                f" && git commit -qam 'Ask for {REQUESTED}: parsing of clinic codes'"
                                f" && git push -q origin {branch}")
    assert asked.rc == 0, asked.stderr
    # A pushed branch is a request, not a decision: the mirror does not serve it yet.
    _pull(mirror_host)
    assert _index_status(analytics_host, g.zone, REQUESTED) == "403"
    # A reviewer other than the writer merges it (the two-person rule: a merge commit, never a fast-forward).
    merged = g.git("acc-maintainer", f"rm -rf review && git clone -q {g.url('package-requests')} review && cd review"
                                     f" && git merge -q --no-ff --no-edit origin/{branch}"
                                     f" && git push -q origin HEAD:main")
    assert merged.rc == 0, merged.stderr
    try:
        _pull(mirror_host)
        assert _index_status(analytics_host, g.zone, REQUESTED) == "200"
        assert REQUESTED in yaml.safe_load(mirror_host.file(ALLOWLIST).content_string)["pypi"]
    finally:
        # The revert is a request of its own, merged the same way.
        undo = f"request/acc-writer/undo-{REQUESTED}"
        asked_back = g.git("acc-writer", f"cd ask && git fetch -q origin && git switch -q -c {undo} origin/main"
                                         f" && git revert -m 1 --no-edit HEAD && git push -q origin {undo}")
        reverted = g.git("acc-maintainer", f"cd review && git fetch -q origin"
                                           f" && git merge -q --no-ff --no-edit origin/{undo}"
                                           f" && git push -q origin HEAD:main")
        g.git("acc-writer", f"cd ask && git push -q origin :{branch} :{undo}")
        _pull(mirror_host)
    assert asked_back.rc == 0, asked_back.stderr
    assert reverted.rc == 0, reverted.stderr
    assert _index_status(analytics_host, g.zone, REQUESTED) == "403"


# --- From home, through the gateway's jump host -----------------------------------------------

JUMP_ACCOUNT = "tbgitjump"


@pytest.fixture(scope="module")
def from_home(lab, gateway_host, git_clients) -> Iterator[dict[str, Any]]:
    """An analyst at home (the lab's client namespace): a jump account with a key and an enrolled
    code on the gateway, and the Git writer's key, in a folder on the test host."""
    gateway = lab.config["roles"].get("gateway") or {}
    if gateway.get("kind") != "self-hosted" or lab.target != "lab":
        pytest.skip("needs the lab's client namespace and a self-hosted gateway")
    with tempfile.TemporaryDirectory(prefix="git-from-home-") as folder:
        work = Path(folder)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", JUMP_ACCOUNT, "-f", str(work / "jump")],
                       check=True)
        (work / "writer").write_bytes(git_clients.private_keys["acc-writer"])
        (work / "writer").chmod(0o600)
        check(gateway_host, f"gateway-jump-user {JUMP_ACCOUNT} {shlex.quote((work / 'jump.pub').read_text().strip())}")
        check(gateway_host, f"gateway-totp-enrol {JUMP_ACCOUNT}")
        # Start from a jail with no bans or counted failures left by earlier suites' refusals.
        gateway_host.run(RESET_SSHD_JAIL)
        secret = check(gateway_host, f"head -n 1 /var/lib/trust-blueprints/totp/{JUMP_ACCOUNT}").strip()
        (work / "askpass").write_text(f"#!/bin/sh\ncat {work / 'code'}\n")
        (work / "askpass").chmod(0o755)
        yield {"work": work, "totp": Totp(secret), "public_host": gateway["hostname"]}
        gateway_host.run(f"userdel {JUMP_ACCOUNT}; rm -f /etc/ssh/trust-blueprints-keys/{JUMP_ACCOUNT} "
                         f"/var/lib/trust-blueprints/totp/{JUMP_ACCOUNT}; "
                         + RESET_SSHD_JAIL)


def _git_from_home(lab, from_home: dict[str, Any], server: str, command: str) -> subprocess.CompletedProcess[str]:
    """``command`` (a git command line) run at home, its SSH hop to the Git server jumping through the
    gateway with the jump account's key and a fresh one-time code."""
    work = from_home["work"]
    (work / "code").write_text(from_home["totp"].next_code() + "\n")
    options = ("-F /dev/null -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o IdentitiesOnly=yes "
               "-o ConnectTimeout=15")
    proxy = f"ssh {options} -i {work / 'jump'} -W %h:%p {JUMP_ACCOUNT}@{from_home['public_host']}"
    ssh = f"ssh {options} -o BatchMode=yes -i {work / 'writer'} -o ProxyCommand={shlex.quote(proxy)}"
    env = {"GIT_SSH_COMMAND": ssh, "SSH_ASKPASS": str(work / "askpass"), "SSH_ASKPASS_REQUIRE": "force",
           "DISPLAY": "none", "GIT_AUTHOR_NAME": "acc-writer", "GIT_AUTHOR_EMAIL": "acc-writer@example.nhs.uk",
           "GIT_COMMITTER_NAME": "acc-writer", "GIT_COMMITTER_EMAIL": "acc-writer@example.nhs.uk",
           "PATH": "/usr/bin:/bin", "HOME": str(work)}
    return lab.client(["sh", "-c", f"cd {work} && {command}"], env=env, input="", timeout=120)


def test_writer_clones_and_pushes_a_branch_from_home_through_the_jump_host(lab, git_clients, pushed, from_home):
    url = git_clients.url(REPOSITORY)
    cloned = _git_from_home(lab, from_home, git_clients.server, f"git clone -q {url} home-copy")
    assert cloned.returncode == 0, cloned.stderr
    assert (from_home["work"] / "home-copy" / "README.md").exists()
    pushed_branch = _git_from_home(
        lab, from_home, git_clients.server,
        "cd home-copy && git switch -q -c feature/from-home && echo 'from home' > home.txt && git add home.txt"
        " && git commit -qm 'Work from home' && git push -q origin feature/from-home")
    assert pushed_branch.returncode == 0, pushed_branch.stderr
    heads = git_clients.git("acc-maintainer", f"git ls-remote {url} refs/heads/feature/from-home")
    assert "refs/heads/feature/from-home" in heads.stdout
    # The same rules hold from home: a writer's push to main is refused.
    refused = _git_from_home(lab, from_home, git_clients.server, "cd home-copy && git push origin HEAD:main")
    assert refused.returncode != 0
    assert "DENIED" in refused.stderr or "denied" in refused.stderr, refused.stderr


# --- Backup and restore ---------------------------------------------------------------------

def test_backup_delete_restore_keeps_every_ref(git_clients, pushed, git_host):
    bare = f"/srv/git/repositories/{REPOSITORY}.git"
    refs = f"{GIT} -C {bare} for-each-ref --format='%(objectname) %(refname)'"
    before = check(git_host, refs)
    assert "refs/heads/main" in before and "refs/heads/feature/summary" in before
    check(git_host, "git-server-backup")
    check(git_host, f"rm -rf {bare}")
    assert git_clients.git("acc-maintainer", f"git ls-remote {git_clients.url(REPOSITORY)}").stdout == ""
    restored = check(git_host, f"git-server-restore {REPOSITORY}")
    assert "every hash matches" in restored
    assert check(git_host, refs) == before
    # Restored with gitolite's hooks: the rules still hold.
    assert _refused(git_clients.git("acc-writer", "cd writer && git commit -q --allow-empty -m 'After restore'"
                                                  " && git push origin HEAD:main"))
    assert git_clients.git("acc-writer", "cd writer && git push -q origin HEAD:feature/after-restore").rc == 0


def test_restore_refuses_to_overwrite_without_replace(git_host, git_clients, pushed):
    result = git_host.run(f"git-server-restore {REPOSITORY}")
    assert result.rc == 2
    assert "give --replace" in result.stderr
