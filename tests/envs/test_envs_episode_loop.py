"""run_episode contract (on the fake robot: fast)."""

import numpy as np
import pytest

from lwd.envs.episode_loop import run_episode
from lwd.envs.experts import NOISE_PRESETS, expert_policy, resolve_noise
from lwd.envs.suites import SUITES, make_robot
from lwd.utils.errors import ConfigError

TASK = SUITES["fake4"].task("reach-green")


def test_success_episode_record():
    robot = make_robot("fake4", shift="field")
    ep = run_episode(
        robot,
        expert_policy(robot, TASK.task_id, seed=1),
        TASK,
        "go to the green target",
        1,
        robot_id="r3",
        policy_version=5,
        source="demo",
    )
    ep.validate()
    t = ep.length
    assert ep.success and ep.states.shape == (t + 1, 10) and ep.actions.shape == (t, 2)
    assert ep.rewards.tolist() == [0.0] * (t - 1) + [1.0]
    assert not ep.intervention.any()
    assert (ep.robot_id, ep.policy_version, ep.source, ep.condition, ep.seed) == ("r3", 5, "demo", "field", 1)
    assert ep.task_id == "reach-green" and ep.instruction == "go to the green target"


def test_time_limit_and_chunks():
    robot = make_robot("fake4")
    calls = []

    def idle(obs):
        calls.append(obs)
        return np.zeros((7, 2))

    ep = run_episode(robot, idle, TASK, "x", 0, source="rollout")
    assert not ep.success and ep.length == TASK.max_steps and ep.rewards.sum() == 0
    assert len(calls) == -(-TASK.max_steps // 7)  # one policy call per 7-step chunk
    assert np.all(ep.states[0] == ep.states[-1])


def test_chunk_is_cut_at_success():
    """An open-loop straight line through the target: execution must stop on success mid-chunk."""
    robot = make_robot("fake4")
    calls = []

    def line(obs):
        calls.append(1)
        d = obs.state[6:8] - obs.state[:2]  # green target - position
        return np.repeat((d / np.abs(d).max())[None], 50, 0)

    ep = run_episode(robot, line, TASK, "x", 2)
    assert ep.success and ep.length < 20 and len(calls) == 1


def test_pixels_episode_has_image_streams():
    robot = make_robot("fake4", "pixels")
    ep = run_episode(robot, expert_policy(robot, TASK.task_id, seed=0), TASK, "x", 0)
    assert ep.images["top"].shape == (ep.length + 1, 16, 16, 3) and ep.states.shape[1] == 2


def test_bad_chunk_shape_is_rejected():
    robot = make_robot("fake4")
    with pytest.raises(ValueError, match=r"actions \[h, 2\]"):
        run_episode(robot, lambda o: np.zeros((3, 4)), TASK, "x", 0)


def test_play_is_failure_data_and_lucky_success_is_relabelled():
    robot = make_robot("fake4")
    outcomes = []
    for seed in range(12):
        ep = run_episode(
            robot, expert_policy(robot, TASK.task_id, "play", seed=seed), TASK, "x", seed, source="play"
        )
        assert ep.source == ("rollout" if ep.success else "play")
        outcomes.append(ep.success)
    assert not all(outcomes), "play noise must produce failures"


def test_noise_modes_are_ordered_and_configurable():
    robot = make_robot("fake4", shift="field")
    rates = {}
    for mode in ("demo", "rollout", "play"):
        wins = 0
        for seed in range(20):
            ep = run_episode(robot, expert_policy(robot, TASK.task_id, mode, seed=seed), TASK, "x", seed)
            wins += ep.success
        rates[mode] = wins / 20
    assert rates["demo"] == 1.0 and rates["play"] < rates["demo"]
    assert resolve_noise("rollout", gaussian_std=0.9).gaussian_std == 0.9
    assert NOISE_PRESETS["rollout"].gaussian_std > NOISE_PRESETS["demo"].gaussian_std
    with pytest.raises(ConfigError, match="unknown expert noise mode 'wild'"):
        resolve_noise("wild")


def test_execute_stops_for_success_stop_and_time_limit():
    robot = make_robot("fake4")
    robot.reset(TASK.task_id, "x", 0)
    res = robot.execute(np.zeros((4, 2)), stop=lambda o: robot.t == 2)
    assert res.stopped_by == "stop" and len(res.steps) == 2 and res.actions.shape == (2, 2)
    res = robot.execute(np.zeros((4, 2)))
    assert res.stopped_by == "end_of_chunk" and len(res.steps) == 4
    res = robot.execute(np.zeros((100, 2)))
    assert res.stopped_by == "time_limit" and robot.t == TASK.max_steps and res.done and not res.success
    with pytest.raises(RuntimeError, match="reset"):
        robot.step(np.zeros(2))


class _TakeOverAt:
    """A human stand-in that takes over at the given steps for ``hold`` steps, acting zeros."""

    def __init__(self, steps, hold=2):
        self.steps, self.hold, self.held = set(steps), hold, 0

    def reset(self, task, instruction, seed=0):
        self.held = 0

    def should_take_over(self, obs, proposed_action, t):
        return t in self.steps

    def act(self, obs):
        self.held += 1
        return np.zeros(2, np.float32)

    def should_hand_back(self, obs, t):
        done = self.held >= self.hold
        self.held = 0 if done else self.held
        return done


def test_take_overs_record_the_rejected_proposal_at_the_same_state():
    """At a take-over at a chunk start the rejected proposal is that chunk; mid-chunk the policy is
    asked once more at the take-over state and that fresh proposal is recorded."""
    robot = make_robot("fake4")
    seen = []

    def policy(obs):
        seen.append(obs.state.copy())
        return np.full((7, 2), 0.01 * len(seen), np.float32)

    ep = run_episode(robot, policy, TASK, "x", 0, _TakeOverAt({3, 12}), source="online")
    # calls: t=0 (chunk, stopped after 3 steps), t=3 (fresh proposal, rejected), t=5 (chunk 5..11),
    # t=12 (chunk start, rejected), t=14, ...
    assert ep.rejected_steps.tolist() == [3, 12]
    assert ep.intervention[[3, 4, 12, 13]].all() and not ep.intervention[[0, 1, 2, 5, 11, 14]].any()
    np.testing.assert_allclose(ep.rejected_actions[:, 0, 0], [0.02, 0.04])
    np.testing.assert_array_equal(seen[1], ep.states[3])
    np.testing.assert_array_equal(seen[3], ep.states[12])
    assert ep.rejected_actions.shape == (2, 7, 2)
