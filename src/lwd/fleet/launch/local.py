"""Local launcher: coordinator, learner and K robot-client processes as subprocesses of this one.

Children are started as ``python -m lwd.fleet.<module>`` with the JSON configs of the
:class:`~lwd.fleet.launch.plan.FleetPlan` (no pickle) and talk only through the data plane and the
policy registry, so they may start in any order. The launcher restarts a child that dies with a
non-zero status, at most ``max_restarts`` times within any ``restart_window_s`` seconds and with
backoff between them (:class:`~lwd.fleet.launch.supervisor.RestartBudget`); budget, stop order and
display are the shared :class:`~lwd.fleet.launch.supervisor.FleetSupervisor` ones (SIGTERM asks a
child to stop).

Everything durable lives under ``<online_dir>``, so launching again resumes: the learner from its
checkpoint, the registry and coordinator from their databases, robots from their outboxes and
episode counters (``<outbox>/<robot>/episode_counter.json``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lwd.fleet.launch.plan import Component
from lwd.fleet.launch.supervisor import FleetSupervisor, RestartBudget

log = logging.getLogger(__name__)


@dataclass
class Child:
    """One supervised subprocess."""

    name: str
    module: str
    args: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None
    restarts: int = 0
    finished: bool = False
    """Exited with status 0 (done) or gave up after too many restarts."""
    history: list[int] = field(default_factory=list)
    """Exit statuses seen so far."""
    budget: RestartBudget | None = None
    """Restarts left in the current window (set by the launcher from its config)."""
    restart_at: float | None = None
    """``time.monotonic()`` at which a crashed child is due to restart (``None``: none scheduled)."""

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
        )  # fmt: skip
        out.close()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def request_stop(self) -> None:
        self.signal(signal.SIGTERM)

    def wait(self, timeout_s: float) -> None:
        """Wait for exit; SIGKILL after ``timeout_s``."""
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0fs; killing it", self.name, timeout_s)
            self.proc.kill()
            self.proc.wait()


class LocalFleet(FleetSupervisor):
    """Supervises one local fleet run: every component a subprocess of this one."""

    def make_child(self, component: Component) -> Child:
        return Child(component.name, component.module, component.argv(), component.log_path)

    def supervise(self) -> None:
        """Restart children that crashed (within each one's :class:`RestartBudget`, after its backoff
        delay), note the ones that finished."""
        now = time.monotonic()
        for c in self.children:
            if c.finished or c.alive or c.proc is None:
                continue
            if c.restart_at is not None:  # crashed earlier, restart scheduled
                if self.stopping:
                    c.finished, c.restart_at = True, None
                elif now >= c.restart_at:
                    c.restart_at = None
                    c.start()
                continue
            code = c.proc.returncode
            c.history.append(code)
            if code == 0 or self.stopping:
                c.finished = True
                continue
            if c.budget is None:
                c.budget = RestartBudget.from_config(self.cfg)
            delay = c.budget.next_delay(now)
            if delay is None:
                log.error("%s exited with status %s; giving up: %d restarts within %.0fs", c.name, code,
                          c.budget.max_restarts, c.budget.window_s)  # fmt: skip
                c.finished = True
                continue
            c.restarts += 1
            log.warning("%s exited with status %s; restart %d in %.1fs (%d/%d within %.0fs)", c.name, code,
                        c.restarts, delay, c.budget.recent(now), c.budget.max_restarts,
                        c.budget.window_s)  # fmt: skip
            c.restart_at = now + delay
            if delay == 0:
                c.restart_at = None
                c.start()
