"""Errors that tell the user what is wrong and where."""

from __future__ import annotations


class LandmarksError(Exception):
    """Base class for errors the command line reports without a traceback."""


class InputError(LandmarksError):
    """Bad input, located as precisely as we can: file, then row, then field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.row = row
        self.field = field
        self.reason = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason
