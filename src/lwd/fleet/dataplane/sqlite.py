"""SQLite (WAL) event log: the embedded default, safe across processes on one machine.

Tables: ``events`` (append-only, ``seq`` = delivery id), ``groups`` (per consumer group: the highest
``seq`` already handed out) and ``pending`` (delivered, unacknowledged records with their lease).
Every claim runs inside ``BEGIN IMMEDIATE`` so two consumers of one group can never lease the same
record at once; a ``busy_timeout`` makes writers queue instead of failing.

Durability with group commit: appends run with ``synchronous=NORMAL`` (the commit only ``write``s
the WAL, holding the write lock for microseconds) and :meth:`SqliteEventLog.append` then ``fsync``s
the WAL file *after* releasing the lock, before returning. So an acknowledged append survives power
loss, not only a process crash (a checkpoint that moved the frames into the main file synced that
file first), while concurrent producers' fsyncs overlap and are batched by the filesystem journal
instead of being serialised under the lock (as ``synchronous=FULL`` would do).

Leases use this machine's wall clock at claim time; producers' ``created_at`` is never consulted.

Waiting: a blocking :meth:`SqliteEventLog.read` and :meth:`SqliteEventLog.wait_notice` poll
``PRAGMA data_version`` (a shared-memory read: it changes when *another* connection commits) every
few milliseconds and only run a claim (which takes the write lock) when something changed, or every
``claim_every_s`` so expired leases are still picked up.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from lwd.fleet.dataplane.events import Delivery, now
from lwd.utils.io import fsync_dir

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  raw TEXT NOT NULL,
  appended_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS groups (
  name TEXT PRIMARY KEY,
  cursor INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
  grp TEXT NOT NULL,
  seq INTEGER NOT NULL,
  consumer TEXT NOT NULL,
  lease_until REAL NOT NULL,
  deliveries INTEGER NOT NULL,
  PRIMARY KEY (grp, seq)
);
CREATE INDEX IF NOT EXISTS pending_lease ON pending (grp, lease_until);
CREATE TABLE IF NOT EXISTS notices (
  topic TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
"""


