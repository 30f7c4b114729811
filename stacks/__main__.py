"""Pulumi entry point: the stack name picks the stack file (stack `example` reads example.yaml)."""

from pathlib import Path

import pulumi

from blueprints.program import define_environment
from validation.problems import StackFileError
from validation.stack_config import load_stack

STACKS_DIR = Path(__file__).parent

try:
    config = load_stack(STACKS_DIR / f"{pulumi.get_stack()}.yaml")
except StackFileError as error:
    # RunError prints the message alone: the report already names every field to fix.
    raise pulumi.RunError(error.report()) from None
define_environment(config)
