"""Canary mode in the real local fleet loop (learner, coordinator, robot-client processes on fake4)."""

from __future__ import annotations

import sqlite3

import pytest
from online_support import small_fleet_config

from lwd.configs.online import RolloutSettings
from lwd.fleet.registry import PolicyRegistry
from lwd.fleet.rollout_state import RolloutStore
from lwd.pipeline.online import run_online


@pytest.mark.slow
def test_debug_fleet_in_canary_mode_canaries_and_promotes(tmp_path, fake4_dataset, fake4_sft_policy):
    cfg = small_fleet_config(60, rollout=RolloutSettings(check_every_s=0.5))
    summary = run_online(cfg, tmp_path / "run", fake4_dataset, fake4_sft_policy, display=False)
    root = tmp_path / "run" / "online" / "fleet"
    audit = RolloutStore(root).audit()
    canaries = [a for a in audit if a["action"] == "canary"]
    assert canaries and all(len(a["robots"]) == 1 for a in canaries)  # floor(0.25 x 4 robots)
    assert all(a["actor"] == "auto" and a["reason"] for a in audit)
    state = RolloutStore(root).load()
    reg = PolicyRegistry(root / "registry")
    assert reg.assignments()["*"] == state["incumbent"]
    # the learner did not push its versions fleet-wide: the default only moved by promotions
    assert set(state["promoted"]) == {a["version"] for a in audit if a["action"] == "promote"}
    assert state["incumbent"] == 1 or state["incumbent"] in state["promoted"]
    assert len(summary["versions"]) >= 4 and any(a["action"] in ("promote", "rollback") for a in audit)
    # no version other than the first (the learner's bootstrap default) or a promoted one ever ran on
    # more than the canary robot
    with sqlite3.connect(root / "coordinator.db") as c:
        rows = c.execute(
            "SELECT policy_version, COUNT(DISTINCT robot_id) FROM outcomes GROUP BY policy_version"
        )
        for version, robots in rows.fetchall():
            assert robots == 1 or version == 1 or version in state["promoted"], (version, robots)
