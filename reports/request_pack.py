"""The request pack: one document per stack for a trust's IT and information-governance board.

Every statement in the pack is computed here from something checkable: the offline plan, the
stack's configuration, the rendered cloud-init of each role, the policy results, the flow table,
the price table, the Debian provenance table (reports/debian-trixie-packages.yaml, built
from Debian's own data by docs/tooling/debian_packages.py) and the control mapping to the SATRE
specification (reports/satre-v2-technical.yaml). The jinja2 templates only lay it out: as
Markdown, as a standalone HTML page made from the same Markdown, and as a PDF of that page
(WeasyPrint). Every value reaches the Markdown through md_text, so stack values never become markup.
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
from markupsafe import Markup

from blueprints.airlock_egress import egress_settings
from blueprints.analytics.origins import own_origins
from blueprints.cloud_init import render_user_data
from blueprints.data_sources import DATA_SOURCE_KINDS, declared_data_sources
from blueprints.landing_zone import creates_spoke, firewall_rules, hub_requests
from blueprints.network_flows import active_flows, endpoint_text
from blueprints.topology import plan_machines, private_dns_zone
from reports.costing import Estimate, estimate
from reports.markdown_text import markdown_to_html, md_text
from validation.plan_model import Plan, PlannedResource
from validation.plan_report import image_name

PROVENANCE = Path(__file__).with_name("debian-trixie-packages.yaml")
SATRE = Path(__file__).with_name("satre-v2-technical.yaml")
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

    @property
    def support(self) -> str:
        """The support level alone ('regular', 'limited', 'ended'); the pack explains the words once."""
        return self.security_support.split(" (", 1)[0]

    @property
    def licence_short(self) -> str:
        return "see its copyright file" if self.licence.startswith("not machine-readable") else self.licence


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

    @property
    def result(self) -> str:
        """The word `blueprints plan` prints for the rule's result."""
        if self.checked == 0:
            return "n/a"
        return "pass" if self.passed else ("FAIL" if self.severity == "mandatory" else "warn")


@dataclass
class PrincipleRow:
    number: int
    name: str
    controls: list[ControlRow] = field(default_factory=list)
    note: str = ""  # what covers the principle besides the rules: the mirror, the trust's process


@dataclass
class PolicyCounts:
    """The policy results counted as `blueprints plan` counts them (validation/policies/report.py)."""
    passed: int
    failed: int  # mandatory rules with a violation
    warned: int  # advisory rules with a violation
    not_applicable: int  # nothing of the rule's type in this plan
    total: int


@dataclass
class RoleFacts:
    """One role as the board sees it: its machines once, and what it installs once."""
    role: str
    summary: str
    hosts: list[str]
    subnet: str
    vm_size: str
    packages: list[Package]
    pinned: list[PinnedFile]


@dataclass
class Risk:
    risk: str
    likelihood: int  # before the controls, 1 (rare) to 5 (almost certain)
    impact: int  # 1 (negligible) to 5 (severe)
    controls: str
    evidence: str
    residual_likelihood: int  # with the controls in place; the impact is unchanged
    owner: str

    @property
    def inherent(self) -> int:
        return self.likelihood * self.impact

    @property
    def residual(self) -> int:
        return self.residual_likelihood * self.impact

    @property
    def rating(self) -> str:
        return "High" if self.residual >= 15 else "Medium" if self.residual >= 8 else "Low"


@dataclass
class StatementRow:
    id: str
    importance: str
    statement: str
    status: str  # met | trust | not-met
    reason: str
    evidence: list[str]


@dataclass
class DsptRow:
    outcome: str
    name: str
    blueprint: str  # what the environment provides towards the outcome
    trust: str  # what the trust's own evidence must add
    evidence: list[str]


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
            vm_size=machine.vm_size, image=image_name(image),
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


def _first(plan: Plan, type_token: str) -> PlannedResource | None:
    found = plan.of_type(type_token)
    return found[0] if found else None


