"""Unit tests of the online loop's pieces: UTD/warm-up gate, version loading only at episode
boundaries, task claims, seeds, per-version statistics, config round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lwd.configs.online import Budget, LearnerSettings, OnlineConfig
from lwd.envs.intervention import InterventionConfig
from lwd.fleet.dataplane import open_dataplane
from lwd.fleet.dataplane.claims import claim_task
from lwd.fleet.dataplane.state import CoordinatorState
from lwd.fleet.learner.service import may_update
from lwd.fleet.learner.version_stats import VersionStats
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.fleet.registry.versions import PolicyVersions, materialize_version, policy_files
from lwd.fleet.robot.client import task_weights_for
from lwd.fleet.robot.member import FleetMember, episode_seed
from lwd.fleet.robot.outbox import Outbox
from lwd.utils.seeding import EVAL_SEED_BASE, ONLINE_SEED_BASE, eval_seed


# ---- UTD / warm-up gate ---------------------------------------------------------------------------
def test_gate_waits_for_warm_up():
    assert not may_update(0, 0, 0, 1.0)  # never on an empty online buffer
    assert not may_update(0, 99, 100, 1.0)
    assert may_update(0, 100, 100, 1.0)


def test_gate_bounds_update_to_data_ratio():
    # utd 0.5: with 100 online transitions at most 50 learner steps
    assert may_update(49, 100, 10, 0.5)
    assert not may_update(50, 100, 10, 0.5)
    assert may_update(50, 102, 10, 0.5)  # more data arrived -> one more step allowed
    steps, data = 0, 0
    for _ in range(1000):  # a simulated run never exceeds the bound
        data += 7
        while may_update(steps, data, 50, 0.25):
            steps += 1
        assert steps <= 0.25 * data
    assert steps == int(0.25 * data)


# ---- version loading only at episode boundaries -------------------------------------------------
@pytest.fixture
def registry_with_v1(tmp_path, fake4_sft_policy):
    reg = PolicyRegistry(tmp_path / "registry")
    v1 = reg.publish(policy_files(fake4_sft_policy), learner_step=0)
    reg.set_default(v1)
    return reg


def test_materialized_version_is_a_loadable_policy_with_the_registry_number(tmp_path, registry_with_v1):
    from lwd.policy.checkpoint import load_policy

    path = materialize_version(registry_with_v1, 1, tmp_path / "v1")
    _, _, manifest = load_policy(path)
    assert manifest["version"] == 1
    assert materialize_version(registry_with_v1, 1, tmp_path / "v1") == path  # idempotent


def test_new_version_is_loaded_only_at_the_next_episode_boundary(
    tmp_path, registry_with_v1, fake4_sft_policy
):
    from lwd.envs.suites import get_suite, make_robot

    reg = registry_with_v1
    dp = open_dataplane(tmp_path / "fleet")
    outbox = Outbox(tmp_path / "outbox", dp, start=False)
    versions = PolicyVersions(reg, tmp_path / "cache")
    robot = make_robot("fake4", "state", "field")
    member = FleetMember("robot-000", 0, robot, None, outbox, get_suite("fake4").task("reach-red"))
    resolves = []
    real_resolve = versions.resolve
    versions.resolve = lambda rid: resolves.append(rid) or real_resolve(rid)

    v1 = real_resolve("robot-000")
    acted_versions = []
    real_act = v1.act

    def act_and_publish(obs, seed=None):
        # a new version appears (and becomes the default) in the middle of the episode
        acted_versions.append(1)
        if reg.latest_version() == 1:
            reg.set_default(reg.publish(policy_files(fake4_sft_policy), parent=1, learner_step=50))
        return real_act(obs, seed)

    v1.act = act_and_publish
    ep1 = member.run_one(versions)
    assert len(acted_versions) >= 2, "the episode needed several chunks"
    assert resolves == ["robot-000"], "the assignment is asked only at the episode boundary"
    assert ep1.policy_version == 1 and member.version == 1
    ep2 = member.run_one(versions)
    assert ep2.policy_version == 2
    assert member.loads == [1, 2]
    assert len(resolves) == 2
    assert sorted(outbox.pending_ids()) == sorted([ep1.episode_id, ep2.episode_id])
    outbox.close()
    dp.close()


def test_member_waits_while_nothing_is_published(tmp_path):
    from lwd.envs.suites import get_suite, make_robot

    reg = PolicyRegistry(tmp_path / "registry")
    dp = open_dataplane(tmp_path / "fleet")
    outbox = Outbox(tmp_path / "outbox", dp, start=False)
    member = FleetMember("r", 0, make_robot("fake4"), None, outbox, get_suite("fake4").task("reach-red"))
    assert member.run_one(PolicyVersions(reg, tmp_path / "cache")) is None
    assert outbox.pending_ids() == []
    outbox.close()
    dp.close()


# ---- allocation, seeds, statistics, config --------------------------------------------------------
def test_claims_follow_the_paper_allocation(tmp_path):
    weights = task_weights_for("mw8")
    assert sorted(set(weights.values())) == [1.0, 3.0]
    state = CoordinatorState(tmp_path / "coordinator.db")
    tasks = [claim_task(state, f"robot-{i:03d}", weights) for i in range(16)]
    counts = {t: tasks.count(t) for t in weights}
    assert all(counts[t] == (1 if w == 1.0 else 3) for t, w in weights.items())  # 4 x 1 + 4 x 3
    assert claim_task(state, "robot-005", weights) == tasks[5]  # durable: same robot, same task
    state.close()


def test_online_seeds_are_disjoint_from_eval_seeds():
    seeds = {episode_seed(s, r, e) for s in range(3) for r in range(16) for e in (0, 1, 999_999)}
    assert len(seeds) == 3 * 16 * 3
    assert min(seeds) >= ONLINE_SEED_BASE and max(seeds) < EVAL_SEED_BASE
    assert eval_seed(0, 0, 0) not in seeds


def test_version_stats_per_version_success_intervention_and_staleness():
    from lwd.types import Episode

    def ep(version, task, success, inter):
        t = len(inter)
        r = np.zeros(t, np.float32)
        r[-1] = float(success)
        return Episode("e", task, "i", "r", version, "online", success, np.zeros((t + 1, 2), np.float32),
                       np.zeros((t, 2), np.float32), r, np.asarray(inter, bool))  # fmt: skip

    st = VersionStats()
    st.add(ep(1, "a", True, [0, 0, 1, 1]), latest_version=3)
    st.add(ep(1, "a", False, [0, 0, 0, 0]), latest_version=3)
    st.add(ep(3, "b", True, [1, 0, 0, 0]), latest_version=3)
    s = st.summary()
    assert s["1"]["success_rate"] == {"a": 0.5} and s["1"]["intervention_rate"] == 0.25
    assert s["3"]["success_rate"] == {"b": 1.0} and s["3"]["episodes"] == 1
    w = st.pop_window()
    assert w["data/staleness_versions"] == pytest.approx(4 / 3)
    assert w["fleet/intervention_rate"] == pytest.approx(3 / 12)
    assert st.pop_window() == {}


def test_online_config_json_round_trip():
    cfg = OnlineConfig(suite="fake4", tasks=("reach-red",), intervention=InterventionConfig(budget_steps=7),
                       learner=LearnerSettings(utd=0.3), budget=Budget(robot_hours=0.5))  # fmt: skip
    assert OnlineConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    d = OnlineConfig()
    assert (d.num_robots, d.learner.online_fraction, d.learner.tau_base, d.learner.publish_every) == (
        16,
        0.5,
        0.9,
        50,
    )
    assert d.learner.n_step == 1 and d.shift == "field"


def test_client_steps_its_members_in_lockstep_with_one_batched_call_per_version(
    tmp_path, registry_with_v1, monkeypatch
):
    from lwd.fleet.robot.client import RobotClient
    from lwd.policy.inference import InferencePolicy

    batch_sizes = []
    real = InferencePolicy.act_batch

    def spy(self, observations, seeds=None):
        batch_sizes.append(len(observations))
        return real(self, observations, seeds)

    monkeypatch.setattr(InferencePolicy, "act_batch", spy)
    dp_root = tmp_path / "fleet"
    ids = ["robot-000", "robot-001", "robot-002"]
    cfg = {
        "client_id": "client-0", "fleet_root": str(dp_root), "dataplane": str(dp_root),
        "registry": str(registry_with_v1.root), "suite": "fake4", "robot_ids": ids, "robot_indices": [0, 1, 2],
        "task_weights": {"reach-red": 1.0, "reach-blue": 1.0}, "intervene": True,
        "outbox_root": str(tmp_path / "outbox"), "status_path": str(tmp_path / "status.json"),
        "cache_dir": str(tmp_path / "cache"), "max_episodes": 2, "heartbeat_s": 0.0,
    }  # fmt: skip
    client = RobotClient(cfg)
    try:
        assert client.run() == 6
    finally:
        client.close(flush_timeout_s=10.0)
    assert max(batch_sizes) == 3, "all three members waiting on v1 shared one forward pass"
    assert sum(batch_sizes) > len(batch_sizes), "most calls were batched"
    st = json.loads((tmp_path / "status.json").read_text())["robots"]
    assert sorted(st) == ids and all(r["episodes"] == 2 and r["version"] == 1 for r in st.values())
