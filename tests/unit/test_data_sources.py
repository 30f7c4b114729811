"""Declared data sources: one flow and one outbound NSG rule each, client files on the analytics VMs,
and every bad declaration refused with its field named."""

from __future__ import annotations

import configparser
import copy
import ipaddress

import pytest

from blueprints.data_sources import LINKS, ODBC_DRIVER, ODBC_INI, PG_SERVICE_CONF, client_files
from blueprints.network_flows import Priority, active_flows, endpoint_text, nsg_rules
from blueprints.topology import plan_machines
from blueprints.vm_settings import document_files, settings_document
from validation.semantic_checks import semantic_problems

WAREHOUSE = "10.20.1.10/32"


def _with_sources(config, *sources, trust_ranges=("10.20.0.0/16",)):
    edited = copy.deepcopy(config)
    edited["network"]["trust_ranges"] = list(trust_ranges)
    if not trust_ranges:
        # No trust network at all: nor its private client ranges (nor the airlock, which needs them).
        edited["network"]["private_client_ranges"] = []
        edited["airlock"] = None
    edited["roles"]["analytics"]["data_sources"] = [dict(source) for source in sources]
    return edited


def _source(**fields):
    return {"name": "warehouse", "kind": "sqlserver", "range": WAREHOUSE, "port": 1433, **fields}


def _rules_to(config, prefix):
    return {subnet: [r for r in rules if prefix in r.destination_prefixes or prefix in r.source_prefixes]
            for subnet, rules in nsg_rules(config).items()}


def test_the_example_declares_the_warehouse_and_gets_exactly_one_rule_for_it(example_config):
    found = _rules_to(example_config, WAREHOUSE)
    assert {subnet for subnet, rules in found.items() if rules} == {"workloads"}
    (rule,) = found["workloads"]
    analytics = tuple(f"{m.private_ip}/32" for m in plan_machines(example_config) if m.role == "analytics")
    assert (rule.name, rule.direction, rule.access, rule.protocol) == (
        "allow-data-analytics-to-warehouse", "Outbound", "Allow", "Tcp")
    assert rule.source_prefixes == analytics
    assert rule.destination_ports == ("1433",)
    assert Priority.TO_TRUST_DATA_SOURCES <= rule.priority < Priority.TO_AZURE_SERVICES


def test_nothing_else_in_the_trust_network_is_opened(example_config):
    trust = ipaddress.ip_network("10.20.0.0/16")
    opened = [rule.name for rules in nsg_rules(example_config).values() for rule in rules
              for prefix in (*rule.source_prefixes, *rule.destination_prefixes)
              if "/" in prefix and ipaddress.ip_network(prefix).overlaps(trust)]
    # Besides the data source, only the flows from the trust's private client ranges (the example's data
    # providers' subnet, which uses the mirror and Git directly and uploads to the airlock), and from nowhere else.
    private = [rule for rules in nsg_rules(example_config).values() for rule in rules
               if rule.name.startswith("allow-") and "private-clients" in rule.name]
    assert {rule.source_prefixes for rule in private} == {tuple(example_config["network"]["private_client_ranges"])}
    assert sorted(set(opened)) == sorted({"allow-data-analytics-to-warehouse", *(rule.name for rule in private)})


def test_without_data_sources_there_is_no_data_flow(example_config):
    config = _with_sources(example_config)
    assert not [flow for flow in active_flows(config) if flow.destination.startswith("data-source:")]
    assert not [r for rules in nsg_rules(config).values() for r in rules if "data-" in r.name]


def test_each_source_gets_its_own_rule_and_port_in_the_data_source_band(example_config):
    config = _with_sources(example_config, _source(),
                           _source(name="audit", kind="postgres", range="10.20.7.0/28", server="10.20.7.5", port=5432),
                           _source(name="fhir", kind="https", range="10.20.9.0/24", port=443))
    rules = {r.name: r for r in nsg_rules(config)["workloads"] if r.name.startswith("allow-data-")}
    assert {name: (r.destination_prefixes, r.destination_ports) for name, r in rules.items()} == {
        "allow-data-analytics-to-warehouse": ((WAREHOUSE,), ("1433",)),
        "allow-data-analytics-to-audit": (("10.20.7.0/28",), ("5432",)),
        "allow-data-analytics-to-fhir": (("10.20.9.0/24",), ("443",)),
    }
    assert len({r.priority for r in rules.values()}) == 3
    assert endpoint_text("data-source:audit", config) == "trust data source audit (postgres, 10.20.7.0/28)"


def test_a_stack_without_analytics_vms_opens_no_data_source(example_config):
    config = _with_sources(example_config, _source())
    del config["roles"]["analytics"]
    assert not [r for rules in nsg_rules(config).values() for r in rules if "data-" in r.name]


def test_the_analytics_vm_settings_carry_an_odbc_data_source_for_sql_server(example_config):
    machine = next(m for m in plan_machines(example_config) if m.role == "analytics")
    files = document_files(settings_document(example_config, machine))
    odbc = configparser.ConfigParser()
    odbc.read_string(files[ODBC_INI])
    assert odbc.sections() == ["warehouse"]
    assert dict(odbc["warehouse"]) == {
        "description": "the trust's SQL Server data warehouse", "driver": ODBC_DRIVER, "server": "10.20.1.10",
        "port": "1433", "database": "Warehouse", "tds_version": "7.4", "encryption": "require"}
    pg = configparser.ConfigParser()
    pg.read_string(files[PG_SERVICE_CONF])
    assert pg.sections() == []


