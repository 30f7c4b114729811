"""The cerberus validator for stack files, with two rules tightened for configuration.

- Python counts true and false as integers; a stack file must not (``count: true`` is a slip).
- A ``regex`` rule must match the whole value. Cerberus anchors patterns with ``$``, which also
  matches before a trailing newline, so ``numpy\\n`` would pass a package-name rule and carry a
  line break into a VM's configuration.
"""

from __future__ import annotations

import re
from typing import Any

from cerberus import TypeDefinition, Validator, errors


class StackValidator(Validator):
    types_mapping = {**Validator.types_mapping, "integer": TypeDefinition("integer", (int,), (bool,))}

    def _validate_regex(self, pattern: str, field: str, value: Any) -> None:
        """{'type': 'string'}"""
        if not isinstance(value, str):
            return
        if re.fullmatch(pattern, value) is None:
            self._error(field, errors.REGEX_MISMATCH)