def _roles(config: dict[str, Any], machines: list[MachineFacts]) -> list[RoleFacts]:
    """Each role once: its machines, and the packages and pins its cloud-init installs (the same on every
    machine of the role, so listed once)."""
    from blueprints.roles import all_roles

    summaries = {declared.name: declared.summary for declared in all_roles()}
    rows: dict[str, RoleFacts] = {}
    for machine in machines:
        row = rows.get(machine.role)
        if row is None:
            rows[machine.role] = RoleFacts(machine.role, summaries.get(machine.role, ""), [machine.host],
                                           machine.subnet, machine.vm_size, list(machine.packages),
                                           list(machine.pinned))
            continue
        row.hosts.append(machine.host)
        row.packages += [p for p in machine.packages if p.name not in {known.name for known in row.packages}]
        row.pinned += [f for f in machine.pinned if f.path not in {known.path for known in row.pinned}]
    return list(rows.values())


def shared_packages(roles: list[RoleFacts]) -> list[Any]:
    """The packages every role installs (the host hardening they share, among others), listed once in
    the appendix instead of once per role; empty with fewer than two roles."""
    if len(roles) < 2:
        return []
    common = set.intersection(*({p.name for p in role.packages} for role in roles))
    return [p for p in roles[0].packages if p.name in common]


def stack_facts(config: dict[str, Any]) -> dict[str, bool]:
    """Facts of a stack that decide which statements of the pack apply (and the cases of the SATRE mapping)."""
    roles = config["roles"]
    gateway = roles.get("gateway") or {}
    mirror = roles.get("package_mirror") or {}
    facts = {
        "analytics": "analytics" in roles,
        "git_server": "git_server" in roles,
        "package_mirror": "package_mirror" in roles,
        "curated_mirror": mirror.get("mode") == "curated",
        "self_hosted_gateway": gateway.get("kind") == "self-hosted",
        "bastion": gateway.get("kind") == "bastion",
    }
    facts.update({f"no_{name}": not facts[name] for name in ("analytics", "git_server", "package_mirror")})
    facts["not_curated_mirror"] = not facts["curated_mirror"]
    facts["no_remote_access"] = "gateway" not in roles
    return facts


def _policy_results(plan: Plan) -> tuple[list[Any], PolicyCounts]:
    from validation.policies import evaluate

    results = evaluate(plan)
    rows = [ControlRow(r.rule.id, r.rule.title, r.rule.severity, r.passed, r.checked) for r in results]
    counts = PolicyCounts(
        passed=sum(1 for row in rows if row.result == "pass"),
        failed=sum(1 for row in rows if row.result == "FAIL"),
        warned=sum(1 for row in rows if row.result == "warn"),
        not_applicable=sum(1 for row in rows if row.result == "n/a"),
        total=len(rows))
    return list(zip(results, rows, strict=True)), counts


def _supply_chain_note(config: dict[str, Any], facts: dict[str, bool]) -> str:
    if not facts["package_mirror"]:
        return "No package mirror in this stack: the trust's own supply-chain controls apply."
    mode = config["roles"]["package_mirror"]["mode"]
    served = ("only allowlisted PyPI, npm and CRAN names, each addition reviewed in Git"
              if mode == "curated" else "every upstream package (open mode: no allowlist applies)")
    proofs = ", ".join((
        "tests/acceptance/test_package_mirror.py::test_pip_refuses_a_project_off_the_allowlist_and_says_why",
        "tests/unit/test_mirror_allowlist_tool.py::test_devpi_serves_only_listed_projects_in_curated_mode",
        "tests/render/test_package_mirror_render.py::test_apt_cacher_ng_uses_the_stack_upstreams_and_only_those",
        "tests/render/test_package_mirror_render.py::test_every_python_package_is_pinned_exactly_with_its_hash",
    ))
    return (f"The package mirror is the supply-chain control: analytics VMs have no other route to software; it "
            f"serves {served}; apt only from the stack's Debian upstreams; its own PyPI and npm software pinned "
            f"exactly, with hashes. Tests: {proofs}. Every Debian package's source, licence and security support: "
            "appendix A.")