def test_postgres_sources_become_libpq_services_and_https_sources_no_file(example_config):
    config = _with_sources(example_config,
                           _source(name="audit", kind="postgres", range="10.20.7.0/28", server="10.20.7.5", port=5432,
                                   database="audit"),
                           _source(name="fhir", kind="https", range="10.20.9.0/24", port=443))
    files = client_files(config)
    pg = configparser.ConfigParser()
    pg.read_string(files[PG_SERVICE_CONF])
    assert dict(pg["audit"]) == {"host": "10.20.7.5", "port": "5432", "dbname": "audit", "sslmode": "require"}
    odbc = configparser.ConfigParser()
    odbc.read_string(files[ODBC_INI])
    assert odbc.sections() == []


def test_the_odbc_driver_named_is_the_one_the_analytics_cloud_init_registers(example_config):
    from blueprints.vm_settings import machine_files

    machine = next(m for m in plan_machines(example_config) if m.role == "analytics")
    registered = configparser.ConfigParser()
    registered.read_string(machine_files(example_config, machine)["/etc/odbcinst.ini"])
    assert ODBC_DRIVER in registered.sections()


def test_the_analytics_cloud_init_links_where_clients_read_to_the_settings_files(example_config):
    import yaml

    from blueprints.cloud_init import render_user_data

    machine = next(m for m in plan_machines(example_config) if m.role == "analytics")
    runcmd = yaml.safe_load(render_user_data(example_config, machine))["runcmd"]
    links = {tuple(step[-2:]) for step in runcmd if isinstance(step, list) and "ln -sfn" in " ".join(step)}
    assert links == set(LINKS.items())
    settings_step = runcmd.index("/usr/local/sbin/trust-blueprints-settings --now || exit 1")
    assert all(runcmd.index(step) > settings_step for step in runcmd
               if isinstance(step, list) and "ln -sfn" in " ".join(step))


BAD = [
    ("outside-the-trust-ranges", {"range": "10.30.1.10/32"}, (), "roles.analytics.data_sources[0].range",
     "must lie inside a range of the trust's network"),
    ("no-trust-range-declared", {}, None, "roles.analytics.data_sources[0].range", "none declared"),
    ("on-the-internet", {"range": "8.8.8.8/32"}, (), "roles.analytics.data_sources[0].range", "never the Internet"),
    ("inside-the-vnet", {"range": "10.40.3.9/32"}, (), "roles.analytics.data_sources[0].range",
     "overlaps the environment's own address space"),
    ("too-wide", {"range": "172.16.0.0/12"}, ("172.16.0.0/12",), "roles.analytics.data_sources[0].range",
     "must be /16 or narrower"),
    ("host-bits", {"range": "10.20.1.10/24"}, (), "roles.analytics.data_sources[0].range", "did you mean 10.20.1.0/24"),
    ("no-server-for-a-range", {"range": "10.20.1.0/24"}, (), "roles.analytics.data_sources[0].server", "is needed"),
    ("server-outside-range", {"range": "10.20.1.0/24", "server": "10.20.2.1"}, (),
     "roles.analytics.data_sources[0].server", "inside the range 10.20.1.0/24"),
]


@pytest.mark.parametrize(("case", "fields", "trust", "field", "words"), BAD, ids=[case[0] for case in BAD])
def test_a_bad_data_source_is_refused_naming_its_field(example_config, case, fields, trust, field, words):
    ranges = ("10.20.0.0/16",) if trust == () else () if trust is None else trust
    config = _with_sources(example_config, _source(**fields), trust_ranges=ranges)
    problems = [p for p in semantic_problems(config) if p.path == field]
    assert problems, [p.render("stack") for p in semantic_problems(config)]
    assert words in problems[0].allowed


def test_two_sources_with_one_name_are_refused(example_config):
    config = _with_sources(example_config, _source(), _source(range="10.20.1.11/32"))
    (problem,) = semantic_problems(config)
    assert problem.path == "roles.analytics.data_sources[1].name"
    assert "roles.analytics.data_sources[0]" in problem.allowed


def test_a_public_or_overlapping_trust_range_is_refused(example_config):
    config = _with_sources(example_config, trust_ranges=("203.0.113.0/24", "10.40.0.0/20"))
    problems = {p.path: p.allowed for p in semantic_problems(config)}
    assert "must be a private range" in problems["network.trust_ranges[0]"]
    assert "overlaps the environment's own address space" in problems["network.trust_ranges[1]"]


def test_a_private_client_range_counts_as_the_trust_network(example_config):
    config = _with_sources(example_config, _source(), trust_ranges=())
    config["network"]["private_client_ranges"] = ["10.20.0.0/16"]
    assert semantic_problems(config) == []


def test_a_source_named_by_dns_name_is_on_the_dns_allow_list_and_an_address_is_not(example_config):
    from blueprints.dns_allowlist import allowed_names

    named = _with_sources(example_config, _source(range="10.20.1.0/28", server="dwh.trust.example.nhs.uk"))
    assert "dwh.trust.example.nhs.uk" in {entry.name for entry in allowed_names(named, "kv", "st", "stairlock")}
    by_address = {entry.name for entry in allowed_names(example_config, "kv", "st", "stairlock")}
    assert not [name for name in by_address if name.startswith("10.20.")]
