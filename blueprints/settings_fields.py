"""Kinds of stack-file value that more than one part of the schema uses: patterns and field builders.

They live below the roles so that each role's settings schema (``blueprints/<role>/settings.py``)
and the stack schema around them (``validation/schema.py``) build fields the same way.
Each field's ``meta.doc`` is its description and ``meta.allowed`` what a message says is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

VM_SIZE_PATTERN = r"^Standard_[A-Z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$"
GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
FQDN_PATTERN = r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
CLAIM_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
LOCAL_ACCOUNT_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
# Letters, digits and a little punctuation: enough for any trust's name, nothing that
# can break out of YAML or a shell line in cloud-init.
DISPLAY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 .,&()'-]{1,78}[A-Za-z0-9.)]$"
DISPLAY_NAME_ALLOWED = "3-80 letters, digits, spaces and . , & ( ) ' -"
# One line of printable text: nothing that could start a second line in a file or a command.
# No C0 control, DEL or C1 control (U+0080-U+009F, NEL U+0085 among them), nor Unicode's line
# and paragraph separators (U+2028, U+2029): none of the characters str.splitlines() splits on.
SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$"
SINGLE_LINE_ALLOWED = "one line of text, not blank, with no control characters or line separators"
# An email address, with the same exclusions (\s alone lets C1 controls through).
_EMAIL_PART = r"[^\s@\x00-\x1f\x7f-\x9f\u2028\u2029]+"
EMAIL_PATTERN = rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$"
# Local account names on the analytics VMs (what Debian's adduser accepts, lower case).
ACCOUNT_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
ABSOLUTE_PATH_PATTERN = r"^(/[A-Za-z0-9._-]+)+$"
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def url_problem(value: str) -> str | None:
    """Why a URL that matched its field's pattern still names no reachable place, or None.

    A pattern can say "digits after a colon" but not "a port TCP has" (1-65535), nor that each
    dot-separated part of the host name is a DNS label.
    """
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        return "has a port outside 1-65535"
    if port == 0:
        return "has port 0, which no server listens on"
    host = parts.hostname or ""
    if not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
        return f"has a host name {host!r} that is not a DNS name"
    return None


# Checks beyond a field's pattern, by the kind a field declares in meta.kind (the stack
# validator applies them; validation/stack_validator.py).
VALUE_CHECKS: dict[str, Callable[[str], str | None]] = {"url": url_problem}
URL_ALLOWED = "an http(s) URL such as https://pypi.org/simple (a port, if any, from 1 to 65535)"


# The VM size families a stack may use (policy TB-VM-008, checked by `validate` and `plan` alike):
# sizes with premium storage, Trusted Launch and encryption at host, in families a trust can
# budget for. One table, so the rule and every message that lists the families agree.
APPROVED_VM_SIZE_FAMILIES: tuple[tuple[str, str], ...] = (
    ("B (burstable, e.g. Standard_B2s)", r"B[0-9]+[a-z]*s(_v2)?"),
    ("Dsv5 and Dsv6 (general purpose, e.g. Standard_D4s_v5)", r"D[0-9]+[a-z]*s_v[56]"),
    ("Esv5 and Esv6 (memory optimised, e.g. Standard_E4s_v5)", r"E[0-9]+[a-z]*s_v[56]"),
    ("Fsv2 (compute optimised, e.g. Standard_F4s_v2)", r"F[0-9]+s_v2"),
    ("NC GPU: NCasT4_v3, NC_A100_v4, NCads_H100_v5 (e.g. Standard_NC24ads_A100_v4)",
     r"NC[0-9]+[a-z]*_(T4_v3|A100_v4|H100_v5)"),
    ("NV GPU: NVadsA10_v5, NVv4 (e.g. Standard_NV36ads_A10_v5)", r"NV[0-9]+[a-z]*_(A10_v5|v4)"),
)
APPROVED_VM_SIZE = re.compile(
    "^Standard_(" + "|".join(f"(?:{pattern})" for _, pattern in APPROVED_VM_SIZE_FAMILIES) + ")$")
APPROVED_VM_SIZES_ALLOWED = "a size of an approved family: " + "; ".join(
    name for name, _ in APPROVED_VM_SIZE_FAMILIES)


def approved_vm_size(size: str) -> bool:
    return APPROVED_VM_SIZE.match(size) is not None


def vm_size_field(default: str) -> dict[str, Any]:
    return {"type": "string", "regex": VM_SIZE_PATTERN, "default": default, "maxlength": 64,
            "meta": {"doc": "Azure VM size", "allowed": "an Azure size name such as Standard_B2s"}}


def disk_field(doc: str, default: int) -> dict[str, Any]:
    return {"type": "integer", "min": 32, "max": 4095, "default": default, "meta": {"doc": doc}}
