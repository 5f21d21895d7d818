"""Shared machinery of simulated robots: time limits, sparse reward, the shifted action channel.

:class:`SimRobotBase` implements the :class:`~lwd.envs.robot.Robot` protocol once; a simulator
adapter fills in five hooks (``_sim_reset``, ``_sim_step``, ``_state``, ``_images``, ``expert``).

The action channel models deployment shift that a real robot would have between the policy and the
motors (see :class:`~lwd.envs.shift.ShiftSpec`): ``action_latency`` steps of delay (a FIFO queue
primed with the neutral action) and Gaussian ``action_noise_std``. Gains are simulator-specific and
applied by the adapter. Episodes record the *commanded* action, which is what a policy controls.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable

import numpy as np

from lwd.envs.robot import ChunkResult, StepResult, execute_chunk, executed_action
from lwd.envs.shift import ShiftSpec
from lwd.specs import RobotSpec, SuiteSpec
from lwd.types import Observation, TaskSpec
from lwd.utils.errors import ConfigError


class SimRobotBase(ABC):
    """A simulated robot serving every task of one suite (one scene per task, built lazily)."""

    def __init__(self, suite: SuiteSpec, spec: RobotSpec, shift: ShiftSpec) -> None:
        self.suite = suite
        self.shift = shift
        self._spec = spec
        self._task: TaskSpec | None = None
        self._instruction = ""
        self._t = 0
        self._done = True
        self._obs: Observation | None = None
        self._rng = np.random.default_rng(0)
        self._queue: deque[np.ndarray] = deque()
        self._last_info: dict = {}

    # ----------------------------------------------------------------- Robot protocol
    @property
    def spec(self) -> RobotSpec:
        return self._spec

    def reset(self, task_id: str, instruction: str, seed: int) -> Observation:
        if task_id not in self.suite.task_ids:
            raise ConfigError(
                f"unknown task {task_id!r} for suite {self.suite.name!r}; valid: {', '.join(self.suite.task_ids)}"
            )
        self._task = self.suite.task(task_id)
        self._instruction = instruction
        # Shift randomness (noise, camera jitter) gets its own stream so that the scene layout for a
        # seed is identical across conditions with the same placement ranges.
        self._rng = np.random.default_rng([int(seed) % (2**63), 0x5EED])
        self._queue = deque(self._neutral_action() for _ in range(self.shift.action_latency))
        self._sim_reset(task_id, int(seed), self._rng)
        self._t = 0
        self._done = False
        self._last_info = {}
        self._obs = self._make_obs()
        return self._obs

    def observe(self) -> Observation:
        if self._obs is None:
            raise RuntimeError("observe() before reset()")
        return self._obs

    def step(self, action: np.ndarray) -> StepResult:
        if self._done or self._task is None:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        executed = executed_action(action, self._spec.action_dim, self._queue, self.shift.action_noise_std, self._rng)
        success, info = self._sim_step(executed)
        self._t += 1
        self._last_info = info
        done = success or self._t >= self._task.max_steps
        self._done = done
        self._obs = self._make_obs()
        return StepResult(
            obs=self._obs, reward=1.0 if success else 0.0, success=success, done=done, info=info
        )

    def execute(self, actions: np.ndarray, stop: Callable[[Observation], bool] | None = None) -> ChunkResult:
        return execute_chunk(self, actions, stop)

    # ----------------------------------------------------------------- simulator extras
    @property
    def t(self) -> int:
        """Control steps taken in the current episode."""
        return self._t

    @property
    def task_id(self) -> str | None:
        return None if self._task is None else self._task.task_id

    def progress(self) -> float:
        """Dense shaped progress of the last step (higher is better); for interveners, not learning."""
        return float(self._last_info.get("shaped_reward", self._initial_progress()))

    def _make_obs(self) -> Observation:
        return Observation(state=self._state(), instruction=self._instruction, images=self._images())

    # ----------------------------------------------------------------- hooks
    @abstractmethod
    def privileged_state(self) -> np.ndarray:
        """The full simulator state [D] a scripted expert needs (equals ``obs.state`` in state mode)."""

    @abstractmethod
    def expert(self, task_id: str):
        """A :class:`lwd.envs.experts.ScriptedExpert` for ``task_id`` acting on :meth:`privileged_state`."""

    @abstractmethod
    def _neutral_action(self) -> np.ndarray:
        """Action [a] executed while the latency queue is priming (hold still, gripper open)."""

    @abstractmethod
    def _sim_reset(self, task_id: str, seed: int, rng: np.random.Generator) -> None: ...

    @abstractmethod
    def _sim_step(self, action: np.ndarray) -> tuple[bool, dict]:
        """Advance one control step; return (success, info with ``shaped_reward``)."""

    @abstractmethod
    def _initial_progress(self) -> float: ...

    @abstractmethod
    def _state(self) -> np.ndarray: ...

    @abstractmethod
    def _images(self) -> dict[str, np.ndarray]: ...
