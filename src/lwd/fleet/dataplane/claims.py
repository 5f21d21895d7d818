"""Task claims: which task each robot runs, decided by the balanced allocator, durable, atomic.

A robot claims its task once at start (:meth:`TaskClaims.claim`): it keeps its durable assignment
while that task still has a positive weight, otherwise it gets the most under-served task
(:func:`lwd.fleet.dataplane.allocator.choose_task` over the other robots' assignments). The decision rule is
:func:`decide`, shared by both backends, so they allocate identically:

* :class:`SqliteTaskClaims` (``sqlite:///<fleet_root>/coordinator.db``): the ``tasks`` table of the
  coordinator database, read and written in one ``BEGIN IMMEDIATE`` transaction. Robots on the
  coordinator's machine (or a shared filesystem) -- the embedded default.
* :class:`RedisTaskClaims` (``redis://host:port/db``): a Redis hash ``<stream>:tasks`` (robot id ->
  task id) changed with optimistic ``WATCH``/``MULTI``/``EXEC``: if another robot's claim lands
  between the read and the write, the transaction aborts and the claim is decided again on the new
  state, so concurrent claims from any number of machines never double-count. Durable as far as
  the server persists (run Redis with ``appendonly yes``, as the event log requires anyway).
  A claim made while the broker is down or restarting waits for it (:class:`~lwd.fleet.dataplane.backoff.Backoff`:
  bounded exponential backoff with jitter, one warning per outage) instead of failing, so a robot
  started during a broker outage joins the fleet once the broker is back.

:func:`claims_url_for` picks the backend from the data plane: a Redis event log means Redis claims
(remote robots need nothing else than the broker), otherwise the coordinator database.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from lwd.fleet.dataplane import DataPlaneConfig
from lwd.fleet.dataplane.allocator import balanced_counts, choose_task
from lwd.fleet.dataplane.backoff import Backoff
from lwd.fleet.dataplane.events import now
from lwd.fleet.dataplane.sqlite import Tx
from lwd.fleet.dataplane.state import CoordinatorState

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def decide(current: dict[str, str], robot_id: str, weights: dict[str, float]) -> tuple[str, bool]:
    """``(task, changed)`` for ``robot_id`` given every robot's ``current`` assignment.

    Its own assignment if that task is still weighted (``changed`` False), else the task chosen by
    the balanced allocator over the *other* robots' assignments (``changed`` True).
    """
    others = dict(current)
    task = others.pop(robot_id, None)
    if task is not None and weights.get(task, 0) > 0:
        return task, False
    return choose_task(balanced_counts(others, weights), weights), True


class TaskClaims(Protocol):
    """Durable robot -> task assignments shared by the whole fleet."""

    def claim(self, robot_id: str, weights: dict[str, float]) -> str: ...

    def release(self, robot_id: str) -> None: ...

    def assignments(self) -> dict[str, str]: ...

    def close(self) -> None: ...


def claim_task(state: CoordinatorState, robot_id: str, weights: dict[str, float]) -> str:
    """Claim on an open coordinator database: :func:`decide` inside one ``BEGIN IMMEDIATE`` transaction,
    so robot processes claiming concurrently cannot double-count (same rule as
    :meth:`Coordinator.assign_task`)."""
    with state._lock, Tx(state.conn) as c:
        current = dict(c.execute("SELECT robot_id, task_id FROM tasks").fetchall())
        task, changed = decide(current, robot_id, weights)
        if changed:
            c.execute(
                "INSERT OR REPLACE INTO tasks (robot_id, task_id, assigned_at) VALUES (?, ?, ?)",
                (robot_id, task, now()),
            )
        return task


class SqliteTaskClaims:
    """Claims in the coordinator database's ``tasks`` table (one machine or a shared filesystem)."""

    def __init__(self, path: str | os.PathLike):
        self.state = CoordinatorState(path)

    def claim(self, robot_id: str, weights: dict[str, float]) -> str:
        return claim_task(self.state, robot_id, weights)

    def release(self, robot_id: str) -> None:
        self.state.set_task(robot_id, None)

    def assignments(self) -> dict[str, str]:
        return self.state.task_assignments()

    def close(self) -> None:
        self.state.close()


