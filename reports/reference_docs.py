"""Reference pages generated from each stack's offline plan: diagram, resources, flows, cost.

`blueprints docs` writes docs/reference/<stack>/ for every stack file in stacks/, and
docs/reference/checkov-skips.md: the scanner checks the stacks (those documented and every file in
stacks/) may fail or never run, with the reasons from validation/checkov-skips.yaml and the resources
each concerns. Output depends
only on the stack file and the code (sorted everywhere, no dates), so a test can regenerate it
and compare bytes: a change to a blueprint that is not reflected in the committed reference fails
the suite with the command to run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blueprints.data_sources import declared_data_sources
from blueprints.network_flows import Flow, active_flows, endpoint_text
from blueprints.topology import plan_machines
from reports import change_matrix
from reports.costing import estimate, render_markdown
from reports.markdown_text import md_text
from validation.plan_model import Plan, PlannedResource
from validation.plan_report import resource_details

REFERENCE_DIR = Path("docs/reference")
STACKS_DIR = Path("stacks")
PNG_DIR = Path("out/diagrams")
REGENERATE = "blueprints docs"


@dataclass(frozen=True)
class _Machine:
    node: str
    vm: PlannedResource
    host: str
    role: str
    private_ip: str
    subnet_id: str
    public_ip: str | None  # the Azure name of its public IP, if any


@dataclass(frozen=True)
class _Subnet:
    node: str
    resource: PlannedResource
    prefix: str
    nat: str | None  # the NAT gateway's Azure name when the subnet has Internet egress


class _Drawing:
    """The plan read as a picture: subnets, machines, entry points and the flows between them."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        by_id = plan.by_id()
        self.subnets: dict[str, _Subnet] = {}
        for index, subnet in enumerate(sorted(plan.of_type("azure-native:network:Subnet"),
                                              key=lambda s: s.inputs["addressPrefix"])):
            nat = subnet.inputs.get("natGateway", {}).get("id")
            self.subnets[subnet.id] = _Subnet(f"cluster_subnet{index}", subnet, subnet.inputs["addressPrefix"],
                                              by_id[nat].azure_name if nat in by_id else None)
        roles = {m.private_ip: m for m in plan_machines(plan.config)}
        self.machines: list[_Machine] = []
        for vm in plan.of_type("azure-native:compute:VirtualMachine"):
            nic = by_id[vm.inputs["networkProfile"]["networkInterfaces"][0]["id"]]
            config = nic.inputs["ipConfigurations"][0]
            public = config.get("publicIPAddress", {}).get("id")
            topo = roles[config["privateIPAddress"]]
            self.machines.append(_Machine(
                node=f"vm_{topo.name.replace('-', '_')}", vm=vm, host=topo.name, role=topo.role,
                private_ip=config["privateIPAddress"], subnet_id=config["subnet"]["id"],
                public_ip=by_id[public].azure_name if public in by_id else None))
        self.machines.sort(key=lambda m: tuple(int(part) for part in m.private_ip.split(".")))
        self.bastions = []
        for host in plan.of_type("azure-native:network:BastionHost"):
            config = host.inputs["ipConfigurations"][0]
            public = config.get("publicIPAddress", {}).get("id")
            self.bastions.append((host, config["subnet"]["id"], by_id[public].azure_name if public in by_id else None))

    def endpoint_nodes(self, endpoint: str) -> list[str]:
        kind, _, value = endpoint.partition(":")
        if endpoint == "clients":
            return ["clients"]
        if endpoint == "private-clients":
            return ["private_clients"]
        if endpoint == "hub-bastion":
            return ["hub_bastion"]
        if endpoint == "internet":
            return ["internet"]
        if kind == "tag":
            return [f"tag_{value}"]
        if kind == "data-source":
            return [_data_source_node(value)]
        if kind == "role":
            return [m.node for m in self.machines if m.role == value]
        if value == "*":
            return ["vnet"]
        if value == "bastion":
            return ["bastion"]
        return [m.node for m in self.machines if self.subnets[m.subnet_id].node == self._subnet_node(value)]

    def _subnet_node(self, name: str) -> str:
        for subnet in self.subnets.values():
            if subnet.resource.azure_name.endswith(f"-{name}"):
                return subnet.node
        return ""


