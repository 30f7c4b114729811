"""Which private DNS zones each private-link sub-resource needs: a table with no Pulumi in it, so the
stack schema (a landing zone's zone ids) reads the same table the private endpoints do.
"""

from __future__ import annotations

from collections.abc import Sequence

# The zones each private-link sub-resource (group id) needs, from Microsoft's table "Azure Private
# Endpoint private DNS zone values" (learn.microsoft.com/azure/private-link/private-endpoint-dns,
# checked 2026-12-02). Azure Monitor's endpoint serves the global and regional ingestion endpoints,
# the agents' configuration service and the solution packs' storage.
GROUP_ZONES: dict[str, tuple[str, ...]] = {
    "vault": ("privatelink.vaultcore.azure.net",),
    "blob": ("privatelink.blob.core.windows.net",),
    "azuremonitor": ("privatelink.monitor.azure.com", "privatelink.oms.opinsights.azure.com",
                     "privatelink.ods.opinsights.azure.com", "privatelink.agentsvc.azure-automation.net",
                     "privatelink.blob.core.windows.net"),
}


def zones_for(group_ids: Sequence[str]) -> list[str]:
    """Every zone the given sub-resources need, each once, in a stable order."""
    return sorted({zone for group in group_ids for zone in GROUP_ZONES[group]})