class RedisTaskClaims:
    """Claims in the Redis hash ``<stream>:tasks``, decided under ``WATCH`` (see module docstring)."""

    def __init__(self, url: str, stream: str = "lwd:episodes", max_attempts: int = 1000,
                 give_up_s: float | None = None, stop: threading.Event | None = None) -> None:  # fmt: skip
        try:
            import redis
        except ImportError as e:  # pragma: no cover - exercised only without the extra
            raise ImportError("Redis task claims need the 'redis' package: pip install 'lwd[scale]'") from e
        self._watch_error = redis.WatchError
        self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self.key = f"{stream}:tasks"
        self.max_attempts = max_attempts
        self.before_commit: Callable[[], None] | None = None
        """Test hook: called between the read and ``EXEC`` (a concurrent claim there forces a retry)."""
        self.attempts = 0
        """Transactions tried by the last :meth:`claim` (1 unless it raced with another claim)."""
        self.give_up_s = give_up_s
        """Seconds a claim waits for an unreachable broker before raising (``None``: as long as the
        outage lasts)."""
        self.stop = stop
        """Set it to make a claim waiting for the broker raise at once (e.g. on SIGTERM)."""
        self.backoff = Backoff(f"task claims broker {url}", base_s=0.1, max_s=5.0)

    def _read(self, conn) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in conn.hgetall(self.key).items()}

    def claim(self, robot_id: str, weights: dict[str, float]) -> str:
        """Decide and record ``robot_id``'s task; waits out broker outages (see module docstring)."""
        return self.backoff.call(lambda: self._claim(robot_id, weights), self.stop, self.give_up_s)

    def _claim(self, robot_id: str, weights: dict[str, float]) -> str:
        with self.client.pipeline() as pipe:
            for attempt in range(1, self.max_attempts + 1):
                self.attempts = attempt
                try:
                    pipe.watch(self.key)
                    task, changed = decide(self._read(pipe), robot_id, weights)
                    if not changed:
                        pipe.unwatch()
                        return task
                    if self.before_commit is not None:
                        self.before_commit()
                    pipe.multi()
                    pipe.hset(self.key, robot_id, task)
                    pipe.execute()
                    return task
                except self._watch_error:
                    continue  # another claim changed the assignments: decide again on the new state
        raise RuntimeError(f"task claim for {robot_id} kept racing after {self.max_attempts} attempts")

    def release(self, robot_id: str) -> None:
        self.client.hdel(self.key, robot_id)

    def assignments(self) -> dict[str, str]:
        return self._read(self.client)

    def close(self) -> None:
        self.client.close()


def claims_url_for(dataplane: DataPlaneConfig, fleet_root: str | os.PathLike | None) -> str:
    """The claims backend a data plane implies: its Redis broker, else ``<fleet_root>/coordinator.db``."""
    if dataplane.events.startswith(REDIS_SCHEMES):
        return dataplane.events
    if fleet_root is None:
        raise ValueError("task claims need a Redis data plane or the fleet root holding coordinator.db")
    return f"sqlite://{Path(fleet_root).resolve() / 'coordinator.db'}"


def open_task_claims(url: str, stream: str = "lwd:episodes") -> TaskClaims:
    """Open task claims from a URL: ``sqlite:///abs/coordinator.db`` or ``redis://host:port/db``."""
    if url.startswith("sqlite://"):
        return SqliteTaskClaims(url[len("sqlite://") :])
    if url.startswith(REDIS_SCHEMES):
        return RedisTaskClaims(url, stream=stream)
    raise ValueError(f"unknown task claims URL {url!r}; expected sqlite://... or redis://...")
