"""What every learner algorithm shares: the protocol the learner process drives, the batches it asks
for, and the one optimiser step.

An algorithm declares the batches it needs (:class:`BatchNeeds`): the RL batch (every transition,
offline:online mixed by the learner) and/or an imitation batch drawn only from the transitions its
:class:`~lwd.data.filters.TransitionFilter` makes eligible (demonstrations and chunks that start on a
human step), and/or a contrast batch of take-overs (the human's chunk and the policy's rejected
proposal at the same state). The learner samples what is asked for and calls
``update(batch, imitation, contrast)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from lwd.data.batch import TransitionBatch
from lwd.data.filters import TransitionFilter


@dataclass(frozen=True)
class BatchNeeds:
    """Which batches an algorithm's ``update`` consumes."""

    rl: bool = True
    """The RL batch: transitions sampled from everything (offline:online mixed online)."""
    imitation: TransitionFilter | None = None
    """If set, also an imitation batch of the same size drawn from the transitions this filter makes
    eligible (e.g. :data:`lwd.data.filters.DEMOS_AND_INTERVENTIONS`)."""
    imitation_batches: int = 1
    """Imitation batches per update, stacked into one batch of ``imitation_batches x batch size``
    rows (one gradient step each, e.g. ``LWDConfig.reference_steps``)."""
    contrast: bool = False
    """Also a contrast batch when the online buffer holds take-overs with the policy's rejected
    proposal (``ReplayBuffer.sample_rejections``); ``None`` is passed while it holds none."""


RL_ONLY = BatchNeeds()


@runtime_checkable
class Algorithm(Protocol):
    """What the learner process drives: one update per step, weights to publish, full state."""

    needs: BatchNeeds

    def update(
        self,
        batch: TransitionBatch | None,
        imitation: TransitionBatch | None = None,
        contrast: TransitionBatch | None = None,
    ) -> dict[str, float]: ...

    def acting_policy(self) -> torch.nn.Module:
        """The plain FlowPolicy robots run (what is published), current weights."""
        ...

    def policy_weights(self) -> dict[str, Tensor]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def adam(params: Iterable[Tensor], lr: float, weight_decay: float | None = None) -> torch.optim.Optimizer:
    """Adam (``weight_decay`` None) or AdamW, fused into one kernel over all parameters (part of the
    learner speed-up in docs/results.md, ``benchmarks/learner_speed.py``); same update rule and state
    layout as the unfused optimisers, so checkpoints load either way."""
    params = list(params)
    if weight_decay is None:
        return torch.optim.Adam(params, lr=lr, fused=True)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)


def optimizer_step(
    opt: torch.optim.Optimizer, loss: Tensor, params: Iterable[Tensor], grad_clip: float, sched=None
) -> float:
    """zero_grad, backward, clip the global gradient norm (``grad_clip`` <= 0: no clip), step the
    optimiser and the schedule; returns the pre-clip gradient norm."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(list(params), grad_clip if grad_clip > 0 else float("inf"))
    opt.step()
    if sched is not None:
        sched.step()
    return float(norm)


def cosine_schedule(opt: torch.optim.Optimizer, total_steps: int, warmup: int = 0, floor: float = 0.1):
    """Linear warmup then cosine decay to ``floor`` x lr over ``total_steps`` (0: constant lr)."""

    def factor(step: int) -> float:
        if total_steps <= 0:
            return 1.0
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
