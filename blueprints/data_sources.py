"""The trust's data sources that the analytics VMs may reach: their settings, kinds and checks.

A data source is a server on the trust's own network (joined by VNet peering, VPN or ExpressRoute),
declared under ``roles.analytics.data_sources``. Each one becomes exactly one flow in the flow table
(analytics VMs to its address range, on its one port: blueprints/network_flows.py), so an NSG rule,
a line in the diagram and the request pack; and a client configuration on each analytics VM
(analytics/vm-settings.yaml.j2): an ODBC data source for SQL Server, a libpq service for PostgreSQL.
Nothing else on the trust's network is reachable from the environment.

Where a data source may be is declared once, by the trust: ``network.trust_ranges`` (or
``network.private_client_ranges``, which are the trust's network too). A range outside them, on the
Internet or inside the environment's own address space is refused (``data_source_problems``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from blueprints.address_ranges import is_ipv4_address, is_private, parse_range
from blueprints.settings_fields import FQDN_PATTERN, SINGLE_LINE_ALLOWED, SINGLE_LINE_PATTERN

__all__ = [
    "DATA_SOURCES_FIELD",
    "DATA_SOURCE_KINDS",
    "DATA_SOURCE_NAME_PATTERN",
    "LINKS",
    "ODBC_DRIVER",
    "ODBC_INI",
    "PG_SERVICE_CONF",
    "DataSourceKind",
    "client_files",
    "data_source_problems",
    "data_source_server",
    "declared_data_sources",
    "trust_ranges",
]

# Lower case, digits and hyphens: the name is an ODBC section, a libpq service and part of an NSG
# rule's name, and each of those accepts this much.
DATA_SOURCE_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"
IPV4_CIDR_PATTERN = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$"
IPV4_ADDRESS_PATTERN = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$"
DATABASE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$"
# The setting's home in a stack file, for messages.
DATA_SOURCES_FIELD = "roles.analytics.data_sources"
# A range wider than this is most of a trust's network, not a data source.
WIDEST_SOURCE_PREFIX = 16


@dataclass(frozen=True)
class DataSourceKind:
    name: str
    usual_port: int
    client: str  # what an analytics VM is given for it, in words (docs, request pack)
    needs_server: bool  # the client configuration names one server


DATA_SOURCE_KINDS: dict[str, DataSourceKind] = {kind.name: kind for kind in (
    DataSourceKind("sqlserver", 1433, "an ODBC data source in /etc/odbc.ini (FreeTDS driver from Debian)", True),
    DataSourceKind("postgres", 5432, "a libpq service in /etc/postgresql-common/pg_service.conf", True),
    DataSourceKind("https", 443, "the network path only (an API or web service: no client file)", False),
)}


DATA_SOURCES_SCHEMA: dict[str, Any] = {
    "type": "list", "default": [], "maxlength": 20,
    "meta": {"doc": "Servers on the trust's network that analytics VMs may reach (one port each); "
                    "nothing else on the trust's network is reachable"},
    "schema": {"type": "dict", "schema": {
        "name": {"type": "string", "required": True, "regex": DATA_SOURCE_NAME_PATTERN,
                 "meta": {"doc": "The name analysts use: the ODBC data source name or the libpq service",
                          "allowed": "2-32 lowercase letters, digits or -, starting with a letter"}},
        "kind": {"type": "string", "required": True, "allowed": sorted(DATA_SOURCE_KINDS),
                 "meta": {"doc": "What the server speaks: sqlserver (ODBC), postgres (libpq) or https"}},
        "range": {"type": "string", "required": True, "regex": IPV4_CIDR_PATTERN,
                  "meta": {"doc": "The server's address range (a /32 for one server), inside "
                                  "network.trust_ranges",
                           "allowed": "an IPv4 range such as 10.20.1.10/32"}},
        "port": {"type": "integer", "required": True, "min": 1, "max": 65535,
                 "meta": {"doc": "The one TCP port opened to it (SQL Server 1433, PostgreSQL 5432, HTTPS 443)"}},
        "server": {"type": "string", "required": False, "maxlength": 253,
                   "regex": f"({IPV4_ADDRESS_PATTERN})|({FQDN_PATTERN})",
                   "meta": {"doc": "The server the client configuration names; default: the range's address "
                                   "when the range is a /32",
                            "allowed": "an IPv4 address inside the range, or a DNS name the VNet resolves"}},
        "database": {"type": "string", "required": False, "regex": DATABASE_PATTERN,
                     "meta": {"doc": "The database the data source opens (optional)",
                              "allowed": "1-128 letters, digits, _ . or -, starting with a letter or _"}},
        "description": {"type": "string", "required": False, "maxlength": 200, "regex": SINGLE_LINE_PATTERN,
                        "meta": {"doc": "What it holds, in a few words", "allowed": SINGLE_LINE_ALLOWED}},
    }},
}


def declared_data_sources(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The stack's data sources ([] without analytics VMs, which are the only machines that reach them)."""
    analytics = config["roles"].get("analytics")
    return list(analytics.get("data_sources", [])) if analytics else []


