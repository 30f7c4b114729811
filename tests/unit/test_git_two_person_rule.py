"""The Git server's two-person rule: its settings, and its check (git-server-review, a gitolite VREF)
run as it runs on the VM, against real repositories with real git.

Each push goes through a real `git push` into a bare repository whose update hook stands in for
gitolite's: it runs the VREF with gitolite's arguments and environment (GL_USER from the SSH key,
GL_REPO, GL_REPO_BASE), from gitolite's LOCAL_CODE layout with review-rules.json beside it, and
refuses the push on any "VREF/..." line, as gitolite does. Author names and trailers in these tests
are whatever the attacker writes; only GL_USER is trusted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from blueprints.git_server import server_commands
from blueprints.git_server.backup_target import vm_settings
from blueprints.git_server.server_commands import Access
from tests.conftest import EXAMPLE, REPO
from validation.stack_config import validate_document
from validation.yaml_source import read_stack_source

PROGRAM = REPO / "blueprints" / "git_server" / "server_commands.py"
REVIEWERS = ["priya.shah", "sam.patel"]
# Stands in for gitolite's update hook (Gitolite::Hooks::Update): bypass for the server's own pushes,
# then the VREF with REF OLD NEW OLDTREE NEWTREE ACCESS VREF, and a "VREF/" line refuses.
UPDATE_HOOK = """#!/bin/sh
[ -n "$GL_BYPASS_ACCESS_CHECKS" ] && exit 0
out=$("{python}" "{vref}" "$1" "$2" "$3" "$2" "$3" W VREF/git-server-review) || {{
    echo "FATAL: VREF/git-server-review: helper program exit status $?" >&2; exit 1; }}
