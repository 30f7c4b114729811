"""`blueprints preflight`: what a subscription needs before `pulumi up`, and whether it has it.

The needs come from the stack's offline plan and the region facts (blueprints/regions.yaml): the
subscription features its resources ask for, the resource providers of its resource types, and
the vCPU quota its machines take, per size family and in total. Each is printed with the Azure CLI
commands that check and fix it. When `az` is on PATH and signed in, the read-only checks
(az feature show, az provider show, az vm list-usage) are run and each is reported as ok or
missing; nothing is ever registered or changed.

Exit codes: 0 when every check that ran passed (or none could run), 1 when one is missing or could
not be read, 2 for a bad stack file or command line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from blueprints.regions import FACTS_FILE, Feature, Region, region, region_facts
from validation.plan_model import Plan
from validation.usage import DEFAULT_STACK, EXIT_FAILED, EXIT_OK

AZ_TIMEOUT_SECONDS = 120
TOTAL_CORES = "cores"  # az vm list-usage's name.value for the Total Regional vCPUs quota
VM_TYPE = "azure-native:compute:VirtualMachine"
QUOTA_REQUEST_PAGE = "https://learn.microsoft.com/azure/quotas/per-vm-quota-requests"


@dataclass(frozen=True)
class QuotaNeed:
    family: str  # as az vm list-usage names it (name.value), or TOTAL_CORES
    vcpus: int
    machines: tuple[str, ...]  # "analytics-1 (Standard_D4s_v5)"


@dataclass(frozen=True)
class ProviderNeed:
    namespace: str
    registered_by_default: bool
    known: bool  # described in blueprints/regions.yaml
    resource_types: tuple[str, ...]


@dataclass(frozen=True)
class Needs:
    """What one stack asks of its subscription."""

    location: str
    region: Region
    machines: int
    features: tuple[Feature, ...]
    providers: tuple[ProviderNeed, ...]
    sizes: tuple[str, ...]  # every VM size the plan uses
    quotas: tuple[QuotaNeed, ...]  # one per size family, then the regional total
    unknown_sizes: tuple[str, ...]  # sizes the facts do not describe: their quota is not counted
    unmapped_types: tuple[str, ...]  # resource types with no known Azure resource type
    # Entra ID objects the program makes (the gateway's app registration): the tenant, not the
    # subscription, must let the deploying identity create them.
    directory_objects: tuple[str, ...] = ()


def _property(inputs: dict[str, Any], dotted: str) -> Any:
    value: Any = inputs
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _machine_name(resource: Any) -> str:
    computer = _property(resource.inputs, "osProfile.computerName")
    return computer if isinstance(computer, str) else resource.azure_name


def stack_needs(plan: Plan) -> Needs:
    """The features, providers and quota one stack's plan needs, from the region facts."""
    from validation.plan_recorder import ARM_TYPES

    facts = region_facts()
    location = plan.config["location"]
    types: dict[str, set[str]] = {}
    unmapped: set[str] = set()
    typed: list[tuple[str, dict[str, Any]]] = []
    for resource in plan.custom_resources():
        arm_type = ARM_TYPES.get(resource.type)
        if arm_type is None:  # not an Azure resource (kept in Pulumi's state), or one ARM_TYPES lacks
            if resource.type.startswith("azure-native:"):
                unmapped.add(resource.type)
            continue
        namespace, _, kind = arm_type.partition("/")
        types.setdefault(namespace, set()).add(kind)
        typed.append((arm_type, resource.inputs))
    features = tuple(feature for feature in facts.features
                     if any(arm_type == feature.resource_type and _property(inputs, feature.property)
                            for arm_type, inputs in typed))
    providers = []
    for namespace in sorted(types, key=str.lower):
        known = facts.providers.get(namespace)
        providers.append(ProviderNeed(namespace, known.registered_by_default if known else False, known is not None,
                                      tuple(sorted(types[namespace]))))
    families: dict[str, list[tuple[str, str, int]]] = {}
    unknown: list[str] = []
    machines = plan.of_type(VM_TYPE)
    for vm in machines:
        size = str(_property(vm.inputs, "hardwareProfile.vmSize"))
        known_size = facts.vm_sizes.get(size)
        if known_size is None:
            if size not in unknown:
                unknown.append(size)
            continue
        families.setdefault(known_size.quota_family, []).append((_machine_name(vm), size, known_size.vcpus))
    quotas = [QuotaNeed(family, sum(vcpus for _, _, vcpus in members),
                        tuple(f"{name} ({size})" for name, size, _ in members))
              for family, members in sorted(families.items(), key=lambda item: item[0].lower())]
    if quotas:
        quotas.append(QuotaNeed(TOTAL_CORES, sum(quota.vcpus for quota in quotas), ()))
    sizes = tuple(sorted({str(_property(vm.inputs, "hardwareProfile.vmSize")) for vm in machines}))
    return Needs(location, region(location), len(machines), features, tuple(providers), sizes, tuple(quotas),
                 tuple(unknown), tuple(sorted(unmapped)),
                 tuple(sorted({r.type.rsplit(":", 1)[-1] for r in plan.directory_resources()})))