def _data_source_node(name: str) -> str:
    return "data_" + name.replace("-", "_")


# Stack text (a data source's description) reaches labels and tooltips, and from them the SVG: Graphviz
# turns these entities back into the characters in the drawing, so none is ever markup in the files.
_DOT_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "{": "&#123;", "}": "&#125;",
                               "[": "&#91;", "]": "&#93;"})


def _quote(text: str) -> str:
    return '"' + text.translate(_DOT_ENTITIES).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ports(flow: Flow) -> str:
    return ", ".join(str(port) for port in flow.ports)


def _internet_ports(drawing: _Drawing, config: dict[str, Any]) -> dict[str, list[str]]:
    """Subnet id -> the ports its machines (or Azure Bastion) may open to the Internet, from the flow table."""
    subnet_of = {m.node: m.subnet_id for m in drawing.machines}
    for _, subnet_id, _ in drawing.bastions:  # the drawing has one Bastion node at most
        subnet_of["bastion"] = subnet_id
    ports: dict[str, list[str]] = {}
    for flow in active_flows(config):
        if flow.destination == "internet":
            for source in drawing.endpoint_nodes(flow.source):
                if source in subnet_of:
                    ports.setdefault(subnet_of[source], []).append(_ports(flow))
    return ports


def render_dot(plan: Plan, rankdir: str = "LR") -> str:
    """The architecture as Graphviz source: subnets are clusters, flows are labelled edges (left to right, or
    top to bottom with rankdir="TB" for a portrait page)."""
    drawing = _Drawing(plan)
    config = plan.config
    internet_ports = _internet_ports(drawing, config)
    title = (f"Stack {plan.stack}: {config['trust']['name']} ({config['environment']}, {config['location']}), "
             "drawn from the offline plan")
    spoke = config["network"].get("landing_zone")
    if spoke and spoke.get("spoke_virtual_network_id"):  # looked up: no VirtualNetwork of the plan's own
        vnet_label = (f"spoke virtual network {spoke['spoke_virtual_network_id'].rsplit('/', 1)[-1]} "
                      f"{config['network']['address_space']} (the landing zone's)")
    else:
        vnet = plan.of_type("azure-native:network:VirtualNetwork")[0]
        vnet_label = f"virtual network {vnet.azure_name} {', '.join(vnet.inputs['addressSpace']['addressPrefixes'])}"
    lines = [
        f"digraph {_quote(plan.stack)} {{",
        f"  graph [rankdir={rankdir}, compound=true, fontname=\"Helvetica\", fontsize=11, nodesep=0.3, ranksep=1.1,",
        f"         label={_quote(title)}, labelloc=t];",
        "  node [fontname=\"Helvetica\", fontsize=10, shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\"];",
        "  edge [fontname=\"Helvetica\", fontsize=9];",
    ]
    endpoints = {endpoint for flow in active_flows(config) for endpoint in (flow.source, flow.destination)}
    if "clients" in endpoints:
        lines.append("  clients [label=" + _quote("Trust client ranges (Internet side)\n"
                                                 + "\n".join(config["network"]["allowed_client_ranges"]))
                     + ", shape=oval, fillcolor=\"#e8f0fe\"];")
    if "private-clients" in endpoints:
        lines.append("  private_clients [label=" + _quote("Trust network (peering or VPN)\n"
                                                         + "\n".join(config["network"]["private_client_ranges"]))
                     + ", shape=oval, fillcolor=\"#e6f4ea\"];")
    if "hub-bastion" in endpoints:
        lines.append("  hub_bastion [label=" + _quote("The hub's Azure Bastion (peering)\n"
                                                     + config["network"]["landing_zone"]["hub_bastion_range"])
                     + ", shape=oval, fillcolor=\"#e6f4ea\"];")
    for source in declared_data_sources(config):
        if f"data-source:{source['name']}" in endpoints:
            label = f"Trust data source {source['name']} ({source['kind']})\n{source['range']}, port {source['port']}"
            lines.append(f"  {_data_source_node(source['name'])} [label={_quote(label)}, shape=cylinder, "
                         "fillcolor=\"#e6f4ea\"];")
    if "internet" in endpoints:
        lines.append("  internet [label=\"Internet\\n(public package registries)\", shape=oval, "
                     "fillcolor=\"#eeeeee\"];")
    used_tags = sorted({endpoint.partition(":")[2] for flow in active_flows(config)
                        for endpoint in (flow.source, flow.destination) if endpoint.startswith("tag:")})
    for tag in used_tags:
        lines.append(f"  tag_{tag} [label={_quote('Azure service tag' + chr(10) + tag)}, shape=component, "
                     "fillcolor=\"#f3e8fd\"];")
    nat_names = sorted({s.nat for s in drawing.subnets.values() if s.nat})
    nat_ips = sorted(r.azure_name for r in plan.of_type("azure-native:network:PublicIPAddress")
                     if r.azure_name.endswith("-nat"))
    for nat in nat_names:
        label = f"NAT gateway {nat}" + (f"\npublic IP {nat_ips[0]}" if nat_ips else "")
        lines.append(f"  nat [label={_quote(label)}, shape=cds, fillcolor=\"#fff4e5\"];")
    lines.append(f"  subgraph cluster_vnet {{\n    label={_quote(vnet_label)};\n    style=rounded; color=\"#5f6368\";")
    for subnet in drawing.subnets.values():
        opened = ", ".join(internet_ports.get(subnet.resource.id, []))
        egress = (f"Internet egress via {subnet.nat}" if subnet.nat
                  else f"Internet egress via the hub firewall {spoke['hub_firewall_address']}, ports {opened}"
                  if spoke and opened
                  else f"Internet egress on port{'s' if ',' in opened else ''} {opened} only" if opened
                  else "no Internet egress")
        nsg = subnet.resource.inputs.get("networkSecurityGroup", {}).get("id", "").rsplit("/", 1)[-1]
        label = f"subnet {subnet.resource.azure_name} {subnet.prefix}\nNSG {nsg or 'none'}; {egress}"
        lines.append(f"    subgraph {subnet.node} {{\n      label={_quote(label)}; style=\"rounded,dashed\";")
        for machine in drawing.machines:
            if machine.subnet_id != subnet.resource.id:
                continue
            size = machine.vm.inputs["hardwareProfile"]["vmSize"]
            text = f"{machine.host} ({machine.role})\n{machine.vm.azure_name}\n{machine.private_ip}, {size}"
            style = ""
            if machine.public_ip:
                text += f"\nPUBLIC IP {machine.public_ip}"
                style = ", peripheries=2, color=\"#c5221f\", fillcolor=\"#fce8e6\""
            lines.append(f"      {machine.node} [label={_quote(text)}{style}];")
        for host, subnet_id, public in drawing.bastions:
            if subnet_id == subnet.resource.id:
                text = f"Azure Bastion {host.inputs['sku']['name']}\n{host.azure_name}"
                text += f"\nPUBLIC IP {public}" if public else ""
                lines.append(f"      bastion [label={_quote(text)}, peripheries=2, color=\"#c5221f\", "
                             "fillcolor=\"#fce8e6\"];")
        lines.append("    }")
    lines.append("  }")

    anchor = drawing.machines[0].node if drawing.machines else "bastion"
    subnet_of = {m.node: drawing.subnets[m.subnet_id] for m in drawing.machines}
    for flow in active_flows(config):
        label = f"{flow.name.split('-')[0]} {_ports(flow)}"
        for source in drawing.endpoint_nodes(flow.source):
            for target in drawing.endpoint_nodes(flow.destination):
                attrs = [f"label={_quote(label)}", f"tooltip={_quote(flow.name + ': ' + flow.purpose)}"]
                tail = source
                if source == "vnet":
                    tail = anchor
                    attrs[0] = f"label={_quote('every VM: ' + label)}"
                    attrs.append("ltail=cluster_vnet")
                if source == target:
                    attrs.append("dir=both")
                via_nat = target == "internet" and source in subnet_of and subnet_of[source].nat
                if via_nat:
                    lines.append(f"  {tail} -> nat [{', '.join(attrs)}];")
                    continue
                if source == "clients":
                    attrs.append("color=\"#c5221f\", penwidth=1.6")
                lines.append(f"  {tail} -> {target} [{', '.join(attrs)}];")
    if nat_names:
        lines.append("  nat -> internet [style=dashed, label=\"SNAT\"];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(dot_source: str) -> bytes:
    return _run_dot(dot_source, "svg")


def _run_dot(dot_source: str, fmt: str) -> bytes:
    from validation.usage import UsageError

    dot = shutil.which("dot")
    if dot is None:
        raise UsageError("Graphviz 'dot' was not found: install the Debian package graphviz (make host-deps)")
    result = subprocess.run([dot, f"-T{fmt}"], input=dot_source.encode(), capture_output=True, check=False)
    if result.returncode != 0:
        raise UsageError(f"dot failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


# ---- the page -----------------------------------------------------------------------------------

def _cell(text: Any) -> str:
    # Values may come from the stack file: escaped so they never become markup.
    return md_text(text)


def _flow_matrix(plan: Plan) -> list[str]:
    lines = ["| From | To | Ports | Protocol | Allowed | Purpose | Rule |", "|---|---|---|---|---|---|---|"]
    for flow in active_flows(plan.config):
        lines.append(f"| {_cell(endpoint_text(flow.source, plan.config))} | "
                     f"{_cell(endpoint_text(flow.destination, plan.config))} | {_ports(flow)} | {flow.protocol} | "
                     f"yes | {_cell(flow.purpose)} | `allow-{flow.name}` |")
    lines.append("| anything else | anything | any | any | **no** | every NSG ends with a deny-all rule "
                 "in both directions | `deny-all-inbound`, `deny-all-outbound` |")
    return lines


def _controls(plan: Plan) -> list[str]:
    from validation.policies import evaluate

    results = evaluate(plan)
    passed = sum(result.passed for result in results)
    lines = [f"Every rule of `validation.policies` evaluated against this plan: {passed} of {len(results)} pass. "
             "The same rules run in `pulumi preview` as a policy pack.", "",
             "| Rule | Control | Severity | Implements | Resources checked | Result |", "|---|---|---|---|---:|---|"]
    for result in results:
        rule = result.rule
        outcome = "pass" if result.passed else f"**{len(result.violations)} violation(s)**"
        if result.passed and result.checked == 0:
            outcome = "pass (nothing of that type in this stack)"
        lines.append(f"| {rule.id} | {_cell(rule.title)} | {rule.severity} | {_cell(rule.reference)} | "
                     f"{result.checked} | {outcome} |")
    failing = [(result.rule.id, v) for result in results for v in result.violations]
    if failing:
        lines += ["", "Violations:", ""]
        lines += [f"- {rule_id}: {_cell(violation.message)}" for rule_id, violation in failing]
    return lines


def _resource_table(plan: Plan) -> list[str]:
    urns = plan.by_urn()
    lines = ["| Type | Azure name | Component | Settings that matter |", "|---|---|---|---|"]
    nsg = "azure-native:network:NetworkSecurityGroup"
    for resource in sorted(plan.custom_resources(), key=lambda r: (r.type, r.azure_name, r.name)):
        parent = urns.get(resource.parent or "")
        component = parent.name if parent else ""
        details = resource_details(resource)
        if resource.type == nsg:  # the rules are in the flow matrix below
            details = [f"{len(resource.inputs.get('securityRules', []))} rules, see the flow matrix"]
        lines.append(f"| {resource.type.split(':', 1)[1].replace(':', '.')} | `{_cell(resource.azure_name)}` | "
                     f"{_cell(component)} | {_cell('; '.join(details))} |")
    return lines


def render_page(plan: Plan) -> str:
    config = plan.config
    machines = _Drawing(plan).machines
    public = plan.of_type("azure-native:network:PublicIPAddress")
    lines = [
        f"# Reference: stack `{plan.stack}`",
        "",
        f"<!-- Generated by `{REGENERATE}` from {plan.source}; edit the stack or the code, not this file. -->",
        "",
        f"{_cell(config['trust']['name'])}, environment `{config['environment']}`, region `{config['location']}`. "
        f"Drawn from the offline plan of `{plan.source}`: {len(plan.custom_resources())} Azure resources, "
        f"{len(machines)} virtual machines.",
        "",
        "## Architecture",
        "",
        # A link around the picture: the page scales it to its width, the SVG alone can be zoomed.
        f"[![Architecture of stack {plan.stack}: subnets, machines, entry points and allowed flows](architecture.svg)]"
        "(architecture.svg)",
        "",
        "The drawing is scaled to fit the page: open [the diagram at full size](architecture.svg) to zoom in "
        "and scroll; hovering over an edge names its flow and purpose.",
        "",
        "Boxes inside the virtual network are subnets; red double-bordered nodes have a public IP address; "
        "red edges come from the trust's client ranges; each edge is an allowed flow with its ports. "
        "Nothing else is allowed. The Graphviz source is [architecture.dot](architecture.dot). "
        "The board's view of the same stack is its [request pack](request-pack.md).",
        "",
        "## Entry points from outside",
        "",
    ]
    for address in sorted(public, key=lambda r: r.azure_name):
        users = [m.host for m in machines if m.public_ip == address.azure_name]
        role = (f"attached to {', '.join(users)}" if users
                else "outbound only (NAT gateway for the mirror)" if address.azure_name.endswith("-nat")
                else "Azure Bastion" if address.azure_name.endswith("-bastion") else "not attached to a VM")
        lines.append(f"- `{address.azure_name}`: {role}")
    lines += ["", "## Virtual machines", "",
              "| Host | Role | Azure name | Private IP | Size | Public IP |", "|---|---|---|---|---|---|"]
    for machine in machines:
        lines.append(f"| {machine.host} | {machine.role} | `{machine.vm.azure_name}` | {machine.private_ip} | "
                     f"{machine.vm.inputs['hardwareProfile']['vmSize']} | {machine.public_ip or 'none'} |")
    lines += ["", "## Network flows (NSG matrix)", "",
              "Compiled into every subnet's NSG from `blueprints/network_flows.py`; the lab compiles the same "
              "table to nftables.", "", *_flow_matrix(plan)]
    lines += ["", "## Security controls the policies verify", "", *_controls(plan)]
    lines += ["", "The third-party scanner checkov also runs its ARM checks on this stack's plan (`make checkov`); "
              "the checks it may fail or never runs, each with its reason and the resources it concerns, are "
              f"listed in [checkov checks skipped or not run](../checkov-skips.md#stack-{plan.stack.lower()})."]
    lines += ["", "## Resources", "", *_resource_table(plan)]
    lines += ["", render_markdown(estimate(plan))]
    return "\n".join(lines) + "\n"


def _stable_source(path: Path) -> str:
    """The stack file as the page names it: relative to the repository, never an absolute path."""
    root = Path(__file__).resolve().parent.parent
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.name


def _record(stack_file: Path) -> Plan:
    from validation.plan_cache import recorded_plan  # the Pulumi SDK loads only when a plan is recorded

    plan = recorded_plan(stack_file)
    plan.source = _stable_source(Path(stack_file))
    return plan


def _write_stack(plan: Plan, reference_dir: Path) -> list[Path]:
    from reports.request_pack import render as render_request_pack

    target = reference_dir / plan.stack
    target.mkdir(parents=True, exist_ok=True)
    dot_source = render_dot(plan)
    files = {
        "index.md": render_page(plan).encode(),
        "architecture.dot": dot_source.encode(),
        "architecture.svg": render_svg(dot_source),
        "request-pack.md": render_request_pack(plan)[0].encode(),
    }
    for name, content in files.items():
        (target / name).write_bytes(content)
    return [target / name for name in files]


def _write_skip_page(plans: list[Plan], reference_dir: Path) -> Path:
    """The page of checkov skips, across the documented stacks and every stack file in stacks/: the
    page is the same whichever stacks one run documents, so documenting one stack leaves it unchanged."""
    from reports.checkov_skips_page import PAGE_NAME, render_skip_page
    from validation.checkov_gate import GateError
    from validation.usage import UsageError

    by_stack = {plan.stack: plan for plan in plans}
    for stack_file in stack_files():
        if stack_file.stem not in by_stack:
            plan = _record(stack_file)
            by_stack[plan.stack] = plan
    reference_dir.mkdir(parents=True, exist_ok=True)
    page = reference_dir / PAGE_NAME
    try:
        text = render_skip_page(list(by_stack.values()))
    except GateError as error:
        raise UsageError(f"the checkov skip page cannot be written: {error}") from None
    page.write_bytes(text.encode())
    return page


def _write_settings_page(reference_dir: Path) -> Path:
    """The settings every stack file accepts, from the stack schema (reports/settings_reference.py)."""
    from reports.settings_reference import PAGE_NAME, render_settings_page

    reference_dir.mkdir(parents=True, exist_ok=True)
    page = reference_dir / PAGE_NAME
    page.write_bytes(render_settings_page().encode())
    return page


def _navigation_problems(reference_dir: Path) -> list[str]:
    """The site's Reference navigation against the pages under reference_dir (none outside a site)."""
    from reports.site_navigation import NavigationError, expected_config, site_config_for

    config = site_config_for(reference_dir)
    if config is None:
        return []
    try:
        text, fresh = expected_config(config, reference_dir)
    except NavigationError as error:
        return [str(error)]
    if text == fresh:
        return []
    return [f"{config.name}: the Reference navigation does not list the pages under {reference_dir}"]


def _write_navigation(reference_dir: Path) -> Path | None:
    from reports.site_navigation import NavigationError, site_config_for, write_navigation
    from validation.usage import UsageError

    config = site_config_for(reference_dir)
    if config is None:
        return None
    try:
        write_navigation(config, reference_dir)
    except NavigationError as error:
        raise UsageError(str(error)) from None
    return config


def generate(stack_file: Path, reference_dir: Path) -> list[Path]:
    """Write the reference of one stack; return the files written."""
    return _write_stack(_record(stack_file), reference_dir)


def generate_all(stacks: list[Path], reference_dir: Path) -> list[Path]:
    """Write the reference of every stack, then the page of checkov skips across them."""
    plans = [_record(stack) for stack in stacks]
    written = [path for plan in plans for path in _write_stack(plan, reference_dir)]
    return [*written, _write_skip_page(plans, reference_dir), _write_settings_page(reference_dir)]


def stack_files(stacks_dir: Path = STACKS_DIR) -> list[Path]:
    # By stack name, as every page lists stacks ("landing-zone" before "landing-zone-spoke", which a
    # sort by file name would turn round: '-' sorts before '.').
    return sorted(stacks_dir.glob("*.yaml"), key=lambda path: path.stem)


def drift(stacks: list[Path], reference_dir: Path, scratch: Path) -> list[str]:
    """Regenerate into scratch and compare with reference_dir; one message per stale file."""
    fresh_files: list[tuple[Path, str]] = []  # (file, what it is generated from)
    plans = []
    for stack in stacks:
        plan = _record(stack)
        plans.append(plan)
        fresh_files += [(fresh, str(stack)) for fresh in _write_stack(plan, scratch)]
    fresh_files.append((_write_skip_page(plans, scratch), "validation/checkov-skips.yaml, the stack files"))
    fresh_files.append((_write_settings_page(scratch), "the stack schema"))
    problems = []
    for fresh, source in fresh_files:
        committed = reference_dir / fresh.relative_to(scratch)
        if not committed.exists():
            problems.append(f"{committed} is missing (new stack {source}?)")
        elif committed.read_bytes() != fresh.read_bytes():
            problems.append(f"{committed} is out of date with {source} or the code")
    if reference_dir.is_dir():
        for stale in sorted(p.name for p in reference_dir.iterdir() if p.is_dir()):
            if stale not in {plan.stack for plan in plans}:
                problems.append(f"{reference_dir / stale} belongs to no stack file: remove it")
    return problems + _navigation_problems(reference_dir)


def _change_matrix_problems(reference_dir: Path) -> list[str]:
    """The administrators' change matrix beside a site's reference (reports/change_matrix.py)."""
    page = change_matrix.page_for(reference_dir)
    if page is None or not change_matrix.EXAMPLE_STACK.is_file() or change_matrix.is_current(page, _record):
        return []
    return [f"{page}: the change matrix is out of date with validation/stack_edits.py or the code"]


def _cmd_docs(args: argparse.Namespace) -> int:
    from validation.usage import UsageError

    stacks = [Path(f) for f in args.stack_files] or stack_files()
    if not stacks:
        raise UsageError(f"no stack files found in {STACKS_DIR}/ (run from the repository root)")
    reference = Path(args.output)
    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            problems = drift(stacks, reference, Path(scratch))
        problems += _change_matrix_problems(reference)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"The reference is stale: run `{REGENERATE}` and commit {reference}/", file=sys.stderr)
            return 1
        print(f"{reference}/ matches {len(stacks)} stack file(s)", file=sys.stderr)
        return 0
    plans = []
    for stack in stacks:
        plan = _record(stack)
        plans.append(plan)
        written = _write_stack(plan, reference)
        print(f"{stack}: wrote {', '.join(str(path) for path in written)}", file=sys.stderr)
        if args.png_dir:
            png_dir = Path(args.png_dir)
            png_dir.mkdir(parents=True, exist_ok=True)
            png = png_dir / f"{written[0].parent.name}.png"
            png.write_bytes(_run_dot(written[1].read_text(encoding="utf-8"), "png"))
            print(f"{stack}: wrote {png}", file=sys.stderr)
    page = _write_skip_page(plans, reference)
    print(f"{len(plans)} stack(s): wrote {page}", file=sys.stderr)
    print(f"wrote {_write_settings_page(reference)}", file=sys.stderr)
    matrix_page = change_matrix.page_for(reference)
    if matrix_page is not None and change_matrix.EXAMPLE_STACK.is_file():
        print(f"wrote the change matrix in {change_matrix.write(matrix_page, _record)}", file=sys.stderr)
    config = _write_navigation(reference)
    if config is not None:
        print(f"wrote the Reference navigation in {config.name}", file=sys.stderr)
    return 0


def register(commands: Any) -> None:
    docs = commands.add_parser(
        "docs", help="generate the reference pages of every stack (diagram, resources, flows, cost)",
        description=f"Write {REFERENCE_DIR}/<stack>/ for each stack file from its offline plan: an architecture "
                    "diagram (Graphviz), the virtual machines, the NSG flow matrix, the policy controls, every "
                    "resource, the cost estimate, and the request pack; then one page of the checkov checks "
                    "skipped or not run across those stacks, with their reasons, one page of every stack file "
                    "setting from the schema, and the Reference section of the site navigation (mkdocs.yml) "
                    "listing every generated page. Output is deterministic; a test "
                    "checks the committed copy for drift.")
    docs.add_argument("stack_files", nargs="*", metavar="STACK_FILE",
                      help=f"stack files to document (default: every {STACKS_DIR}/*.yaml)")
    docs.add_argument("-o", "--output", default=str(REFERENCE_DIR),
                      help=f"reference directory (default: {REFERENCE_DIR})")
    docs.add_argument("--png-dir", default=str(PNG_DIR),
                      help=f"also render each diagram as PNG here, for people to look at (default: {PNG_DIR}; "
                           "'' to skip)")
    docs.add_argument("--check", action="store_true",
                      help="write nothing; exit 1 if the committed reference differs from a fresh generation")
    docs.set_defaults(handler=_cmd_docs)
