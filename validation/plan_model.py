"""What an offline plan holds: every recorded resource, as data.

Kept apart from the recorder, which needs the Pulumi SDK, so that reports, costing and the
CLI's command registration can read plans without importing Pulumi.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Type tokens of the resources Azure holds.
AZURE = "azure-native:"
ENTRA_ID = "azuread:"  # pulumi-azuread: Microsoft Graph, not Azure Resource Manager


@dataclass
class PlannedResource:
    urn: str
    type: str
    name: str  # Pulumi logical name
    azure_name: str
    custom: bool
    parent: str | None
    dependencies: list[str]
    inputs: dict[str, Any]
    id: str = ""


@dataclass
class Plan:
    stack: str
    source: str
    config: dict[str, Any]
    resources: list[PlannedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def by_urn(self) -> dict[str, PlannedResource]:
        return {resource.urn: resource for resource in self.resources}

    def by_id(self) -> dict[str, PlannedResource]:
        return {resource.id: resource for resource in self.resources if resource.id}

    def custom_resources(self) -> list[PlannedResource]:
        """The resources Azure holds (azure-native's); scanners, costs and documents read these."""
        return [resource for resource in self.resources if resource.custom and resource.type.startswith(AZURE)]

    def state_only_resources(self) -> list[PlannedResource]:
        """What the program makes that lives only in Pulumi's state: keys, certificates, tokens
        (which it then stores in Key Vault as secrets)."""
        return [resource for resource in self.resources if resource.custom
                and not resource.type.startswith((AZURE, ENTRA_ID))]

    def directory_resources(self) -> list[PlannedResource]:
        """What the program makes in Entra ID (the gateway's app registration, when a stack asks for
        it): directory objects, not Azure resources, and free of charge."""
        return [resource for resource in self.resources if resource.custom and resource.type.startswith(ENTRA_ID)]

    def of_type(self, type_token: str) -> list[PlannedResource]:
        return [resource for resource in self.resources if resource.type == type_token]

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "source": self.source,
            "outputs": self.outputs,
            "resources": [asdict(resource) for resource in self.resources],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        """The plan ``to_json`` wrote, exactly; ``config`` is read when present (the plan cache keeps it)."""
        return cls(
            stack=data["stack"],
            source=data["source"],
            config=data.get("config", {}),
            resources=[PlannedResource(**resource) for resource in data["resources"]],
            outputs=data["outputs"],
        )
