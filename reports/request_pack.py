"""The request pack: one document per stack for a trust's IT and information-governance board.

Every statement in the pack is computed here from something checkable: the offline plan, the
stack's configuration, the rendered cloud-init of each role, the policy results, the flow table,
the price table and the Debian provenance table (reports/debian-trixie-packages.yaml, built
from Debian's own data by docs/tooling/debian_packages.py). The jinja2 templates only lay it out,
as Markdown, and as a standalone HTML page made from the same Markdown.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from blueprints.cloud_init import render_user_data
from blueprints.network_flows import active_flows, endpoint_text
from blueprints.topology import plan_machines
from reports.costing import Estimate, estimate
from validation.plan_model import Plan, PlannedResource

PROVENANCE = Path(__file__).with_name("debian-trixie-packages.yaml")
REPOSITORY = Path(__file__).resolve().parent.parent
ACCEPTANCE = REPOSITORY / "tests" / "acceptance"
TEMPLATES = Path(__file__).with_name("templates")
OUTPUT_DIR = Path("out/request-pack")

# The fourteen NCSC Cloud Security Principles, by number.
NCSC_PRINCIPLES = {
    1: "Data in transit protection",
    2: "Asset protection and resilience",
    3: "Separation between customers",
    4: "Governance framework",
    5: "Operational security",
    6: "Personnel security",
    7: "Secure development",
    8: "Supply chain security",
    9: "Secure user management",
    10: "Identity and authentication",
    11: "External interface protection",
    12: "Secure service administration",
    13: "Audit information and alerting for customers",
    14: "Secure use of the service",
}
_PRINCIPLE = re.compile(r"NCSC Cloud Security Principle (\d+)")

# Azure services in the plan that Microsoft operates and patches.
MANAGED_SERVICES = {
    "azure-native:keyvault:Vault": "Key Vault (secrets)",
    "azure-native:operationalinsights:Workspace": "Log Analytics (logs)",
    "azure-native:recoveryservices:Vault": "Recovery Services vault (backups)",
    "azure-native:network:NatGateway": "NAT gateway (the mirror's Internet egress)",
    "azure-native:network:BastionHost": "Azure Bastion (remote access)",
    "azure-native:privatedns:PrivateZone": "Private DNS zone (internal names)",
}


@dataclass
class Package:
    name: str
    version: str
    source: str
    licence: str
    security_support: str
    in_table: bool


@dataclass
class PinnedFile:
    """Software a machine installs from PyPI or npm rather than Debian, every version pinned in one file."""
    ecosystem: str
    path: str  # where the rendered cloud-init writes the pins on the machine
    pins: list[tuple[str, str]]  # (name, version)


@dataclass
class MachineFacts:
    host: str
    role: str
    subnet: str
    private_ip: str
    vm_size: str
    image: str
    public_ip: bool
    internet_egress: bool
    packages: list[Package]
    pinned: list[PinnedFile]
    unattended_upgrades: bool  # the rendered cloud-init turns on daily unattended upgrades
    patch_mode: str


@dataclass
class ControlRow:
    rule_id: str
    title: str
    severity: str
    passed: bool
    checked: int


@dataclass
class PrincipleRow:
    number: int
    name: str
    controls: list[ControlRow] = field(default_factory=list)


@dataclass
class Risk:
    risk: str
    mitigation: str
    evidence: str


def _provenance() -> dict[str, Any]:
    return yaml.safe_load(PROVENANCE.read_text(encoding="utf-8"))


def role_packages(config: dict[str, Any], machine: Any) -> list[str]:
    """The Debian packages a machine's rendered cloud-init installs."""
    return list(yaml.safe_load(render_user_data(config, machine)).get("packages", []))


_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", re.M)
_NPM_INSTALLER = re.compile(r"/npm/-/npm-([0-9][0-9A-Za-z.-]*)\.tgz")


def pinned_files(user_data: str) -> list[PinnedFile]:
    """The PyPI and npm pins a rendered cloud-init writes (requirements files, package.json), and the
    npm installer it downloads, as the machine will see them."""
    document = yaml.safe_load(user_data) or {}
    found = []
    for entry in document.get("write_files", []):
        path, content = str(entry.get("path", "")), str(entry.get("content", ""))
        if path.endswith("requirements.txt"):
            found.append(PinnedFile("PyPI", path, _REQUIREMENT.findall(content)))
        elif path.endswith("package.json"):
            dependencies = json.loads(content).get("dependencies", {})
            found.append(PinnedFile("npm", path, sorted(dependencies.items())))
    installer = sorted(set(_NPM_INSTALLER.findall(user_data)))
    if installer:
        found.append(PinnedFile("npm", "the npm installer cloud-init downloads (checked against its sha512)",
                                [("npm", version) for version in installer]))
    return found


