"""What validation reports: every problem at once, each pointing at its place in the file."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    path: str  # dotted YAML path, e.g. roles.analytics.count ("" for the whole file)
    value: Any
    allowed: str  # what is allowed, in words a person can act on
    hint: str = ""
    line: int | None = None

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        field = self.path or "(file)"
        shown = _show(self.value)
        text = f"{where}: {field}: {self.allowed}"
        if shown is not None:
            text += f" (got {shown})"
        if isinstance(self.value, UnquotedTime):
            text += (f"\n    hint: quote the time: {field.rsplit('.', 1)[-1]}: \"{self.value.text}\" "
                     f"(unquoted, YAML reads {self.value.text} as the number {int(self.value)})")
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class UnquotedTime(int):
    """A plain scalar such as 19:00, which YAML 1.1 reads as a base-60 number (1140).

    The loader keeps the text, so a field that wanted the time as text can say "quote it".
    """

    text: str

    def __new__(cls, value: int, text: str) -> UnquotedTime:
        made = super().__new__(cls, value)
        made.text = text
        return made

    def __getnewargs__(self) -> tuple[int, str]:  # copies (cerberus copies the document) keep the text
        return int(self), self.text

    def __repr__(self) -> str:
        return f"{self.text}, read as {int(self)}"


# Bounded: a value built from YAML aliases can be a few lines of text and billions of items.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 80, 80
_SHORT.maxdict = _SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxset = 4


def _show(value: Any) -> str | None:
    if value is _MISSING:
        return None
    text = _SHORT.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()
MISSING: Any = _MISSING


class StackFileError(Exception):
    """A stack file that cannot be used; carries every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(self.report())

    def report(self) -> str:
        count = len(self.problems)
        head = f"{self.source}: {count} problem{'s' if count != 1 else ''} found"
        return "\n".join([head, *(f"  {p.render(self.source)}" for p in self.problems)])
