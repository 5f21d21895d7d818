"""The online stage on Ray: a local Ray cluster (started and stopped here, loopback only, no
dashboard, no usage stats, nothing downloaded) runs the debug preset's fake4 fleet as actors on the
Redis Streams data plane; one robot-client actor is SIGKILLed mid-run, Ray restarts it, and no
finished episode is lost or duplicated."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections import Counter

import pytest
from online_support import committed_ids, manifests, outbox_pending, snapshot_membership

from lwd.configs.online import Budget
from lwd.configs.presets import ONLINE
from lwd.fleet.registry import PolicyRegistry
from lwd.fleet.snapshots import entries_of
from lwd.pipeline import online as online_stage
from lwd.utils.errors import ConfigError

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'lwd[scale]')")


@pytest.fixture(scope="module")
def ray_cluster():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=80 * 1024 * 1024,
        log_to_driver=False,
        configure_logging=False,
    )
    yield
    ray.shutdown()


def ray_config(redis_url: str, **kw):
    """The debug preset's online stage (fake4, 4 robots in 2 clients) on Ray + Redis."""
    base = ONLINE["debug"]
    return dataclasses.replace(
        base, engine="ray", dataplane=redis_url, heartbeat_s=1.0, stop_timeout_s=30.0,
        budget=Budget(max_learner_steps=20, max_wall_s=150.0),
        rollout=dataclasses.replace(base.rollout, enabled=False),  # every version fleet-wide at once
        **kw,
    )  # fmt: skip


class RobotKiller(threading.Thread):
    """SIGKILLs robot-client actor ``client-0``'s process once it has finished an episode."""

    def __init__(self, fleets: list):
        super().__init__(daemon=True)
        self.fleets = fleets
        self.pid: int | None = None
        self.episodes_at_kill: dict[str, int] = {}
        self.pending_at_kill: set[str] = set()

    def run(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if not self.fleets:
                continue
            fleet = self.fleets[0]
            child = fleet.child("client-0")
            robots = child.last.get("robots", {})
            if robots and sum(r.get("episodes", 0) for r in robots.values()) >= 1:
                self.episodes_at_kill = {rid: r["episodes"] for rid, r in robots.items()}
                self.pending_at_kill = outbox_pending(fleet.dir, set(robots))
                self.pid = child.last["pid"]
                os.kill(self.pid, signal.SIGKILL)
                return


def test_ray_engine_runs_the_online_stage_and_survives_a_robot_kill(
    tmp_path, monkeypatch, ray_cluster, redis_url, fake4_dataset, fake4_sft_policy
):
    fleets: list = []
    make_fleet = online_stage.make_fleet

    def spy(*args, **kw):
        fleets.append(make_fleet(*args, **kw))
        return fleets[-1]

    monkeypatch.setattr(online_stage, "make_fleet", spy)
    killer = RobotKiller(fleets)
    killer.start()
    run_dir = tmp_path / "run"
    online, fleet_root = run_dir / "online", run_dir / "online" / "fleet"
    summary = online_stage.run_online(
        ray_config(redis_url), run_dir, fake4_dataset, fake4_sft_policy, display=False
    )
    killer.join(timeout=1)
    fleet = fleets[0]

    # the stage ran to its budget through Ray, and left the cluster as it found it (no actors)
    assert summary["stop_reason"] in ("learner-steps", "learner finished")
    assert summary["learner_step"] == 20
    assert ray.is_initialized()  # the test's cluster was reused, not shut down by the launcher
    assert all(c.dead for c in fleet.children)

    # the killed robot-client actor was restarted by Ray (new process, reconstructed) and stopped cleanly
    assert killer.pid is not None, "client-0 never finished an episode"
    client0 = fleet.child("client-0")
    assert summary["restarts"]["client-0"] == 1 and client0.last["pid"] != killer.pid
    assert client0.last["reconstructed"] and client0.last["result"] is not None
    assert summary["restarts"]["learner"] == summary["restarts"]["coordinator"] == 0

    # the learner published versions (start policy + one per 10 steps) and robots ran a newer one
    reg = PolicyRegistry(fleet_root / "registry")
    assert summary["versions"] == reg.versions() and len(reg.versions()) >= 3
    assert reg.info(reg.versions()[-1])["learner_step"] == 20
    membership = snapshot_membership(fleet_root)
    assert membership and set(membership.values()) == {1}  # every episode in exactly one snapshot
    assert set(membership) == committed_ids(fleet_root)
    assert max(e.policy_version for m in manifests(fleet_root) for e in entries_of(m)) > reg.versions()[0]

    # no finished episode lost: pending at the kill -> committed; every reported episode arrived
    assert killer.pending_at_kill <= set(membership)
    assert outbox_pending(online) == set()
    per_robot = Counter(e.robot_id for m in manifests(fleet_root) for e in entries_of(m))
    for rid, n in killer.episodes_at_kill.items():
        assert per_robot[rid] >= n, f"{rid}: episodes finished before the kill are missing"
    robots = fleet.robot_status()
    assert len(robots) == 4
    for rid, st in robots.items():
        assert per_robot[rid] >= st["episodes"], f"{rid}: reported episodes missing from snapshots"
    assert summary["episodes"] <= len(membership)
    assert (online / "policy" / "manifest.json").is_file()
    assert "resumes" not in (online / "logs" / "learner.log").read_text()  # the learner was never restarted


def test_ray_engine_refuses_a_data_plane_other_nodes_cannot_reach(tmp_path, ray_cluster):
    from lwd.fleet.launch.ray import RayFleet

    with pytest.raises(ConfigError, match="needs a data plane every node reaches"):
        RayFleet(ray_config(""), tmp_path / "online", tmp_path, tmp_path, 10.0)
    with pytest.raises(ConfigError, match="2 CPUs; 3 robot-client actors"):
        RayFleet(
            ray_config("redis://127.0.0.1:1/0", robot_processes=3),
            tmp_path / "online",
            tmp_path,
            tmp_path,
            10.0,
        )
