"""The coordinator's durable state: one SQLite (WAL) file, changed only in single transactions.

Tables:
  episodes   one row per episode id ever decided: ``committed`` (with its snapshot number) or
             ``quarantined`` (with a reason). The primary key makes dedup exact.
  snapshots  one row per committed snapshot (number, created_at, added, total, published flag).
  rejected   malformed events that could not be attributed to an episode (garbage JSON, ...).
  robots     latest heartbeat per robot.
  tasks      durable robot -> task assignments.
  outcomes   per committed episode: success, intervened, steps, intervention steps, sub-step score
             (chained tasks; NULL otherwise) (what the rollout
             manager compares versions on; written in the same transaction as the episode row).

:meth:`CoordinatorState.commit` inserts the batch's episode rows *and* the new snapshot row in one
``BEGIN IMMEDIATE`` transaction, so a crash leaves either none or all of them.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwd.fleet.dataplane.events import EpisodeEvent, HeartbeatEvent, now
from lwd.fleet.dataplane.snapshots import SnapshotEntry, make_manifest
from lwd.fleet.dataplane.sqlite import Tx, connect
from lwd.utils.metric_means import percentiles

_SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
  episode_id TEXT PRIMARY KEY,
  status TEXT NOT NULL CHECK (status IN ('committed', 'quarantined')),
  robot_id TEXT, task_id TEXT, policy_version INTEGER,
  uri TEXT, sha256 TEXT, bytes INTEGER,
  snapshot INTEGER, reason TEXT,
  created_at REAL, decided_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS episodes_snapshot ON episodes (snapshot);
CREATE TABLE IF NOT EXISTS snapshots (
  number INTEGER PRIMARY KEY,
  created_at REAL NOT NULL,
  added INTEGER NOT NULL,
  total INTEGER NOT NULL,
  published INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rejected (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id TEXT, reason TEXT NOT NULL, raw TEXT, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS robots (
  robot_id TEXT PRIMARY KEY, task_id TEXT, status TEXT, policy_version INTEGER,
  reported_at REAL, received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
  robot_id TEXT PRIMARY KEY, task_id TEXT NOT NULL, assigned_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outcomes (
  episode_id TEXT PRIMARY KEY, robot_id TEXT, task_id TEXT, policy_version INTEGER,
  success INTEGER NOT NULL, intervened INTEGER NOT NULL, steps INTEGER NOT NULL,
  intervention_steps INTEGER NOT NULL, decided_at REAL NOT NULL, substep REAL
);
CREATE INDEX IF NOT EXISTS outcomes_version ON outcomes (policy_version, decided_at);
"""


@dataclass(frozen=True)
class Outcome:
    """What a committed episode says about its policy version."""

    success: bool
    intervened: bool
    """At least one control step was taken over by the (scripted) human."""
    steps: int
    """Control steps of the episode."""
    intervention_steps: int
    """Control steps taken over."""
    substep: float | None = None
    """Sub-step score (stages achieved / stages) of a chained task; ``None`` for a task without stages."""


@dataclass(frozen=True)
class Decision:
    """What the coordinator decided about one episode event in a batch."""

    event: EpisodeEvent
    reason: str | None = None
    """``None`` = accept (commit into the next snapshot); otherwise the quarantine reason."""
    outcome: Outcome | None = None
    """Outcome of an accepted episode (recorded in ``outcomes``)."""


