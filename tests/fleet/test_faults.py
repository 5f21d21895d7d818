"""Fault injection with real processes: SIGKILL robots, the coordinator and readers; restart redis.

Invariants checked after recovery:
  * every finished episode (``Outbox.put`` returned) is in exactly one committed snapshot;
  * nothing is committed twice, nothing outside the produced set is committed;
  * snapshot numbers are contiguous and never went backwards while we watched;
  * every non-hidden payload object hashes to the checksum in its name (no corrupt file is valid).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from fault_child import episode_id

from lwd.fleet.dataplane import open_dataplane
from lwd.fleet.dataplane.snapshots import latest_number, read_manifest, snapshot_entries
from lwd.fleet.dataplane.store import EpisodeStore
from lwd.fleet.learner.reader import SnapshotReader
from lwd.utils.io import sha256_file

CHILD = str(Path(__file__).parent / "fault_child.py")


class Proc:
    """A child process whose stdout lines are collected by a thread."""

    def __init__(self, *args: str):
        self.p = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._pump, daemon=True)
        self._t.start()

    def _pump(self) -> None:
        for line in self.p.stdout:
            self.lines.append(line.strip())

    def wait_lines(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.lines) < n:
            assert self.p.poll() is None or len(self.lines) >= n, f"child exited early: {self.lines[-3:]}"
            assert time.monotonic() < deadline, f"timeout waiting for {n} lines (got {len(self.lines)})"
            time.sleep(0.01)

    def wait_done(self, timeout: float = 90) -> None:
        self.p.wait(timeout=timeout)
        self._t.join(timeout=5)
        assert "DONE" in self.lines, f"child did not finish: rc={self.p.returncode} {self.lines[-3:]}"

    def kill(self) -> None:
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()
        self._t.join(timeout=5)


def coordinator(root: Path, events: str | None = None, idle_exit_s: float | None = None,
                leader_lease_s: float = 10.0) -> Proc:  # fmt: skip
    args = ["-m", "lwd.fleet.coordinator", "--root", str(root), "--lease-s", "0.5", "--batch", "4",
            "--leader-lease-s", str(leader_lease_s)]  # fmt: skip
    if events:
        args += ["--events", events]
    if idle_exit_s is not None:
        args += ["--idle-exit-s", str(idle_exit_s)]
    return Proc(*args)


class LatestWatcher:
    """Polls snapshots/LATEST in the background to check it never goes backwards."""

    def __init__(self, store: EpisodeStore):
        self.store, self.seen, self._stop = store, [], threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.seen.append(latest_number(self.store))
            time.sleep(0.02)

    def stop(self) -> list[int]:
        self._stop.set()
        self._t.join()
        return self.seen


def committed_ids(store: EpisodeStore) -> list[str]:
    """Every id in every published snapshot, checking contiguous numbering and supersets."""
    latest = latest_number(store)
    ids: list[str] = []
    for n in range(1, latest + 1):
        m = read_manifest(store, n)
        assert m["number"] == n and m["parent"] == n - 1
        ids += [e["episode_id"] for e in m["added"]]
        assert m["total"] == len(ids)
    assert store.list_keys("snapshots") == sorted([f"snapshots/{n:08d}.json" for n in range(1, latest + 1)] +
                                                  ["snapshots/LATEST"])  # fmt: skip
    return ids


def assert_no_corrupt_objects(store_dir: Path) -> int:
    n = 0
    for f in (store_dir / "episodes").rglob("*.parquet"):
        if not f.name.startswith("."):
            assert sha256_file(f) == f.stem.split(".")[-1], f"corrupt object readable under a valid name: {f}"
            n += 1
    return n


def check(root: Path, finished: set[str], universe: set[str]) -> list[str]:
    dp = open_dataplane(root)
    ids = committed_ids(dp.store)
    assert len(ids) == len(set(ids)), "an episode was committed twice"
    assert finished <= set(ids), f"lost finished episodes: {sorted(finished - set(ids))[:3]}"
    assert set(ids) <= universe
    assert assert_no_corrupt_objects(root / "store") >= len(finished)
    got = {e.episode_id for e in SnapshotReader(dp).read_snapshot(latest_number(dp.store))}
    assert got == set(ids)  # every committed payload is readable and verifies
    dp.close()
    return ids


def finished_ids(*procs: Proc) -> set[str]:
    return {line for p in procs for line in p.lines if len(line) == 32}


def test_sigkill_robot_mid_upload_and_coordinator_mid_commit(tmp_path):
    rng = random.Random(1234)
    root, outbox = tmp_path / "fleet", tmp_path / "outbox"
    open_dataplane(root).close()
    n = 40
    robot = Proc(CHILD, "robot", str(root), str(outbox), str(n), "7")
    coord = coordinator(root)
    watcher = LatestWatcher(EpisodeStore(str(root / "store")))
    robot.wait_lines(12)
    time.sleep(rng.uniform(0.0, 0.05))
    robot.kill()  # mid-upload: its background thread is uploading/announcing
    for _ in range(3):  # the coordinator is committing small batches continuously
        time.sleep(rng.uniform(0.2, 0.8))
        coord.kill()
        coord = coordinator(root)
    robot2 = Proc(CHILD, "drain", str(root), str(outbox))  # the robot restarts
    robot2.wait_done()
    coord.kill()
    final = coordinator(root, idle_exit_s=2.0)
    final.p.wait(timeout=90)
    seen = watcher.stop()
    assert seen == sorted(seen), "snapshot number went backwards"
    finished = finished_ids(robot)
    universe = {episode_id(7, i) for i in range(n)}
    ids = check(root, finished, universe)
    assert len(ids) >= 12


def test_redis_restart_loses_nothing(tmp_path, redis_server, redis_url):
    root, outbox = tmp_path / "fleet", tmp_path / "outbox"
    open_dataplane(root).close()
    n = 30
    robot = Proc(CHILD, "robot", str(root), str(outbox), str(n), "9", redis_url)
    coord = coordinator(root, events=redis_url)
    robot.wait_lines(8)
    redis_server.kill()  # SIGKILL the broker mid-stream
    time.sleep(0.7)
    redis_server.start()  # same port, AOF replayed
    robot.wait_done()
    robot2 = Proc(CHILD, "drain", str(root), str(outbox), redis_url)
    robot2.wait_done()
    coord.kill()
    final = coordinator(root, events=redis_url, idle_exit_s=2.0)
    final.p.wait(timeout=90)
    finished = finished_ids(robot)
    assert len(finished) == n
    ids = check(root, finished, finished)
    assert sorted(ids) == sorted(finished)


def test_sigkill_reader_mid_prefetch_leaves_store_intact(tmp_path):
    from fleet_support import make_episode

    from lwd.fleet.coordinator.service import Coordinator

    root = tmp_path / "fleet"
    dp = open_dataplane(root)
    eps = [make_episode(seed=i) for i in range(20)]
    for ep in eps:
        dp.publish(ep)
    coord = Coordinator(dp, str(root / "coordinator.db"))
    assert coord.step().snapshot == 1
    before = {p: p.read_bytes() for p in (root / "store").rglob("*") if p.is_file()}
    reader = Proc(CHILD, "reader", str(root), "1")
    reader.wait_lines(3)
    reader.kill()
    after = {p: p.read_bytes() for p in (root / "store").rglob("*") if p.is_file()}
    assert before == after  # read-only: nothing created, changed or removed
    again = Proc(CHILD, "reader", str(root), "1")
    again.wait_done()
    assert sorted(again.lines[:-1]) == sorted(e.episode_id for e in eps)
    coord.close()


LEADER_LEASE_S = 5.0  # long enough that a leader stalled by a loaded machine keeps its lease


def lease_holder_pid(root: Path) -> int | None:
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{root / 'coordinator.db'}?mode=ro", uri=True, timeout=10)
        row = con.execute("SELECT owner, expires_at FROM leader").fetchone()
        con.close()
    except sqlite3.OperationalError:  # database or table not created yet
        return None
    return int(row[0].split(":")[1]) if row and row[1] > time.time() else None


def wait_until(cond, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (got := cond()):
        assert time.monotonic() < deadline, f"timeout waiting for {what}"
        time.sleep(0.05)
    return got


def test_standby_coordinator_takes_over_after_leader_sigkill(tmp_path):
    """Two real coordinator processes on one coordinator.db: only the lease holder commits; SIGKILL it
    and the standby takes over; every finished episode ends up in exactly one snapshot."""
    root, outbox = tmp_path / "fleet", tmp_path / "outbox"
    open_dataplane(root).close()
    first = coordinator(root, leader_lease_s=LEADER_LEASE_S)
    wait_until(lambda: lease_holder_pid(root) == first.p.pid, what="the first coordinator to lead")
    second = coordinator(root, leader_lease_s=LEADER_LEASE_S)
    watcher = LatestWatcher(EpisodeStore(str(root / "store")))
    robot = Proc(CHILD, "robot", str(root), str(outbox), "40", "11")
    robot.wait_lines(15)
    holders = set()
    for _ in range(10):  # while the leader lives, the standby only waits
        holders.add(lease_holder_pid(root))
        time.sleep(0.05)
    assert holders == {first.p.pid}
    assert latest_number(EpisodeStore(str(root / "store"))) >= 1  # the leader is committing
    first.kill()
    robot.wait_done()
    wait_until(lambda: lease_holder_pid(root) == second.p.pid, what="the standby to take over")
    finished = finished_ids(robot)
    assert len(finished) == 40

    def all_committed() -> bool:  # while the leader runs (manifests may be ahead of LATEST)
        store = EpisodeStore(str(root / "store"))
        return finished <= {e.episode_id for e in snapshot_entries(store, latest_number(store))}

    wait_until(all_committed, what="every finished episode committed by the new leader")
    second.kill()  # possibly mid-publish: a third coordinator takes over once its lease expires
    final = coordinator(root, idle_exit_s=2.0, leader_lease_s=LEADER_LEASE_S)
    final.p.wait(timeout=90)
    seen = watcher.stop()
    assert seen == sorted(seen), "snapshot number went backwards"
    ids = check(root, finished, finished)
    assert sorted(ids) == sorted(finished)
