"""Paths a person names: what each may be, how output lands there, how a name is shown.

A path on the command line may name a regular file, a new file, a symlink, a
named pipe, a device, a socket or a folder, and on Linux its name may hold any
bytes but ``/`` and NUL (Python hands bytes that are not UTF-8 over as lone
surrogates, and gives them back unchanged when the file is opened).

- Stores and input files (imports, segment files, templates) must be regular
  files (or, for a store, a new path): a store on ``/dev/null`` would get a
  journal beside it, a pipe can be read only once, ``/dev/zero`` never ends.
  Symlinks are followed. Anything else is refused before it is opened.
- Output (exports) goes into a regular file atomically: a temporary file
  beside it, renamed over it once complete, so a failure leaves the old file.
  A symlink is followed and its target replaced, not the link. A named pipe,
  a device or a terminal gets the output written straight into it, so the
  reader at the other end of a pipe gets the data and ``/dev/stdout`` stays
  what it is.
- ``printable`` shows such a name (or any argument) in a message: bytes that
  are not UTF-8 as ``\\xNN``, never an exception while printing an error.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from store.errors import InputError, StoreError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def printable(text: str | os.PathLike[str]) -> str:
    """``text`` safe to print: bytes that were not UTF-8 (lone surrogates) as ``\\xNN``."""
    value = os.fspath(text)
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that did not come from a byte
        return value.encode("utf-8", "backslashreplace").decode("utf-8")


def is_utf8_text(text: str) -> bool:
    """Whether ``text`` is Unicode text (no byte that was not UTF-8, no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def special_kind(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it is neither a regular file nor missing ("a named pipe", ...);
    None for a regular file, a new path or a dangling symlink. Symlinks are followed."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # missing, dangling, unreadable folder, NUL in the name
        return None
    if stat.S_ISREG(mode):
        return None
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "not a regular file"


def check_store_path(path: str | os.PathLike[str], what: str = "store") -> None:
    """Refuse a store path that exists but is not a regular file, before anything opens it."""
    kind = special_kind(path)
    if kind is not None:
        raise StoreError(f"{printable(path)} is {kind}, not a {what} file; give the path of a"
                         f" {what} file (or of a new one).")


def check_input_file(path: str | os.PathLike[str]) -> None:
    """Refuse an input file that is missing, or that is not a regular file (read it from a
    saved copy: a pipe can be read only once, a device may never end)."""
    shown = printable(path)
    kind = special_kind(path)
    if kind == "a folder":
        raise InputError(f"{shown} is a folder, not a file.")
    if kind is not None:
        raise InputError(f"{shown} is {kind}, not a regular file; save what it holds to a file"
                         " and give that file.")
    if not os.path.exists(path):
        raise InputError(f"{shown}: no such file.")


@contextmanager
def output_file(path: str | os.PathLike[str], *, newline: str | None = None) -> Iterator[TextIO]:
    """A UTF-8 text stream for the output written to ``path`` (see the module's docstring):
    atomic into a regular or new file (a symlink's target, keeping the old file's
    permissions), straight through into a pipe or a device. A failure to write is a
    ``StoreError`` naming the file; the temporary file is then removed."""
    shown = printable(path)
    kind = special_kind(path)
    if kind == "a folder":
        raise InputError(f"{shown} is a folder; give a file name.")
    try:
        if kind is not None:  # by its own name: /dev/stdout links to "pipe:[...]", no real path
            with open(path, "w", encoding="utf-8", newline=newline) as stream:
                yield stream
            return
        with _replacing(Path(os.path.realpath(path)), newline) as stream:
            yield stream
    except OSError as exc:
        raise StoreError(f"Cannot write {shown}: {exc.strerror or exc}.") from exc


@contextmanager
def _replacing(target: Path, newline: str | None) -> Iterator[TextIO]:
    try:
        mode: int | None = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = None
    temp = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline=newline) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
