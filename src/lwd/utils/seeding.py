"""Deterministic seeding. Seed ranges are disjoint by purpose so evaluation never reuses training seeds."""

from __future__ import annotations

import random

import numpy as np

# Seed namespaces: an episode seed is base + index. Collection/training and evaluation never overlap.
COLLECT_SEED_BASE = 0
ONLINE_SEED_BASE = 10_000_000
EVAL_SEED_BASE = 1_000_000_000


def seed_everything(seed: int) -> None:
    """Seed python, numpy and (if imported) torch."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


def eval_seed(run_seed: int, task_index: int, episode_index: int) -> int:
    """The evaluation seed of one episode: disjoint from every collection and online seed."""
    return EVAL_SEED_BASE + run_seed * 1_000_000 + task_index * 10_000 + episode_index
