"""The gateway's fail2ban: refused web sign-ins from the trust's own client ranges never ban
them (one VPN egress address can be the whole trust), while SSH failures ban every address.

The jails are read as fail2ban reads them: the jail file from custom data, then the file its
``[INCLUDES] after`` names (written from user data), each jail inheriting ``[DEFAULT]``.
"""

from __future__ import annotations

import configparser
import copy
import json
import re
from typing import Any

import pytest

from blueprints.cloud_init import render_user_data
from blueprints.topology import Machine, plan_machines
from blueprints.vm_settings import machine_files, settings_document, settings_program

JAIL_FILE = "/etc/fail2ban/jail.d/trust-blueprints.local"
WEB_PORTS = {"http", "https", "80", "443"}


def _gateway(config: dict[str, Any]) -> Machine:
    return next(m for m in plan_machines(config) if m.role == "gateway")


def _parser() -> configparser.RawConfigParser:
    # fail2ban's reader: no interpolation here, values may span lines, option names keep their case.
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",), strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    return parser


def _jails(config: dict[str, Any]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Each jail's effective options, and the files read (the jail file, then what it includes)."""
    files = machine_files(config, _gateway(config))
    parser = _parser()
    parser.read_string(files[JAIL_FILE], source=JAIL_FILE)
    read = [JAIL_FILE]
    if parser.has_section("INCLUDES"):
        assert not parser.has_option("INCLUDES", "before"), "the jail file includes nothing before itself"
        for path in parser.get("INCLUDES", "after", fallback="").split():
            assert path in files, f"{JAIL_FILE} includes {path}, which the gateway is not given"
            parser.read_string(files[path], source=path)
            read.append(path)
    jails = {name: dict(parser.items(name)) for name in parser.sections() if name != "INCLUDES"}
    return jails, read


def _ignored(options: dict[str, str]) -> list[str]:
    return options.get("ignoreip", "").split()


def _web_jails(jails: dict[str, dict[str, str]]) -> list[str]:
    return [name for name, options in jails.items()
            if {port.strip() for port in options.get("port", "").split(",")} & WEB_PORTS]


@pytest.mark.parametrize("ranges", [None, ["192.0.2.7/32"], ["198.51.100.0/24", "203.0.113.64/26", "192.0.2.0/28"]])
def test_the_web_jail_ignores_exactly_the_stacks_client_ranges(example_config, ranges):
    config = copy.deepcopy(example_config)
    if ranges is not None:
        config["network"]["allowed_client_ranges"] = ranges
    jails, read = _jails(config)
    assert len(read) == 2, "the ignore list lives in a file of the gateway's user data"
    web = _web_jails(jails)
    assert web == ["trust-blueprints-signin"]
    for name in web:
        assert _ignored(jails[name]) == config["network"]["allowed_client_ranges"]


def test_the_sshd_jail_ignores_no_address(example_config):
    jails, _ = _jails(example_config)
    assert jails["sshd"]["enabled"] == "true"
    assert _ignored(jails["sshd"]) == []
    # Nothing shared between the jails carries an ignore list either.
    parser = _parser()
    parser.read_string(machine_files(example_config, _gateway(example_config))[JAIL_FILE])
    assert not parser.has_option("DEFAULT", "ignoreip")


def test_a_client_range_edit_reaches_the_running_gateway_and_reloads_fail2ban(example_config):
    edited = copy.deepcopy(example_config)
    edited["network"]["allowed_client_ranges"] = ["192.0.2.32/27"]
    machine = _gateway(example_config)
    # Custom data is what the VM was created with: the edit must not touch it (Azure would not
    # apply it), so the ignore list travels in the user data alone.
    assert render_user_data(edited, machine) == render_user_data(example_config, machine)
    before = json.loads(settings_document(example_config, machine))
    after = json.loads(settings_document(edited, machine))
    changed = [entry for entry in after["files"] if entry not in before["files"]]
    assert [entry["path"] for entry in changed] == ["/etc/trust-blueprints/gateway/fail2ban-web-clients.conf"]
    assert changed[0]["hooks"] == ["gateway-fail2ban"] and "gateway-fail2ban" in after["hooks"]
    assert settings_program().HOOKS["gateway-fail2ban"] == ["systemctl", "try-reload-or-restart",
                                                            "fail2ban.service"]
    jails, _ = _jails(edited)
    assert _ignored(jails["trust-blueprints-signin"]) == ["192.0.2.32/27"]
    assert _ignored(jails["sshd"]) == []


SSHD_FILTER_OVERLAY = "/etc/fail2ban/filter.d/sshd.local"
# Lines OpenSSH 10's listener logs (Debian 13, seen on the lab's gateway) when PerSourcePenalties
# turns an address away.
PENALISED_AFTER_FAILURES = ("drop connection #0 from [203.0.113.1]:39286 on [10.40.1.4]:22 "
                            "penalty: failed authentication")
PENALISED_WITHOUT_AUTH = "drop connection #0 from [198.51.100.7]:40110 on [10.40.1.4]:22 penalty: noauth"


def _overlay_regexes(config: dict[str, Any]) -> list[str]:
    parser = _parser()
    parser.read_string(machine_files(config, _gateway(config))[SSHD_FILTER_OVERLAY], source=SSHD_FILTER_OVERLAY)
    return [line.strip() for line in parser.get("Definition", "failregex").splitlines() if line.strip()]


def test_connections_sshd_turns_away_after_failed_sign_ins_count_towards_the_ban(example_config):
    """The sshd filter keeps Debian's patterns and adds the penalty line, so an address sshd is
    already turning away for failed sign-ins still reaches fail2ban's limit and is banned."""
    first, *added = _overlay_regexes(example_config)
    assert first == "%(known/failregex)s"
    # fail2ban's <HOST> stands for the address; the rest is a plain regular expression.
    compiled = [re.compile(regex.replace("<HOST>", r"(?P<host>[0-9a-fA-F.:]+)")) for regex in added]
    matches = [m for m in (regex.search(PENALISED_AFTER_FAILURES) for regex in compiled) if m]
    assert [m.group("host") for m in matches] == ["203.0.113.1"]
    # A scanner that never tried to sign in is not counted as a failed sign-in.
    assert not any(regex.search(PENALISED_WITHOUT_AUTH) for regex in compiled)


SIGNIN_FILTER = "/etc/fail2ban/filter.d/trust-blueprints-signin.conf"
APACHE_TIME = "[03/Dec/2026:16:20:34 +0000]"
REFUSED = f'203.0.113.1 - outsider@example.nhs.uk {APACHE_TIME} "GET /git/ HTTP/1.1" 403 811 "-" "Mozilla/5.0"'
UNSIGNED = f'192.0.2.9 - - {APACHE_TIME} "GET /hub/ HTTP/1.1" 401 381 "-" "curl/8.14.1"'
IDP_ERROR = (f'192.0.2.9 - - {APACHE_TIME} "GET /oidc/callback?state=x&error=access_denied HTTP/1.1" 302 1 '
             '"-" "Mozilla/5.0"')
SIGNED_IN = f'203.0.113.1 - analyst@example.nhs.uk {APACHE_TIME} "GET / HTTP/1.1" 200 3280 "-" "Mozilla/5.0"'


def _signin_regexes(config: dict[str, Any]) -> list[re.Pattern[str]]:
    parser = _parser()
    parser.read_string(machine_files(config, _gateway(config))[SIGNIN_FILTER], source=SIGNIN_FILTER)
    lines = [line.strip() for line in parser.get("Definition", "failregex").splitlines() if line.strip()]
    return [re.compile(line.replace("<HOST>", r"(?P<host>[0-9a-fA-F.:]+)")) for line in lines]


@pytest.mark.parametrize("line", [REFUSED, UNSIGNED, IDP_ERROR])
def test_a_refused_sign_in_counts_as_fail2ban_reads_the_line(example_config, line):
    """fail2ban takes the timestamp out of a line before trying the failregex (it finds the time
    itself), so a pattern that needs the time between the brackets never matches a real line; the
    lab's gateway suite proves the same with the running jail."""
    as_read = line.replace(APACHE_TIME, "[]")
    matches = [m for m in (regex.search(as_read) for regex in _signin_regexes(example_config)) if m]
    assert [m.group("host") for m in matches] == [line.split()[0]]


def test_a_signed_in_request_does_not_count(example_config):
    assert not any(regex.search(SIGNED_IN.replace(APACHE_TIME, "[]")) for regex in _signin_regexes(example_config))
