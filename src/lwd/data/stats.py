"""Normalisation statistics over states and actions (numpy only).

:class:`RunningStats` accumulates count / mean / M2 / min / max per dimension and merges batches
with Chan et al.'s parallel update, so a dataset writer can extend its statistics one flush at a
time (and resume them from JSON) without re-reading old data. Statistics cover every state row
(T+1 per episode) and every executed action (T per episode; the padding row is excluded).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lwd.transforms import ACTION_KEY, STATE_KEY, FeatureStats, NormStats
from lwd.types import Episode


@dataclass
class RunningStats:
    """Per-dimension running moments of vectors x [n, d] (float64 accumulators)."""

    count: int
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray

    @staticmethod
    def empty(dim: int) -> RunningStats:
        return RunningStats(
            count=0,
            mean=np.zeros(dim),
            m2=np.zeros(dim),
            min=np.full(dim, np.inf),
            max=np.full(dim, -np.inf),
        )

    def update(self, x: np.ndarray) -> None:
        """Merge a batch x [n, d] into the accumulator."""
        x = np.asarray(x, dtype=np.float64)
        n = x.shape[0]
        if n == 0:
            return
        b_mean = x.mean(0)
        b_m2 = ((x - b_mean) ** 2).sum(0)
        total = self.count + n
        delta = b_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + b_m2 + delta**2 * (self.count * n / total)
        self.count = total
        self.min = np.minimum(self.min, x.min(0))
        self.max = np.maximum(self.max, x.max(0))

    def to_feature_stats(self, eps: float = 1e-6) -> FeatureStats:
        """Population statistics; std floored at ``eps`` like :meth:`FeatureStats.from_data`."""
        if self.count == 0:
            raise ValueError("no samples accumulated")
        std = np.sqrt(self.m2 / self.count)
        return FeatureStats(
            mean=self.mean.astype(np.float32),
            std=np.maximum(std, eps).astype(np.float32),
            min=self.min.astype(np.float32),
            max=self.max.astype(np.float32),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean": self.mean.tolist(),
            "m2": self.m2.tolist(),
            "min": self.min.tolist() if self.count else None,
            "max": self.max.tolist() if self.count else None,
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> RunningStats:
        dim = len(d["mean"])
        out = RunningStats.empty(dim)
        out.count = int(d["count"])
        out.mean = np.asarray(d["mean"], dtype=np.float64)
        out.m2 = np.asarray(d["m2"], dtype=np.float64)
        if out.count:
            out.min = np.asarray(d["min"], dtype=np.float64)
            out.max = np.asarray(d["max"], dtype=np.float64)
        return out


class NormStatsAccumulator:
    """Running statistics of ``observation.state`` and ``action`` over episodes."""

    def __init__(self, state_dim: int, action_dim: int) -> None:
        self.features = {STATE_KEY: RunningStats.empty(state_dim), ACTION_KEY: RunningStats.empty(action_dim)}

    def add(self, ep: Episode) -> None:
        self.features[STATE_KEY].update(ep.states)
        self.features[ACTION_KEY].update(ep.actions)

    def norm_stats(self) -> NormStats:
        """Current :data:`NormStats` (empty dict before any episode was added)."""
        return {k: v.to_feature_stats() for k, v in self.features.items() if v.count}

    def to_json(self) -> dict[str, Any]:
        return {k: v.to_json() for k, v in self.features.items()}

    @staticmethod
    def from_json(d: dict[str, Any], state_dim: int, action_dim: int) -> NormStatsAccumulator:
        acc = NormStatsAccumulator(state_dim, action_dim)
        for k, v in d.items():
            acc.features[k] = RunningStats.from_json(v)
        return acc


def compute_norm_stats(episodes: Iterable[Episode]) -> NormStats:
    """:data:`NormStats` (``observation.state``, ``action``) over ``episodes`` in one pass."""
    acc: NormStatsAccumulator | None = None
    for ep in episodes:
        if acc is None:
            acc = NormStatsAccumulator(ep.states.shape[1], ep.actions.shape[1])
        acc.add(ep)
    if acc is None:
        raise ValueError("compute_norm_stats: no episodes")
    return acc.norm_stats()
