"""The airlock's ingress side in the offline plan: a private account, one container, grants on the container
alone (providers write, named analytics VMs read), its flows, and every bad setting refused by field."""

from __future__ import annotations

import copy

import pytest
import yaml

from blueprints.airlock_settings import INGRESS_CONTAINER
from blueprints.network_flows import active_flows, endpoint_addresses, nsg_rules
from modules.blob_storage import STORAGE_BLOB_DATA_CONTRIBUTOR, STORAGE_BLOB_DATA_READER
from tests.conftest import EXAMPLE, REPO
from validation.plan_recorder import record_plan
from validation.policies import evaluate, mandatory_failures
from validation.semantic_checks import semantic_problems

PROVIDERS = "00000000-0000-4000-8000-000000000004"
PROVIDER_RANGE = "10.20.16.0/22"
ACCOUNT = "azure-native:storage:StorageAccount"
CONTAINER = "azure-native:storage:BlobContainer"
ENDPOINT = "azure-native:network:PrivateEndpoint"
ASSIGNMENT = "azure-native:authorization:RoleAssignment"


def _airlock(document):
    edited = copy.deepcopy(document)
    edited["network"]["private_client_ranges"] = [PROVIDER_RANGE]
    edited["airlock"] = {"data_providers_group": PROVIDERS, "readers": ["analytics-1"]}
    return edited


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    path = tmp_path_factory.mktemp("airlock") / "airlock.yaml"
    path.write_text(yaml.safe_dump(_airlock(yaml.safe_load(EXAMPLE.read_text()))))
    return record_plan(path)


def _airlock_account(plan):
    (account,) = [r for r in plan.of_type(ACCOUNT) if (r.inputs.get("tags") or {}).get("component") == "airlock"]
    return account


def test_the_account_is_private_keyless_and_keeps_deleted_blobs(plan):
    account = _airlock_account(plan)
    assert account.inputs["publicNetworkAccess"] == "Disabled"
    assert account.inputs["allowSharedKeyAccess"] is False
    assert account.inputs["allowBlobPublicAccess"] is False
    service = next(r for r in plan.of_type("azure-native:storage:BlobServiceProperties")
                   if r.inputs["accountName"] == account.azure_name)
    assert service.inputs["deleteRetentionPolicy"] == {"enabled": True, "days": 14}
    assert service.inputs["containerDeleteRetentionPolicy"] == {"enabled": True, "days": 14}
    (container,) = [r for r in plan.of_type(CONTAINER) if r.inputs["accountName"] == account.azure_name]
    assert container.inputs["containerName"] == INGRESS_CONTAINER
    assert container.inputs["publicAccess"] == "None"


def test_its_private_endpoint_is_in_the_services_subnet_at_its_own_address(plan):
    account = _airlock_account(plan)
    endpoints = [r for r in plan.of_type(ENDPOINT) if "airlock" in r.azure_name]
    assert len(endpoints) == 1
    (endpoint,) = endpoints
    assert endpoint.inputs["subnet"]["id"].endswith("-services")
    (connection,) = endpoint.inputs["privateLinkServiceConnections"]
    assert connection["groupIds"] == ["blob"]
    assert account.urn in endpoint.dependencies or connection["privateLinkServiceId"].endswith(account.azure_name)
    assert [c["privateIPAddress"] for c in endpoint.inputs["ipConfigurations"]] == [
        endpoint_addresses(plan.config)["airlock"]]


def test_grants_are_on_the_ingress_container_alone(plan):
    account = _airlock_account(plan)
    (container,) = [r for r in plan.of_type(CONTAINER) if r.inputs["accountName"] == account.azure_name]
    grants = [r for r in plan.of_type(ASSIGNMENT) if "airlock" in r.name]
    assert grants
    for grant in grants:
        assert container.urn in grant.dependencies or grant.inputs["scope"] == container.id, grant.name
    by_role = {(g.inputs["principalType"], g.inputs["roleDefinitionId"].rsplit("/", 1)[-1]): g for g in grants}
    assert set(by_role) == {("Group", STORAGE_BLOB_DATA_CONTRIBUTOR), ("ServicePrincipal", STORAGE_BLOB_DATA_READER)}
    assert by_role[("Group", STORAGE_BLOB_DATA_CONTRIBUTOR)].inputs["principalId"] == PROVIDERS


