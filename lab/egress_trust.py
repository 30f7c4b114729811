"""The lab's Internet is the host's Internet, including any TLS-inspecting egress proxy the host
trusts. Such a proxy re-signs pypi.org, registry.npmjs.org and the rest with its own CA, so the
machine that fetches from the Internet (the mirror) must trust that CA too, or no upstream
verifies. The host's local trust anchors (/usr/local/share/ca-certificates/*.crt) are copied
into that machine before its first boot; the base template's update-ca-certificates step adds
them to its store. Azure has no such proxy: nothing of this exists there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

HOST_ANCHORS = Path("/usr/local/share/ca-certificates")


def install_host_anchors(machine_root: Path, host_anchors: Path = HOST_ANCHORS) -> list[str]:
    """Copy the host's local CA certificates into a machine's root; returns the files copied."""
    target = machine_root / "usr/local/share/ca-certificates"
    copied = []
    for cert in sorted(host_anchors.glob("*.crt")):
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cert, target / f"lab-host-{cert.name}")
        copied.append(cert.name)
    return copied
