"""The cerberus validator for stack files, with its rules tightened for configuration.

- Python counts true and false as integers; a stack file must not (``count: true`` is a slip).
- A ``regex`` rule must match the whole value. Cerberus anchors patterns with ``$``, which also
  matches before a trailing newline, so ``numpy\\n`` would pass a package-name rule and carry a
  line break into a VM's configuration.
- A ``regex`` rule also refuses a value that is only white space (a blank cost centre or key),
  and a field whose ``meta.kind`` names a kind of value (blueprints/settings_fields.py
  VALUE_CHECKS) must pass that kind's check too, such as a URL's port being one TCP has. Both
  are reported as the pattern's failure, so the message says what the field allows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cerberus import TypeDefinition, Validator, errors
from cerberus.schema import DefinitionSchema

from blueprints.settings_fields import VALUE_CHECKS


class StackValidator(Validator):
    types_mapping = {**Validator.types_mapping, "integer": TypeDefinition("integer", (int,), (bool,))}

    def _validate_regex(self, pattern: str, field: str, value: Any) -> None:
        """{'type': 'string'}"""
        if not isinstance(value, str):
            return
        if re.fullmatch(pattern, value) is None or not value.strip():
            self._error(field, errors.REGEX_MISMATCH)
            return
        kind = self.schema.get(field, {}).get("meta", {}).get("kind")
        if kind is not None and VALUE_CHECKS[kind](value) is not None:
            self._error(field, errors.REGEX_MISMATCH)


class CheckedSchema(DefinitionSchema):
    """A schema cerberus has expanded and checked once, for any number of StackValidators.

    Given a plain mapping, cerberus checks the schema (hashing all of it) each time a validator is
    made, and again in the copy it takes at the start of each validation: most of the time a stack
    file's validation took. This one is checked when made, and its copies are plain mappings, as
    cerberus takes of every nested schema. Nothing may edit it (nor the mapping it was made from).
    """

    def copy(self) -> dict[str, Any]:
        return dict(self.schema)


def checked_schema(schema: Mapping[str, Any]) -> CheckedSchema:
    """``schema`` checked once by cerberus, to be passed to StackValidator as often as needed."""
    return CheckedSchema(StackValidator(), schema)
