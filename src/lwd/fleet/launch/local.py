"""Local launcher: coordinator, learner and K robot-client processes as subprocesses of this one.

Children are started as ``python -m lwd.fleet.<module>`` with JSON configs written under
``<online_dir>/configs`` (no pickle) and talk only through the data plane and the policy registry,
so they may start in any order. The launcher:

* restarts a child that dies with a non-zero status (at most ``max_restarts`` times each);
* stops at the budget (robot-hours, learner steps or wall-clock, whichever first), or on
  SIGINT/SIGTERM, in order: robots (they finish the current episode and flush their outboxes) ->
  wait for the coordinator to drain the event log -> learner (publishes, checkpoints) -> coordinator;
* shows a live ``rich`` table on a TTY, periodic log lines otherwise.

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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lwd.configs.online import OnlineConfig
from lwd.fleet.dataplane import DataPlaneConfig, open_dataplane
from lwd.fleet.robot_client import task_weights_for
from lwd.utils.io import atomic_write_json, read_json

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


class LocalFleet:
    """Supervises one local fleet run (see module docstring)."""

    def __init__(self, cfg: OnlineConfig, online_dir: Path, offline_dataset: Path, init: Path,
                 control_hz: float) -> None:  # fmt: skip
        self.cfg = cfg
        self.dir = Path(online_dir)
        self.fleet_root = self.dir / "fleet"
        self.learner_dir = self.dir / "learner"
        self.registry = cfg.registry or str(self.fleet_root / "registry")
        self.control_hz = control_hz
        self.dp_cfg = self._dataplane_config()
        self.stopping = False
        self.children: list[Child] = []
        self._write_configs(Path(offline_dataset), Path(init))

    # ---- configuration --------------------------------------------------------------------------
    def _dataplane_config(self) -> dict[str, Any]:
        base = DataPlaneConfig.local(self.fleet_root, lease_s=self.cfg.lease_s).to_dict()
        spec = self.cfg.dataplane
        if spec.startswith(("redis://", "rediss://")):
            base["events"] = spec  # remote broker, episode store stays under the run dir
        elif spec:
            base = open_dataplane(spec).config.to_dict()
        return base

    def _write_configs(self, offline_dataset: Path, init: Path) -> None:
        c, conf = self.cfg, self.dir / "configs"
        self.fleet_root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(conf / "dataplane.json", self.dp_cfg)
        atomic_write_json(conf / "online.json", c.to_dict())
        weights = task_weights_for(c.suite, c.tasks, c.short_task_weight, c.long_task_weight)
        learner = {
            "learner_dir": str(self.learner_dir), "init": str(init), "offline_dataset": str(offline_dataset),
            "dataplane": self.dp_cfg, "registry": self.registry, "lease_s": c.lease_s,
            "settings": c.to_dict()["learner"], "max_learner_steps": c.budget.max_learner_steps,
        }  # fmt: skip
        atomic_write_json(conf / "learner.json", learner)
        coord = [
            "--root",
            str(self.fleet_root),
            "--tasks",
            ",".join(sorted(weights)),
            "--lease-s",
            str(c.lease_s),
        ]
        if self.dp_cfg["events"] != DataPlaneConfig.local(self.fleet_root).events:
            coord += ["--events", self.dp_cfg["events"]]
        logs = self.dir / "logs"
        self.children.append(Child("coordinator", "lwd.fleet.coordinator", coord, logs / "coordinator.log"))
        self.children.append(Child("learner", "lwd.fleet.learner", ["--config", str(conf / "learner.json")],
                                   logs / "learner.log"))  # fmt: skip
        k = max(1, min(c.robot_processes, c.num_robots))
        for i in range(k):
            idx = list(range(i, c.num_robots, k))
            client = {
                "client_id": f"client-{i}", "fleet_root": str(self.fleet_root), "dataplane": self.dp_cfg,
                "registry": self.registry, "suite": c.suite, "obs_mode": c.obs_mode, "shift": c.shift,
                "robot_ids": [f"robot-{j:03d}" for j in idx], "robot_indices": idx, "task_weights": weights,
                "intervene": c.intervene, "intervention": c.to_dict()["intervention"],
                "outbox_root": str(self.dir / "outbox"), "status_path": str(self.dir / "robots" / f"client-{i}.json"),
                "heartbeat_s": c.heartbeat_s, "lease_s": c.lease_s, "seed": c.seed, "threads": 1,
                "cache_dir": str(self.dir / "cache" / f"client-{i}"),
            }  # fmt: skip
            atomic_write_json(conf / f"client-{i}.json", client)
            self.children.append(Child(f"client-{i}", "lwd.fleet.robot_client",
                                       ["--config", str(conf / f"client-{i}.json")], logs / f"client-{i}.log"))  # fmt: skip

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    @property
    def robot_children(self) -> list[Child]:
        return [c for c in self.children if c.name.startswith("client-")]

    # ---- progress -------------------------------------------------------------------------------
    def robot_status(self) -> dict[str, dict]:
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
        if b.max_wall_s is not None and time.monotonic() - started >= b.max_wall_s:
            return "wall-clock"
        return None

    # ---- supervision ----------------------------------------------------------------------------
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
            c.signal(signal.SIGTERM)
        for c in self.robot_children:
            c.wait(t)
        self.drain(t)
        time.sleep(1.0)  # let the learner's reader pick up the last snapshot
        for name in ("learner", "coordinator"):
            self.child(name).signal(signal.SIGTERM)
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
            self.stop()
            for s, h in old.items():
                signal.signal(s, h)
        return stop_reason[0]
