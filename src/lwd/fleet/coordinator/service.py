"""Coordinator: turns the at-least-once event stream into exactly-once, numbered replay snapshots.

One :meth:`Coordinator.step`:

1. lease a batch of events from the event log (consumer group ``coordinator``);
2. for each "episode ready" event: skip ids already decided (duplicate delivery), otherwise fetch
   the payload and validate it (:mod:`lwd.fleet.coordinator.validation`): accept, or quarantine with a reason;
   malformed events are refused with a reason; heartbeats update fleet health;
3. commit all decisions and the new snapshot row in one SQLite transaction
   (:class:`~lwd.fleet.dataplane.state.CoordinatorState`);
4. publish manifests of committed-but-unpublished snapshots to the store (deterministic, so a
   re-publish after a crash writes the same bytes), then ``LATEST``;
5. acknowledge the events. A crash anywhere before 5 means redelivery, and step 2 deduplicates.

Transient failures (payload not yet visible, store or network errors) are not acknowledged, so the
event is retried after its lease; after ``max_attempts`` deliveries the episode is quarantined.

With a :class:`~lwd.fleet.rollout.manager.RolloutManager` attached (``--rollout``), :meth:`run` also drives
the canary rollout of new policy versions every ``check_every_s`` seconds (docs/safety.md); the
outcome of every committed episode (success, take-overs) is stored for it in the same transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lwd.configs.processes import CoordinatorConfig
from lwd.fleet.coordinator.leader import LeaderLease, NotLeader
from lwd.fleet.coordinator.validation import (
    ACTION_BOUND,
    KnownVersions,
    Rejected,
    ValidationRules,
    validate_episode,
)
from lwd.fleet.dataplane import DataPlane, open_dataplane
from lwd.fleet.dataplane.allocator import balanced_counts, choose_task
from lwd.fleet.dataplane.backoff import Backoff, is_transient
from lwd.fleet.dataplane.events import EpisodeEvent, HeartbeatEvent, parse_event
from lwd.fleet.dataplane.snapshots import SNAPSHOT_TOPIC, write_latest, write_manifest
from lwd.fleet.dataplane.state import CoordinatorState, Decision, Outcome
from lwd.utils.errors import ConfigError, LwdError

log = logging.getLogger(__name__)

CrashHook = Callable[[str], None]
"""Called with a step phase name (``validated``, ``committed``, ``published``, ``acked``); tests
raise from it to simulate a crash at that point."""


@dataclass
class StepResult:
    """Counts of what one step did."""

    delivered: int = 0
    committed: int = 0
    quarantined: int = 0
    duplicates: int = 0
    rejected: int = 0
    heartbeats: int = 0
    retry: int = 0
    snapshot: int | None = None
    reasons: list[str] = field(default_factory=list)
    standby: bool = False
    """Another coordinator holds the leader lease: nothing was read."""


class Coordinator:
    """Data-plane duties of the fleet coordinator (validation, dedup, quarantine, snapshots, health)."""

    def __init__(
        self,
        dataplane: DataPlane,
        state_path: str,
        rules: ValidationRules | None = None,
        known_version: Callable[[int], bool] | None = None,
        task_weights: dict[str, float] | None = None,
        group: str = "coordinator",
        consumer: str = "coordinator-0",
        batch: int = 256,
        max_attempts: int = 5,
        robot_timeout_s: float = 30.0,
        leader_lease_s: float = 10.0,
        compact_every_s: float = 60.0,
    ):
        self.dp = dataplane
        self.state = CoordinatorState(state_path)
        self.lease = LeaderLease(self.state, leader_lease_s)
        """Only the holder commits and publishes snapshots (:mod:`lwd.fleet.coordinator.leader`); others wait."""
        self.compact_every_s = compact_every_s
        self._compacted = time.monotonic()
        self.rules = rules or ValidationRules()
        self.known_version = known_version
        self.task_weights = dict(task_weights or {t: 1.0 for t in sorted(self.rules.known_tasks or ())})
        self.group = group
        self.consumer = consumer
        self.batch = batch
        self.max_attempts = max_attempts
        self.robot_timeout_s = robot_timeout_s
        self.crash_hook: CrashHook | None = None
        self.rollout: Any = None
        """A :class:`~lwd.fleet.rollout.manager.RolloutManager` ticked by :meth:`run`, or ``None``."""
        self._task_lock = threading.Lock()
        if self.lease.hold():
            self._publish()  # finish publishing whatever a previous incarnation committed

    def _hook(self, phase: str) -> None:
        if self.crash_hook is not None:
            self.crash_hook(phase)

    # ------------------------------------------------------------------ the step
    def step(self, block_s: float = 0.2) -> StepResult:
        """Process one batch of events end to end (see module docstring)."""
        res = StepResult()
        if not self.lease.hold():  # a standby: wait for the leader's lease to expire
            time.sleep(block_s)
            res.standby = True
            return res
        deliveries = self.dp.events.read(self.group, self.consumer, count=self.batch, block_s=block_s)
        res.delivered = len(deliveries)
        acks: list[str] = []
        decisions: list[Decision] = []
        rejected: list[tuple[str, str, str]] = []
        heartbeats: list[HeartbeatEvent] = []
        parsed: list[tuple[str, int, EpisodeEvent]] = []
        for d in deliveries:
            try:
                ev = parse_event(d.raw)
            except ValueError as e:
                rejected.append((d.delivery_id, f"malformed event: {e}", d.raw))
                acks.append(d.delivery_id)
                continue
            if isinstance(ev, HeartbeatEvent):
                heartbeats.append(ev)
                acks.append(d.delivery_id)
            else:
                parsed.append((d.delivery_id, d.deliveries, ev))
        decided = self.state.known([ev.episode_id for _, _, ev in parsed])
        in_batch: set[str] = set()
        for delivery_id, n, ev in parsed:
            if ev.episode_id in decided or ev.episode_id in in_batch:
                res.duplicates += 1
                acks.append(delivery_id)
                continue
            reason, outcome = self._decide(ev, n)
            if reason == "retry":
                res.retry += 1
                continue
            in_batch.add(ev.episode_id)
            decisions.append(Decision(ev, reason, outcome))
            acks.append(delivery_id)
        self._hook("validated")
        try:
            res.snapshot = self.state.commit(decisions, rejected, heartbeats, fence=self.lease.fence)
        except NotLeader as e:  # replaced while paused: nothing committed, events get redelivered
            log.warning("%s", e)
            return StepResult(delivered=res.delivered)
        self._hook("committed")
        self._publish()
        self._hook("published")
        self.dp.events.ack(self.group, acks)
        self._hook("acked")
        res.committed = sum(d.reason is None for d in decisions)
        res.quarantined = len(decisions) - res.committed
        res.reasons = [d.reason for d in decisions if d.reason] + [r for _, r, _ in rejected]
        res.rejected, res.heartbeats = len(rejected), len(heartbeats)
        for r in res.reasons:
            log.warning("coordinator refused: %s", r)
        return res

    def _decide(self, ev: EpisodeEvent, deliveries: int) -> tuple[str | None, Outcome | None]:
        """(``None``, outcome) to accept, (reason, None) to quarantine, ``("retry", None)`` if transient."""
        try:
            ep = validate_episode(ev, self.dp.store, self.rules, self.known_version)
            taken = int(ep.intervention.sum())
            return None, Outcome(bool(ep.success), taken > 0, int(ep.length), taken, ep.substep_score)
        except Rejected as e:
            return f"{ev.episode_id}: {e}", None
        except Exception as e:  # PayloadMissing, store/network errors, bugs: retry, then give up
            if deliveries >= self.max_attempts:
                return f"{ev.episode_id}: gave up after {deliveries} deliveries: {e}", None
            log.info("transient failure on %s (delivery %d): %s", ev.episode_id, deliveries, e)
            return "retry", None

    def _publish(self) -> None:
        """Write manifests for committed snapshots not yet published, then ``LATEST``."""
        pending = self.state.unpublished()
        if not pending:
            return
        for m in pending:
            write_manifest(self.dp.store, m)
        write_latest(self.dp.store, pending[-1]["number"])
        self.state.mark_published([m["number"] for m in pending])
        try:  # wake readers following the event log (a hint: they read LATEST from the store)
            self.dp.events.notify(SNAPSHOT_TOPIC, pending[-1]["number"])
        except Exception as e:  # broker down: readers fall back to polling
            log.info("snapshot notice failed: %s", e)

    def run(self, stop: threading.Event | None = None, max_steps: int | None = None,
            idle_exit_s: float | None = None, block_s: float = 0.2) -> int:  # fmt: skip
        """Step until ``stop`` is set, ``max_steps`` ran, or nothing arrived for ``idle_exit_s``.

        Errors reaching the event log (e.g. a restarting Redis) are logged and retried with backoff:
        the coordinator keeps running. Returns the number of steps taken.
        """
        steps, idle_since = 0, time.monotonic()
        backoff = Backoff("event log", logger=log)  # one warning per outage, jittered retries
        while not (stop is not None and stop.is_set()) and (max_steps is None or steps < max_steps):
            try:
                res = self.step(block_s=block_s)
                backoff.succeeded()
            except Exception as e:  # a restarting Redis, a lost connection: wait it out
                if not (is_transient(e) or type(e).__module__.startswith("redis")):
                    raise
                delay = backoff.failed(e)
                if stop is not None:
                    stop.wait(delay)
                else:
                    time.sleep(delay)
                continue
            steps += 1
            self._tick_rollout()
            self._maybe_compact()
            if res.delivered or res.standby:  # a standby is waiting, not idle
                idle_since = time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                break
        return steps

    def _maybe_compact(self) -> None:
        """Every ``compact_every_s``: drop event-log records every group has acknowledged."""
        if time.monotonic() - self._compacted < self.compact_every_s or not self.lease.hold():
            return
        self._compacted = time.monotonic()
        try:
            self.dp.events.compact()
        except Exception as e:  # housekeeping only
            log.info("event log compaction failed: %s", e)

    def _tick_rollout(self) -> None:
        if self.rollout is None:
            return
        try:
            self.rollout.maybe_tick()
        except Exception:  # a rollout bug must not stop data collection; it is logged loudly
            log.exception("rollout tick failed")

    # ------------------------------------------------------------------ fleet
    def heartbeat(self, robot_id: str, task_id: str, status: str, policy_version: int,
                  reported_at: float | None = None) -> None:  # fmt: skip
        """Record a heartbeat directly (robots normally send them through the event log)."""
        hb = HeartbeatEvent(robot_id, task_id, status, int(policy_version), reported_at or time.time())
        self.state.commit([], [], [hb])

    def assign_task(self, robot_id: str) -> str:
        """The robot's task: its durable assignment if still weighted, else the most under-served task."""
        with self._task_lock:
            current = self.state.task_assignments()
            task = current.get(robot_id)
            if task is not None and self.task_weights.get(task, 0) > 0:
                return task
            current.pop(robot_id, None)
            task = choose_task(balanced_counts(current, self.task_weights), self.task_weights)
            self.state.set_task(robot_id, task)
            return task

    def release_robot(self, robot_id: str) -> None:
        """Forget a robot's task assignment (it left the fleet)."""
        with self._task_lock:
            self.state.set_task(robot_id, None)

    def fleet_status(self) -> dict[str, Any]:
        """Health summary for ``lwd status``: snapshots, episode counts, quarantine, robots, backlog."""
        out = self.state.status(self.robot_timeout_s)
        try:
            out["event_backlog"] = self.dp.events.backlog(self.group)
        except Exception as e:  # status must work while the broker is down
            out["event_backlog"] = f"unavailable: {e}"
        return out

    def close(self) -> None:
        try:
            self.lease.release()
        finally:
            self.state.close()


