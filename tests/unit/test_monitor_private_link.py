"""Azure Monitor through a Private Link Scope: the agent's endpoint and the workspace behind one private
endpoint, ingestion refused from anywhere else."""

from __future__ import annotations

import re

import pytest

from modules.monitor_private_link import MonitorPrivateLink, MonitorPrivateLinkArgs
from modules.private_endpoint import GROUP_ZONES, PrivateEndpoint, PrivateEndpointArgs
from tests.conftest import all_of, only


def test_the_scope_takes_data_only_privately_and_holds_the_workspace_and_the_endpoint(placement, run_component):
    resources = run_component(lambda: MonitorPrivateLink("mon", MonitorPrivateLinkArgs(placement, "/workspaces/log")))
    scope = only(resources, "azure-native:monitor:PrivateLinkScope")
    assert scope.inputs["location"] == "global"
    assert scope.inputs["accessModeSettings"]["ingestionAccessMode"] == "PrivateOnly"
    endpoint = only(resources, "azure-native:monitor:DataCollectionEndpoint")
    assert endpoint.inputs["networkAcls"] == {"publicNetworkAccess": "Disabled"}
    linked = {r.inputs["linkedResourceId"] for r in all_of(resources, "azure-native:monitor:PrivateLinkScopedResource")}
    assert linked == {"/workspaces/log", endpoint.id}


def test_an_endpoint_refuses_to_be_made_without_its_groups_zones(placement, run_component):
    zones = {zone: f"/zones/{zone}" for zone in GROUP_ZONES["vault"]}
    with pytest.raises(ValueError, match=re.escape("privatelink.monitor.azure.com")):
        run_component(lambda: PrivateEndpoint("pe", PrivateEndpointArgs(
            placement, "monitor", "monitoring", "/subnets/services", "/scopes/s", "azuremonitor", zones)))


def test_the_monitor_endpoint_gets_every_zone_azure_names_for_it(placement, run_component):
    zones = {zone: f"/zones/{zone}" for zone in GROUP_ZONES["azuremonitor"]}
    resources = run_component(lambda: PrivateEndpoint("pe", PrivateEndpointArgs(
        placement, "monitor", "monitoring", "/subnets/services", "/scopes/s", "azuremonitor", zones)))
    group = only(resources, "azure-native:network:PrivateDnsZoneGroup").inputs
    assert sorted(c["privateDnsZoneId"] for c in group["privateDnsZoneConfigs"]) == sorted(zones.values())
    assert "ipConfigurations" not in only(resources, "azure-native:network:PrivateEndpoint").inputs
