"""Kinds of stack-file value that more than one part of the schema uses: patterns and field builders.

They live below the roles so that each role's settings schema (``blueprints/<role>/settings.py``)
and the stack schema around them (``validation/schema.py``) build fields the same way.
Each field's ``meta.doc`` is its description and ``meta.allowed`` what a message says is allowed.
"""

from __future__ import annotations

from typing import Any

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
SINGLE_LINE_ALLOWED = "one line with no control characters or line separators"
# An email address, with the same exclusions (\s alone lets C1 controls through).
_EMAIL_PART = r"[^\s@\x00-\x1f\x7f-\x9f\u2028\u2029]+"
EMAIL_PATTERN = rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$"
# Local account names on the analytics VMs (what Debian's adduser accepts, lower case).
ACCOUNT_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
ABSOLUTE_PATH_PATTERN = r"^(/[A-Za-z0-9._-]+)+$"


def vm_size_field(default: str) -> dict[str, Any]:
    return {"type": "string", "regex": VM_SIZE_PATTERN, "default": default, "maxlength": 64,
            "meta": {"doc": "Azure VM size", "allowed": "an Azure size name such as Standard_B2s"}}


def disk_field(doc: str, default: int) -> dict[str, Any]:
    return {"type": "integer", "min": 32, "max": 4095, "default": default, "meta": {"doc": doc}}
