"""Interventions: a human (or scripted stand-in) taking over a robot mid-episode.

:class:`Intervener` is what :func:`lwd.envs.episode_loop.run_episode` talks to, before every step:
``should_take_over(obs, proposed_action, t)`` while the policy drives; then ``act(obs)`` per step and
``should_hand_back(obs, t)`` while the intervener drives.

A teleoperation device implements the same protocol without any model of the task:
``reset`` shows the instruction to the operator and clears the device state; ``should_take_over``
polls (non-blocking) a take-over pedal or button, or the deadman switch of a leader arm;
``act`` reads the spacemouse / leader-arm pose, converts it to an end-effector displacement and
gripper command, and scales it into the robot's normalised [-1, 1] action space; ``should_hand_back``
is True once the operator releases the pedal. Budgets become operator time per shift.

:class:`ScriptedExpertIntervener` stands in for that operator in simulation. It takes over when
  * no progress: the best dense progress so far (``robot.progress()``: Meta-World's shaped reward,
    a staged grasp/transport score in [0, 10] that rises monotonically along a successful expert
    path; for fake4 the negative distance to the target) has not improved by ``progress_eps`` within
    ``no_progress_steps`` steps;
  * deviation: the policy's proposed action differs from the expert's by more than
    ``deviation_threshold`` (L2, action units) for ``deviation_steps`` consecutive steps;
  * spot check: with probability ``spot_check_prob`` at any step;
and hands back after ``max_takeover_steps``, or once at least ``min_takeover_steps`` have passed and
the expert's progress has resumed (best progress exceeds the pre-takeover best by ``resume_eps``).
A per-episode ``budget_steps`` bounds the intervention steps: when spent, it never takes over again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from lwd.types import Observation, TaskSpec


@runtime_checkable
class Intervener(Protocol):
    """A human operator or a scripted stand-in (see module docstring)."""

    def reset(self, task: TaskSpec, instruction: str, seed: int = 0) -> None: ...

    def should_take_over(self, obs: Observation, proposed_action: np.ndarray, t: int) -> bool: ...

    def act(self, obs: Observation) -> np.ndarray: ...

    def should_hand_back(self, obs: Observation, t: int) -> bool: ...


@dataclass(frozen=True)
class InterventionConfig:
    """Trigger rules and limits of :class:`ScriptedExpertIntervener` (steps are control steps)."""

    no_progress_steps: int = 40
    """Take over if best progress has not improved for this many steps (0 disables the rule)."""
    progress_eps: float = 0.05
    """Minimal improvement of best progress that counts as progress (progress units)."""
    deviation_threshold: float = 1.0
    """L2 distance between proposed and expert actions counted as a large deviation (inf disables)."""
    deviation_steps: int = 5
    """Consecutive large-deviation steps before taking over."""
    spot_check_prob: float = 0.0
    """Per-step probability of a random spot-check take-over."""
    budget_steps: int = 100
    """Maximum intervention steps per episode."""
    max_takeover_steps: int = 30
    """Hand back after this many steps of one take-over."""
    min_takeover_steps: int = 5
    """Never hand back on resumed progress before this many steps."""
    resume_eps: float = 0.2
    """Hand back early once best progress exceeds the pre-takeover best by this much."""


class ScriptedExpertIntervener:
    """The scripted expert as a human stand-in on a simulated robot.

    ``robot`` must offer ``expert(task_id)``, ``privileged_state()`` and ``progress()`` (every
    :class:`~lwd.envs.sim.SimRobotBase` does). ``events`` lists ``(t, reason)`` of each take-over
    (reasons: ``no_progress``, ``deviation``, ``spot_check``) for metrics.
    """

    def __init__(self, robot, config: InterventionConfig | None = None, noise_std: float = 0.0) -> None:
        self.robot = robot
        self.config = config or InterventionConfig()
        self.noise_std = noise_std
        self.events: list[tuple[int, str]] = []
        self.steps_used = 0
        self._expert = None
        self._rng = np.random.default_rng(0)

    def reset(self, task: TaskSpec, instruction: str, seed: int = 0) -> None:
        self._expert = self.robot.expert(task.task_id)
        self._rng = np.random.default_rng([int(seed) % (2**63), 0x1417])
        self.events = []
        self.steps_used = 0
        self._best = -np.inf
        self._best_t = 0
        self._deviating = 0
        self._takeover_t = 0
        self._takeover_steps = 0
        self._best_before = -np.inf

    @property
    def budget_left(self) -> int:
        return max(self.config.budget_steps - self.steps_used, 0)

    def _expert_action(self) -> np.ndarray:
        assert self._expert is not None, "reset() first"
        return np.asarray(self._expert.action(self.robot.privileged_state()), dtype=np.float32)

    def _track_progress(self, t: int) -> None:
        p = float(self.robot.progress())
        if p > self._best + self.config.progress_eps or self._best == -np.inf:
            self._best_t = t
        self._best = max(self._best, p)

    def should_take_over(self, obs: Observation, proposed_action: np.ndarray, t: int) -> bool:
        c = self.config
        self._track_progress(t)
        gap = float(np.linalg.norm(np.asarray(proposed_action) - self._expert_action()))
        self._deviating = self._deviating + 1 if gap > c.deviation_threshold else 0
        if self.budget_left == 0:
            return False
        reason = None
        if c.no_progress_steps > 0 and t - self._best_t >= c.no_progress_steps:
            reason = "no_progress"
        elif self._deviating >= c.deviation_steps:
            reason = "deviation"
        elif c.spot_check_prob > 0 and self._rng.random() < c.spot_check_prob:
            reason = "spot_check"
        if reason is None:
            return False
        self.events.append((t, reason))
        self._takeover_t = t
        self._takeover_steps = 0
        self._best_before = self._best
        self._deviating = 0
        return True

    def act(self, obs: Observation) -> np.ndarray:
        a = self._expert_action()
        if self.noise_std > 0:
            a = a + self._rng.normal(0.0, self.noise_std, size=a.shape)
        self.steps_used += 1
        self._takeover_steps += 1
        return np.clip(a, -1.0, 1.0).astype(np.float32)

    def should_hand_back(self, obs: Observation, t: int) -> bool:
        c = self.config
        self._track_progress(t)
        if self.budget_left == 0 or self._takeover_steps >= c.max_takeover_steps:
            return self._hand_back(t)
        resumed = self._best >= self._best_before + c.resume_eps
        if self._takeover_steps >= c.min_takeover_steps and resumed:
            return self._hand_back(t)
        return False

    def _hand_back(self, t: int) -> bool:
        # The policy gets a fresh no-progress window after a take-over.
        self._best_t = t
        return True
