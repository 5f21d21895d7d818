"""``GET /api/state``: one JSON document aggregating everything the dashboard page shows.

Sources (all read-only; any one may be missing or unreadable, which shows up in ``errors`` and as
an empty section, never as a failed request):

* coordinator database + event log + registry (what :func:`lwd.fleet.ops.status.status` reads): robots'
  heartbeats (task, status, version, age), snapshots, quarantine, event backlog (data-plane lag),
  policy assignments;
* ``<online>/robots/client-*.json``: each robot's episodes, steps, recent success, outbox backlog;
* ``<online>/learner/status.json`` (step, version, state), ``metrics.jsonl`` (time series: steps/s,
  intervention rate, staleness), ``versions.json`` (per policy version: success rate per task,
  intervention rate);
* ``<fleet_root>/rollout/state.json`` and ``audit.jsonl`` (canary rollout, written by the rollout
  controller and the operator commands).

Success and intervention rates per version and per task over time come from the coordinator's
``outcomes`` table (one row per committed episode, :mod:`lwd.fleet.ops.dashboard.outcomes`). For a
fleet database without it, per-version rates come from the learner's ``versions.json`` and per-task
success over time from the robots' recent success, sampled by the dashboard since it started.
"""

from __future__ import annotations

import logging
import sqlite3
import tempfile
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

from lwd.fleet.ops.dashboard.outcomes import ROLLING, OutcomeLog
from lwd.fleet.ops.dashboard.sources import (
    FleetPaths,
    JsonlTail,
    downsample,
    read_json_or,
    robot_client_status,
)

log = logging.getLogger(__name__)

MAX_POINTS = 300
"""Longest series sent to the page (older points are thinned evenly)."""
AUDIT_ROWS = 20
"""Most recent audit records sent to the page."""
_METRIC_KEYS = {
    "learner/step": "step",
    "learner/version": "version",
    "learner/steps_per_s": "steps_per_s",
    "fleet/intervention_rate": "intervention_rate",
    "fleet/episodes": "episodes",
    "fleet/env_steps_per_s": "env_steps_per_s",
    "data/staleness_versions": "staleness_versions",
    "data/snapshot": "snapshot",
}


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _robot_status(hb: dict[str, Any]) -> str:
    if not hb:
        return "no heartbeat"
    if hb.get("status") != "stopped" and hb.get("stale"):
        return "stale"
    return str(hb.get("status"))


def merge_robots(coord: dict[str, dict], clients: dict[str, dict], assignments: dict[str, Any]) -> list[dict]:
    """One row per robot: the coordinator's heartbeat view joined with the robot client's status."""
    rows = []
    for rid in sorted(set(coord) | set(clients)):
        hb, cl = coord.get(rid, {}), clients.get(rid, {})
        version = cl.get("version", hb.get("policy_version"))
        rows.append({
            "id": rid,
            "task": cl.get("task_id") or hb.get("task_id") or hb.get("assigned_task"),
            "status": _robot_status(hb),
            "version": version,
            "pinned": assignments.get(rid),
            "episodes": cl.get("episodes"),
            "steps": cl.get("steps"),
            "recent_success": _num(cl.get("recent_success")),
            "outbox_pending": cl.get("pending"),
            "heartbeat_age_s": hb.get("age_s"),
        })  # fmt: skip
    return rows


def per_version(versions: dict[str, Any]) -> tuple[list[dict], list[str]]:
    """``versions.json`` as rows in version order, and the sorted task ids seen."""
    rows, tasks = [], set()
    for key, rec in versions.items():
        if not (isinstance(rec, dict) and str(key).lstrip("-").isdigit()):
            continue
        sr = {t: float(r) for t, r in (rec.get("success_rate") or {}).items() if _num(r) is not None}
        tasks |= set(sr)
        rows.append({
            "version": int(key),
            "episodes": rec.get("episodes", 0),
            "success_rate": sr,
            "intervention_rate": _num(rec.get("intervention_rate")),
        })  # fmt: skip
    return sorted(rows, key=lambda r: r["version"]), sorted(tasks)


def metric_series(records: list[dict]) -> list[dict]:
    """The learner's ``metrics.jsonl`` reduced to the keys the page plots, thinned to MAX_POINTS."""
    out = []
    for r in records:
        p: dict[str, Any] = {"t": _num(r.get("time"))}
        for k, short in _METRIC_KEYS.items():
            if _num(r.get(k)) is not None:
                p[short] = float(r[k])
        if p["t"] is not None:
            out.append(p)
    return downsample(out, MAX_POINTS)


