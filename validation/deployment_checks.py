"""What `blueprints validate` checks beyond the stack file itself, so that a stack it passes is one
`blueprints plan` passes too.

- Every VM's user-data is rendered, as the plan and the lab render it: a template that cannot be
  filled or custom data over Azure's limit is a problem naming the machine and the role's settings,
  never a RenderError traceback.
- The offline plan is recorded (through the plan cache) and every policy rule evaluated; each
  mandatory rule a resource breaks is a problem, with the stack field that decides it where one
  does (a VM's size, the client ranges, the tags), and the rule's own message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from blueprints.cloud_init import MAX_USER_DATA_BYTES, RenderError, render_user_data
from blueprints.roles import all_roles
from blueprints.topology import Machine, plan_machines
from blueprints.vm_settings import settings_document
from validation.plan_model import Plan, PlannedResource
from validation.problems import MISSING, Problem
from validation.semantic_checks import secret_like_text

VM = "azure-native:compute:VirtualMachine"
# Where a rule's finding is decided in the stack file, for the rules a stack's values can break.
# "{role}" is the role of the VM at fault. A rule not listed is named on the resource's role, or
# on the file when the resource belongs to no role.
RULE_FIELDS: dict[str, str] = {
    "TB-VM-008": "roles.{role}.vm_size",
    "TB-VM-009": "roles.{role}",
    "TB-NET-001": "network.allowed_client_ranges",
    "TB-NET-002": "network.allowed_client_ranges",
    "TB-GOV-001": "tags",
    "TB-GOV-002": "tags",
}
SECRETS_RULE = "TB-VM-009"
SIZE_HINT = ("the role's longest lists (allowlist entries, Git users, teams and repositories) travel to its VM "
             f"in documents Azure limits to {MAX_USER_DATA_BYTES:,} bytes each; shorten them")


def machine_renderers() -> list[Callable[[dict[str, Any], Machine], bytes]]:
    """Every document the plan renders for a machine: its custom data, and the document of its
    changeable settings (user data) where the blueprints make one."""
    return [render_user_data, settings_document]


def rendered_problems(config: dict[str, Any]) -> list[Problem]:
    """A problem for each machine whose user-data cannot be rendered or is over Azure's limit."""
    problems: list[Problem] = []
    renderers = machine_renderers()
    for machine in plan_machines(config):
        for render in renderers:
            try:
                render(config, machine)
            except RenderError as error:
                over = "Azure allows" in str(error)
                problems.append(Problem(
                    f"roles.{machine.role}", MISSING,
                    f"makes machine {machine.name}'s user-data "
                    + ("too large" if over else "unusable") + f": {error}",
                    SIZE_HINT if over else "a setting of this role reaches its cloud-init in a form it cannot use"))
                break
    return problems


def _machine_of(resource: PlannedResource, machines: list[Machine]) -> Machine | None:
    """The machine a VM resource is (its Azure name ends with the machine's host name)."""
    if resource.type != VM:
        return None
    matches = [m for m in machines if resource.azure_name.endswith(f"-{m.name}")]
    return max(matches, key=lambda m: len(m.name)) if matches else None


def _role_of(resource: PlannedResource, machines: list[Machine]) -> str | None:
    machine = _machine_of(resource, machines)
    if machine is not None:
        return machine.role
    component = (resource.inputs.get("tags") or {}).get("component") if isinstance(resource.inputs, dict) else None
    return next((declared.name for declared in all_roles() if declared.component == component), None)


def policy_problems(plan: Plan) -> list[Problem]:
    """The mandatory policy rules the recorded plan breaks, each named once where the stack decides it."""
    from validation.policies import evaluate, mandatory_failures  # the rules read recorded plans

    machines = plan_machines(plan.config)
    resources = {resource.azure_name: resource for resource in plan.resources}
    problems: list[Problem] = []
    for result in mandatory_failures(evaluate(plan)):
        if result.rule.id == SECRETS_RULE:
            named = secret_like_text(plan.config)
            if named:
                problems += named
                continue
        for found in result.violations:
            resource = resources.get(found.resource)
            role = _role_of(resource, machines) if resource is not None else None
            template = RULE_FIELDS.get(result.rule.id, "roles.{role}")
            path = "" if "{role}" in template and role is None else template.format(role=role)
            problems.append(Problem(path, MISSING,
                                    f"breaks mandatory policy {result.rule.id} ({result.rule.title}): {found.message}",
                                    result.rule.reason))
    unique: dict[tuple[str, str], Problem] = {}
    for problem in problems:
        unique.setdefault((problem.path, problem.allowed), problem)
    return list(unique.values())


def with_lines(problems: list[Problem], lines: dict[str, int]) -> list[Problem]:
    """The problems with the line of their field (or of the nearest enclosing one) in the stack file."""
    located = []
    for problem in problems:
        path = problem.path
        while path and path not in lines:
            path = path.rsplit(".", 1)[0] if "." in path else ""
        located.append(dataclasses.replace(problem, line=lines.get(path) if path else None))
    return located
