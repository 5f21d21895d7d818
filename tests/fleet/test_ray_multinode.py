"""The online fleet on a multi-node Ray cluster (a head, two learner nodes, two robot nodes, all
started with ``ray start`` on this machine), with shared services reached by address: the Redis event
log and an S3 (moto) episode store. Placement is checked from Ray's own state, then nodes die for
real (SIGKILL of the node's raylet and every process under it):

* a robot node: its robot-client actor is re-placed on the surviving robot node and resumes, no
  finished episode is lost or committed twice, the learner keeps training, the run reaches its budget;
* the learner's node: Ray restarts the learner on the other learner node, where it resumes from its
  checkpoint and trains to the budget.

The recovery times measured are printed (``pytest -s``) and quoted in docs/multi_machine.md.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'lwd[scale]')")

from online_support import committed_ids, manifests, outbox_pending, snapshot_membership  # noqa: E402
from ray_nodes import LocalRayCluster  # noqa: E402
from ray_support import ray_config, spy_fleets  # noqa: E402

from lwd.configs.online import Budget  # noqa: E402
from lwd.fleet.dataplane.snapshots import entries_of  # noqa: E402
from lwd.pipeline import online as online_stage  # noqa: E402
from lwd.utils.io import read_json  # noqa: E402

pytestmark = pytest.mark.slow
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
"""moto's credentials: in the environment of every node and the driver, never in a config file."""


@pytest.fixture(scope="module")
def cluster(moto_s3):
    c = LocalRayCluster()
    try:
        c.start_head(AWS)
        for name in ("learner1", "learner2"):
            c.add_node(name, 1, {"lwd_learner": 1}, AWS)
        for name in ("robot1", "robot2"):
            c.add_node(name, 2, {"lwd_robot": 2}, AWS)
        yield c
    finally:
        c.stop()


def config(cluster, moto_s3, tmp_path, redis_url, budget: Budget):
    """The debug preset's fleet on ``cluster``: Redis events, episodes on S3, learner and robots on
    the nodes that offer ``lwd_learner`` / ``lwd_robot``."""
    bucket = moto_s3.make_bucket(f"lwd-multinode-{tmp_path.name.lower().replace('_', '-')[:30]}")
    spec = tmp_path / "dataplane.json"
    endpoint = {"client_kwargs": {"endpoint_url": moto_s3.endpoint, "region_name": "us-east-1"}}
    spec.write_text(
        json.dumps({"events": redis_url, "store": f"{bucket}/fleet", "storage_options": endpoint})
    )
    cfg = ray_config(redis_url, dataplane=str(spec), ray_address=cluster.address, budget=budget,
                     ray_learner_resource="lwd_learner", ray_robot_resource="lwd_robot")  # fmt: skip
    return cfg, spec


class NodeKiller(threading.Thread):
    """Once ``ready(fleet)`` returns facts, SIGKILLs the node ``victim(fleet)`` names, then records
    when ``recovered(fleet, facts)`` first holds (seconds after the kill)."""

    def __init__(self, fleets, cluster, ready, victim, recovered):
        super().__init__(daemon=True)
        self.fleets, self.cluster = fleets, cluster
        self.ready, self.victim, self.recovered = ready, victim, recovered
        self.facts: dict = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # noqa: BLE001 (reported by the test)
            self.error = e

    def _run(self) -> None:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and not self.facts:
            time.sleep(0.2)
            if self.fleets and all("node_id" in c.last for c in self.fleets[0].children):
                facts = self.ready(self.fleets[0])
                if facts:
                    fleet = self.fleets[0]
                    facts["placement"] = {c.name: c.last["node_id"] for c in fleet.children}
                    facts["bundles"] = ray.util.placement_group_table(fleet.robot_pg)["bundles_to_node_id"]
                    facts["nodes"] = self.cluster.node_ids(ray)
                    facts["victim"] = self.victim(fleet)
                    facts["learner_step"] = fleet.learner_status().get("step", 0)
                    self.facts = facts
        if not self.facts:
            return
        self.facts["killed_pids"] = self.cluster.kill_node(self.facts["victim"])
        t0 = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if self.recovered(self.fleets[0], self.facts):
                self.facts["recovery_s"] = time.monotonic() - t0
                return


