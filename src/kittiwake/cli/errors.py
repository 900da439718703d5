"""The one exception the command line turns into a message and an exit status."""

from __future__ import annotations


class CliError(Exception):
    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status
