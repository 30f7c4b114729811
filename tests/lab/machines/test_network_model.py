"""The network model, proven from inside the lab: the flow table is the only way through.

Every ordered pair of machines is tried on every port the flow table uses plus one it never
opens, with a listener on the far side: allowed flows must connect, all others must be dropped
(even inside one subnet, as NSGs filter there too). Then Internet egress, the client's view of
the gateway, internal names, and that a machine cannot loosen the rules.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from lab.address_plan import address_plan
from lab.layout import BASTION_NETNS, NFT_TABLE
from lab.machines import run
from tests.lab.machines.flow_oracle import allowed, allowed_from_subnet, allowed_to_internet, flow_ports
from tests.lab.machines.probes import (
    client_connect,
    connect_all,
    namespace_connect,
    start_listeners,
    stop_listeners,
)

pytestmark = pytest.mark.lab

# Any address outside the lab: this host's network answers TCP connects everywhere, so a
# timeout here can only be the lab's own rules.
OUTSIDE = ("deb.debian.org", 80)


def _lab_config() -> dict[str, Any]:
    from lab.layout import read_record, running_labs
    from validation.problems import StackFileError
    from validation.stack_config import load_stack

    labs = running_labs()
    try:
        return load_stack(read_record(labs[0])["stack_file"]) if labs else load_stack("stacks/example.yaml")
    except (OSError, StackFileError):
        # Collection must not fail on a lab started from another checkout; the tests then skip or fail.
        return load_stack("stacks/example.yaml")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pair" in metafunc.fixturenames:
        config = _lab_config()
        machines = address_plan(config).machines
        cases = [(source.name, destination.name, port)
                 for source in machines for destination in machines if source != destination
                 for port in flow_ports(config)]
        metafunc.parametrize("pair", cases, ids=[f"{s}->{d}:{p}" for s, d, p in cases])


@pytest.fixture(scope="module")
def matrix(lab: Any) -> Iterator[dict[tuple[str, str, int], str]]:
    """Verdict of every machine-to-machine connection, probed in one batch per source."""
    ports = flow_ports(lab.config)
    listeners = {machine.name: start_listeners(machine.name, ports) for machine in lab.machines}
    verdicts = {}
    for source in lab.machines:
        targets = [(d.private_ip, p) for d in lab.machines if d != source for p in ports]
        by_address = {d.private_ip: d.name for d in lab.machines}
        for (address, port), verdict in connect_all(source.name, targets).items():
            verdicts[(source.name, by_address[address], port)] = verdict
    yield verdicts
    for name, pid in listeners.items():
        stop_listeners(name, pid)


def test_flow_table_decides_between_machines(lab: Any, matrix: dict[tuple[str, str, int], str],
                                             pair: tuple[str, str, int]) -> None:
    source, destination, port = pair
    expected = "reached" if allowed(lab.config, lab.machine(source), lab.machine(destination), port) else "dropped"
    assert matrix[pair] == expected, (f"{source} -> {destination}:{port} was {matrix[pair]}; "
                                      f"the flow table says {expected}")


def test_some_flows_are_allowed_and_some_denied(lab: Any, matrix: dict[tuple[str, str, int], str]) -> None:
    # Guards the matrix itself: a lab that passed everything or dropped everything would fail here.
    assert "reached" in matrix.values() and "dropped" in matrix.values()


def test_internet_egress_only_where_the_flow_table_allows(lab: Any) -> None:
    for machine in lab.machines:
        verdict = connect_all(machine.name, [OUTSIDE])[OUTSIDE]
        expected = "reached" if allowed_to_internet(lab.config, machine, OUTSIDE[1]) else "dropped"
        assert verdict == expected, f"{machine.name} -> Internet {OUTSIDE}: {verdict}, expected {expected}"


def test_mirror_fetches_from_upstream_over_http(lab: Any, mirror_host: Any) -> None:
    status = mirror_host.check_output("curl -s -o /dev/null -w '%{http_code}' --max-time 20 "
                                      "http://deb.debian.org/debian/dists/trixie/Release")
    assert status == "200"


def test_workloads_cannot_reach_addresses_the_lab_routes_outside_the_vnet(lab: Any) -> None:
    # The client namespace sits on the lab's Internet side: only the gateway's published ports
    # face it, and nothing inside may open connections to it (except the mirror on 80/443).
    plan = address_plan(lab.config)
    port = 18081
    process = subprocess.Popen(["ip", "netns", "exec", "tb-client", "python3", "-c",
                                "import socket,time;s=socket.socket();"
                                "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                                f"s.bind(('0.0.0.0',{port}));s.listen();time.sleep(60)"])
    try:
        for machine in lab.machines:
            verdict = connect_all(machine.name, [(plan.client_ip, port)])[(plan.client_ip, port)]
            assert verdict == "dropped", f"{machine.name} reached the client namespace on {port}"
    finally:
        process.kill()
        process.wait()


def test_client_reaches_the_gateway_only_on_its_published_ports(lab: Any) -> None:
    plan = address_plan(lab.config)
    gateway = next((m for m in lab.machines if m.public_entry), None)
    if gateway is None:
        pytest.skip("this stack has no self-hosted gateway (no public entry)")
    listener = start_listeners(gateway.name, [443, 22, 8443])
    public = plan.public_gateway_ip
    try:
        verdicts = client_connect(lab, [(public, 443), (public, 22), (public, 8443), (gateway.private_ip, 22),
                                        *((m.private_ip, 22) for m in lab.machines if m != gateway)])
    finally:
        stop_listeners(gateway.name, listener)
    assert verdicts[(public, 443)] == "reached"
    assert verdicts[(public, 22)] == "reached"
    assert verdicts[(public, 8443)] == "dropped"
    for (address, port), verdict in verdicts.items():
        if address != public:
            assert verdict == "dropped", f"the client reached the private address {address}:{port}"


def _bastion_plan(lab: Any) -> Any:
    plan = address_plan(lab.config)
    if plan.bastion_ip is None:
        pytest.skip("this stack's gateway is not Azure Bastion")
    return plan


def test_client_reaches_bastion_only_on_443(lab: Any) -> None:
    """Bastion's public IP takes 443 (its stand-in answers there, lab/bastion.py); nothing else, and no VM's
    private address, faces the client."""
    plan = _bastion_plan(lab)
    public = plan.public_bastion_ip
    verdicts = client_connect(lab, [(public, 443), (public, 22), (public, 8443), (plan.bastion_ip, 443),
                                    *((m.private_ip, 22) for m in lab.machines)])
    assert verdicts.pop((public, 443)) == "reached"
    for (address, port), verdict in verdicts.items():
        assert verdict == "dropped", f"the client reached {address}:{port}"


def test_the_bastion_instance_reaches_what_the_flow_table_gives_its_subnet(lab: Any) -> None:
    """From Bastion's instance address, every machine and flow port, judged against FLOWS' subnet:bastion rows."""
    plan = _bastion_plan(lab)
    ports = flow_ports(lab.config)
    listeners = {machine.name: start_listeners(machine.name, ports) for machine in lab.machines}
    try:
        verdicts = namespace_connect(BASTION_NETNS, [(m.private_ip, p) for m in lab.machines for p in ports])
    finally:
        for name, pid in listeners.items():
            stop_listeners(name, pid)
    wrong = []
    for machine in lab.machines:
        for port in ports:
            expected = "reached" if allowed_from_subnet(lab.config, "bastion", machine, port) else "dropped"
            if verdicts[(machine.private_ip, port)] != expected:
                wrong.append(f"{plan.bastion_ip} -> {machine.name}:{port} {verdicts[(machine.private_ip, port)]}, "
                             f"the flow table says {expected}")
    assert wrong == []
    assert "reached" in verdicts.values() and "dropped" in verdicts.values()


def test_gateway_public_name_resolves_for_the_client(lab: Any) -> None:
    plan = address_plan(lab.config)
    if plan.public_gateway_ip is None:
        pytest.skip("this stack has no self-hosted gateway (no public entry)")
    hostname = lab.config["roles"]["gateway"]["hostname"]
    result = lab.client(["getent", "hosts", hostname])
    assert result.stdout.split()[0] == plan.public_gateway_ip


@pytest.mark.parametrize("where", ["first", "last"])
def test_internal_names_resolve_in_every_machine(lab: Any, where: str) -> None:
    zone = lab.record["zone"]
    machine = lab.machines[0 if where == "first" else -1]
    host = lab.host(machine.name)
    for other in lab.machines:
        answer = host.check_output(f"getent hosts {other.name}.{zone}")
        assert answer.split()[0] == other.private_ip
    missing = host.run(f"getent hosts no-such-machine.{zone}")
    assert missing.rc != 0, "a name that is not in the zone must not resolve"


def test_mirror_resolves_upstream_names(mirror_host: Any) -> None:
    assert mirror_host.run("getent hosts deb.debian.org").rc == 0


def test_a_machine_cannot_loosen_the_rules(lab: Any) -> None:
    # Root in a machine owns only its own network namespace: flushing it changes nothing on the host.
    workload = next(m for m in reversed(lab.machines) if not m.internet_egress)
    own_rules = run(None, workload.name, ["nft", "list", "ruleset"], check=True).stdout
    run(None, workload.name, ["nft", "flush", "ruleset"], check=True)
    try:
        host_table = subprocess.run(["nft", "list", "table", "inet", NFT_TABLE], capture_output=True)
        assert host_table.returncode == 0
        assert connect_all(workload.name, [OUTSIDE])[OUTSIDE] == "dropped"
    finally:
        # The machine's own rules back (its platform endpoints are root's alone): the suites beside this
        # one rely on them.
        run(None, workload.name, ["nft", "-f", "-"], input=own_rules, check=True)
