"""The offline plan as a person reads it: a tree by component with the settings that matter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from validation.plan_model import Plan, PlannedResource


def _rule_line(rule: dict[str, Any]) -> str:
    source = rule.get("sourceAddressPrefix") or ",".join(rule.get("sourceAddressPrefixes", []))
    target = rule.get("destinationAddressPrefix") or ",".join(rule.get("destinationAddressPrefixes", []))
    ports = rule.get("destinationPortRange") or ",".join(rule.get("destinationPortRanges", []))
    return (f"{rule['priority']:>4} {rule['direction']:<8} {rule['access']:<5} "
            f"{source} -> {target} :{ports}  ({rule['name']})")


def image_name(reference: dict[str, Any]) -> str:
    """A VM's image as a person reads it: publisher/offer/sku from the Marketplace, or a gallery image's id."""
    return reference.get("id") or f"{reference['publisher']}/{reference['offer']}/{reference['sku']}"


def _vm(inputs: dict[str, Any]) -> list[str]:
    image = inputs["storageProfile"]["imageReference"]
    security = inputs.get("securityProfile", {})
    linux = inputs["osProfile"].get("linuxConfiguration", {})
    disks = inputs["storageProfile"].get("dataDisks", [])
    return [
        f"size {inputs['hardwareProfile']['vmSize']}, image {image_name(image)}",
        f"security {security.get('securityType', 'Standard')}, encryption at host "
        f"{'on' if security.get('encryptionAtHost') else 'OFF'}, password login "
        f"{'off' if linux.get('disablePasswordAuthentication') else 'ON'}",
        f"patching {linux.get('patchSettings', {}).get('patchMode', 'default')}, "
        f"data disk attached by id (its own resource)" if disks else
        f"patching {linux.get('patchSettings', {}).get('patchMode', 'default')}, no data disk",
    ]


def _nic(inputs: dict[str, Any]) -> list[str]:
    config = inputs["ipConfigurations"][0]
    public = "PUBLIC IP attached" if config.get("publicIPAddress") else "no public IP"
    return [f"private {config.get('privateIPAddress', 'dynamic')}, {public}, "
            f"ip forwarding {'ON' if inputs.get('enableIPForwarding') else 'off'}"]


def _subnet_egress(inputs: dict[str, Any]) -> str:
    if inputs.get("natGateway"):
        return "Internet egress via NAT"
    if inputs.get("routeTable"):  # a landing zone's spoke: the hub firewall decides
        return "Internet egress via the route table (the hub firewall)"
    return "no Internet egress"


_DETAILS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "azure-native:resources:ResourceGroup": lambda i: [f"location {i['location']}"],
    "azure-native:network:VirtualNetwork": lambda i: [
        f"address space {', '.join(i['addressSpace']['addressPrefixes'])}"],
    "azure-native:network:Subnet": lambda i: [
        f"{i['addressPrefix']}, NSG attached, "
        f"{_subnet_egress(i)}"],
    "azure-native:network:VirtualNetworkPeering": lambda i: [
        f"to {i['remoteVirtualNetwork']['id'].rsplit('/', 1)[-1]}, forwarded traffic "
        f"{'allowed' if i.get('allowForwardedTraffic') else 'refused'}, the hub's gateways "
        f"{'used' if i.get('useRemoteGateways') else 'not used'}, gateway transit "
        f"{'offered' if i.get('allowGatewayTransit') else 'not offered'}"],
    "azure-native:network:RouteTable": lambda i: [
        f"{r['addressPrefix']} -> {r['nextHopType']} {r.get('nextHopIpAddress', '')}".rstrip()
        for r in i.get("routes", [])],
    "azure-native:network:NetworkSecurityGroup": lambda i: [
        _rule_line(r) for r in sorted(i.get("securityRules", []), key=lambda r: (r["direction"], r["priority"]))],
    "azure-native:network:PublicIPAddress": lambda i: [f"PUBLIC {i['sku']['name']} static address"],
    "azure-native:network:NetworkInterface": _nic,
    "azure-native:compute:VirtualMachine": _vm,
    "azure-native:compute:Disk": lambda i: [
        f"{i['diskSizeGB']} GB {i['sku']['name']}, kept when its VM is replaced, network access "
        f"{i.get('networkAccessPolicy', 'AllowAll')}"],
    "azure-native:network:PrivateEndpoint": lambda i: [
        f"private endpoint for {', '.join(c['groupIds'][0] for c in i['privateLinkServiceConnections'])}"
        + (f" at {i['ipConfigurations'][0]['privateIPAddress']}" if i.get("ipConfigurations") else "")],
    "azure-native:keyvault:Vault": lambda i: [
        f"RBAC {'on' if i['properties'].get('enableRbacAuthorization') else 'OFF'}, purge protection "
        f"{'on' if i['properties'].get('enablePurgeProtection') else 'OFF'}, network default "
        f"{i['properties'].get('networkAcls', {}).get('defaultAction', 'Allow')}, public network access "
        f"{i['properties'].get('publicNetworkAccess', 'Enabled')}"],
    "azure-native:network:BastionHost": lambda i: [f"Azure Bastion {i['sku']['name']}"],
    "azure-native:devtestlab:GlobalSchedule": lambda i: [
        f"shutdown daily at {i['dailyRecurrence']['time']} {i['timeZoneId']}"],
    "azure-native:privatedns:PrivateRecordSet": lambda i: [
        f"{i['relativeRecordSetName']} A {i['aRecords'][0]['ipv4Address']}"],
    "azure-native:authorization:RoleAssignment": lambda i: [i.get("description", "")],
    "azure-native:monitor:DiagnosticSetting": lambda i: [
        f"logs {', '.join(log['category'] for log in i.get('logs', []) if log.get('enabled'))} of "
        f"{str(i.get('resourceUri', '')).split('/blobServices/')[0].rsplit('/', 1)[-1]} with who and when, to "
        f"{'Log Analytics' if i.get('workspaceId') else 'NO workspace'}"],
}


def resource_details(resource: PlannedResource) -> list[str]:
    """The settings that matter for one resource, as short lines (none for most types)."""
    detail = _DETAILS.get(resource.type)
    return detail(resource.inputs) if detail else []


def _short_type(resource: PlannedResource) -> str:
    return resource.type.rsplit(":", 1)[-1]


def render_tree(plan: Plan) -> str:
    children: dict[str | None, list[PlannedResource]] = {}
    urns = plan.by_urn()
    for resource in plan.resources:
        parent = resource.parent if resource.parent in urns else None
        children.setdefault(parent, []).append(resource)
    for group in children.values():
        group.sort(key=lambda r: (r.custom, r.name))

    lines = [f"Stack {plan.stack} ({plan.source}): {plan.config['trust']['name']}, "
             f"{plan.config['environment']}, {plan.config['location']}"]

    def walk(parent: str | None, prefix: str) -> None:
        group = children.get(parent, [])
        for index, resource in enumerate(group):
            last = index == len(group) - 1
            branch, extend = ("└─ ", "   ") if last else ("├─ ", "│  ")
            label = (f"{_short_type(resource)} {resource.azure_name}" if resource.custom
                     else f"[{_short_type(resource)}] {resource.name}")
            lines.append(f"{prefix}{branch}{label}")
            for text in resource_details(resource):
                lines.append(f"{prefix}{extend}    {text}")
            walk(resource.urn, prefix + extend)

    walk(None, "")
    return "\n".join(lines)


def render_summary(plan: Plan) -> str:
    custom = plan.custom_resources()
    counts = Counter(resource.type.split(":", 1)[1].replace(":", ".") for resource in custom)
    listing = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
    state_only = plan.state_only_resources()
    components = len(plan.resources) - len(custom) - len(state_only)
    summary = f"{len(custom)} Azure resources in {components} components: {listing}"
    if state_only:
        made = Counter(_short_type(resource) for resource in state_only)
        summary += (f"\n{len(state_only)} made by the program, kept only in Pulumi's state and stored in Key Vault: "
                    + ", ".join(f"{count} {name}" for name, count in sorted(made.items())))
    directory = plan.directory_resources()
    if directory:
        made = Counter(_short_type(resource) for resource in directory)
        summary += (f"\n{len(directory)} in Entra ID (the gateway's app registration; no charge): "
                    + ", ".join(f"{count} {name}" for name, count in sorted(made.items())))
    return summary
