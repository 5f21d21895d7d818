"""Normalisation transforms whose statistics travel with policy weights.

``NormStats`` maps a feature name to per-dimension mean/std (and min/max); serialised as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureStats:
    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray

    @staticmethod
    def from_data(x: np.ndarray, eps: float = 1e-6) -> FeatureStats:
        """Statistics over axis 0 of ``x`` [n, d]; std floored at ``eps`` to avoid division by zero."""
        x = np.asarray(x, dtype=np.float64)
        return FeatureStats(
            mean=x.mean(0).astype(np.float32),
            std=np.maximum(x.std(0), eps).astype(np.float32),
            min=x.min(0).astype(np.float32),
            max=x.max(0).astype(np.float32),
        )

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def unnormalize(self, x: np.ndarray) -> np.ndarray:
        return (x * self.std + self.mean).astype(np.float32)

    def to_json(self) -> dict:
        return {k: getattr(self, k).tolist() for k in ("mean", "std", "min", "max")}

    @staticmethod
    def from_json(d: dict) -> FeatureStats:
        return FeatureStats(**{k: np.asarray(d[k], dtype=np.float32) for k in ("mean", "std", "min", "max")})


NormStats = dict[str, FeatureStats]
"""Feature name -> statistics. Keys follow the dataset's feature names (below)."""

STATE_KEY = "observation.state"
"""NormStats key of the low-dimensional state."""
ACTION_KEY = "action"
"""NormStats key of actions. Policies keep actions in the robot's [-1, 1] space by default and
standardise them only when this key is present in *their* stats (see docs/policy.md)."""


def norm_stats_to_json(stats: NormStats) -> dict:
    return {k: v.to_json() for k, v in stats.items()}


def norm_stats_from_json(d: dict) -> NormStats:
    return {k: FeatureStats.from_json(v) for k, v in d.items()}
