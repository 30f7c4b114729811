"""Egress with review, end to end in the lab: an analyst proposes outputs through the Git server's
outputs repository, a proposal that breaks the rules is refused with the reason, an output checker
cannot approve their own, a checker approves another's, the approved files appear in the airlock's
egress container and the trust's readers read them; an analyst cannot write egress directly, not
even with the analytics VM's own token. Every step is in the Git server's audit log.

Test users' keys are made here and installed through the update path (git-server-apply with a
changed settings file, the egress checkers replaced by two test users); the stack's own file is
re-applied after, as in test_git_server.py.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from blueprints.airlock_egress import EGRESS_CONTAINER, egress_settings
from blueprints.git_server.server_commands import EGRESS_AUDIT, OUTPUTS, REPOSITORIES
from blueprints.topology import private_dns_zone
from tests.acceptance.machine_commands import check
from tests.acceptance.test_airlock import _as_the_vm, _from_trust_network
from tests.acceptance.test_airlock import airlock as airlock  # the ingress suite's fixture
from tests.acceptance.test_git_server import CLIENT_DIR, SETTINGS, TEST_SETTINGS, GitClients, _put

pytestmark = pytest.mark.lab

ANALYST, CHECKER, SECOND_CHECKER = "acc-analyst", "acc-checker", "acc-checker-two"
READER = "output.reader@example.nhs.uk"
STATEMENT = "# Referrals by month\\n\\n## Disclosure checks\\n\\nCounts under 10 suppressed.\\n"


def _keys() -> dict[str, tuple[bytes, str]]:
    import subprocess
    import tempfile

    users = {}
    with tempfile.TemporaryDirectory() as directory:
        for name in (ANALYST, CHECKER, SECOND_CHECKER):
            key = Path(directory) / name
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@acceptance", "-f",
                            str(key)], check=True)
            users[name] = (key.read_bytes(), key.with_suffix(".pub").read_text().strip())
    return users


@pytest.fixture(scope="module")
def egress(lab: Any) -> dict[str, Any]:
    settings = egress_settings(lab.config)
    if not settings:
        pytest.skip("this stack has no airlock.egress")
    return settings


@pytest.fixture(scope="module")
def clients(lab, egress, git_host, analytics_host) -> Iterator[GitClients]:
    users = _keys()
    settings = json.loads(git_host.file(SETTINGS).content_string)
    for name, (_, public) in users.items():
        settings["users"].append({"name": name, "ssh_public_key": public, "teams": []})
    settings["egress"] = {**settings["egress"], "checkers": [CHECKER, SECOND_CHECKER], "proposers": ["@all"]}
    _put(git_host, TEST_SETTINGS, json.dumps(settings).encode(), mode="0644")
    check(git_host, f"git-server-apply {TEST_SETTINGS}")
    check(analytics_host, f"rm -rf {CLIENT_DIR}")
    for name, (private, _) in users.items():
        _put(analytics_host, f"{CLIENT_DIR}/{name}", private)
    zone = private_dns_zone(lab.config)
    yield GitClients(client=analytics_host, server=f"git.{zone}", zone=zone,
                     private_keys={name: private for name, (private, _) in users.items()})
    check(analytics_host, f"rm -rf {CLIENT_DIR}")
    check(git_host, f"git-server-apply {SETTINGS} && rm -f {TEST_SETTINGS}")


def _propose(g: GitClients, user: str, proposal: str, statement: bool = True) -> Any:
    files = (f"printf 'month,referrals\\n2025-01,{secrets.randbelow(900) + 100}\\n' > outputs/{proposal}/table.csv"
             + (f" && printf '{STATEMENT}' > outputs/{proposal}/STATEMENT.md" if statement else ""))
    return g.git(user, f"rm -rf {proposal} && git clone -q {g.url(OUTPUTS)} {proposal} && cd {proposal}"
                       f" && git switch -q -c request/{user}/{proposal} && mkdir -p outputs/{proposal} && {files}"
                       f" && git add outputs && git commit -qm 'Propose {proposal}'"
                       f" && git push -q origin request/{user}/{proposal}")


def _merge(g: GitClients, checker: str, owner: str, proposal: str) -> Any:
    return g.git(checker, f"rm -rf review-{proposal} && git clone -q {g.url(OUTPUTS)} review-{proposal}"
                          f" && cd review-{proposal}"
                          f" && git merge -q --no-ff --no-edit origin/request/{owner}/{proposal}"
                          " && git push -q origin HEAD:main")


@pytest.fixture(scope="module")
def published(clients, git_host) -> dict[str, Any]:
    """An analyst's proposal, approved by a checker and published; the time it took."""
    proposal = f"acceptance-{secrets.token_hex(3)}"
    # First a burst of ref moves, as a setup or a run of pushes makes: the publication must still follow
    # the approval at once (systemd's default start limit once stopped the path unit for good).
    check(git_host, f"for i in $(seq 12); do touch {REPOSITORIES}/{OUTPUTS}.git/refs/heads; sleep 0.7; done")
    started = time.monotonic()
    pushed = _propose(clients, ANALYST, proposal)
    assert pushed.rc == 0, pushed.stderr
    merged = _merge(clients, CHECKER, ANALYST, proposal)
    assert merged.rc == 0, merged.stderr
    # The path unit starts git-server-publish when main moves; wait for its record.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        log = git_host.run(f"grep -F '\"published\"' {EGRESS_AUDIT} | grep -F '{proposal}'")
        if log.rc == 0:
            break
        time.sleep(2)
    else:
        pytest.fail(f"no publication of {proposal} recorded within 120 s: "
                    + git_host.run("journalctl -u git-server-publish.service -n 30 --no-pager").stdout)
    elapsed = time.monotonic() - started
    print(f"\negress in the lab: proposal {proposal} pushed, approved and published in {elapsed:.1f} s")
    return {"proposal": proposal, "elapsed": elapsed}


