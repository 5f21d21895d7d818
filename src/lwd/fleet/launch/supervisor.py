"""What every launcher shares: progress, budget, drain and the stop order of a fleet run.

A launcher (:class:`~lwd.fleet.launch.local.LocalFleet`, :class:`~lwd.fleet.launch.ray.RayFleet`)
subclasses :class:`FleetSupervisor` and supplies one :class:`Handle` per planned component (a
subprocess, a Ray actor) plus :meth:`FleetSupervisor.supervise`. The supervisor:

* stops at the budget (robot-hours, learner steps or wall-clock, whichever first), when the learner
  finished, or on SIGINT/SIGTERM, in order: robots (they finish the current episode and flush
  their outboxes) -> wait for the coordinator to drain the event log -> learner (publishes,
  checkpoints) -> coordinator;
* shows a live ``rich`` table on a TTY, periodic log lines otherwise.

A launcher that restarts crashed children itself (the local one) spends a :class:`RestartBudget` per
child: at most ``max_restarts`` restarts within any ``restart_window_s`` seconds, each later one in
the window delayed with exponential backoff, so occasional crashes are restarted forever while a
crash loop is given up on.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import Protocol

from lwd.configs.online import OnlineConfig
from lwd.fleet.dataplane import open_dataplane
from lwd.fleet.launch.plan import Component, FleetPlan
from lwd.utils.io import read_json

log = logging.getLogger(__name__)
ROBOTS_GAVE_UP = "robots gave up"
"""Stop reason when every robot client exhausted its restart budget (the run fails, resumably)."""


class RestartBudget:
    """Restarts allowed to one child: at most ``max_restarts`` within any ``window_s`` seconds.

    :meth:`next_delay` answers a crash: ``None`` to give up (the window already holds
    ``max_restarts`` restarts), else the seconds to wait before restarting -- 0 for the first restart
    in the window, then ``backoff_s * 2**(k-2)`` for the k-th, at most ``max_backoff_s``.
    """

    def __init__(self, max_restarts: int, window_s: float, backoff_s: float = 1.0,
                 max_backoff_s: float = 30.0) -> None:  # fmt: skip
        self.max_restarts = int(max_restarts)
        self.window_s = float(window_s)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self._times: deque[float] = deque()

    @classmethod
    def from_config(cls, cfg: OnlineConfig) -> RestartBudget:
        return cls(cfg.max_restarts, cfg.restart_window_s, cfg.restart_backoff_s, cfg.restart_backoff_max_s)

    def recent(self, now: float | None = None) -> int:
        """Restarts within the last ``window_s`` seconds."""
        now = time.monotonic() if now is None else now
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()
        return len(self._times)

    def next_delay(self, now: float | None = None) -> float | None:
        """Record a restart and return its delay (seconds), or ``None`` when the budget is spent."""
        now = time.monotonic() if now is None else now
        k = self.recent(now)
        if k >= self.max_restarts:
            return None
        self._times.append(now)
        return 0.0 if k == 0 else min(self.max_backoff_s, self.backoff_s * 2 ** (k - 1))


class Handle(Protocol):
    """A running component as the supervisor sees it."""

    name: str
    restarts: int
    finished: bool
    """Its main loop ended (done, stopped) or it gave up after too many restarts."""

    @property
    def alive(self) -> bool: ...

    def start(self) -> None: ...

    def request_stop(self) -> None:
        """Ask for a clean stop (finish the episode / publish + checkpoint); returns at once."""

    def wait(self, timeout_s: float) -> None:
        """Wait for the stop to complete; kill after ``timeout_s``."""


class FleetSupervisor:
    """Runs one fleet plan to its budget (see module docstring)."""

    def __init__(self, cfg: OnlineConfig, online_dir: Path, offline_dataset: Path, init: Path,
                 control_hz: float) -> None:  # fmt: skip
        self.cfg = cfg
        self.plan = FleetPlan(cfg, online_dir, offline_dataset, init)
        self.dir, self.fleet_root = self.plan.dir, self.plan.fleet_root
        self.learner_dir = self.plan.learner_dir
        self.registry = self.plan.registry
        self.dp_cfg = self.plan.dataplane
        self.control_hz = control_hz
        self.stopping = False
        self.children: list = [self.make_child(c) for c in self.plan.components]

    # ---- for subclasses -------------------------------------------------------------------------
    def make_child(self, component: Component) -> Handle:
        raise NotImplementedError

    def supervise(self) -> None:
        """Refresh children: restart crashed ones (if the launcher restarts), mark finished ones."""
        raise NotImplementedError

    # ---- progress -------------------------------------------------------------------------------
    def child(self, name: str):
        return next(c for c in self.children if c.name == name)

    @property
    def robot_children(self) -> list:
        return [c for c in self.children if c.name.startswith("client-")]

    def robots_gave_up(self) -> bool:
        """True when every robot client has ended before the run's stop (each gave up after too many
        restarts): no robot is left to collect, so waiting for the budget would only burn wall-clock."""
        robots = self.robot_children
        return bool(robots) and not self.stopping and all(c.finished and not c.alive for c in robots)

    def robot_status(self) -> dict[str, dict]:
        """robot id -> status (task, version, episodes, steps, ...) from the robot status files."""
        out: dict[str, dict] = {}
        for p in sorted((self.dir / "robots").glob("client-*.json")):
            try:
                out.update(read_json(p).get("robots", {}))
            except (OSError, ValueError):
                continue  # being replaced right now
        return out

    def learner_status(self) -> dict:
        try:
            return read_json(self.learner_dir / "status.json")
        except (OSError, ValueError):
            return {}

    def per_version(self) -> dict:
        """The learner's per-version outcomes (``versions.json``), ``{}`` before its first record."""
        try:
            return read_json(self.learner_dir / "versions.json")
        except (OSError, ValueError):
            return {}

    def robot_hours(self, robots: dict[str, dict] | None = None) -> float:
        robots = self.robot_status() if robots is None else robots
        return sum(r.get("steps", 0) for r in robots.values()) / self.control_hz / 3600.0

    def budget_reason(self, started: float) -> str | None:
        b = self.cfg.budget
        if b.robot_hours is not None and self.robot_hours() >= b.robot_hours:
            return "robot-hours"
        lst = self.learner_status()
        if b.max_learner_steps is not None and lst.get("step", 0) >= b.max_learner_steps:
            return "learner-steps"
        if self.child("learner").finished:
            return "learner finished"
        if self.robots_gave_up():
            log.error("every robot client gave up (see their logs under %s); stopping the run", self.dir / "logs")
            return ROBOTS_GAVE_UP
        if b.max_wall_s is not None and time.monotonic() - started >= b.max_wall_s:
            return "wall-clock"
        return None

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        for c in self.children:
            c.start()

    def drain(self, timeout_s: float) -> None:
        """Wait until the coordinator has consumed every event (or ``timeout_s``)."""
        dp = open_dataplane(self.dp_cfg)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline and self.child("coordinator").alive:
                if dp.events.backlog("coordinator") == 0:
                    return
                time.sleep(0.2)
        finally:
            dp.close()

    def stop(self) -> None:
        """Robots first (flush outboxes), drain the event log, then the learner, then the coordinator."""
        self.stopping = True
        t = self.cfg.stop_timeout_s
        for c in self.robot_children:
            c.request_stop()
        for c in self.robot_children:
            c.wait(t)
        self.drain(t)
        time.sleep(1.0)  # let the learner's reader pick up the last snapshot
        for name in ("learner", "coordinator"):
            self.child(name).request_stop()
            self.child(name).wait(t)
        self.supervise()

    def run(self, display: bool | None = None) -> str:
        """Start (or resume) the fleet and supervise it until the budget or a signal; returns why it stopped."""
        from lwd.fleet.launch.display import FleetDisplay

        stop_reason: list[str] = []

        def on_signal(signum, frame):
            stop_reason.append(signal.Signals(signum).name)

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        started = time.monotonic()
        shown = FleetDisplay(self, live=sys.stdout.isatty() if display is None else display)
        try:
            self.start()
            with shown:
                while not stop_reason:
                    time.sleep(0.2)
                    self.supervise()
                    reason = self.budget_reason(started)
                    if reason:
                        stop_reason.append(reason)
                    shown.refresh(started)
                    if all(c.finished for c in self.children):
                        stop_reason.append("all children exited")
        finally:
            try:
                self.stop()
            finally:
                for s, h in old.items():
                    signal.signal(s, h)
        return stop_reason[0]
