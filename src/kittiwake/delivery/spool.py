"""The spool: where a message goes as it arrives, parsed on the way in.

Theory of operation: bytes are appended as they come off the wire and fed to the incremental MIME parser at
the same time, so the structure is ready when the message ends and nothing is ever read twice. Small messages
stay in memory and go into the database inline (made durable by the group commit); once a message passes
`inline_max` bytes it spills to a temporary file in the blob area, which is fsync'd and renamed into place
when the message ends. Memory stays bounded by `inline_max` whatever the message size. Writes to the spool
file go to the page cache and return at once; the fsync, which can wait on the disk, runs in a thread.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from io import BufferedWriter
from pathlib import Path

from kittiwake.mail.structure import StructureParser, with_prefix
from kittiwake.mail.structure_codec import dump_structure
from kittiwake.store.interface import Store
from kittiwake.store.models import BlobRef


@dataclass(frozen=True, slots=True, kw_only=True)
class SpooledMessage:
    blob: BlobRef
    size: int
    structure: bytes  # mail.structure_codec dump


class Spool:
    def __init__(self, store: Store, *, inline_max: int) -> None:
        self._store = store
        self._inline_max = inline_max
        self._buffer = bytearray()
        self._file: BufferedWriter | None = None
        self._path: Path | None = None
        self._parser = StructureParser()
        self.size = 0
        self.ascii = True  # every octet so far is 7-bit (what RFC 6152 8BITMIME is needed for)

    def write(self, data: bytes) -> None:
        self._parser.feed(data)
        self.size += len(data)
        if self.ascii and not data.isascii():
            self.ascii = False
        if self._file is not None:
            self._file.write(data)
            return
        self._buffer += data
        if len(self._buffer) > self._inline_max:
            self._spill()

    def _spill(self) -> None:
        self._path = self._store.new_spool_path()
        self._file = open(self._path, "wb")  # noqa: SIM115 - closed in finish() or discard()
        self._file.write(self._buffer)
        self._buffer = bytearray()

    def head(self, limit: int) -> bytes:
        """The first `limit` bytes received (enough for the header block of the message)."""
        if self._file is None:
            return bytes(self._buffer[:limit])
        assert self._path is not None
        self._file.flush()
        with open(self._path, "rb") as handle:
            return handle.read(limit)

    def overwrite(self, offset: int, data: bytes) -> None:
        """Replace bytes in place, keeping the length (so the parsed structure stays true)."""
        if self._file is None:
            self._buffer[offset : offset + len(data)] = data
            return
        assert self._path is not None
        self._file.flush()
        with open(self._path, "r+b") as handle:
            handle.seek(offset)
            handle.write(data)

    def read_all(self, limit: int) -> bytes | None:
        """The whole message if it has at most `limit` bytes (for checks that need all of it), else None."""
        if self.size > limit:
            return None
        if self._file is None:
            return bytes(self._buffer)
        assert self._path is not None
        self._file.flush()
        return self._path.read_bytes()

    async def finish(self, prefix: bytes = b"") -> SpooledMessage:
        """Make the bytes durable (inline bytes become durable with the store's commit).

        `prefix` holds header fields to put in front (trace fields known only now); the stored message is
        prefix + what was received, and the structure accounts for it without a second parse.
        """
        structure = dump_structure(with_prefix(self._parser.close(), len(prefix)))
        total = len(prefix) + self.size
        if self._file is None:
            blob = BlobRef(data=bytes(self._buffer), prefix=prefix)
            return SpooledMessage(blob=blob, size=total, structure=structure)
        assert self._path is not None
        self._file.close()
        adopted = await self._store.adopt_blob_file(self._path, self.size)
        self._file = None
        self._path = None
        return SpooledMessage(blob=replace(adopted, prefix=prefix), size=total, structure=structure)

    def discard(self) -> None:
        """Drop an aborted message; safe to call more than once."""
        self._buffer = bytearray()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
            self._path = None
