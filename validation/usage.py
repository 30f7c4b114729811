"""Exit codes and the usage error every command shares.

They live here, below the command line, reports and lab, so that each of those can raise a usage
error or return an exit code without importing the command line (the layers have no cycle).
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_STACK = "stacks/example.yaml"


class UsageError(Exception):
    """Bad input from the command line or the environment: printed as is, exit code 2."""
