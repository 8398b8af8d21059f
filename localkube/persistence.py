"""SQLite persistence of the stored objects and the revision counter.

Owns one SQLite file (stdlib ``sqlite3``; every call runs in a worker thread through
``asyncio.to_thread``, one at a time because the store serializes writes). Each write stores the
object and the new revision in one transaction, so a restart continues the resourceVersion
sequence. The watch history is not persisted: after a restart it starts compacted.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["SqlitePersistence"]

Key = tuple[str, str]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    grp TEXT NOT NULL, resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (grp, resource, namespace, name)
);
CREATE TABLE IF NOT EXISTS revision (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL);
INSERT OR IGNORE INTO revision (id, value) VALUES (0, 0);
"""


class SqlitePersistence:
    """A :class:`localkube.storage.Persistence` backed by one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def _load(self) -> tuple[int, list[tuple[Key, dict[str, Any]]]]:
        db = self._connect()
        (revision,) = db.execute("SELECT value FROM revision WHERE id = 0").fetchone()
        rows = db.execute(
            "SELECT grp, resource, body FROM objects ORDER BY grp, resource, namespace, name"
        )
        return int(revision), [((g, r), json.loads(b)) for g, r, b in rows]

    async def load(self) -> tuple[int, list[tuple[Key, dict[str, Any]]]]:
        return await asyncio.to_thread(self._load)

    def _write(self, sql: str, args: tuple[Any, ...], rv: int) -> None:
        db = self._connect()
        with db:
            db.execute("BEGIN")
            db.execute(sql, args)
            db.execute("UPDATE revision SET value = ? WHERE id = 0", (rv,))

    async def put(self, key: Key, obj: dict[str, Any], rv: int) -> None:
        meta = obj.get("metadata") or {}
        args = (
            key[0],
            key[1],
            str(meta.get("namespace", "")),
            str(meta.get("name", "")),
            json.dumps(obj),
        )
        await asyncio.to_thread(
            self._write, "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)", args, rv
        )

    async def remove(self, key: Key, namespace: str, name: str, rv: int) -> None:
        await asyncio.to_thread(
            self._write,
            "DELETE FROM objects WHERE grp = ? AND resource = ? AND namespace = ? AND name = ?",
            (key[0], key[1], namespace, name),
            rv,
        )

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)
