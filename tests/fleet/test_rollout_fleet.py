"""Canary rollout end to end: a coordinator process with ``--rollout``, robots running what the registry
assigns them, a deliberately broken version and a good one; the coordinator is SIGKILLed mid-canary."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from fleet_support import REPO, TASKS, make_episode

from lwd.fleet.dataplane import open_dataplane
from lwd.fleet.dataplane.state import CoordinatorState
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.fleet.rollout.state import RolloutStore

N_ROBOTS = 8
SHARE = 0.25


def _episode(robot: str, task: str, version: int, success: bool, intervened: bool, seed: int):
    ep = make_episode(task_id=task, robot_id=robot, policy_version=version, steps=20, seed=seed)
    rewards = np.zeros(20, np.float32)
    rewards[-1] = float(success)
    taken = np.zeros(20, bool)
    taken[5:10] = intervened
    return dataclasses.replace(ep, success=success, rewards=rewards, intervention=taken)


class Fleet:
    def __init__(self, root: Path):
        self.root = root
        self.reg = PolicyRegistry(root / "registry")
        self.dp = open_dataplane(root)
        self.tasks = {f"robot-{i:03d}": TASKS[i % 2] for i in range(N_ROBOTS)}
        db = CoordinatorState(root / "coordinator.db")
        for r, t in self.tasks.items():
            db.set_task(r, t)
        db.close()
        self.sent = 0
        self.rounds = 0
        self.broken: int | None = None
        self.max_on_broken = 0
        self.proc: subprocess.Popen | None = None
        settings = {"check_every_s": 0.1, "canary_share": SHARE, "shift_window": 0}
        (root / "rollout.json").write_text(json.dumps(settings))

    def start(self) -> None:
        args = [
            "--root",
            str(self.root),
            "--tasks",
            ",".join(TASKS),
            "--rollout",
            str(self.root / "rollout.json"),
        ]
        log = open(self.root / f"coordinator-{time.monotonic_ns()}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "lwd.fleet.coordinator", *args], stdout=log,
                                     stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def state(self) -> dict:
        return RolloutStore(self.root).load()

    def wait_for(self, pred, what: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.state()
            if pred(st):
                return st
            assert self.proc is not None and self.proc.poll() is None, "coordinator died"
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; state: {self.state()}")

    def committed(self) -> int:
        with sqlite3.connect(self.root / "coordinator.db") as c:
            return c.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0]

    def round(self) -> None:
        """Every robot finishes one episode with its assigned version; wait until all are judged."""
        on_broken = sum(self.reg.resolve_version(r) == self.broken for r in self.tasks)
        self.max_on_broken = max(self.max_on_broken, on_broken)
        j = self.rounds
        for k, (rid, task) in enumerate(sorted(self.tasks.items())):
            v = self.reg.resolve_version(rid)
            if v == self.broken:  # garbage actions: never succeeds, the operator always takes over
                ok, took = False, True
            else:
                ok, took = j % 4 != 3, j % 5 == 4
            self.dp.publish(_episode(rid, task, v, ok, took, seed=1000 * j + k))
            self.sent += 1
        self.rounds += 1
        deadline = time.monotonic() + 60
        while self.committed() < self.sent:
            assert time.monotonic() < deadline, "coordinator did not commit the round"
            time.sleep(0.05)
        t = time.time()
        self.wait_for(lambda st: st["canary"] is None or st["updated_at"] > t, "a rollout decision")


def test_broken_version_stays_on_the_canary_share_and_is_rolled_back_good_one_promoted(tmp_path):
    f = Fleet(tmp_path / "fleet")
    f.reg.set_default(f.reg.publish({"w": b"v1"}))
    f.start()
    try:
        for _ in range(2):
            f.round()  # incumbent history
        f.broken = f.reg.publish({"w": b"garbage"})
        st = f.wait_for(lambda st: st["canary"] is not None, "the canary of the broken version")
        assert st["canary"]["version"] == f.broken and len(st["canary"]["robots"]) == int(SHARE * N_ROBOTS)
        while f.state()["canary"] is not None and f.rounds < 20:
            f.round()
        st = f.state()
        assert st["rejected"] == [f.broken] and st["incumbent"] == 1
        assert 0 < f.max_on_broken <= int(SHARE * N_ROBOTS)
        assert all(f.reg.resolve_version(r) == 1 for r in f.tasks)
        rb = [a for a in RolloutStore(f.root).audit() if a["action"] == "rollback"]
        assert len(rb) == 1 and rb[0]["version"] == f.broken and rb[0]["actor"] == "auto"
        assert rb[0]["reason"].startswith("harm detected") and rb[0]["stats"]["canary"]["success_rate"] == 0.0

        good = f.reg.publish({"w": b"v3"})
        st = f.wait_for(lambda st: st["canary"] is not None, "the canary of the good version")
        canary = st["canary"]
        assert canary["version"] == good
        f.round()
        f.kill()  # SIGKILL mid-canary: the restarted coordinator resumes the same canary
        f.start()
        st = f.state()
        assert (st["canary"]["version"], st["canary"]["robots"], st["canary"]["started_at"]) == (
            good, canary["robots"], canary["started_at"])  # fmt: skip
        while f.state()["canary"] is not None and f.rounds < 40:
            f.round()
        st = f.state()
        assert st["incumbent"] == good and good in st["promoted"] and st["rejected"] == [f.broken]
        assert f.reg.assignments() == {"*": good}
        actions = [(a["action"], a["version"]) for a in RolloutStore(f.root).audit()]
        assert actions == [("canary", f.broken), ("rollback", f.broken), ("canary", good), ("promote", good)]
        with sqlite3.connect(f.root / "coordinator.db") as c:
            robots = {r for (r,) in c.execute("SELECT DISTINCT robot_id FROM outcomes WHERE policy_version = ?",
                                              (f.broken,))}  # fmt: skip
        assert 0 < len(robots) <= int(SHARE * N_ROBOTS)
    finally:
        if f.proc is not None and f.proc.poll() is None:
            f.kill()
        f.dp.close()