def run_killing_a_node(ctx, ready, victim, recovered, budget: Budget):
    """Run the online fleet on the cluster while a :class:`NodeKiller` kills the node ``victim`` names
    once ``ready`` holds; returns (summary, facts, the fleet, data-plane spec, online dir)."""
    cluster, moto_s3, tmp_path, monkeypatch, redis_url, dataset, policy = ctx
    for k, v in {**cluster.env, **AWS}.items():
        monkeypatch.setenv(k, v)
    fleets = spy_fleets(monkeypatch)
    killer = NodeKiller(fleets, cluster, ready, victim, recovered)
    killer.start()
    cfg, spec = config(cluster, moto_s3, tmp_path, redis_url, budget)
    run_dir = tmp_path / "run"
    summary = online_stage.run_online(cfg, run_dir, dataset, policy, display=False)
    killer.join(timeout=5)
    assert killer.error is None, killer.error
    return summary, killer.facts, (fleets[0] if fleets else None), spec, run_dir / "online"


def robots_of(child) -> dict:
    return child.last.get("robots", {})


def check_exactly_once(spec, online, summary) -> None:
    """Every committed episode is in exactly one snapshot; nothing waits in an outbox; every episode a
    robot reported finishing arrived."""
    membership = snapshot_membership(spec)
    assert membership and set(membership.values()) == {1}
    assert set(membership) == committed_ids(online / "fleet")
    assert outbox_pending(online) == set()
    per_robot = Counter(e.robot_id for m in manifests(spec) for e in entries_of(m))
    for p in (online / "robots").glob("client-*.json"):
        for rid, st in read_json(p)["robots"].items():
            assert per_robot[rid] >= st["episodes"], f"{rid}: reported episodes missing from snapshots"
    assert summary["episodes"] <= len(membership)


def test_robot_node_dies_its_robots_move_and_nothing_is_lost(
    cluster, moto_s3, tmp_path, monkeypatch, redis_url, fake4_dataset, fake4_sft_policy, capsys
):
    def ready(fleet):
        c0 = fleet.child("client-0")
        if sum(r.get("episodes", 0) for r in robots_of(c0).values()) >= 1:
            return {"episodes": {rid: r["episodes"] for rid, r in robots_of(c0).items()}, "pid": c0.last["pid"],
                    "pending": outbox_pending(fleet.dir, set(robots_of(c0)))}  # fmt: skip
        return None

    def recovered(fleet, facts):  # client-0 runs again, on another node, and has finished a new episode
        c0 = fleet.child("client-0")
        more = sum(r.get("episodes", 0) for r in robots_of(c0).values()) > sum(facts["episodes"].values())
        return c0.last.get("node_id") != facts["victim"] and c0.last.get("pid") != facts["pid"] and more

    ctx = (cluster, moto_s3, tmp_path, monkeypatch, redis_url, fake4_dataset, fake4_sft_policy)
    summary, facts, fleet, spec, online = run_killing_a_node(
        ctx, ready, lambda f: f.child("client-0").last["node_id"], recovered,
        Budget(robot_hours=0.05, max_wall_s=400.0),
    )  # fmt: skip
    assert facts, "client-0 never finished an episode"

    # placement, from Ray's state: coordinator on the head (the driver's node), learner on a learner
    # node, the two robot clients on the two robot nodes, each in its placement-group bundle
    nodes, where = facts["nodes"], facts["placement"]
    assert where["coordinator"] == nodes["head"]
    assert where["learner"] in (nodes["learner1"], nodes["learner2"])
    assert {where["client-0"], where["client-1"]} == {nodes["robot1"], nodes["robot2"]}
    assert facts["bundles"] == {0: where["client-0"], 1: where["client-1"]} or sorted(
        facts["bundles"].values()) == sorted([where["client-0"], where["client-1"]])  # fmt: skip

    # the node died; client-0 was restarted by Ray on the surviving robot node and went on working
    survivor = ({nodes["robot1"], nodes["robot2"]} - {facts["victim"]}).pop()
    assert "recovery_s" in facts, "client-0 never worked again after its node died"
    c0 = fleet.child("client-0")
    assert summary["restarts"]["client-0"] >= 1 and c0.last["node_id"] == survivor
    assert summary["restarts"]["learner"] == summary["restarts"]["coordinator"] == 0

    # the learner kept training and the run reached its robot-hour budget
    assert summary["stop_reason"] == "robot-hours", summary["stop_reason"]
    assert summary["learner_step"] > facts["learner_step"]

    # nothing lost or duplicated: episodes pending on the dead node (its outbox is on shared disk here)
    # were committed, and every episode its robots had reported is in exactly one snapshot
    assert facts["pending"] <= set(snapshot_membership(spec))
    per_robot = Counter(e.robot_id for m in manifests(spec) for e in entries_of(m))
    for rid, n in facts["episodes"].items():
        assert per_robot[rid] >= n
    check_exactly_once(spec, online, summary)
    with capsys.disabled():
        print(
            f"\nrobot node killed: client-0 re-placed and finished a new episode {facts['recovery_s']:.1f} s later"
        )


