"""HG-DAgger baseline (docs/algorithms.md section 6): behaviour cloning on demos + intervention segments.

The learner hands this algorithm an *imitation batch* (``BatchNeeds.imitation``): transitions sampled
only from the eligible set, i.e. every transition of a kept source (default: demonstrations) and every
transition that starts on a human step ("intervention step": the human's action was executed at that
step, the one meaning of the word in the code base). The flow-matching BC loss of
``lwd.algorithms.bc`` (``masked_bc_loss``) is masked to the steps the human acted on (``supervised_mask``), so the policy's
own actions inside a mixed chunk are never imitated. With ``select_all`` the same class is plain BC on
the RL batch (everything).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lwd.algorithms.base import BatchNeeds, adam, cosine_schedule, optimizer_step
from lwd.algorithms.bc import masked_bc_loss
from lwd.data.batch import TransitionBatch
from lwd.data.filters import TransitionFilter, supervised_mask
from lwd.policy.flow_policy import FlowPolicy
from lwd.policy.language import TextEncoder
from lwd.transforms import NormStats


@dataclass(frozen=True)
class HGDAggerConfig:
    """BC on demonstrations plus human-intervention segments."""

    sources: tuple[str, ...] = ("demo",)
    """Data sources whose transitions are always eligible and fully supervised (values of
    ``lwd.types.SOURCES``)."""
    use_interventions: bool = True
    """Also sample transitions that start on a human step, supervised on the human's steps only."""
    select_all: bool = False
    """Plain BC on every transition and step (SFT continued on all data)."""
    lr: float = 2e-5
    """AdamW learning rate (chosen: the paper's policy learning rate)."""
    weight_decay: float = 0.0
    """AdamW weight decay (chosen)."""
    grad_clip: float = 1.0
    """Global gradient-norm clip, 0 disables (chosen)."""
    total_steps: int = 0
    """Cosine schedule length in learner steps (0: constant lr)."""

    def imitation_filter(self) -> TransitionFilter:
        """The transitions HG-DAgger samples from."""
        return TransitionFilter(sources=tuple(self.sources), intervention_steps=self.use_interventions)


class HGDAggerAlgorithm:
    """BC on demos + interventions, driven like every other :class:`lwd.algorithms.base.Algorithm`."""

    def __init__(
        self,
        policy: FlowPolicy,
        text_encoder: TextEncoder,
        norm_stats: NormStats | None = None,
        cfg: HGDAggerConfig = HGDAggerConfig(),
        seed: int = 0,
    ):
        self.policy, self.text_encoder, self.norm_stats, self.cfg = policy, text_encoder, norm_stats, cfg
        self.filter = cfg.imitation_filter()
        self.needs = BatchNeeds(rl=True) if cfg.select_all else BatchNeeds(rl=False, imitation=self.filter)
        self._params = [p for p in policy.parameters() if p.requires_grad]
        self.opt = adam(self._params, cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = cosine_schedule(self.opt, cfg.total_steps)
        self.generator = torch.Generator().manual_seed(seed)
        self.step = 0

    def update(
        self, batch: TransitionBatch | None, imitation: TransitionBatch | None = None, contrast: TransitionBatch | None = None
    ) -> dict[str, float]:
        rows = batch if self.cfg.select_all else imitation
        if rows is None:
            raise ValueError("HG-DAgger needs the " + ("RL" if self.cfg.select_all else "imitation") + " batch")
        steps = rows.action_mask if self.cfg.select_all else supervised_mask(rows, self.filter)
        self.policy.train()
        loss, metrics = masked_bc_loss(
            self.policy, rows, torch.from_numpy(steps), self.text_encoder, self.norm_stats, self.generator
        )
        self.step += 1
        if not steps.any():  # nothing to imitate: no optimiser step (momentum would still move)
            return metrics
        metrics["policy/grad_norm"] = optimizer_step(self.opt, loss, self._params, self.cfg.grad_clip, self.sched)
        return metrics

    def acting_policy(self) -> FlowPolicy:
        """The policy robots run: the trained policy itself."""
        return self.policy

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