def open_coordinator(cfg: CoordinatorConfig) -> Coordinator:
    """The coordinator of :class:`~lwd.configs.processes.CoordinatorConfig` ``cfg``: fleet root
    ``cfg.root`` (``coordinator.db``) on its embedded data plane or on ``cfg.dataplane``, optionally
    with another ``events`` URL; with ``cfg.rollout`` enabled, the canary rollout manager on the
    policy registry ``cfg.registry`` (default ``<root>/registry``).

    Validation (docs/dataplane.md): episodes must be of a task in ``tasks``, have ``state_dim`` /
    ``action_dim`` columns and at most ``max_steps`` steps (each ``None``: unchecked) and, with
    ``check_versions``, carry a policy version published in that registry; others are quarantined."""
    overrides: dict[str, Any] = {"lease_s": cfg.lease_s}
    if cfg.events:
        overrides["events"] = cfg.events
    dp = open_dataplane(cfg.dataplane or cfg.root, **overrides)
    rules = ValidationRules(known_tasks=frozenset(t for t in cfg.tasks if t) or None, state_dim=cfg.state_dim,
                            action_dim=cfg.action_dim, max_steps=cfg.max_steps,
                            max_abs_action=ACTION_BOUND if cfg.action_dim is not None else None)  # fmt: skip
    known = None
    if cfg.check_versions:
        known = KnownVersions(_registry(cfg))
    coord = Coordinator(
        dp, f"{cfg.root}/coordinator.db", rules, known, batch=cfg.batch, leader_lease_s=cfg.leader_lease_s
    )
    if cfg.rollout is not None and cfg.rollout.enabled:
        from lwd.fleet.rollout.manager import RolloutManager

        coord.rollout = RolloutManager(cfg.root, _registry(cfg), coord.state, cfg.rollout)
    return coord


