"""Scripted experts and the noisy act functions data collection uses.

A :class:`ScriptedExpert` is Markov (state -> action), so it can take over from any state, which is
what makes it a usable stand-in for a human in interventions. Simulated robots hand one out for each
task (``robot.expert(task_id)``) acting on ``robot.privileged_state()`` (the full simulator state;
in pixels mode the policy never sees it).

Noise modes (:data:`NOISE_PRESETS`, all fields configurable through :class:`ExpertNoise`):
  * ``demo``: small Gaussian noise; near-perfect demonstrations.
  * ``rollout``: heavier Gaussian noise plus bursts of random motion, so that some episodes succeed
    and some fail, like historical policy rollouts.
  * ``play``: exploration of failure modes: the expert aims at a displaced goal (a near-miss) and is
    interrupted by frequent random-motion bursts with a random gripper. Labelled failure; a play
    episode that happens to succeed is relabelled ``rollout`` by :func:`lwd.envs.episode_loop.run_episode`.
Re-querying per step (``chunk_size=1``) is the default and preferred: the expert is closed-loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from lwd.types import Observation
from lwd.utils.errors import ConfigError


class ScriptedExpert(Protocol):
    """A Markov expert for one task. ``state`` is the robot's privileged state [D]."""

    def action(self, state: np.ndarray, goal_offset: np.ndarray | None = None) -> np.ndarray:
        """Action [a] in [-1, 1]; ``goal_offset`` [3] makes it aim at a displaced goal (play data)."""
        ...


@dataclass(frozen=True)
class ExpertNoise:
    """How an expert's actions are perturbed during collection (action units unless stated)."""

    mode: str = "demo"
    """Preset name recorded for provenance (``demo``, ``rollout``, ``play`` or custom)."""
    gaussian_std: float = 0.05
    """Std of i.i.d. Gaussian noise added to every action component."""
    burst_prob: float = 0.0
    """Per-step probability of starting a burst of random motion (when no burst is running)."""
    burst_len: int = 0
    """Length of a burst in steps; during it one random action (held constant) replaces the expert."""
    goal_offset: float = 0.0
    """Norm (m) of a per-episode random horizontal displacement of the goal the expert aims at."""


NOISE_PRESETS: dict[str, ExpertNoise] = {
    "demo": ExpertNoise(mode="demo", gaussian_std=0.05),
    "rollout": ExpertNoise(mode="rollout", gaussian_std=0.3, burst_prob=0.03, burst_len=12),
    "play": ExpertNoise(mode="play", gaussian_std=0.3, burst_prob=0.08, burst_len=15, goal_offset=0.12),
}


def resolve_noise(noise: str | ExpertNoise, **overrides) -> ExpertNoise:
    """A preset by name (optionally with field overrides) or a given :class:`ExpertNoise`."""
    if isinstance(noise, str):
        if noise not in NOISE_PRESETS:
            raise ConfigError(f"unknown expert noise mode {noise!r}; valid: {', '.join(NOISE_PRESETS)}")
        noise = NOISE_PRESETS[noise]
    return replace(noise, **overrides) if overrides else noise


class StepwiseExpertPolicy:
    """An act function ``obs -> actions [chunk_size, a]`` driven by a scripted expert plus noise.

    ``state_fn`` maps an observation to the expert's input; pass ``robot.privileged_state`` (wrapped
    by :func:`expert_policy`) for pixels-mode robots. With ``chunk_size > 1`` the current action is
    held for the whole chunk (open-loop hold), which is worse than re-querying; prefer 1.
    Call :meth:`reset` with the episode seed before each episode for reproducible noise.
    """

    def __init__(
        self,
        expert: ScriptedExpert,
        state_fn: Callable[[Observation], np.ndarray] | None = None,
        noise: str | ExpertNoise = "demo",
        seed: int = 0,
        chunk_size: int = 1,
    ) -> None:
        if chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
        self.expert = expert
        self.state_fn = state_fn or (lambda obs: obs.state)
        self.noise = resolve_noise(noise)
        self.chunk_size = chunk_size
        self.reset(seed)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng([int(seed) % (2**63), 0xE4E7])
        self._burst_left = 0
        self._burst_action: np.ndarray | None = None
        self._goal_offset = None
        if self.noise.goal_offset > 0:
            angle = self._rng.uniform(0, 2 * np.pi)
            self._goal_offset = self.noise.goal_offset * np.array([np.cos(angle), np.sin(angle), 0.0])

    def expert_action(self, obs: Observation) -> np.ndarray:
        """The noiseless expert action [a] for ``obs``."""
        return np.clip(self.expert.action(self.state_fn(obs)), -1.0, 1.0).astype(np.float32)

    def _noisy_action(self, obs: Observation) -> np.ndarray:
        n = self.noise
        base = np.asarray(self.expert.action(self.state_fn(obs), self._goal_offset), dtype=np.float32)
        if self._burst_left == 0 and n.burst_len > 0 and self._rng.random() < n.burst_prob:
            self._burst_left = n.burst_len
            self._burst_action = self._rng.uniform(-1, 1, size=base.shape).astype(np.float32)
        if self._burst_left > 0:
            self._burst_left -= 1
            base = self._burst_action
        if n.gaussian_std > 0:
            base = base + self._rng.normal(0.0, n.gaussian_std, size=base.shape)
        return np.clip(base, -1.0, 1.0).astype(np.float32)

    def __call__(self, obs: Observation) -> np.ndarray:
        a = self._noisy_action(obs)
        return np.repeat(a[None], self.chunk_size, axis=0)


def expert_policy(
    robot, task_id: str, noise: str | ExpertNoise = "demo", seed: int = 0, chunk_size: int = 1
) -> StepwiseExpertPolicy:
    """The expert act function for a simulated ``robot`` (anything with ``expert`` and
    ``privileged_state``), reading the privileged state so it works in pixels mode too."""
    return StepwiseExpertPolicy(
        robot.expert(task_id),
        state_fn=lambda obs: robot.privileged_state(),
        noise=noise,
        seed=seed,
        chunk_size=chunk_size,
    )
