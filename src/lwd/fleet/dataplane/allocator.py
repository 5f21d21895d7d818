"""Balanced task allocation: robots -> tasks in proportion to configurable weights."""

from __future__ import annotations

from collections import Counter


def choose_task(counts: dict[str, int], weights: dict[str, float]) -> str:
    """The next robot's task: first every task gets one robot (highest weight first), then the task
    whose share is furthest below its weight share (D'Hondt divisor method).

    Coverage first keeps a small fleet from leaving tasks unserved; afterwards argmin over tasks of
    ``(count_t + 1) / w_t`` (ties: task id order) keeps every ``count_t >= floor(w_t / sum(w) * n)``.
    With 16 robots on mw8 (weights short 1, long 3) both give the paper's 1 robot per short task
    and 3 per long task.
    """
    live = {t: float(w) for t, w in weights.items() if w > 0}
    if not live:
        raise ValueError("task allocation needs at least one task with a positive weight")
    uncovered = [t for t in sorted(live) if counts.get(t, 0) == 0]
    if uncovered:
        return max(uncovered, key=lambda t: live[t])
    return min(sorted(live), key=lambda t: (counts.get(t, 0) + 1) / live[t])


def balanced_counts(assignments: dict[str, str], weights: dict[str, float]) -> dict[str, int]:
    """Robots per task among ``assignments`` (robot -> task), restricted to weighted tasks."""
    c = Counter(t for t in assignments.values() if t in weights)
    return {t: c.get(t, 0) for t in weights}
