"""What a role's component needs from the environment (blueprints/role_host.py): given a network, it is
usable alone, outside the reference environment."""

from blueprints.package_mirror.component import PackageMirror, PackageMirrorArgs
from blueprints.role_host import RoleHostArgs
from blueprints.topology import plan_machines
from tests.conftest import all_of


def test_a_blueprint_is_usable_alone_given_a_network(placement, run_component, example_config):
    mirror = next(m for m in plan_machines(example_config) if m.role == "package_mirror")
    host = RoleHostArgs(placement, mirror, "/subnets/services", "trustadmin",
                        example_config["admin"]["ssh_public_keys"], b"#cloud-config\n", "/dcr/1")
    resources = run_component(lambda: PackageMirror("mirror", PackageMirrorArgs(host)))
    vm = all_of(resources, "azure-native:compute:VirtualMachine")
    assert len(vm) == 1
    assert vm[0].inputs["tags"]["blueprint"] == "package-mirror"
