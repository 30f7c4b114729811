"""Egress publication run for real: an analyst's proposal pushed through git-server-review, a
checker's merge, and git-server-publish sending the approved files to a Blob container in Azurite
with Debian's rclone. Only the rclone configuration differs from Azure (the emulator's account key
instead of the VM's managed identity). Prints the path from proposal to publication.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from blueprints.git_server.server_commands import OUTPUTS, audit_entries, publish_approved
from tests.unit import test_git_egress_proposals as proposals
from tests.unit.test_git_egress_proposals import TABLE, accepted, merge, propose

# The offline suite's fixtures: its server with the outputs repository, its people, its rules.
server = proposals.server
people = proposals.people
rules = proposals.rules

pytestmark = pytest.mark.azurite


def listing(remote: str, config) -> list[str]:
    out = subprocess.run(["rclone", "--config", str(config), "lsf", "-R", "--files-only", remote],
                         check=True, capture_output=True, text=True).stdout
    return sorted(out.split())


def test_a_checked_proposal_reaches_the_egress_container_and_nothing_else(server, people, rules, blob_container,
                                                                          tmp_path):
    remote, config = blob_container
    started = time.monotonic()
    accepted(propose(people["tom.evans"], "waiting-times", TABLE))
    accepted(propose(people["amara.okafor"], "pending", {"outputs/pending/draft.csv": "d\n"}))  # never approved
    accepted(merge(people["priya.shah"], "request/tom.evans/waiting-times"))
    done = publish_approved(server.bare(OUTPUTS), rules, remote, config, tmp_path / "published")
    elapsed = time.monotonic() - started
    assert [item.proposal for item in done] == ["waiting-times"]
    assert listing(remote, config) == ["waiting-times/STATEMENT.md", "waiting-times/by-month.csv"]
    fetched = subprocess.run(["rclone", "--config", str(config), "cat", f"{remote}/waiting-times/by-month.csv"],
                             check=True, capture_output=True, text=True).stdout
    assert fetched == TABLE["outputs/waiting-times/by-month.csv"]
    steps = [(entry["event"], entry.get("user") or entry.get("approver")) for entry in audit_entries(
        tmp_path / "audit.jsonl")]
    assert steps == [("proposal-pushed", "tom.evans"), ("proposal-pushed", "amara.okafor"),
                     ("approval-merged", "priya.shah"), ("published", "priya.shah")]
    print(f"\negress: proposal pushed, approved and published to Azurite in {elapsed:.2f} s "
          "(git-server-review on two pushes and a merge, git-server-publish with rclone)")
    # Publishing again sends nothing: the state file names the last merge published.
    assert publish_approved(server.bare(OUTPUTS), rules, remote, config, tmp_path / "published") == []
