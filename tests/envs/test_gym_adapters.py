"""gymnasium both ways: a gymnasium env as an lwd Robot (GymRobot), an lwd robot as a gymnasium env
(LwdGymEnv). Classic-control envs only (no download, no MuJoCo)."""

from __future__ import annotations

import json
import logging
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from lwd.configs.processes import RobotClientConfig
from lwd.data import DatasetWriter, LwdDataset
from lwd.envs.episode_loop import run_episode
from lwd.envs.gym_env import LwdGymEnv, register_gym_envs
from lwd.envs.gym_robot import GymRobot, gym_robot_factory, gym_suite_robot
from lwd.envs.robot import Robot
from lwd.envs.shift import ShiftSpec
from lwd.envs.suites import get_task, held_out_instructions, make_robot
from lwd.fleet.robot.adapters import make_member
from lwd.specs import SuiteSpec
from lwd.types import TaskSpec
from lwd.utils.errors import ConfigError

MC = "MountainCarContinuous-v0"


def pump(obs) -> np.ndarray:
    """MountainCar energy pumping: push in the direction of the velocity (a chunk of 4 actions)."""
    return np.full((4, 1), 1.0 if obs.state[1] >= 0 else -1.0, np.float32)


def test_mountaincar_runs_as_a_robot_and_succeeds():
    robot = GymRobot(MC, terminated_is_success=True, instructions=("drive up the hill",))
    assert isinstance(robot, Robot)
    assert (robot.spec.state_dim, robot.spec.action_dim) == (2, 1)
    assert robot.task.max_steps == 999  # the env's TimeLimit
    ep = run_episode(robot, pump, robot.task, robot.task.instructions[0], seed=3, robot_id="gym-0")
    ep.validate()
    assert ep.success and ep.rewards[-1] == 1.0 and ep.rewards[:-1].sum() == 0
    assert ep.length < 400 and ep.states.shape == (ep.length + 1, 2)
    assert ep.task_id == MC and ep.condition == "lab" and ep.seed == 3
    again = run_episode(robot, pump, robot.task, "x", seed=3)
    np.testing.assert_array_equal(again.states, ep.states)  # the episode seed reproduces the episode


def test_pendulum_action_mapping_time_limit_and_success_fn():
    robot = GymRobot("Pendulum-v1", success_fn=lambda obs, info: False, max_steps=12, condition="field")
    np.testing.assert_allclose(robot.to_env_action(np.array([-1.0])), [-2.0])
    np.testing.assert_allclose(robot.to_env_action(np.array([0.5])), [1.0])
    np.testing.assert_allclose(robot.to_lwd_action(np.array([1.0])), [0.5])
    np.testing.assert_allclose(robot.to_lwd_action(robot.to_env_action(np.array([-0.3]))), [-0.3], atol=1e-6)
    rng = np.random.default_rng(0)
    ep = run_episode(robot, lambda obs: rng.uniform(-1, 1, size=(3, 1)), robot.task, "swing up", seed=1)
    assert ep.length == 12 and not ep.success and ep.condition == "field"
    robot.reset(robot.task.task_id, "swing up", 0)
    res = robot.step(np.array([1.0]))
    assert res.info["env_reward"] <= 0 and not res.done
    with pytest.raises(ValueError, match="shape"):
        robot.step(np.zeros(2))


def test_success_must_be_reported_and_spaces_must_be_supported():
    robot = GymRobot("Pendulum-v1")
    robot.reset("Pendulum-v1", "", 0)
    with pytest.raises(ConfigError, match="success_fn"):
        robot.step(np.zeros(1))
    with pytest.raises(ConfigError, match="not a Box"):
        GymRobot("CartPole-v1", success_fn=lambda o, i: False)  # Discrete actions
    with pytest.raises(ConfigError, match="exactly one"):
        GymRobot()
    with pytest.raises(ConfigError, match="no TimeLimit"):
        GymRobot(lambda: gym.make(MC).unwrapped, terminated_is_success=True)
    with pytest.raises(ConfigError, match="serves task"):
        GymRobot(MC, terminated_is_success=True).reset("other", "", 0)


