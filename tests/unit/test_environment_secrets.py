"""Every secret a VM fetches at boot exists (made by the program, or named for a person to supply)
and is granted to exactly the VMs that read it; grant names never collide."""

from __future__ import annotations

import pytest

from blueprints.secrets import VAULT_NAME_TAG, secret_files, vault_name
from blueprints.topology import plan_machines
from blueprints.vm_tags import STORAGE_ACCOUNT_TAG, platform_tags
from cli.main import main
from lab.platform_services import LAB_SUBSCRIPTION_ID
from tests.conftest import EXAMPLE, STACK_FILES, planned
from validation.plan_recorder import Plan, record_plan
from validation.stack_config import load_stack

ASSIGNMENT = "azure-native:authorization:RoleAssignment"
SECRET = "azure-native:keyvault:Secret"
VM = "azure-native:compute:VirtualMachine"


@pytest.fixture(scope="module")
def plans() -> dict[str, Plan]:
    """Each stack's plan, as the run recorded it once (tests.conftest.planned)."""
    return {stack.stem: planned(stack) for stack in STACK_FILES}


@pytest.fixture(params=STACK_FILES, ids=lambda path: path.stem)
def plan(request, plans) -> Plan:
    return plans[request.param.stem]


def _vault_reads(plan: Plan) -> dict[str, set[str]]:
    """principal -> the Key Vault secrets it is granted."""
    reads: dict[str, set[str]] = {}
    for grant in plan.of_type(ASSIGNMENT):
        scope = str(grant.inputs["scope"])
        if "/providers/Microsoft.KeyVault/vaults/" in scope:
            reads.setdefault(grant.inputs["principalId"], set()).add(scope.rsplit("/secrets/", 1)[1])
    return reads


def test_each_vm_is_granted_exactly_the_secrets_it_fetches(plan):
    reads = _vault_reads(plan)
    vms = {vm.inputs["osProfile"]["computerName"]: vm for vm in plan.of_type(VM)}
    for machine in plan_machines(plan.config):
        principal = f"principal-of-{vms[machine.name].azure_name}"
        assert reads.pop(principal) == {secret for _file, secret in secret_files(machine)}, machine.name
    assert reads == {}, f"grants to identities of no VM: {reads}"


def test_every_secret_read_is_created_by_the_program_or_named_for_a_person(plan):
    created = {str(secret.inputs["secretName"]) for secret in plan.of_type(SECRET)}
    read = {secret for machine in plan_machines(plan.config) for _file, secret in secret_files(machine)}
    manual = {"gateway-oidc-client-secret"} if (plan.config["roles"].get("gateway") or {}).get("kind") == \
        "self-hosted" else set()
    assert read - created == manual
    assert created <= read, f"secrets nobody reads: {created - read}"


def test_secret_values_stay_out_of_the_plan_and_the_custom_data(plan):
    for secret in plan.of_type(SECRET):
        properties = secret.inputs["properties"]
        value = properties["value"] if isinstance(properties, dict) else properties
        assert value == "[secret]", secret.azure_name
    for vm in plan.of_type(VM):
        assert "PRIVATE KEY" not in str(vm.inputs), vm.azure_name


def test_grants_follow_the_secrets_they_grant(plan):
    """A grant waits for the secret the program creates, so the VM's retry ends in a value."""
    secrets = {str(secret.inputs["secretName"]): secret.urn for secret in plan.of_type(SECRET)}
    for grant in plan.of_type(ASSIGNMENT):
        name = str(grant.inputs["scope"]).rsplit("/secrets/", 1)[-1]
        if name in secrets:
            assert secrets[name] in grant.dependencies, grant.name


SECOND_SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
GLOBAL_NAMES = {"azure-native:keyvault:Vault": "Key Vault", "azure-native:storage:StorageAccount": "storage account"}


@pytest.fixture(scope="module")
def deployments(plans) -> list[tuple[str, Plan]]:
    """Every stack in one subscription, and the example again in a second one (the same trust
    deploying twice, or two trusts with the same names)."""
    second = record_plan(STACK_FILES[1], subscription_id=SECOND_SUBSCRIPTION)
    assert second.stack == "example"
    return [*plans.items(), ("example in a second subscription", second)]


def _names_of(deployments, kinds) -> dict[str, list[str]]:
    """Azure name -> where it is used, for every resource of ``kinds``."""
    names: dict[str, list[str]] = {}
    for where, plan in deployments:
        for resource in plan.custom_resources():
            if resource.type in kinds:
                key = resource.inputs["roleAssignmentName"] if resource.type == ASSIGNMENT else resource.azure_name
                names.setdefault(str(key), []).append(f"{resource.name} ({where})")
    return names


def test_assignment_names_are_unique_across_stacks_and_subscriptions(deployments):
    names = _names_of(deployments, {ASSIGNMENT})
    assert {name: uses for name, uses in names.items() if len(uses) > 1} == {}
    assert len(names) > 60


def test_key_vault_names_are_unique_across_stacks_and_subscriptions(deployments):
    names = _names_of(deployments, {"azure-native:keyvault:Vault"})
    assert {name: uses for name, uses in names.items() if len(uses) > 1} == {}
    assert len(names) == len(deployments)


def test_storage_names_are_unique_across_the_stacks_of_one_subscription(plans):
    names = _names_of(plans.items(), {"azure-native:storage:StorageAccount"})
    assert {name: uses for name, uses in names.items() if len(uses) > 1} == {}
    assert names


