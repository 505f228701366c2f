"""Online backup of a SQLite database (SQLite's backup API), safe while Leadflow runs.

The copy is a consistent snapshot: every transaction committed before the backup began and
none that commits later (in WAL mode writers keep going meanwhile). It is written next to the
target first and renamed into place, so an interrupted backup never leaves a half-written file
under the target's name. PostgreSQL is backed up with its own tools (`pg_dump`, see
docs/operations.md).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    """The backup could not be made (message says why); nothing was written to the target."""


@dataclass(frozen=True)
class BackupResult:
    """What was copied: the target file, its size and the copy's integrity check."""

    path: Path
    size: int
    integrity: str


def sqlite_path(database_url: str) -> Path:
    """The file of a SQLite database URL; BackupError for other databases or in-memory ones."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"{url.get_backend_name()} is backed up with its own tools (pg_dump for PostgreSQL)"
        )
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory database has nothing to back up")
    return Path(url.database)


def backup_sqlite(database_url: str, target: Path, *, overwrite: bool = False) -> BackupResult:
    """Copy the SQLite database of `database_url` to `target` while it may be in use."""
    source = sqlite_path(database_url)
    if not source.is_file():
        raise BackupError(f"no database file at {source}")
    target = target.resolve()
    if target == source.resolve():
        raise BackupError("the backup must not replace the database itself")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} exists (use --overwrite to replace it)")
    if not target.parent.is_dir():
        raise BackupError(f"no directory {target.parent}")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    # Read-only: the backup never writes to the live database.
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        # Waits for a moment of a writer's checkpoint instead of failing at once.
        src.execute("PRAGMA busy_timeout=10000")
        dst = sqlite3.connect(partial)
        try:
            # One step (pages=-1): a single read transaction, so the copy is one snapshot.
            src.backup(dst, pages=-1)
            # The copy stands alone: no WAL file next to it needed to read it.
            dst.execute("PRAGMA journal_mode=DELETE")
            integrity = str(dst.execute("PRAGMA integrity_check").fetchone()[0])
        finally:
            dst.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup failed: {exc}") from exc
    finally:
        src.close()
    if integrity != "ok":
        partial.unlink(missing_ok=True)
        raise BackupError(f"the copy failed its integrity check: {integrity}")
    os.replace(partial, target)
    return BackupResult(target, target.stat().st_size, integrity)
