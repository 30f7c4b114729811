"""The registry of roles, proved with a role that ships nowhere (tests/roles/sample_role/).

Registered for a while with ``blueprints.roles.registered``, the sample role must get everything a
role in blueprints/ gets from its declaration alone: its settings in the stack schema, an address,
its cloud-init, its VM in the plan, NSG rules from the flow table and the policies. The registry
must refuse a declaration that is incomplete, contradicts itself or contradicts another role.
"""

from __future__ import annotations

import base64
import importlib
import json
import re
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

import blueprints
from blueprints import cloud_init, network_flows, roles
from blueprints.cloud_init import render_user_data, template_context, written_files
from blueprints.network_flows import Flow, nsg_rules
from blueprints.role import DataDiskLayout, Publication, Role, SecretSpec
from blueprints.roles import RoleRegistryError, all_roles, registered, role_names
from blueprints.topology import plan_machines
from tests.conftest import EXAMPLE, all_of, only
from tests.roles.sample_role.role import ROLE
from validation.plan_model import Plan
from validation.plan_recorder import record_plan
from validation.policies import evaluate, mandatory_failures
from validation.problems import StackFileError
from validation.stack_config import load_stack, validate_document

NAME = ROLE.name
VM = "azure-native:compute:VirtualMachine"
NIC = "azure-native:network:NetworkInterface"
NIGHTLY_SHUTDOWN_RULE = "TB-VM-007"  # validation/policies/vm_rules.py: "Analytics VMs shut down every night"
SECTION = {"vm_size": "Standard_B2s"}


def _example_document() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


def _stack_file(directory: Path, section: dict[str, Any] | None = None) -> Path:
    """stacks/example.yaml plus ``roles.code_server``, written where load_stack can read it."""
    document = _example_document()
    document["roles"][NAME] = dict(SECTION if section is None else section)
    path = directory / "sample.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def sample_registered():
    with registered(ROLE) as registry:
        yield registry


@pytest.fixture
def sample_config(tmp_path, sample_registered) -> dict[str, Any]:
    return load_stack(_stack_file(tmp_path))


@pytest.fixture(scope="module")
def sample_plan(tmp_path_factory) -> Plan:
    """The example environment with the sample role, run under Pulumi's mocks (recorded once)."""
    path = _stack_file(tmp_path_factory.mktemp("sample-plan"))
    with registered(ROLE):
        return record_plan(path)


def _sample_machine(config: dict[str, Any]):
    found = [machine for machine in plan_machines(config) if machine.role == NAME]
    assert len(found) == 1, f"expected one {NAME} machine, found {len(found)}"
    return found[0]


# ---------------------------------------------------------------------------------------------
# Registered for a while, shipped nowhere


def test_the_sample_role_is_registered_only_while_asked():
    assert NAME not in role_names()
    shipped = all_roles()
    with registered(ROLE) as registry:
        assert NAME in role_names()
        assert registry == all_roles()
        assert [declared.name for declared in registry] == ["gateway", "package_mirror", "git_server", NAME,
                                                            "analytics"]
        assert all(declared in registry for declared in (*shipped, ROLE))
    assert all_roles() == shipped


def test_a_stack_naming_the_role_is_refused_while_it_is_not_registered(tmp_path):
    with pytest.raises(StackFileError) as error:
        load_stack(_stack_file(tmp_path))
    assert [(p.path, p.allowed) for p in error.value.problems] == [(f"roles.{NAME}", "is not a known setting")]


# ---------------------------------------------------------------------------------------------
# Validates


def test_its_settings_validate_with_their_defaults(sample_config):
    assert sample_config["roles"][NAME] == {"vm_size": "Standard_B2s", "port": 8443}
    # Its section sits beside the example's own roles.
    assert set(sample_config["roles"]) == {"gateway", "package_mirror", "git_server", "analytics", NAME}


@pytest.mark.parametrize(("section", "path", "allowed"), [
    ({**SECTION, "colour": "blue"}, f"roles.{NAME}.colour", "is not a known setting"),
    ({**SECTION, "port": 80}, f"roles.{NAME}.port", "must be between 1024 and 65535"),
    ({"vm_size": "B2s"}, f"roles.{NAME}.vm_size", "must be an Azure size name such as Standard_B2s"),
])
def test_bad_settings_are_refused_with_the_field_named(tmp_path, sample_registered, section, path, allowed):
    with pytest.raises(StackFileError) as error:
        load_stack(_stack_file(tmp_path, section))
    assert [(p.path, p.allowed) for p in error.value.problems] == [(path, allowed)]
    assert error.value.problems[0].line is not None  # pointed at its line in the file
    if path.endswith(".colour"):
        assert error.value.problems[0].hint == "known settings here: port, vm_size"


