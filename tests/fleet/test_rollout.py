"""Canary rollout: decision logic on synthetic outcomes, canary selection, shift detector, manager."""

from __future__ import annotations

import json

import numpy as np
from rollout_support import fleet, record, run_round

from lwd.configs.online import RolloutSettings
from lwd.fleet.ops.operator import operator_action
from lwd.fleet.rollout.decide import decide, looks
from lwd.fleet.rollout.manager import RolloutManager, pick_canary_robots
from lwd.fleet.rollout.shift_detector import check_shift
from lwd.fleet.rollout.state import RolloutStore

S = RolloutSettings(check_every_s=0.0)


def _arms(c, i, task="t"):
    return {task: {"canary": list(c), "incumbent": list(i)}}


def test_looks_double_from_min_task_episodes_to_max():
    assert looks(S) == [4, 8, 16, 32, 64]
    assert looks(RolloutSettings(min_task_episodes=5, max_episodes=30)) == [5, 10, 20, 30]


def test_broken_canary_is_rolled_back_at_the_first_look_with_its_numbers():
    v = decide(_arms([4, 0, 4], [24, 20, 3]), S, looks_done=0)
    assert v.action == "rollback" and "harm detected" in v.reason and v.look == 0
    assert v.stats["canary"]["success_rate"] == 0.0 and v.stats["incumbent"]["episodes"] == 24
    assert min(v.stats["p_values"].values()) < v.stats["level"]


def test_equal_canary_is_promoted_once_both_arms_have_min_episodes():
    early = decide(_arms([4, 3, 1], [12, 9, 3]), S, looks_done=0)
    assert early.action == "watch" and early.look == 0  # a look spent without harm, too few to promote
    assert decide(_arms([5, 4, 1], [12, 9, 3]), S, looks_done=1).action == "watch"  # next look at 8
    v = decide(_arms([8, 6, 2], [24, 18, 6]), S, looks_done=1)
    assert v.action == "promote" and v.look == 1 and abs(v.stats["success_diff"]) < 1e-9
    paused = decide(_arms([8, 6, 2], [24, 18, 6]), S, looks_done=1, paused=True)
    assert paused.action == "watch" and paused.look is None and "paused" in paused.reason


def test_worse_but_not_significant_canary_is_inconclusive_at_the_last_look():
    # success 0.6 vs 0.75: not significant at the last look's level, but outside the 0.1 margin
    v = decide(_arms([64, 38, 10], [64, 48, 10]), S, looks_done=4)
    assert v.action == "rollback" and v.reason.startswith("inconclusive")
    assert decide(_arms([20, 12, 3], [64, 48, 10]), S, looks_done=2).action == "watch"


def test_false_rollback_rate_under_equal_versions_is_at_most_alpha():
    rng = np.random.default_rng(1)
    plan, rollbacks, trials = looks(S), 0, 300
    for _ in range(trials):
        arms = {t: {"canary": [0, 0, 0], "incumbent": [0, 0, 0]} for t in ("a", "b")}
        done = 0
        while done < len(plan):
            for t, p in (("a", 0.3), ("b", 0.8)):  # 1 canary robot and 3 incumbent robots per task
                for arm, n in (("canary", 1), ("incumbent", 3)):
                    for _ in range(n):
                        c = arms[t][arm]
                        c[0] += 1
                        c[1] += rng.random() < p
                        c[2] += rng.random() < 0.4
            v = decide(arms, S, done)
            if v.action == "rollback" and v.reason.startswith("harm"):
                rollbacks += 1
                break
            if v.action != "watch":
                break
            if v.look is not None:
                done = v.look + 1
    assert rollbacks / trials <= S.alpha + 0.02


def test_canary_robots_respect_the_share_and_spread_over_tasks():
    # paper allocation: 1 robot on each of 4 short tasks, 3 on each of 4 long tasks
    tasks = {f"r{i:02d}": f"short{i}" for i in range(4)}
    tasks |= {f"r{4 + 3 * j + k:02d}": f"long{j}" for j in range(4) for k in range(3)}
    picked = pick_canary_robots(tasks, set(), 0.25, seed=7)
    assert len(picked) == 4 and {tasks[r] for r in picked} == {f"long{j}" for j in range(4)}
    assert len(pick_canary_robots({f"r{i}": "t" for i in range(7)}, set(), 0.25)) == 1  # floor, >= 1
    assert pick_canary_robots({"r0": "t"}, set(), 0.5) == []  # never the whole fleet
    assert "r1" not in pick_canary_robots({"r0": "a", "r1": "b", "r2": "a", "r3": "b"}, {"r1"}, 0.5)