def _principles(plan: Plan, rows: list[ControlRow], facts: dict[str, bool]) -> list[PrincipleRow]:
    principles = {number: PrincipleRow(number, name) for number, name in NCSC_PRINCIPLES.items()}
    by_id = {row.rule_id: row for row in rows}
    from validation.policies import RULES

    for rule in RULES:
        for number in sorted({int(n) for n in _PRINCIPLE.findall(rule.reference)}):
            if number in principles:
                principles[number].controls.append(by_id[rule.id])
    principles[6].note = "The trust's own vetting of administrators and analysts."
    principles[7].note = ("This repository: every policy rule has a violating and a passing fixture "
                          "(tests/policy/test_rules.py), the lab runs each role's acceptance suite.")
    principles[8].note = _supply_chain_note(plan.config, facts)
    if facts["self_hosted_gateway"]:
        principles[12].note = ("Administration only through the jump host with an SSH key and a TOTP code "
                               "(tests/acceptance/test_gateway.py::test_key_alone_is_refused); Azure roles are the "
                               "trust's.")
    elif facts["bastion"]:
        principles[12].note = "Administration only through Azure Bastion, under the trust's Azure roles."
    else:
        principles[12].note = "Administration from the trust's own network with SSH keys; Azure roles are the trust's."
    return list(principles.values())


def _satre(facts: dict[str, bool]) -> tuple[dict[str, str], list[StatementRow]]:
    document = yaml.safe_load(SATRE.read_text(encoding="utf-8"))
    rows = []
    for entry in document["statements"]:
        chosen = next((case for case in entry.get("cases", []) if facts[case["when"]]), entry)
        rows.append(StatementRow(entry["id"], entry["importance"], entry["statement"], chosen["status"],
                                 chosen["reason"], list(chosen["evidence"])))
    return document["source"], rows


def _dspt(facts: dict[str, bool]) -> list[DsptRow]:
    """The CAF-aligned DSPT outcomes the environment gives evidence towards; every other outcome is the trust's."""
    access = ("Entra ID single sign-on for the group the stack names, and SSH with a key and a TOTP code"
              if facts["self_hosted_gateway"] else "Azure Bastion under the trust's Entra ID sign-in"
              if facts["bastion"] else "SSH keys from the trust's own network")
    rows = [
        DsptRow("A3.a", "Asset management", "every resource in the plan, tagged with owner, cost centre and "
                "classification", "the trust's asset register", ["TB-GOV-001"]),
        DsptRow("A4.a", "Supply chain", "software only from Debian and the trust's mirror; provenance in "
                "appendix A" if facts["package_mirror"] else "software only from Debian; provenance in appendix A",
                "Microsoft's assurances under the trust's Azure agreement", ["TB-NET-006"]),
        DsptRow("B2.a", "Identity verification, authentication and authorisation", access,
                "joiners, movers and leavers in Entra ID and the stack file", ["TB-VM-003"]),
        DsptRow("B2.c", "Privileged user management", "one break-glass administrator by SSH key; no Owner, "
                "Contributor or User Access Administrator grants", "who holds Azure roles", ["TB-ID-001", "TB-KV-002"]),
        DsptRow("B3.b", "Data in transit", "TLS 1.2 or newer and SSH on every connection", "none",
                ["TB-ST-001", "TB-ST-002"]),
        DsptRow("B3.c", "Stored data", "encryption at host on every VM, Azure Storage encryption", "keys if "
                "customer-managed keys are required", ["TB-VM-002"]),
        DsptRow("B4.b", "Secure configuration", "Trusted Launch, SSH keys only, policy rules on every plan",
                "change control for the stack file", ["TB-VM-001", "TB-VM-003"]),
        DsptRow("B4.d", "Vulnerability management", "daily unattended security upgrades; Azure platform patching",
                "vulnerability scanning and its follow-up", ["TB-VM-010"]),
        DsptRow("B5.c", "Backups", "daily Azure Backup to a geo-redundant vault with soft delete",
                "restore tests on the trust's schedule", ["TB-VM-006", "TB-BK-001"]),
        DsptRow("C1.a", "Monitoring coverage", "syslog of every VM in the environment's Log Analytics workspace",
                "alert rules and who reviews them", ["TB-VM-004", "TB-VM-005"]),
        DsptRow("C1.b", "Securing logs", "logs leave the VM and are kept at least 30 days", "longer retention "
                "if the trust's policy asks", ["TB-LOG-001"]),
    ]
    return rows