def acceptance_suites(roles: list[str]) -> list[str]:
    """The lab acceptance suites that exist for these roles, as repository paths."""
    return [f"tests/acceptance/test_{role}.py" for role in sorted(set(roles))
            if (ACCEPTANCE / f"test_{role}.py").exists()]


def _machines(plan: Plan, provenance: dict[str, Any]) -> list[MachineFacts]:
    table = provenance["packages"]
    facts = []
    for machine in plan_machines(plan.config):
        vm = _vm_for(plan, machine.name)
        image = vm.inputs["storageProfile"]["imageReference"]
        linux = vm.inputs["osProfile"].get("linuxConfiguration", {})
        rendered = render_user_data(plan.config, machine).decode()
        packages = []
        for name in role_packages(plan.config, machine):
            row = table.get(name)
            packages.append(Package(name, row["version"], row["source"], row["licence"], row["security_support"], True)
                            if row else Package(name, "", "", "", "", False))
        facts.append(MachineFacts(
            host=machine.name, role=machine.role, subnet=machine.subnet, private_ip=machine.private_ip,
            vm_size=machine.vm_size, image=f"{image['publisher']}/{image['offer']}/{image['sku']}",
            public_ip=machine.public_entry, internet_egress=machine.internet_egress, packages=packages,
            pinned=pinned_files(rendered),
            unattended_upgrades='APT::Periodic::Unattended-Upgrade "1"' in rendered,
            patch_mode=linux.get("patchSettings", {}).get("patchMode", "not set"),
        ))
    return facts


def _vm_for(plan: Plan, host: str) -> PlannedResource:
    for vm in plan.of_type("azure-native:compute:VirtualMachine"):
        if vm.azure_name.endswith(f"-{host}"):
            return vm
    raise LookupError(f"no VM for {host} in the plan")


def _principles(plan: Plan) -> tuple[list[PrincipleRow], int, int]:
    from validation.policies import evaluate

    rows = {number: PrincipleRow(number, name) for number, name in NCSC_PRINCIPLES.items()}
    results = evaluate(plan)
    for result in results:
        for number in sorted({int(n) for n in _PRINCIPLE.findall(result.rule.reference)}):
            if number in rows:
                rows[number].controls.append(ControlRow(result.rule.id, result.rule.title, result.rule.severity,
                                                        result.passed, result.checked))
    return list(rows.values()), sum(r.passed for r in results), len(results)


def _first(plan: Plan, type_token: str) -> PlannedResource | None:
    found = plan.of_type(type_token)
    return found[0] if found else None


