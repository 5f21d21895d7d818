"""fake4: shapes, expert solvability, determinism, shift effects, pixels."""

import numpy as np
import pytest

from lwd.envs.episode_loop import run_episode
from lwd.envs.experts import expert_policy
from lwd.envs.fake import IMAGE_SIZE, RGB, STATE_DIM, TASK_IDS
from lwd.envs.robot import Robot
from lwd.envs.shift import ShiftSpec
from lwd.envs.suites import SUITES, make_robot

FAKE = SUITES["fake4"]


def test_implements_robot_protocol_and_shapes():
    robot = make_robot("fake4")
    assert isinstance(robot, Robot)
    obs = robot.reset("reach-red", "go to the red target", seed=0)
    assert obs.state.shape == (STATE_DIM,) and obs.state.dtype == np.float32
    assert obs.images == {} and obs.instruction == "go to the red target"
    res = robot.step(np.zeros(2))
    assert res.reward == 0.0 and not res.success and not res.done
    with pytest.raises(ValueError, match="shape"):
        robot.step(np.zeros(3))


@pytest.mark.parametrize("condition", ["lab", "field"])
def test_expert_solves_every_task(condition):
    robot = make_robot("fake4", shift=condition)
    for i, task in enumerate(FAKE.tasks):
        for e in range(5):
            seed = 100 * i + e
            ep = run_episode(
                robot, expert_policy(robot, task.task_id, seed=seed), task, task.instructions[0], seed
            )
            assert ep.success and ep.rewards[-1] == 1.0 and ep.rewards[:-1].sum() == 0
            assert ep.length < task.max_steps


def test_the_instruction_is_needed_to_know_the_task():
    """All tasks share the scene: the same seed gives the same state whatever the task."""
    robot = make_robot("fake4")
    states = [robot.reset(t, "x", seed=3).state for t in TASK_IDS]
    assert all(np.array_equal(states[0], s) for s in states)


def test_determinism_given_seed():
    def run(seed):
        robot = make_robot("fake4", shift="field")
        task = FAKE.task("reach-blue")
        ep = run_episode(robot, expert_policy(robot, task.task_id, "rollout", seed=seed), task, "b", seed)
        return ep.states, ep.actions

    s1, a1 = run(7)
    s2, a2 = run(7)
    s3, _ = run(8)
    assert np.array_equal(s1, s2) and np.array_equal(a1, a2)
    assert not np.array_equal(s1[0], s3[0])


def test_latency_delays_and_gain_scales_motion():
    lag = make_robot("fake4", shift=ShiftSpec(name="lag", action_latency=2))
    lag.reset("reach-red", "x", 0)
    p0 = lag.observe().state[:2].copy()
    lag.step(np.ones(2))
    lag.step(np.ones(2))
    assert np.allclose(lag.observe().state[:2], p0), "commands take effect only after 2 steps"
    lag.step(np.ones(2))
    assert not np.allclose(lag.observe().state[:2], p0)

    weak = make_robot("fake4", shift=ShiftSpec(name="weak", actuator_gain_scale=0.5))
    strong = make_robot("fake4")
    moves = []
    for r in (weak, strong):
        before = r.reset("reach-red", "x", 0).state[:2].copy()
        moves.append(np.linalg.norm(r.step(np.array([0.5, 0.0])).obs.state[:2] - before))
    assert moves[0] == pytest.approx(moves[1] / 2)


def test_placement_shift_moves_targets():
    lab = make_robot("fake4").reset("reach-red", "x", 0).state
    moved = (
        make_robot("fake4", shift=ShiftSpec(name="m", object_offset=(0.1, 0.0)))
        .reset("reach-red", "x", 0)
        .state
    )
    assert np.allclose(moved[2::2] - lab[2::2], 0.1, atol=1e-6)  # target x's moved, start unchanged
    assert np.allclose(moved[:2], lab[:2])


def test_pixels_mode():
    robot = make_robot("fake4", "pixels")
    assert robot.spec.cameras == ("top",) and robot.spec.state_dim == 2
    obs = robot.reset("reach-red", "x", 0)
    img = obs.images["top"]
    assert img.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and img.dtype == np.uint8
    # red sits top-right: world y up is image up, x right is image right
    rows, cols = np.nonzero(np.all(img == RGB[0], axis=-1))
    assert rows.mean() < IMAGE_SIZE / 2 and cols.mean() > IMAGE_SIZE / 2
