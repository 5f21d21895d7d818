"""Local launcher: coordinator, learner and K robot-client processes as subprocesses of this one.

Children are started as ``python -m lwd.fleet.<module>`` with the JSON configs of the
:class:`~lwd.fleet.launch.plan.FleetPlan` (no pickle) and talk only through the data plane and the
policy registry, so they may start in any order. The launcher restarts a child that dies with a
non-zero status (at most ``max_restarts`` times each); budget, stop order and display are the
shared :class:`~lwd.fleet.launch.supervisor.FleetSupervisor` ones (SIGTERM asks a child to stop).

Everything durable lives under ``<online_dir>``, so launching again resumes: the learner from its
checkpoint, the registry and coordinator from their databases, robots from their outboxes and
status files (episode counters).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lwd.fleet.launch.plan import Component
from lwd.fleet.launch.supervisor import FleetSupervisor

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
        """Restart children that crashed (bounded), note the ones that finished."""
        for c in self.children:
            if c.finished or c.alive or c.proc is None:
                continue
            code = c.proc.returncode
            c.history.append(code)
            if code == 0 or self.stopping:
                c.finished = True
            elif c.restarts < self.cfg.max_restarts:
                c.restarts += 1
                log.warning(
                    "%s exited with status %s; restart %d/%d", c.name, code, c.restarts, self.cfg.max_restarts
                )
                c.start()
            else:
                log.error("%s exited with status %s; giving up after %d restarts", c.name, code, c.restarts)
                c.finished = True
