"""The :class:`Robot` protocol: what a robot client drives, simulated or real.

A simulated robot (Meta-World adapter, fake point robot) and a real robot's client implement the same
five members, so the episode loop (:func:`lwd.envs.episode_loop.run_episode`), data collection, evaluation
and the fleet robot client never know which one they are talking to.

Contract (shapes: h chunk length, a action dim):
  * ``reset(task_id, instruction, seed)`` starts an episode and returns the first observation.
  * ``step(action [a])`` executes one control step; ``StepResult.reward`` is sparse (1.0 on the step
    that first succeeds, else 0.0) and ``done`` is True on success or at the task's time limit.
  * ``execute(actions [h, a], stop)`` runs a chunk open-loop, step by step, and stops early on
    success, time limit, or when ``stop(obs)`` returns True (a human is taking over).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from lwd.specs import RobotSpec
from lwd.types import Observation

StopReason = Literal["success", "time_limit", "stop", "end_of_chunk"]


@dataclass(frozen=True)
class StepResult:
    """Outcome of one control step."""

    obs: Observation
    """Observation after the step."""
    reward: float
    """Sparse reward: 1.0 on the step that first succeeded, else 0.0."""
    success: bool
    """True iff the task was achieved on this step."""
    done: bool
    """True iff the episode is over (success or time limit)."""
    info: dict = field(default_factory=dict)
    """Simulator diagnostics (e.g. ``shaped_reward``); never used as a learning signal."""


@dataclass(frozen=True)
class ChunkResult:
    """Outcome of executing (a prefix of) an action chunk."""

    steps: tuple[StepResult, ...]
    """One entry per executed step, in order (at least one unless the chunk was empty)."""
    actions: np.ndarray
    """float32 [n, a]: the actions actually commanded (clipped to [-1, 1]), n = len(steps)."""
    stopped_by: StopReason
    """Why execution ended: success, time limit, ``stop(obs)`` said so, or the chunk ran out."""

    @property
    def obs(self) -> Observation:
        return self.steps[-1].obs

    @property
    def success(self) -> bool:
        return bool(self.steps) and self.steps[-1].success

    @property
    def done(self) -> bool:
        return bool(self.steps) and self.steps[-1].done


@runtime_checkable
class Robot(Protocol):
    """A fleet member. Actions live in [-1, 1]^a; observations follow :attr:`spec`."""

    @property
    def spec(self) -> RobotSpec: ...

    def reset(self, task_id: str, instruction: str, seed: int) -> Observation: ...

    def observe(self) -> Observation: ...

    def step(self, action: np.ndarray) -> StepResult: ...

    def execute(
        self, actions: np.ndarray, stop: Callable[[Observation], bool] | None = None
    ) -> ChunkResult: ...


def execute_chunk(
    robot: Robot, actions: np.ndarray, stop: Callable[[Observation], bool] | None = None
) -> ChunkResult:
    """Reference implementation of :meth:`Robot.execute` on top of :meth:`Robot.step`.

    ``actions``: [h, a]. ``stop`` is asked after every non-terminal step except the chunk's last
    (after the last one the caller replans anyway, and gets to decide again).
    """
    actions = np.asarray(actions, dtype=np.float32)
    if actions.ndim != 2:
        raise ValueError(f"execute expects actions [h, a], got shape {actions.shape}")
    steps: list[StepResult] = []
    reason: StopReason = "end_of_chunk"
    for i, action in enumerate(actions):
        res = robot.step(action)
        steps.append(res)
        if res.success:
            reason = "success"
            break
        if res.done:
            reason = "time_limit"
            break
        if stop is not None and i + 1 < len(actions) and stop(res.obs):
            reason = "stop"
            break
    executed = np.clip(actions[: len(steps)], -1.0, 1.0)
    return ChunkResult(steps=tuple(steps), actions=executed, stopped_by=reason)


def executed_action(action: np.ndarray, action_dim: int, queue, noise_std: float, rng: np.random.Generator) -> np.ndarray:
    """The action a shifted robot executes for the commanded ``action`` [a]: clipped to [-1, 1], sent
    through the latency ``queue`` (a deque pre-filled with the shift's delayed actions; the oldest
    comes out), plus Gaussian actuation noise of ``noise_std`` (clipped again). ``ValueError`` if the
    command is not ``[action_dim]``."""
    a = np.clip(np.asarray(action, dtype=np.float32).reshape(-1), -1.0, 1.0)
    if a.shape != (action_dim,):
        raise ValueError(f"action must have shape [{action_dim}], got {np.shape(action)}")
    queue.append(a)
    executed = queue.popleft()
    if noise_std > 0:
        executed = np.clip(executed + rng.normal(0.0, noise_std, size=executed.shape), -1.0, 1.0).astype(np.float32)
    return executed