def test_shift_detector_flags_a_drop_that_persists_for_two_windows():
    steady = [("a", i % 2, 0) for i in range(120)]
    assert check_shift(steady, 40, 0, 0.01) == (3, [])
    one_bad = steady + [("a", 0, 1)] * 40
    assert check_shift(one_bad, 40, 3, 0.01) == (4, [])  # one bad window: not yet a shift
    dropped = one_bad + [("a", 0, 1)] * 40
    checked, found = check_shift(dropped, 40, 4, 0.01)
    assert checked == 5 and len(found) == 1 and found[0]["window"] == 4
    assert "success drop" in found[0]["signal"] and "intervention rise" in found[0]["signal"]
    assert check_shift(dropped, 40, 5, 0.01) == (5, [])  # each window is checked once


def test_shift_detector_false_alarm_rate_on_a_long_healthy_incumbent():
    # 30 windows of 40 episodes of an unchanged policy (4 tasks, success 0.6, intervention 0.4):
    # the detector looks 28 times per run; alarms must stay rare over the whole run
    rng = np.random.default_rng(0)
    runs, alarmed = 200, 0
    for _ in range(runs):
        rows = [(f"t{i % 4}", int(rng.random() < 0.6), int(rng.random() < 0.4)) for i in range(1200)]
        alarmed += bool(check_shift(rows, 40, 0, 0.01)[1])
    assert alarmed / runs <= 0.05, alarmed
def good(v, task, k):
    return k % 4 != 0, k % 5 == 0


def test_manager_canaries_rolls_back_a_broken_version_and_promotes_a_good_one(tmp_path):
    reg, db, tasks = fleet(tmp_path, {"a": 4, "b": 4})
    mgr = RolloutManager(tmp_path, reg, db, S)
    broken = reg.publish({"w": b"v2"})
    (rec,) = mgr.tick()
    assert rec["action"] == "canary" and rec["version"] == broken and len(rec["robots"]) == 2
    assert {tasks[r] for r in rec["robots"]} == {"a", "b"}

    def quality(v, task, k):
        return (False, True) if v == broken else good(v, task, k)

    for _ in range(6):
        run_round(db, reg, tasks, quality)
        assert sum(reg.resolve_version(r) == broken for r in tasks) <= 2
        out = mgr.tick()
        if out:
            break
    assert [r["action"] for r in out] == ["rollback"] and "harm detected" in out[0]["reason"]
    st = json.loads((tmp_path / "rollout" / "state.json").read_text())
    assert st["rejected"] == [broken] and st["canary"] is None and st["incumbent"] == 1
    assert all(reg.resolve_version(r) == 1 for r in tasks)
    assert mgr.tick() == []  # a rejected version is never canaried again

    better = reg.publish({"w": b"v3"})
    assert mgr.tick()[0]["action"] == "canary"
    mgr2 = RolloutManager(tmp_path, reg, db, S)  # a restarted coordinator resumes the canary
    for _ in range(10):
        run_round(db, reg, tasks, quality)
        out = mgr2.tick()
        if out:
            break
    assert [r["action"] for r in out] == ["promote"] and out[0]["version"] == better
    assert out[0]["stats"]["canary"]["episodes"] >= S.min_episodes
    assert reg.assignments() == {"*": better} and all(reg.resolve_version(r) == better for r in tasks)
    actions = [r["action"] for r in RolloutStore(tmp_path).audit()]
    assert actions == ["canary", "rollback", "canary", "promote"]


