"""Opening the database file with the settings durability depends on, and applying migrations."""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA busy_timeout = 30000")
    # WAL lets readers run beside the writer; synchronous=FULL fsyncs the WAL at every commit, so a commit that
    # returned survives power loss.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    # Deleting a message must not cost writing it again: with secure_delete ON (some SQLite builds' default)
    # every page of a deleted body is zeroed through the WAL. FAST still clears what sits in b-tree pages
    # that are written anyway; freed overflow pages keep their bytes until reused, as unlinked files do.
    conn.execute("PRAGMA secure_delete = FAST")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    return conn


def migration_scripts() -> list[tuple[int, str]]:
    """(version, SQL) for every shipped migration, in order."""
    folder = resources.files("kittiwake.store") / "migrations"
    scripts = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            scripts.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(scripts)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, *, up_to: int | None = None) -> list[int]:
    """Apply the migrations the file lacks, each in its own transaction; returns the versions applied.

    Forward only: a file from a newer kittiwake is refused rather than guessed at.
    """
    scripts = migration_scripts()
    current = schema_version(conn)
    newest = scripts[-1][0] if scripts else 0
    if current > newest:
        raise RuntimeError(
            f"the store has schema version {current}, newer than this kittiwake knows ({newest})"
        )
    applied = []
    for version, sql in scripts:
        if version <= current or (up_to is not None and version > up_to):
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version:d}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
