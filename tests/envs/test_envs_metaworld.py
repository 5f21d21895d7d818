"""Meta-World adapter (needs MuJoCo). Scenes are built once per module to keep this fast."""

import warnings

import numpy as np
import pytest

from lwd.envs.episode_loop import run_episode
from lwd.envs.experts import expert_policy
from lwd.envs.suites import SUITES, make_robot

pytestmark = [pytest.mark.metaworld, pytest.mark.filterwarnings("ignore")]
MW8 = SUITES["mw8"]


@pytest.fixture(scope="module")
def lab():
    warnings.filterwarnings("ignore")
    return make_robot("mw8", "state", "lab")


@pytest.fixture(scope="module")
def field():
    return make_robot("mw8", "state", "field")


def test_reset_step_shapes_and_sparse_reward(lab):
    obs = lab.reset("pick-place", "pick up the puck", seed=3)
    env = lab.scene("pick-place").env
    assert lab.spec.state_dim == 39 and lab.spec.action_dim == 4
    assert obs.state.shape == (39,) and obs.state.dtype == np.float32 and obs.images == {}
    assert np.allclose(obs.state[-3:], env._target_pos), "the goal must be observable"
    res = lab.step(np.array([0.0, 0.0, 0.0, -1.0]))
    assert res.reward == 0.0 and not res.done and res.obs.state.shape == (39,)
    assert "shaped_reward" in res.info


def test_expert_success_gives_reward_one_on_last_step(lab):
    for task_id in ("pick-place", "drawer-open"):
        task = MW8.task(task_id)
        for seed in (0, 1):
            ep = run_episode(lab, expert_policy(lab, task_id, seed=seed), task, task.instructions[0], seed)
            assert ep.success and ep.length < task.max_steps
            assert ep.rewards[-1] == 1.0 and ep.rewards.sum() == 1.0


def test_time_limit_ends_a_failed_episode(lab):
    task = MW8.task("push")
    ep = run_episode(lab, lambda o: np.zeros((10, 4)), task, "push", 0)
    assert not ep.success and ep.length == task.max_steps and ep.rewards.sum() == 0


def test_determinism_given_seed(lab, field):
    def first_states(robot, seed):
        robot.reset("push", "p", seed)
        out = [robot.observe().state]
        for _ in range(5):
            out.append(robot.step(np.array([0.5, 0.2, -0.3, 1.0])).obs.state)
        return np.stack(out)

    assert np.array_equal(first_states(field, 11), first_states(field, 11))
    assert not np.array_equal(first_states(field, 11)[0], first_states(field, 12)[0])
    assert np.array_equal(first_states(lab, 11), first_states(lab, 11))


def test_shift_changes_the_model_and_the_placement(lab, field):
    s = field.shift
    a, b = lab.scene("pick-place").env, field.scene("pick-place").env
    obj = a.model.body("obj").id
    assert b.model.body_mass[obj] == pytest.approx(a.model.body_mass[obj] * s.object_mass_scale)
    geom = a.model.geom("objGeom").id
    assert b.model.geom_friction[geom, 0] == pytest.approx(a.model.geom_friction[geom, 0] * s.friction_scale)
    robot_geom = a.model.geom("rightpad_geom").id
    assert b.model.geom_friction[robot_geom, 0] == a.model.geom_friction[robot_geom, 0]
    assert b.action_scale == pytest.approx(a.action_scale * s.actuator_gain_scale)
    assert np.allclose(b.model.actuator_gainprm[:, 0], a.model.actuator_gainprm[:, 0] * s.actuator_gain_scale)
    assert np.allclose(b.model.light_diffuse, a.model.light_diffuse * s.light_scale)
    # placement: the object's x/y are sampled from the scaled, offset range
    lab_xy, field_xy = [], []
    for seed in range(8):
        lab_xy.append(lab.reset("pick-place", "p", seed).state[4:6])
        field_xy.append(field.reset("pick-place", "p", seed).state[4:6])
    low, high = b._random_reset_space.low[:2], b._random_reset_space.high[:2]
    centre = (a._random_reset_space.low[:2] + a._random_reset_space.high[:2]) / 2
    assert np.allclose((low + high) / 2, centre + np.array(s.object_offset))
    assert np.all((np.array(field_xy) >= low - 1e-6) & (np.array(field_xy) <= high + 1e-6))
    assert not np.allclose(lab_xy, field_xy)


def test_pixels_shape_dtype_and_upright():
    from lwd.envs.mw_render import camera_needs_rot180

    robot = make_robot("mw8", "pixels", "lab", cameras=("corner", "topview"))
    assert robot.spec.state_dim == 4 and robot.spec.cameras == ("corner", "topview")
    obs = robot.reset("pick-place", "p", 0)
    assert obs.state.shape == (4,)
    for cam in ("corner", "topview"):
        img = obs.images[cam]
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and img.std() > 5
    data = robot.scene("pick-place").env.data
    assert camera_needs_rot180(data, "corner") and not camera_needs_rot180(data, "topview")
    # Upright property: the corner camera looks down at the table from above, so the black
    # background is at the top and the table/floor at the bottom of an upright image.
    img = obs.images["corner"].astype(float).mean(-1)
    assert img[:16].mean() < img[-16:].mean() - 20
    step = robot.step(np.zeros(4)).obs
    assert set(step.images) == {"corner", "topview"}
