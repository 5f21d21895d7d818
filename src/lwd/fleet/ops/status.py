"""``lwd status``: fleet health read from a fleet root, without a running coordinator.

``status(root) -> dict`` reads ``<root>/coordinator.db`` (episodes, quarantine, snapshots, robots,
tasks), the event log backlog, ``<root>/registry`` (latest policy version, assignments) and
``<root>/rollout/state.json`` (canary, incumbent, rejected versions, pause, alerts) when they exist;
:func:`format_status` renders it as plain text.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lwd.fleet.dataplane import open_dataplane
from lwd.fleet.dataplane.state import CoordinatorState
from lwd.utils.errors import DataError


def status(
    root: str | os.PathLike, robot_timeout_s: float = 30.0, group: str = "coordinator"
) -> dict[str, Any]:
    """Fleet health summary (the same keys as :meth:`Coordinator.fleet_status`, plus ``registry``).

    A database or state file that cannot be read (corrupt, not SQLite, not JSON) is a
    :class:`DataError` naming it, not a traceback."""
    root = Path(root)
    out: dict[str, Any] = {"root": str(root)}
    db = root / "coordinator.db"
    if db.is_file():
        with _readable(db, "coordinator database"):
            st = CoordinatorState(db)
            try:
                out.update(st.status(robot_timeout_s))
            finally:
                st.close()
    else:
        out["coordinator"] = "no coordinator state yet"
    if (root / "events.db").is_file():
        with _readable(root / "events.db", "event log"):
            dp = open_dataplane(root)
            try:
                out["event_backlog"] = dp.events.backlog(group)
            finally:
                dp.close()
    if (root / "registry" / "registry.db").is_file():
        from lwd.fleet.registry.registry import PolicyRegistry

        with _readable(root / "registry" / "registry.db", "policy registry index"):
            reg = PolicyRegistry(root / "registry")
            out["registry"] = {"latest_version": reg.latest_version(), "assignments": reg.assignments()}
    if (root / "rollout" / "state.json").is_file():
        from lwd.fleet.rollout.state import RolloutStore

        with _readable(root / "rollout" / "state.json", "rollout state"):
            out["rollout"] = RolloutStore(root).load()
    return out


@contextmanager
def _readable(path: Path, what: str) -> Iterator[None]:
    try:
        yield
    except (sqlite3.DatabaseError, ValueError, KeyError, TypeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"the {what} {path} cannot be read ({msg}); is it corrupt?") from e


def format_status(st: dict[str, Any]) -> str:
    """Human-readable rendering of :func:`status`."""
    lines = [f"fleet root: {st.get('root', '?')}"]
    snap = st.get("snapshot")
    if snap:
        lines.append(f"snapshot: #{snap['latest']} ({snap['episodes']} episodes, age {snap['age_s']}s)")
    lat = (st.get("latency") or {}).get("episode_to_committed_s") or {}
    if lat.get("n"):
        lines.append(f"episode end -> committed: P50 {lat['p50']} s, P99 {lat['p99']} s (last {lat['n']})")
    eps = st.get("episodes")
    if eps:
        lines.append(f"episodes: {eps['committed']} committed, {eps['quarantined']} quarantined")
    for q in st.get("recent_quarantine", [])[:5]:
        lines.append(f"  quarantined {q['episode_id']}: {q['reason']}")
    if st.get("rejected_events"):
        lines.append(f"rejected events: {st['rejected_events']}")
    if "event_backlog" in st:
        lines.append(f"event backlog: {st['event_backlog']}")
    for rid, r in sorted(st.get("robots", {}).items()):
        flag = " STALE" if r["stale"] else ""
        lines.append(f"  robot {rid}: task={r['task_id']} status={r['status']} v{r['policy_version']} "
                     f"age={r['age_s']}s{flag}")  # fmt: skip
    reg = st.get("registry")
    if reg:
        lines.append(f"policy: latest v{reg['latest_version']}, assignments {reg['assignments']}")
    if st.get("rollout"):
        lines.append(format_rollout(st["rollout"]))
    return "\n".join(lines)


def format_rollout(ro: dict[str, Any]) -> str:
    """Text summary of ``rollout/state.json``: incumbent, canary, pause, active alerts, last decision."""
    inc = f"v{ro['incumbent']}" if ro.get("incumbent") is not None else "none"
    lines = [
        f"rollout: incumbent {inc}{' PAUSED' if ro.get('paused') else ''}, rejected {ro.get('rejected', [])}"
    ]
    c = ro.get("canary")
    if c:
        pooled = c.get("pooled") or {}
        can, base = pooled.get("canary", {}), pooled.get("incumbent", {})
        lines.append(f"  canary v{c['version']} on {', '.join(c['robots'])}: {can.get('episodes', 0)} episodes, "
                     f"success {_pct(can.get('success_rate'))} vs {_pct(base.get('success_rate'))}, "
                     f"interventions {_pct(can.get('intervention_rate'))} vs {_pct(base.get('intervention_rate'))}")  # fmt: skip
    for a in ro.get("alerts", []):
        if a.get("active"):
            lines.append(f"  ALERT ({a['kind']}): {a['reason']}")
    last = ro.get("last_decision")
    if last:
        lines.append(f"  last decision v{last['version']}: {last['action']} ({last['reason']})")
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"