def _data_protection(plan: Plan, machines: list[MachineFacts], facts: dict[str, bool]) -> dict[str, Any]:
    """Where data lives, who reaches it and how long it is kept, read from the plan and the stack."""
    from blueprints.roles import all_roles

    config = plan.config
    layouts = {declared.name: declared.data_disk for declared in all_roles()}
    disks = {vm: (name, size) for vm, name, size in _exit_facts(plan)["data_disks"]}
    stores = []
    for machine in machines:
        layout = layouts.get(machine.role)
        vm = _vm_for(plan, machine.host).azure_name
        if layout and machine.role in ("analytics", "git_server") and vm in disks:
            stores.append((f"{machine.host}: {', '.join(layout.directories)}",
                           f"data disk {disks[vm][0]}, {disks[vm][1]} GB, encrypted at host"))
    git = config["roles"].get("git_server")
    if git:
        backup = git["backup"]
        where = f"{backup['directory']} on the Git server's OS disk"
        if backup["target"] in ("auto", "azure-blob"):
            where += " and the environment's Blob container (HTTPS only, no shared keys)"
        stores.append(("Git bundles, nightly", f"{where}; newest {git['backup_generations']} kept"))
    policy = _first(plan, "azure-native:recoveryservices:ProtectionPolicy")
    vault = _first(plan, "azure-native:recoveryservices:Vault")
    retention = ""
    if policy and vault:
        kept = policy.inputs["properties"]["retentionPolicy"]
        redundancy = vault.inputs["properties"].get("redundancySettings", {}).get("standardTierStorageRedundancy", "")
        retention = (f"{kept['dailySchedule']['retentionDuration']['count']} daily and "
                     f"{kept['weeklySchedule']['retentionDuration']['count']} weekly recovery points")
        stores.append(("VM backups", f"Recovery Services vault {vault.azure_name} ({redundancy}: a copy in the "
                                     "paired UK region), " + retention))
    workspace = _first(plan, "azure-native:operationalinsights:Workspace")
    log_days = workspace.inputs.get("retentionInDays") if workspace else None
    if workspace:
        stores.append(("Logs (sign-ins, commands refused, service events: account names and addresses)",
                       f"Log Analytics workspace {workspace.azure_name}, {log_days} days"))
    if facts["self_hosted_gateway"]:
        identity = config["roles"]["gateway"]["identity"]
        reach = (f"analysts signed in with Entra ID and members of group {identity['allowed_group']}, from the "
                 f"trust's client ranges only")
    elif facts["bastion"]:
        reach = "people the trust grants Azure Bastion access in its Azure roles, from the trust's client ranges"
    else:
        reach = "machines on the trust's own network (" + ", ".join(config["network"]["private_client_ranges"]) + ")"
    git_users = len(git["users"]) if git else 0
    sources = [f"{source['name']} ({source['kind']}, {source['range']} port {source['port']}; "
               f"{DATA_SOURCE_KINDS[source['kind']].client})" for source in declared_data_sources(config)]
    return {
        "classification": config["tags"]["data_classification"],
        "sources": sources,
        "stores": stores,
        "reach": reach,
        "git_users": git_users,
        "admin_keys": len(config["admin"]["ssh_public_keys"]),
        "backup_retention": retention,
        "log_days": log_days,
        "region": config["location"],
    }


