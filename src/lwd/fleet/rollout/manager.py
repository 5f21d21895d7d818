"""RolloutManager: canary rollout, automatic promotion / rollback and shift alerts (run by the coordinator).

Each :meth:`RolloutManager.tick` (every ``check_every_s`` seconds of the coordinator's loop), under
the lock of ``<fleet_root>/rollout/state.json`` (:mod:`lwd.fleet.rollout.state`):

1. **incumbent**: the fleet default of the registry. A fleet without one adopts the newest published
   version (bootstrap: the first version has nothing to be compared with).
2. **shift detector** (:mod:`lwd.fleet.rollout.shift_detector`): the incumbent's newest window of episodes against its
   previous window; a significant drop pauses promotion and raises an alert.
3. **canary decision** (:mod:`lwd.fleet.rollout.decide`): counts of canary and incumbent episodes per
   task since the canary started (same time window, so slow drifts affect both arms alike; a task on
   which fewer than ``min_task_episodes`` incumbent episodes arrived since, e.g. because the canary
   robot is the only robot on it, is compared with the incumbent's latest episodes on that task from
   before the canary -- a historical control, listed in ``canary.historical_control``) ->
   promote (fleet default := canary, pins removed), rollback (canary robots unpinned = back to the
   incumbent, version rejected: never assigned again automatically) or keep watching.
4. **new canary**: the newest published version that is newer than everything seen, not rejected and
   newer than the incumbent goes to ``floor(canary_share * robots)`` robots (at least 1, never all),
   chosen one per task round-robin (tasks with most robots first, so the incumbent keeps running every
   canary task), excluding operator-pinned robots. Versions published in between are ``skipped``.
   Nothing new starts while promotion is paused.

Newer versions while a canary runs (``on_newer``): ``finish`` lets the canary reach its decision, then
canaries the newest version; ``supersede`` replaces the canary with the newest version immediately
(the old one is recorded as ``superseded``; no evidence is carried over, the counts restart).

Every promote / rollback / canary start / alert is appended to ``audit.jsonl`` with its reason and
numbers; the latest verdict (also "watch") is kept in ``state.json`` under ``last_decision``.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable
from typing import Any

from lwd.configs.online import RolloutSettings
from lwd.fleet.dataplane.state import CoordinatorState
from lwd.fleet.registry.index import DEFAULT
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.fleet.rollout.decide import decide
from lwd.fleet.rollout.shift_detector import check_shift
from lwd.fleet.rollout.state import RolloutStore, add_alert

log = logging.getLogger(__name__)


def pick_canary_robots(
    robot_tasks: dict[str, str], pinned: set[str], share: float, seed: int = 0
) -> list[str]:
    """Robots for a canary: ``floor(share * len(robot_tasks))`` (>= 1, < all), spread over tasks."""
    n_total = len(robot_tasks)
    eligible = {r: t for r, t in robot_tasks.items() if r not in pinned}
    n = min(max(1, math.floor(share * n_total + 1e-9)), n_total - 1, len(eligible))
    if n <= 0:
        return []
    by_task: dict[str, list[str]] = {}
    for r, t in sorted(eligible.items()):
        by_task.setdefault(t, []).append(r)
    rng = random.Random(seed)
    for robots in by_task.values():
        rng.shuffle(robots)
    counts = {t: sum(1 for x in robot_tasks.values() if x == t) for t in by_task}
    order = sorted(by_task, key=lambda t: (-counts[t], t))
    out: list[str] = []
    while len(out) < n:
        for t in order:
            if by_task[t] and len(out) < n:
                out.append(by_task[t].pop())
    return sorted(out)


class RolloutManager:
    """Drives the canary rollout of one fleet (see module docstring)."""

    def __init__(
        self,
        fleet_root: str | os.PathLike,
        registry: PolicyRegistry,
        state: CoordinatorState,
        settings: RolloutSettings | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.store = RolloutStore(fleet_root)
        self.reg = registry
        self.db = state
        self.s = settings or RolloutSettings()
        self.clock = clock
        self._last = -math.inf

    def maybe_tick(self) -> list[dict[str, Any]]:
        """:meth:`tick` if ``check_every_s`` passed since the last one."""
        if time.monotonic() - self._last < self.s.check_every_s:
            return []
        self._last = time.monotonic()
        return self.tick()

    def tick(self) -> list[dict[str, Any]]:
        """One round of rollout decisions; returns the audit records it appended."""
        audit: list[dict[str, Any]] = []
        with self.store.locked() as st:
            self._incumbent(st, audit)
            if st["incumbent"] is None:
                return audit
            self._shift(st, audit)
            if st["canary"] is not None:
                self._judge(st, audit)
            if st["canary"] is None and not st["paused"]:
                self._start(st, audit)
        return audit

    def _audit(self, audit: list, action: str, **kw: Any) -> None:
        rec = self.store.append_audit(action, "auto", **kw)
        audit.append(rec)
        log.warning("rollout %s v%s: %s", action, kw.get("version"), kw.get("reason", ""))

    # ---- 1. incumbent ---------------------------------------------------------------------------
    def _incumbent(self, st: dict[str, Any], audit: list) -> None:
        default = self.reg.assignments().get(DEFAULT)
        if default is None:
            latest = self.reg.latest_version()
            if not latest:
                return
            self.reg.set_default(latest)
            st["incumbent"] = latest
            st["seen_version"] = max(st["seen_version"], latest)
            st["promoted"].append(latest)
            self._audit(audit, "promote", version=latest, reason="bootstrap: first fleet default")
        elif default != st["incumbent"]:
            st["incumbent"] = default  # set outside the manager (operator, learner without canary mode)
            st["seen_version"] = max(st["seen_version"], default)

    # ---- 2. shift detector ----------------------------------------------------------------------
    def _shift(self, st: dict[str, Any], audit: list) -> None:
        if self.s.shift_window <= 0:
            return
        inc = st["incumbent"]
        sh = st["shift"]
        if sh.get("version") != inc:
            sh.clear()
            sh.update(version=inc, checked=0)
        rows = self.db.outcomes(versions=[inc], limit=None)
        rows = [(task, s, i) for _, task, _, s, i, _, _, _ in reversed(rows)]  # oldest first
        sh["checked"], findings = check_shift(rows, self.s.shift_window, sh["checked"], self.s.shift_alpha)
        sh["episodes"] = len(rows)
        for f in findings:
            reason = (
                f"fleet-wide shift: incumbent v{inc} {f['signal']} between windows {f['window'] - 1} and "
                f"{f['window']} of {self.s.shift_window} episodes (success {f['previous_success_rate']:.2f} -> "
                f"{f['recent_success_rate']:.2f}, interventions {f['previous_intervention_rate']:.2f} -> "
                f"{f['recent_intervention_rate']:.2f}); promotion paused"
            )
            add_alert(st, "shift", reason, f)
            st["paused"] = True
            self._audit(audit, "alert", version=inc, reason=reason, stats=f)
            self._audit(audit, "pause", version=inc, reason="automatic: shift alert")

    # ---- 3. canary decision ---------------------------------------------------------------------
    def _counts(self, canary: dict[str, Any], incumbent: int) -> dict[str, dict[str, list[int]]]:
        v = int(canary["version"])
        per_task: dict[str, dict[str, list[int]]] = {}
        for version, task, _, s, i, _, _, _ in self.db.outcomes([v, incumbent], since=canary["started_at"]):
            arm = "canary" if version == v else "incumbent"
            c = per_task.setdefault(task, {"canary": [0, 0, 0], "incumbent": [0, 0, 0]})[arm]
            c[0] += 1
            c[1] += int(s)
            c[2] += int(i)
        short = {
            t for t, r in per_task.items() if r["canary"][0] and r["incumbent"][0] < self.s.min_task_episodes
        }
        if (
            short
        ):  # a task no incumbent robot runs now: the incumbent's latest episodes on it before the canary
            history = [
                r for r in self.db.outcomes([incumbent]) if r[1] in short and r[7] < canary["started_at"]
            ]
            for task in sorted(short):
                rows = [r for r in history if r[1] == task][: self.s.max_episodes]
                c = per_task[task]["incumbent"]
                c[0] += len(rows)
                c[1] += sum(int(r[3]) for r in rows)
                c[2] += sum(int(r[4]) for r in rows)
        canary["historical_control"] = sorted(short)
        return per_task

    def _judge(self, st: dict[str, Any], audit: list) -> None:
        canary, inc = st["canary"], st["incumbent"]
        v = int(canary["version"])
        if v <= inc:  # promoted (or overtaken) outside the manager
            self._end_canary(st)
            return
        per_task = self._counts(canary, inc)
        verdict = decide(per_task, self.s, canary.get("looks_done", 0), paused=st["paused"])
        canary["per_task"] = per_task
        canary["pooled"] = {k: verdict.stats[k] for k in ("canary", "incumbent")}
        if verdict.look is not None:
            canary["looks_done"] = verdict.look + 1
        st["last_decision"] = {"ts": self.clock(), "version": v, "action": verdict.action,
                               "reason": verdict.reason, "stats": verdict.stats}  # fmt: skip
        robots = list(canary["robots"])
        if verdict.action == "promote":
            self.reg.set_default(v)
            self._end_canary(st)
            st["incumbent"] = v
            st["promoted"].append(v)
            self._audit(
                audit, "promote", version=v, robots=robots, reason=verdict.reason, stats=verdict.stats
            )
        elif verdict.action == "rollback":
            self._end_canary(st)
            st["rejected"].append(v)
            self._audit(
                audit, "rollback", version=v, robots=robots, reason=verdict.reason, stats=verdict.stats
            )
        elif self.s.on_newer == "supersede" and not st["paused"]:
            latest = self._candidate(st)
            if latest is not None and latest > v:
                self._end_canary(st)
                st["superseded"].append(v)
                st["last_decision"]["reason"] = f"superseded by v{latest}"

    def _end_canary(self, st: dict[str, Any]) -> None:
        """Unpin the canary robots (they follow the fleet default again) and clear the canary."""
        pins = st.get("pins", {})
        for r in st["canary"]["robots"]:
            if r not in pins:
                self.reg.unpin(r)
        st["canary"] = None

    # ---- 4. new canary --------------------------------------------------------------------------
    def _candidate(self, st: dict[str, Any]) -> int | None:
        latest = self.reg.latest_version()
        floor = max(st["seen_version"], st["incumbent"] or 0)
        if latest <= floor or latest in st["rejected"]:
            return None
        return latest

    def _start(self, st: dict[str, Any], audit: list) -> None:
        v = self._candidate(st)
        if v is None:
            return
        robot_tasks = {**self.db.heartbeat_tasks(), **self.db.task_assignments()}  # claims may live in Redis
        robots = pick_canary_robots(robot_tasks, set(st.get("pins", {})), self.s.canary_share, seed=v)
        if not robots:
            st["last_decision"] = {"ts": self.clock(), "version": v, "action": "watch",
                                   "reason": f"no robot available for a canary ({len(robot_tasks)} robots)",
                                   "stats": {}}  # fmt: skip
            return
        floor = max(st["seen_version"], st["incumbent"] or 0)
        superseded = set(st.get("superseded", []))
        st["skipped"] += [u for u in self.reg.versions() if floor < u < v and u not in superseded]
        st["seen_version"] = v
        for r in robots:
            self.reg.pin(r, v)
        st["canary"] = {
            "version": v, "robots": robots, "started_at": self.clock(), "per_task": {}, "pooled": {},
            "robot_tasks": {r: robot_tasks[r] for r in robots}, "looks_done": 0,
        }  # fmt: skip
        stats = {"share": self.s.canary_share, "fleet_robots": len(robot_tasks), "canary_robots": len(robots),
                 "incumbent": st["incumbent"]}  # fmt: skip
        reason = f"new version v{v}: canary on {len(robots)} of {len(robot_tasks)} robots vs incumbent v{st['incumbent']}"
        self._audit(audit, "canary", version=v, robots=robots, reason=reason, stats=stats)
