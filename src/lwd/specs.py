"""Specs describing what a robot produces and consumes, independent of any simulator.

A policy, dataset or critic is built from a :class:`RobotSpec`; a robot client checks a policy's
spec against its robot's before loading it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lwd.types import TaskSpec


@dataclass(frozen=True)
class RobotSpec:
    """Observation and action interface of a robot (or of a suite of simulated tasks)."""

    state_dim: int
    """Length of ``Observation.state`` (float32)."""
    action_dim: int
    """Action dimension; actions live in [-1, 1]."""
    cameras: tuple[str, ...] = ()
    """Camera names present in ``Observation.images`` (empty in state mode)."""
    image_size: int = 0
    """Square image side in pixels (0 in state mode)."""
    control_hz: float = 80.0
    """Control frequency (informative; used for robot-hours)."""

    def check_compatible(self, other: RobotSpec) -> None:
        """Raise ``ValueError`` if ``other`` cannot run a policy built for ``self``."""
        if (self.state_dim, self.action_dim, self.cameras, self.image_size) != (
            other.state_dim,
            other.action_dim,
            other.cameras,
            other.image_size,
        ):
            raise ValueError(f"robot spec mismatch: policy expects {self}, robot provides {other}")


@dataclass(frozen=True)
class SuiteSpec:
    """A named set of tasks sharing one robot spec."""

    name: str
    tasks: tuple[TaskSpec, ...]

    def task(self, task_id: str) -> TaskSpec:
        for t in self.tasks:
            if t.task_id == task_id:
                return t
        known = ", ".join(t.task_id for t in self.tasks)
        raise KeyError(f"unknown task {task_id!r} in suite {self.name!r}; known tasks: {known}")

    @property
    def task_ids(self) -> tuple[str, ...]:
        return tuple(t.task_id for t in self.tasks)
