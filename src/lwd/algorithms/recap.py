"""RECAP-style advantage-conditioned BC (docs/algorithms.md section 6).

The flow policy is conditioned on an improvement indicator I = 1[A(s, a) > eps], with
A = min_e Q_phibar(s, a) - V(s) from the same value/critic updater as LWD (V = the mean of the DIVL
value distribution, or the IQL scalar). The policy is trained by plain flow-matching BC on *all* data
with I as an extra input (randomly replaced by an "unknown" token with probability ``drop_prob``),
and acts with I = 1 ("produce an improving action"). Human corrections count as improving whatever
the critic says (as in RECAP): a row that starts on a human step ("intervention step", the human's
action was executed there) gets I = 1 and is supervised on the human's steps only
(``TransitionBatch.expert_mask``), so the policy's own rejected actions in the rest of such a chunk
are never cloned as improving.

The indicator enters through :class:`IndicatorConditionedPolicy`, a wrapper that adds a learned,
zero-initialised embedding of I to the FlowPolicy's cond (equivalent to appending I to the cond and
a linear layer), so ``lwd.policy`` is untouched. For publishing, :func:`fold_indicator` bakes I = 1
into the biases of a plain FlowPolicy (cond only enters the action expert through linear layers).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lwd.algorithms.base import RL_ONLY, adam, cosine_schedule, optimizer_step
from lwd.algorithms.batching import module_device, to_tensors
from lwd.algorithms.bc import flow_matching_loss
from lwd.algorithms.divl import ValueCriticUpdater, min_target_q
from lwd.data.batch import TransitionBatch
from lwd.policy.flow_policy import FlowPolicy
from lwd.policy.language import TextEncoder
from lwd.transforms import NormStats

NOT_IMPROVING, IMPROVING, UNKNOWN = 0, 1, 2
INDICATOR_KEY = "indicator"


class IndicatorConditionedPolicy(nn.Module):
    """FlowPolicy + indicator embedding: ``encode(obs)`` reads ``obs["indicator"]`` (int64 [b], 0/1/2);
    absent means I = 1 (acting). ``velocity``/``sample``/``noise`` delegate to the wrapped policy."""

    def __init__(self, policy: FlowPolicy):
        super().__init__()
        self.policy = policy
        self.indicator_embed = nn.Embedding(3, policy.config.cond_dim)
        nn.init.zeros_(self.indicator_embed.weight)  # at init the wrapper is exactly the SFT policy

    @property
    def config(self):
        return self.policy.config

    def encode(self, obs: dict) -> Tensor:
        cond = self.policy.encode(obs)
        ind = obs.get(INDICATOR_KEY)
        if ind is None:
            ind = torch.full((cond.shape[0],), IMPROVING, dtype=torch.long, device=cond.device)
        return cond + self.indicator_embed(ind.long())

    def velocity(self, cond: Tensor, x: Tensor, w) -> Tensor:
        return self.policy.velocity(cond, x, w)

    def sample(
        self,
        cond: Tensor,
        steps: int | None = None,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        return self.policy.sample(cond, steps, noise, generator)

    def noise(self, batch: int, generator: torch.Generator | None = None) -> Tensor:
        return self.policy.noise(batch, generator)


@torch.no_grad()
def fold_indicator(wrapper: IndicatorConditionedPolicy, indicator: int = IMPROVING) -> FlowPolicy:
    """A plain FlowPolicy that acts like ``wrapper`` with a fixed indicator.

    cond enters the action expert only via ``ctx = [cond, time_emb]`` into ``inp`` and each block's
    ``film`` Linear, so cond + e adds W[:, :c] e to those biases. (Tested against the wrapper.)
    """
    pol = copy.deepcopy(wrapper.policy)
    e = wrapper.indicator_embed.weight[indicator]
    c = e.shape[0]
    expert = pol.action_expert
    flat = expert.chunk_len * expert.action_dim
    expert.inp.bias += expert.inp.weight[:, flat : flat + c] @ e  # inp sees [x_flat, cond, time]
    for blk in expert.blocks:
        blk.film.bias += blk.film.weight[:, :c] @ e  # film sees [cond, time]
    return pol


def improvement_indicator(advantage: Tensor, eps: float) -> Tensor:
    """I = 1[A > eps] as int64 [b]."""
    return (advantage > eps).long()


@dataclass(frozen=True)
class RECAPConfig:
    """Advantage-conditioned BC."""

    eps: float = 0.0
    """Advantage threshold of the indicator, in units of Q (chosen: 0, i.e. better than V(s))."""
    drop_prob: float = 0.3
    """Probability of replacing I by the unknown token during training (chosen, CFG-style)."""
    lr: float = 2e-5
    """AdamW learning rate of the policy (chosen: the paper's policy lr)."""
    grad_clip: float = 1.0
    """Global gradient-norm clip, 0 disables (chosen)."""
    total_steps: int = 0
    """Cosine schedule length in learner steps (0: constant lr)."""


class RECAPAlgorithm:
    """Value/critic updater (DIVL or IQL) + indicator-conditioned BC of the wrapped policy."""

    def __init__(
        self,
        policy: FlowPolicy,
        value_critic: ValueCriticUpdater,
        text_encoder: TextEncoder,
        norm_stats: NormStats | None = None,
        cfg: RECAPConfig = RECAPConfig(),
        seed: int = 0,
    ):
        self.wrapper = IndicatorConditionedPolicy(policy)
        self.value_critic, self.text_encoder, self.norm_stats, self.cfg = value_critic, text_encoder, norm_stats, cfg
        self._params = [p for p in self.wrapper.parameters() if p.requires_grad]
        self.opt = adam(self._params, cfg.lr, weight_decay=0.0)
        self.sched = cosine_schedule(self.opt, cfg.total_steps)
        self.generator = torch.Generator().manual_seed(seed)
        self.step = 0
        self.needs = RL_ONLY

    def indicator(self, obs: dict, actions: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """(I [b], A [b]) with A = min_e Q_phibar(s, a) - V(s)."""
        adv = min_target_q(self.value_critic.target_critic, obs, actions, mask) - self.value_critic.state_value(obs)
        return improvement_indicator(adv, self.cfg.eps), adv

    def update(
        self, batch: TransitionBatch | None, imitation: TransitionBatch | None = None, contrast: TransitionBatch | None = None
    ) -> dict[str, float]:
        if batch is None:
            raise ValueError("RECAP needs the RL batch")
        t = to_tensors(batch, self.text_encoder, self.norm_stats, module_device(self.wrapper))
        metrics = self.value_critic.update(t.obs, t.actions, t.reward, t.discount, t.next_obs, t.mask)
        ind, adv = self.indicator(t.obs, t.actions, t.mask)
        human = torch.from_numpy(batch.intervention.astype(bool)).to(ind.device)
        ind = torch.where(human, IMPROVING, ind)  # a human correction is improving
        expert = torch.from_numpy(batch.expert_mask.astype(bool)).to(t.mask.device)
        steps = torch.where(human[:, None], t.mask & expert, t.mask)
        drop = (torch.rand(ind.shape[0], generator=self.generator) < self.cfg.drop_prob).to(ind.device)
        obs = dict(t.obs, **{INDICATOR_KEY: torch.where(drop, UNKNOWN, ind)})
        self.wrapper.train()
        loss, m = flow_matching_loss(self.wrapper, obs, t.actions, steps, generator=self.generator)
        m["policy/grad_norm"] = optimizer_step(self.opt, loss, self._params, self.cfg.grad_clip, self.sched)
        self.step += 1
        metrics.update(m)
        metrics["policy/improving_frac"] = float(ind.float().mean())
        metrics["policy/advantage_mean"] = float(adv.mean())
        return metrics

    def acting_policy(self) -> FlowPolicy:
        """A plain FlowPolicy acting with I = 1 (the indicator folded in; a new module each call)."""
        return fold_indicator(self.wrapper)

    def policy_weights(self) -> dict[str, Tensor]:
        """Weights of :meth:`acting_policy`."""
        return {k: v.detach().clone() for k, v in self.acting_policy().state_dict().items()}

    def state_dict(self) -> dict:
        return {
            "wrapper": self.wrapper.state_dict(),
            "learner": self.value_critic.state_dict(),  # the checkpoint key older stages wrote
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "step": self.step,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.wrapper.load_state_dict(state["wrapper"])
        self.value_critic.load_state_dict(state["learner"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.step = int(state["step"])
        self.generator.set_state(state["generator"])
