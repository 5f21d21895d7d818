"""Helpers of the online fleet tests: a small fake4 fleet config and readers of what a run left."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

from lwd.configs.online import Budget, LearnerSettings, OnlineConfig, RolloutSettings
from lwd.fleet.dataplane import open_dataplane
from lwd.fleet.dataplane.snapshots import entries_of, latest_number, read_manifest


def small_fleet_config(max_learner_steps: int = 30, **kw) -> OnlineConfig:
    """4 robots in 2 processes on fake4 (every task once), tiny batches, a version every 10 steps."""
    learner = LearnerSettings(
        publish_every=10, checkpoint_every=10, log_every=5, batch_size=16, min_online_transitions=100, utd=0.5
    )
    base = dict(
        suite="fake4",
        num_robots=4,
        robot_processes=2,
        long_task_weight=1.0,
        heartbeat_s=1.0,
        status_every_s=5.0,
        stop_timeout_s=30.0,
        learner=learner,
        budget=Budget(max_learner_steps=max_learner_steps, max_wall_s=150.0),
        # every version fleet-wide: these tests assert robots switch versions within a 30-step run;
        # canary mode is tested in test_rollout_fleet.py / test_rollout_launch.py
        rollout=RolloutSettings(enabled=False),
    )
    base.update(kw)
    return OnlineConfig(**base)


def manifests(fleet_root: Path) -> list[dict]:
    """Every published snapshot manifest, in number order."""
    dp = open_dataplane(fleet_root)
    try:
        return [read_manifest(dp.store, n) for n in range(1, latest_number(dp.store) + 1)]
    finally:
        dp.close()


def snapshot_membership(fleet_root: Path) -> Counter:
    """episode id -> number of snapshot manifests that add it (must be exactly 1)."""
    return Counter(e.episode_id for m in manifests(fleet_root) for e in entries_of(m))


def committed_ids(fleet_root: Path) -> set[str]:
    with sqlite3.connect(fleet_root / "coordinator.db") as c:
        return {r[0] for r in c.execute("SELECT episode_id FROM episodes WHERE status = 'committed'")}


def outbox_pending(online_dir: Path, robot_ids=None) -> set[str]:
    """Episode ids still waiting in robot outboxes."""
    out = set()
    for d in (online_dir / "outbox").glob("*/pending"):
        if robot_ids is not None and d.parent.name not in robot_ids:
            continue
        out |= {p.name[21:-8] for p in d.glob("*.parquet") if not p.name.startswith(".")}
    return out