def connect(
    path: str | os.PathLike, busy_timeout_s: float = 30.0, synchronous: str = "FULL"
) -> sqlite3.Connection:
    """Open a WAL-mode connection in autocommit mode (transactions are explicit ``BEGIN``s)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        os.fspath(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
    # Switching a new database to WAL can fail with "database is locked" without SQLite's busy
    # handler being called (several processes or threads opening it at once): retry until the timeout.
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


class Tx:
    """``with Tx(conn):`` runs the block in ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rollback on error)."""

    def __init__(self, conn: sqlite3.Connection, mode: str = "IMMEDIATE"):
        self.conn = conn
        self.mode = mode

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute(f"BEGIN {self.mode}")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


class SqliteEventLog:
    """:class:`~lwd.fleet.dataplane.events.EventLog` on one SQLite file (``sqlite:///path/events.db``)."""

    def __init__(self, path: str | os.PathLike, lease_s: float = 30.0, poll_s: float = 0.005,
                 claim_every_s: float = 0.1):  # fmt: skip
        self.path = Path(path)
        self.lease_s = float(lease_s)
        self.poll_s = poll_s
        self.claim_every_s = claim_every_s
        self._lock = threading.Lock()
        self._conn = connect(self.path, synchronous="NORMAL")
        self._wal_fd = -1
        self._fd_lock = threading.Lock()
        self._closed = False
        self._writes = 0  # commits through our own connection (data_version does not count them)
        with self._lock:
            self._conn.executescript(_SCHEMA)

    def _sync(self) -> None:
        """fsync the WAL file (opened once, while our connection keeps it alive). ``_fd_lock`` keeps
        :meth:`close` from closing the descriptor under an in-flight fsync of another thread."""
        with self._fd_lock:
            if self._closed:
                raise RuntimeError(f"event log {self.path} is closed")
            if self._wal_fd < 0:
                self._wal_fd = os.open(f"{self.path}-wal", os.O_RDONLY)
                fsync_dir(self.path.parent)
            os.fdatasync(self._wal_fd)  # data + size; SQLite itself uses fdatasync on Linux

    def append(self, raw: str) -> str:
        if not isinstance(raw, str):
            raise TypeError("event records are JSON text (str)")
        with self._lock, Tx(self._conn) as c:
            cur = c.execute("INSERT INTO events (raw, appended_at) VALUES (?, ?)", (raw, now()))
            seq = cur.lastrowid
            self._writes += 1
        self._sync()  # outside the lock: concurrent producers' fsyncs overlap
        return str(seq)

    def append_many(self, raws: list[str]) -> list[str]:
        """Append several records in one transaction and one fsync; return their delivery ids."""
        if any(not isinstance(r, str) for r in raws):
            raise TypeError("event records are JSON text (str)")
        if not raws:
            return []
        with self._lock, Tx(self._conn) as c:
            seqs = [c.execute("INSERT INTO events (raw, appended_at) VALUES (?, ?)", (r, now())).lastrowid
                    for r in raws]  # fmt: skip
            self._writes += 1
        self._sync()
        return [str(q) for q in seqs]

    def _claim(self, group: str, consumer: str, count: int) -> list[Delivery]:
        t = now()
        out: list[Delivery] = []
        with self._lock, Tx(self._conn) as c:
            c.execute("INSERT OR IGNORE INTO groups (name, cursor) VALUES (?, 0)", (group,))
            expired = c.execute(
                "SELECT p.seq, e.raw, p.deliveries FROM pending p JOIN events e ON e.seq = p.seq "
                "WHERE p.grp = ? AND p.lease_until <= ? ORDER BY p.seq LIMIT ?",
                (group, t, count),
            ).fetchall()
            for seq, raw, n in expired:
                c.execute(
                    "UPDATE pending SET consumer = ?, lease_until = ?, deliveries = ? WHERE grp = ? AND seq = ?",
                    (consumer, t + self.lease_s, n + 1, group, seq),
                )
                out.append(Delivery(str(seq), raw, n + 1))
            if len(out) < count:
                (cursor,) = c.execute("SELECT cursor FROM groups WHERE name = ?", (group,)).fetchone()
                fresh = c.execute(
                    "SELECT seq, raw FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                    (cursor, count - len(out)),
                ).fetchall()
                if fresh:
                    c.executemany(
                        "INSERT INTO pending (grp, seq, consumer, lease_until, deliveries) VALUES (?, ?, ?, ?, 1)",
                        [(group, seq, consumer, t + self.lease_s) for seq, _ in fresh],
                    )
                    c.execute("UPDATE groups SET cursor = ? WHERE name = ?", (fresh[-1][0], group))
                    out.extend(Delivery(str(seq), raw, 1) for seq, raw in fresh)
        return out

    def _data_version(self) -> tuple[int, int]:
        with self._lock:
            return self._conn.execute("PRAGMA data_version").fetchone()[0], self._writes

    def _wait_change(self, version: tuple[int, int], until: float) -> tuple[int, int]:
        """Sleep in ``poll_s`` steps until another connection commits or ``until``; return the version."""
        while (t := time.monotonic()) < until:
            time.sleep(min(self.poll_s, until - t))
            v = self._data_version()
            if v != version:
                return v
        return version

    def read(self, group: str, consumer: str, count: int = 64, block_s: float = 0.0) -> list[Delivery]:
        deadline = time.monotonic() + block_s
        while True:
            version = self._data_version()
            got = self._claim(group, consumer, count)
            if got or time.monotonic() >= deadline:
                return got
            self._wait_change(version, min(deadline, time.monotonic() + self.claim_every_s))

    def notify(self, topic: str, value: int) -> None:
        """Record ``value`` as the newest of ``topic`` (a wake-up hint for :meth:`wait_notice`; not fsynced:
        waiters treat it as a hint and read the real state from its source)."""
        with self._lock, Tx(self._conn) as c:
            c.execute(
                "INSERT INTO notices (topic, value) VALUES (?, ?) ON CONFLICT (topic) DO UPDATE SET "
                "value = MAX(value, excluded.value)",
                (topic, int(value)),
            )
            self._writes += 1

    def notice(self, topic: str) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM notices WHERE topic = ?", (topic,)).fetchone()
        return row[0] if row else 0

    def wait_notice(self, topic: str, after: int, timeout_s: float) -> int:
        """Wait until ``topic``'s value exceeds ``after`` (or timeout); return the value seen."""
        deadline = time.monotonic() + timeout_s
        while True:
            version = self._data_version()
            value = self.notice(topic)
            if value > after or time.monotonic() >= deadline:
                return value
            self._wait_change(version, deadline)

    def ack(self, group: str, delivery_ids: list[str]) -> int:
        if not delivery_ids:
            return 0
        with self._lock, Tx(self._conn) as c:
            cur = c.executemany(
                "DELETE FROM pending WHERE grp = ? AND seq = ?", [(group, int(d)) for d in delivery_ids]
            )
            return cur.rowcount

    def pending(self, group: str) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM pending WHERE grp = ?", (group,)).fetchone()[0]

    def backlog(self, group: str) -> int:
        with self._lock:
            row = self._conn.execute("SELECT cursor FROM groups WHERE name = ?", (group,)).fetchone()
            cursor = row[0] if row else 0
            new = self._conn.execute("SELECT COUNT(*) FROM events WHERE seq > ?", (cursor,)).fetchone()[0]
        return new + self.pending(group)

    def compact(self) -> int:
        """Delete records every known group has consumed and acknowledged; return how many."""
        with self._lock, Tx(self._conn) as c:
            row = c.execute("SELECT MIN(cursor) FROM groups").fetchone()
            if row[0] is None:
                return 0
            low = c.execute("SELECT MIN(seq) FROM pending").fetchone()[0]
            bound = row[0] if low is None else min(row[0], low - 1)
            return c.execute("DELETE FROM events WHERE seq <= ?", (bound,)).rowcount

    def close(self) -> None:
        with self._lock, self._fd_lock:
            self._closed = True
            if self._wal_fd >= 0:
                os.close(self._wal_fd)
                self._wal_fd = -1
            self._conn.close()