def trust_ranges(config: dict[str, Any]) -> list[str]:
    """Every range the trust declares as its own network."""
    network = config["network"]
    return list(network.get("trust_ranges", [])) + list(network.get("private_client_ranges", []))


def data_source_server(source: dict[str, Any]) -> str | None:
    """The host a client configuration names: the stack's ``server``, else a /32 range's address."""
    if source.get("server"):
        return str(source["server"])
    network = ipaddress.ip_network(source["range"], strict=False)
    return str(network.network_address) if network.num_addresses == 1 else None


# Where the client configuration goes: the VM's settings may write only under /etc/trust-blueprints/
# (templates/trust-blueprints-settings.py), so these are the files, and the analytics cloud-init links
# the places the clients read to them (LINKS). unixODBC reads system data sources from /etc/odbc.ini;
# Debian builds libpq with PGSYSCONFDIR=/etc/postgresql-common, where it looks for pg_service.conf.
ODBC_INI = "/etc/trust-blueprints/data-sources/odbc.ini"
PG_SERVICE_CONF = "/etc/trust-blueprints/data-sources/pg_service.conf"
LINKS = {"/etc/odbc.ini": ODBC_INI, "/etc/postgresql-common/pg_service.conf": PG_SERVICE_CONF}
# The driver's name in /etc/odbcinst.ini (analytics/cloud-init.yaml.j2 registers Debian's tdsodbc).
ODBC_DRIVER = "FreeTDS"
# TDS 7.4 is what SQL Server 2012 and later speak.
TDS_VERSION = "7.4"
_HEADER = ("# Written by trust-blueprints from roles.analytics.data_sources in the stack file;\n"
           "# local edits are overwritten when the VM next applies its settings.\n")


def client_files(config: dict[str, Any]) -> dict[str, str]:
    """path -> content of the client configuration every analytics VM gets for the stack's data sources.

    Both files are always written, so removing the last data source of a kind empties its file.
    Connections are encrypted: FreeTDS and libpq both refuse a server that will not use TLS.
    """
    odbc = [_HEADER]
    pg = [_HEADER]
    for source in declared_data_sources(config):
        server = data_source_server(source)
        if source["kind"] == "sqlserver":
            odbc.append(f"\n[{source['name']}]\n")
            if source.get("description"):
                odbc.append(f"Description = {source['description']}\n")
            odbc.append(f"Driver = {ODBC_DRIVER}\nServer = {server}\nPort = {source['port']}\n")
            if source.get("database"):
                odbc.append(f"Database = {source['database']}\n")
            odbc.append(f"TDS_Version = {TDS_VERSION}\nEncryption = require\n")
        elif source["kind"] == "postgres":
            pg.append(f"\n[{source['name']}]\nhost={server}\nport={source['port']}\n")
            if source.get("database"):
                pg.append(f"dbname={source['database']}\n")
            pg.append("sslmode=require\n")
    return {ODBC_INI: "".join(odbc), PG_SERVICE_CONF: "".join(pg)}


