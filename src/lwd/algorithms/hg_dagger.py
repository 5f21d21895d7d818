"""HG-DAgger baseline (docs/algorithms.md section 6): behaviour cloning on demos + intervention segments.

The sample-selection rule keeps a transition if its source is in ``sources`` (default: demos) or if
any step of its chunk was a human intervention (the corrective action is the stored action). The
loss is the flow-matching BC loss of ``lwd.algorithms.bc`` over the kept rows only. With
``select_all`` the same class is plain BC on everything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lwd.algorithms.bc import batch_actions, flow_matching_loss, module_device, policy_obs
from lwd.algorithms.divl import cosine_schedule
from lwd.data.batch import TransitionBatch
from lwd.policy.flow_policy import FlowPolicy
from lwd.policy.language import TextEncoder
from lwd.transforms import NormStats
from lwd.types import SOURCES


@dataclass(frozen=True)
class HGDAggerConfig:
    """BC on demonstrations plus human-intervention segments."""

    sources: tuple[str, ...] = ("demo",)
    """Data sources always kept (values of ``lwd.types.SOURCES``)."""
    use_interventions: bool = True
    """Also keep transitions whose chunk contains a human intervention."""
    select_all: bool = False
    """Keep every transition (plain BC / SFT continued on all data)."""
    lr: float = 2e-5
    """AdamW learning rate (chosen: the paper's policy learning rate)."""
    weight_decay: float = 0.0
    """AdamW weight decay (chosen)."""
    grad_clip: float = 1.0
    """Global gradient-norm clip, 0 disables (chosen)."""
    total_steps: int = 0
    """Cosine schedule length in learner steps (0: constant lr)."""


def hg_dagger_selection(batch: TransitionBatch, cfg: HGDAggerConfig) -> np.ndarray:
    """Boolean mask [b] of the rows HG-DAgger trains on."""
    if cfg.select_all:
        return np.ones(batch.size, dtype=bool)
    keep_ids = [SOURCES.index(s) for s in cfg.sources]
    keep = np.isin(batch.source_id, keep_ids)
    if cfg.use_interventions:
        keep |= batch.intervention.astype(bool)
    return keep


def index_obs(obs: dict, idx: Tensor) -> dict:
    """Rows ``idx`` of an observation dict (state, images, instruction embedding, extras)."""
    out = {}
    for k, v in obs.items():
        if isinstance(v, dict):
            out[k] = {cam: img[idx] for cam, img in v.items()}
        else:
            out[k] = v[idx]
    return out


def selected_bc_loss(
    policy, obs: dict, actions: Tensor, mask: Tensor, keep: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, dict[str, float]]:
    """Flow-matching loss (bc.py) over the kept rows; zero (with a graph) if none are kept."""
    idx = torch.nonzero(keep, as_tuple=False).squeeze(1)
    frac = float(keep.float().mean())
    if idx.numel() == 0:
        zero = sum(p.sum() for p in policy.parameters()) * 0.0
        return zero, {"policy/bc_loss": 0.0, "policy/selected_frac": 0.0}
    loss, metrics = flow_matching_loss(
        policy, index_obs(obs, idx), actions[idx], mask[idx], generator=generator
    )
    metrics["policy/selected_frac"] = frac
    return loss, metrics


class HGDAggerAlgorithm:
    """BC on demos + interventions, driven like every other :class:`lwd.algorithms.lwd.Algorithm`."""

    def __init__(
        self,
        policy: FlowPolicy,
        text_encoder: TextEncoder,
        norm_stats: NormStats | None = None,
        cfg: HGDAggerConfig = HGDAggerConfig(),
        seed: int = 0,
    ):
        self.policy, self.text_encoder, self.norm_stats, self.cfg = policy, text_encoder, norm_stats, cfg
        self._params = [p for p in policy.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self._params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = cosine_schedule(self.opt, cfg.total_steps)
        self.generator = torch.Generator().manual_seed(seed)
        self.step = 0

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        device = module_device(self.policy)
        keep = torch.from_numpy(hg_dagger_selection(batch, self.cfg)).to(device)
        obs = policy_obs(batch, self.text_encoder, self.norm_stats, device=device)
        actions, mask = batch_actions(batch, self.norm_stats, device)
        self.policy.train()
        loss, metrics = selected_bc_loss(self.policy, obs, actions, mask, keep, self.generator)
        self.step += 1
        if not bool(keep.any()):  # nothing to imitate: no optimiser step (momentum would still move)
            return metrics
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        metrics["policy/grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self._params, clip))
        self.opt.step()
        self.sched.step()
        return metrics

    def policy_weights(self) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in self.policy.state_dict().items()}

    def state_dict(self) -> dict:
        return {
            "policy": self.policy.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "step": self.step,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.step = int(state["step"])
        self.generator.set_state(state["generator"])
