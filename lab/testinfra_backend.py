"""A testinfra backend for lab machines: ``testinfra.get_host("nspawn://mirror")``.

Commands run as root inside the running machine, entered from the host with nsenter, so the
acceptance suites need neither SSH keys nor a reachable sshd to check a lab machine.
Importing this module registers the backend.
"""

from __future__ import annotations

import subprocess
from typing import Any

import testinfra.backend
from testinfra.backend import base

from lab.machines import nsenter_argv, require_leader

BACKEND_NAME = "nspawn"


class NspawnBackend(base.BaseBackend):
    NAME = BACKEND_NAME

    def __init__(self, hostname: str, *args: Any, **kwargs: Any) -> None:
        self.machine = hostname
        super().__init__(hostname, *args, **kwargs)

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        shell_command = self.get_command(command, *args)
        argv = nsenter_argv(require_leader(self.machine), ["/bin/sh", "-c", shell_command])
        process = subprocess.run(argv, capture_output=True, check=False)
        return self.result(process.returncode, self.encode(shell_command), process.stdout, process.stderr)


testinfra.backend.BACKENDS[BACKEND_NAME] = f"{__name__}.{NspawnBackend.__name__}"