def test_a_proposal_without_its_statement_is_refused_saying_why(clients):
    result = _propose(clients, ANALYST, f"no-statement-{secrets.token_hex(3)}", statement=False)
    assert result.rc != 0 and "STATEMENT.md is missing" in result.stderr, result.stderr


def test_a_checker_cannot_approve_their_own_proposal(clients):
    proposal = f"own-{secrets.token_hex(3)}"
    assert _propose(clients, CHECKER, proposal).rc == 0
    result = _merge(clients, CHECKER, CHECKER, proposal)
    assert result.rc != 0 and "merges your own request" in result.stderr, result.stderr


def test_an_analyst_cannot_approve(clients):
    proposal = f"by-analyst-{secrets.token_hex(3)}"
    assert _propose(clients, SECOND_CHECKER, proposal).rc == 0
    result = _merge(clients, ANALYST, SECOND_CHECKER, proposal)
    # Gitolite's own rules give main to the checkers alone, so the push is refused before the review
    # check runs (that check's own refusal is tested offline, tests/unit/test_git_egress_proposals.py).
    assert result.rc != 0 and "DENIED by refs/heads/main" in result.stderr, result.stderr


def test_an_approved_proposal_appears_in_egress(lab, airlock, published, git_host):
    url = f"https://{airlock['host']}/{EGRESS_CONTAINER}/{published['proposal']}/table.csv"
    found = _as_the_vm(git_host, "GET", url)
    assert found["status"] == 200 and found["body"].startswith("month,referrals"), found


def test_the_trusts_readers_read_it_from_the_trust_network(lab, airlock, egress, published):
    from lab import platform_services
    from lab.storage_service import issue_user_token

    # As a person of the readers' group signs in to Entra ID: a token from the lab's directory.
    token = issue_user_token(platform_services.load_state(Path(lab.state_dir) / "platform"), READER,
                             [egress["readers_group"]])
    read_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    path = f"/{EGRESS_CONTAINER}/{published['proposal']}/STATEMENT.md"
    status, error = _from_trust_network(airlock, lab, "GET", path, token=token)
    assert status == 200, error
    # The download is on record with who and when (on Azure: StorageBlobLogs, through the airlock
    # account's diagnostic setting; in the lab: the storage front's log of the same facts).
    from lab.storage_service import read_access_log

    downloads = [(entry["OperationName"], entry["StatusCode"]) for entry in read_access_log(airlock["storage_dir"])
                 if entry["ObjectKey"] == path and entry["Requester"] == READER and entry["TimeGenerated"] >= read_at]
    assert downloads == [("GetBlob", 200)], downloads


def test_an_analyst_cannot_write_egress_with_the_vms_own_token(airlock, analytics_host, published):
    url = f"https://{airlock['host']}/{EGRESS_CONTAINER}/{published['proposal']}/smuggled.csv"
    tried_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    answer = _as_the_vm(analytics_host, "PUT", url, "id,secret\n1,2\n")
    assert answer["status"] == 403, answer
    # The refused attempt is on record too, under the VM's identity.
    from lab.storage_service import read_access_log

    path = f"/{EGRESS_CONTAINER}/{published['proposal']}/smuggled.csv"
    attempts = [(entry["OperationName"], entry["StatusCode"]) for entry in read_access_log(airlock["storage_dir"])
                if entry["ObjectKey"] == path and entry["TimeGenerated"] >= tried_at]
    assert attempts == [("PutBlob", 403)], attempts
    assert _as_the_vm(analytics_host, "GET", url.replace("smuggled.csv", "table.csv"))["status"] == 403


def test_every_step_is_recorded_with_who(git_host, published):
    entries = [json.loads(line) for line in check(git_host, f"cat {EGRESS_AUDIT}").splitlines()
               if published["proposal"] in line]
    steps = [(entry["event"], entry.get("user") or entry.get("approver")) for entry in entries]
    assert steps == [("proposal-pushed", ANALYST), ("approval-merged", CHECKER), ("published", CHECKER)], steps
    assert check(git_host, f"journalctl -t git-server-egress --no-pager | grep -cF {published['proposal']}").strip() \
        != "0"