def data_source_problems(config: dict[str, Any]) -> list[tuple[str, Any, str, str]]:
    """(field, value, what is wrong, hint) for every data source and trust range a schema cannot judge.

    The value is None for a field the stack leaves out."""
    problems: list[tuple[str, Any, str, str]] = []
    try:
        space: ipaddress.IPv4Network | None = ipaddress.IPv4Network(config["network"]["address_space"])
    except ValueError:
        space = None  # reported by the address plan's own check
    declared: list[ipaddress.IPv4Network] = []
    for index, value in enumerate(config["network"].get("trust_ranges", [])):
        field = f"network.trust_ranges[{index}]"
        parsed = parse_range(value)
        if isinstance(parsed, str):
            problems.append((field, value, parsed, ""))
            continue
        if not is_private(parsed):
            problems.append((field, value, "must be a private range (10/8, 172.16/12, 192.168/16)",
                             "the trust's network is reached over peering, VPN or ExpressRoute, never the Internet"))
            continue
        if space is not None and parsed.overlaps(space):
            problems.append((field, value, f"overlaps the environment's own address space {space}",
                             "name the trust's own ranges; the environment's subnets are not data sources"))
            continue
        declared.append(parsed)
    for value in config["network"].get("private_client_ranges", []):
        parsed = parse_range(value)
        if not isinstance(parsed, str):
            declared.append(parsed)

    seen: dict[str, int] = {}
    for index, source in enumerate(declared_data_sources(config)):
        base = f"{DATA_SOURCES_FIELD}[{index}]"
        if source["name"] in seen:
            problems.append((f"{base}.name", source["name"],
                             f"is already the name of {DATA_SOURCES_FIELD}[{seen[source['name']]}]",
                             "each data source needs its own name (it is the ODBC or libpq name)"))
        seen.setdefault(source["name"], index)
        parsed = parse_range(source["range"])
        if isinstance(parsed, str):
            problems.append((f"{base}.range", source["range"], parsed, ""))
            continue
        if space is not None and parsed.overlaps(space):
            problems.append((f"{base}.range", source["range"],
                             f"overlaps the environment's own address space {space}",
                             "a data source is on the trust's network, outside the environment"))
            continue
        if not is_private(parsed):
            problems.append((f"{base}.range", source["range"],
                             "must be a private range of the trust's network (10/8, 172.16/12, 192.168/16), "
                             "never the Internet", "data sources are reached over peering, VPN or ExpressRoute"))
            continue
        if parsed.prefixlen < WIDEST_SOURCE_PREFIX:
            problems.append((f"{base}.range", source["range"], f"must be /{WIDEST_SOURCE_PREFIX} or narrower",
                             "name the server (a /32) or its subnet, not the trust's whole network"))
            continue
        if not any(parsed.subnet_of(trust) for trust in declared):
            ranges = ", ".join(str(trust) for trust in declared) or "none declared"
            problems.append((f"{base}.range", source["range"],
                             f"must lie inside a range of the trust's network, as declared in network.trust_ranges "
                             f"({ranges})",
                             "add the trust network's range to network.trust_ranges"))
            continue
        server = source.get("server")
        kind = DATA_SOURCE_KINDS[source["kind"]]
        if server and is_ipv4_address(server) and ipaddress.IPv4Address(server) not in parsed:
            problems.append((f"{base}.server", server, f"must be an address inside the range {parsed}",
                             "the NSG opens only the range; a server outside it is unreachable"))
        elif not server and kind.needs_server and parsed.num_addresses > 1:
            problems.append((f"{base}.server", None,
                             f"is needed: the range {parsed} has more than one address and a {kind.name} "
                             "client configuration names one server",
                             "give the server's address inside the range, or make the range a /32"))
    return problems