def test_storage_names_differ_between_subscriptions(deployments):
    names = _names_of(deployments, {"azure-native:storage:StorageAccount"})
    assert {name: uses for name, uses in names.items() if len(uses) > 1} == {}
    assert any("second subscription" in use for uses in names.values() for use in uses)


def test_storage_names_are_stable_across_runs_of_one_stack(plans):
    again = record_plan(EXAMPLE)
    first = sorted(a.azure_name for a in plans[again.stack].of_type("azure-native:storage:StorageAccount"))
    second = sorted(a.azure_name for a in again.of_type("azure-native:storage:StorageAccount"))
    assert first and first == second


def test_the_vm_that_writes_to_storage_carries_the_accounts_name_in_a_tag(deployments):
    """The settings document and the custom data cannot know the account (it depends on the
    subscription): the VM's tag names it, and nothing else on the VM does."""
    for where, plan in deployments:
        everything = plan.of_type("azure-native:storage:StorageAccount")
        accounts = [account.azure_name for account in everything]
        # The Git server's backup account; the airlock's is the analytics VMs' own tag (AIRLOCK_ACCOUNT_TAG).
        backups = [a.azure_name for a in everything if (a.inputs.get("tags") or {}).get("component") != "airlock"]
        for vm in plan.of_type(VM):
            tagged = vm.inputs["tags"].get(STORAGE_ACCOUNT_TAG)
            writes = vm.inputs["osProfile"]["computerName"] == "git" and bool(backups)
            assert tagged == (backups[0] if writes else None), f"{vm.name} in {where}"
            for account in accounts:
                assert account not in str(vm.inputs["osProfile"]) + str(vm.inputs.get("userData")), vm.name


def test_the_lab_serves_each_machine_the_tags_the_plan_gives_its_vm():
    """lab/lifecycle.py loads the metadata stand-in with platform_tags in the lab's subscription:
    the same tags a plan in that subscription gives each VM."""
    plan = record_plan(EXAMPLE, subscription_id=LAB_SUBSCRIPTION_ID)
    vms = {vm.inputs["osProfile"]["computerName"]: vm for vm in plan.of_type(VM)}
    for machine in plan_machines(plan.config):
        served = platform_tags(plan.config, machine, LAB_SUBSCRIPTION_ID)
        tags = vms[machine.name].inputs["tags"]
        assert {key: tags[key] for key in tags if key.startswith("trust-blueprints-")} == served, machine.name
    assert STORAGE_ACCOUNT_TAG in platform_tags(plan.config, next(m for m in plan_machines(plan.config)
                                                                 if m.role == "git_server"), LAB_SUBSCRIPTION_ID)


def test_every_vm_carries_its_vaults_name_in_a_tag(deployments):
    for where, plan in deployments:
        vault = plan.of_type("azure-native:keyvault:Vault")[0].azure_name
        assert vault == vault_name(plan.config, _subscription(plan))
        for vm in plan.of_type(VM):
            assert vm.inputs["tags"][VAULT_NAME_TAG] == vault, f"{vm.name} in {where}"


def _subscription(plan: Plan) -> str:
    group = plan.of_type("azure-native:resources:ResourceGroup")[0]
    return group.id.split("/")[2]


def test_the_secrets_command_names_what_a_person_supplies(capsys):
    assert main(["secrets", "stacks/example.yaml"]) == 0
    out = capsys.readouterr().out
    assert "the program creates 14, a person supplies 1" in out
    assert "pass --subscription-id, or read the trust-blueprints-key-vault tag" in out
    assert "az keyvault secret set --vault-name <vault> --name gateway-oidc-client-secret" in out


def test_the_secrets_command_names_the_vault_of_a_subscription(capsys):
    assert main(["secrets", "stacks/example.yaml", "--subscription-id", SECOND_SUBSCRIPTION]) == 0
    vault = vault_name(load_stack("stacks/example.yaml"), SECOND_SUBSCRIPTION)
    assert f"az keyvault secret set --vault-name {vault} --name gateway-oidc-client-secret" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--subscription-id", "prod"], "--subscription-id: 'prod' is not a subscription id"),
    (["--check"], "--check needs --subscription-id"),
])
def test_the_secrets_command_refuses_a_missing_or_bad_subscription(capsys, argv, message):
    assert main(["secrets", "stacks/example.yaml", *argv]) == 2
    assert message in capsys.readouterr().err


def test_the_secrets_check_needs_the_azure_cli(capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["secrets", "stacks/example.yaml", "--check", "--subscription-id", SECOND_SUBSCRIPTION]) == 2
    assert "Azure CLI" in capsys.readouterr().err


def test_the_secrets_check_reports_what_is_missing(capsys, monkeypatch, tmp_path):
    fake = tmp_path / "az"
    # Answers `az keyvault secret show` for every secret but the one a person supplies.
    fake.write_text("#!/bin/sh\ncase \"$*\" in *gateway-oidc-client-secret*) exit 3 ;; esac\necho id\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["secrets", "stacks/example.yaml", "--check", "--subscription-id", SECOND_SUBSCRIPTION]) == 1
    err = capsys.readouterr().err
    assert "MISSING gateway-oidc-client-secret" in err and "1 of 15 secrets missing" in err