def _risks(plan: Plan, machines: list[MachineFacts], est: Estimate, facts: dict[str, bool]) -> list[Risk]:
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
        if facts["self_hosted_gateway"]:
            access += " Web tools behind Entra ID single sign-on; SSH needs a key and a TOTP code."
    else:
        access = ("Nothing accepts connections from the Internet (no flow from client ranges); every NSG ends "
                  "with deny-all.")
    if private_flows:
        access += (" The trust's own network (" + ", ".join(config["network"]["private_client_ranges"])
                   + ") reaches " + ", ".join(sorted({f.destination.partition(":")[2] for f in private_flows}))
                   + " only.")
    risks.append(Risk("Unauthorised access from the Internet", 4, 5, access,
                      "flow table (blueprints/network_flows.py); TB-NET-001, TB-NET-002, TB-NET-004",
                      1, "IT security"))
    egress = sorted({f.source.partition(":")[2] for f in flows if f.destination == "internet"})
    leaving = f"Only these may reach the Internet: {', '.join(egress) or 'nothing'}."
    if facts["analytics"] and egress_settings(config):
        leaving += (" Analytics VMs have no Internet flow and no public IP. Results leave through review: an "
                    "output checker who is not the author approves each proposal in the Git server's outputs "
                    "repository, and only then are exactly its files published to the airlock's egress container, "
                    "which only the readers' group reads (TB-ST-007; docs/outputs.md). An authorised analyst can "
                    "still copy text through the browser.")
    elif facts["analytics"]:
        leaving += (" Analytics VMs have no Internet flow and no public IP. An authorised analyst can still "
                    "download results or copy text through the browser: no airlock checks outputs.")
    risks.append(Risk("Data leaving the environment", 3, 5, leaving,
                      "flow table; TB-NET-004, TB-NET-006; SATRE 2.1.01 (not met)",
                      3 if facts["analytics"] else 1, "SIRO, with the Caldicott Guardian"))
    mirror = config["roles"].get("package_mirror")
    if mirror:
        counts = {name: len(items) for name, items in mirror.get("allowlists", {}).items()}
        listing = ", ".join(f"{count} {name}" for name, count in sorted(counts.items())) or "none"
        served = ("only the listed PyPI, npm and CRAN names are served; anything else is refused with a 403 "
                  "naming the package" if mirror["mode"] == "curated"
                  else "every PyPI, npm and CRAN package upstream is served (open mode, asked for by name)")
        risks.append(Risk(
            "A malicious or vulnerable package reaching analysts", 3, 4,
            f"Packages come only through the trust's mirror, in {mirror['mode']} mode, with allowlists "
            f"({listing}): {served}; Debian packages only from the stack's Debian upstreams.",
            "stack file roles.package_mirror; tests/unit/test_mirror_allowlist_tool.py; "
            "tests/acceptance/test_package_mirror.py", 2 if mirror["mode"] == "curated" else 3, "IT security"))
    patched = [m.host for m in machines if m.unattended_upgrades]
    pinned = sum(len(f.pins) for m in machines for f in m.pinned)
    beyond_debian = (f"the {pinned} pinned PyPI and npm packages (appendix A) change only when the trust changes "
                     "their pins" if pinned else "every package comes from Debian")
    risks.append(Risk(
        "Software left unpatched", 3, 4,
        f"Daily unattended security upgrades on {len(patched)} of {len(machines)} VMs; Azure platform patching "
        f"mode {', '.join(sorted({m.patch_mode for m in machines})) or 'n/a'}; {beyond_debian}.",
        "rendered cloud-init of each role (APT::Periodic::Unattended-Upgrade); plan: patchSettings; TB-VM-010",
        1 if len(patched) == len(machines) else 3, "Platform team"))
    policy = _first(plan, "azure-native:recoveryservices:ProtectionPolicy")
    if policy:
        retention = policy.inputs["properties"]["retentionPolicy"]
        daily = retention["dailySchedule"]["retentionDuration"]["count"]
        weekly = retention["weeklySchedule"]["retentionDuration"]["count"]
        protected = len(plan.of_type("azure-native:recoveryservices:ProtectedItem"))
        risks.append(Risk(
            "Loss of work or data", 2, 4,
            f"{protected} VM{'s' if protected != 1 else ''} backed up daily to a geo-redundant vault; "
            f"{daily} daily and {weekly} weekly recovery points; soft delete.",
            "plan: ProtectionPolicy, ProtectedItem; TB-VM-006, TB-BK-001", 1, "Platform team"))
    vault = _first(plan, "azure-native:keyvault:Vault")
    if vault:
        props = vault.inputs["properties"]
        risks.append(Risk(
            "Secrets exposed", 2, 5,
            f"Secrets only in Key Vault (RBAC {'on' if props.get('enableRbacAuthorization') else 'off'}, purge "
            f"protection {'on' if props.get('enablePurgeProtection') else 'off'}, network default "
            f"{props.get('networkAcls', {}).get('defaultAction', 'Allow')}); each VM may read only its own "
            "secrets; none in cloud-init.", "plan: Vault, RoleAssignment scopes; TB-VM-009, TB-KV-001", 1,
            "Platform team"))
    risks.append(Risk(
        "Personal data processed without a lawful basis or DPIA", 3, 5,
        "This pack answers the DPIA's technical questions (section 4); the trust's DPIA, lawful basis and "
        "data-sharing approvals come before any personal data is loaded.", "section 4 of this pack", 2,
        "Data Protection Officer"))
    risks.append(Risk(
        "Access kept after a person leaves or changes role", 3, 4,
        ("Web access follows membership of one Entra ID group; " if facts["self_hosted_gateway"] else "")
        + "SSH and Git access are per person in the stack file, removed by the next deployment.",
        "stack file; tests/acceptance/test_gateway.py::test_user_outside_the_group_is_refused"
        if facts["self_hosted_gateway"] else "stack file", 2, "Service owner"))
    if facts["self_hosted_gateway"] and facts["analytics"]:
        separate = own_origins(plan.config) is not None
        risks.append(Risk(
            "One analyst acting as another through the browser", 3, 4,
            ("Each analyst's Jupyter server is on a web origin of its own; " if separate else
             "Analysts' Jupyter servers share the gateway's web origin (a Let's Encrypt certificate has no "
             "wildcard names); ")
            + "the gateway's session cookie is host-only and never reaches a tool, and each hub checks its "
              "cookie against the person the gateway names.",
            "docs/architecture.md, One origin per analyst; tests/acceptance/test_own_origins.py"
            if separate else "docs/architecture.md, One origin per analyst", 1 if separate else 3,
            "Service owner"))
    count = len(est.shutdown)
    shutdown = f"analytics VMs shut down nightly ({count} schedule{'s' if count != 1 else ''}); " if count else ""
    risks.append(Risk(
        "Running costs higher than budgeted", 3, 2,
        f"Estimated £{est.total:,.2f} a month at list price; {shutdown}every resource tagged with owner and "
        "cost centre.", "blueprints cost; plan: GlobalSchedule, tags; TB-GOV-001", 2, "Budget holder"))
    sources = "Every service is a Debian package patched by Debian's security process"
    if pinned:
        sources += f", except {pinned} pinned PyPI and npm packages (appendix A)"
    risks.append(Risk(
        "Dependence on one person or one supplier", 3, 3,
        f"{sources}; the whole environment is one stack file rebuilt by pulumi up; see the exit plan.",
        "rendered cloud-init of each role; this repository", 2, "Service owner"))
    return risks


