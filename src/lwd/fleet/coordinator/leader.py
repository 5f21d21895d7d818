"""Coordinator leader lease: only one coordinator process commits snapshots at a time.

A single row in the coordinator database (``leader``: owner, expires_at) is the lease. A coordinator
acquires it when the row is absent, expired or already its own, renews it while it works, and
releases it on a clean shutdown. A second coordinator started on the same ``coordinator.db`` (a hot
standby) waits, retrying every step; when the leader dies (SIGKILL: no release) the standby takes
over once the lease expires (``lease_s``), or at once if the owner was a process of this host that
no longer exists (a restarted coordinator does not wait for its dead predecessor's lease).

Fencing: :meth:`LeaderLease.fence` runs *inside* the commit transaction (and renews the lease
there) and refuses it (:class:`NotLeader`) if another coordinator has taken the lease, so a leader
that was paused past its lease and replaced cannot commit a snapshot; it rolls back and its leased
events are redelivered to the new leader. The lease uses this machine's wall clock: every coordinator sharing a
``coordinator.db`` runs on the machine that holds the file.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid

from lwd.fleet.dataplane.sqlite import Tx
from lwd.fleet.dataplane.state import CoordinatorState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS leader (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  owner TEXT NOT NULL,
  expires_at REAL NOT NULL
);
"""


class NotLeader(RuntimeError):
    """This coordinator does not hold the leader lease (any more)."""


class LeaderLease:
    """The leader lease of one :class:`CoordinatorState` database."""

    def __init__(self, state: CoordinatorState, lease_s: float = 10.0, owner: str | None = None):
        self.state = state
        self.lease_s = float(lease_s)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._until = 0.0  # wall-clock expiry of our lease as last written (0: not held)
        with state._lock:
            state.conn.executescript(_SCHEMA)

    def hold(self) -> bool:
        """Acquire or renew the lease; True if we hold it. Renews (one small transaction) only once a
        third of the lease has passed, so a busy leader does not write on every step."""
        t = time.time()
        if self._until - t > self.lease_s * 2 / 3:
            return True
        with self.state._lock, Tx(self.state.conn) as c:
            row = c.execute("SELECT owner, expires_at FROM leader WHERE id = 1").fetchone()
            if row is not None and row[0] != self.owner and row[1] > t and not _dead(row[0]):
                self._until = 0.0
                return False
            c.execute(
                "INSERT OR REPLACE INTO leader (id, owner, expires_at) VALUES (1, ?, ?)",
                (self.owner, t + self.lease_s),
            )
        self._until = t + self.lease_s
        return True

    def fence(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: raise :class:`NotLeader` if another coordinator took the lease;
        otherwise renew it in the same transaction. (Our own lease having expired is harmless as long as
        nobody took it over: a takeover rewrites the row in a transaction serialised with this one.)"""
        row = conn.execute("SELECT owner FROM leader WHERE id = 1").fetchone()
        if row is not None and row[0] != self.owner:
            self._until = 0.0
            raise NotLeader(f"coordinator {self.owner} lost the leader lease to {row[0]}")
        t = time.time()
        conn.execute(
            "INSERT OR REPLACE INTO leader (id, owner, expires_at) VALUES (1, ?, ?)",
            (self.owner, t + self.lease_s),
        )
        self._until = t + self.lease_s

    def holder(self) -> tuple[str, float] | None:
        """``(owner, expires_at)`` of the current lease row, or ``None``."""
        with self.state._lock:
            row = self.state.conn.execute("SELECT owner, expires_at FROM leader WHERE id = 1").fetchone()
        return None if row is None else (row[0], row[1])

    def release(self) -> None:
        """Give the lease up (clean shutdown) so a standby takes over at once."""
        self._until = 0.0
        with self.state._lock, Tx(self.state.conn) as c:
            c.execute("DELETE FROM leader WHERE id = 1 AND owner = ?", (self.owner,))


def _dead(owner: str) -> bool:
    """True if ``owner`` (``host:pid:nonce``) is a process of this host that no longer exists, so its
    lease can be taken at once instead of after expiry (a reused pid just means waiting for expiry)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
