"""Rules on governance: where resources live, how they are labelled, who may act on them."""

from __future__ import annotations

from validation.plan_recorder import Plan, PlannedResource
from validation.policies.rule import Rule, Violation, is_known, violation
from validation.schema import REGIONS

ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
REQUIRED_TAGS = ("trust", "environment", "owner", "cost-centre", "data-classification")
# Resources that are global by nature carry the location "global".
GLOBAL_LOCATION = "global"
# Built-in roles that can change anything, or grant access to anything.
BROAD_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c6a72f08": "User Access Administrator",
}

# Every taggable type the blueprints (or a trust's additions) deploy.
TAGGABLE_TYPES = (
    "azure-native:resources:ResourceGroup",
    "azure-native:network:VirtualNetwork",
    "azure-native:network:NetworkSecurityGroup",
    "azure-native:network:NatGateway",
    "azure-native:network:PublicIPAddress",
    "azure-native:network:NetworkInterface",
    "azure-native:network:BastionHost",
    "azure-native:compute:VirtualMachine",
    "azure-native:compute:VirtualMachineExtension",
    "azure-native:compute:Disk",
    "azure-native:keyvault:Vault",
    "azure-native:storage:StorageAccount",
    "azure-native:operationalinsights:Workspace",
    "azure-native:monitor:DataCollectionRule",
    "azure-native:recoveryservices:Vault",
    "azure-native:privatedns:PrivateZone",
    "azure-native:privatedns:VirtualNetworkLink",
    "azure-native:devtestlab:GlobalSchedule",
)
LOCATED_TYPES = (*TAGGABLE_TYPES,)


def _required_tags(resource: PlannedResource, plan: Plan) -> list[Violation]:
    tags = resource.inputs.get("tags")
    if not isinstance(tags, dict):
        return [violation(resource, "tags", f"are missing; required: {', '.join(REQUIRED_TAGS)}")]
    missing = [tag for tag in REQUIRED_TAGS if not tags.get(tag)]
    if missing:
        return [violation(resource, "tags", f"lack {', '.join(missing)}; required: {', '.join(REQUIRED_TAGS)}")]
    return []


def _allowed_region(resource: PlannedResource, plan: Plan) -> list[Violation]:
    location = resource.inputs.get("location")
    if location is None or not is_known(location):
        return []  # inherits its resource group's region, which this rule checks too
    allowed = (*REGIONS, GLOBAL_LOCATION) if "privatedns" in resource.type else REGIONS
    if str(location).replace(" ", "").lower() not in allowed:
        return [violation(resource, "location", f"is {location!r}; allowed: {', '.join(allowed)} "
                                                "(data stays in the UK)")]
    return []


def _no_broad_roles(resource: PlannedResource, plan: Plan) -> list[Violation]:
    role = str(resource.inputs.get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()
    if role in BROAD_ROLES:
        return [violation(resource, "roleDefinitionId",
                          f"grants {BROAD_ROLES[role]}; grant the narrowest built-in role that does the job")]
    return []


def _narrow_scope(resource: PlannedResource, plan: Plan) -> list[Violation]:
    scope = str(resource.inputs.get("scope", ""))
    if not is_known(scope) or "/providers/" in scope:
        return []
    return [violation(resource, "scope", f"is {scope!r}, a whole subscription or resource group; "
                                         "scope grants to the one resource (or secret) needed")]


RULES: tuple[Rule, ...] = (
    Rule(
        id="TB-GOV-001",
        title="Required tags on every taggable resource",
        severity="mandatory",
        reason="Tags tell finance who pays and tell the information governance team who owns the data and how "
               "it is classified.",
        reference="MCSB AM-1 (asset inventory); NCSC Cloud Security Principle 4 (governance framework)",
        resource_types=TAGGABLE_TYPES,
        check=_required_tags,
    ),
    Rule(
        id="TB-GOV-002",
        title="Resources stay in UK regions",
        severity="mandatory",
        reason="Patient-identifiable data must stay in the UK unless the trust has approved otherwise.",
        reference="NCSC Cloud Security Principle 2.1 (physical location and legal jurisdiction); MCSB DP-1 "
                  "(discover, classify and label sensitive data)",
        resource_types=LOCATED_TYPES,
        check=_allowed_region,
    ),
    Rule(
        id="TB-ID-001",
        title="No Owner, Contributor or User Access Administrator grants",
        severity="mandatory",
        reason="The program grants only what machines need to read their own secrets; broad roles would let "
               "one compromised VM take the subscription.",
        reference="MCSB PA-7 (just enough administration); NCSC Cloud Security Principle 9 (secure user "
                  "management)",
        resource_types=(ROLE_ASSIGNMENT,),
        check=_no_broad_roles,
    ),
    Rule(
        id="TB-ID-002",
        title="Role assignments are scoped to one resource",
        severity="advisory",
        reason="A grant on a resource group reaches everything in it, including what is added later.",
        reference="MCSB PA-7 (just enough administration)",
        resource_types=(ROLE_ASSIGNMENT,),
        check=_narrow_scope,
    ),
)
