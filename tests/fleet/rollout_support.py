"""Helpers of the rollout tests: a registry with fake versions, synthetic episode outcomes."""

from __future__ import annotations

import itertools
from pathlib import Path

from lwd.fleet.dataplane.events import EpisodeEvent
from lwd.fleet.dataplane.state import CoordinatorState, Decision, Outcome
from lwd.fleet.registry.registry import PolicyRegistry

_ids = itertools.count()


def fleet(
    root: Path, robots_per_task: dict[str, int]
) -> tuple[PolicyRegistry, CoordinatorState, dict[str, str]]:
    """A fleet root with a registry (v1 = fleet default) and robots assigned to tasks."""
    reg = PolicyRegistry(root / "registry")
    reg.set_default(reg.publish({"w": b"v1"}))
    db = CoordinatorState(root / "coordinator.db")
    tasks: dict[str, str] = {}
    i = 0
    for task, n in robots_per_task.items():
        for _ in range(n):
            rid = f"robot-{i:03d}"
            db.set_task(rid, task)
            tasks[rid] = task
            i += 1
    return reg, db, tasks


def record(
    db: CoordinatorState, robot: str, task: str, version: int, success: bool, intervened: bool
) -> None:
    """Commit one synthetic episode outcome as the coordinator would."""
    eid = f"ep-{next(_ids):08d}"
    ev = EpisodeEvent(eid, robot, task, version, "0" * 64, 1, f"mem://{eid}", 0.0)
    db.commit([Decision(ev, None, Outcome(success, intervened, 100, 10 if intervened else 0))], [], [])


def run_round(db: CoordinatorState, reg: PolicyRegistry, tasks: dict[str, str], quality) -> None:
    """Every robot finishes one episode with the version the registry assigns it.

    ``quality(version, task, k)`` -> (success, intervened) for the robot's k-th episode."""
    for k, (rid, task) in enumerate(sorted(tasks.items())):
        v = reg.resolve_version(rid)
        s, i = quality(v, task, k)
        record(db, rid, task, v, s, i)