def _risks(plan: Plan, machines: list[MachineFacts], est: Estimate) -> list[Risk]:
    config = plan.config
    flows = active_flows(config)
    risks = []
    public = [m.host for m in machines if m.public_ip]
    bastion = _first(plan, "azure-native:network:BastionHost")
    entry = ", ".join(public) if public else ("Azure Bastion" if bastion else "")
    client_flows = [f for f in flows if f.source == "clients"]
    private_flows = [f for f in flows if f.source == "private-clients"]
    if client_flows:
        ports = ", ".join(sorted({str(p) for f in client_flows for p in f.ports}, key=int))
        ranges = ", ".join(config["network"]["allowed_client_ranges"])
        access = (f"Reachable from outside: {entry} only, on ports {ports}, and only from the trust's ranges "
                  f"({ranges}); every NSG ends with deny-all.")
    else:
        access = ("Nothing accepts connections from the Internet (no flow from client ranges); every NSG ends "
                  "with deny-all.")
    if private_flows:
        access += (" The trust's own network (" + ", ".join(config["network"]["private_client_ranges"])
                   + ") reaches " + ", ".join(sorted({f.destination.partition(":")[2] for f in private_flows}))
                   + " only.")
    risks.append(Risk("Unauthorised access from the Internet", access,
                      "flow table (blueprints/network_flows.py); policies TB-NET-001, TB-NET-002, TB-NET-004"))
    egress = sorted({f.source.partition(":")[2] for f in flows if f.destination == "internet"})
    leaving = f"Only these may reach the Internet: {', '.join(egress) or 'nothing'}."
    if "analytics" in config["roles"]:
        leaving += " Analytics VMs have no Internet flow and no public IP."
    risks.append(Risk("Data leaving through the Internet", leaving, "flow table; policies TB-NET-004, TB-NET-006"))
    mirror = config["roles"].get("package_mirror")
    if mirror:
        counts = {name: len(items) for name, items in mirror.get("allowlists", {}).items()}
        listing = ", ".join(f"{count} {name}" for name, count in sorted(counts.items())) or "none"
        served = ("only the listed PyPI, npm and CRAN names are served; anything else is refused with a 403 "
                  "naming the package" if mirror["mode"] == "curated"
                  else "every PyPI, npm and CRAN package upstream is served (`open` mode, asked for by name)")
        risks.append(Risk(
            "A malicious or vulnerable package reaching analysts",
            f"Packages come only through the trust's mirror, in `{mirror['mode']}` mode, with allowlists "
            f"({listing}): {served}; Debian packages only from the stack's Debian upstreams.",
            "stack file roles.package_mirror; blueprints/package_mirror/ (nginx maps, devpi and Verdaccio "
            "settings written by mirror-allowlist); tests/unit/test_mirror_allowlist_tool.py; lab suite "
            "tests/acceptance/test_package_mirror.py"))
    patched = [m.host for m in machines if m.unattended_upgrades]
    pinned = sum(len(f.pins) for m in machines for f in m.pinned)
    beyond_debian = (f"the {pinned} pinned PyPI and npm packages (section 2) change only when the trust changes "
                     "their pins" if pinned else "every package comes from Debian")
    risks.append(Risk(
        "Software left unpatched",
        f"Daily unattended security upgrades on {len(patched)} of {len(machines)} VMs; Azure platform patching "
        f"mode {', '.join(sorted({m.patch_mode for m in machines})) or 'n/a'}; {beyond_debian}.",
        "rendered cloud-init of each role (APT::Periodic::Unattended-Upgrade, pinned files); plan: patchSettings"))
    policy = _first(plan, "azure-native:recoveryservices:ProtectionPolicy")
    if policy:
        retention = policy.inputs["properties"]["retentionPolicy"]
        daily = retention["dailySchedule"]["retentionDuration"]["count"]
        weekly = retention["weeklySchedule"]["retentionDuration"]["count"]
        protected = len(plan.of_type("azure-native:recoveryservices:ProtectedItem"))
        risks.append(Risk(
            "Loss of work or data",
            f"{protected} VM{'s' if protected != 1 else ''} backed up daily to a geo-redundant vault; "
            f"{daily} daily and {weekly} weekly recovery points; soft delete.",
            "plan: ProtectionPolicy daily-vm, ProtectedItem; policy TB-VM-006"))
    vault = _first(plan, "azure-native:keyvault:Vault")
    if vault:
        props = vault.inputs["properties"]
        risks.append(Risk(
            "Secrets exposed",
            f"Secrets only in Key Vault (RBAC {'on' if props.get('enableRbacAuthorization') else 'off'}, purge "
            f"protection {'on' if props.get('enablePurgeProtection') else 'off'}, network default "
            f"{props.get('networkAcls', {}).get('defaultAction', 'Allow')}); each VM may read only its own "
            "secrets; none in cloud-init.",
            "plan: Vault, RoleAssignment scopes; policy TB-VM-009"))
    count = len(est.shutdown)
    shutdown = f"analytics VMs shut down nightly ({count} schedule{'s' if count != 1 else ''}); " if count else ""
    risks.append(Risk(
        "Running costs higher than budgeted",
        f"Estimated £{est.total:,.2f} a month at list price; {shutdown}every resource tagged with owner and "
        "cost centre.",
        "blueprints cost; plan: GlobalSchedule, tags"))
    sources = "Every service is a Debian package patched by Debian's security process"
    if pinned:
        sources += (f", except {pinned} pinned PyPI and npm packages (section 2) that the trust updates by "
                    "changing the pin")
    risks.append(Risk(
        "Dependence on one person or one supplier",
        f"{sources}; the whole environment is described by one stack file and rebuilt by `pulumi up`; see the "
        "exit plan.",
        "rendered cloud-init of each role (packages, pinned files); this repository"))
    return risks


