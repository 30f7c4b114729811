"""What the lab's TCP stand-ins share (Azure Bastion's, lab/bastion.py; a hub firewall's,
lab/hub_firewall.py): relaying an accepted connection to the one they open, and their audit logs,
one JSON line per decision."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any


async def relay(first: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                second: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    """Carry bytes both ways until both sides have finished, then close both."""
    await asyncio.gather(_one_way(first[0], second[1]), _one_way(second[0], first[1]))
    for writer in (first[1], second[1]):
        writer.close()


async def _one_way(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


def append_log(log: Path, entry: dict[str, Any]) -> None:
    """One line of a stand-in's audit log: the entry, stamped with the time in UTC."""
    with log.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **entry}) + "\n")