def test_newer_versions_while_a_canary_runs(tmp_path):
    reg, db, tasks = fleet(tmp_path, {"a": 2, "b": 2})
    mgr = RolloutManager(tmp_path, reg, db, S)
    v2 = reg.publish({"w": b"2"})
    mgr.tick()
    v3, v4 = reg.publish({"w": b"3"}), reg.publish({"w": b"4"})
    assert mgr.tick() == []  # "finish": the v2 canary keeps running
    assert RolloutStore(tmp_path).load()["canary"]["version"] == v2
    sup = RolloutManager(tmp_path, reg, db, RolloutSettings(check_every_s=0.0, on_newer="supersede"))
    (rec,) = sup.tick()
    st = RolloutStore(tmp_path).load()
    assert (
        rec["action"] == "canary"
        and rec["version"] == v4
        and st["superseded"] == [v2]
        and st["skipped"] == [v3]
    )
    assert sum(reg.resolve_version(r) == v4 for r in tasks) == 1 and reg.resolve_version("robot-000") in (
        1,
        v4,
    )


def test_shift_alert_pauses_promotion_until_an_operator_resumes(tmp_path):
    settings = RolloutSettings(check_every_s=0.0, shift_window=20)
    reg, db, tasks = fleet(tmp_path, {"a": 4})
    mgr = RolloutManager(tmp_path, reg, db, settings)
    for k in range(20):
        record(db, f"robot-00{k % 4}", "a", 1, True, False)
    for k in range(40):  # two windows: the world changed, not the policy
        record(db, f"robot-00{k % 4}", "a", 1, False, True)
    out = mgr.tick()
    assert [r["action"] for r in out] == ["alert", "pause"] and "fleet-wide shift" in out[0]["reason"]
    reg.publish({"w": b"2"})
    assert mgr.tick() == []  # paused: no canary starts
    st = RolloutStore(tmp_path).load()
    assert st["paused"] and st["alerts"][-1]["active"] and st["canary"] is None
    rec = operator_action(tmp_path, "resume", actor="alice", reason="checked the cameras")
    assert rec["actor"] == "operator:alice"
    assert not RolloutStore(tmp_path).load()["alerts"][-1]["active"]
    assert mgr.tick()[0]["action"] == "canary"


def test_only_tasks_both_arms_ran_count_and_a_lone_canary_task_uses_the_incumbents_history(tmp_path):
    lone = {
        "a": {"canary": [12, 0, 12], "incumbent": [0, 0, 0]},
        "b": {"canary": [0, 0, 0], "incumbent": [30, 20, 3]},
    }
    v = decide(lone, S, looks_done=0)
    assert v.action == "watch" and v.stats["comparable_tasks"] == [] and v.stats["canary"]["episodes"] == 0

    reg, db, tasks = fleet(tmp_path, {"a": 1, "b": 1, "c": 1, "d": 1})  # the debug preset's fleet
    for k in range(8):
        run_round(db, reg, tasks, lambda v, t, j, k=k: good(v, t, k))
    mgr = RolloutManager(tmp_path, reg, db, S)
    bad = reg.publish({"w": b"2"})
    (rec,) = mgr.tick()
    (robot,) = rec["robots"]
    for k in range(8, 30):
        run_round(db, reg, tasks, lambda v, t, j, k=k: (False, True) if v == bad else good(v, t, k))
        if mgr.tick():
            break
    st = RolloutStore(tmp_path).load()
    assert st["rejected"] == [bad] and reg.resolve_version(robot) == 1
    assert st["last_decision"]["stats"]["comparable_tasks"] == [tasks[robot]]


def test_robots_known_only_from_heartbeats_can_run_a_canary(tmp_path):
    from lwd.fleet.dataplane.events import HeartbeatEvent
    from lwd.fleet.dataplane.state import CoordinatorState
    from lwd.fleet.registry.registry import PolicyRegistry

    reg = PolicyRegistry(tmp_path / "registry")
    reg.set_default(reg.publish({"w": b"1"}))
    db = CoordinatorState(tmp_path / "coordinator.db")  # task claims in Redis: no rows in `tasks`
    beats = [HeartbeatEvent(f"r{i}", "ab"[i % 2], "running", 1, 1.0) for i in range(4)]
    beats.append(HeartbeatEvent("r9", "a", "stopped", 1, 1.0))
    db.commit([], [], beats)
    reg.publish({"w": b"2"})
    (rec,) = RolloutManager(tmp_path, reg, db, S).tick()
    assert rec["action"] == "canary" and len(rec["robots"]) == 1 and rec["stats"]["fleet_robots"] == 4
