"""The launch plan wires canary mode: coordinator gets --rollout, learner gets canary_mode."""

from __future__ import annotations

import dataclasses
import json

from lwd.configs.online import OnlineConfig, RolloutSettings
from lwd.configs.presets import ONLINE
from lwd.configs.processes import load_process_config
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
    assert argv == ["--config", str(comps["coordinator"].config_path)]
    written = json.loads(comps["coordinator"].config_path.read_text())
    assert written["registry"] == plan.registry
    rollout = written["rollout"]
    assert rollout["canary_share"] == 0.5 and rollout["min_episodes"] == 6 and rollout["enabled"] is True
    assert json.loads(comps["learner"].config_path.read_text())["canary_mode"] is True
    coord = open_coordinator(load_process_config("coordinator", argv[1]))  # what the process reads
    try:
        assert isinstance(coord.rollout, RolloutManager) and coord.rollout.s.canary_share == 0.5
    finally:
        coord.close()

    off = FleetPlan(dataclasses.replace(cfg, rollout=RolloutSettings(enabled=False)), tmp_path / "off",
                    tmp_path / "data", tmp_path / "init")  # fmt: skip
    comps = {c.name: c for c in off.components}
    assert json.loads(comps["coordinator"].config_path.read_text())["rollout"]["enabled"] is False
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
    assert json.loads(comps["coordinator"].config_path.read_text())["rollout"]["enabled"] is False
    assert json.loads(comps["learner"].config_path.read_text())["canary_mode"] is False
    two = FleetPlan(dataclasses.replace(cfg, num_robots=2), tmp_path / "two", tmp_path / "data", tmp_path / "init")
    assert json.loads({c.name: c for c in two.components}["learner"].config_path.read_text())["canary_mode"] is True