def _purpose(config: dict[str, Any], facts: dict[str, bool]) -> str:
    tools = []
    if facts["analytics"]:
        tools.append("R, Python and JupyterLab on Linux virtual machines")
    if facts["git_server"]:
        tools.append("Git hosting with reviewed main branches")
    if facts["package_mirror"]:
        tools.append("a package mirror the trust curates (apt, PyPI, CRAN, npm)" if facts["curated_mirror"]
                      else "a package mirror of apt, PyPI, CRAN and npm")
    if facts["self_hosted_gateway"]:
        access = "reached from the trust's client ranges through single sign-on and an SSH jump host"
    elif facts["bastion"]:
        access = "reached through Azure Bastion from the trust's client ranges"
    else:
        access = "used from the trust's own network by its existing machines"
    listed = ", ".join(tools[:-1]) + (" and " if len(tools) > 1 else "") + tools[-1] if tools else "no tools"
    return f"A secure place in {config['trust']['name']}'s Azure subscription for {listed}, {access}."


def _exit_facts(plan: Plan) -> dict[str, Any]:
    vault = _first(plan, "azure-native:keyvault:Vault")
    backup_vault = _first(plan, "azure-native:recoveryservices:Vault")
    soft_delete_backup = None
    if backup_vault:
        settings = backup_vault.inputs["properties"].get("securitySettings", {}).get("softDeleteSettings", {})
        soft_delete_backup = settings.get("softDeleteRetentionPeriodInDays")
    disks = []
    by_id = plan.by_id()
    for vm in plan.of_type("azure-native:compute:VirtualMachine"):
        for disk in vm.inputs["storageProfile"].get("dataDisks", []):
            if "name" in disk:  # a disk declared inside the VM
                disks.append((vm.azure_name, disk["name"], disk["diskSizeGB"]))
                continue
            attached = by_id.get(disk.get("managedDisk", {}).get("id", ""))  # a disk of its own, attached
            if attached is not None:
                disks.append((vm.azure_name, attached.azure_name, attached.inputs["diskSizeGB"]))
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
    facts = stack_facts(plan.config)
    paired, counts = _policy_results(plan)
    rows = [row for _, row in paired]
    satre_source, satre = _satre(facts)
    managed = sorted({label for token, label in MANAGED_SERVICES.items() if plan.of_type(token)})
    roles = _roles(plan.config, machines)
    return {
        "plan": plan,
        "config": plan.config,
        "facts": facts,
        "purpose": _purpose(plan.config, facts),
        "resource_count": len(plan.custom_resources()),
        "machines": machines,
        "roles": roles,
        "shared_packages": shared_packages(roles),
        "missing_provenance": sorted({p.name for m in machines for p in m.packages if not p.in_table}),
        "provenance": provenance,
        "managed": managed,
        "flows": [
            {"name": f.name, "source": endpoint_text(f.source, plan.config),
             "destination": endpoint_text(f.destination, plan.config),
             "ports": ", ".join(str(p) for p in f.ports), "purpose": f.purpose}
            for f in active_flows(plan.config)
        ],
        "principles": _principles(plan, rows, facts),
        "policies": counts,
        "failing": [row for row in rows if row.result in ("FAIL", "warn")],
        "satre": satre,
        "satre_source": satre_source,
        "satre_counts": {status: sum(1 for row in satre if row.status == status)
                         for status in ("met", "trust", "not-met")},
        "dspt": _dspt(facts),
        "data": _data_protection(plan, machines, facts),
        "checkov": _checkov_skips(plan),
        "acceptance_suites": acceptance_suites([m.role for m in machines]),
        "pinned_count": sum(len(f.pins) for r in roles for f in r.pinned),
        "risks": _risks(plan, machines, est, facts),
        "estimate": est,
        "exit": _exit_facts(plan),
        # A landing zone's spoke: what the hub team changes, and the firewall rules the mirror needs.
        "hub": hub_requests(plan.config, private_dns_zone(plan.config)),
        "firewall_rules": firewall_rules(plan.config) if plan.config["network"].get("landing_zone") else [],
        "spoke_created": creates_spoke(plan.config),
    }


