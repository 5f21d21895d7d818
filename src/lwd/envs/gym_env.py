"""An lwd robot as a ``gymnasium.Env`` (:class:`LwdGymEnv`), e.g. to train a gymnasium-based agent
on ``fake4`` or ``mw8``. The other direction (a gymnasium env as an lwd robot) is
:mod:`lwd.envs.gym_robot`.

Spaces: ``observation_space`` = ``Box(-inf, inf, (d,), float32)`` (``Observation.state``; camera
images and the instruction are not part of the observation: the instruction and task id are in
``info``), ``action_space`` = ``Box(-1, 1, (a,), float32)``.

Episodes: ``reset(seed=..., options={"task_id": ..., "instruction": ...})`` starts one episode of the
given task (default: a task drawn from ``tasks`` with the env's seeded generator, and one of its
training instructions); the robot's episode seed is drawn from the same generator, so
``reset(seed=s)`` is reproducible. ``step`` returns ``(obs, reward, terminated, truncated, info)``
with lwd's sparse reward (1.0 on the success step), ``terminated`` = success, ``truncated`` = the
episode ended without success (time limit, or the robot ended it), and ``info["success"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from lwd.envs.robot import Robot
from lwd.types import TaskSpec
from lwd.utils.errors import ConfigError


class LwdGymEnv(gym.Env):
    """A :class:`~lwd.envs.robot.Robot` exposed as a gymnasium environment (module docstring).

    ``tasks``: the tasks to draw from (default: ``robot.suite.tasks``, which simulated robots have).
    """

    metadata = {"render_modes": []}

    def __init__(self, robot: Robot, tasks: Sequence[TaskSpec] | None = None) -> None:
        super().__init__()
        if tasks is None:
            suite = getattr(robot, "suite", None)
            if suite is None:
                raise ConfigError("LwdGymEnv: the robot has no suite; pass tasks=[TaskSpec, ...]")
            tasks = suite.tasks
        self.tasks = tuple(tasks)
        if not self.tasks:
            raise ConfigError("LwdGymEnv: no tasks")
        self.robot = robot
        spec = robot.spec
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(spec.state_dim,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(spec.action_dim,), dtype=np.float32)
        self._task: TaskSpec = self.tasks[0]
        self._t = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        if "task_id" in options:
            by_id = {t.task_id: t for t in self.tasks}
            if options["task_id"] not in by_id:
                raise ConfigError(f"unknown task {options['task_id']!r}; valid: {', '.join(by_id)}")
            self._task = by_id[options["task_id"]]
        else:
            self._task = self.tasks[int(self.np_random.integers(len(self.tasks)))]
        instructions = self._task.instructions
        instruction = (
            options.get("instruction") or instructions[int(self.np_random.integers(len(instructions)))]
        )
        episode_seed = int(self.np_random.integers(2**31 - 1))
        obs = self.robot.reset(self._task.task_id, instruction, episode_seed)
        self._t = 0
        info = {"task_id": self._task.task_id, "instruction": instruction, "episode_seed": episode_seed}
        return self._state(obs.state), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        res = self.robot.step(np.asarray(action, dtype=np.float32))
        self._t += 1
        ended = res.done or self._t >= self._task.max_steps
        terminated = bool(res.success)
        truncated = bool(ended and not res.success)
        info = {"success": bool(res.success), "task_id": self._task.task_id, **res.info}
        return self._state(res.obs.state), float(res.reward), terminated, truncated, info

    def _state(self, state: np.ndarray) -> np.ndarray:
        return np.asarray(state, dtype=np.float32).reshape(self.observation_space.shape)

    def close(self) -> None:
        close = getattr(self.robot, "close", None)
        if callable(close):
            close()


def make_lwd_gym_env(suite: str = "fake4", shift: str | None = "lab", tasks: Sequence[str] = ()) -> LwdGymEnv:
    """A simulated lwd suite (``make_robot(suite, "state", shift)``) as a gymnasium env, optionally
    restricted to ``tasks`` (task ids); the entry point of the ``lwd/<suite>-v0`` registrations."""
    from lwd.envs.suites import get_task, make_robot

    robot = make_robot(suite, "state", shift)
    chosen = [get_task(suite, t) for t in tasks] if tasks else None
    return LwdGymEnv(robot, chosen)


def register_gym_envs() -> tuple[str, ...]:
    """Register ``lwd/fake4-v0`` and ``lwd/mw8-v0`` with gymnasium (idempotent) and return the ids, so
    ``gymnasium.make("lwd/fake4-v0", shift="field", tasks=["reach-red"])`` works. No ``TimeLimit``
    wrapper is added: each task's own time limit truncates its episodes."""
    ids = []
    for suite in ("fake4", "mw8"):
        env_id = f"lwd/{suite}-v0"
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="lwd.envs.gym_env:make_lwd_gym_env", kwargs={"suite": suite})
        ids.append(env_id)
    return tuple(ids)
