"""Who signs in as which account: the stack's map (blueprints/sign_in_names.py), its validation,
and the hub's own check on the VM (blueprints/analytics/sign_in.py), each as code."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from blueprints.analytics import sign_in
from blueprints.sign_in_names import (
    account_map,
    canonical_upn,
    gateway_header_lines,
    hub_settings,
)
from tests.conftest import EXAMPLE
from validation.stack_config import validate_document
from validation.yaml_source import read_stack_source

FULL_WIDTH_ROOT = "\uff52\uff4f\uff4f\uff54"
CYRILLIC_ANALYST = "\u0430nalyst"


def _stack(accounts: list[dict[str, str]]) -> dict[str, Any]:
    document = copy.deepcopy(read_stack_source(EXAMPLE)[0])
    document["roles"]["gateway"]["identity"]["accounts"] = accounts
    return document


def _problems(accounts: list[dict[str, str]]) -> list[Any]:
    _, problems = validate_document(_stack(accounts))
    return [p for p in problems if "identity.accounts" in p.path]


# --- the map, at the gateway ------------------------------------------------------------------

def test_the_example_maps_each_sign_in_name_to_its_own_account(example_config):
    mapping = account_map(example_config)
    assert mapping["analyst@example.nhs.uk"] == "analyst"
    # The same name before the @ in another domain is another person with another account.
    assert mapping["analyst@partner.example.org"] == "partner-analyst"
    assert len(set(mapping.values())) == len(mapping)


def test_every_person_the_example_names_can_sign_in_to_their_tools(example_config):
    # The Git web view and the hub admin page serve only mapped accounts: the example maps each of
    # its Git users and hub admins, so its lab shows them their tools.
    mapped = set(account_map(example_config).values())
    assert {user["name"] for user in example_config["roles"]["git_server"]["users"]} <= mapped
    assert set(example_config["roles"]["analytics"]["admin_users"]) <= mapped


def test_upns_compare_in_ascii_lower_case_only():
    assert canonical_upn("JSmith@Example.NHS.uk") == "jsmith@example.nhs.uk"
    # Only A-Z fold: a full-width or look-alike letter stays what it is, so it matches no entry.
    assert canonical_upn(FULL_WIDTH_ROOT + "@x.uk") == FULL_WIDTH_ROOT + "@x.uk"
    assert canonical_upn("\u0130") == "\u0130"


def test_gateway_sets_the_account_header_only_for_each_mapped_name():
    lines = gateway_header_lines({"jsmith@example.nhs.uk": "jsmith", "jsmith@partner.example.org": "jsmith-p"})
    assert lines == [
        'RequestHeader set X-Remote-User "jsmith" "expr=tolower(%{REMOTE_USER}) == \'jsmith@example.nhs.uk\'"',
        'RequestHeader set X-Remote-User "jsmith-p" "expr=tolower(%{REMOTE_USER}) == '
        '\'jsmith@partner.example.org\'"',
    ]


@pytest.mark.parametrize("upn", ["a'b@example.nhs.uk", 'a"b@example.nhs.uk', "a%{X}@example.nhs.uk",
                                 "a$1@example.nhs.uk", "a\\b@example.nhs.uk", "r\u043eot@example.nhs.uk"])
def test_a_name_that_could_break_out_of_the_apache_line_is_never_written(upn):
    with pytest.raises(ValueError, match="not a valid UPN"):
        gateway_header_lines({upn: "jsmith"})


def test_without_a_self_hosted_gateway_nobody_is_mapped(example_config):
    bastion = copy.deepcopy(example_config)
    bastion["roles"]["gateway"]["kind"] = "bastion"
    assert account_map(bastion) == {}
    assert gateway_header_lines(account_map(bastion)) == []
    assert hub_settings(bastion)["accounts"] == []


def test_the_hub_learns_the_mapped_accounts_the_administrator_and_the_reserved_names(example_config):
    settings = hub_settings(example_config)
    assert settings["accounts"] == sorted(account_map(example_config).values())
    assert settings["administrator"] == example_config["admin"]["username"]
    assert {"root", "git", "jupyterhub"} <= set(settings["reserved"])


# --- the map, in the stack file ---------------------------------------------------------------

def test_the_example_map_is_valid():
    assert _problems(read_stack_source(EXAMPLE)[0]["roles"]["gateway"]["identity"]["accounts"]) == []


@pytest.mark.parametrize(("account", "why"), [
    ("trustadmin", "is the administrator's account"),
    ("root", "is an account the VMs already have"),
    ("git", "is an account the VMs already have"),
    ("systemd-network", "is an account the VMs already have"),
])
def test_the_map_never_gives_the_administrator_or_a_service_account(account, why):
    problems = _problems([{"upn": "jsmith@example.nhs.uk", "account": account}])
    assert [(p.path, p.value) for p in problems] == [("roles.gateway.identity.accounts[0].account", account)]
    assert why in problems[0].allowed


def test_two_sign_in_names_never_share_an_account():
    problems = _problems([{"upn": "jsmith@a.example.org", "account": "jsmith"},
                          {"upn": "jsmith@b.example.org", "account": "jsmith"}])
    assert [(p.path, p.value) for p in problems] == [("roles.gateway.identity.accounts[1].account", "jsmith")]
    assert "already the account of entry 0" in problems[0].allowed


def test_one_person_is_listed_once_whatever_the_case():
    problems = _problems([{"upn": "jsmith@example.nhs.uk", "account": "jsmith"},
                          {"upn": "JSmith@Example.nhs.uk", "account": "jsmith2"}])
    assert [(p.path, p.value) for p in problems] == [("roles.gateway.identity.accounts[1].upn",
                                                      "JSmith@Example.nhs.uk")]


@pytest.mark.parametrize(("field", "value"), [
    ("upn", "jsmith"),                                  # no domain: not a UPN
    ("upn", FULL_WIDTH_ROOT + "@example.nhs.uk"),       # full-width letters
    ("upn", CYRILLIC_ANALYST + "@example.nhs.uk"),      # a look-alike letter
    ("upn", "o'brien@example.nhs.uk"),                  # would end the quoted Apache string
    ("account", "JSmith"),                              # upper case
    ("account", FULL_WIDTH_ROOT),                       # non-ASCII account names are refused outright
    ("account", "j smith"),
])
def test_a_malformed_entry_is_refused_naming_the_field_and_what_is_allowed(field, value):
    entry = {"upn": "jsmith@example.nhs.uk", "account": "jsmith", field: value}
    problems = _problems([entry])
    assert len(problems) == 1
    assert problems[0].path == f"roles.gateway.identity.accounts[0].{field}"
    assert problems[0].value == value
    assert problems[0].allowed


# --- the hub's own check ----------------------------------------------------------------------

SETTINGS = {"accounts": ["analyst", "jsmith", "priya.shah", "stale"], "administrator": "trustadmin",
            "reserved": ["root", "git", "jupyterhub"], "reserved_prefixes": ["systemd-"]}
LOCAL = {"analyst": (1001, [("analyst", 1001), ("users", 100)]),
         "stale": (1002, [("stale", 1002), ("sudo", 27)]),
         "jsmith": (998, [("jsmith", 998)])}


def _refusal(account: str, identity: str = "someone@example.nhs.uk") -> str | None:
    return sign_in.refusal(account, identity, SETTINGS,
                           uid_of=lambda name: LOCAL[name][0] if name in LOCAL else None,
                           groups_of=lambda name: LOCAL[name][1] if name in LOCAL else [])


def test_a_mapped_analyst_signs_in():
    assert _refusal("analyst") is None


def test_a_new_mapped_analyst_signs_in_before_their_account_exists():
    settings = {**SETTINGS, "accounts": [*SETTINGS["accounts"], "newcomer"]}
    assert sign_in.refusal("newcomer", "n@example.nhs.uk", settings, uid_of=lambda _: None,
                           groups_of=lambda _: []) is None


@pytest.mark.parametrize(("account", "reason"), [
    ("", "the gateway named no account for sign-in name 'someone@example.nhs.uk'"),
    ("trustadmin", "is the administrator's"),
    ("TrustAdmin", "is the administrator's"),
    ("root", "is a system or service account"),
    ("ROOT", "is a system or service account"),
    ("git", "is a system or service account"),
    ("systemd-timesync", "is a system or service account"),
    (FULL_WIDTH_ROOT, "is not ASCII and reads as 'root', a protected account"),
    ("\uff54\uff52\uff55\uff53\uff54\uff41\uff44\uff4d\uff49\uff4e", "reads as 'trustadmin'"),
    (CYRILLIC_ANALYST, "is not ASCII"),
    ("Analyst", "is not in lower case"),
    ("priya.shah", "is not a name adduser accepts"),
    ("someone", "is not one the stack maps anyone to"),
    ("jsmith", "is a system account, uid 998"),
    ("stale", "is a member of group 'sudo' (gid 27)"),
])
def test_the_hub_refuses_saying_why(account, reason):
    why = _refusal(account)
    assert why is not None and reason in why
    if account:
        assert repr(account) in why
    assert "'someone@example.nhs.uk'" in why


def test_the_hub_refuses_a_member_of_a_service_group():
    settings = {**SETTINGS, "accounts": ["asmith"]}
    why = sign_in.refusal("asmith", "asmith@example.nhs.uk", settings, uid_of=lambda _: 1005,
                          groups_of=lambda _: [("asmith", 1005), ("devpi", 996)])
    assert why is not None and "group 'devpi' (gid 996)" in why


def test_nobody_signs_in_before_the_settings_reach_the_vm(tmp_path):
    settings = sign_in.read_sign_in_settings(str(tmp_path / "missing.json"))
    assert sign_in.refusal("analyst", "analyst@example.nhs.uk", settings, uid_of=lambda _: 1001,
                           groups_of=lambda _: []) is not None


def test_full_width_and_upper_case_fold_to_the_plain_name():
    assert sign_in.folded(FULL_WIDTH_ROOT) == "root"
    assert sign_in.folded("ROOT") == "root"
    # A look-alike letter is a different letter, not a variant: it does not fold to Latin.
    assert sign_in.folded(CYRILLIC_ANALYST) != "analyst"


def test_the_hub_check_is_the_file_the_hub_config_includes():
    text = Path(sign_in.__file__).read_text(encoding="utf-8")
    # Included whole by jinja into jupyterhub_config.py: no template syntax may appear in it.
    assert not re.search(r"\{\{|\{%|\{#", text)
