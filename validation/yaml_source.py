"""Reads a stack file safely: regular files only, size cap, safe YAML, no duplicate keys, no alias bombs.

Also remembers the line of every key, so each problem can point at its place in the file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from validation.problems import MISSING, Problem, StackFileError, UnquotedTime

MAX_FILE_BYTES = 256 * 1024
MAX_ALIASES = 100
# Keys are setting names (text); "<<" merges a mapping in, as YAML allows.
TEXT_KEY_TAGS = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"}


class UnreadableFileError(OSError):
    """A file that cannot be read as a file: its message says why, in a person's words (an OSError, so
    callers that treat an unreadable file as absent treat this one so too)."""


_FILE_KINDS = ((stat.S_ISREG, "a file"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    """What kind of file a st_mode says, in words."""
    return next((kind for test, kind in _FILE_KINDS if test(mode)), "not a regular file")


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or UnreadableFileError.

    The kind of file is decided from the open descriptor, so what is read is what was checked.
    O_NONBLOCK: opening a named pipe with no writer would otherwise wait for one for ever. The
    read stops at ``limit`` + 1 bytes whatever the size says (files under /proc report 0).
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise UnreadableFileError(f"cannot be read: {error.strerror}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableFileError(f"is {file_kind(mode)}, not a regular file")
        size = os.fstat(descriptor).st_size
        if size > limit:
            raise UnreadableFileError(f"is {size} bytes; the limit is {limit}")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(descriptor, min(65536, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise UnreadableFileError(f"is more than {limit} bytes; the limit is {limit}")
        return b"".join(chunks)
    except UnreadableFileError:
        raise
    except OSError as error:
        raise UnreadableFileError(f"cannot be read: {error.strerror}") from None
    finally:
        os.close(descriptor)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and counts aliases."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_count = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                event = self.peek_event()
                raise yaml.constructor.ConstructorError(
                    None, None, f"more than {MAX_ALIASES} YAML aliases", event.start_mark
                )
        return super().compose_node(parent, index)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> Any:
        value = super().construct_yaml_int(node)
        # 19:00 unquoted is YAML 1.1's base 60 (1140): keep the text for the message.
        return UnquotedTime(value, node.value) if ":" in str(node.value) else value


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)


def _index_lines(node: yaml.Node, path: str, lines: dict[str, int], problems: list[Problem],
                 visited: set[int] | None = None) -> None:
    # An alias is the very node it names: each node is walked once, or a few dozen aliases
    # nested ten deep (an "alias bomb") would mean billions of visits.
    visited = set() if visited is None else visited
    if id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            scalar = isinstance(key_node, yaml.ScalarNode)
            key = key_node.value if scalar else f"<{key_node.id} key>"
            child = f"{path}.{key}" if path else str(key)
            line = key_node.start_mark.line + 1
            if key_node.tag not in TEXT_KEY_TAGS:
                what = key_node.tag.rsplit(":", 1)[-1] if scalar else key_node.id
                problems.append(Problem(child, MISSING, f"must be a setting name in text (found a {what} key)",
                                        "write the name of a setting, or quote it", line=line))
            if key in seen:
                problems.append(
                    Problem(child, MISSING, f"appears twice (first on line {seen[key]})",
                            "keep one of the two entries", line=line)
                )
            seen[key] = line
            lines.setdefault(child, line)
            _index_lines(value_node, child, lines, problems, visited)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = f"{path}[{index}]"
            lines.setdefault(child, item.start_mark.line + 1)
            _index_lines(item, child, lines, problems, visited)


def _not_yaml(error: yaml.YAMLError) -> Problem:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    what = getattr(error, "problem", None) or str(error)
    return Problem("", MISSING, f"is not valid YAML: {what}", "check indentation and quoting near that line",
                   line=mark.line + 1 if mark else None)


def read_stack_source(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The document as a mapping, and a map from dotted path to line number.

    Raises StackFileError for anything that is not a readable YAML mapping.
    """
    source = str(path)
    try:
        raw = read_regular_file(path, MAX_FILE_BYTES)
    except UnreadableFileError as error:
        hint = ("a stack file describes one environment in a few KiB" if "limit" in str(error)
                else "name a YAML file; stack files live in stacks/")
        raise StackFileError(source, [Problem("", MISSING, str(error), hint)]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StackFileError(source, [Problem("", MISSING, f"is not UTF-8 text ({error.reason})",
                                              "save the file as UTF-8")]) from None

    try:
        # The reader checks every character as the loader is built: a control character fails here.
        loader = _StrictLoader(text)
    except yaml.YAMLError as error:
        raise StackFileError(source, [_not_yaml(error)]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise StackFileError(source, [Problem("", MISSING, "is empty; a stack file is a YAML mapping",
                                                  "start from stacks/example.yaml")])
        problems: list[Problem] = []
        lines: dict[str, int] = {}
        _index_lines(node, "", lines, problems)
        if problems:
            raise StackFileError(source, problems)
        document = loader.construct_document(node)
    except yaml.YAMLError as error:
        raise StackFileError(source, [_not_yaml(error)]) from None
    except RecursionError:
        raise StackFileError(source, [Problem("", MISSING, "nests too deeply to be a stack file")]) from None
    finally:
        loader.dispose()

    if not isinstance(document, dict):
        raise StackFileError(source, [Problem("", type(document).__name__,
                                              "must be a YAML mapping at the top level",
                                              "start from stacks/example.yaml", line=1)])
    return document, lines