denied=$(printf '%s\\n' "$out" | grep '^VREF/')
if [ -n "$denied" ]; then printf 'FATAL: W %s %s %s DENIED\\n' "$1" "$GL_REPO" "$GL_USER" >&2; \
printf '%s\\n' "$denied" >&2; exit 1; fi
exit 0
"""


# --- Settings: who is protected, who reviews ----------------------------------------------------

def _document():
    document, _ = read_stack_source(EXAMPLE)
    return document


def _git(document):
    return document["roles"]["git_server"]


def _paths(document):
    _, problems = validate_document(document)
    return {(problem.path, problem.allowed) for problem in problems}


def test_package_requests_is_protected_and_its_maintainers_review(example_config):
    rules = Access(vm_settings(example_config), mirror_reader=True).review_rules()
    # outputs: the airlock's egress repository, whose checkers (@platform) review.
    assert rules["protected"] == {"package-requests": REVIEWERS, "outputs": REVIEWERS}


def test_a_repository_marked_protected_gets_the_rule(example_config):
    settings = json.loads(json.dumps(vm_settings(example_config)))
    settings["repositories"][1].update(protected=True, maintainers=["amara.okafor", "tom.evans"])
    assert server_commands._problems(settings) == []
    rules = Access(settings, mirror_reader=False).review_rules()["protected"]
    assert rules == {"package-requests": REVIEWERS, "waiting-times": ["amara.okafor", "tom.evans"],
                     "outputs": REVIEWERS}


def test_a_protected_repository_with_one_reviewer_is_refused_naming_the_field():
    document = _document()
    _git(document)["repositories"][1]["protected"] = True  # its maintainers: [amara.okafor]
    _, problems = validate_document(document)
    [problem] = [p for p in problems if p.path == "roles.git_server.repositories[1].maintainers"]
    assert problem.value == ["amara.okafor"]
    assert "at least two people" in problem.allowed and "they are amara.okafor" in problem.allowed


def test_package_requests_with_a_one_person_owner_team_is_refused():
    document = _document()
    git = _git(document)
    git["users"] = [user for user in git["users"] if user["name"] != "sam.patel"]
    _, problems = validate_document(document)
    [problem] = [p for p in problems if p.path == "roles.git_server.repositories[0].owner_team"]
    assert problem.value == "platform"
    assert "they are priya.shah" in problem.allowed


def test_package_requests_cannot_be_unprotected():
    document = _document()
    _git(document)["repositories"][0]["protected"] = False
    assert ("roles.git_server.repositories[0].protected",
            "package-requests is always protected (the mirror installs what its main lists): leave protected "
            "out or set it to true") in _paths(document)


def test_protected_must_be_true_or_false():
    document = _document()
    _git(document)["repositories"][1]["protected"] = "yes"
    assert any(path == "roles.git_server.repositories[1].protected" for path, _ in _paths(document))


def test_the_vm_refuses_a_protected_repository_with_one_reviewer(example_config):
    settings = json.loads(json.dumps(vm_settings(example_config)))
    settings["repositories"][1]["protected"] = True
    assert server_commands._problems(settings) == [
        "repositories[1].maintainers: a protected repository's maintainers are its reviewers and must be at "
        "least two people, so that nobody merges their own change; they are amara.okafor "
        "(got ['amara.okafor'])"]


def test_every_repository_runs_the_check_and_keeps_request_branches_to_their_owner(example_config):
    conf = Access(vm_settings(example_config), mirror_reader=False).gitolite_conf()
    for repository in ("package-requests", "waiting-times"):
        block = conf.split(f"\nrepo {repository}\n", 1)[1].split("\n\n", 1)[0]
        rules = [" ".join(line.split()) for line in block.splitlines()]
        assert rules[0] == "- VREF/git-server-review = @all"
        owner = rules.index(next(rule for rule in rules if rule.startswith("RW+ refs/heads/request/USER/ ")))
        assert rules[owner + 1] == "- refs/heads/request/ = @all"
        assert owner < rules.index(next(rule for rule in rules if rule.startswith("RW+ refs/heads/ ")))


def test_gitolite_rc_gets_local_code_for_the_check_once():
    rc = ('    # this one is managed directly on the server\n'
          '        # LOCAL_CODE                =>  "$ENV{HOME}/local",\n'
          '        # LOCAL_CODE                =>  "$rc{GL_ADMIN_BASE}/local",\n')
    enabled = server_commands.enable_local_code(rc)
    assert '\n        LOCAL_CODE                =>  "$ENV{HOME}/local",\n' in enabled
    assert '# LOCAL_CODE                =>  "$rc{GL_ADMIN_BASE}/local"' in enabled
    assert server_commands.enable_local_code(enabled) == enabled
    # An rc without the commented line gets the setting first in %RC.
    bare = server_commands.enable_local_code("%RC = (\n    UMASK => 0077,\n);\n")
    assert bare == '%RC = (\n    LOCAL_CODE => "$ENV{HOME}/local",\n    UMASK => 0077,\n);\n'
    assert server_commands.enable_local_code(bare) == bare
    with pytest.raises(RuntimeError, match="no LOCAL_CODE line"):
        server_commands.enable_local_code("%RC = ();\n")


# --- The check, on real repositories ------------------------------------------------------------

@dataclass
class Server:
    """A gitolite-like home: repositories, LOCAL_CODE with the VREF and its rules."""

    home: Path

    @property
    def base(self) -> Path:
        return self.home / "repositories"

    def bare(self, name: str) -> Path:
        return self.base / f"{name}.git"

    def ref(self, repository: str, ref: str) -> str:
        result = subprocess.run(["git", "--git-dir", str(self.bare(repository)), "rev-parse", "--verify", "-q", ref],
                                capture_output=True, text=True, check=False)
        return result.stdout.strip()


@dataclass
class Person:
    """Someone with a clone, who pushes as ``name`` (GL_USER) and writes any author they like."""

    server: Server
    name: str
    repository: str
    work: Path

    def env(self, author: str | None = None) -> dict[str, str]:
        who = author or self.name
        return {**os.environ, "GL_USER": self.name, "GL_REPO": self.repository, "GL_REPO_BASE": str(self.server.base),
                "GIT_AUTHOR_NAME": who, "GIT_AUTHOR_EMAIL": f"{who}@example.nhs.uk",
                "GIT_COMMITTER_NAME": who, "GIT_COMMITTER_EMAIL": f"{who}@example.nhs.uk",
                "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}

    def git(self, *arguments: str, author: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["git", "-C", str(self.work), *arguments], env=self.env(author),
                                capture_output=True, text=True, check=False)
        if check:
            assert result.returncode == 0, f"{self.name}: git {' '.join(arguments)}\n{result.stderr}"
        return result

    def commit(self, name: str, text: str, message: str = "", author: str | None = None) -> str:
        (self.work / name).write_text(text)
        self.git("add", name)
        self.git("commit", "-q", "-m", message or f"Change {name}", author=author)
        return self.git("rev-parse", "HEAD").stdout.strip()

    def push(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return self.git("push", "origin", *arguments, check=False)

    def fresh(self) -> None:
        self.git("fetch", "-q", "origin")

    def start(self, branch: str, start: str = "origin/main") -> None:
        self.fresh()
        self.git("switch", "-q", "-C", branch, start)


def _refused(result: subprocess.CompletedProcess[str], reason: str) -> None:
    assert result.returncode != 0, result.stderr
    assert "VREF/git-server-review" in result.stderr and reason in result.stderr, result.stderr


def _accepted(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr


@pytest.fixture
def server(tmp_path) -> Server:
    home = tmp_path / "srv-git"
    vref = home / "local" / "VREF" / server_commands.REVIEW_VREF
    vref.parent.mkdir(parents=True)
    vref.symlink_to(PROGRAM)
    (home / "local" / server_commands.REVIEW_RULES_NAME).write_text(json.dumps(
        {"protected": {"package-requests": REVIEWERS}}))
    served = Server(home)
    for name in ("package-requests", "scratch"):
        bare = served.bare(name)
        subprocess.run(["git", "init", "-q", "--bare", "--initial-branch", "main", str(bare)], check=True)
        hook = bare / "hooks" / "update"
        hook.write_text(UPDATE_HOOK.format(python=sys.executable, vref=vref))
        hook.chmod(0o755)
        # The server's own first commit on main, as git-server-apply seeds package-requests.
        seed = tmp_path / f"seed-{name}"
        subprocess.run(["git", "init", "-q", "--initial-branch", "main", str(seed)], check=True)
        (seed / "allowlist.yaml").write_text("pypi: []\nnpm: []\ncran: []\n")
        env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "Git server",
               "GIT_AUTHOR_EMAIL": "git@localhost", "GIT_COMMITTER_NAME": "Git server",
               "GIT_COMMITTER_EMAIL": "git@localhost", "GL_BYPASS_ACCESS_CHECKS": "1"}
        for step in (["add", "allowlist.yaml"], ["commit", "-q", "-m", "Start"], ["push", "-q", str(bare), "main"]):
            subprocess.run(["git", "-C", str(seed), *step], env=env, check=True, capture_output=True)
    return served


@pytest.fixture
def people(server, tmp_path) -> dict[str, Person]:
    """Two reviewers (priya.shah, sam.patel) and two analysts, each with a clone of package-requests."""
    crowd = {}
    for name in ("priya.shah", "sam.patel", "tom.evans", "amara.okafor"):
        work = tmp_path / "clones" / name
        subprocess.run(["git", "clone", "-q", str(server.bare("package-requests")), str(work)], check=True,
                       capture_output=True)
        crowd[name] = Person(server, name, "package-requests", work)
    return crowd


def _request(person: Person, branch: str, name: str = "request.txt", text: str = "pyarrow\n",
             author: str | None = None) -> str:
    person.start(branch)
    sha = person.commit(name, text, f"Ask for {text.strip()}", author=author)
    _accepted(person.push(f"HEAD:refs/heads/{branch}"))
    return sha


def _merge(reviewer: Person, branch: str, *, fast_forward: bool = False) -> str:
    reviewer.start("main")
    reviewer.git("merge", "-q", "--ff-only" if fast_forward else "--no-ff", "--no-edit", f"origin/{branch}")
    return reviewer.git("rev-parse", "HEAD").stdout.strip()


def test_a_reviewers_merge_of_someone_elses_request_reaches_main(server, people):
    request = _request(people["tom.evans"], "request/tom.evans/pyarrow")
    merge = _merge(people["priya.shah"], "request/tom.evans/pyarrow")
    _accepted(people["priya.shah"].push("HEAD:main"))
    assert server.ref("package-requests", "main") == merge
    assert server.ref("package-requests", "main^2") == request


def test_two_requests_merged_in_one_push_are_both_checked_and_accepted(server, people):
    _request(people["tom.evans"], "request/tom.evans/pyarrow")
    _request(people["amara.okafor"], "request/amara.okafor/polars", name="other.txt", text="polars\n")
    sam = people["sam.patel"]
    _merge(sam, "request/tom.evans/pyarrow")
    sam.git("merge", "-q", "--no-ff", "--no-edit", "origin/request/amara.okafor/polars")
    _accepted(sam.push("HEAD:main"))
    assert server.ref("package-requests", "main") == sam.git("rev-parse", "HEAD").stdout.strip()


def test_a_reviewer_merging_their_own_request_is_refused(server, people):
    priya = people["priya.shah"]
    before = server.ref("package-requests", "main")
    _request(priya, "request/priya.shah/numpy")
    _merge(priya, "request/priya.shah/numpy")
    _refused(priya.push("HEAD:main"), "merges your own request: another reviewer (sam.patel) must merge it")
    assert server.ref("package-requests", "main") == before


def test_a_forged_author_on_your_own_request_does_not_make_it_someone_elses(server, people):
    priya = people["priya.shah"]
    _request(priya, "request/priya.shah/numpy", author="tom.evans")
    _merge(priya, "request/priya.shah/numpy")
    _refused(priya.push("HEAD:main"), "merges your own request")


def test_a_forged_reviewed_by_trailer_on_a_direct_commit_is_refused(server, people):
    priya = people["priya.shah"]
    priya.start("main")
    priya.commit("request.txt", "evil\n", "Add evil\n\nReviewed-by: sam.patel <sam.patel@example.nhs.uk>",
                 author="sam.patel")
    _refused(priya.push("HEAD:main"), "is not a merge commit")


def test_an_analyst_pushing_to_main_is_refused_whatever_the_commit_says(server, people):
    _request(people["amara.okafor"], "request/amara.okafor/polars")
    tom = people["tom.evans"]
    _merge(tom, "request/amara.okafor/polars")  # a well-formed merge of someone else's request
    tom.git("commit", "-q", "--amend", "--no-edit", "-m", "Merge\n\nReviewed-by: priya.shah", author="priya.shah")
    _refused(tom.push("HEAD:main"), "takes merges from its reviewers only (priya.shah, sam.patel)")


def test_a_fast_forward_to_an_unreviewed_branch_is_refused(server, people):
    _request(people["tom.evans"], "request/tom.evans/pyarrow")
    _merge(people["sam.patel"], "request/tom.evans/pyarrow", fast_forward=True)
    _refused(people["sam.patel"].push("HEAD:main"), "is not a merge commit")


def test_a_merge_that_adds_a_change_of_its_own_is_refused(server, people):
    _request(people["tom.evans"], "request/tom.evans/pyarrow")
    sam = people["sam.patel"]
    sam.start("main")
    sam.git("merge", "-q", "--no-ff", "--no-commit", "origin/request/tom.evans/pyarrow")
    (sam.work / "allowlist.yaml").write_text("pypi: [evil-package]\nnpm: []\ncran: []\n")
    sam.git("commit", "-qam", "Merge request")
    _refused(sam.push("HEAD:main"), "changes more than the request it merges")


def test_a_merge_of_a_branch_that_moved_since_the_review_is_refused(server, people):
    tom = people["tom.evans"]
    _request(tom, "request/tom.evans/pyarrow")
    _merge(people["sam.patel"], "request/tom.evans/pyarrow")
    tom.commit("request.txt", "pyarrow\nsomething-else\n")  # after the review, before the merge is pushed
    _accepted(tom.push("HEAD:refs/heads/request/tom.evans/pyarrow"))
    _refused(people["sam.patel"].push("HEAD:main"), "is not the tip of a request/<owner>/ branch")


def test_a_merge_of_a_branch_outside_request_is_refused(server, people):
    tom = people["tom.evans"]
    tom.start("feature/x")
    tom.commit("request.txt", "pyarrow\n")
    _accepted(tom.push("HEAD:refs/heads/feature/x"))
    _merge(people["sam.patel"], "feature/x")
    _refused(people["sam.patel"].push("HEAD:main"), "is not the tip of a request/<owner>/ branch")


def test_merging_main_into_the_request_instead_is_refused(server, people):
    _request(people["tom.evans"], "request/tom.evans/pyarrow")
    _request(people["amara.okafor"], "request/amara.okafor/polars", name="other.txt", text="polars\n")
    _merge(people["priya.shah"], "request/amara.okafor/polars")
    _accepted(people["priya.shah"].push("HEAD:main"))  # main has moved on
    sam = people["sam.patel"]
    sam.start("review", "origin/request/tom.evans/pyarrow")
    sam.git("merge", "-q", "--no-ff", "--no-edit", "origin/main")
    _refused(sam.push("HEAD:main"), "is not a merge commit")


def test_a_merge_resolving_a_conflict_is_refused(server, people):
    _request(people["tom.evans"], "request/tom.evans/pyarrow", name="allowlist.yaml", text="pypi: [pyarrow]\n")
    _request(people["amara.okafor"], "request/amara.okafor/polars", name="allowlist.yaml", text="pypi: [polars]\n")
    priya = people["priya.shah"]
    _merge(priya, "request/tom.evans/pyarrow")
    _accepted(priya.push("HEAD:main"))
    sam = people["sam.patel"]
    sam.start("main")
    assert sam.git("merge", "--no-ff", "--no-edit", "origin/request/amara.okafor/polars", check=False).returncode
    (sam.work / "allowlist.yaml").write_text("pypi: [pyarrow, polars]\n")
    sam.git("commit", "-qam", "Merge polars, conflict resolved")
    _refused(sam.push("HEAD:main"), "the request conflicts with main")


def test_force_push_to_main_is_refused(server, people):
    _request(people["tom.evans"], "request/tom.evans/pyarrow")
    _merge(people["priya.shah"], "request/tom.evans/pyarrow")
    _accepted(people["priya.shah"].push("HEAD:main"))
    sam = people["sam.patel"]
    sam.start("rewrite", "origin/main~1")
    sam.git("merge", "-q", "--no-ff", "--no-edit", "origin/request/tom.evans/pyarrow")
    sam.git("commit", "-q", "--amend", "-m", "Rewritten merge")
    _refused(sam.push("--force", "HEAD:main"), "main of package-requests is never rewritten")


def test_deleting_main_is_refused(server, people):
    # git itself refuses to delete HEAD's branch by default; switched off so the check is what refuses.
    subprocess.run(["git", "--git-dir", str(server.bare("package-requests")), "config", "receive.denyDeleteCurrent",
                    "ignore"], check=True)
    _refused(people["sam.patel"].push(":main"), "main of package-requests is never deleted")
    assert server.ref("package-requests", "main")


def test_a_request_branch_takes_pushes_from_its_owner_only(server, people):
    _request(people["amara.okafor"], "request/amara.okafor/polars")
    tom = people["tom.evans"]
    tom.start("mine")
    tom.commit("request.txt", "over amara's work\n")
    _refused(tom.push("--force", "HEAD:refs/heads/request/amara.okafor/polars"),
             "request/amara.okafor/polars is not yours")
    _refused(tom.push(":refs/heads/request/amara.okafor/polars"), "is not yours")
    _refused(tom.push("HEAD:refs/heads/request/amara.okafor/new"), "push yours as request/tom.evans/NAME")
    # gitolite's USER rule is a regular expression (a dot matches any character); the check is exact.
    _refused(tom.push("HEAD:refs/heads/request/tom-evans/x"), "is not yours")
    _refused(tom.push("HEAD:refs/heads/request/tom.evans"), "is not yours")
    # The owner rewrites and deletes their own.
    _accepted(tom.push("HEAD:refs/heads/request/tom.evans/x"))
    tom.git("commit", "-q", "--amend", "-m", "Rewritten")
    _accepted(tom.push("--force", "HEAD:refs/heads/request/tom.evans/x"))
    _accepted(tom.push(":refs/heads/request/tom.evans/x"))
    assert server.ref("package-requests", "refs/heads/request/amara.okafor/polars")


def test_a_new_main_starts_only_from_another_persons_request(server, people):
    subprocess.run(["git", "--git-dir", str(server.bare("package-requests")), "update-ref", "-d", "refs/heads/main"],
                   check=True)
    sha = _request(people["tom.evans"], "request/tom.evans/start", text="first\n")
    _refused(people["tom.evans"].push(f"{sha}:refs/heads/main"), "takes merges from its reviewers only")
    own = _request(people["priya.shah"], "request/priya.shah/start", text="mine\n")
    _refused(people["priya.shah"].push(f"{own}:refs/heads/main"), "must be the tip of another person's")
    _accepted(people["priya.shah"].push(f"{sha}:refs/heads/main"))


def test_an_unprotected_repository_keeps_ordinary_pushes_to_main(server, tmp_path):
    work = tmp_path / "scratch-clone"
    subprocess.run(["git", "clone", "-q", str(server.bare("scratch")), str(work)], check=True, capture_output=True)
    tom = Person(server, "tom.evans", "scratch", work)
    tom.commit("notes.txt", "direct\n")
    _accepted(tom.push("HEAD:main"))
    _refused(tom.push("HEAD:refs/heads/request/amara.okafor/x"), "is not yours")


def test_without_readable_rules_nothing_is_accepted(server, people):
    _request(people["tom.evans"], "request/tom.evans/pyarrow")
    _merge(people["priya.shah"], "request/tom.evans/pyarrow")
    (server.home / "local" / server_commands.REVIEW_RULES_NAME).unlink()
    _refused(people["priya.shah"].push("HEAD:main"), "review rules")


def test_outside_gitolite_the_check_refuses_and_explains(tmp_path):
    vref = tmp_path / server_commands.REVIEW_VREF
    vref.symlink_to(PROGRAM)
    result = subprocess.run([sys.executable, str(vref), "refs/heads/main", "0" * 40, "1" * 40],
                            env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, check=False)
    assert result.returncode == 0  # gitolite reads the refusal from stdout
    assert result.stdout.startswith("VREF/git-server-review git-server-review runs under gitolite")