class DictObsEnv(gym.Env):
    """A 1-d goal env with a Dict observation and ``info["is_success"]``."""

    observation_space = gym.spaces.Dict(
        {"pos": gym.spaces.Box(-1, 1, (1,), np.float32), "goal": gym.spaces.Box(-1, 1, (1,), np.float32)}
    )
    action_space = gym.spaces.Box(-0.5, 0.5, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = np.zeros(1, np.float32)
        self.goal = self.np_random.uniform(-1, 1, 1).astype(np.float32)
        return self._obs(), {}

    def step(self, action):
        self.pos = np.clip(self.pos + np.asarray(action, np.float32), -1, 1)
        ok = bool(abs(self.pos[0] - self.goal[0]) < 0.3)
        return self._obs(), float(ok), ok, False, {"is_success": ok}

    def _obs(self):
        return {"pos": self.pos.copy(), "goal": self.goal.copy()}


def test_dict_observations_need_a_state_fn():
    with pytest.raises(ConfigError, match="state_fn"):
        GymRobot(DictObsEnv, max_steps=20)
    robot = GymRobot(DictObsEnv, max_steps=20, state_fn=lambda o: np.concatenate([o["pos"], o["goal"]]))
    assert robot.spec.state_dim == 2  # measured on one reset

    def go(obs):
        return np.array([[np.sign(obs.state[1] - obs.state[0])]], np.float32)  # full speed to the goal

    ep = run_episode(robot, go, robot.task, "reach", seed=5)
    assert ep.success and ep.length <= 10


def test_robot_client_factory_builds_a_gym_robot(tmp_path):
    cfg = RobotClientConfig(
        client_id="gym", dataplane=str(tmp_path / "fleet"), registry=str(tmp_path / "registry"),
        status_path=str(tmp_path / "status.json"), suite="fake4", robot_ids=("gym-0",), robot_indices=(0,),
        task_weights={"hill": 1.0}, outbox_root=str(tmp_path / "outbox"),
        robot_factory="lwd.envs.gym_robot:gym_robot_factory",
        robot_options={"env_id": MC, "terminated_is_success": True, "max_steps": 300, "suite": "mc",
                       "task_id": "hill", "instructions": ["drive up the hill", "reach the flag"]},
    )  # fmt: skip
    robot, intervener = make_member(cfg, "gym-0", 0)
    assert isinstance(robot, GymRobot) and intervener is None
    assert robot.task.max_steps == 300 and robot.suite.task_ids == ("hill",)
    assert robot.env.spec.max_episode_steps == 300  # gymnasium.make got the limit
    ep = run_episode(robot, pump, robot.task, robot.task.instructions[1], seed=0, robot_id="gym-0")
    assert ep.success
    # collection: episodes of a gym robot go into an lwd dataset like any other
    with DatasetWriter(tmp_path / "ds", robot.spec, robot.spec.control_hz, robot_type="gym") as writer:
        writer.add(ep.replace(source="demo"))
    ds = LwdDataset.open(tmp_path / "ds")
    assert len(ds) == 1 and ds.robot_spec.state_dim == 2
    with pytest.raises(ConfigError, match="unknown option"):
        gym_robot_factory("gym-1", 1, {"env": MC})
    with pytest.raises(ConfigError, match="cannot be loaded"):
        gym_robot_factory("gym-1", 1, {"env_factory": "no_such_module:make", "max_steps": 5})
    by_path = gym_robot_factory(
        "gym-2", 2,
        {"env_factory": "gymnasium.envs.classic_control.continuous_mountain_car:Continuous_MountainCarEnv",
         "max_steps": 50, "terminated_is_success": True},
    )  # fmt: skip
    assert by_path.task.task_id == "gym" and by_path.task.max_steps == 50


def test_suite_file_factory_and_shift_action_channel(caplog):
    task = TaskSpec("swing", ("swing the pendulum up",), "long", 30)
    suite = SuiteSpec("pendulum", (task,))
    field = ShiftSpec(name="field", action_latency=1, action_noise_std=0.0, friction_scale=0.5)
    opts = {"env_id": "Pendulum-v1", "success_fn": "tests_gym_helpers_missing:fn"}
    with pytest.raises(ConfigError, match="cannot be loaded"):
        gym_suite_robot(suite=suite, obs_mode="state", shift=field, options=opts)
    with pytest.raises(ConfigError, match="state only"):
        gym_suite_robot(suite=suite, obs_mode="pixels", shift=field, options={"env_id": "Pendulum-v1"})
    with caplog.at_level(logging.WARNING, logger="lwd.envs.gym_robot"):
        robot = gym_suite_robot(suite=suite, obs_mode="state", shift=field,
                                options={"env_id": "Pendulum-v1", "success_key": "never"})  # fmt: skip
    assert "friction_scale" in caplog.text  # only latency and noise apply to a gym env
    assert robot.suite == suite and robot.task == task and robot.env.spec.max_episode_steps == 30
    plain = GymRobot("Pendulum-v1", success_fn=lambda o, i: False)
    a = robot.reset("swing", "", 4).state
    np.testing.assert_array_equal(a, plain.reset("Pendulum-v1", "", 4).state)
    with pytest.raises(ConfigError, match="info\\['never'\\]"):
        robot.step(np.ones(1))
    robot = gym_suite_robot(suite=suite, obs_mode="state", shift=ShiftSpec(name="field", action_latency=1),
                            options={"env_id": "Pendulum-v1", "terminated_is_success": True})  # fmt: skip
    robot.reset("swing", "", 4)
    delayed = robot.step(np.ones(1)).obs.state
    plain.reset("Pendulum-v1", "", 4)
    np.testing.assert_allclose(delayed, plain.step(np.zeros(1)).obs.state)
    ep = run_episode(robot, lambda obs: np.ones((5, 1)), task, task.instructions[0], seed=0)
    assert ep.condition == "field" and ep.length == 30 and not ep.success


def test_fake4_as_a_gymnasium_env_passes_the_checker():
    env = LwdGymEnv(make_robot("fake4"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checker warns about the unbounded observation Box
        check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (10,) and env.action_space.shape == (2,)
    obs1, info1 = env.reset(seed=7)
    obs2, info2 = env.reset(seed=7)
    np.testing.assert_array_equal(obs1, obs2)
    assert info1 == info2 and obs1.dtype == np.float32
    obs, info = env.reset(seed=1, options={"task_id": "reach-red"})
    expert = env.robot.expert("reach-red")
    for _ in range(25):
        obs, reward, terminated, truncated, info = env.step(expert.action(obs))
        if terminated or truncated:
            break
    assert terminated and not truncated and reward == 1.0 and info["success"]
    env.reset(seed=2, options={"task_id": "reach-blue"})
    for _ in range(25):
        _, reward, terminated, truncated, info = env.step(np.zeros(2, np.float32))
        if terminated or truncated:
            break
    assert truncated and not terminated and reward == 0.0 and not info["success"]


def test_registered_gymnasium_ids():
    assert "lwd/fake4-v0" in register_gym_envs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make("lwd/fake4-v0", shift="field", tasks=["reach-green"])
        _, info = env.reset(seed=0)
    assert info["task_id"] == "reach-green" and env.unwrapped.robot.shift.name == "field"


def test_a_suite_file_runs_on_a_gym_robot(tmp_path):
    path = tmp_path / "mountaincar.json"
    path.write_text(json.dumps({
        "name": "mountaincar", "robot_factory": "lwd.envs.gym_robot:gym_suite_robot",
        "robot_options": {"env_id": MC, "terminated_is_success": True},
        "tasks": [{"id": "hill", "kind": "short", "max_steps": 400, "instructions": ["drive up the hill"],
                   "held_out_instructions": ["reach the flag"]}],
    }))  # fmt: skip
    robot = make_robot(str(path), "state", "lab")
    task = get_task(str(path), "hill")
    assert isinstance(robot, GymRobot) and robot.task == task
    ep = run_episode(robot, pump, task, held_out_instructions(str(path), "hill")[0], seed=0)
    assert ep.success and ep.task_id == "hill"