def test_learner_node_dies_and_the_learner_resumes_on_another_node(
    cluster, moto_s3, tmp_path, monkeypatch, redis_url, fake4_dataset, fake4_sft_policy, capsys
):
    def ready(fleet):
        ckpt = fleet.learner_dir / "checkpoints" / "latest.json"
        if ckpt.is_file() and read_json(ckpt)["step"] >= 10:
            return {"checkpoint_step": read_json(ckpt)["step"], "pid": fleet.child("learner").last["pid"]}
        return None

    def recovered(fleet, facts):  # the learner runs again, elsewhere, and has trained past its checkpoint
        ln = fleet.child("learner")
        return (ln.last.get("pid") != facts["pid"] and ln.last.get("node_id") != facts["victim"]
                and fleet.learner_status().get("step", 0) > facts["checkpoint_step"])  # fmt: skip

    ctx = (cluster, moto_s3, tmp_path, monkeypatch, redis_url, fake4_dataset, fake4_sft_policy)
    summary, facts, fleet, spec, online = run_killing_a_node(
        ctx, ready, lambda f: f.child("learner").last["node_id"], recovered,
        Budget(max_learner_steps=40, max_wall_s=400.0),
    )  # fmt: skip
    assert facts, "the learner never checkpointed step 10"
    nodes = facts["nodes"]
    learners = {nodes["learner1"], nodes["learner2"]}
    assert facts["victim"] in learners and "recovery_s" in facts, "the learner never trained again"
    learner = fleet.child("learner")
    assert (
        summary["restarts"]["learner"] == 1
        and learner.last["node_id"] == (learners - {facts["victim"]}).pop()
    )
    assert summary["learner_step"] == 40 and summary["stop_reason"] in ("learner-steps", "learner finished")
    resumed = [int(x.rsplit(" ", 1)[-1]) for x in (online / "logs" / "learner.log").read_text().splitlines()
               if "resumes from its checkpoint" in x]  # fmt: skip
    assert resumed and resumed[0] >= facts["checkpoint_step"]
    check_exactly_once(spec, online, summary)
    with capsys.disabled():
        print(f"\nlearner node killed: learner resumed on the other learner node and trained past its "
              f"checkpoint {facts['recovery_s']:.1f} s later")  # fmt: skip