def _environment() -> jinja2.Environment:
    # Markdown templates escape every printed value (finalize); the HTML template is autoescaped.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html.j2"]),
        finalize=lambda value: value if isinstance(value, Markup) else md_text(value),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["gbp"] = lambda value: f"£{value:,.2f}"
    return env


def _diagram_uri(plan: Plan) -> str:
    import base64

    from reports.reference_docs import render_dot, render_svg

    # Top to bottom: the portrait page is taller than it is wide.
    return "data:image/svg+xml;base64," + base64.b64encode(render_svg(render_dot(plan, rankdir="TB"))).decode("ascii")


def render(plan: Plan, diagram: str = "architecture.svg") -> tuple[str, str]:
    """The pack as (Markdown, HTML). The Markdown shows the diagram from the file `diagram` beside it; the HTML
    page is the same Markdown converted (raw HTML off), with the diagram embedded so the page stands alone."""
    context = build_context(plan)
    env = _environment()
    template = env.get_template("request-pack.md.j2")
    text = template.render(context, diagram=Markup(diagram))  # noqa: S704 (a file name the code chooses)
    embedded = template.render(context, diagram=Markup(_diagram_uri(plan)))  # noqa: S704 (base64 of our SVG)
    body = Markup(markdown_to_html(embedded))  # noqa: S704 (markdown_to_html passes no raw HTML through)
    return text, env.get_template("request-pack.html.j2").render(context, body=body)


