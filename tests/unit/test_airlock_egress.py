"""The airlock's egress side in stack settings and the offline plan: every bad setting refused by field,
the egress container in the airlock's account, the Git server writing it and the readers' group
reading it, no analytics identity on it, and the Git server's settings carrying the outputs rules."""

from __future__ import annotations

import copy

import pytest
import yaml

from blueprints.airlock_egress import EGRESS_CONTAINER, egress_grants
from blueprints.git_server import server_commands
from blueprints.git_server.backup_target import vm_settings
from blueprints.network_flows import active_flows, endpoint_addresses, nsg_rules
from blueprints.topology import plan_machines
from modules.blob_storage import STORAGE_BLOB_DATA_CONTRIBUTOR, STORAGE_BLOB_DATA_READER
from tests.conftest import EXAMPLE
from validation.plan_recorder import record_plan
from validation.policies import evaluate, mandatory_failures
from validation.policies.egress_rules import DIAGNOSTIC_SETTING
from validation.semantic_checks import semantic_problems
from validation.stack_config import validate_document

READERS = "00000000-0000-4000-8000-000000000005"
CONTAINER = "azure-native:storage:BlobContainer"
ASSIGNMENT = "azure-native:authorization:RoleAssignment"


def _document():
    return yaml.safe_load(EXAMPLE.read_text())


def _config(document):
    """The document as validated: defaults filled in, semantic problems listed."""
    config, problems = validate_document(document)
    return config, {p.path: p.allowed for p in problems}


def _egress(document, **egress):
    edited = copy.deepcopy(document)
    edited["network"]["private_client_ranges"] = ["10.20.16.0/22"]
    edited["airlock"] = {"data_providers_group": "00000000-0000-4000-8000-000000000004", "readers": ["analytics-1"],
                         "egress": {"checkers": ["@platform"], "readers_group": READERS, **egress}}
    return edited


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    path = tmp_path_factory.mktemp("egress") / "egress.yaml"
    path.write_text(yaml.safe_dump(_egress(_document())))
    return record_plan(path)


def _grants_on(plan, container):
    return [r for r in plan.of_type(ASSIGNMENT) if str(r.inputs.get("scope", "")).endswith(f"/containers/{container}")]


def test_the_egress_container_is_private_in_the_airlocks_account(plan):
    (egress,) = [r for r in plan.of_type(CONTAINER) if r.inputs["containerName"] == EGRESS_CONTAINER]
    (ingress,) = [r for r in plan.of_type(CONTAINER) if r.inputs["containerName"] == "ingress"]
    assert egress.inputs["accountName"] == ingress.inputs["accountName"]
    assert egress.inputs["publicAccess"] == "None"


def test_the_git_server_writes_egress_and_the_readers_group_reads_it_and_nobody_else(plan):
    grants = {(r.inputs["principalType"], r.inputs["roleDefinitionId"].rsplit("/", 1)[-1], r.inputs["principalId"])
              for r in _grants_on(plan, EGRESS_CONTAINER)}
    assert grants == {("ServicePrincipal", STORAGE_BLOB_DATA_CONTRIBUTOR, "principal-of-vm-exnhs-dev-uks-git"),
                      ("Group", STORAGE_BLOB_DATA_READER, READERS)}
    assert not [r for r in _grants_on(plan, "ingress") if "git" in str(r.inputs["principalId"])]


def test_the_plan_passes_every_mandatory_policy(plan):
    assert mandatory_failures(evaluate(plan)) == []


def test_every_download_from_the_airlock_is_recorded_in_the_workspace(plan):
    (account,) = [r for r in plan.of_type("azure-native:storage:StorageAccount")
                  if r.inputs["tags"]["component"] == "airlock"]
    (setting,) = plan.of_type(DIAGNOSTIC_SETTING)
    (workspace,) = plan.of_type("azure-native:operationalinsights:Workspace")
    assert setting.inputs["resourceUri"] == f"{account.id}/blobServices/default"
    assert setting.inputs["workspaceId"] == workspace.id
    assert {log["category"] for log in setting.inputs["logs"] if log["enabled"]} == {
        "StorageRead", "StorageWrite", "StorageDelete"}


def test_a_plan_without_the_airlocks_access_log_fails(plan):
    edited = copy.deepcopy(plan)
    edited.resources = [r for r in edited.resources if r.type != DIAGNOSTIC_SETTING]
    failed = mandatory_failures(evaluate(edited))
    assert [result.rule.id for result in failed] == ["TB-ST-008"]
    assert "StorageRead, StorageWrite, StorageDelete" in failed[0].violations[0].message


def test_the_git_server_vm_is_told_the_airlocks_account(plan):
    git = next(r for r in plan.of_type("azure-native:compute:VirtualMachine") if r.name.endswith("-git-host-vm"))
    account = next(r for r in plan.of_type(CONTAINER) if r.inputs["containerName"] == EGRESS_CONTAINER)
    assert git.inputs["tags"][server_commands.EGRESS_ACCOUNT_TAG] == account.inputs["accountName"]