def test_a_stack_naming_it_without_the_role_it_requires_is_refused(sample_registered):
    document = _example_document()
    document["roles"][NAME] = dict(SECTION)
    del document["roles"]["package_mirror"]
    _, problems = validate_document(document)
    required = {(p.path, p.allowed) for p in problems}
    assert ("roles.package_mirror", f"is required by roles.{NAME}") in required


# ---------------------------------------------------------------------------------------------
# An address, after the roles before it


def test_it_gets_the_next_address_in_the_services_subnet(sample_config):
    machines = plan_machines(sample_config)
    machine = _sample_machine(sample_config)
    assert (machine.name, machine.subnet, machine.private_ip) == ("code", "services", "10.40.2.6")
    services = [(m.role, m.private_ip) for m in machines if m.subnet == "services"]
    assert services == [("package_mirror", "10.40.2.4"), ("git_server", "10.40.2.5"), (NAME, "10.40.2.6")]
    assert len({m.private_ip for m in machines}) == len(machines)


# ---------------------------------------------------------------------------------------------
# Renders


def test_its_cloud_init_is_a_cloud_config_on_top_of_the_base_template(sample_config):
    machine = _sample_machine(sample_config)
    text = render_user_data(sample_config, machine).decode("utf-8")
    base = cloud_init._environment().get_template("base.yaml.j2").render(template_context(sample_config, machine))
    assert base.startswith("#cloud-config\n") and len(base.splitlines()) > 20
    assert text.startswith(base), "the role's template must begin with the shared base template"
    top_level = re.findall(r"^([a-z_]+):", text, flags=re.MULTILINE)
    assert len(top_level) == len(set(top_level)), "a key set twice (YAML keeps only the last)"
    document = yaml.safe_load(text)
    assert document["hostname"] == "code"
    assert document["fqdn"] == "code.exnhs-dev.internal"
    assert document["apt"] == {"proxy": "http://mirror.exnhs-dev.internal:3142"}  # no Internet: the mirror
    files = written_files(document)
    assert files["/etc/trust-blueprints/role"] == f"{NAME}\n"
    assert json.loads(files["/etc/trust-blueprints/code-server.json"]) == sample_config["roles"][NAME]
    assert "--bind-addr 10.40.2.6:8443" in files["/etc/systemd/system/code-server.service"]


def test_its_template_comes_from_its_declared_folder(sample_config):
    machine = _sample_machine(sample_config)
    # Declared with the mirror's folder, the role gets the mirror's template, which needs settings
    # (upstreams, allowlists) that the sample role's section does not have.
    with registered(replace(ROLE, folder=Path(cloud_init.__file__).parent / "package_mirror")), \
            pytest.raises(cloud_init.RenderError, match=f"{NAME}/cloud-init.yaml.j2: .*upstreams"):
        render_user_data(sample_config, machine)


# ---------------------------------------------------------------------------------------------
# Plans under mocks


def test_its_vm_is_planned_with_its_component_tag(sample_plan):
    vms = [vm for vm in all_of(sample_plan.resources, VM) if vm.inputs["tags"].get("component") == ROLE.component]
    assert [vm.azure_name for vm in vms] == ["vm-exnhs-dev-uks-code"]
    vm = vms[0]
    assert vm.inputs["tags"]["blueprint"] == ROLE.component
    assert vm.inputs["osProfile"]["computerName"] == "code"
    assert vm.inputs["hardwareProfile"]["vmSize"] == "Standard_B2s"
    with registered(ROLE):
        user_data = render_user_data(sample_plan.config, _sample_machine(sample_plan.config))
    assert base64.b64decode(vm.inputs["osProfile"]["customData"]) == user_data
    nic = only([r for r in sample_plan.resources if r.azure_name == "nic-exnhs-dev-uks-code"], NIC)
    assert nic.inputs["ipConfigurations"][0]["privateIPAddress"] == "10.40.2.6"


def test_the_plan_has_one_vm_per_machine(sample_plan):
    with registered(ROLE):
        machines = plan_machines(sample_plan.config)
    names = sorted(vm.inputs["osProfile"]["computerName"] for vm in all_of(sample_plan.resources, VM))
    assert names == sorted(m.name for m in machines)
    assert "code" in names


# ---------------------------------------------------------------------------------------------
# NSG rules from the flow table


def _rules_named(config, name):
    return {subnet: [rule for rule in rules if rule.name == name] for subnet, rules in nsg_rules(config).items()}


