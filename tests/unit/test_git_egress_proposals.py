"""Egress with review on the Git server: the outputs repository's proposal rules, checked by
git-server-review as it runs on the VM, against real repositories with real `git push`; and
git-server-publish, which sends exactly what a checker's merge approved (here to a local rclone
remote; tests/emulator/test_egress_publication.py sends it to Azurite).

The update hook stands in for gitolite's, as in test_git_two_person_rule.py: only GL_USER is trusted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from blueprints.git_server import server_commands
from blueprints.git_server.server_commands import OUTPUTS, egress_rules, publish_approved
from tests.unit.test_git_two_person_rule import PROGRAM, UPDATE_HOOK, Person, Server

CHECKERS = ["priya.shah", "sam.patel"]
STATEMENT = ("# Waiting times by month\n\nCounts of referrals per month, 2025.\n\n"
             "## Disclosure checks\n\nCounts under 10 suppressed; totals rounded to the nearest 5.\n")
EGRESS = {"checkers": ["@platform"], "proposers": ["@all"], "max_file_mb": 5, "max_proposal_mb": 20,
          "max_files": 50, "file_types": ["csv", "txt", "md", "pdf", "png", "svg"], "container": "egress"}


@pytest.fixture
def rules(tmp_path) -> dict:
    found = egress_rules(EGRESS, audit=tmp_path / "audit.jsonl")
    # Small limits, so a test file can break them.
    return {**found, "max_file_bytes": 4000, "max_proposal_bytes": 6000, "max_files": 4}


@pytest.fixture
def server(tmp_path, rules) -> Server:
    home = tmp_path / "srv-git"
    vref = home / "local" / "VREF" / server_commands.REVIEW_VREF
    vref.parent.mkdir(parents=True)
    vref.symlink_to(PROGRAM)
    (home / "local" / server_commands.REVIEW_RULES_NAME).write_text(json.dumps(
        {"protected": {OUTPUTS: CHECKERS}, "egress": rules}))
    served = Server(home)
    bare = served.bare(OUTPUTS)
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch", "main", str(bare)], check=True)
    hook = bare / "hooks" / "update"
    hook.write_text(UPDATE_HOOK.format(python=sys.executable, vref=vref))
    hook.chmod(0o755)
    seed = tmp_path / "seed"
    subprocess.run(["git", "init", "-q", "--initial-branch", "main", str(seed)], check=True)
    (seed / "README.md").write_text(server_commands.OUTPUTS_README)
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "Git server",
           "GIT_AUTHOR_EMAIL": "git@localhost", "GIT_COMMITTER_NAME": "Git server",
           "GIT_COMMITTER_EMAIL": "git@localhost", "GL_BYPASS_ACCESS_CHECKS": "1"}
    for step in (["add", "README.md"], ["commit", "-q", "-m", "Start"], ["push", "-q", str(bare), "main"]):
        subprocess.run(["git", "-C", str(seed), *step], env=env, check=True, capture_output=True)
    return served


@pytest.fixture
def people(server, tmp_path) -> dict[str, Person]:
    crowd = {}
    for name in (*CHECKERS, "tom.evans", "amara.okafor"):
        work = tmp_path / "clones" / name
        subprocess.run(["git", "clone", "-q", str(server.bare(OUTPUTS)), str(work)], check=True, capture_output=True)
        crowd[name] = Person(server, name, OUTPUTS, work)
    return crowd


def propose(person: Person, proposal: str, files: dict[str, str | bytes], branch: str | None = None,
            statement: str | None = STATEMENT) -> subprocess.CompletedProcess[str]:
    """Commit ``files`` (paths relative to the clone) and a statement, push the request branch."""
    branch = branch or f"request/{person.name}/{proposal}"
    person.start(branch)
    contents = dict(files)
    if statement is not None:
        contents[f"outputs/{proposal}/STATEMENT.md"] = statement
    for path, content in contents.items():
        target = person.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        person.git("add", path)
    person.git("commit", "-q", "-m", f"Propose {proposal}")
    return person.push(f"HEAD:refs/heads/{branch}")


def merge(checker: Person, branch: str) -> subprocess.CompletedProcess[str]:
    checker.start("main")
    checker.git("merge", "-q", "--no-ff", "--no-edit", f"origin/{branch}")
    return checker.push("HEAD:main")


def refused(result: subprocess.CompletedProcess[str], reason: str) -> None:
    assert result.returncode != 0, result.stderr
    assert "VREF/git-server-review" in result.stderr and reason in result.stderr, result.stderr


def accepted(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr


def events(rules: dict, kind: str) -> list[dict]:
    return [entry for entry in server_commands.audit_entries(Path(rules["audit"])) if entry["event"] == kind]


TABLE = {"outputs/waiting-times/by-month.csv": "month,referrals\n2025-01,120\n2025-02,135\n"}


# --- Proposals on push ---------------------------------------------------------------------------

def test_a_proposal_with_its_statement_is_accepted_and_recorded_with_who_and_when(people, rules):
    accepted(propose(people["tom.evans"], "waiting-times", TABLE))
    [entry] = events(rules, "proposal-pushed")
    assert entry["user"] == "tom.evans" and entry["branch"] == "request/tom.evans/waiting-times"
    assert entry["proposal"] == "waiting-times" and entry["time"].endswith("Z")
    assert [item["path"] for item in entry["files"]] == ["outputs/waiting-times/STATEMENT.md",
                                                         "outputs/waiting-times/by-month.csv"]


def test_a_proposal_without_a_statement_is_refused(people):
    refused(propose(people["tom.evans"], "waiting-times", TABLE, statement=None),
            "outputs/waiting-times/STATEMENT.md is missing")


def test_a_statement_that_names_no_disclosure_checks_is_refused(people):
    refused(propose(people["tom.evans"], "waiting-times", TABLE, statement="# Some counts\n\nTrust me.\n"),
            "has no '## Disclosure checks' section")


def test_a_file_type_outside_the_list_is_refused_naming_the_allowed_types(people):
    refused(propose(people["tom.evans"], "waiting-times", {"outputs/waiting-times/data.xlsx": b"PK\x03\x04"}),
            "outputs/waiting-times/data.xlsx: type 'xlsx' is not released; allowed types: csv, md, pdf, png, svg, txt")


def test_a_file_over_the_per_file_limit_is_refused(people):
    refused(propose(people["tom.evans"], "big", {"outputs/big/rows.csv": "x\n" * 2500}),
            "outputs/big/rows.csv: 5000 bytes is over the limit of 4000 bytes per file")


def test_a_proposal_over_the_total_limit_is_refused(people):
    files = {f"outputs/big/part-{n}.csv": "y\n" * 1500 for n in range(3)}
    refused(propose(people["tom.evans"], "big", files), "outputs/big/ is 9")


def test_too_many_files_are_refused(people):
    files = {f"outputs/many/part-{n}.txt": "z\n" for n in range(4)}
    refused(propose(people["tom.evans"], "many", files), "holds 5 files; the limit is 4 per proposal")


def test_a_change_outside_the_proposal_folder_is_refused(people):
    refused(propose(people["tom.evans"], "waiting-times", {**TABLE, "README.md": "changed\n"}),
            "README.md lie outside outputs/<proposal>/")


def test_two_proposals_on_one_branch_are_refused(people):
    files = {**TABLE, "outputs/other/STATEMENT.md": STATEMENT, "outputs/other/a.csv": "a\n"}
    refused(propose(people["tom.evans"], "waiting-times", files), "the change touches 2 folders")


def test_a_subfolder_is_refused(people):
    refused(propose(people["tom.evans"], "waiting-times", {"outputs/waiting-times/raw/rows.csv": "1\n"}),
            "with no subfolders")


def test_a_link_is_refused(people):
    tom = people["tom.evans"]
    tom.start("request/tom.evans/linked")
    (tom.work / "outputs" / "linked").mkdir(parents=True)
    (tom.work / "outputs" / "linked" / "STATEMENT.md").write_text(STATEMENT)
    (tom.work / "outputs" / "linked" / "secret.csv").symlink_to("/etc/passwd")
    tom.git("add", "outputs")
    tom.git("commit", "-q", "-m", "Link")
    refused(tom.push("HEAD:refs/heads/request/tom.evans/linked"), "only plain files are released")


def test_a_branch_outside_request_is_refused(people):
    refused(propose(people["tom.evans"], "waiting-times", TABLE, branch="feature/results"),
            "outputs takes proposals on request/tom.evans/<proposal> branches only")


# --- Approval and publication ----------------------------------------------------------------------

def test_a_checker_approving_their_own_proposal_is_refused(server, people):
    priya = people["priya.shah"]
    accepted(propose(priya, "waiting-times", TABLE))
    refused(merge(priya, "request/priya.shah/waiting-times"), "merges your own request")


def test_an_analyst_cannot_approve_anothers_proposal(people):
    accepted(propose(people["amara.okafor"], "waiting-times", TABLE))
    refused(merge(people["tom.evans"], "request/amara.okafor/waiting-times"),
            "main of outputs takes merges from its reviewers only (priya.shah, sam.patel)")


def test_a_proposal_for_a_folder_already_published_is_refused(server, people):
    accepted(propose(people["tom.evans"], "waiting-times", TABLE))
    accepted(merge(people["sam.patel"], "request/tom.evans/waiting-times"))
    refused(propose(people["amara.okafor"], "waiting-times", {"outputs/waiting-times/more.csv": "m\n"}),
            "outputs/waiting-times/ is already on main")


def _local_remote(tmp_path: Path) -> tuple[str, Path]:
    config = tmp_path / "rclone.conf"
    config.write_text("[egress]\ntype = local\n")
    return f"egress:{tmp_path / 'egress-container'}", config


def test_an_approved_proposal_is_published_exactly_and_once_with_who_approved(server, people, rules, tmp_path):
    accepted(propose(people["tom.evans"], "waiting-times", TABLE))
    # A second proposal, pushed but not approved: it must not leave.
    accepted(propose(people["amara.okafor"], "pending", {"outputs/pending/draft.csv": "d\n"}))
    accepted(merge(people["sam.patel"], "request/tom.evans/waiting-times"))
    [approval] = events(rules, "approval-merged")
    assert approval["user"] == "sam.patel" and approval["proposer"] == "tom.evans"
    remote, config = _local_remote(tmp_path)
    state = tmp_path / "published"
    done = publish_approved(server.bare(OUTPUTS), rules, remote, config, state)
    assert [(item.proposal, item.files) for item in done] == [("waiting-times", 2)]
    container = tmp_path / "egress-container"
    assert sorted(str(p.relative_to(container)) for p in container.rglob("*") if p.is_file()) == [
        "waiting-times/STATEMENT.md", "waiting-times/by-month.csv"]
    assert (container / "waiting-times" / "by-month.csv").read_text() == TABLE["outputs/waiting-times/by-month.csv"]
    [published] = events(rules, "published")
    assert published["approver"] == "sam.patel" and published["commit"] == approval["commit"]
    assert publish_approved(server.bare(OUTPUTS), rules, remote, config, state) == []  # nothing twice
    assert len(events(rules, "published")) == 1


def test_publication_refuses_a_main_that_breaks_the_rules_and_sends_nothing(server, people, rules, tmp_path):
    accepted(propose(people["tom.evans"], "waiting-times", TABLE))
    accepted(merge(people["sam.patel"], "request/tom.evans/waiting-times"))
    stricter = {**rules, "file_types": ["txt", "md"]}  # csv dropped from the stack since the approval
    remote, config = _local_remote(tmp_path)
    with pytest.raises(RuntimeError, match="breaks the proposal rules"):
        publish_approved(server.bare(OUTPUTS), stricter, remote, config, tmp_path / "published")
    assert not (tmp_path / "egress-container").exists()
    assert events(rules, "publication-refused")


def test_a_proposal_branched_before_another_was_approved_is_checked_against_its_own_folder(server, people, rules,
                                                                                           tmp_path):
    # Both branch from the same main; the second is approved after the first moved main on.
    accepted(propose(people["tom.evans"], "waiting-times", TABLE))
    accepted(propose(people["amara.okafor"], "clinic-counts", {"outputs/clinic-counts/by-clinic.csv": "c,n\n"}))
    accepted(merge(people["sam.patel"], "request/tom.evans/waiting-times"))
    accepted(merge(people["priya.shah"], "request/amara.okafor/clinic-counts"))
    remote, config = _local_remote(tmp_path)
    done = publish_approved(server.bare(OUTPUTS), rules, remote, config, tmp_path / "published")
    assert [(item.proposal, item.files) for item in done] == [("waiting-times", 2), ("clinic-counts", 2)]
    assert [entry["approver"] for entry in events(rules, "published")] == ["sam.patel", "priya.shah"]


def test_a_first_proposal_before_any_main_is_read_against_the_empty_tree(tmp_path, rules):
    work = tmp_path / "first"
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}
    subprocess.run(["git", "init", "-q", str(work)], check=True, env=env)
    (work / "outputs" / "first").mkdir(parents=True)
    (work / "outputs" / "first" / "STATEMENT.md").write_text(STATEMENT)
    (work / "outputs" / "first" / "table.csv").write_text("a,b\n")
    for step in (["add", "outputs"], ["commit", "-qm", "First"]):
        subprocess.run(["git", "-C", str(work), *step], check=True, env=env, stdin=subprocess.DEVNULL)
    tip = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], check=True, capture_output=True,
                         text=True).stdout.strip()
    proposal = server_commands.proposal_in(work / ".git", rules, None, tip)
    assert (proposal.name, [item.path for item in proposal.files]) == (
        "first", ["outputs/first/STATEMENT.md", "outputs/first/table.csv"])
