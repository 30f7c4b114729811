"""What `blueprints validate` accepts, the VMs' own programs accept at first boot: one generated
corpus of allowlist entries and Git server settings goes through both. The programs run on the VM
and keep their own checks (blueprints/package_mirror/files/mirror-allowlist.py,
blueprints/git_server/server_commands.py); the stack validator may be stricter, never looser.
"""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from blueprints.git_server import server_commands
from blueprints.git_server.backup_target import vm_settings
from blueprints.package_mirror.settings import PACKAGE_NAME_PATTERNS, vm_program
from tests.hostile.stack_documents import example
from validation.stack_config import validate_document

CORPUS = settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
NAME_CHARACTERS = st.sampled_from("aAzZ09._-@/ \t\u00e9\u0130\u212a\n")
SPECIFIERS = st.sampled_from(["", ">=1", "<2", "==1.*", "~=1.4", ">=3,<2", "!=1.0", "===x", " >= 1 , < 2 ", ">=",
                              "<0", "==1.0+local", ">=1.0rc1"])
KNOWN_NAMES = st.sampled_from(["numpy", "NumPy", "num_py", "num-py", "num.py", "pandas", "@scope/pkg", "data.table",
                               "ggplot2", "Rcpp", "a", "a-", "-a", "zope.interface", "Zope_Interface", "scipy", "r2"])
# Mostly names a person would write, so that many examples pass validate and reach the program.
NAMES = st.integers(0, 4).flatmap(lambda pick: KNOWN_NAMES if pick else st.text(NAME_CHARACTERS, min_size=1,
                                                                                  max_size=12))


@st.composite
def allowlists(draw: st.DrawFn) -> dict[str, list[str]]:
    pypi = [draw(NAMES) + draw(SPECIFIERS) for _ in range(draw(st.integers(0, 3)))]
    npm = draw(st.lists(NAMES, max_size=2))
    cran = draw(st.lists(NAMES, max_size=2))
    return {"pypi": pypi, "npm": npm, "cran": cran}


@CORPUS
@given(lists=allowlists())
def test_allowlists_the_validator_accepts_the_mirrors_program_accepts(lists):
    document = example()
    document["roles"]["package_mirror"]["allowlists"] = copy.deepcopy(lists)
    config, problems = validate_document(document)
    if problems:
        event("refused by validate")
        return
    event("accepted by validate")
    vm_program.check_allowlists(config["roles"]["package_mirror"]["allowlists"], PACKAGE_NAME_PATTERNS, "stack")


ORDINARY = st.sampled_from(["alice", "bob", "data.team", "a_b", "r-2", "x.y.z"])
UNUSUAL = st.one_of(st.sampled_from(["root", "git", "server-admin", "gitweb", "daemon", "package-mirror", "testing",
                                     "gitolite-admin", "x.git", "r..x", "Alice", "1team", ".a", "a."]),
                    st.text(st.sampled_from("ab.-_@1"), min_size=1, max_size=8))
# Mostly ordinary names, so that many examples pass validate and reach the program.
GIT_NAMES = st.integers(0, 4).flatmap(lambda pick: UNUSUAL if pick == 0 else ORDINARY)


@CORPUS
@given(team=GIT_NAMES, user=GIT_NAMES, repository=GIT_NAMES, member=st.sampled_from(["user", "@team", "@all", "x"]),
       directory=st.sampled_from(["/var/backups/git", "/srv/git-backups", "/var/backups/../etc", "/srv", "/etc/x",
                                  "/var/backups/git/", "/var//backups/git", "/var/backups/./git"]))
def test_git_settings_the_validator_accepts_git_server_apply_accepts(team, user, repository, member, directory):
    document = example()
    git = document["roles"]["git_server"]
    key = document["admin"]["ssh_public_keys"][0]
    git["teams"] = [{"name": team}]
    git["users"] = [{"name": user, "ssh_public_key": key, "teams": [team]}]
    member = {"user": user, "@team": f"@{team}"}.get(member, member)
    git["repositories"] = [{"name": repository, "owner_team": team, "readers": [member]}]
    git["backup"] = {"directory": directory}
    config, problems = validate_document(document)
    if problems:
        event("refused by validate")
        return
    event("accepted by validate")
    assert server_commands._problems(vm_settings(config)) == []