def test_a_flow_row_for_it_becomes_nsg_rules(sample_config, monkeypatch):
    row = Flow("editor-analytics-to-code", "role:analytics", f"role:{NAME}", (8443,), "analysts' editor")
    assert _rules_named(sample_config, "allow-editor-analytics-to-code") == {
        "gateway": [], "services": [], "workloads": []}
    monkeypatch.setattr(network_flows, "FLOWS", (*network_flows.FLOWS, row))
    found = _rules_named(sample_config, "allow-editor-analytics-to-code")
    assert [r.direction for r in found["services"]] == ["Inbound"]
    assert [r.direction for r in found["workloads"]] == ["Outbound"]
    assert found["gateway"] == []
    for rule in found["services"] + found["workloads"]:
        assert rule.destination_prefixes == ("10.40.2.6/32",)
        assert rule.source_prefixes == ("10.40.3.4/32", "10.40.3.5/32")
        assert rule.destination_ports == ("8443",)
        assert rule.access == "Allow" and rule.priority < 4096
    # Still ahead of the final deny.
    names = [rule.name for rule in nsg_rules(sample_config)["services"] if rule.direction == "Inbound"]
    assert names.index("allow-editor-analytics-to-code") < names.index("deny-all-inbound")


# ---------------------------------------------------------------------------------------------
# Policies follow the declaration


def _rule_result(rule_id: str, plan: Plan):
    results = [result for result in evaluate(plan) if result.rule.id == rule_id]
    assert len(results) == 1
    return results[0]


def _mandatory_failures_of_the_sample(plan: Plan) -> list[tuple[str, str]]:
    """(rule, resource) for every mandatory rule the sample role's own resources break."""
    own = {r.azure_name for r in plan.resources if r.name == "env-code" or r.name.startswith("env-code-")}
    assert "vm-exnhs-dev-uks-code" in own
    return [(result.rule.id, violation.resource) for result in mandatory_failures(evaluate(plan))
            for violation in result.violations if violation.resource in own]


def test_the_nightly_shutdown_policy_reports_its_vm(sample_plan):
    with registered(ROLE):
        result = _rule_result(NIGHTLY_SHUTDOWN_RULE, sample_plan)
        own_failures = _mandatory_failures_of_the_sample(sample_plan)
    assert [v.resource for v in result.violations] == ["vm-exnhs-dev-uks-code"]
    assert "code-server" in result.violations[0].message
    # Every other mandatory rule holds for it: Trusted Launch, monitoring, tags and the rest.
    assert own_failures == [(NIGHTLY_SHUTDOWN_RULE, "vm-exnhs-dev-uks-code")]


def test_a_role_that_runs_all_night_is_not_reported(sample_plan):
    with registered(replace(ROLE, nightly_shutdown=False)):
        assert _rule_result(NIGHTLY_SHUTDOWN_RULE, sample_plan).passed
        assert _mandatory_failures_of_the_sample(sample_plan) == []


# ---------------------------------------------------------------------------------------------
# The registry refuses what does not hold together


def _declared_fields() -> dict[str, Any]:
    return {field.name: getattr(ROLE, field.name) for field in fields(Role)}


def test_the_sample_declaration_names_every_field():
    assert Role(**_declared_fields()) == ROLE


@pytest.mark.parametrize("missing", [field.name for field in fields(Role)])
def test_a_declaration_missing_a_field_fails_at_construction(missing):
    declared = _declared_fields()
    del declared[missing]
    with pytest.raises(TypeError, match=f"missing 1 required .*'{missing}'"):
        Role(**declared)


@pytest.mark.parametrize(("change", "message"), [
    ({"data_disk_setting": "vm_size"}, "data_disk_setting and data_disk go together"),
    ({"data_disk": DataDiskLayout(("/srv/code",), ("code-server",))}, "data_disk_setting and data_disk go together"),
    ({"data_disk_setting": "disk_gb", "data_disk": DataDiskLayout(("/srv/code",), ("code-server",))},
     "data_disk_setting 'disk_gb' is not a key of settings_schema"),
    ({"numbered": True}, "a numbered role needs a 'count' key"),
    ({"settings_schema": {"port": ROLE.settings_schema["port"]}}, "settings_schema needs a 'vm_size' key"),
    ({"subnet": "bastion"}, "subnet 'bastion' is not one of gateway, services, workloads"),
    ({"name": "CodeServer"}, "name must be lowercase letters and _"),
    ({"host_name": "code_server"}, "host_name 'code_server' is not a short DNS label"),
    ({"first_host": -1}, "first_host must be 0 or more"),
    ({"deploy": "tests.roles.sample_role.component.deploy"}, "must be 'module:function'"),
    ({"folder": Path(__file__).parent}, "cloud-init.yaml.j2 is missing"),
    ({"publication": Publication("gateway-location.conf.j2", "/code/", "Editor", "an editor")},
     "gateway-location.conf.j2 is missing"),
])
def test_a_contradictory_declaration_is_refused(change, message):
    with pytest.raises(ValueError, match="role '.*': .*" + re.escape(message)):
        replace(ROLE, **change)