def _exit_facts(plan: Plan) -> dict[str, Any]:
    vault = _first(plan, "azure-native:keyvault:Vault")
    backup_vault = _first(plan, "azure-native:recoveryservices:Vault")
    soft_delete_backup = None
    if backup_vault:
        settings = backup_vault.inputs["properties"].get("securitySettings", {}).get("softDeleteSettings", {})
        soft_delete_backup = settings.get("softDeleteRetentionPeriodInDays")
    disks = []
    for vm in plan.of_type("azure-native:compute:VirtualMachine"):
        for disk in vm.inputs["storageProfile"].get("dataDisks", []):
            disks.append((vm.azure_name, disk["name"], disk["diskSizeGB"]))
    return {
        "key_vault_retention": vault.inputs["properties"].get("softDeleteRetentionInDays") if vault else None,
        "backup_soft_delete": soft_delete_backup,
        "data_disks": sorted(disks),
        "git": "git_server" in plan.config["roles"],
        "resource_group": (_first(plan, "azure-native:resources:ResourceGroup") or PlannedResource(
            "", "", "", "", True, None, [], {})).azure_name,
    }


def _checkov_skips(plan: Plan) -> dict[str, list[str]]:
    """The scanner checks this stack may fail or never runs (validation/checkov-skips.yaml), by id,
    counting only checks that concern a resource of this plan."""
    from reports.checkov_skips_page import concerned_resources
    from validation.checkov_gate import load_skips

    return {section: [check_id for check_id, entry in load_skips(section=section).items()
                      if concerned_resources(plan, entry["resource_type"])]
            for section in ("skips", "not_run")}


def build_context(plan: Plan) -> dict[str, Any]:
    provenance = _provenance()
    machines = _machines(plan, provenance)
    est = estimate(plan)
    principles, passed, total = _principles(plan)
    managed = sorted({label for token, label in MANAGED_SERVICES.items() if plan.of_type(token)})
    return {
        "plan": plan,
        "config": plan.config,
        "resource_count": len(plan.custom_resources()),
        "machines": machines,
        "missing_provenance": sorted({p.name for m in machines for p in m.packages if not p.in_table}),
        "provenance": provenance,
        "managed": managed,
        "flows": [
            {"name": f.name, "source": endpoint_text(f.source, plan.config),
             "destination": endpoint_text(f.destination, plan.config),
             "ports": ", ".join(str(p) for p in f.ports), "purpose": f.purpose}
            for f in active_flows(plan.config)
        ],
        "principles": principles,
        "checkov": _checkov_skips(plan),
        "acceptance_suites": acceptance_suites([m.role for m in machines]),
        "pinned_count": sum(len(f.pins) for m in machines for f in m.pinned),
        "policies_passed": passed,
        "policies_total": total,
        "risks": _risks(plan, machines, est),
        "estimate": est,
        "exit": _exit_facts(plan),
    }


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html.j2"]),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["gbp"] = lambda value: f"£{value:,.2f}"
    env.filters["cell"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    return env


def render(plan: Plan) -> tuple[str, str]:
    """The pack as (Markdown, HTML). The HTML page wraps the same Markdown, converted, so the two never differ."""
    import markdown as markdown_lib
    from markupsafe import Markup

    context = build_context(plan)
    env = _environment()
    text = env.get_template("request-pack.md.j2").render(context)
    body = Markup(markdown_lib.markdown(text, extensions=["tables"], output_format="html"))  # noqa: S704 (our own text)
    return text, env.get_template("request-pack.html.j2").render(context, body=body)


def _cmd_request_pack(args: argparse.Namespace) -> int:
    from validation.plan_cache import recorded_plan  # the Pulumi SDK loads only when a plan is recorded

    print(f"Planning {args.stack_file} offline for its request pack...", file=sys.stderr)
    plan = recorded_plan(args.stack_file)
    markdown, html = render(plan)
    target = Path(args.output)
    target.mkdir(parents=True, exist_ok=True)
    for suffix, text in (("md", markdown), ("html", html)):
        path = target / f"{plan.stack}-request-pack.{suffix}"
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return 0


def register(commands: Any) -> None:
    from validation.usage import DEFAULT_STACK

    pack = commands.add_parser(
        "request-pack", help="write the document a trust's IT and governance board reviews, for one stack",
        description="Write <stack>-request-pack.md and .html: purpose, components with Debian provenance, data "
                    "flows, controls mapped to the NCSC Cloud Security Principles, risks, patching, cost and "
                    "exit plan, all computed from the offline plan and the role configuration.")
    pack.add_argument("stack_file", nargs="?", default=DEFAULT_STACK,
                      help=f"stack file to read (default: {DEFAULT_STACK})")
    pack.add_argument("-o", "--output", default=str(OUTPUT_DIR), help=f"directory to write to (default: {OUTPUT_DIR})")
    pack.set_defaults(handler=_cmd_request_pack)
