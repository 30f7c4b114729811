"""Progress lines with elapsed times for the long steps of `lab up` and `lab down`."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.timings: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def note(self, message: str) -> None:
        print(f"[{self.elapsed():6.1f}s] {message}", file=self.stream, flush=True)

    @contextmanager
    def step(self, message: str, key: str | None = None) -> Iterator[None]:
        """Print the step, run it, print how long it took (recorded under ``key``)."""
        self.note(f"{message} ...")
        began = time.monotonic()
        yield
        took = time.monotonic() - began
        if key:
            self.timings[key] = took
        self.note(f"{message}: done in {took:.1f}s")