def render_pdf(html: str) -> bytes:
    """The HTML page printed to PDF by WeasyPrint (A4, page numbers from the page's own print styles)."""
    from validation.usage import UsageError

    try:
        import weasyprint
    except OSError as error:  # WeasyPrint loads Pango when imported
        raise UsageError(f"the PDF cannot be written: WeasyPrint needs Pango ({error}); install the Debian "
                         "packages in tests/host-packages.txt (make host-deps)") from None
    return weasyprint.HTML(string=html).write_pdf()


def _cmd_request_pack(args: argparse.Namespace) -> int:
    from reports.reference_docs import render_dot, render_svg
    from validation.plan_cache import recorded_plan  # the Pulumi SDK loads only when a plan is recorded
    from validation.usage import UsageError

    target = Path(args.output)
    if target.exists() and not target.is_dir():
        raise UsageError(f"request-pack -o {args.output}: exists and is not a directory; give a directory to "
                         "write the pack into")
    print(f"Planning {args.stack_file} offline for its request pack...", file=sys.stderr)
    plan = recorded_plan(args.stack_file)
    diagram = f"{plan.stack}-architecture.svg"
    markdown, html = render(plan, diagram=diagram)
    files = {diagram: render_svg(render_dot(plan, rankdir="TB")), f"{plan.stack}-request-pack.md": markdown.encode(),
             f"{plan.stack}-request-pack.html": html.encode()}
    if not args.no_pdf:
        files[f"{plan.stack}-request-pack.pdf"] = render_pdf(html)
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (target / name).write_bytes(content)
            print(f"wrote {target / name}", file=sys.stderr)
    except OSError as error:
        raise UsageError(f"request-pack -o {args.output}: cannot write there ({error.strerror})") from None
    return 0


def register(commands: Any) -> None:
    from validation.usage import DEFAULT_STACK

    pack = commands.add_parser(
        "request-pack", help="write the board paper a trust's IT and governance board reviews, for one stack",
        description="Write <stack>-request-pack.md, .html and .pdf and the architecture diagram: the decision asked "
                    "for, owners and sign-off, the environment, data flows and data protection, a risk register, "
                    "controls mapped to the SATRE specification v2, the NCSC Cloud Security Principles and the "
                    "DSPT, patching, cost, exit plan and package provenance, all computed from the offline plan "
                    "and the role configuration.")
    pack.add_argument("stack_file", nargs="?", default=DEFAULT_STACK,
                      help=f"stack file to read (default: {DEFAULT_STACK})")
    pack.add_argument("-o", "--output", default=str(OUTPUT_DIR), help=f"directory to write to (default: {OUTPUT_DIR})")
    pack.add_argument("--no-pdf", action="store_true", help="write the Markdown and HTML only (no WeasyPrint needed)")
    pack.set_defaults(handler=_cmd_request_pack)