def feature_commands(feature: Feature) -> list[str]:
    names = f"--namespace {feature.namespace} --name {feature.name}"
    return [f"az feature register {names}",
            f"az feature show {names} --query properties.state   # until it says Registered",
            f"az provider register -n {feature.namespace}   # then, so the provider picks the feature up"]


def render_needs(stack_file: str, needs: Needs) -> str:
    """The checks a subscription needs, as text with the commands that check and fix each."""
    region_ = needs.region
    checked = sorted({fact.checked for _, fact in region_facts().sources()})
    lines = [f"Preflight for {stack_file}: {needs.location} ({region_.display_name}), "
             f"{needs.machines} VM{'s' if needs.machines != 1 else ''}",
             f"What the subscription needs before `pulumi up`, from the offline plan and {FACTS_FILE.parent.name}/"
             f"{FACTS_FILE.name} (facts checked {', '.join(str(day) for day in checked)}).", ""]
    lines.append("Subscription features to register:")
    for feature in needs.features:
        lines.append(f"  {feature.full_name}: {feature.why}")
        lines += [f"    {command}" for command in feature_commands(feature)]
    if not needs.features:
        lines.append("  none")
    lines += ["", "Resource providers the plan uses:"]
    width = max((len(provider.namespace) for provider in needs.providers), default=0)
    for provider in needs.providers:
        state = "registered by default" if provider.registered_by_default else "register"
        if not provider.known:
            state += f" (not in {FACTS_FILE.name})"
        lines.append(f"  {provider.namespace:<{width}}  {state}: {', '.join(provider.resource_types)}")
    to_register = [provider.namespace for provider in needs.providers if not provider.registered_by_default]
    if to_register:
        lines.append("  Register each that is not yet (az provider show -n NAMESPACE --query registrationState):")
        lines += [f"    az provider register -n {namespace}" for namespace in to_register]
    if needs.unmapped_types:
        lines.append(f"  (no Azure resource type known for {', '.join(needs.unmapped_types)}: "
                     "add it to ARM_TYPES in validation/plan_recorder.py)")
    lines += ["", f"vCPU quota needed in {needs.location} (az vm list-usage --location {needs.location}):"]
    for quota in needs.quotas:
        label = "cores (Total Regional vCPUs)" if quota.family == TOTAL_CORES else quota.family
        lines.append(f"  {label:<30} {quota.vcpus:>3} vCPUs" + (f": {', '.join(quota.machines)}" if quota.machines
                                                                   else ""))
    for size in needs.unknown_sizes:
        lines.append(f"  {size}: not in {FACTS_FILE.name}, so not counted; its family and vCPUs: "
                     f"az vm list-skus --location {needs.location} --size {size} --output table")
    if not needs.quotas and not needs.unknown_sizes:
        lines.append("  none: the stack deploys no VM")
    else:
        lines.append("  Quota counts deallocated VMs too; these are the vCPUs this stack's machines add.")
    if needs.sizes:
        lines += ["", f"VM sizes in {needs.location}:"]
        for size in needs.sizes:
            known = region_.sizes.get(size)
            if known is None:
                lines.append(f"  {size}: not in {FACTS_FILE.name}")
            else:
                note = f" (uncertain: see {FACTS_FILE.name})" if known.fact.uncertain else ""
                lines.append(f"  {size}: {'offered' if known.offered else 'not offered'}{note}")
        lines.append(f"  Not restricted for this subscription: az vm list-skus --location {needs.location} "
                     f"--size SIZE --output table (Restrictions: None)")
    if needs.directory_objects:
        made = ", ".join(needs.directory_objects)
        lines += ["", f"Entra ID (the tenant, not the subscription): the program creates {made}"
                  " for the gateway's sign-in (roles.gateway.identity.registration); the identity running "
                  "`pulumi up` needs the Application Administrator role, or Application.ReadWrite.OwnedBy "
                  "for a service principal (az ad signed-in-user show, then its role assignments in Entra ID)."]
    return "\n".join(lines)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    what: str  # "feature Microsoft.Compute/EncryptionAtHost"
    detail: str
    fix: str = ""


Runner = Callable[[Sequence[str]], tuple[int, str, str]]


