"""Evaluation metrics: success rates with Wilson 95% intervals, aggregated per task and overall, and
the sub-step score (stages achieved / stages) of chained tasks beside binary success.

Pure functions over :class:`EpisodeResult` records so the same code scores evaluation runs, fleet
episodes and benchmark tables.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class EpisodeResult:
    """The outcome of one evaluation episode."""

    task_id: str
    seed: int
    success: bool
    length: int
    """Executed control steps."""
    wall_time_s: float
    """Wall-clock time of the episode (cycle time)."""
    interventions: int = 0
    """Steps where a human (or its stand-in) acted."""
    substep: float | None = None
    """Sub-step score in [0, 1] (stages achieved / stages) of a chained task; ``None`` without stages."""


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default).

    Well behaved at 0 and n successes, unlike the normal approximation. Returns (0, 1) for n = 0.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"invalid counts: {successes} successes of {n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class TaskSummary:
    task_id: str
    episodes: int
    successes: int
    success_rate: float
    ci95: tuple[float, float]
    mean_length: float
    mean_cycle_time_s: float
    intervention_rate: float
    """Fraction of executed steps that were interventions."""
    mean_substep: float | None = None
    """Mean sub-step score over the task's episodes (the paper's long-task metric); ``None`` for a task
    without stages."""


def summarize(results: Iterable[EpisodeResult]) -> dict[str, TaskSummary]:
    """Per-task summaries, in first-seen task order."""
    by_task: dict[str, list[EpisodeResult]] = defaultdict(list)
    for r in results:
        by_task[r.task_id].append(r)
    out = {}
    for task, rs in by_task.items():
        n = len(rs)
        k = sum(r.success for r in rs)
        steps = sum(r.length for r in rs)
        out[task] = TaskSummary(
            task_id=task,
            episodes=n,
            successes=k,
            success_rate=k / n,
            ci95=wilson_interval(k, n),
            mean_length=steps / n,
            mean_cycle_time_s=sum(r.wall_time_s for r in rs) / n,
            intervention_rate=(sum(r.interventions for r in rs) / steps) if steps else 0.0,
            mean_substep=_mean([r.substep for r in rs if r.substep is not None]),
        )
    return out


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def average_substep(summaries: dict[str, TaskSummary]) -> float | None:
    """Unweighted mean of the per-task sub-step scores over the tasks that have stages (``None`` if none)."""
    return _mean([s.mean_substep for s in summaries.values() if s.mean_substep is not None])


def average_success(summaries: dict[str, TaskSummary]) -> float:
    """Unweighted mean of per-task success rates (the paper's 'avg' column)."""
    if not summaries:
        raise ValueError("no task summaries to average")
    return sum(s.success_rate for s in summaries.values()) / len(summaries)


def summaries_to_json(summaries: dict[str, TaskSummary]) -> dict:
    return {
        "tasks": {k: asdict(v) for k, v in summaries.items()},
        "average_success": average_success(summaries),
        "average_substep": average_substep(summaries),
        "episodes": sum(s.episodes for s in summaries.values()),
    }
