"""The trust's declared data sources, from an analytics VM: the declared port answers, nothing else does,
and the VM's ODBC data source names the right server and port.

In the lab a TCP listener stands in for each data source's server, inside the trust network's
namespace (lab/trust_network.py), on the declared port and on one port nobody declared; the NSG rules
compiled to nftables decide which connections arrive. Against a deployment (``--target ssh``) only
the client configuration is checked: the trust's real servers are not this suite's to probe.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blueprints.data_sources import ODBC_DRIVER, data_source_server, declared_data_sources

pytestmark = pytest.mark.lab

# No flow in the table uses it, so the final deny must drop it.
UNDECLARED_PORT = 15433
# Accepts connections on every (address, port) given and prints each peer as a JSON line.
LISTENER = r"""
import json, selectors, socket, sys
selector = selectors.DefaultSelector()
for spec in sys.argv[1:]:
    address, port = spec.rsplit(":", 1)
    server = socket.create_server((address, int(port)))
    server.setblocking(False)
    selector.register(server, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in selector.select():
        connection, peer = key.fileobj.accept()
        print(json.dumps({"peer": peer[0], "port": key.fileobj.getsockname()[1]}), flush=True)
        connection.close()
"""


def _sources(lab: Any) -> list[dict[str, Any]]:
    sources = declared_data_sources(lab.config)
    if not sources:
        pytest.skip("this stack declares no data source (roles.analytics.data_sources)")
    return sources


def _analytics(lab: Any) -> Any:
    return next(m for m in lab.machines if m.role == "analytics")


def _connects(host: Any, address: str, port: int) -> bool:
    """True when a TCP connection from ``host`` to address:port is accepted within 5 seconds."""
    probe = (f"import socket; socket.create_connection(({address!r}, {port}), timeout=5).close()")
    return host.run(f"python3 -c {json.dumps(probe)}").rc == 0


@pytest.fixture(scope="module")
def listeners(lab: Any) -> Iterator[tuple[list[tuple[str, int]], Path]]:
    """Listeners standing in for every declared server, on its port and on UNDECLARED_PORT; the log of peers."""
    if lab.target != "lab":
        pytest.skip("the trust's real data sources are not probed from the suite")
    from lab.trust_network import TRUST_NETNS, server_addresses

    endpoints = []
    for source, address in zip(_sources(lab), server_addresses(lab.config), strict=False):
        endpoints += [(address, int(source["port"])), (address, UNDECLARED_PORT)]
    endpoints = list(dict.fromkeys(endpoints))
    log = Path(lab.state_dir or "/tmp") / "data-source-listener.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["ip", "netns", "exec", TRUST_NETNS, sys.executable, "-c", LISTENER,
             *(f"{address}:{port}" for address, port in endpoints)],
            stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while "ready" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, f"the listener stopped: {log.read_text()}"
            time.sleep(0.1)
        assert "ready" in log.read_text(), f"the listener did not start: {log.read_text()}"
        yield endpoints, log
    finally:
        process.terminate()
        process.wait(timeout=10)


def _peers(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_the_declared_port_of_each_data_source_answers_the_analytics_vm(lab, analytics_host, listeners):
    for source in _sources(lab):
        address = data_source_server(source)
        assert _connects(analytics_host, address, int(source["port"])), (
            f"{source['name']}: analytics cannot reach {address}:{source['port']}")
    assert _analytics(lab).private_ip in {peer["peer"] for peer in _peers(listeners[1])}


def test_an_undeclared_port_on_the_same_server_is_dropped(lab, analytics_host, listeners):
    endpoints, _ = listeners
    address = endpoints[0][0]
    # Control: the listener does answer on that port from the host, so only the NSG rules can stop it.
    control = subprocess.run([sys.executable, "-c", f"import socket; socket.create_connection(({address!r}, "
                              f"{UNDECLARED_PORT}), timeout=5).close()"], capture_output=True, check=False)
    assert control.returncode == 0, control.stderr
    assert not _connects(analytics_host, address, UNDECLARED_PORT)


def test_machines_other_than_analytics_cannot_reach_a_data_source(lab, listeners):
    source = _sources(lab)[0]
    address = data_source_server(source)
    for machine in lab.machines:
        if machine.role != "analytics":
            assert not _connects(lab.host(machine.name), address, int(source["port"])), machine.name


def test_each_sql_server_source_is_an_odbc_data_source_with_its_server_and_port(lab, analytics_host):
    sqlserver = [source for source in _sources(lab) if source["kind"] == "sqlserver"]
    if not sqlserver:
        pytest.skip("no sqlserver data source declared")
    listed = analytics_host.check_output("odbcinst -q -s")
    for source in sqlserver:
        assert f"[{source['name']}]" in listed
        entry = analytics_host.check_output(f"odbcinst -q -s -n {source['name']}")
        fields = dict(line.split("=", 1) for line in entry.replace(" = ", "=").splitlines() if "=" in line)
        assert fields["Driver"] == ODBC_DRIVER
        assert fields["Server"] == data_source_server(source)
        assert fields["Port"] == str(source["port"])
    assert ODBC_DRIVER in analytics_host.check_output("odbcinst -q -d")


def test_isql_opens_a_connection_to_the_data_source_through_its_dsn(lab, analytics_host, listeners):
    """No SQL Server answers in the lab, so the login fails; what counts is that the DSN led the driver to the
    listener, from the analytics VM, on the declared port."""
    source = next((s for s in _sources(lab) if s["kind"] == "sqlserver"), None)
    if source is None:
        pytest.skip("no sqlserver data source declared")
    _, log = listeners
    before = len(_peers(log))
    analytics_host.run(f"timeout 20 isql -v {source['name']} nobody nothing </dev/null")
    arrived = _peers(log)[before:]
    assert {"peer": _analytics(lab).private_ip, "port": int(source["port"])} in arrived, arrived


def test_the_client_files_are_where_unixodbc_and_libpq_read_them(analytics_host):
    for link in ("/etc/odbc.ini", "/etc/postgresql-common/pg_service.conf"):
        assert analytics_host.file(link).is_symlink, link
        assert analytics_host.file(analytics_host.file(link).linked_to).exists, link