def az_runner(az: str) -> Runner:
    def run(arguments: Sequence[str]) -> tuple[int, str, str]:
        try:
            done = subprocess.run([az, *arguments, "--output", "json"], capture_output=True, text=True,
                                  timeout=AZ_TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            return 124, "", f"timed out after {AZ_TIMEOUT_SECONDS}s"
        except OSError as error:
            return 127, "", str(error)
        return done.returncode, done.stdout, done.stderr

    return run


def _az_json(run: Runner, arguments: Sequence[str]) -> tuple[Any, str]:
    """az's JSON answer, or why there is none."""
    code, out, err = run(arguments)
    if code != 0:
        first = next((line.strip() for line in err.splitlines() if line.strip()), f"exit code {code}")
        return None, f"az {' '.join(arguments)} failed: {first}"
    try:
        return json.loads(out), ""
    except json.JSONDecodeError:
        return None, f"az {' '.join(arguments)} did not answer with JSON"


def _count(value: Any) -> int:
    return int(str(value).strip())


def run_checks(needs: Needs, run: Runner) -> list[CheckResult]:
    """The read-only checks against the signed-in subscription."""
    results: list[CheckResult] = []
    for feature in needs.features:
        what = f"feature {feature.full_name}"
        answer, error = _az_json(run, ["feature", "show", "--namespace", feature.namespace, "--name", feature.name])
        state = _property(answer, "properties.state") if isinstance(answer, dict) else None
        if error or not isinstance(state, str):
            results.append(CheckResult(False, what, error or "az feature show gave no properties.state"))
        else:
            results.append(CheckResult(state == "Registered", what, state,
                                       "" if state == "Registered" else feature_commands(feature)[0]))
    for provider in needs.providers:
        if provider.registered_by_default:
            continue
        what = f"provider {provider.namespace}"
        answer, error = _az_json(run, ["provider", "show", "--namespace", provider.namespace])
        state = answer.get("registrationState") if isinstance(answer, dict) else None
        if error or not isinstance(state, str):
            results.append(CheckResult(False, what, error or "az provider show gave no registrationState"))
        else:
            fix = "" if state == "Registered" else f"az provider register -n {provider.namespace}"
            results.append(CheckResult(state == "Registered", what, state, fix))
    if needs.quotas:
        answer, error = _az_json(run, ["vm", "list-usage", "--location", needs.location])
        usages: dict[str, tuple[int, int]] = {}
        if not error and isinstance(answer, list):
            for usage in answer:
                try:
                    usages[str(_property(usage, "name.value")).lower()] = (_count(usage["currentValue"]),
                                                                           _count(usage["limit"]))
                except (KeyError, TypeError, ValueError):
                    continue
        elif not error:
            error = "az vm list-usage did not answer with a list"
        for quota in needs.quotas:
            what = f"quota {quota.family} in {needs.location}"
            if error:
                results.append(CheckResult(False, what, error))
                continue
            if quota.family.lower() not in usages:
                results.append(CheckResult(False, what, f"{quota.vcpus} vCPUs needed; az vm list-usage lists no "
                                           "such quota here", f"request it: {QUOTA_REQUEST_PAGE}"))
                continue
            used, limit = usages[quota.family.lower()]
            free = limit - used
            results.append(CheckResult(free >= quota.vcpus, what,
                                       f"{quota.vcpus} vCPUs needed, {max(free, 0)} of {limit} free",
                                       "" if free >= quota.vcpus else f"request more: {QUOTA_REQUEST_PAGE}"))
    return results


def preflight(plan: Plan, stack_file: str, az: str | None = None, run: Runner | None = None) -> int:
    """Print the needs, run the checks when az is signed in, and return the exit code."""
    needs = stack_needs(plan)
    print(render_needs(stack_file, needs))
    print()
    if az is None:
        print("The Azure CLI (az) is not on PATH: printed the checks above, ran none.")
        return EXIT_OK
    run = run or az_runner(az)
    account, error = _az_json(run, ["account", "show"])
    if error or not isinstance(account, dict):
        print(f"The Azure CLI is on PATH but not signed in ({error or 'az account show gave no account'}): "
              "printed the checks above, ran none. Sign in with az login to run them.")
        return EXIT_OK
    print(f"Checks against subscription {account.get('name', '?')} ({account.get('id', '?')}), read-only:")
    results = run_checks(needs, run)
    for result in results:
        line = f"  {'ok' if result.ok else 'missing':<8} {result.what}: {result.detail}"
        print(line + (f"\n           fix: {result.fix}" if result.fix else ""))
    for size in needs.unknown_sizes:
        print(f"  {'skipped':<8} quota for {size}: not in {FACTS_FILE.name}")
    failed = [result for result in results if not result.ok]
    if failed:
        print(f"blueprints preflight: {len(failed)} of {len(results)} checks failed: "
              f"{', '.join(result.what for result in failed)}", file=sys.stderr)
        return EXIT_FAILED
    print(f"All {len(results)} checks passed.")
    return EXIT_OK


def _cmd_preflight(args: argparse.Namespace) -> int:
    from validation.plan_cache import recorded_plan

    print(f"Planning {args.stack_file} offline to see what it needs...", file=sys.stderr)
    plan = recorded_plan(args.stack_file)
    return preflight(plan, args.stack_file, shutil.which("az"))


def register(commands: Any) -> None:
    command = commands.add_parser(
        "preflight", help="list what the subscription needs before pulumi up; check it when az is signed in",
        description="Validate a stack and print the checks its subscription needs before `pulumi up`: features "
                    "to register (encryption at host), resource providers, and vCPU quota per size family, each "
                    "with its az commands. When the Azure CLI is on PATH and signed in, run the read-only checks "
                    "and exit 1 if anything is missing; otherwise print them and exit 0.")
    command.add_argument("stack_file", nargs="?", default=DEFAULT_STACK,
                         help=f"stack file to read (default: {DEFAULT_STACK})")
    command.set_defaults(handler=_cmd_preflight)
