"""Issue 13 faults with real processes: a broker down while a robot starts, a child crashing again and
again under the launcher, a robot client SIGKILLed mid-episode, an unreadable item in an outbox.

Invariants: a robot started while Redis is down waits for it (one warning per outage) and then
delivers; the launcher's restart budget is per time window; no (robot, seed) pair is ever used twice
across SIGKILLs and the robot time of a killed episode is counted; an unreadable outbox item is
moved aside with a reason and never blocks later episodes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from fleet_support import make_episode

from lwd.configs.online import OnlineConfig
from lwd.fleet.coordinator.service import Coordinator
from lwd.fleet.coordinator.validation import ValidationRules
from lwd.fleet.dataplane import open_dataplane
from lwd.fleet.dataplane.backoff import Backoff
from lwd.fleet.dataplane.snapshots import latest_number
from lwd.fleet.launch.local import Child, LocalFleet
from lwd.fleet.launch.supervisor import RestartBudget
from lwd.fleet.learner.reader import SnapshotReader
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.fleet.registry.versions import policy_files
from lwd.fleet.robot.client import task_weights_for
from lwd.fleet.robot.outbox import Outbox
from lwd.utils.io import atomic_write_json, read_json

HERE = Path(__file__).parent


def wait_until(cond, timeout: float, what: str, poll: float = 0.01):
    deadline = time.monotonic() + timeout
    while not (got := cond()):
        assert time.monotonic() < deadline, f"timeout waiting for {what}"
        time.sleep(poll)
    return got


def client_config(tmp_path: Path, registry: Path, dataplane, **extra) -> Path:
    """A one-robot client (stub arm logging every reset with its seed) on the robot's own disk."""
    disk = tmp_path / "robot-computer"
    config = {
        "client_id": "arm-1", "dataplane": dataplane, "registry": str(registry), "suite": "fake4",
        "robot_factory": "real_robot_stub:make_arm", "robot_options": {"log": str(disk / "arm.log")},
        "intervener_factory": "real_robot_stub:make_pedal",
        "robot_ids": ["arm-1"], "robot_indices": [0], "task_weights": task_weights_for("fake4"),
        "outbox_root": str(disk / "outbox"), "status_path": str(disk / "status.json"),
        "cache_dir": str(disk / "policies"), "heartbeat_s": 0.5, "flush_timeout_s": 20.0, **extra,
    }  # fmt: skip
    atomic_write_json(disk / "client.json", config)
    return disk / "client.json"


