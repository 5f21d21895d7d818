"""Policy registry index: version records and assignments (SQLite locally, Redis at scale).

The index is the registry's source of truth for *which* versions exist and who runs what; the
checkpoint bytes live in fsspec storage. A version is visible only once ``published`` (after its
checkpoint directory is complete). Version numbers come from an atomic counter (SQLite
``AUTOINCREMENT`` inside ``BEGIN IMMEDIATE`` / Redis ``INCR``), so they are unique and increasing even
with concurrent publishers; a publisher that dies after allocating leaves a gap, never a reuse.

Assignment scopes: ``"*"`` is the fleet default, any other scope is a robot id (a pin). Every change
is appended to a history so a rollback can restore the previous value.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from typing import Any, Protocol

from lwd.fleet.dataplane.sqlite import Tx, connect

DEFAULT = "*"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
  version INTEGER PRIMARY KEY AUTOINCREMENT,
  status TEXT NOT NULL, record TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (scope TEXT PRIMARY KEY, version INTEGER, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS assignment_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT, scope TEXT NOT NULL, version INTEGER, at REAL NOT NULL
);
"""


class RegistryIndex(Protocol):
    def allocate(self, record: dict[str, Any]) -> int: ...
    def mark_published(self, version: int, record: dict[str, Any]) -> None: ...
    def record(self, version: int) -> dict[str, Any] | None: ...
    def published(self) -> list[int]: ...
    def latest(self) -> int: ...
    def assign(self, scope: str, version: int | None) -> None: ...
    def assignment(self, scope: str) -> int | None: ...
    def assignments(self) -> dict[str, int]: ...
    def history(self, scope: str) -> list[int | None]: ...
    def wait(self, since: int, timeout_s: float) -> int: ...


class SqliteRegistryIndex:
    """Index in one SQLite (WAL) file; change notification by cheap polling of ``MAX(version)``."""

    def __init__(self, path: str | os.PathLike, poll_s: float = 0.05):
        self.path = path
        self._local = threading.local()
        self.conn.executescript(_SCHEMA)
        self.poll_s = poll_s

    @property
    def conn(self) -> sqlite3.Connection:
        """One connection per thread (a connection must not interleave transactions of threads)."""
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = connect(self.path)
        return c

    def allocate(self, record: dict[str, Any]) -> int:
        with Tx(self.conn) as c:
            cur = c.execute(
                "INSERT INTO versions (status, record, created_at) VALUES ('allocated', ?, ?)",
                (json.dumps(record), time.time()),
            )
            return int(cur.lastrowid)

    def mark_published(self, version: int, record: dict[str, Any]) -> None:
        with Tx(self.conn) as c:
            c.execute(
                "UPDATE versions SET status = 'published', record = ? WHERE version = ?",
                (json.dumps(record), version),
            )

    def record(self, version: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT record FROM versions WHERE version = ? AND status = 'published'", (version,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def published(self) -> list[int]:
        rows = self.conn.execute("SELECT version FROM versions WHERE status = 'published' ORDER BY version")
        return [r[0] for r in rows.fetchall()]

    def latest(self) -> int:
        q = "SELECT COALESCE(MAX(version), 0) FROM versions WHERE status = 'published'"
        return self.conn.execute(q).fetchone()[0]

    def assign(self, scope: str, version: int | None) -> None:
        with Tx(self.conn) as c:
            if version is None:
                c.execute("DELETE FROM assignments WHERE scope = ?", (scope,))
            else:
                c.execute(
                    "INSERT OR REPLACE INTO assignments (scope, version, updated_at) VALUES (?, ?, ?)",
                    (scope, version, time.time()),
                )
            c.execute(
                "INSERT INTO assignment_history (scope, version, at) VALUES (?, ?, ?)",
                (scope, version, time.time()),
            )

    def assignment(self, scope: str) -> int | None:
        row = self.conn.execute("SELECT version FROM assignments WHERE scope = ?", (scope,)).fetchone()
        return row[0] if row else None

    def assignments(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT scope, version FROM assignments").fetchall())

    def history(self, scope: str) -> list[int | None]:
        rows = self.conn.execute(
            "SELECT version FROM assignment_history WHERE scope = ? ORDER BY id", (scope,)
        )
        return [r[0] for r in rows.fetchall()]

    def wait(self, since: int, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while True:
            latest = self.latest()
            if latest > since or time.monotonic() >= deadline:
                return latest
            time.sleep(min(self.poll_s, max(0.0, deadline - time.monotonic())))


class RedisRegistryIndex:
    """Index in Redis; publishes ``{"version": n}`` on channel ``<prefix>:events`` for subscribers."""

    def __init__(self, url: str, prefix: str = "lwd:registry"):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self.p = prefix

    def allocate(self, record: dict[str, Any]) -> int:
        version = int(self.client.incr(f"{self.p}:next"))
        self.client.hset(f"{self.p}:allocated", version, json.dumps(record))
        return version

    def mark_published(self, version: int, record: dict[str, Any]) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(f"{self.p}:records", version, json.dumps(record))
        pipe.zadd(f"{self.p}:published", {str(version): version})
        pipe.hdel(f"{self.p}:allocated", version)
        pipe.publish(f"{self.p}:events", json.dumps({"version": version}))
        pipe.execute()

    def record(self, version: int) -> dict[str, Any] | None:
        raw = self.client.hget(f"{self.p}:records", version)
        return json.loads(raw) if raw else None

    def published(self) -> list[int]:
        return [int(v) for v in self.client.zrange(f"{self.p}:published", 0, -1)]

    def latest(self) -> int:
        top = self.client.zrange(f"{self.p}:published", -1, -1)
        return int(top[0]) if top else 0

    def assign(self, scope: str, version: int | None) -> None:
        pipe = self.client.pipeline(transaction=True)
        if version is None:
            pipe.hdel(f"{self.p}:assign", scope)
        else:
            pipe.hset(f"{self.p}:assign", scope, version)
        pipe.rpush(f"{self.p}:history:{scope}", "" if version is None else str(version))
        pipe.publish(f"{self.p}:events", json.dumps({"assign": scope}))
        pipe.execute()

    def assignment(self, scope: str) -> int | None:
        raw = self.client.hget(f"{self.p}:assign", scope)
        return int(raw) if raw else None

    def assignments(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.client.hgetall(f"{self.p}:assign").items()}

    def history(self, scope: str) -> list[int | None]:
        return [int(v) if v else None for v in self.client.lrange(f"{self.p}:history:{scope}", 0, -1)]

    def wait(self, since: int, timeout_s: float) -> int:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(f"{self.p}:events")
        try:
            deadline = time.monotonic() + timeout_s
            while True:  # subscribe first, then check: no notification can fall in between
                latest = self.latest()
                left = deadline - time.monotonic()
                if latest > since or left <= 0:
                    return latest
                pubsub.get_message(timeout=min(left, 1.0))
        finally:
            pubsub.close()