@pytest.mark.parametrize(("extra", "message"), [
    ((replace(ROLE, host_name="git"),), "roles 'git_server' and 'code_server' share host name 'git'"),
    ((replace(ROLE, first_host=1),), "roles 'code_server' and 'git_server' would share addresses in the services"),
    ((replace(ROLE, subnet="workloads", first_host=5),),
     "roles 'analytics' and 'code_server' would share addresses in the workloads subnet "
     "(a numbered role must be the last in its subnet)"),
    ((replace(ROLE, requires=(("jupyter_proxy", "publishes the editor"),)),),
     "role 'code_server' requires 'jupyter_proxy', which is not a role"),
    ((replace(ROLE, secrets=(SecretSpec("package-requests-reader", "token"),)),),
     "secret 'package-requests-reader' is a ssh-ed25519 for"),
    ((ROLE, replace(ROLE, summary="the same role again")), "two roles are named 'code_server'"),
])
def test_roles_that_contradict_the_registered_ones_are_refused(extra, message):
    shipped = all_roles()
    with pytest.raises(RoleRegistryError) as error, registered(*extra):
        pytest.fail("registered() accepted a contradiction")
    assert message in str(error.value)
    assert all_roles() == shipped  # nothing half-registered


def test_a_role_with_a_registered_name_stands_in_for_it():
    git = roles.role("git_server")
    with registered(replace(git, summary="the trust's own Git server")) as registry:
        assert roles.role("git_server").summary == "the trust's own Git server"
        assert [declared.name for declared in registry] == [declared.name for declared in all_roles()]
        assert len(registry) == len(role_names())
    assert roles.role("git_server") is git


def test_a_numbered_role_may_be_last_in_its_subnet():
    numbered = replace(ROLE, numbered=True, settings_schema={**ROLE.settings_schema, "count": {"type": "integer"}})
    with registered(numbered) as registry:
        services = [declared.name for declared in registry if declared.subnet == "services"]
    assert services == ["package_mirror", "git_server", NAME]


# ---------------------------------------------------------------------------------------------
# Finding role folders: a folder's role.py must declare the folder's name


@pytest.fixture
def role_folders(tmp_path, monkeypatch):
    """A stand-in for blueprints/: folders made here are found (and imported) as blueprints.<folder>."""
    made: list[str] = []

    def make(folder: str, source: str) -> None:
        assert not hasattr(blueprints, folder) and not (Path(roles.__file__).parent / folder).exists()
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
        (tmp_path / folder / "role.py").write_text(source)
        made.append(folder)
        importlib.invalidate_caches()

    monkeypatch.setattr(roles, "PACKAGE_DIR", tmp_path)
    monkeypatch.setattr(blueprints, "__path__", [*blueprints.__path__, str(tmp_path)])
    yield make
    for folder in made:
        for module in [name for name in sys.modules if name == f"blueprints.{folder}"
                       or name.startswith(f"blueprints.{folder}.")]:
            del sys.modules[module]
        if hasattr(blueprints, folder):
            delattr(blueprints, folder)


SAMPLE_SOURCE = "from tests.roles.sample_role.role import ROLE as ROLE\n"


def test_a_folder_declaring_its_own_name_is_found(role_folders):
    role_folders(NAME, SAMPLE_SOURCE)
    assert roles._discover() == [ROLE]


def test_a_folder_declaring_another_name_is_refused(role_folders):
    role_folders("editor", SAMPLE_SOURCE)
    with pytest.raises(RoleRegistryError, match=re.escape("blueprints/editor/role.py declares 'code_server'; "
                                                          "a role is named after its folder")):
        roles._discover()


def test_a_folder_whose_role_py_declares_no_role_is_refused(role_folders):
    role_folders(NAME, "ROLE = {'name': 'code_server'}\n")
    with pytest.raises(RoleRegistryError, match=re.escape(f"blueprints/{NAME}/role.py must define ROLE = Role(...)")):
        roles._discover()


def test_folders_without_a_role_py_are_not_roles(role_folders, tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "__init__.py").write_text("")
    role_folders(NAME, SAMPLE_SOURCE)
    assert [declared.name for declared in roles._discover()] == [NAME]


def test_the_shipped_registry_is_what_discovery_finds():
    assert roles.checked(roles._discover()) == all_roles()
    assert NAME not in {declared.name for declared in roles._discover()}
