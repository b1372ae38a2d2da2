"""The error a bad segment raises: it names the file, the YAML line and the node path."""

from __future__ import annotations

from store.errors import InputError
from store.files import printable


class SegmentError(InputError):
    """A segment that cannot be read or does not fit the store's schema."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 path: str | None = None) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.path = path
        super().__init__(self.format())

    def format(self) -> str:
        where = printable(self.source or "<segment>")  # a file name may hold any bytes
        if self.line is not None:
            where += f":{self.line}"
        if self.path:
            where += f": {self.path}"
        return f"{where}: {self.message}"


class PqlError(SegmentError):
    """PQL that cannot be read: names the construct and where it is (line and column)."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 column: int | None = None) -> None:
        self.column = column
        super().__init__(message, source=source, line=line)

    def format(self) -> str:
        where = self.source or "<pql>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"
