"""What every module needs to know about where it sits: the common module interface."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from modules.naming import Naming


@dataclass(frozen=True)
class Placement:
    """Resource group, region, naming and tags shared by every resource of an environment."""

    resource_group_name: pulumi.Input[str]
    location: str
    naming: Naming
    tags: Mapping[str, str] = field(default_factory=dict)

    def tags_for(self, component: str) -> dict[str, str]:
        """Tags for one resource: the environment's tags plus the component that owns it.

        Merged explicitly here because Pulumi stack transforms do not run under mocks,
        and the offline plan must show exactly what Azure receives.
        """
        return {**self.tags, "component": component}
