"""Who signs in as which local account: the stack's explicit map from sign-in name to account.

The gateway learns a person's sign-in name from the identity provider (by default the
``preferred_username`` claim, which Entra ID fills with the user principal name, the UPN). It
used to cut the name at ``@`` and use the rest as the account, so ``trustadmin@anywhere`` became
the administrator and ``jsmith@a`` and ``jsmith@b`` shared one account. Now the name is kept
whole, and only the people listed in ``roles.gateway.identity.accounts`` get an account: each
entry names one UPN and the one account it signs in as.

- UPNs compare without regard to ASCII case (Entra ID treats them so: two users cannot differ
  only by case), and must be ASCII: a homoglyph or full-width variant is a different string and
  matches no entry.
- Each UPN and each account appear once, so no two people share an account.
- No entry may name the administrator or an account the VMs already have (blueprints/accounts.py).

The gateway applies the map (``gateway_header_lines``: one mod_headers line per entry) and sends
tools only the account; the analytics VMs refuse any account the map does not hold
(``hub_settings``, read by blueprints/analytics/sign_in.py). Both come from user data, so an edit
of the list reaches the running VMs in place.
"""

from __future__ import annotations

import re
from typing import Any

from blueprints.accounts import RESERVED_ACCOUNT_PREFIXES, RESERVED_ACCOUNTS

# An Entra ID UPN, lower-cased: letters, digits and . _ - ! # ^ ~ before the @ (Entra's own set
# without the apostrophe), then a DNS name. Nothing here can end a quoted Apache argument or
# start an ap_expr variable (no quote, backslash, % or $), so an entry is safe in gateway_header_lines.
UPN_PATTERN = r"^[A-Za-z0-9._!#^~-]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
UPN_ALLOWED = ("a user principal name such as jsmith@example.nhs.uk: ASCII letters, digits and "
               ". _ - ! # ^ ~ before the @, a DNS name after it")
# Accounts the map may give: the Git server's account names (a dot allowed, as in priya.shah).
# JupyterHub's own rule is narrower (no dot: Debian's adduser refuses it) and is applied on the VM.
MAPPED_ACCOUNT_PATTERN = r"^[a-z][a-z0-9._-]{0,31}$"
MAPPED_ACCOUNT_ALLOWED = "1-32 lowercase letters, digits, . _ or -, starting with a letter"
# The request header tools read the account from, and the one carrying the whole sign-in name
# (for their log lines only: they never derive an account from it).
ACCOUNT_HEADER = "X-Remote-User"
IDENTITY_HEADER = "X-Remote-Identity"


def canonical_upn(upn: str) -> str:
    """The form entries are compared in: ASCII lower case (what Apache's tolower() gives)."""
    return upn.translate({code: code + 32 for code in range(ord("A"), ord("Z") + 1)})


def identity_settings(config: dict[str, Any]) -> dict[str, Any] | None:
    """``roles.gateway.identity`` when a self-hosted gateway signs people in, else None."""
    gateway = config["roles"].get("gateway") or {}
    if gateway.get("kind") != "self-hosted":
        return None
    return gateway.get("identity")


def account_map(config: dict[str, Any]) -> dict[str, str]:
    """Canonical UPN -> account, from the stack (empty: nobody signs in through the gateway)."""
    identity = identity_settings(config) or {}
    return {canonical_upn(entry["upn"]): entry["account"] for entry in identity.get("accounts", [])}


def gateway_header_lines(mapping: dict[str, str], remote_user: str = "REMOTE_USER") -> list[str]:
    """Apache lines that set the account header for exactly the mapped sign-in names.

    mod_headers evaluates each condition after sign-in, so ``%{REMOTE_USER}`` is the whole claim;
    a name that matches no entry leaves the header unset (the site removes any copy a client sent).
    """
    lines = []
    for upn, account in sorted(mapping.items()):
        if not re.fullmatch(UPN_PATTERN, upn) or not re.fullmatch(MAPPED_ACCOUNT_PATTERN, account):
            raise ValueError(f"sign-in map entry {upn!r} -> {account!r} is not a valid UPN and account")
        lines.append(f'RequestHeader set {ACCOUNT_HEADER} "{account}" '
                     f'"expr=tolower(%{{{remote_user}}}) == \'{canonical_upn(upn)}\'"')
    return lines


def hub_settings(config: dict[str, Any]) -> dict[str, Any]:
    """What an analytics VM's hub checks each sign-in against (its user data carries it)."""
    return {
        "accounts": sorted(set(account_map(config).values())),
        "administrator": config["admin"]["username"],
        "reserved": sorted(RESERVED_ACCOUNTS),
        "reserved_prefixes": list(RESERVED_ACCOUNT_PREFIXES),
    }


def mapping_problems(entries: list[dict[str, str]], admin_username: str) -> list[tuple[int, str, str, str, str]]:
    """(index, field, value, problem, hint) for every entry that breaks the rules above."""
    problems = []
    upns: dict[str, int] = {}
    accounts: dict[str, int] = {}
    for index, entry in enumerate(entries):
        upn, account = canonical_upn(entry["upn"]), entry["account"]
        if upn in upns:
            problems.append((index, "upn", entry["upn"],
                             f"is already mapped by entry {upns[upn]} (UPNs compare regardless of case)",
                             "list each person once"))
        upns.setdefault(upn, index)
        if account in accounts:
            problems.append((index, "account", account, f"is already the account of entry {accounts[account]}",
                             "give each person an account of their own: two sign-in names never share one"))
        accounts.setdefault(account, index)
        if account == admin_username:
            problems.append((index, "account", account,
                             f"is the administrator's account (admin.username: {admin_username}), which has sudo",
                             "a person signs in to the tools as an analyst; choose their own account name"))
        elif account in RESERVED_ACCOUNTS or account.startswith(RESERVED_ACCOUNT_PREFIXES):
            problems.append((index, "account", account,
                             "is an account the VMs already have (a Debian system or service account)",
                             "choose the person's own account name; see blueprints/accounts.py"))
    return problems
