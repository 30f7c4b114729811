"""One violating and one passing plan per policy rule.

Each fixture starts from a real recorded plan (the example stack, or a small program run
under the same mocks) and changes one thing, the way a careless edit to a module would.
"""

from __future__ import annotations

import base64
import copy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pulumi
import yaml
from pulumi_azure_native import storage

from modules.blob_storage import STORAGE_BLOB_DATA_CONTRIBUTOR as BLOB_WRITER
from tests.conftest import EXAMPLE, REPO, planned
from validation.plan_recorder import Plan, PlannedResource, record_program
from validation.policies.data_rules import BLOB_CONTAINER, ENTRA_APPLICATION_PASSWORD, PRIVATE_ENDPOINT, STORAGE_ACCOUNT
from validation.policies.egress_rules import DIAGNOSTIC_SETTING
from validation.policies.governance_rules import BROAD_ROLES
from validation.policies.network_rules import NIC, NSG, PUBLIC_IP, ROUTE_TABLE, SUBNET
from validation.policies.vm_rules import DCR_ASSOCIATION, EXTENSION, PROTECTED_ITEM, SHUTDOWN_SCHEDULE, VM

Mutation = Callable[[Plan], None]


@dataclass(frozen=True)
class RuleFixtures:
    violating: Mutation
    passing: Mutation = lambda plan: None  # the unchanged plan passes
    base: str = "example"  # which recorded plan the mutations start from


@cache
def _recorded(base: str) -> Plan:
    if base == "example":
        return planned(EXAMPLE)
    if base == "landing-zone":
        return planned(REPO / "stacks" / "landing-zone.yaml")
    if base == "airlock":  # recorded from its own stack, once for the run (planned() shares it)
        return _planned_document(_airlock_stack(), "airlock.yaml")
    if base == "registration":  # the gateway alone, its Entra ID registration made by the program
        return _planned_document(_registration_stack(), "registration.yaml")
    if base == "storage":
        resources, _ = record_program(_safe_storage_program, "storage")
        return Plan(stack="storage", source="(fixture program)", config={}, resources=resources)
    raise ValueError(base)


def build(rule_id: str, kind: str) -> Plan:
    """A fresh copy of the fixture plan for ``rule_id``; ``kind`` is violating or passing."""
    fixtures = FIXTURES[rule_id]
    plan = copy.deepcopy(_recorded(fixtures.base))
    getattr(fixtures, kind)(plan)
    return plan


def _planned_document(document: dict, file_name: str) -> Plan:
    """The plan of a stack document, from a file that lives only while it is planned."""
    with tempfile.TemporaryDirectory(prefix="policy-fixture-") as work:
        path = Path(work) / file_name
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        return planned(path)


def _registration_stack() -> dict:
    """The example's gateway alone, with roles.gateway.identity.registration instead of a client id."""
    document = yaml.safe_load(EXAMPLE.read_text())
    document["roles"] = {"gateway": document["roles"]["gateway"]}
    document.pop("airlock", None)
    del document["roles"]["gateway"]["identity"]["client_id"]
    document["roles"]["gateway"]["identity"]["registration"] = {}
    return document


def _airlock_stack() -> dict:
    """The example with an airlock whose data providers reach it from the trust's network."""
    document = yaml.safe_load(EXAMPLE.read_text())
    document["network"]["private_client_ranges"] = ["10.20.16.0/22"]
    document["airlock"] = {"data_providers_group": "00000000-0000-4000-8000-000000000004", "readers": ["analytics-1"],
                           # Egress too: its container, the Git server's write and the readers' read.
                           "egress": {"checkers": ["@platform"],
                                      "readers_group": "00000000-0000-4000-8000-000000000005"}}
    return document