def start_client(config: Path, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "lwd.fleet.robot", "--config", str(config)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def published_registry(tmp_path: Path, policy: Path, index: str | None = None) -> Path:
    registry = tmp_path / "shared" / "registry"
    reg = PolicyRegistry(registry, index=index)
    reg.set_default(reg.publish(policy_files(policy)))
    return registry


def resets(disk: Path) -> list[tuple[str, int]]:
    path = disk / "arm.log"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [(line.split()[0], int(line.split()[3])) for line in lines]


# ---- defect 3: broker outages --------------------------------------------------------------------
def test_backoff_is_bounded_jittered_and_warns_once_per_outage(caplog):
    b = Backoff("broker", base_s=0.1, max_s=1.0, logger=logging.getLogger("lwd.test.backoff"))
    with caplog.at_level(logging.DEBUG, logger="lwd.test.backoff"):
        delays = [b.failed(ConnectionError("refused")) for _ in range(12)]
        b.succeeded()
        b.failed(TimeoutError("slow"))
        b.succeeded()
    assert all(0.05 <= d <= 1.0 for d in delays) and max(delays[6:]) <= 1.0 and delays[0] <= 0.1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and b.outages == 2  # one per outage, not one per retry
    assert sum("is back after" in r.getMessage() for r in caplog.records) == 2


def test_robot_started_while_redis_is_down_waits_and_delivers(tmp_path, redis_server, redis_url,
                                                               fake4_sft_policy):  # fmt: skip
    """The task claim (and the Redis registry index) is unreachable when the robot starts: the client
    waits with backoff, logs one warning for the outage, and delivers once Redis is back."""
    registry = published_registry(tmp_path, fake4_sft_policy, index=redis_url)
    store = tmp_path / "shared" / "store"
    dataplane = {"events": redis_url, "store": str(store), "lease_s": 5.0}
    config = client_config(tmp_path, registry, dataplane, registry_index=redis_url, max_episodes=2)
    log_path = tmp_path / "client.log"
    redis_server.kill()
    proc = start_client(config, log_path)
    try:
        wait_until(lambda: proc.poll() is not None or "unavailable" in log_path.read_text(), 90,
                   "the client to reach the broker", poll=0.05)  # fmt: skip
        assert proc.poll() is None, f"the robot client died with Redis down:\n{log_path.read_text()[-2000:]}"
        time.sleep(2.0)  # several retries within one outage
    finally:
        redis_server.start()  # same port, AOF replayed
    assert proc.wait(timeout=120) == 0, log_path.read_text()[-3000:]
    text = log_path.read_text()
    assert text.count("unavailable") == 1, text  # one warning for the whole outage
    assert read_json(tmp_path / "robot-computer" / "status.json")["robots"]["arm-1"]["episodes"] == 2
    dp = open_dataplane(dataplane)
    coord = Coordinator(dp, str(tmp_path / "head" / "coordinator.db"),
                        ValidationRules(known_tasks=frozenset(task_weights_for("fake4"))))  # fmt: skip
    assert coord.step(block_s=1.0).committed == 2
    coord.close()
    dp.close()


def test_restart_budget_is_per_time_window(tmp_path, monkeypatch):
    """A real child SIGKILLed again and again: crashes spread out over more than the window are
    restarted forever; a burst of more than ``max_restarts`` crashes within the window is given up."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    window = 1.5
    cfg = OnlineConfig(
        max_restarts=2, restart_window_s=window, restart_backoff_s=0.3, restart_backoff_max_s=0.3
    )
    fleet = LocalFleet.__new__(LocalFleet)  # only the supervision part: no plan, no fleet
    fleet.cfg, fleet.stopping = cfg, False
    child = Child("client-0", "outage_child", [], tmp_path / "child.log")
    fleet.children = [child]

    def crash_and_wait(expect_restarts: int) -> float:
        pid = child.proc.pid
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        wait_until(lambda: (fleet.supervise() or child.finished or (child.alive and child.proc.pid != pid)),
                   20, "the child to be restarted or given up")  # fmt: skip
        assert child.restarts == expect_restarts
        return time.monotonic() - t0

    child.start()
    try:
        assert not fleet.robots_gave_up()
        for i in range(4):  # one crash per window: always restarted, at once (old: gave up at the 3rd)
            assert crash_and_wait(i + 1) < 0.3 + 1.0 and not child.finished
            time.sleep(window + 0.1)
        assert crash_and_wait(5) < 1.0  # a burst: 1st restart in the window immediate ...
        assert crash_and_wait(6) >= 0.3 * 0.5  # ... the 2nd after its backoff ...
        crash_and_wait(6)  # ... the 3rd within the window exceeds the budget
        assert child.finished and not child.alive
        assert child.history == [-signal.SIGKILL] * 7
        assert fleet.robots_gave_up()  # the only robot client gave up: the run stops, not at max_wall_s
    finally:
        if child.alive:
            child.proc.kill()
            child.proc.wait()


def test_restart_budget_window_and_backoff():
    b = RestartBudget(max_restarts=3, window_s=10.0, backoff_s=1.0, max_backoff_s=1.5)
    assert [b.next_delay(t) for t in (0.0, 1.0, 2.0)] == [0.0, 1.0, 1.5]
    assert b.next_delay(3.0) is None  # 4th within 10 s
    assert b.next_delay(10.5) == 1.5  # the first one left the window: 2 in it, so the 3rd's delay
    assert b.recent(100.0) == 0 and b.next_delay(100.0) == 0.0


# ---- defect 4: episode counter durable across SIGKILL --------------------------------------------
def test_sigkilled_robot_never_reuses_a_seed_and_counts_robot_time(tmp_path, fake4_sft_policy):
    """SIGKILL the client right after an episode started (its reset is logged): the restarted client
    must not run that episode index (seed) again; every committed (robot, seed) pair is unique; the
    robot time of the killed episode is counted; an unreadable outbox item is quarantined, reported."""
    registry = published_registry(tmp_path, fake4_sft_policy)
    fleet = tmp_path / "fleet"
    open_dataplane(fleet).close()
    disk = tmp_path / "robot-computer"
    config = client_config(tmp_path, registry, str(fleet), fleet_root=str(fleet), max_episodes=4,
                           robot_factory="outage_child:make_slow_arm",
                           robot_options={"log": str(disk / "arm.log"), "chunk_s": 0.02})  # fmt: skip
    proc = start_client(config, tmp_path / "client-1.log")
    try:
        wait_until(lambda: len(resets(disk)) >= 2 or proc.poll() is not None, 120, "the 2nd episode")
    finally:  # mid-episode: its first chunk alone takes 20 ms
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(resets(disk)) == 2, "the kill should land in the 2nd episode"
    # an unreadable item waits in the outbox, oldest of all (defect 5, seen through the robot status)
    garbage = disk / "outbox" / "arm-1" / "pending" / f"{1:020d}-{'f' * 32}.parquet"
    garbage.write_bytes(b"not a parquet file")
    proc = start_client(config, tmp_path / "client-2.log")
    assert proc.wait(timeout=180) == 0, (tmp_path / "client-2.log").read_text()[-3000:]

    seeds = [s for _, s in resets(disk)]
    assert len(seeds) == 5 and len(set(seeds)) == 5, f"a seed was used twice: {seeds}"
    status = read_json(disk / "status.json")["robots"]["arm-1"]
    assert status["episodes"] == 4 and status["killed_episodes"] == 1
    assert status["quarantined"] == 1 and status["pending"] == 0
    assert (disk / "outbox" / "arm-1" / "quarantine" / f"{garbage.name}.reason.json").is_file()

    dp = open_dataplane(fleet)
    coord = Coordinator(dp, str(fleet / "coordinator.db"), ValidationRules())
    assert coord.step(block_s=1.0).committed == 4
    eps = list(SnapshotReader(dp).read_snapshot(latest_number(dp.store)))
    pairs = Counter((e.robot_id, e.seed) for e in eps)
    assert len(eps) == 4 and max(pairs.values()) == 1
    assert seeds[1] not in {e.seed for e in eps}  # the killed episode's seed was never run again
    assert status["steps"] >= sum(e.length for e in eps)  # killed partial time included
    coord.close()
    dp.close()


# ---- defect 5: an unreadable outbox item ---------------------------------------------------------
@pytest.mark.parametrize(
    "name,payload",
    [
        (f"{1:020d}-{'a' * 32}.parquet", b"garbage"),  # not parquet at all
        ("junk.parquet", None),  # a good payload under a name that is not <ns>-<id>.parquet
        (f"{2:020d}-{'b' * 32}.parquet", "truncated"),  # a torn copy of a good payload
    ],
)
def test_unreadable_outbox_item_is_quarantined_and_later_items_are_sent(tmp_path, caplog, name, payload):
    from lwd.data.episode_io import episode_to_bytes

    dp = open_dataplane(tmp_path / "fleet")
    good = episode_to_bytes(make_episode("c" * 32))
    box = Outbox(tmp_path / "outbox", dp, base_backoff_s=0.01, max_backoff_s=0.05, start=False)
    bad = box.pending_dir / name
    bad.write_bytes(
        good if payload is None else good[: len(good) // 2] if payload == "truncated" else payload
    )
    ids = [box.put(make_episode(seed=i)) for i in range(3)]
    box.start()
    with caplog.at_level(logging.WARNING, logger="lwd.fleet.robot.outbox"):
        assert box.flush(timeout=20), f"the outbox is stuck behind {name}: {box.last_error}"
    assert box.quarantined == 1 and box.pending_ids() == []
    assert (box.quarantine_dir / name).read_bytes()[:4] == (good[:4] if payload != b"garbage" else b"garb")
    reason = read_json(box.quarantine_dir / f"{name}.reason.json")
    assert reason["file"] == name and reason["reason"] and reason["bytes"] > 0
    assert sum("quarantined" in r.getMessage() for r in caplog.records) == 1
    box.close()
    again = Outbox(tmp_path / "outbox", dp, start=False)
    assert again.quarantined == 1  # the count survives a restart
    again.close()
    coord = Coordinator(dp, str(tmp_path / "coordinator.db"), ValidationRules())
    assert coord.step(block_s=1.0).committed == 3
    assert sorted(coord.state.conn.execute("SELECT episode_id FROM episodes").fetchall()) == sorted(
        (i,) for i in ids
    )
    coord.close()
    dp.close()


def test_a_fleet_whose_robots_all_give_up_stops_with_an_error(tmp_path, monkeypatch, fake4_dataset, fake4_sft_policy):
    """Every robot client crashes at start (its suite's robot factory raises): once each has spent its
    restart budget the run stops with one error at once, not at ``max_wall_s``, and writes no summary."""
    import dataclasses
    import json

    from lwd.configs.presets import ONLINE
    from lwd.pipeline.online import run_online
    from lwd.utils.errors import LwdError

    (tmp_path / "crashing_robot.py").write_text("def robot(**kw):\n    raise RuntimeError('robot on fire')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"name": "burning", "robot_factory": "crashing_robot:robot", "tasks": [
        {"id": "reach-red", "kind": "short", "max_steps": 20, "instructions": ["fetch the tomato"]}]}))  # fmt: skip
    base = ONLINE["debug"]
    cfg = dataclasses.replace(base, suite=str(suite), num_robots=2, robot_processes=2, max_restarts=0,
                              restart_backoff_s=0.1, restart_backoff_max_s=0.1,
                              budget=dataclasses.replace(base.budget, max_wall_s=300.0))  # fmt: skip
    t0 = time.monotonic()
    with pytest.raises(LwdError, match="every robot client crashed repeatedly and gave up"):
        run_online(cfg, tmp_path / "run", fake4_dataset, fake4_sft_policy, display=False)
    assert time.monotonic() - t0 < 120.0  # stopped by the give-up, not the 300 s wall-clock budget
    assert not (tmp_path / "run" / "online" / "summary.json").exists()
    logs = "".join(p.read_text() for p in (tmp_path / "run" / "online" / "logs").glob("client-*.log"))
    assert "robot on fire" in logs
