"""The embedded store: SQLite (WAL, synchronous=FULL) with one group-committing writer thread and a pool of
reader threads, plus message files for large messages. The only module tree that imports sqlite3."""

from kittiwake.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
