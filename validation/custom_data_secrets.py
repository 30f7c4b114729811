"""What must never be in a VM's custom data: Azure keeps it readable on the VM and in the VM model.

One list for policy TB-VM-009 (validation/policies/vm_rules.py), which looks at the rendered custom
data of every VM in a plan, and for `blueprints validate` (validation/semantic_checks.py), which
looks at every text value of the stack file, since those values are what reach custom data.
Kept apart from the policies so that reading the list loads no part of the plan recorder.
"""

from __future__ import annotations

import re

CUSTOM_DATA_SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a password", re.compile(r"^\s*-?\s*['\"]?(password|passwd|plain_text_passwd|hashed_passwd|chpasswd)['\"]?\s*:",
                              re.IGNORECASE | re.MULTILINE)),
    ("a client secret", re.compile(r"(client_secret|clientsecret|api_key|apikey|secret_key)\s*[=:]\s*\S{8,}",
                                   re.IGNORECASE)),
    ("a storage account key", re.compile(r"AccountKey=[A-Za-z0-9+/=]{20,}")),
    ("a shared access signature", re.compile(r"[?&]sig=[A-Za-z0-9%+/=]{20,}")),
    ("a bearer token", re.compile(r"Bearer\s+[A-Za-z0-9._~+/-]{20,}")),
)
