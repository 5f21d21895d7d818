"""Which transitions a learner may sample (:class:`TransitionFilter`) and which chunk steps an
imitation loss supervises (:func:`supervised_mask`): the one meaning of "intervention step" (the
human's action was executed at that step) as data-layer rules. ``lwd.data.replay`` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lwd.data.batch import TransitionBatch
from lwd.types import SOURCES


@dataclass(frozen=True)
class TransitionFilter:
    """Which transitions may be sampled. A transition (chunk start step) is eligible if its episode's
    source is in ``sources`` (None: any source) OR ``intervention_steps`` is set and the human acted
    at the start step OR ``autonomous_successes`` is set and its episode is an online one the policy
    solved with no human step."""

    sources: tuple[str, ...] | None = None
    intervention_steps: bool = False
    autonomous_successes: bool = False

    def __post_init__(self) -> None:
        bad = set(self.sources or ()) - set(SOURCES)
        if bad:
            raise ValueError(f"unknown sources {sorted(bad)}; expected a subset of {SOURCES}")


def supervised_mask(batch: TransitionBatch, filt: TransitionFilter) -> np.ndarray:
    """bool [b, h]: the chunk steps of ``batch`` an imitation loss under ``filt`` supervises.

    Rows whose episode source is in ``filt.sources`` (or, with ``filt.autonomous_successes``, whose
    episode the policy solved alone: ``batch.autonomous_success``) are supervised on every existing
    step; other rows (eligible because they start on a human step) only on the human's steps
    (``batch.expert_mask``), so the policy's own actions in a mixed chunk are never imitated.
    """
    mask = np.asarray(batch.action_mask, bool)
    whole = np.isin(batch.source_id, [SOURCES.index(s) for s in filt.sources or ()])
    if filt.sources is None:
        whole = np.ones(batch.size, bool)
    if filt.autonomous_successes:
        if batch.autonomous_success is None:
            raise ValueError("autonomous_successes needs batch.autonomous_success (replay batches carry it)")
        whole = whole | np.asarray(batch.autonomous_success, bool)
    return mask & (whole[:, None] | np.asarray(batch.expert_mask, bool))


ALL = TransitionFilter()
DEMOS = TransitionFilter(sources=("demo",))
"""Supervised fine-tuning data."""
DEMOS_AND_INTERVENTIONS = TransitionFilter(sources=("demo",), intervention_steps=True)
"""Imitation data (HG-DAgger, the BC reference): every demo transition plus every transition that
starts on a human step; imitation losses mask the chunk with ``TransitionBatch.expert_mask``."""
DEMOS_INTERVENTIONS_AND_SUCCESSES = TransitionFilter(sources=("demo",), intervention_steps=True,
                                                     autonomous_successes=True)  # fmt: skip
"""The same plus every step of the online episodes the policy solved with no human step (filtered BC
on its own field successes; the BC reference's ``reference_successes`` option)."""