def _registry(cfg: CoordinatorConfig) -> Any:
    from lwd.fleet.registry.registry import PolicyRegistry

    return PolicyRegistry(cfg.registry or f"{cfg.root}/registry", index=cfg.registry_index or None)


def main(argv: list[str] | None = None) -> None:
    """``python -m lwd.fleet.coordinator --config coordinator.json`` (what the launchers run: one
    :class:`~lwd.configs.processes.CoordinatorConfig`, unknown keys refused), or ``--root DIR`` and
    the options below, which build the same config: run the coordinator until idle or killed."""
    from lwd.configs.checks import OneLineParser, fail, load_json_object
    from lwd.configs.processes import load_process_config, process_config

    p = OneLineParser(description=main.__doc__)
    p.add_argument("--config", help="coordinator config JSON file (then no other option but --idle-exit-s)")
    p.add_argument("--root", help="fleet root (embedded data plane + coordinator.db)")
    p.add_argument("--dataplane", help="data-plane JSON config file (default: the embedded one under --root)")
    p.add_argument("--events", help="event log URL override (e.g. redis://127.0.0.1:6379/0)")
    p.add_argument("--tasks", default="", help="comma-separated known task ids (empty: any)")
    p.add_argument("--lease-s", type=float, default=30.0)
    p.add_argument("--idle-exit-s", type=float, default=None)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--leader-lease-s", type=float, default=10.0, help="leader lease: a standby coordinator on "
                   "the same coordinator.db takes over this long after the leader died")  # fmt: skip
    p.add_argument("--registry", help="policy registry root (default <root>/registry)")
    p.add_argument("--registry-index", help="registry index URL (redis://...) of a remote registry")
    p.add_argument("--rollout", help="JSON file of RolloutSettings (or with them under key 'rollout'): run the "
                   "canary rollout (docs/safety.md)")  # fmt: skip
    p.add_argument("--state-dim", type=int, help="quarantine episodes whose state is not this long")
    p.add_argument("--action-dim", type=int, help="quarantine episodes whose actions are not this long")
    p.add_argument("--max-steps", type=int, help="quarantine episodes longer than this (control steps)")
    p.add_argument("--check-versions", action="store_true",
                   help="quarantine episodes of a policy version the registry never published")  # fmt: skip
    a = p.parse_args(argv)
    if a.config is not None:
        others = [k for k, v in vars(a).items() if k not in ("config", "idle_exit_s") and v != p.get_default(k)]
        if others:
            p.error(f"--config takes no other option than --idle-exit-s (got --{others[0].replace('_', '-')})")
    elif a.root is None:
        p.error("give --config FILE or --root DIR")
    logging.basicConfig(level=logging.WARNING)
    try:
        if a.config is not None:
            cfg = load_process_config("coordinator", a.config)
        else:
            if a.dataplane and not Path(a.dataplane).is_file():
                raise ConfigError(f"--dataplane {a.dataplane}: no such data-plane config file")
            rollout = None
            if a.rollout:
                rollout = load_json_object(a.rollout, "rollout settings")
                rollout = rollout.get("rollout", rollout)
            given = {"root": a.root, "dataplane": a.dataplane or "", "events": a.events or "",
                     "tasks": [t for t in a.tasks.split(",") if t], "lease_s": a.lease_s, "batch": a.batch,
                     "leader_lease_s": a.leader_lease_s, "registry": a.registry or "",
                     "registry_index": a.registry_index or "", "rollout": rollout, "state_dim": a.state_dim,
                     "action_dim": a.action_dim, "max_steps": a.max_steps, "check_versions": a.check_versions}  # fmt: skip
            cfg = process_config("coordinator", given, "coordinator options", prefix="--")  # errors name the flags
        coord = open_coordinator(cfg)
    except LwdError as e:
        fail(str(e))
    coord.run(idle_exit_s=a.idle_exit_s)


if __name__ == "__main__":
    main()
