"""Typed records shared by every layer: tasks, observations, action chunks and episodes.

Shape letters (used across the package): b batch, t time step, h chunk length, a action dim,
d state dim, k value atoms, e critic heads, s flow steps, c cameras.

An :class:`Episode` is the unit of data everywhere: the robot client records one, the data plane
stores and validates it, the dataset writer persists it, and the replay buffer chunks it.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Source = Literal["demo", "rollout", "play", "online"]
"""Where an episode came from (algorithms.md section 1): expert demonstrations, historical policy
rollouts (successful or failed), play data (exploration of failure modes, always labelled failure),
and online fleet episodes."""

SOURCES: tuple[str, ...] = ("demo", "rollout", "play", "online")

TaskKind = Literal["short", "long"]


@dataclass(frozen=True)
class TaskSpec:
    """One task of a suite. The policy never sees ``task_id``: the instruction is its only task signal."""

    task_id: str
    """Stable identifier, e.g. ``"pick-place"``."""
    instructions: tuple[str, ...]
    """Natural-language paraphrases; index 0 is the canonical one."""
    kind: TaskKind
    """``"short"`` (grocery-like) or ``"long"`` (multi-stage)."""
    max_steps: int
    """Time limit in control steps."""


@dataclass(frozen=True)
class Observation:
    """What a robot reports at one instant.

    ``state``: float32 [d] low-dimensional state (simulator state in ``state`` mode, proprioception
    only in ``pixels`` mode). ``images``: camera name -> uint8 [H, W, 3] (empty in ``state`` mode).
    """

    state: np.ndarray
    instruction: str
    images: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionChunk:
    """An open-loop chunk of actions produced by one policy call.

    ``actions``: float32 [h, a] in the robot's normalised action space [-1, 1].
    """

    actions: np.ndarray
    policy_version: int


def new_episode_id() -> str:
    """A globally unique, sortable-enough episode id (uuid4 hex, 32 chars)."""
    return uuid.uuid4().hex


@dataclass
class Episode:
    """One attempt at one task by one robot under one policy version (plus human segments).

    Arrays (T = number of executed control steps):
      states        float32 [T+1, d]     observation states, including the final one
      actions       float32 [T, a]       executed actions (the human's action where intervened)
      rewards       float32 [T]          sparse: 1.0 on the step that succeeded, else 0.0
      intervention  bool    [T]          True where the human (or scripted stand-in) acted
      images        cam -> uint8 [T+1, H, W, 3] (pixels mode only)
      rejected_steps    int64   [R]         steps t at which the human took over (sorted, unique)
      rejected_actions  float32 [R, k, a]   the chunk the policy proposed at s_t there, which the
                                            human rejected (its same-state counterfactual; R may be 0)
    ``success`` is True iff the episode ended by succeeding (then rewards[-1] == 1).
    """

    episode_id: str
    task_id: str
    instruction: str
    robot_id: str
    policy_version: int
    source: str
    success: bool
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    intervention: np.ndarray
    images: dict[str, np.ndarray] = field(default_factory=dict)
    seed: int = -1
    """Environment seed of the episode (-1 if unknown)."""
    condition: str = "lab"
    """Deployment condition the episode ran in (``lab``, ``field`` or a shift file's name)."""
    rejected_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """Steps at which the human took over, int64 [R] (see the class docstring)."""
    rejected_actions: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1), np.float32))
    """The policy's rejected proposals at those steps, float32 [R, k, a] in [-1, 1]."""
    stages: int = 0
    """Stages of a chained task as the robot scores it (``scene8``), 0 where the robot reports none."""
    stages_done: int = 0
    """Stages achieved, in order, by the end of the episode (0 <= stages_done <= stages)."""

    @property
    def length(self) -> int:
        return int(self.actions.shape[0])

    @property
    def substep_score(self) -> float | None:
        """The paper's long-task metric: stages achieved / stages; ``None`` for a task without stages."""
        return self.stages_done / self.stages if self.stages > 0 else None

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first inconsistency (shapes, dtypes, finiteness, labels)."""
        t = self.length
        if self.source not in SOURCES:
            raise ValueError(
                f"episode {self.episode_id}: unknown source {self.source!r}; expected one of {SOURCES}"
            )
        if t < 1:
            raise ValueError(f"episode {self.episode_id}: has no steps")
        if self.actions.ndim != 2:
            raise ValueError(
                f"episode {self.episode_id}: actions must be [T, a], got shape {self.actions.shape}"
            )
        if self.states.ndim != 2 or self.states.shape[0] != t + 1:
            raise ValueError(
                f"episode {self.episode_id}: states must be [T+1, d] with T={t}, got shape {self.states.shape}"
            )
        if self.rewards.shape != (t,):
            raise ValueError(
                f"episode {self.episode_id}: rewards must be [T]={t}, got shape {self.rewards.shape}"
            )
        if self.intervention.shape != (t,):
            raise ValueError(
                f"episode {self.episode_id}: intervention must be [T]={t}, got shape {self.intervention.shape}"
            )
        for name in ("states", "actions", "rewards"):
            arr = getattr(self, name)
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"episode {self.episode_id}: {name} contain NaN or Inf")
        for cam, img in self.images.items():
            if img.dtype != np.uint8 or img.ndim != 4 or img.shape[0] != t + 1 or img.shape[-1] != 3:
                raise ValueError(
                    f"episode {self.episode_id}: image stream {cam!r} must be uint8 [T+1, H, W, 3], "
                    f"got {img.dtype} {img.shape}"
                )
        self._validate_rejected()
        if not 0 <= self.stages_done <= self.stages or (self.success and self.stages_done != self.stages):
            raise ValueError(f"episode {self.episode_id}: stages_done={self.stages_done} of stages={self.stages} "
                             f"is inconsistent (0 <= done <= stages, all done on success)")  # fmt: skip
        if self.success and float(self.rewards[-1]) != 1.0:
            raise ValueError(f"episode {self.episode_id}: success=True but the last reward is not 1")
        if self.source == "play" and self.success:
            raise ValueError(f"episode {self.episode_id}: play data is labelled as failure by definition")

    def _validate_rejected(self) -> None:
        steps, acts, t = self.rejected_steps, self.rejected_actions, self.length
        r = int(steps.shape[0]) if steps.ndim == 1 else -1
        if r == 0 and acts.shape[0] == 0:
            return
        where = f"episode {self.episode_id}: rejected proposals"
        if r < 0 or acts.ndim != 3 or acts.shape[0] != r or acts.shape[2] != self.actions.shape[1] or acts.shape[1] < 1:
            raise ValueError(f"{where}: need steps [R] and actions [R, k, a={self.actions.shape[1]}], "
                             f"got {steps.shape} and {acts.shape}")  # fmt: skip
        if not np.issubdtype(steps.dtype, np.integer) or (steps < 0).any() or (steps >= t).any():
            raise ValueError(f"{where}: steps must be integers in [0, {t}), got {steps.tolist()}")
        if (np.diff(steps) <= 0).any():
            raise ValueError(f"{where}: steps must be strictly increasing, got {steps.tolist()}")
        if not self.intervention[steps].all():
            raise ValueError(f"{where}: every step must be an intervention step (the human acted there)")
        if not np.all(np.isfinite(acts)):
            raise ValueError(f"{where}: actions contain NaN or Inf")

    def replace(self, **changes) -> Episode:
        return dataclasses.replace(self, **changes)
