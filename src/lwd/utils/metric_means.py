"""Summaries of metrics: window means of per-step metric dicts (each key averaged over the steps
that reported it), and latency percentiles.

A learner step may report a key only sometimes (QAM metrics with ``policy_every > 1``, the policy
metrics during a critic warm-up); dividing by every step of the window would shrink those means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from lwd.utils.errors import TrainingDiverged


class MetricMeans:
    """Accumulates ``{name: value}`` dicts; :meth:`means` averages each name over its own count."""

    def __init__(self) -> None:
        self._sum: dict[str, float] = {}
        self._count: dict[str, int] = {}
        self.steps = 0
        """Dicts added since the last :meth:`reset`."""

    def add(self, metrics: Mapping[str, float]) -> None:
        for k, v in metrics.items():
            self._sum[k] = self._sum.get(k, 0.0) + float(v)
            self._count[k] = self._count.get(k, 0) + 1
        self.steps += 1

    def means(self) -> dict[str, float]:
        return {k: s / self._count[k] for k, s in self._sum.items()}

    def reset(self) -> None:
        self._sum, self._count, self.steps = {}, {}, 0


def check_finite_metrics(metrics: Mapping[str, float], step: int, what: str, kept: str) -> None:
    """Raise :class:`~lwd.utils.errors.TrainingDiverged` if a step reported a NaN/inf metric (a loss):
    training stops before anything is saved or published. ``kept`` says what survives."""
    bad = sorted(k for k, v in metrics.items() if not math.isfinite(float(v)))
    if bad:
        raise TrainingDiverged(
            f"{what}: training diverged at step {step} (non-finite {', '.join(bad[:4])}); {kept}. "
            "Check the learning rates and temperatures (e.g. lambda must be > 0)."
        )


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """``{"n", "p50", "p99"}`` of ``values`` (seconds; ``None`` when empty)."""
    if not values:
        return {"n": 0, "p50": None, "p99": None}
    arr = np.asarray(values, dtype=float)
    return {"n": len(values), "p50": round(float(np.percentile(arr, 50)), 3),
            "p99": round(float(np.percentile(arr, 99)), 3)}  # fmt: skip
