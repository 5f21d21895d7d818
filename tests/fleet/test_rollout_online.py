"""Canary mode in the real local fleet loop (learner, coordinator, robot-client processes on fake4)."""

from __future__ import annotations

import sqlite3

import pytest
from online_support import small_fleet_config

from lwd.configs.online import RolloutSettings
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.fleet.rollout.state import RolloutStore
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


def _publish_broken_version(registry_root, policy_dir, stop, published):
    """Once the fleet runs v1, publish a deliberately broken policy: its action expert outputs a
    constant velocity of +10, so every action saturates at +1 whatever the observation."""
    import tempfile
    import time
    from pathlib import Path

    import torch

    from lwd.fleet.registry.versions import policy_files
    from lwd.policy.checkpoint import load_policy, save_policy

    reg = PolicyRegistry(registry_root)
    while not stop.is_set() and not reg.versions():
        time.sleep(0.2)
    stop.wait(8.0)  # let the incumbent collect some episodes first
    if stop.is_set():
        return
    policy, stats, _ = load_policy(policy_dir)
    with torch.no_grad():
        policy.action_expert.out.weight.zero_()
        policy.action_expert.out.bias.fill_(10.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_policy(Path(tmp) / "broken", policy, stats, policy.config, version=0, parent_version=1)
        published.append(reg.publish(policy_files(path), parent=1, extra={"note": "deliberately broken"}))


def test_a_broken_policy_in_the_real_fleet_stays_on_the_canary_and_is_rolled_back(
    tmp_path, fake4_dataset, fake4_sft_policy
):
    import threading

    from lwd.configs.online import Budget, LearnerSettings

    learner = LearnerSettings(publish_every=100_000, checkpoint_every=100_000, batch_size=16,
                              min_online_transitions=100)  # fmt: skip  (the learner publishes only v1)
    cfg = small_fleet_config(
        learner=learner, budget=Budget(max_learner_steps=None, max_wall_s=55.0),
        rollout=RolloutSettings(check_every_s=0.5, shift_window=0),  # canary only: no shift pauses
    )  # fmt: skip
    root = tmp_path / "run" / "online" / "fleet"
    stop, published = threading.Event(), []
    injector = threading.Thread(
        target=_publish_broken_version, args=(root / "registry", fake4_sft_policy, stop, published)
    )
    injector.start()
    try:
        run_online(cfg, tmp_path / "run", fake4_dataset, fake4_sft_policy, display=False)
    finally:
        stop.set()
        injector.join()
    assert published, "the broken version was published during the run"
    broken = published[0]
    state = RolloutStore(root).load()
    audit = RolloutStore(root).audit()
    rollbacks = [a for a in audit if a["action"] == "rollback" and a["version"] == broken]
    assert rollbacks and rollbacks[0]["actor"] == "auto", audit
    rb = rollbacks[0]
    # Rolled back for harm; or, when CPU load leaves the incumbent few episodes of the canary's task in
    # the window (the exact tests then cannot reach their level), at the last look as inconclusive,
    # which is only allowed here with a measured success drop beyond the margin.
    harm = "harm" in rb["reason"]
    assert harm or ("inconclusive" in rb["reason"] and rb["stats"]["success_diff"] < -cfg.rollout.margin), rb
    assert broken in state["rejected"] and not any(a["action"] == "promote" and a["version"] == broken for a in audit)
    assert PolicyRegistry(root / "registry").assignments()["*"] != broken
    with sqlite3.connect(root / "coordinator.db") as c:
        (robots,) = c.execute(
            "SELECT COUNT(DISTINCT robot_id) FROM outcomes WHERE policy_version = ?", (broken,)
        ).fetchone()
    assert 1 <= robots <= 1, "the broken version ran on exactly the canary share (1 of 4 robots)"