def _analytics_writes_egress(plan: Plan) -> None:
    grant = next(r for r in plan.of_type("azure-native:authorization:RoleAssignment")
                 if r.name.endswith("-analytics-1-read"))
    egress = next(r for r in plan.of_type(BLOB_CONTAINER) if r.inputs.get("containerName") == "egress")
    grant.inputs.update(scope=egress.id, roleDefinitionId=f"/subscriptions/s/providers/Microsoft.Authorization/"
                                                          f"roleDefinitions/{BLOB_WRITER}")


def _safe_storage_program() -> None:
    tags = {"trust": "tst", "environment": "dev", "owner": "a@b.nhs.uk", "cost-centre": "CC-1",
            "data-classification": "official"}
    account = storage.StorageAccount(
        "st", account_name="sttstdevuks", resource_group_name="rg-tst-dev-uks", location="uksouth",
        kind="StorageV2", sku={"name": "Standard_ZRS"}, enable_https_traffic_only=True,
        minimum_tls_version="TLS1_2", allow_blob_public_access=False, allow_shared_key_access=False, tags=tags,
    )
    storage.BlobContainer("data", container_name="data", account_name=account.name,
                          resource_group_name="rg-tst-dev-uks", public_access="None",
                          opts=pulumi.ResourceOptions(parent=account))


# --- finding and changing recorded resources ---------------------------------------------------

def one(plan: Plan, type_token: str, name_part: str = "") -> PlannedResource:
    matches = [r for r in plan.resources if r.type == type_token and name_part in r.azure_name]
    assert matches, f"no {type_token} named like {name_part!r} in the fixture plan"
    return matches[0]


def drop(plan: Plan, type_token: str, name_part: str) -> None:
    target = one(plan, type_token, name_part)
    plan.resources.remove(target)


def vm(plan: Plan, host: str = "analytics-1") -> dict:
    return one(plan, VM, host).inputs


def add_inbound(plan: Plan, source: str, port: str, name: str = "careless") -> None:
    one(plan, NSG, "gateway").inputs["securityRules"].append({
        "access": "Allow", "direction": "Inbound", "name": name, "priority": 100, "protocol": "Tcp",
        "sourceAddressPrefix": source, "sourcePortRange": "*", "destinationAddressPrefix": "*",
        "destinationPortRange": port,
    })


def append_custom_data(plan: Plan, text: str) -> None:
    profile = vm(plan)["osProfile"]
    decoded = base64.b64decode(profile["customData"]).decode()
    profile["customData"] = base64.b64encode((decoded + text).encode()).decode()


def kv_properties(plan: Plan) -> dict:
    return one(plan, "azure-native:keyvault:Vault").inputs["properties"]


def _set(mapping: dict, path: str, value: object) -> None:
    *heads, last = path.split(".")
    for key in heads:
        mapping = mapping.setdefault(key, {})
    mapping[last] = value


def setter(type_token: str, name_part: str, path: str, value: object) -> Mutation:
    return lambda plan: _set(one(plan, type_token, name_part).inputs, path, value)


def _both(*mutations: Mutation) -> Mutation:
    def apply(plan: Plan) -> None:
        for mutation in mutations:
            mutation(plan)
    return apply


def add_public_ip(plan: Plan) -> None:
    """A public IP in the spoke, tagged like every resource of the environment."""
    nic = one(plan, NIC, "mirror")
    plan.resources.append(PlannedResource(
        urn=nic.urn.replace("NetworkInterface", "PublicIPAddress") + "-pip", type=PUBLIC_IP, name="careless-pip",
        azure_name="pip-careless", custom=True, parent=nic.parent, dependencies=[],
        inputs={"publicIpAddressName": "pip-careless", "sku": {"name": "Standard"},
                "tags": dict(nic.inputs["tags"])}))


OWNER_ROLE = next(role for role, name in BROAD_ROLES.items() if name == "Owner")
READER_ROLE = "acdd72a7-3385-48ef-bd42-f606fba81ae7"

