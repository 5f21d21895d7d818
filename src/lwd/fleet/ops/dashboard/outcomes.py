"""Episode outcomes from the coordinator database, for rates per version and per task over time.

The coordinator records one ``outcomes`` row per committed episode (version, task, robot, success,
intervened, steps, intervention steps, decided_at, and the sub-step score of a chained task) in the
same transaction as the episode; the
rollout manager compares versions on them. :class:`OutcomeLog` follows that table through its own
read-only SQLite connection, reading only rows it has not seen (by rowid). A fleet database without
the table (an older run) gives ``available = False`` and the dashboard falls back to the learner's
``versions.json`` and the robots' recent success.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from lwd.fleet.ops.dashboard.sources import downsample

ROLLING = 20
"""Episodes per task in the rolling rates plotted over time."""


class OutcomeLog:
    """Incremental reader of ``<fleet_root>/coordinator.db``'s ``outcomes`` table.

    Aggregates are updated per new row (O(1) each), so a build costs the same late in a long run.
    """

    def __init__(self, db: Path, window: int = ROLLING, maxlen: int = 20_000):
        self.db = db
        self.window = window
        self.maxlen = maxlen
        self.last_rowid = 0
        self.available = False
        self.episodes = 0
        self._conn: sqlite3.Connection | None = None
        self._succ: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        self._steps: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        self._recent: dict[str, deque] = defaultdict(lambda: deque(maxlen=window))
        self._success: dict[str, deque] = defaultdict(lambda: deque(maxlen=maxlen))
        self._inter: dict[str, deque] = defaultdict(lambda: deque(maxlen=maxlen))
        self._sub: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0, 0.0]))
        self._recent_sub: dict[str, deque] = defaultdict(lambda: deque(maxlen=window))
        self._substep: dict[str, deque] = defaultdict(lambda: deque(maxlen=maxlen))
        self._sub_column = "NULL"

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None and self.db.is_file():
            self._conn = sqlite3.connect(
                f"file:{self.db}?mode=ro", uri=True, timeout=5.0, check_same_thread=False
            )
        return self._conn

    def read(self) -> None:
        """Take in rows committed since the last call (no-op while the table does not exist)."""
        conn = self._connect()
        if conn is None:
            return
        if not self.available:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outcomes'"
            ).fetchone()
            if not found:
                return
            self.available = True
        if self._sub_column == "NULL":  # a database from before sub-step scores lacks the column
            if "substep" in {r[1] for r in conn.execute("PRAGMA table_info(outcomes)")}:
                self._sub_column = "substep"
        new = conn.execute(
            "SELECT rowid, decided_at, task_id, policy_version, success, steps, intervention_steps, "
            f"{self._sub_column} FROM outcomes WHERE rowid > ? ORDER BY rowid",
            (self.last_rowid,),
        ).fetchall()
        for rowid, t, task, v, s, n, ni, sub in new:
            self._add(float(t), str(task), int(v), int(s), int(n), int(ni))
            if sub is not None:
                self._add_substep(float(t), str(task), int(v), float(sub))
            self.last_rowid = rowid

    def _add_substep(self, t: float, task: str, v: int, sub: float) -> None:
        c = self._sub[v][task]
        c[0] += 1
        c[1] += sub
        q = self._recent_sub[task]
        q.append(sub)
        self._substep[task].append([t, sum(q) / len(q)])

    def _add(self, t: float, task: str, v: int, s: int, n: int, ni: int) -> None:
        self.episodes += 1
        c = self._succ[v][task]
        c[0] += 1
        c[1] += s
        self._steps[v][0] += n
        self._steps[v][1] += ni
        q = self._recent[task]
        q.append((s, n, ni))
        self._success[task].append([t, sum(x[0] for x in q) / len(q)])
        self._inter[task].append([t, sum(x[2] for x in q) / max(sum(x[1] for x in q), 1)])

    def per_version(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Rows like ``versions.json``: per version, episodes, success rate per task, intervention rate
        (intervened steps / steps), mean sub-step score per chained task; and the sorted task ids."""
        rows = [
            {
                "version": v,
                "episodes": sum(c for c, _ in self._succ[v].values()),
                "success_rate": {t: k / c for t, (c, k) in sorted(self._succ[v].items())},
                "intervention_rate": self._steps[v][1] / max(self._steps[v][0], 1),
                "substep": {t: s / c for t, (c, s) in sorted(self._sub[v].items())},
            }
            for v in sorted(self._succ)
        ]
        return rows, sorted({t for v in self._succ.values() for t in v})

    def task_series(self, max_points: int = 300) -> dict[str, dict[str, list]]:
        """Per task, at each episode's commit time: success rate and intervention rate over the task's
        last ``window`` episodes (``{"success": {task: [[t, r], ...]}, "intervention": {...}}``), and
        the mean sub-step score of chained tasks (``"substep"``, only tasks whose episodes carry one)."""
        return {
            "success": {k: downsample(list(v), max_points) for k, v in sorted(self._success.items())},
            "intervention": {k: downsample(list(v), max_points) for k, v in sorted(self._inter.items())},
            "substep": {k: downsample(list(v), max_points) for k, v in sorted(self._substep.items())},
        }

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
