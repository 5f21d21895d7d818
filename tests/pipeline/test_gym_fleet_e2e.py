"""End to end: a gymnasium environment (MountainCarContinuous) learns online in the real local fleet.

A suite JSON file puts MountainCar behind ``lwd.envs.gym_robot:gym_suite_robot``; a scripted "pump"
controller provides the demos (there is no scripted expert, so ``lwd collect`` does not apply), a tiny
SFT policy starts the fleet, and ``run_online`` (coordinator, learner and robot clients as real
processes) runs 2 gym robots. Without an expert there are no interventions: the learner trains on the
demos plus the fleet's autonomous episodes and publishes versions that the robots load.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import numpy as np
import pytest

from lwd.configs.eval import EvalConfig
from lwd.configs.online import Budget, OnlineConfig, RolloutSettings
from lwd.configs.presets import DEBUG_ARCH, ONLINE
from lwd.configs.train import LoopConfig, SFTConfig
from lwd.data import DatasetWriter, LwdDataset
from lwd.envs.episode_loop import run_episode
from lwd.envs.gym_robot import GymRobot
from lwd.envs.suites import get_task, make_robot
from lwd.eval.runner import evaluate
from lwd.fleet.dataplane import open_dataplane
from lwd.fleet.dataplane.snapshots import latest_number
from lwd.fleet.launch.plan import FleetPlan
from lwd.fleet.learner.reader import SnapshotReader
from lwd.fleet.robot.adapters import make_member
from lwd.pipeline.online import run_online
from lwd.pipeline.pretrain import pretrain
from lwd.policy.checkpoint import load_policy
from lwd.utils.errors import ConfigError
from lwd.utils.io import read_json

MC = "MountainCarContinuous-v0"
SUITE = {
    "name": "mountaincar",
    "robot_factory": "lwd.envs.gym_robot:gym_suite_robot",
    "robot_options": {"env_id": MC, "terminated_is_success": True},
    "tasks": [{"id": "hill", "kind": "short", "max_steps": 200, "instructions": ["drive up the hill"],
               "held_out_instructions": ["reach the flag"]}],
}  # fmt: skip


def pump(obs) -> np.ndarray:
    """MountainCar energy pumping: push in the direction of the velocity (a chunk of 4 actions)."""
    return np.full((4, 1), 1.0 if obs.state[1] >= 0 else -1.0, np.float32)


def write_suite(tmp_path):
    path = tmp_path / "mountaincar.json"
    path.write_text(json.dumps(SUITE))
    return path


def test_fleet_plan_runs_factory_suites_without_the_scripted_intervener(tmp_path, caplog):
    """A suite file's robot_factory (here a gym robot) has no scripted expert: its robot clients get
    ``intervene: false`` (one warning) instead of an intervener that fails at the first reset."""
    suite = write_suite(tmp_path)
    cfg = OnlineConfig(suite=str(suite), num_robots=2, robot_processes=2, intervene=True)
    with caplog.at_level(logging.WARNING, logger="lwd.fleet.launch.plan"):
        plan = FleetPlan(cfg, tmp_path / "gym", tmp_path / "no_data", tmp_path / "init")
    clients = [c.config for c in plan.components if c.kind == "robot"]
    assert len(clients) == 2 and not any(c.intervene for c in clients)
    assert all(c.suite == str(suite.resolve()) for c in clients)
    coordinator = next(c.config for c in plan.components if c.kind == "coordinator")
    assert coordinator.tasks == ("hill",) and coordinator.max_steps == 200
    assert "no scripted expert" in caplog.text
    sim = FleetPlan(replace(cfg, suite="fake4"), tmp_path / "fake4", tmp_path / "no_data", tmp_path / "init")
    assert all(c.config.intervene for c in sim.components if c.kind == "robot")
    # a hand-written client config asking for the scripted intervener on a gym robot: one clear error
    with pytest.raises(ConfigError, match="no scripted expert"):
        make_member(replace(clients[0], intervene=True), "robot-000", 0)


def test_gym_robots_learn_online_in_the_fleet(tmp_path):
    suite = write_suite(tmp_path)
    task = get_task(str(suite), "hill")
    robot = make_robot(str(suite), "state", "lab")
    assert isinstance(robot, GymRobot)

    # offline demos from the scripted controller (no scripted expert: `lwd collect` does not apply)
    data = tmp_path / "offline_data"
    with DatasetWriter(data, robot.spec, robot.spec.control_hz, robot_type="gym") as writer:
        for seed in range(6):
            ep = run_episode(robot, pump, task, task.instructions[0], seed=seed, robot_id="demo-0")
            writer.add(ep.replace(source="demo"))
    assert len(LwdDataset.open(data)) == 6

    # a tiny SFT policy
    loop = LoopConfig(steps=30, batch_size=32, log_every=10, checkpoint_every=30, threads=1)
    sft = pretrain(SFTConfig(dataset=data, out=tmp_path / "sft", policy=DEBUG_ARCH, loop=loop, lr=1e-3,
                             warmup_steps=5), progress=False)  # fmt: skip

    # online: 2 gym robots in 2 robot-client processes, the debug learner (lwd: DIVL + QAM with the BC
    # reference), a version every 5 learner steps, every version fleet-wide (no canary)
    debug = ONLINE["debug"]
    cfg = replace(
        debug,
        suite=str(suite),
        num_robots=2,
        robot_processes=2,
        shift="lab",
        learner=replace(
            debug.learner, min_online_transitions=60, publish_every=5, checkpoint_every=10, log_every=5
        ),
        budget=Budget(max_learner_steps=15, max_wall_s=120.0),
        rollout=RolloutSettings(enabled=False),
        status_every_s=2.0,
    )
    cfg.validate()
    assert cfg.intervene  # the default: the plan turns it off for the gym robots (no expert)
    run_dir = tmp_path / "run"
    summary = run_online(cfg, run_dir, data, sft, display=False)
    online = run_dir / "online"
    logs = {p.name: p.read_text()[-2000:] for p in (online / "logs").glob("*.log")}

    # the learner trained to its budget and published versions beyond the initial one
    assert summary["stop_reason"] == "learner-steps", logs
    assert summary["learner_step"] >= 15 and all(n == 0 for n in summary["restarts"].values()), logs
    versions = summary["versions"]
    first = versions[0]  # the initial policy, published when the learner starts
    assert len(versions) >= 3 and summary["final_version"] == versions[-1] > first
    metrics = [json.loads(line) for line in (online / "learner" / "metrics.jsonl").read_text().splitlines()]
    assert max(m["step"] for m in metrics) >= 15
    assert all(np.isfinite(m["critic/td_loss"]) for m in metrics if "critic/td_loss" in m)

    # fleet episodes of the gym task were committed, some under a version newer than the initial one
    dp = open_dataplane(online / "fleet")
    try:
        eps = list(SnapshotReader(dp).read_snapshot(latest_number(dp.store)))
    finally:
        dp.close()
    assert len(eps) >= 4 and {e.task_id for e in eps} == {"hill"}
    assert {e.robot_id for e in eps} == {"robot-000", "robot-001"}
    assert all(e.states.shape[1] == 2 and e.actions.shape[1] == 1 for e in eps)
    assert not any(e.intervention.any() for e in eps)  # no expert: the policy acts on every step
    assert max(e.policy_version for e in eps) > first
    per_version = read_json(online / "learner" / "versions.json")
    assert any(int(v) > first and s["episodes"] > 0 for v, s in per_version.items())
    assert all(s["intervention_rate"] == 0.0 for s in per_version.values())
    robots = [r for f in (online / "robots").glob("client-*.json") for r in read_json(f)["robots"].values()]
    assert len(robots) == 2 and max(r["version"] for r in robots) > first  # loaded by a robot

    # the final policy is a normal checkpoint for the gym robot, and evaluates on the suite file
    policy, _, manifest = load_policy(summary["final_policy"], expected_spec=robot.spec)
    assert manifest["version"] == summary["final_version"]
    assert (policy.config.state_dim, policy.config.action_dim) == (2, 1)
    res = evaluate(EvalConfig(checkpoint=summary["final_policy"], suite=str(suite), shift="lab",
                              episodes_per_task=2, workers=1, out=tmp_path / "eval"), progress=False)  # fmt: skip
    assert res["episodes"] == 2 and res["policy_version"] == summary["final_version"]
    assert list(res["tasks"]) == ["hill"]
