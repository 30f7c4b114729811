"""Values from a stack file written safely into generated Markdown, and that Markdown made into HTML.

Every generated document (reference pages, cost report, request pack) is Markdown that a site
generator or a browser later reads, so a value such as an owner address may not carry markup:
``md_text`` turns the characters HTML and Markdown give meaning to into entities or escapes, and
``markdown_to_html`` converts with raw HTML and autolinks switched off, so text can never become
a tag, a link or a template expression on the way.
"""

from __future__ import annotations

import re
from typing import Any

import markdown as markdown_lib
from markupsafe import Markup

# Entities survive Markdown untouched and read as the character in any browser; braces are
# included so no value ever shows '{{' to a later template or client-side engine.
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "[": "&#91;", "]": "&#93;", "{": "&#123;", "}": "&#125;"}
# Characters that start Markdown syntax inside a line, escaped with a backslash (readable in the source).
_BACKSLASHED = set("\\`*|#")
# An underscore inside a word is literal in Markdown; at a word's edge it could open emphasis.
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md_text(value: Any) -> str:
    """Any value as inline Markdown text that shows exactly that text: one line, no markup, safe in a table cell."""
    if isinstance(value, Markup):  # text the code built as Markdown on purpose
        return str(value)
    text = " ".join(str(value).splitlines())
    out = []
    for char in text:
        if char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char in _BACKSLASHED:
            out.append("\\" + char)
        else:
            out.append(char)
    return _EDGE_UNDERSCORE.sub(r"\\_", "".join(out))


def markdown_to_html(text: str) -> str:
    """Markdown (tables, heading ids) as HTML, with raw HTML and autolinks off: tags in the text stay text."""
    converter = markdown_lib.Markdown(extensions=["tables", "toc"], output_format="html")
    converter.preprocessors.deregister("html_block")
    for pattern in ("html", "autolink", "automail"):
        converter.inlinePatterns.deregister(pattern)
    return converter.convert(text)