def test_the_git_servers_settings_carry_the_outputs_rules_its_program_accepts(example_config):
    config, problems = _config(_egress(_document()))
    assert problems == {}
    settings = vm_settings(config)
    assert settings["egress"] == {"checkers": ["@platform"], "proposers": ["@all"], "max_file_mb": 5,
                                  "max_proposal_mb": 20, "max_files": 50,
                                  "file_types": ["csv", "txt", "md", "pdf", "png", "svg"], "container": "egress"}
    assert server_commands._problems(settings) == []
    access = server_commands.Access(settings, mirror_reader=False)
    assert access.review_rules()["protected"]["outputs"] == ["priya.shah", "sam.patel"]
    block = access.gitolite_conf().split("\nrepo outputs\n", 1)[1].split("\n\n", 1)[0]
    rules = [" ".join(line.split()) for line in block.splitlines()]
    assert rules[0] == "- VREF/git-server-review = @all"
    assert "RW refs/heads/main$ = @platform" in rules and "RW+ refs/heads/request/USER/ = @platform @all" in rules
    assert "egress" not in vm_settings(_without_egress())


def _without_egress():
    document = _document()
    document["airlock"].pop("egress")
    config, problems = _config(document)
    assert problems == {}
    return config


def test_no_egress_no_grants_and_no_flow():
    config = _without_egress()
    assert egress_grants(config) == []
    assert "egress-git-to-airlock-endpoint" not in {flow.name for flow in active_flows(config)}


@pytest.mark.parametrize("edit", ["users[0].teams[0]", "teams[0].name"])
def test_a_user_in_an_unknown_team_is_named_not_a_traceback(edit):
    # Counting the checkers needs each team's members: a user in a team the stack does not have
    # (or a renamed team) is reported once, by the Git server's checks, and egress counts nothing.
    document = _egress(_document())
    git = document["roles"]["git_server"]
    if edit == "users[0].teams[0]":
        git["users"][0]["teams"][0] = "finance"
        expected = "roles.git_server.users[0].teams[0]"
    else:
        git["teams"][0]["name"] = "estates"
        expected = "roles.git_server.users[0].teams[0]"
    _, problems = _config(document)
    assert expected in problems, problems


def test_the_git_server_reaches_the_airlocks_endpoint_only_with_egress():
    config, _ = _config(_egress(_document()))
    (flow,) = [flow for flow in active_flows(config) if flow.name == "egress-git-to-airlock-endpoint"]
    assert (flow.source, flow.destination, flow.ports) == ("role:git_server", "endpoint:airlock", (443,))
    address = f"{endpoint_addresses(config)['airlock']}/32"
    git = next(m.private_ip for m in plan_machines(config) if m.role == "git_server")
    inbound = [r for r in nsg_rules(config)["services"]
               if r.direction == "Inbound" and address in r.destination_prefixes]
    assert any(f"{git}/32" in r.source_prefixes for r in inbound), inbound


@pytest.mark.parametrize(("egress", "field", "words"), [
    ({"checkers": ["priya.shah"]}, "airlock.egress.checkers", "at least two people"),
    ({"checkers": ["@platform", "nobody.here"]}, "airlock.egress.checkers[1]", "must name a user in"),
    ({"proposers": ["@ghosts"]}, "airlock.egress.proposers[0]", "or a @team in roles.git_server.teams"),
    ({"max_file_mb": 50, "max_proposal_mb": 10}, "airlock.egress.max_file_mb", "must not exceed"),
], ids=["one-checker", "unknown-checker", "unknown-team", "file-over-proposal"])
def test_bad_egress_settings_are_refused_naming_the_field(egress, field, words):
    _, problems = _config(_egress(_document(), **egress))
    assert words in problems.get(field, ""), problems


def test_egress_needs_the_git_server():
    config, _ = _config(_egress(_document()))
    config["roles"]["git_server"] = None
    problems = {p.path: p.allowed for p in semantic_problems(config)}
    assert "needs roles.git_server" in problems.get("airlock.egress", ""), problems


def test_a_stack_repository_named_outputs_is_refused():
    document = _egress(_document())
    document["roles"]["git_server"]["repositories"][1]["name"] = "outputs"
    _, problems = _config(document)
    assert "is the outputs repository" in problems["roles.git_server.repositories[1].name"]


@pytest.mark.parametrize(("egress", "field"), [
    ({"file_types": ["csv", "html"]}, "airlock.egress.file_types[1]"),
    ({"readers_group": "everyone"}, "airlock.egress.readers_group"),
    ({"max_files": 0}, "airlock.egress.max_files"),
    ({"checkers": []}, "airlock.egress.checkers"),
], ids=["html", "readers-not-a-guid", "no-files", "no-checkers"])
def test_the_schema_refuses_bad_values_naming_the_field(egress, field):
    document = _egress(_document(), **egress)
    _, problems = validate_document(document)
    assert field in {problem.path for problem in problems}, [p.path for p in problems]


def test_the_request_pack_says_how_results_leave(plan):
    from reports.request_pack import build_context

    (risk,) = [r for r in build_context(plan)["risks"] if r.risk == "Data leaving the environment"]
    assert "Results leave through review" in risk.controls and "no airlock checks outputs" not in risk.controls
