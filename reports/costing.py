"""What a stack costs a month: every planned resource priced from the shipped price table.

The estimate reads the offline plan (the same resources `pulumi up` would create) and the price
table beside this module. A resource type the table does not know is listed as not priced, with
the reason, and is never counted as zero. Analytics VMs are priced for the hours their
auto-shutdown schedule leaves them running, under the start-up assumption the table states.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import yaml

from reports.markdown_text import md_text
from validation.plan_model import Plan, PlannedResource

PRICE_TABLE = Path(__file__).with_name("prices-uksouth-gbp.yaml")
PENNY = Decimal("0.01")

_VM = "azure-native:compute:VirtualMachine"
_SCHEDULE = "azure-native:devtestlab:GlobalSchedule"


def _money(value: Decimal) -> Decimal:
    return value.quantize(PENNY, rounding=ROUND_HALF_UP)


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


@dataclass(frozen=True)
class PriceTable:
    """The shipped price list, read once; figures kept as Decimal so sums are exact."""

    raw: dict[str, Any]

    @classmethod
    def load(cls, path: Path = PRICE_TABLE) -> PriceTable:
        return cls(yaml.safe_load(path.read_text(encoding="utf-8")))

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    @property
    def hours(self) -> Decimal:
        return _dec(self.raw["hours_per_month"])

    def assumption(self, key: str) -> Any:
        return self.raw["assumptions"][key]

    def rate(self, key: str, sub: str | None = None) -> Decimal:
        value = self.raw[key] if sub is None else self.raw[key][sub]
        return _dec(value)

    def premium_disk(self, size_gb: int) -> tuple[str, Decimal] | None:
        for tier, (largest, price) in self.raw["premium_ssd_monthly"].items():
            if size_gb <= largest:
                return tier, _dec(price)
        return None


@dataclass
class LineItem:
    item: str  # what is charged, e.g. "compute Standard_B2s"
    basis: str  # how the figure is reached, e.g. "730 h x 0.037/h"
    monthly: Decimal

    def __post_init__(self) -> None:
        # Each line is rounded to the penny, so the lines shown add up to the total shown.
        self.monthly = _money(self.monthly)


@dataclass
class PricedResource:
    name: str  # the Azure name
    type: str  # the Pulumi type token
    items: list[LineItem] = field(default_factory=list)

    @property
    def monthly(self) -> Decimal:
        return sum((item.monthly for item in self.items), Decimal(0))


@dataclass
class NotPriced:
    name: str
    type: str
    reason: str


@dataclass
class ShutdownSaving:
    vm: str
    schedule: str  # e.g. "off at 19:00 GMT Standard Time, started 08:00 on working days"
    hours_running: Decimal
    always_on: Decimal
    scheduled: Decimal

    @property
    def saving(self) -> Decimal:
        return self.always_on - self.scheduled


@dataclass
class Option:
    """One way of meeting a need, priced for this stack."""

    name: str
    monthly: Decimal
    basis: str
    gives: str
    deployed: bool = False


@dataclass
class Estimate:
    stack: str
    source: str
    region: str
    currency: str
    compiled: str
    price_source: str
    resources: list[PricedResource]
    free: list[NotPriced]  # priced at zero on purpose, with the reason
    not_priced: list[NotPriced]
    shutdown: list[ShutdownSaving]
    remote_access: list[Option]
    firewall: list[Option]
    assumptions: dict[str, Any]
    notes: list[str]

    @property
    def total(self) -> Decimal:
        return sum((resource.monthly for resource in self.resources), Decimal(0))

    def to_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, Decimal):
                return float(_money(value))
            if isinstance(value, dict):
                return {key: plain(item) for key, item in value.items()}
            if isinstance(value, list):
                return [plain(item) for item in value]
            return value

        return plain({
            "stack": self.stack,
            "source": self.source,
            "region": self.region,
            "currency": self.currency,
            "price_table": {"compiled": self.compiled, "source": self.price_source},
            "total_monthly": self.total,
            "resources": [{**asdict(resource), "monthly": resource.monthly} for resource in self.resources],
            "no_charge": [asdict(item) for item in self.free],
            "not_priced": [asdict(item) for item in self.not_priced],
            "auto_shutdown": [{**asdict(item), "saving": item.saving} for item in self.shutdown],
            "remote_access_options": [asdict(option) for option in self.remote_access],
            "firewall_options": [asdict(option) for option in self.firewall],
            "assumptions": self.assumptions,
            "notes": self.notes,
        })


def _minutes(hh_mm: str) -> int:
    hours, minutes = hh_mm.split(":")
    return int(hours) * 60 + int(minutes)


def running_hours(prices: PriceTable, shutdown_hhmm: str) -> Decimal:
    """Hours a month an analytics VM runs: started at the assumed time on working days,
    stopped by its schedule (which may fall after midnight)."""
    start = _minutes(prices.assumption("analytics_start_time"))
    stop = _minutes(shutdown_hhmm)
    per_day = (stop - start) % (24 * 60) or 24 * 60
    hours = _dec(per_day) / 60 * _dec(prices.assumption("working_days_per_month"))
    return min(hours, prices.hours).quantize(Decimal("0.1"))


def _rate_text(rate: Decimal) -> str:
    return f"{rate.normalize():f}"


class _Pricer:
    def __init__(self, plan: Plan, prices: PriceTable) -> None:
        self.plan = plan
        self.prices = prices
        self.vms = {vm.id: vm for vm in plan.of_type(_VM)}
        self.disks = {disk.id: disk for disk in plan.of_type("azure-native:compute:Disk")}
        self.schedules = {s.inputs.get("targetResourceId"): s for s in plan.of_type(_SCHEDULE)}
        self.vm_count = len(self.vms)
        self.shutdown: list[ShutdownSaving] = []

    def vm_hourly(self, size: str) -> Decimal | None:
        value = self.prices["vm_hourly"].get(size)
        return None if value is None else _dec(value)

    def price(self, resource: PlannedResource) -> list[LineItem] | str:
        """The line items of one resource, or the reason it cannot be priced."""
        method = {
            _VM: self._virtual_machine,
            "azure-native:network:PublicIPAddress": self._public_ip,
            "azure-native:network:NatGateway": self._nat_gateway,
            "azure-native:network:VirtualNetworkPeering": self._peering,
            "azure-native:network:BastionHost": self._bastion,
            "azure-native:keyvault:Vault": self._key_vault,
            "azure-native:operationalinsights:Workspace": self._workspace,
            "azure-native:privatedns:PrivateZone": self._private_zone,
            "azure-native:recoveryservices:ProtectedItem": self._protected_item,
            "azure-native:storage:StorageAccount": self._storage_account,
            "azure-native:network:PrivateEndpoint": self._private_endpoint,
            "azure-native:compute:Disk": self._disk,
            "azure-native:dnsresolver:DnsResolverPolicy": self._dns_policy,
            "azure-native:dnsresolver:DnsResolverDomainList": self._domain_list,
        }.get(resource.type)
        if method is None:
            return f"the price table has no entry for {_short(resource.type)}"
        return method(resource)

    def _virtual_machine(self, vm: PlannedResource) -> list[LineItem] | str:
        size = vm.inputs["hardwareProfile"]["vmSize"]
        hourly = self.vm_hourly(size)
        if hourly is None:
            return f"no price for VM size {size} in the price table"
        hours = self.prices.hours
        schedule = self.schedules.get(vm.id)
        items = []
        if schedule is not None:
            stop = schedule.inputs["dailyRecurrence"]["time"]
            stop_hhmm = f"{stop[:2]}:{stop[2:]}"
            hours = running_hours(self.prices, stop_hhmm)
            self.shutdown.append(ShutdownSaving(
                vm=vm.azure_name,
                schedule=(f"off daily at {stop_hhmm} {schedule.inputs['timeZoneId']}; assumed started at "
                          f"{self.prices.assumption('analytics_start_time')} on "
                          f"{self.prices.assumption('working_days_per_month')} working days a month"),
                hours_running=hours,
                always_on=self.prices.hours * hourly,
                scheduled=hours * hourly,
            ))
        items.append(LineItem(f"compute {size}", f"{hours.normalize():f} h x {_rate_text(hourly)}/h", hours * hourly))
        # A data disk attached by id is a resource of its own, priced as such (_disk).
        disks = [("OS disk", vm.inputs["storageProfile"]["osDisk"])]
        disks += [("data disk", disk) for disk in vm.inputs["storageProfile"].get("dataDisks", [])
                  if disk.get("createOption") != "Attach"]
        for label, disk in disks:
            account = disk.get("managedDisk", {}).get("storageAccountType")
            size_gb = int(disk["diskSizeGB"])
            tier = self.prices.premium_disk(size_gb) if account == "Premium_LRS" else None
            if tier is None:
                return f"no price for a {size_gb} GB {account} {label} in the price table"
            items.append(LineItem(f"{label} {size_gb} GB Premium SSD", f"tier {tier[0]}", tier[1]))
        return items

    def _public_ip(self, resource: PlannedResource) -> list[LineItem] | str:
        if resource.inputs.get("sku", {}).get("name") != "Standard":
            return "only Standard public IP addresses are in the price table"
        rate = self.prices.rate("public_ip_standard_hourly")
        return [LineItem("Standard static IPv4 address", f"{self.prices.hours} h x {_rate_text(rate)}/h",
                         self.prices.hours * rate)]

    def _nat_gateway(self, resource: PlannedResource) -> list[LineItem]:
        hourly = self.prices.rate("nat_gateway_hourly")
        per_gb = self.prices.rate("nat_gateway_per_gb")
        gb = _dec(self.prices.assumption("nat_gb_per_month"))
        return [LineItem("NAT gateway", f"{self.prices.hours} h x {_rate_text(hourly)}/h", self.prices.hours * hourly),
                LineItem("data processed", f"{gb} GB (assumed) x {_rate_text(per_gb)}/GB", gb * per_gb)]

    def _peering(self, resource: PlannedResource) -> list[LineItem]:
        # The peering itself is free; the data crossing it is billed at each end, this one here.
        per_gb = self.prices.rate("vnet_peering_per_gb")
        gb = _dec(self.prices.assumption("peering_gb_per_month"))
        return [LineItem("data through the peering (this end)", f"{gb} GB (assumed) x {_rate_text(per_gb)}/GB",
                         gb * per_gb)]

    def _bastion(self, resource: PlannedResource) -> list[LineItem] | str:
        sku = resource.inputs.get("sku", {}).get("name", "Basic")
        if sku not in self.prices["bastion_hourly"]:
            return f"no price for Azure Bastion {sku} in the price table"
        hourly = self.prices.rate("bastion_hourly", sku)
        return [LineItem(f"Azure Bastion {sku}", f"{self.prices.hours} h x {_rate_text(hourly)}/h",
                         self.prices.hours * hourly)]

    def _key_vault(self, resource: PlannedResource) -> list[LineItem]:
        operations = _dec(self.prices.assumption("key_vault_operations_per_month"))
        rate = self.prices.rate("key_vault_per_10k_operations")
        return [LineItem("secret operations", f"{operations.normalize():f} (assumed) x {_rate_text(rate)}/10k",
                         operations / 10000 * rate)]

    def _workspace(self, resource: PlannedResource) -> list[LineItem]:
        per_vm = _dec(self.prices.assumption("log_gb_per_vm_per_month"))
        gb = per_vm * self.vm_count
        rate = self.prices.rate("log_analytics_per_gb")
        items = [LineItem("log ingestion", f"{gb.normalize():f} GB ({self.vm_count} VMs x {per_vm} GB, assumed) "
                                           f"x {_rate_text(rate)}/GB", gb * rate)]
        if self.plan.of_type("azure-native:monitor:DiagnosticSetting"):
            # The airlock's access log: one StorageBlobLogs row for each of its blob operations.
            operations = _dec(self.prices.assumption("airlock_operations_per_month"))
            per_operation = _dec(self.prices.assumption("airlock_log_kb_per_operation"))
            logged = operations * per_operation / 1_000_000
            items.append(LineItem("airlock access log", f"{logged.normalize():f} GB ({operations.normalize():f} "
                                  f"operations x {per_operation} KB, assumed) x {_rate_text(rate)}/GB", logged * rate))
        return items

    def _private_zone(self, resource: PlannedResource) -> list[LineItem]:
        zone = self.prices.rate("private_dns_zone_monthly")
        millions = _dec(self.prices.assumption("dns_queries_millions_per_month"))
        per_million = self.prices.rate("private_dns_per_million_queries")
        return [LineItem("hosted zone", "1 zone", zone),
                LineItem("queries", f"{millions}M (assumed) x {_rate_text(per_million)}/M", millions * per_million)]

    def _dns_policy(self, resource: PlannedResource) -> list[LineItem]:
        # Every query the network's VMs send Azure's resolver passes the policy's rules.
        millions = _dec(self.prices.assumption("dns_queries_millions_per_month"))
        per_million = self.prices.rate("dns_policy_per_million_queries")
        return [LineItem("queries judged by the policy", f"{millions}M (assumed) x {_rate_text(per_million)}/M",
                         millions * per_million)]

    def _domain_list(self, resource: PlannedResource) -> list[LineItem]:
        domains = len(resource.inputs.get("domains", []))
        thousands = -(-domains // 1000)  # each started thousand
        rate = self.prices.rate("dns_domain_list_per_1000_domains_monthly")
        counted = f"{domains} domain" + ("" if domains == 1 else "s")
        return [LineItem("domain list", f"{counted}: {thousands} x {_rate_text(rate)}/1,000 domains",
                         thousands * rate)]

    def _storage_account(self, resource: PlannedResource) -> list[LineItem] | str:
        sku = resource.inputs.get("sku", {}).get("name")
        if sku != "Standard_GRS" or resource.inputs.get("accessTier", "Hot") != "Hot":
            return f"only hot-tier Standard_GRS storage is in the price table (this is {sku})"
        # The airlock's ingress account holds data on its way in; the other holds the Git backups.
        use = "airlock" if (resource.inputs.get("tags") or {}).get("component") == "airlock" else "git_backup"
        gb = _dec(self.prices.assumption(f"{use}_stored_gb"))
        rate = self.prices.rate("blob_hot_grs_per_gb")
        operations = _dec(self.prices.assumption(f"{use}_operations_per_month"))
        per_10k = self.prices.rate("blob_write_per_10k_operations")
        return [LineItem("Blob storage (hot, GRS)", f"{gb} GB (assumed) x {_rate_text(rate)}/GB", gb * rate),
                LineItem("operations", f"{operations.normalize():f} (assumed) x {_rate_text(per_10k)}/10k",
                         operations / 10000 * per_10k)]

    def _disk(self, resource: PlannedResource) -> list[LineItem] | str:
        account = resource.inputs.get("sku", {}).get("name")
        size_gb = int(resource.inputs["diskSizeGB"])
        tier = self.prices.premium_disk(size_gb) if account == "Premium_LRS" else None
        if tier is None:
            return f"no price for a {size_gb} GB {account} disk in the price table"
        return [LineItem(f"data disk {size_gb} GB Premium SSD", f"tier {tier[0]}, kept when its VM is replaced",
                         tier[1])]

    def _private_endpoint(self, resource: PlannedResource) -> list[LineItem] | str:
        groups = [c["groupIds"][0] for c in resource.inputs.get("privateLinkServiceConnections", [])]
        group = groups[0] if groups else "?"
        if group == "vault":
            gb = _dec(self.prices.assumption("key_vault_endpoint_gb_per_month"))
        elif group == "blob" and (resource.inputs.get("tags") or {}).get("component") == "airlock":
            gb = _dec(self.prices.assumption("airlock_endpoint_gb_per_month"))
        elif group == "blob":
            gb = _dec(self.prices.assumption("blob_endpoint_gb_per_month"))
        elif group == "azuremonitor":
            gb = _dec(self.prices.assumption("log_gb_per_vm_per_month")) * self.vm_count
        else:
            return f"no data volume assumed for a private endpoint to {group}"
        hourly = self.prices.rate("private_endpoint_hourly")
        per_gb = self.prices.rate("private_endpoint_per_gb")
        return [LineItem(f"private endpoint ({group})", f"{self.prices.hours} h x {_rate_text(hourly)}/h",
                         self.prices.hours * hourly),
                LineItem("data processed", f"{gb.normalize():f} GB (assumed) x 2 directions x {_rate_text(per_gb)}/GB",
                         gb * 2 * per_gb)]

    def _attached_gb(self, disk: dict[str, Any]) -> int:
        """A VM data disk's size: its own, or the size of the disk resource it attaches by id."""
        if "diskSizeGB" in disk:
            return int(disk["diskSizeGB"])
        attached = self.disks.get(disk.get("managedDisk", {}).get("id"))
        return int(attached.inputs["diskSizeGB"]) if attached else 0

    def _protected_item(self, resource: PlannedResource) -> list[LineItem] | str:
        source = resource.inputs.get("properties", {}).get("sourceResourceId")
        vm = self.vms.get(source)
        if vm is None:
            return f"protects {source}, which is not a VM in this plan"
        storage = vm.inputs["storageProfile"]
        disk_gb = int(storage["osDisk"]["diskSizeGB"]) + sum(self._attached_gb(d) for d in storage.get("dataDisks", []))
        fees = self.prices["backup_instance_monthly"]
        if disk_gb <= 50:
            fee, band = _dec(fees["up_to_50_gb"]), "up to 50 GB"
        else:
            further = max(0, -(-(disk_gb - 500) // 500))
            fee = _dec(fees["up_to_500_gb"]) + further * _dec(fees["per_further_500_gb"])
            band = "50-500 GB" if further == 0 else f"500 GB + {further} x 500 GB"
        stored = disk_gb * _dec(self.prices.assumption("backup_stored_gb_per_provisioned_gb"))
        rate = self.prices.rate("backup_storage_per_gb")
        return [LineItem(f"protected instance ({disk_gb} GB of disks)", band, fee),
                LineItem("geo-redundant backup storage", f"{stored.normalize():f} GB (assumed) x {_rate_text(rate)}/GB",
                         stored * rate)]


_SELF_HOSTED_GIVES = ("HTTPS single sign-on (Entra ID) to JupyterHub and the Git web view, and an SSH jump host "
                      "(key and TOTP code) for git and terminals; patched by unattended-upgrades like every VM")
_BASTION_GIVES = {
    "Basic": ("SSH in the Azure portal's browser window only: no native SSH client, so no git over SSH, no "
              "JupyterLab forwarding and no analysts' own SSH accounts (validate refuses ssh_users with Basic); "
              "managed and patched by Microsoft"),
    "Standard": ("Basic plus native-client tunnelling (az network bastion ssh/tunnel): each analyst in "
                 "roles.gateway.ssh_users signs in to an account of their own on the analytics VMs with their key, "
                 "uses git over SSH and forwards a JupyterLab started in their own session; no JupyterHub in a "
                 "browser (its sign-in needs the self-hosted gateway); managed by Microsoft"),
}
_FIREWALL_GIVES = {
    "none": ("the deployed design: only the mirror has Internet egress (NSG rule plus NAT gateway) and its "
             "allowlists decide which packages come in; NSGs cannot filter by domain name, so the mirror "
             "could reach any Internet address on ports 80 and 443"),
    "Basic": ("limits the mirror's egress to named upstream domains (deb.debian.org, pypi.org, "
              "registry.npmjs.org, a CRAN mirror) and logs every connection; needs AzureFirewallSubnet, "
              "its own public IP and a route table"),
    "Standard": ("Basic plus threat-intelligence filtering and DNS proxy, with autoscaling; "
                 "far more throughput than one mirror needs"),
}


def _gateway_options(pricer: _Pricer, plan: Plan) -> list[Option]:
    prices = pricer.prices
    gateway = plan.config["roles"].get("gateway") or {}
    kind = gateway.get("kind")
    size = gateway.get("vm_size", "Standard_B2s")
    hours = prices.hours
    ip = hours * prices.rate("public_ip_standard_hourly")
    options = []
    hourly = pricer.vm_hourly(size)
    tier = prices.premium_disk(32)
    if hourly is not None and tier is not None:
        options.append(Option(
            name=f"self-hosted gateway ({size})",
            monthly=hours * hourly + tier[1] + ip,
            basis=f"VM {hours} h x {_rate_text(hourly)}/h + 32 GB OS disk ({tier[0]}) + public IP",
            gives=_SELF_HOSTED_GIVES,
            deployed=kind == "self-hosted",
        ))
    for sku in ("Basic", "Standard"):
        rate = prices.rate("bastion_hourly", sku)
        options.append(Option(
            name=f"Azure Bastion {sku}",
            monthly=hours * rate + ip,
            basis=f"{hours} h x {_rate_text(rate)}/h + public IP",
            gives=_BASTION_GIVES[sku],
            deployed=kind == "bastion" and gateway.get("bastion_sku", "Basic") == sku,
        ))
    return options


def _firewall_options(prices: PriceTable) -> list[Option]:
    hours = prices.hours
    ip = hours * prices.rate("public_ip_standard_hourly")
    gb = _dec(prices.assumption("firewall_gb_per_month"))
    options = [Option("no Azure Firewall (default)", Decimal(0), "nothing added", _FIREWALL_GIVES["none"], True)]
    for sku in ("Basic", "Standard"):
        hourly = prices.rate("firewall_hourly", sku)
        per_gb = prices.rate("firewall_per_gb", sku)
        options.append(Option(
            name=f"add Azure Firewall {sku}",
            monthly=hours * hourly + gb * per_gb + ip,
            basis=f"{hours} h x {_rate_text(hourly)}/h + {gb} GB (assumed) x {_rate_text(per_gb)}/GB + public IP",
            gives=_FIREWALL_GIVES[sku],
        ))
    return options


def estimate(plan: Plan, prices: PriceTable | None = None) -> Estimate:
    """Price every custom resource of a recorded plan."""
    prices = prices or PriceTable.load()
    pricer = _Pricer(plan, prices)
    priced: list[PricedResource] = []
    free: list[NotPriced] = []
    missing: list[NotPriced] = []
    # The gateway's Entra ID registration, when the program makes it, is listed as free (the price table says why).
    resources = plan.custom_resources() + plan.directory_resources()
    for resource in sorted(resources, key=lambda r: (r.type, r.azure_name, r.name)):
        if resource.type in prices["no_charge"]:
            free.append(NotPriced(resource.azure_name, resource.type, prices["no_charge"][resource.type]))
            continue
        result = pricer.price(resource)
        if isinstance(result, str):
            missing.append(NotPriced(resource.azure_name, resource.type, result))
        else:
            priced.append(PricedResource(resource.azure_name, resource.type, result))
    notes = []
    if plan.config["location"] != prices["region"]:
        notes.append(f"the stack deploys to {plan.config['location']} but the price table is for {prices['region']}; "
                     "prices there differ")
    if missing:
        notes.append(f"{len(missing)} resource(s) are not priced, so the total is too low by their cost")
    spoke = bool(plan.config["network"].get("landing_zone"))
    if spoke:  # the hub's remote access and firewall are the trust's already: no options to weigh here
        created = plan.of_type("azure-native:network:VirtualNetworkPeering")  # a spoke of our own: its end is priced
        peering = "the hub's end of the peering's traffic" if created else "the peering's traffic"
        notes.append("a landing zone's spoke: the hub firewall's processing, the hub's Bastion, the central "
                     f"workspace's log ingestion and {peering} are billed where the hub is, not here")
    return Estimate(
        stack=plan.stack, source=plan.source, region=prices["region"], currency=prices["currency"],
        compiled=str(prices["compiled"]), price_source=" ".join(str(prices["source"]).split()),
        resources=priced, free=free, not_priced=missing, shutdown=pricer.shutdown,
        remote_access=[] if spoke else _gateway_options(pricer, plan),
        firewall=[] if spoke else _firewall_options(prices),
        assumptions=dict(prices["assumptions"]), notes=notes,
    )


# ---- rendering --------------------------------------------------------------------------------

def _gbp(value: Decimal) -> str:
    return f"£{_money(value):,.2f}"


def _short(type_token: str) -> str:
    if type_token.startswith("azuread:"):  # azuread:index/application:Application
        return "Entra ID " + type_token.rsplit(":", 1)[-1]
    return type_token.split(":", 1)[1].replace(":", ".")


def render_text(est: Estimate) -> str:
    lines = [f"Monthly cost estimate for stack {est.stack} ({est.source})",
             f"Prices: {est.region}, {est.currency}, pay-as-you-go; table compiled {est.compiled} "
             f"({est.price_source})", ""]
    for resource in est.resources:
        lines.append(f"{_gbp(resource.monthly):>10}  {resource.name}  [{_short(resource.type)}]")
        for item in resource.items:
            lines.append(f"{'':>10}    {_gbp(item.monthly):>9}  {item.item}  ({item.basis})")
    lines += ["", f"{_gbp(est.total):>10}  TOTAL per month ({len(est.resources)} priced resources, "
                  f"{len(est.free)} without charge, {len(est.not_priced)} not priced)"]
    if est.not_priced:
        lines += ["", "Not priced (NOT included in the total):"]
        lines += [f"  {item.name} [{_short(item.type)}]: {item.reason}" for item in est.not_priced]
    if est.shutdown:
        lines += ["", "Auto-shutdown (analytics VMs):"]
        for saving in est.shutdown:
            lines.append(f"  {saving.vm}: {saving.schedule}: {saving.hours_running.normalize():f} h/month, "
                         f"{_gbp(saving.scheduled)} instead of {_gbp(saving.always_on)} always on "
                         f"(saves {_gbp(saving.saving)})")
    for title, options in (("Remote access, side by side (per month):", est.remote_access),
                           ("Azure Firewall (per month, on top of the total):", est.firewall)):
        if options:  # none in a landing zone's spoke: the hub has both
            lines += ["", title]
            lines += [f" {'*' if option.deployed else ' '}{_gbp(option.monthly):>9}  {option.name}: {option.gives}"
                      for option in options]
    lines += ["", "* = what this stack deploys."]
    lines += [f"Note: {note}" for note in est.notes]
    return "\n".join(lines)


def _cell(text: Any) -> str:
    # Names and schedules come from the stack file: escaped so they never become markup.
    return md_text(text)


def render_markdown(est: Estimate, heading_level: int = 2) -> str:
    h = "#" * heading_level
    lines = [f"{h} Monthly cost estimate", "",
             f"Stack {_cell(est.stack)}: **{_gbp(est.total)} a month**, UK list prices ({est.region}, {est.currency}, "
             f"pay-as-you-go), from the price table compiled {est.compiled} ({est.price_source}). "
             "Usage-based lines rest on the assumptions listed below.", "",
             "| Resource | Type | Item | Basis | Monthly |", "|---|---|---|---|---:|"]
    for resource in est.resources:
        for item in resource.items:
            lines.append(f"| {_cell(resource.name)} | {_short(resource.type)} | {_cell(item.item)} | "
                         f"{_cell(item.basis)} | {_gbp(item.monthly)} |")
    lines.append(f"| **Total** | | | | **{_gbp(est.total)}** |")
    lines += ["", f"{len(est.free)} further resources carry no charge of their own "
                  f"({', '.join(sorted({_short(item.type) for item in est.free}))})."]
    if est.not_priced:
        lines += ["", f"{h}# Not priced", "", "These are **not** in the total:", "",
                  "| Resource | Type | Reason |", "|---|---|---|"]
        lines += [f"| {_cell(i.name)} | {_short(i.type)} | {_cell(i.reason)} |" for i in est.not_priced]
    if est.shutdown:
        lines += ["", f"{h}# Auto-shutdown", "", "| VM | Schedule | Hours a month | Always on | Scheduled | Saving |",
                  "|---|---|---:|---:|---:|---:|"]
        for s in est.shutdown:
            lines.append(f"| {_cell(s.vm)} | {_cell(s.schedule)} | {s.hours_running.normalize():f} | "
                         f"{_gbp(s.always_on)} | {_gbp(s.scheduled)} | {_gbp(s.saving)} |")
    for title, options in (("Remote access options", est.remote_access),
                           ("Azure Firewall (not deployed by default)", est.firewall)):
        if not options:
            continue
        lines += ["", f"{h}# {title}", "", "| Option | Monthly | Basis | What it gives |", "|---|---:|---|---|"]
        for option in options:
            name = f"**{_cell(option.name)}** (deployed)" if option.deployed else _cell(option.name)
            lines.append(f"| {name} | {_gbp(option.monthly)} | {_cell(option.basis)} | {_cell(option.gives)} |")
    lines += ["", f"{h}# Assumptions", ""]
    lines += [f"- `{key}`: {_cell(value)}" for key, value in est.assumptions.items()]
    lines += [f"- {_cell(note)}" for note in est.notes]
    return "\n".join(lines)


def _cmd_cost(args: argparse.Namespace) -> int:
    import sys

    from validation.plan_cache import recorded_plan

    print(f"Planning {args.stack_file} offline to price it...", file=sys.stderr)
    est = estimate(recorded_plan(args.stack_file))
    if args.format == "json":
        print(json.dumps(est.to_json(), indent=2))
    elif args.format == "markdown":
        print(render_markdown(est))
    else:
        print(render_text(est))
    return 0


def register(commands: Any) -> None:
    from validation.usage import DEFAULT_STACK

    cost = commands.add_parser(
        "cost", help="estimate the monthly Azure cost of a stack",
        description="Price every resource of the offline plan from the shipped UK South GBP price table, "
                    "with auto-shutdown savings and the remote-access and firewall alternatives.")
    cost.add_argument("stack_file", nargs="?", default=DEFAULT_STACK,
                      help=f"stack file to read (default: {DEFAULT_STACK})")
    cost.add_argument("--format", choices=["text", "json", "markdown"], default="text",
                      help="output format (default: text)")
    cost.set_defaults(handler=_cmd_cost)
