"""Balanced task allocation: robots -> tasks in proportion to configurable weights."""

from __future__ import annotations

from collections import Counter


def choose_task(counts: dict[str, int], weights: dict[str, float]) -> str:
    """The task whose share of robots is furthest below its weight share (D'Hondt divisor method).

    Picks argmin over tasks of ``(count_t + 1) / w_t`` (ties: task id order), which keeps every
    ``count_t >= floor(w_t / sum(w) * n)`` (lower quota) as robots arrive one by one.
    """
    live = {t: float(w) for t, w in weights.items() if w > 0}
    if not live:
        raise ValueError("task allocation needs at least one task with a positive weight")
    return min(sorted(live), key=lambda t: (counts.get(t, 0) + 1) / live[t])


def balanced_counts(assignments: dict[str, str], weights: dict[str, float]) -> dict[str, int]:
    """Robots per task among ``assignments`` (robot -> task), restricted to weighted tasks."""
    c = Counter(t for t in assignments.values() if t in weights)
    return {t: c.get(t, 0) for t in weights}
