"""Behaviour cloning (SFT) of the flow policy by conditional flow matching (algorithms.md section 2).

One loss and one update step (the TransitionBatch -> tensors conversion is
:mod:`lwd.algorithms.batching`). Pure math apart from that plumbing: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lwd.algorithms.base import optimizer_step
from lwd.algorithms.batching import batch_actions, module_device, policy_obs
from lwd.data.batch import TransitionBatch
from lwd.policy.flow_policy import FlowPolicy
from lwd.policy.integrators import interpolate, velocity_target
from lwd.policy.language import TextEncoder
from lwd.transforms import NormStats


def flow_matching_loss(
    policy: FlowPolicy,
    obs: dict[str, object],
    actions: Tensor,
    mask: Tensor,
    noise: Tensor | None = None,
    w: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Conditional flow-matching loss (algorithms.md section 2).

    With x1 = ``actions`` [b, h, a], x0 = ``noise`` ~ N(0, I) [b, h, a] and w ~ U[0, 1] [b]:
    ``x_w = (1 - w) x0 + w x1`` and ``L = masked mean over valid chunk steps of
    mean_a || f_theta(s, x_w, w) - (x1 - x0) ||^2``, where ``mask`` [b, h] marks existing steps
    (padded steps past an episode's end do not count). Returns ``(loss, metrics)``.
    """
    b = actions.shape[0]
    # drawn on the CPU (the generator's device, same numbers on every device), then moved
    if noise is None:
        noise = torch.randn(actions.shape, generator=generator, dtype=actions.dtype).to(actions.device)
    if w is None:
        w = torch.rand(b, generator=generator, dtype=actions.dtype).to(actions.device)
    cond = policy.encode(obs)  # [b, c]
    x_w = interpolate(noise, actions, w)
    target = velocity_target(noise, actions)
    pred = policy.velocity(cond, x_w, w)  # [b, h, a]
    err = (pred - target).pow(2).mean(dim=-1)  # [b, h]
    m = mask.to(err.dtype)
    loss = (err * m).sum() / m.sum().clamp_min(1.0)
    metrics = {
        "policy/bc_loss": float(loss.detach()),
        "policy/velocity_norm": float(pred.detach().norm(dim=(1, 2)).mean()),
        "policy/valid_step_frac": float(m.mean()),
    }
    return loss, metrics


def masked_bc_loss(
    policy, batch: TransitionBatch, steps: Tensor, text_encoder: TextEncoder, norm_stats: NormStats | None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Flow-matching BC loss (bc.py) of ``batch`` over the chunk steps ``steps`` [b, h] (bool)."""
    device = module_device(policy)
    obs = policy_obs(batch, text_encoder, norm_stats, device=device)
    actions, _ = batch_actions(batch, norm_stats, device)
    loss, metrics = flow_matching_loss(policy, obs, actions, steps.to(device), generator=generator)
    metrics["policy/supervised_step_frac"] = float(steps.float().mean())
    return loss, metrics


@dataclass
class BCUpdate:
    """One SFT step on a TransitionBatch: loss, backward, gradient clipping, optimiser step."""

    policy: FlowPolicy
    optimizer: torch.optim.Optimizer
    text_encoder: TextEncoder
    norm_stats: NormStats | None = None
    grad_clip: float = 1.0
    """Max global gradient norm (0 disables)."""

    def update(self, batch: TransitionBatch, generator: torch.Generator | None = None) -> dict[str, float]:
        return sft_step(
            self.policy, self.optimizer, batch, self.text_encoder, self.norm_stats, self.grad_clip, generator
        )


def sft_step(
    policy: FlowPolicy,
    optimizer: torch.optim.Optimizer,
    batch: TransitionBatch,
    text_encoder: TextEncoder,
    norm_stats: NormStats | None = None,
    grad_clip: float = 1.0,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Run one BC gradient step on ``batch``; returns the loss metrics plus ``policy/grad_norm``."""
    policy.train()
    device = module_device(policy)
    obs = policy_obs(batch, text_encoder, norm_stats, device=device)
    actions, mask = batch_actions(batch, norm_stats, device)
    loss, metrics = flow_matching_loss(policy, obs, actions, mask, generator=generator)
    params = [p for p in policy.parameters() if p.requires_grad]
    metrics["policy/grad_norm"] = optimizer_step(optimizer, loss, params, grad_clip)
    return metrics
