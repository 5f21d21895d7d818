"""The launch plan wires canary mode: coordinator gets --rollout, learner gets canary_mode."""

from __future__ import annotations

import dataclasses
import json

from lwd.configs.online import OnlineConfig, RolloutSettings
from lwd.configs.presets import ONLINE
from lwd.fleet.coordinator.service import open_coordinator
from lwd.fleet.launch.plan import FleetPlan
from lwd.fleet.rollout.manager import RolloutManager


def test_online_presets_run_canary_mode():
    assert all(cfg.rollout.enabled for cfg in ONLINE.values())


def test_plan_passes_rollout_settings_to_coordinator_and_learner(tmp_path):
    cfg = OnlineConfig(suite="fake4", num_robots=4, robot_processes=1,
                       rollout=RolloutSettings(canary_share=0.5, min_episodes=6))  # fmt: skip
    plan = FleetPlan(cfg, tmp_path / "online", tmp_path / "data", tmp_path / "init")
    comps = {c.name: c for c in plan.components}
    argv = comps["coordinator"].argv()
    path = argv[argv.index("--rollout") + 1]
    assert argv[argv.index("--registry") + 1] == plan.registry
    rollout = json.loads(open(path).read())["rollout"]
    assert rollout["canary_share"] == 0.5 and rollout["min_episodes"] == 6
    assert json.loads(comps["learner"].config_path.read_text())["canary_mode"] is True
    coord = open_coordinator(str(plan.fleet_root), rollout=rollout, registry=plan.registry)
    try:
        assert isinstance(coord.rollout, RolloutManager) and coord.rollout.s.canary_share == 0.5
    finally:
        coord.close()

    off = FleetPlan(dataclasses.replace(cfg, rollout=RolloutSettings(enabled=False)), tmp_path / "off",
                    tmp_path / "data", tmp_path / "init")  # fmt: skip
    comps = {c.name: c for c in off.components}
    assert "--rollout" not in comps["coordinator"].argv()
    assert json.loads(comps["learner"].config_path.read_text())["canary_mode"] is False


def test_a_one_robot_fleet_deploys_every_version_directly(tmp_path, caplog):
    """A canary is never the whole fleet, so with one robot no version could ever be rolled out: the
    plan switches canary mode off (with a warning) and the learner sets the fleet default itself."""
    cfg = OnlineConfig(suite="fake4", num_robots=1, robot_processes=1)
    assert cfg.rollout.enabled
    with caplog.at_level("WARNING", logger="lwd.fleet.launch.plan"):
        plan = FleetPlan(cfg, tmp_path / "online", tmp_path / "data", tmp_path / "init")
    assert "canary rollout needs >= 2 robots" in caplog.text
    comps = {c.name: c for c in plan.components}
    assert "--rollout" not in comps["coordinator"].argv()
    assert json.loads(comps["learner"].config_path.read_text())["canary_mode"] is False
    two = FleetPlan(dataclasses.replace(cfg, num_robots=2), tmp_path / "two", tmp_path / "data", tmp_path / "init")
    assert json.loads({c.name: c for c in two.components}["learner"].config_path.read_text())["canary_mode"] is True