class CoordinatorState:
    """Transactional access to the coordinator database (one per coordinator; safe across processes)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.conn: sqlite3.Connection = connect(self.path)
        with self._lock:
            self.conn.executescript(_SCHEMA)
            columns = {r[1] for r in self.conn.execute("PRAGMA table_info(outcomes)")}
            if "substep" not in columns:  # a database created before sub-step scores
                self.conn.execute("ALTER TABLE outcomes ADD COLUMN substep REAL")

    def known(self, episode_ids: list[str]) -> set[str]:
        """Ids among ``episode_ids`` already decided (committed or quarantined)."""
        if not episode_ids:
            return set()
        with self._lock:
            marks = ",".join("?" * len(episode_ids))
            rows = self.conn.execute(
                f"SELECT episode_id FROM episodes WHERE episode_id IN ({marks})", episode_ids
            ).fetchall()
        return {r[0] for r in rows}

    def commit(
        self,
        decisions: list[Decision],
        rejected: list[tuple[str, str, str]],
        heartbeats: list[HeartbeatEvent],
        fence: Callable[[sqlite3.Connection], None] | None = None,
    ) -> int | None:
        """Record a batch atomically; return the new snapshot number or ``None`` if nothing was added.

        Episode rows use ``INSERT OR IGNORE``: an id decided by a concurrent or earlier commit keeps
        its first decision, so a snapshot never lists an id twice. ``fence`` runs first inside the
        transaction and may raise to refuse it (the leader lease check).
        """
        t = now()
        with self._lock, Tx(self.conn) as c:
            if fence is not None:
                fence(c)
            number = (c.execute("SELECT COALESCE(MAX(number), 0) FROM snapshots").fetchone()[0]) + 1
            added = 0
            for d in decisions:
                e = d.event
                status = "committed" if d.reason is None else "quarantined"
                cur = c.execute(
                    "INSERT OR IGNORE INTO episodes (episode_id, status, robot_id, task_id, policy_version, "
                    "uri, sha256, bytes, snapshot, reason, created_at, decided_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (e.episode_id, status, e.robot_id, e.task_id, e.policy_version, e.uri, e.sha256,
                     e.bytes, number if d.reason is None else None, d.reason, e.created_at, t),
                )  # fmt: skip
                added += cur.rowcount if d.reason is None else 0
                if d.reason is None and cur.rowcount and d.outcome is not None:
                    o = d.outcome
                    c.execute(
                        "INSERT OR IGNORE INTO outcomes (episode_id, robot_id, task_id, policy_version, success, "
                        "intervened, steps, intervention_steps, decided_at, substep) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (e.episode_id, e.robot_id, e.task_id, e.policy_version, int(o.success),
                         int(o.intervened), int(o.steps), int(o.intervention_steps), t, o.substep),
                    )  # fmt: skip
            if rejected:
                c.executemany(
                    "INSERT INTO rejected (delivery_id, reason, raw, at) VALUES (?, ?, ?, ?)",
                    [(did, reason, raw[:4096], t) for did, reason, raw in rejected],
                )
            for hb in heartbeats:
                c.execute(
                    "INSERT INTO robots (robot_id, task_id, status, policy_version, reported_at, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (robot_id) DO UPDATE SET task_id = excluded.task_id, "
                    "status = excluded.status, policy_version = excluded.policy_version, "
                    "reported_at = excluded.reported_at, received_at = excluded.received_at "
                    "WHERE excluded.reported_at >= robots.reported_at",
                    (hb.robot_id, hb.task_id, hb.status, hb.policy_version, hb.created_at, t),
                )
            if not added:
                return None
            total = c.execute("SELECT COUNT(*) FROM episodes WHERE status = 'committed'").fetchone()[0]
            c.execute(
                "INSERT INTO snapshots (number, created_at, added, total) VALUES (?, ?, ?, ?)",
                (number, t, added, total),
            )
            return number

    def unpublished(self) -> list[dict[str, Any]]:
        """Manifests of committed snapshots not yet marked published, oldest first."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT number, created_at, total FROM snapshots WHERE published = 0 ORDER BY number"
            ).fetchall()
            out = []
            for number, created_at, total in rows:
                eps = self.conn.execute(
                    "SELECT episode_id, uri, sha256, bytes, task_id, robot_id, policy_version, created_at FROM episodes "
                    "WHERE snapshot = ? AND status = 'committed'",
                    (number,),
                ).fetchall()
                out.append(make_manifest(number, created_at, total, [SnapshotEntry(*r) for r in eps]))
        return out

    def mark_published(self, numbers: list[int]) -> None:
        with self._lock, Tx(self.conn) as c:
            c.executemany("UPDATE snapshots SET published = 1 WHERE number = ?", [(n,) for n in numbers])

    def latest_snapshot(self, published_only: bool = True) -> int:
        q = "SELECT COALESCE(MAX(number), 0) FROM snapshots" + (
            " WHERE published = 1" if published_only else ""
        )
        with self._lock:
            return self.conn.execute(q).fetchone()[0]

    # ------------------------------------------------------------------ tasks
    def task_assignments(self) -> dict[str, str]:
        with self._lock:
            return dict(self.conn.execute("SELECT robot_id, task_id FROM tasks").fetchall())

    def set_task(self, robot_id: str, task_id: str | None) -> None:
        with self._lock, Tx(self.conn) as c:
            if task_id is None:
                c.execute("DELETE FROM tasks WHERE robot_id = ?", (robot_id,))
            else:
                c.execute(
                    "INSERT OR REPLACE INTO tasks (robot_id, task_id, assigned_at) VALUES (?, ?, ?)",
                    (robot_id, task_id, now()),
                )

    # ------------------------------------------------------------------ outcomes
    def outcomes(
        self, versions: list[int] | None = None, since: float | None = None, limit: int | None = None
    ) -> list[tuple[int, str, str, int, int, int, int, float]]:
        """Outcome rows ``(version, task, robot, success, intervened, steps, intervention_steps,
        decided_at)``, newest first, optionally of some versions / decided at or after ``since``."""
        q = (
            "SELECT policy_version, task_id, robot_id, success, intervened, steps, intervention_steps, "
            "decided_at FROM outcomes WHERE 1=1"
        )
        args: list = []
        if versions is not None:
            q += f" AND policy_version IN ({','.join('?' * len(versions))})"
            args += list(versions)
        if since is not None:
            q += " AND decided_at >= ?"
            args.append(since)
        q += " ORDER BY decided_at DESC, rowid DESC"
        if limit is not None:
            q += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            return self.conn.execute(q, args).fetchall()

    def heartbeat_tasks(self) -> dict[str, str]:
        """Robot id -> task of its latest heartbeat, for robots whose last heartbeat is not ``stopped``."""
        with self._lock:
            q = "SELECT robot_id, task_id FROM robots WHERE status IS NOT 'stopped'"
            return dict(self.conn.execute(q).fetchall())

    # ------------------------------------------------------------------ status
    def status(self, robot_timeout_s: float, recent: int = 10) -> dict[str, Any]:
        t = now()
        with self._lock:
            q = self.conn.execute
            counts = dict(q("SELECT status, COUNT(*) FROM episodes GROUP BY status").fetchall())
            reasons = q(
                "SELECT episode_id, reason FROM episodes WHERE status = 'quarantined' "
                "ORDER BY decided_at DESC LIMIT ?",
                (recent,),
            ).fetchall()
            n_rejected = q("SELECT COUNT(*) FROM rejected").fetchone()[0]
            rej = q("SELECT reason FROM rejected ORDER BY id DESC LIMIT ?", (recent,)).fetchall()
            snap = q(
                "SELECT number, total, created_at FROM snapshots ORDER BY number DESC LIMIT 1"
            ).fetchone()
            robots = q("SELECT robot_id, task_id, status, policy_version, received_at FROM robots").fetchall()
            tasks = dict(q("SELECT robot_id, task_id FROM tasks").fetchall())
            lat = [d for (d,) in q(
                "SELECT decided_at - created_at FROM episodes WHERE status = 'committed' AND created_at IS NOT NULL "
                "ORDER BY decided_at DESC LIMIT 500"
            ).fetchall()]  # fmt: skip
        return {
            "latency": {"episode_to_committed_s": percentiles(lat)},
            "snapshot": {
                "latest": snap[0] if snap else 0,
                "episodes": snap[1] if snap else 0,
                "age_s": round(t - snap[2], 3) if snap else None,
            },  # fmt: skip
            "episodes": {
                "committed": counts.get("committed", 0),
                "quarantined": counts.get("quarantined", 0),
            },
            "recent_quarantine": [{"episode_id": e, "reason": r} for e, r in reasons],
            "rejected_events": n_rejected,
            "recent_rejected": [r for (r,) in rej],
            "robots": {
                rid: {
                    "task_id": task,
                    "status": st,
                    "policy_version": v,
                    "age_s": round(t - at, 3),
                    "stale": (t - at) > robot_timeout_s,
                    "assigned_task": tasks.get(rid),
                }  # fmt: skip
                for rid, task, st, v, at in robots
            },
            "task_assignments": tasks,
        }

    def close(self) -> None:
        with self._lock:
            self.conn.close()