FIXTURES: dict[str, RuleFixtures] = {
    # The example's gateway NSG allows SSH from the trust's named client ranges: that must pass.
    "TB-NET-001": RuleFixtures(lambda p: add_inbound(p, "Internet", "22"),
                               lambda p: add_inbound(p, "203.0.113.0/24", "22")),
    "TB-NET-002": RuleFixtures(lambda p: add_inbound(p, "*", "*"),
                               lambda p: add_inbound(p, "VirtualNetwork", "*")),
    "TB-NET-003": RuleFixtures(lambda p: one(p, SUBNET, "workloads").inputs.pop("networkSecurityGroup")),
    # The gateway's interface keeps its public IP in both; the mirror's gains one.
    "TB-NET-004": RuleFixtures(setter(NIC, "mirror", "ipConfigurations", [
        {"name": "primary", "publicIPAddress": {"id": "/x/publicIPAddresses/pip-extra"}}])),
    "TB-NET-005": RuleFixtures(setter(NIC, "git", "enableIPForwarding", True)),
    "TB-NET-006": RuleFixtures(setter(SUBNET, "services", "defaultOutboundAccess", True)),
    "TB-NET-007": RuleFixtures(setter(PUBLIC_IP, "gateway", "sku.name", "Basic")),
    # The spoke's interfaces have no public IP; a public IP of its own, or one on the mirror's NIC, breaks it.
    "TB-NET-008": RuleFixtures(add_public_ip, base="landing-zone"),
    "TB-NET-009": RuleFixtures(setter(ROUTE_TABLE, "egress", "routes", [
        {"name": "default", "addressPrefix": "0.0.0.0/0", "nextHopType": "Internet"}]), base="landing-zone"),
    "TB-VM-001": RuleFixtures(setter(VM, "analytics-1", "securityProfile.securityType", "Standard")),
    "TB-VM-002": RuleFixtures(setter(VM, "git", "securityProfile.encryptionAtHost", False)),
    "TB-VM-003": RuleFixtures(_both(
        setter(VM, "mirror", "osProfile.linuxConfiguration.disablePasswordAuthentication", False),
        setter(VM, "mirror", "osProfile.adminPassword", "[secret]"))),
    "TB-VM-004": RuleFixtures(lambda p: p.resources.remove(
        next(r for r in p.of_type(EXTENSION) if r.inputs["vmName"].endswith("-git")))),
    "TB-VM-005": RuleFixtures(lambda p: drop(p, DCR_ASSOCIATION, "dcra-analytics-2")),
    "TB-VM-006": RuleFixtures(lambda p: drop(p, PROTECTED_ITEM, "vm-exnhs-dev-uks-git"),
                              # the mirror's cache disk is exempt only because its VM says so by tag
                              lambda p: vm(p, "mirror")["tags"].update({"data-disk": "cache"})),
    "TB-VM-007": RuleFixtures(lambda p: drop(p, SHUTDOWN_SCHEDULE, "analytics-2")),
    "TB-VM-008": RuleFixtures(setter(VM, "analytics-1", "hardwareProfile.vmSize", "Standard_M128ms"),
                              setter(VM, "analytics-1", "hardwareProfile.vmSize", "Standard_E8s_v5")),
    "TB-VM-009": RuleFixtures(lambda p: append_custom_data(p, "chpasswd:\n  list: |\n    trustadmin:Winter2026\n"),
                              lambda p: append_custom_data(p, "# passwords are never set here\n")),
    "TB-VM-010": RuleFixtures(setter(VM, "gateway", "osProfile.linuxConfiguration.patchSettings.patchMode",
                                     "ImageDefault")),
    "TB-VM-011": RuleFixtures(lambda p: vm(p, "git").pop("identity")),
    "TB-VM-012": RuleFixtures(setter(VM, "mirror", "diagnosticsProfile.bootDiagnostics.enabled", False)),
    # The Entra ID client secret made without an expiry.
    "TB-KV-004": RuleFixtures(lambda p: p.of_type(ENTRA_APPLICATION_PASSWORD)[0].inputs.pop("endDateRelative"),
                              base="registration"),
    "TB-KV-001": RuleFixtures(lambda p: kv_properties(p).pop("enablePurgeProtection")),
    "TB-KV-002": RuleFixtures(lambda p: kv_properties(p).update(
        enableRbacAuthorization=False, accessPolicies=[{"objectId": "x", "permissions": {"secrets": ["get"]}}])),
    "TB-KV-003": RuleFixtures(_both(lambda p: kv_properties(p).update(publicNetworkAccess="Enabled"),
                                    lambda p: drop(p, PRIVATE_ENDPOINT, "-kv"))),
    "TB-ST-005": RuleFixtures(_both(setter(STORAGE_ACCOUNT, "", "publicNetworkAccess", "Enabled"),
                                    lambda p: drop(p, PRIVATE_ENDPOINT, "-blob-"))),
    # analytics-2's agent loses its data collection endpoint: it would use the public endpoints.
    "TB-LOG-002": RuleFixtures(lambda p: p.resources.remove(next(
        r for r in p.of_type(DCR_ASSOCIATION) if r.azure_name == "configurationAccessEndpoint"
        and str(r.inputs["resourceUri"]).endswith("-analytics-2")))),
    # analytics-1's read grant on the ingress container becomes a write grant.
    "TB-ST-006": RuleFixtures(lambda p: next(r for r in p.of_type("azure-native:authorization:RoleAssignment")
                                             if r.name.endswith("-analytics-1-read")).inputs.update(
        roleDefinitionId=f"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{BLOB_WRITER}"),
        base="airlock"),
    # analytics-1's read grant on ingress moved to the egress container as a write grant.
    "TB-ST-007": RuleFixtures(lambda p: _analytics_writes_egress(p), base="airlock"),
    # The airlock's blob service logs writes and deletes, but no longer reads (downloads).
    "TB-ST-008": RuleFixtures(lambda p: p.of_type(DIAGNOSTIC_SETTING)[0].inputs.update(logs=[
        {"category": "StorageWrite", "enabled": True}, {"category": "StorageDelete", "enabled": True},
        {"category": "StorageRead", "enabled": False}]), base="airlock"),
    "TB-ST-001": RuleFixtures(setter(STORAGE_ACCOUNT, "", "enableHttpsTrafficOnly", False), base="storage"),
    "TB-ST-002": RuleFixtures(setter(STORAGE_ACCOUNT, "", "minimumTlsVersion", "TLS1_0"), base="storage"),
    "TB-ST-003": RuleFixtures(setter(BLOB_CONTAINER, "", "publicAccess", "Blob"), base="storage"),
    "TB-ST-004": RuleFixtures(lambda p: one(p, STORAGE_ACCOUNT).inputs.pop("allowSharedKeyAccess"),
                              base="storage"),
    "TB-BK-001": RuleFixtures(setter("azure-native:recoveryservices:Vault", "",
                                     "properties.securitySettings.softDeleteSettings.softDeleteState", "Disabled")),
    "TB-BK-002": RuleFixtures(setter("azure-native:recoveryservices:ProtectionPolicy", "",
                                     "properties.retentionPolicy.dailySchedule.retentionDuration.count", 3)),
    "TB-LOG-001": RuleFixtures(setter("azure-native:operationalinsights:Workspace", "", "retentionInDays", 7)),
    "TB-GOV-001": RuleFixtures(lambda p: vm(p, "git")["tags"].pop("owner")),
    "TB-GOV-002": RuleFixtures(setter(VM, "analytics-2", "location", "westeurope")),
    "TB-ID-001": RuleFixtures(lambda p: one(p, "azure-native:authorization:RoleAssignment").inputs.update(
        roleDefinitionId=f"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{OWNER_ROLE}"),
        lambda p: one(p, "azure-native:authorization:RoleAssignment").inputs.update(
        roleDefinitionId=f"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{READER_ROLE}")),
    "TB-ID-002": RuleFixtures(setter("azure-native:authorization:RoleAssignment", "", "scope",
                                     "/subscriptions/s/resourceGroups/rg-exnhs-dev-uks")),
}
