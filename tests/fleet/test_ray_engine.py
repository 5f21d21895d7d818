"""The online stage on Ray: a local Ray cluster (started and stopped here, loopback only, no
dashboard, no usage stats, nothing downloaded) runs the debug preset's fake4 fleet as actors on the
Redis Streams data plane; one robot-client actor is SIGKILLed mid-run, Ray restarts it, and no
finished episode is lost or duplicated. Also: the robots' placement group (strategy, bundles) and
the learner's GPU request, which depends on the cluster and the learner's device."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections import Counter

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'lwd[scale]')")

from online_support import committed_ids, manifests, outbox_pending, snapshot_membership  # noqa: E402
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy  # noqa: E402
from ray_support import ray_config, spy_fleets  # noqa: E402

from lwd.configs.online import Budget, LearnerSettings  # noqa: E402
from lwd.configs.presets import ONLINE  # noqa: E402
from lwd.fleet.dataplane.snapshots import entries_of  # noqa: E402
from lwd.fleet.launch import ray_placement  # noqa: E402
from lwd.fleet.registry.registry import PolicyRegistry  # noqa: E402
from lwd.pipeline import online as online_stage  # noqa: E402
from lwd.utils.errors import ConfigError  # noqa: E402
from lwd.utils.io import read_json  # noqa: E402


class Killer(threading.Thread):
    """SIGKILLs the process of actor ``name`` as soon as ``ready(fleet, child)`` returns facts to keep."""

    def __init__(self, fleets: list, name: str, ready):
        super().__init__(daemon=True)
        self.fleets, self.name_, self.ready = fleets, name, ready
        self.pid: int | None = None
        self.facts: dict = {}

    def run(self) -> None:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if not self.fleets:
                continue
            child = self.fleets[0].child(self.name_)
            try:
                facts = self.ready(self.fleets[0], child) if "pid" in child.last else None
            except Exception:  # e.g. a database busy right now: look again
                continue
            if facts:
                self.facts, self.pid = facts, child.last["pid"]
                os.kill(self.pid, signal.SIGKILL)
                return


def after_first_episode(fleet, child) -> dict | None:
    """A robot client that finished an episode: its counters and outbox contents right now."""
    robots = child.last.get("robots", {})
    if robots and sum(r.get("episodes", 0) for r in robots.values()) >= 1:
        return {"episodes": {rid: r["episodes"] for rid, r in robots.items()},
                "pending": outbox_pending(fleet.dir, set(robots))}  # fmt: skip
    return None


def test_ray_engine_runs_the_online_stage_and_survives_a_robot_kill(
    tmp_path, monkeypatch, ray_cluster, redis_url, fake4_dataset, fake4_sft_policy
):
    fleets = spy_fleets(monkeypatch)
    killer = Killer(fleets, "client-0", after_first_episode)
    killer.start()
    run_dir = tmp_path / "run"
    online, fleet_root = run_dir / "online", run_dir / "online" / "fleet"
    summary = online_stage.run_online(
        ray_config(redis_url), run_dir, fake4_dataset, fake4_sft_policy, display=False
    )
    killer.join(timeout=1)
    fleet = fleets[0]

    # robot clients ran in the bundles of the robots' placement group (removed at the end); nothing got a GPU
    pg_ids = {fleet.child(f"client-{i}").last["placement_group"] for i in range(2)}
    assert len(pg_ids) == 1 and None not in pg_ids
    assert ray.util.placement_group_table()[pg_ids.pop()]["state"] == "REMOVED"
    assert fleet.child("learner").last["placement_group"] is None
    assert all(c.last["gpu_ids"] == [] for c in fleet.children)
    assert fleet.learner_status()["device"] == "cpu"  # "auto" without a GPU reservation

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
    assert killer.facts["pending"] <= set(membership)
    assert outbox_pending(online) == set()
    per_robot = Counter(e.robot_id for m in manifests(fleet_root) for e in entries_of(m))
    for rid, n in killer.facts["episodes"].items():
        assert per_robot[rid] >= n, f"{rid}: episodes finished before the kill are missing"
    robots = fleet.robot_status()
    assert len(robots) == 4
    for rid, st in robots.items():
        assert per_robot[rid] >= st["episodes"], f"{rid}: reported episodes missing from snapshots"
    assert summary["episodes"] <= len(membership)
    assert (online / "policy" / "manifest.json").is_file()
    assert "resumes" not in (online / "logs" / "learner.log").read_text()  # the learner was never restarted


@pytest.mark.slow
def test_ray_engine_learner_and_coordinator_actors_survive_sigkill(
    tmp_path, monkeypatch, ray_cluster, redis_url, fake4_dataset, fake4_sft_policy
):
    fleets = spy_fleets(monkeypatch)

    def learner_checkpointed(fleet, child) -> dict | None:
        ckpt = fleet.learner_dir / "checkpoints" / "latest.json"
        if ckpt.is_file() and read_json(ckpt)["step"] >= 10:
            return {"step": read_json(ckpt)["step"], "versions": PolicyRegistry(fleet.registry).versions()}
        return None

    def coordinator_committed(fleet, child) -> dict | None:
        done = committed_ids(fleet.fleet_root) if (fleet.fleet_root / "coordinator.db").is_file() else set()
        return {"committed": len(done)} if len(done) >= 20 else None

    killers = [
        Killer(fleets, "learner", learner_checkpointed),
        Killer(fleets, "coordinator", coordinator_committed),
    ]
    for k in killers:
        k.start()
    run_dir = tmp_path / "run"
    online, fleet_root = run_dir / "online", run_dir / "online" / "fleet"
    cfg = ray_config(redis_url, budget=Budget(max_learner_steps=40, max_wall_s=300.0))
    summary = online_stage.run_online(cfg, run_dir, fake4_dataset, fake4_sft_policy, display=False)
    for k in killers:
        k.join(timeout=1)
        assert k.pid is not None, f"{k.name_} was never killed"
    learner_kill = killers[0].facts

    assert summary["learner_step"] == 40
    assert summary["restarts"]["learner"] == 1 and summary["restarts"]["coordinator"] == 1
    resumed = [int(x.rsplit(" ", 1)[-1]) for x in (online / "logs" / "learner.log").read_text().splitlines()
               if "resumes from its checkpoint" in x]  # fmt: skip
    assert resumed and resumed[0] >= learner_kill["step"]
    reg = PolicyRegistry(fleet_root / "registry")
    versions = reg.versions()
    assert versions == sorted(set(versions))  # numbers never reused
    new = [v for v in versions if v not in learner_kill["versions"]]
    assert new and all(reg.info(v)["learner_step"] > learner_kill["step"] for v in new)
    membership = snapshot_membership(fleet_root)
    assert set(membership.values()) == {1} and set(membership) == committed_ids(fleet_root)
    assert outbox_pending(online) == set()
    per_robot = Counter(e.robot_id for m in manifests(fleet_root) for e in entries_of(m))
    for rid, st in summary_robots(online).items():
        assert per_robot[rid] >= st["episodes"], f"{rid}: reported episodes missing from snapshots"


def summary_robots(online) -> dict:
    out: dict = {}
    for p in (online / "robots").glob("client-*.json"):
        out.update(read_json(p)["robots"])
    return out


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


def test_lwd_run_engine_flags_reach_the_online_stage():
    from lwd.configs.presets import RUN
    from lwd.pipeline.run import resolve

    assert resolve(RUN["debug"]).online.engine == "local"
    cfg = resolve(dataclasses.replace(RUN["debug"], engine="ray", ray_address="auto"))
    assert (cfg.online.engine, cfg.online.ray_address) == ("ray", "auto")
    kept = dataclasses.replace(RUN["debug"], online=dataclasses.replace(ONLINE["debug"], engine="ray"))
    assert resolve(kept).online.engine == "ray"  # --online.engine is kept when --engine is not given


def test_robot_clients_get_one_bundle_each_of_a_spread_placement_group(tmp_path, ray_cluster, redis_url):
    from lwd.fleet.launch.ray import RayFleet

    fleet = RayFleet(ray_config(redis_url), tmp_path / "online", tmp_path, tmp_path, 10.0)
    pg = fleet.robot_pg
    try:
        info = ray_placement.placement_group_info(pg)
        assert info["strategy"] == "SPREAD" and info["state"] == "CREATED"
        assert info["bundles"] == {0: {"CPU": 1.0}, 1: {"CPU": 1.0}}  # one per robot-client actor
        for i in range(2):
            opts = fleet.child(f"client-{i}").options
            strategy = opts["scheduling_strategy"]
            assert isinstance(strategy, PlacementGroupSchedulingStrategy) and opts["num_cpus"] == 1
            assert strategy.placement_group.id == fleet.robot_pg.id
            assert strategy.placement_group_bundle_index == i
            assert opts["runtime_env"]["env_vars"]["CUDA_VISIBLE_DEVICES"] == ""
        assert "num_gpus" not in fleet.child("learner").options  # this cluster has no GPU
        assert "name" not in fleet.child("learner").options  # not detached by default
    finally:
        fleet.stop()  # nothing was started: removes the placement group
    assert ray_placement.placement_group_info(pg)["state"] == "REMOVED"


def test_strict_spread_over_more_clients_than_nodes_is_refused(tmp_path, ray_cluster, redis_url, monkeypatch):
    from lwd.fleet.launch.ray import RayFleet

    monkeypatch.setattr(ray_placement, "PG_READY_TIMEOUT_S", 2.0)
    before = set(ray.util.placement_group_table())
    with pytest.raises(ConfigError, match="could not place 2 robot-client bundles .* STRICT_SPREAD"):
        RayFleet(ray_config(redis_url, ray_robot_strategy="STRICT_SPREAD"), tmp_path / "online", tmp_path,
                 tmp_path, 10.0)  # fmt: skip  (one node, two bundles that each want their own node)
    table = ray.util.placement_group_table()
    assert all(table[i]["state"] == "REMOVED" for i in set(table) - before)


def _node(node_id: str, cpus: float, gpus: float = 0) -> dict:
    return {"NodeID": node_id, "Alive": True, "Resources": {"CPU": cpus, **({"GPU": gpus} if gpus else {})}}


def test_learner_requests_a_gpu_only_when_the_cluster_has_one_and_its_device_may_use_it():
    here, gpu = "aa" * 28, "bb" * 28
    cpu_only = [_node(here, 4)]
    with_gpu = [_node(here, 4), _node(gpu, 1, gpus=1)]

    def plan(nodes, device):
        opts = ray_placement.learner_options(nodes, here, device)
        return opts.get("num_gpus", 0), opts["scheduling_strategy"].node_id, opts["scheduling_strategy"].soft

    assert plan(cpu_only, "auto") == (0, here, False)
    assert plan(cpu_only, "cpu") == (0, here, False)
    assert plan(with_gpu, "auto") == (1, gpu, False)
    assert plan(with_gpu, "cuda") == (1, gpu, False)
    assert plan(with_gpu, "cpu") == (0, here, False)  # a CPU learner does not hold a GPU
    with pytest.raises(ConfigError, match="no node of the Ray cluster has a GPU"):
        plan(cpu_only, "cuda")
    with pytest.raises(ConfigError, match="sees only the one GPU reserved for it"):
        plan(with_gpu, "cuda:1")


def test_a_learner_resource_lets_ray_place_and_re_place_the_learner_on_any_node_offering_it():
    here, l1, l2 = "aa" * 28, "bb" * 28, "cc" * 28
    nodes = [_node(here, 0), {**_node(l1, 1), "Resources": {"CPU": 1, "lwd_learner": 1}},
             {**_node(l2, 1, gpus=1), "Resources": {"CPU": 1, "GPU": 1, "lwd_learner": 1}}]  # fmt: skip
    opts = ray_placement.learner_options(nodes, here, "cpu", "lwd_learner")
    assert opts == {"num_cpus": 0, "resources": {"lwd_learner": 1}}  # not pinned to a node: Ray may move it
    assert ray_placement.learner_options(nodes, here, "auto", "lwd_learner")["num_gpus"] == 1
    with pytest.raises(ConfigError, match="no node of the Ray cluster offers the learner resource 'lwd_gpu'"):
        ray_placement.learner_options(nodes, here, "auto", "lwd_gpu")
    assert ray_placement.robot_bundle("lwd_robot") == {"CPU": 1, "lwd_robot": 1}
    assert ray_placement.robot_bundle() == {"CPU": 1}


def test_node_resources_the_cluster_does_not_offer_are_refused(tmp_path, ray_cluster, redis_url):
    from lwd.fleet.launch.ray import RayFleet

    before = set(ray.util.placement_group_table())
    with pytest.raises(ConfigError, match="offers 0 of the robot resource 'lwd_robot'; 2 robot-client actors"):
        RayFleet(ray_config(redis_url, ray_robot_resource="lwd_robot"), tmp_path / "online", tmp_path, tmp_path, 10.0)
    with pytest.raises(ConfigError, match="offers the learner resource 'lwd_learner'"):
        RayFleet(ray_config(redis_url, ray_learner_resource="lwd_learner"), tmp_path / "o", tmp_path, tmp_path, 10.0)
    assert set(ray.util.placement_group_table()) == before


def test_node_resource_options_are_validated():
    base = dataclasses.replace(ONLINE["debug"], engine="ray")
    for bad in ("CPU", "lwd-robot", "a b"):
        with pytest.raises(ConfigError, match="ray-robot-resource must be a custom resource name"):
            dataclasses.replace(base, ray_robot_resource=bad).validate()
    with pytest.raises(ConfigError, match="need the ray engine"):
        dataclasses.replace(ONLINE["debug"], ray_learner_resource="lwd_learner").validate()
    dataclasses.replace(base, ray_learner_resource="lwd_learner", ray_robot_resource="lwd_robot").validate()


def test_a_cuda_learner_on_a_cluster_without_gpus_is_refused_before_anything_starts(
    tmp_path, ray_cluster, redis_url
):
    from lwd.fleet.launch.ray import RayFleet

    before = set(ray.util.placement_group_table())
    cfg = ray_config(redis_url, learner=LearnerSettings(device="cuda"))
    with pytest.raises(ConfigError, match="no node of the Ray cluster has a GPU"):
        RayFleet(cfg, tmp_path / "online", tmp_path, tmp_path, 10.0)
    assert set(ray.util.placement_group_table()) == before  # refused before the placement group