def test_only_the_named_reader_gets_a_grant(plan):
    names = sorted(r.name for r in plan.of_type(ASSIGNMENT) if r.name.endswith("-read"))
    assert len(names) == 1 and "analytics-1" in names[0]


def test_the_plan_with_an_airlock_passes_every_mandatory_policy(plan):
    assert mandatory_failures(evaluate(plan)) == []


def test_providers_and_analytics_reach_its_endpoint_on_443_only(example_config):
    config = _airlock(example_config)
    names = {flow.name for flow in active_flows(config)}
    assert {"ingress-private-clients-to-airlock-endpoint", "ingress-analytics-to-airlock-endpoint"} <= names
    address = f"{endpoint_addresses(config)['airlock']}/32"
    inbound = [r for r in nsg_rules(config)["services"]
               if r.direction == "Inbound" and address in r.destination_prefixes]
    assert {(r.source_prefixes, r.destination_ports) for r in inbound} == {
        ((PROVIDER_RANGE,), ("443",)), (("10.40.3.4/32", "10.40.3.5/32"), ("443",))}


def test_without_an_airlock_there_is_no_airlock_flow_or_address(example_config):
    config = copy.deepcopy(example_config)
    config["airlock"] = None
    assert "airlock" not in endpoint_addresses(config)
    assert not [flow for flow in active_flows(config) if "airlock" in flow.destination]


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda c: c["airlock"].update(readers=["analytics-9"]), "airlock.readers[0]", "must name an analytics VM"),
    (lambda c: c["network"].update(private_client_ranges=[]), "network.private_client_ranges",
     "needs at least one range when airlock is set"),
    (lambda c: c["airlock"].update(readers=["analytics-1", "analytics-1"]), "airlock.readers[1]", "named twice"),
], ids=["unknown-reader", "no-provider-range", "reader-twice"])
def test_a_bad_airlock_is_refused_naming_its_field(example_config, change, field, words):
    config = _airlock(example_config)
    change(config)
    problems = {p.path: p.allowed for p in semantic_problems(config)}
    assert words in problems.get(field, ""), problems


def test_the_airlock_has_its_own_cost_lines(plan):
    from reports.costing import estimate

    account = _airlock_account(plan)
    priced = {r.name: r for r in estimate(plan).resources}
    lines = priced[account.azure_name].items
    assert [line.item for line in lines] == ["Blob storage (hot, GRS)", "operations"]
    assert "50 GB (assumed)" in lines[0].basis
    (endpoint,) = [r for r in plan.of_type(ENDPOINT) if "airlock" in r.azure_name]
    assert "100 GB (assumed)" in priced[endpoint.azure_name].items[1].basis
    assert all(line.monthly > 0 for line in lines + priced[endpoint.azure_name].items)


def test_the_networks_dns_policy_lets_vms_resolve_the_airlocks_account(plan):
    account = _airlock_account(plan)
    domains = [domain for resource in plan.of_type("azure-native:dnsresolver:DnsResolverDomainList")
               for domain in resource.inputs["domains"]]
    assert f"{account.azure_name}.blob.core.windows.net." in domains


def test_in_a_landing_zone_the_airlocks_access_log_goes_to_the_central_workspace(tmp_path):
    stack = REPO / "stacks" / "landing-zone-spoke.yaml"
    document = yaml.safe_load(stack.read_text())
    document["airlock"] = {"data_providers_group": PROVIDERS, "readers": ["analytics-1"]}
    path = tmp_path / "spoke-airlock.yaml"
    path.write_text(yaml.safe_dump(document))
    plan = record_plan(path)
    (setting,) = plan.of_type("azure-native:monitor:DiagnosticSetting")
    assert setting.inputs["workspaceId"] == document["network"]["landing_zone"]["log_analytics_workspace_id"]
    assert setting.inputs["resourceUri"] == f"{_airlock_account(plan).id}/blobServices/default"
    assert mandatory_failures(evaluate(plan)) == []
