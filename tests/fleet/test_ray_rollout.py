"""The canary rollout inside the Ray-hosted coordinator: on the test's local Ray cluster, in canary
mode with the registry index in Redis, a deliberately broken policy is canaried on one robot and
rolled back for harm, then a copy of the running policy is canaried on one robot and promoted --
read from the state the coordinator's rollout manager writes (``rollout/state.json``,
``audit.jsonl``), the registry's assignments and the coordinator's outcome table.

Both canaries are compared with v1 (the broken one first, so the copy's control is v1's long
history, not a short canary window). The settings keep the verdicts far from the thresholds: 16
episodes per arm before the first look and a family-wise alpha of 0.001, because the pooled
Cochran-Mantel-Haenszel test has no continuity correction and false-alarms on a few canary failures
against an incumbent that almost always succeeds (the scripted expert rescues most episodes)."""

from __future__ import annotations

import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'lwd[scale]')")

import torch  # noqa: E402
from ray_support import ray_config  # noqa: E402

from lwd.configs.online import Budget, LearnerSettings, RolloutSettings  # noqa: E402
from lwd.fleet.registry.registry import PolicyRegistry  # noqa: E402
from lwd.fleet.registry.versions import policy_files  # noqa: E402
from lwd.fleet.rollout.state import RolloutStore  # noqa: E402
from lwd.pipeline import online as online_stage  # noqa: E402
from lwd.policy.checkpoint import load_policy, save_policy  # noqa: E402


def decided(root: Path, version: int) -> dict | None:
    """The rollout manager's promote / rollback audit record of ``version``, if any yet."""
    try:
        audit = RolloutStore(root).audit()
    except (OSError, ValueError):
        return None
    return next((a for a in audit if a["version"] == version and a["action"] in ("promote", "rollback")), None)


class Publisher(threading.Thread):
    """Once the fleet runs v1: publishes a broken policy (constant saturated actions), waits for its
    decision, then publishes a copy of v1's policy and waits for its decision; sets ``done``."""

    def __init__(self, root: Path, index: str, policy_dir: Path):
        super().__init__(daemon=True)
        self.root, self.index, self.policy_dir = root, index, policy_dir
        self.done, self.stop = threading.Event(), threading.Event()
        self.versions: dict[str, int] = {}
        self.error: BaseException | None = None

    def publish(self, reg: PolicyRegistry, broken: bool) -> int:
        policy, stats, _ = load_policy(self.policy_dir)
        if broken:
            with torch.no_grad():
                policy.action_expert.out.weight.zero_()
                policy.action_expert.out.bias.fill_(10.0)
        with tempfile.TemporaryDirectory() as tmp:
            path = save_policy(Path(tmp) / "p", policy, stats, policy.config, version=0, parent_version=1)
            return reg.publish(policy_files(path), parent=1, extra={"note": "broken" if broken else "copy of v1"})

    def wait(self, version: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.stop.is_set() and time.monotonic() < deadline and decided(self.root, version) is None:
            time.sleep(0.5)

    def run(self) -> None:
        try:
            reg = PolicyRegistry(self.root / "registry", index=self.index)
            while not self.stop.is_set() and not reg.versions():
                time.sleep(0.2)
            self.stop.wait(6.0)  # let the incumbent collect some episodes first
            for kind in ("broken", "good"):
                if self.stop.is_set():
                    return
                self.versions[kind] = self.publish(reg, broken=kind == "broken")
                self.wait(self.versions[kind], 90.0)
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            self.done.set()


def test_canary_rollout_in_the_ray_coordinator_promotes_a_good_version_and_rolls_back_a_broken_one(
    tmp_path, monkeypatch, ray_cluster, redis_url, fake4_dataset, fake4_sft_policy
):
    index = redis_url.rsplit("/", 1)[0] + "/1"  # the registry index in Redis, as across machines
    learner = LearnerSettings(publish_every=100_000, checkpoint_every=100_000, batch_size=16,
                              min_online_transitions=100)  # fmt: skip  (the learner publishes only v1)
    # 16 episodes per arm before the first look; a tight family-wise alpha and a +-0.25 margin
    rollout = RolloutSettings(check_every_s=0.5, shift_window=0, min_episodes=16, min_task_episodes=16,
                              alpha=0.001, margin=0.25)  # fmt: skip
    cfg = ray_config(redis_url, registry_index=index, learner=learner, rollout=rollout,
                     budget=Budget(max_learner_steps=None, max_wall_s=240.0))  # fmt: skip
    root = tmp_path / "run" / "online" / "fleet"
    publisher = Publisher(root, index, fake4_sft_policy)
    make_fleet = online_stage.make_fleet

    def stop_when_decided(*args, **kw):  # the stage ends as soon as both versions are decided
        fleet = make_fleet(*args, **kw)
        budget = fleet.budget_reason
        fleet.budget_reason = lambda started: "both decided" if publisher.done.is_set() else budget(started)
        return fleet

    monkeypatch.setattr(online_stage, "make_fleet", stop_when_decided)
    publisher.start()
    try:
        summary = online_stage.run_online(cfg, tmp_path / "run", fake4_dataset, fake4_sft_policy, display=False)
    finally:
        publisher.stop.set()
        publisher.join()
    assert publisher.error is None, publisher.error
    assert summary["stop_reason"] == "both decided"
    good, broken = publisher.versions["good"], publisher.versions["broken"]
    audit = RolloutStore(root).audit()
    state = RolloutStore(root).load()
    canaries = {a["version"]: a for a in audit if a["action"] == "canary"}
    assert {good, broken} <= set(canaries) and all(len(canaries[v]["robots"]) == 1 for v in (good, broken))
    promote, rollback = decided(root, good), decided(root, broken)
    assert promote["action"] == "promote" and promote["actor"] == "auto", audit
    assert rollback["action"] == "rollback" and "harm" in rollback["reason"], audit
    assert good in state["promoted"] and broken in state["rejected"] and state["incumbent"] == good
    reg = PolicyRegistry(root / "registry", index=index)
    assert reg.assignments()["*"] == good  # the promoted copy is the fleet default; the broken one never was
    with sqlite3.connect(root / "coordinator.db") as c:
        (robots,) = c.execute(
            "SELECT COUNT(DISTINCT robot_id) FROM outcomes WHERE policy_version = ?", (broken,)
        ).fetchone()
    assert robots == 1, "the broken version ran on exactly the canary robot"
