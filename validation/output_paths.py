"""Paths named on the command line, checked before a command does any work.

A command writes either one file (``plan -o FILE``) or several files into a directory
(``request-pack -o DIR``). Either way the target is checked first: the file's folder exists,
nothing in the way is of the wrong kind (a directory where a file goes, a device such as
/dev/full), and the place can really be written, found by trying, since permission bits say
nothing to root or to a read-only file system. Files are written whole or not at all
(``write_file_atomically``), so a full disk leaves the old file, not half of a new one.

Files a command reads are checked by ``input_file_problem``: a regular file, within a size cap;
``validation.yaml_source.read_regular_file`` then reads it with a bound.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from validation.yaml_source import file_kind

_PROBE_PREFIX = ".blueprints-write-check-"


def _can_create_in(directory: Path) -> str | None:
    """Why no file can be created in ``directory``, or None (tried with a temporary file)."""
    try:
        descriptor, probe = tempfile.mkstemp(prefix=_PROBE_PREFIX, dir=directory)
    except OSError as error:
        return f"cannot be written in {directory}: {error.strerror}"
    os.close(descriptor)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return None


def output_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot take a file this command writes, or None."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    except OSError as error:
        return f"cannot be checked: {error.strerror}"
    if mode is not None:
        if stat.S_ISDIR(mode):
            return "is a directory; name a file to write"
        if not stat.S_ISREG(mode):
            return f"is {file_kind(mode)}; name a regular file to write"
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
        except OSError as error:
            return f"cannot be written: {error.strerror}"
        os.close(descriptor)
    parent = path.parent
    try:
        parent_mode = os.stat(parent).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return f"cannot be written: its folder {parent} does not exist"
    except OSError as error:
        return f"cannot be written: its folder {parent}: {error.strerror}"
    if not stat.S_ISDIR(parent_mode):
        return f"cannot be written: {parent} is {file_kind(parent_mode)}, not a folder"
    # The file itself is replaced by a new one beside it (write_file_atomically): the folder must take it.
    return _can_create_in(parent)


def output_directory_problem(path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a directory this command writes into, or None."""
    probe = path
    while True:
        try:
            mode = os.stat(probe).st_mode
        except (FileNotFoundError, NotADirectoryError):
            if probe.parent == probe:
                return f"cannot be made: {probe} does not exist"
            probe = probe.parent
            continue
        except OSError as error:
            return f"cannot be checked: {probe}: {error.strerror}"
        break
    if not stat.S_ISDIR(mode):
        what = file_kind(mode)
        if probe == path:
            return f"is {what}; this command writes several files into a directory: name a directory"
        return f"cannot be made: {probe} is {what}, not a directory"
    return _can_create_in(probe)


def input_file_problem(path: Path, limit: int) -> str | None:
    """Why ``path`` cannot be read as an input file, or None. A missing file is left to the
    command, which says which file it was looking for."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cannot be read: {error.strerror}"
    if not stat.S_ISREG(status.st_mode):
        return f"is {file_kind(status.st_mode)}, not a regular file"
    if status.st_size > limit:
        return f"is {status.st_size} bytes; the limit is {limit}"
    return None


def write_file_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: a temporary file beside it, renamed into place."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