def task_success_sample(robots: list[dict]) -> dict[str, float]:
    """Mean recent success over the robots working on each task (robots with no episode yet skipped)."""
    acc: dict[str, list[float]] = {}
    for r in robots:
        if r["task"] and r["recent_success"] is not None:
            acc.setdefault(r["task"], []).append(r["recent_success"])
    return {t: sum(v) / len(v) for t, v in sorted(acc.items())}


def history_series(history: list[dict[str, Any]]) -> dict[str, list]:
    """Dashboard-sampled ``[{t, rates: {task: r}}]`` as ``{task: [[t, r], ...]}`` (thinned)."""
    out: dict[str, list] = {}
    for h in history:
        for task, r in h["rates"].items():
            out.setdefault(task, []).append([h["t"], r])
    return {k: downsample(v, MAX_POINTS) for k, v in sorted(out.items())}


class FleetState:
    """Builds ``/api/state`` documents for one fleet; thread-safe, cached for ``min_interval_s``.

    The cache keeps many open pages (or a fast poller) from re-reading the databases more than once
    per interval; the task-success history gains at most one sample per build.
    """

    def __init__(self, paths: FleetPaths, robot_timeout_s: float = 30.0, min_interval_s: float = 0.5,
                 history: int = 2000, control_enabled: bool = False, refresh_s: float = 1.0) -> None:  # fmt: skip
        self.paths = paths
        self.robot_timeout_s = robot_timeout_s
        self.min_interval_s = min_interval_s
        self.control_enabled = control_enabled
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._cached: dict[str, Any] | None = None
        self._built_at = 0.0
        self._history: deque[dict[str, Any]] = deque(maxlen=history)
        ld = paths.learner_dir
        self._metrics = JsonlTail(ld / "metrics.jsonl") if ld is not None else None
        self._audit = JsonlTail(paths.rollout_dir / "audit.jsonl", maxlen=500)
        self._outcomes = OutcomeLog(paths.fleet_root / "coordinator.db")
        self._coord: Any = None
        self._dp: Any = None
        self._registry: Any = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    def get(self) -> dict[str, Any]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._built_at >= self.min_interval_s:
                self._cached = self.build()
                self._built_at = time.monotonic()
            return self._cached

    # ------------------------------------------------------------------ build
    def build(self) -> dict[str, Any]:
        errors: list[str] = []
        fleet = self._fleet_status(errors)
        reg = fleet.get("registry") or {}
        assignments = dict(reg.get("assignments") or {})
        clients = robot_client_status(self.paths.robots_dir, errors)
        robots = merge_robots(fleet.get("robots") or {}, clients, assignments)
        ld = self.paths.learner_dir
        lst = read_json_or(ld / "status.json" if ld else None, {}, errors)
        try:
            self._outcomes.read()
        except sqlite3.Error as e:  # the database is being created right now
            errors.append(f"outcomes: {e}")
        metrics = self._metrics.read() if self._metrics is not None else []
        series = metric_series(metrics)
        now = time.time()
        sample = task_success_sample(robots)
        if sample and (not self._history or self._history[-1]["rates"] != sample
                       or now - self._history[-1]["t"] > 10.0):  # fmt: skip
            self._history.append({"t": now, "rates": sample})
        if self._outcomes.available and self._outcomes.episodes:
            vrows, tasks = self._outcomes.per_version()
            vsource = "coordinator outcomes (every committed episode)"
            ts = self._outcomes.task_series(MAX_POINTS)
            task_success, task_inter, task_substep = ts["success"], ts["intervention"], ts["substep"]
            tsource = f"rolling over each task's last {ROLLING} committed episodes"
        else:
            vrows, tasks = per_version(read_json_or(ld / "versions.json" if ld else None, {}, errors))
            vsource = "learner versions.json (episodes the learner ingested)"
            task_success, task_inter, task_substep = history_series(list(self._history)), {}, {}
            tsource = "robots' recent success, sampled by the dashboard since it started"
        snap = fleet.get("snapshot") or {}
        last_metric = metrics[-1] if metrics else {}
        learner_snapshot = _num(lst.get("snapshot"))
        pending = [r["outbox_pending"] for r in robots if isinstance(r["outbox_pending"], int)]
        rollout_state = read_json_or(self.paths.rollout_dir / "state.json", None, errors)
        return {
            "generated_at": now,
            "refresh_s": self.refresh_s,
            "fleet_root": str(self.paths.fleet_root),
            "run_dir": str(self.paths.online_dir.parent) if self.paths.online_dir else None,
            "robots": robots,
            "fleet": {
                "robots": len(robots),
                "running": sum(r["status"] == "running" for r in robots),
                "stale": sum(r["status"] == "stale" for r in robots),
                "by_status": dict(sorted(Counter(r["status"] for r in robots).items())),
                "episodes": sum(r["episodes"] or 0 for r in robots),
                "env_steps": sum(r["steps"] or 0 for r in robots),
                "tasks": sorted({r["task"] for r in robots if r["task"]}),
            },
            "learner": {
                "state": lst.get("state"),
                "step": lst.get("step"),
                "version": lst.get("version"),
                "versions_published": lst.get("versions_published"),
                "online_episodes": lst.get("online_episodes"),
                "online_transitions": lst.get("online_transitions"),
                "robot_hours": _num(lst.get("robot_hours")),
                "steps_per_s": _num(last_metric.get("learner/steps_per_s")),
                "status_age_s": round(now - lst["time"], 3) if _num(lst.get("time")) else None,
            },
            "dataplane": {
                "event_backlog": fleet.get("event_backlog"),
                "snapshot": snap.get("latest"),
                "snapshot_episodes": snap.get("episodes"),
                "snapshot_age_s": snap.get("age_s"),
                "learner_snapshot": learner_snapshot,
                "snapshots_behind": (
                    snap["latest"] - learner_snapshot
                    if snap.get("latest") is not None and learner_snapshot is not None
                    else None
                ),  # fmt: skip
                "outbox_pending": sum(pending) if pending else None,
                "committed": (fleet.get("episodes") or {}).get("committed"),
                "quarantined": (fleet.get("episodes") or {}).get("quarantined"),
                "rejected_events": fleet.get("rejected_events"),
                "recent_quarantine": fleet.get("recent_quarantine", [])[:5],
            },
            "registry": {
                "latest_version": reg.get("latest_version"),
                "default_version": assignments.get("*"),
                "pins": {k: v for k, v in assignments.items() if k != "*" and v is not None},
            },
            "versions": {"rows": vrows, "tasks": tasks, "source": vsource},
            "series": {
                "metrics": series,
                "task_success": task_success,
                "task_intervention": task_inter,
                "task_substep": task_substep,
                "task_source": tsource,
            },
            "rollout": {
                "state": rollout_state if isinstance(rollout_state, dict) else None,
                "audit": self._audit.read()[-AUDIT_ROWS:][::-1],
            },
            "control": {"enabled": self.control_enabled},
            "errors": errors,
        }

    def _fleet_status(self, errors: list[str]) -> dict[str, Any]:
        """What :func:`lwd.fleet.ops.status.status` reports, from handles kept open between builds (status()
        opens a fresh registry, and with it a new temp cache dir, on every call)."""
        root = self.paths.fleet_root
        out: dict[str, Any] = {}
        try:
            if self._coord is None and (root / "coordinator.db").is_file():
                from lwd.fleet.dataplane.state import CoordinatorState

                self._coord = CoordinatorState(root / "coordinator.db")
            if self._coord is not None:
                out.update(self._coord.status(self.robot_timeout_s))
            if self._dp is None and (root / "events.db").is_file():
                from lwd.fleet.dataplane import open_dataplane

                self._dp = open_dataplane(root)
            if self._dp is not None:
                out["event_backlog"] = self._dp.events.backlog("coordinator")
            reg_root = Path(self.paths.registry())
            if self._registry is None and (reg_root / "registry.db").is_file():
                from lwd.fleet.registry.registry import PolicyRegistry

                self._tmp = tempfile.TemporaryDirectory(prefix="lwd-dashboard-")
                self._registry = PolicyRegistry(reg_root, cache_dir=self._tmp.name)
            if self._registry is not None:
                out["registry"] = {"latest_version": self._registry.latest_version(),
                                   "assignments": self._registry.assignments()}  # fmt: skip
        except Exception as e:  # a database being created right now; show the rest
            errors.append(f"fleet status: {type(e).__name__}: {e}")
        return out

    def close(self) -> None:
        with self._lock:
            if self._coord is not None:
                self._coord.close()
            if self._dp is not None:
                self._dp.close()
            if self._tmp is not None:
                self._tmp.cleanup()
            self._outcomes.close()
            self._coord = self._dp = self._registry = self._tmp = None
