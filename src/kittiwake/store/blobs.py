"""Message files: the bytes of messages too large to keep inside the database.

Theory of operation: a file is written under `tmp/`, fsync'd, renamed to `objects/<xx>/<name>` and the
directory fsync'd, and only then does a database row refer to it. A crash before the row commits leaves an
unreferenced file, and a crash after a row's deletion commits leaves one too: `sweep_orphans` removes both at
start-up, so no orphan stays forever. Nothing here runs on the event loop: callers use a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

CHUNK = 65536


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobStore:
    """Durable, immutable message files named at random under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.objects = root / "objects"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.objects.mkdir(parents=True, exist_ok=True)

    def new_temp_path(self) -> Path:
        """A fresh path under tmp/ for a spool file that may later be adopted."""
        return self.tmp / secrets.token_hex(12)

    def adopt(self, temp_path: Path) -> str:
        """Make a finished temp file durable and permanent; returns its file name for the database."""
        fd = os.open(temp_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        name = secrets.token_hex(12)
        folder = self.objects / name[:2]
        if not folder.is_dir():
            folder.mkdir(exist_ok=True)
            fsync_directory(self.objects)
        os.rename(temp_path, folder / name)
        fsync_directory(folder)
        fsync_directory(self.tmp)
        return name

    def write(self, data: bytes) -> str:
        """Store bytes durably as a new file; returns its file name."""
        temp_path = self.new_temp_path()
        with open(temp_path, "wb") as handle:
            handle.write(data)
        return self.adopt(temp_path)

    def path(self, name: str) -> Path:
        return self.objects / name[:2] / name

    def read(self, name: str, start: int, end: int) -> bytes:
        with open(self.path(name), "rb") as handle:
            handle.seek(start)
            return handle.read(max(0, end - start))

    def iter_range(self, name: str, start: int, end: int) -> Iterator[bytes]:
        with open(self.path(name), "rb") as handle:
            handle.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = handle.read(min(CHUNK, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(name))

    def names(self) -> Iterator[str]:
        for folder in self.objects.iterdir():
            if folder.is_dir():
                for entry in folder.iterdir():
                    yield entry.name

    def clear_temp(self) -> int:
        """Remove leftovers of interrupted writes; only safe while nothing is being written."""
        count = 0
        for entry in self.tmp.iterdir():
            entry.unlink(missing_ok=True)
            count += 1
        return count

    def sweep_orphans(self, referenced: set[str]) -> list[str]:
        """Remove files no row refers to; only safe while nothing is being written."""
        removed = [name for name in self.names() if name not in referenced]
        for name in removed:
            self.remove(name)
        return removed
