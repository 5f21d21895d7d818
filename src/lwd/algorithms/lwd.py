"""LWD = DIVL value/critic learning + QAM policy extraction (docs/algorithms.md sections 3-5).

Per batch (section 3.5): value step -> critic target with the new value -> critic step -> EMA of the
target critic -> [reference step] -> policy (QAM) step against the reference policy.

The reference pi_ref is a choice (``LWDConfig.reference``, algorithms.md section 4.1): ``frozen`` is the
paper's (the SFT checkpoint, never updated); ``bc`` trains a copy of the starting policy by
flow-matching BC on an imitation batch (demonstrations + chunks that start on a human step, masked to
the human's steps; optionally + the online episodes the policy solved alone) on every learner step,
and QAM's reference is an EMA of that copy. The value/critic updater is pluggable, so the same class
runs the IQL+QAM ablation (``IQLUpdater``) and DIVL with constant tau (``DIVLConfig(alpha=0)``).

Building one from a FlowPolicy (SFT checkpoint)::

    algo = build_lwd_algorithm(policy, text_encoder, norm_stats, cfg)            # DIVL + QAM
    algo = build_lwd_algorithm(policy, text_encoder, norm_stats, cfg, value="iql")  # ablation
    metrics = algo.update(batch)            # TransitionBatch -> dict[str, float]

or by hand: ``critic_cfg = critic_config_for(policy.config)``, ``value_critic = DIVLUpdater.build(
critic_cfg, cfg.divl, cfg.total_steps)``,
``LWDAlgorithm(policy, value_critic, text_encoder, norm_stats, cfg)``.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from lwd.algorithms.base import BatchNeeds, adam, cosine_schedule, optimizer_step
from lwd.algorithms.batching import module_device, slice_obs, to_tensors
from lwd.algorithms.bc import masked_bc_loss
from lwd.algorithms.divl import ContrastPair, DIVLUpdater, ValueCriticUpdater
from lwd.algorithms.iql import IQLConfig, IQLUpdater
from lwd.algorithms.lwd_config import LWDConfig
from lwd.algorithms.qam import qam_loss
from lwd.critic.networks import (
    CriticConfig,
    CriticEncoderConfig,
    build_chunk_critic,
    build_scalar_value,
)
from lwd.data.batch import TransitionBatch
from lwd.data.filters import DEMOS_AND_INTERVENTIONS, DEMOS_INTERVENTIONS_AND_SUCCESSES, supervised_mask
from lwd.policy.batching import actions_to_policy
from lwd.policy.flow_policy import FlowPolicy, FlowPolicyConfig
from lwd.policy.language import TextEncoder
from lwd.transforms import NormStats


def critic_config_for(policy_cfg: FlowPolicyConfig, hidden: int = 256) -> CriticConfig:
    """Critic/value sizes matching a policy's robot interface (own encoder, same inputs)."""
    enc = CriticEncoderConfig(
        state_dim=policy_cfg.state_dim,
        cameras=tuple(policy_cfg.cameras),
        instruction_dim=policy_cfg.text_dim,
        hidden=hidden,
        embed=hidden,
    )
    return CriticConfig(
        encoder=enc, chunk_len=policy_cfg.chunk_len, action_dim=policy_cfg.action_dim, hidden=hidden
    )


def bound_velocity(policy, cond: Tensor):
    """``f(x, w)`` of ``policy`` at ``cond``: its ``velocity_fn`` (projections of cond and flow time
    computed once) when it has one, else ``velocity`` per call (any flow policy)."""
    fn = getattr(policy, "velocity_fn", None)
    if fn is not None:
        return fn(cond)
    return lambda x, w: policy.velocity(cond, x, w)


def frozen_copy(policy: FlowPolicy) -> FlowPolicy:
    """The reference policy pi_ref: a deep copy with gradients off, in eval mode."""
    ref = copy.deepcopy(policy)
    ref.requires_grad_(False)
    return ref.eval()


class LWDAlgorithm:
    """DIVL (or IQL) value/critic + QAM policy extraction; separate optimisers for policy and critic."""

    def __init__(
        self,
        policy: FlowPolicy,
        value_critic: ValueCriticUpdater,
        text_encoder: TextEncoder,
        norm_stats: NormStats | None = None,
        cfg: LWDConfig = LWDConfig(),
        reference: FlowPolicy | None = None,
        seed: int = 0,
    ):
        self.policy, self.value_critic, self.cfg = policy, value_critic, cfg
        self.reference = reference if reference is not None else frozen_copy(policy)
        self.text_encoder, self.norm_stats = text_encoder, norm_stats
        params = policy.parameters() if cfg.train_backbone else policy.action_expert_parameters()
        self._policy_params = [p for p in params if p.requires_grad]
        self.policy_opt = adam(self._policy_params, cfg.policy_lr, weight_decay=cfg.policy_weight_decay)
        self.policy_sched = cosine_schedule(self.policy_opt, cfg.total_steps)
        self.generator = torch.Generator().manual_seed(seed)
        self.step = 0
        self.reference_trainee: FlowPolicy | None = None
        self.needs: BatchNeeds = BatchNeeds(contrast=cfg.contrast_weight > 0)
        if cfg.reference == "bc":
            self.reference_trainee = copy.deepcopy(self.reference).requires_grad_(True).train()
            self._reference_params = list(self.reference_trainee.parameters())
            self.reference_opt = adam(self._reference_params, cfg.reference_lr, weight_decay=0.0)
        if cfg.reference == "bc" or cfg.reference_contrast_weight > 0:
            imitation = DEMOS_INTERVENTIONS_AND_SUCCESSES if cfg.reference_successes else DEMOS_AND_INTERVENTIONS
            self.needs = BatchNeeds(rl=True, imitation=imitation, contrast=self.needs.contrast,
                                    imitation_batches=cfg.reference_steps if cfg.reference == "bc" else 1)  # fmt: skip

    # -- one batch -------------------------------------------------------------------------------
    def update(
        self,
        batch: TransitionBatch | None,
        imitation: TransitionBatch | None = None,
        contrast: TransitionBatch | None = None,
    ) -> dict[str, float]:
        if batch is None:
            raise ValueError("LWD needs the RL batch")
        device = module_device(self.policy)
        t = to_tensors(batch, self.text_encoder, self.norm_stats, device)
        pairs = self.critic_contrasts(imitation, contrast)
        metrics = self.value_critic.update(t.obs, t.actions, t.reward, t.discount, t.next_obs, t.mask, pairs)
        if self.reference_trainee is not None:
            if imitation is None:
                raise ValueError("LWD with reference='bc' needs the imitation batch (BatchNeeds.imitation)")
            metrics.update(self.reference_step(imitation))
        if self.policy_due(self.step):
            metrics.update(self.policy_step(t.obs))
        self.step += 1
        metrics["learner/step"] = float(self.step)
        return metrics

    def critic_contrasts(
        self, imitation: TransitionBatch | None, contrast: TransitionBatch | None
    ) -> list[ContrastPair]:
        """The same-state pairs of this step's critic loss (section 3.7): the take-over contrast when
        ``contrast_weight`` > 0 and a contrast batch is given, the reference contrast when
        ``reference_contrast_weight`` > 0 (from the imitation batch)."""
        pairs = []
        if contrast is not None and contrast.rejected is not None and self.cfg.contrast_weight > 0:
            device = module_device(self.policy)
            c = to_tensors(contrast, self.text_encoder, self.norm_stats, device)
            rejected = actions_to_policy(torch.from_numpy(contrast.rejected).to(device), self.norm_stats)
            pairs.append(ContrastPair(c.obs, c.actions, c.mask, rejected, self.cfg.contrast_margin,
                                      self.cfg.contrast_weight, "contrast"))  # fmt: skip
        if self.cfg.reference_contrast_weight > 0:
            if imitation is None:
                raise ValueError("LWD with a reference contrast needs the imitation batch (BatchNeeds.imitation)")
            pairs.append(self.reference_contrast(imitation))
        return pairs

    def reference_contrast(self, imitation: TransitionBatch) -> ContrastPair:
        """The reference contrast (``cfg.reference_contrast_weight``): at the states of every
        ``imitation_batches``-th row of the imitation batch (one batch's worth, offline and online rows
        alike), the human's chunk a_h [b, h, a] against one pi_ref sample a_p [b, h, a] (clipped to the
        action box), margin = slope x RMS(a_h - a_p) over a_h's valid steps ([b])."""
        part = imitation.rows(slice(0, None, self.needs.imitation_batches))
        t = to_tensors(part, self.text_encoder, self.norm_stats, module_device(self.policy))
        with torch.no_grad():
            a_p = self.reference.sample(self.reference.encode(t.obs), generator=self.generator).clamp(-1, 1)
            valid = t.mask.unsqueeze(-1).to(a_p.dtype)  # [b, h, 1]
            sq = ((t.actions - a_p) * valid).pow(2).sum(dim=(1, 2))
            rms = (sq / (valid.sum(dim=(1, 2)) * a_p.shape[-1]).clamp_min(1.0)).sqrt()  # [b]
        return ContrastPair(t.obs, t.actions, t.mask, a_p, self.cfg.reference_contrast_slope * rms,
                            self.cfg.reference_contrast_weight, "ref_contrast")  # fmt: skip

    def reference_step(self, imitation: TransitionBatch) -> dict[str, float]:
        """``reference_steps`` BC steps of the reference copy, each on its share of ``imitation``'s rows
        (the human's steps only), each followed by the EMA pi_ref <- (1 - rate) pi_ref + rate copy
        (``_move_reference``). Metrics are the last step's."""
        trainee = self.reference_trainee
        assert trainee is not None
        k = self.cfg.reference_steps
        rows = imitation.size // k
        if rows < 1:
            raise ValueError(f"the imitation batch has {imitation.size} rows, fewer than reference_steps {k}")
        out: dict[str, float] = {}
        for i in range(k):
            part = imitation if k == 1 else imitation.rows(slice(i * rows, (i + 1) * rows))
            steps = torch.from_numpy(supervised_mask(part, self.needs.imitation))
            loss, m = masked_bc_loss(trainee, part, steps, self.text_encoder, self.norm_stats, self.generator)
            out = {"reference/bc_loss": m["policy/bc_loss"],
                   "reference/supervised_step_frac": m["policy/supervised_step_frac"]}  # fmt: skip
            if bool(steps.any()):
                out["reference/grad_norm"] = optimizer_step(self.reference_opt, loss, self._reference_params, 1.0)
            self._move_reference(trainee)
        return out

    @torch.no_grad()
    def _move_reference(self, trainee: FlowPolicy) -> None:
        """pi_ref <- pi_ref + rate (copy - pi_ref) (parameters and buffers); with ``track_reference`` the
        same change is added to the policy (integer buffers are copied to both)."""
        rate = self.cfg.reference_ema
        ref, new = self.reference.state_dict(), trainee.state_dict()
        follower = self.policy.state_dict() if self.cfg.track_reference else None
        for key, p_ref in ref.items():
            p = new[key]
            if not p_ref.is_floating_point():
                p_ref.copy_(p)
                if follower is not None:
                    follower[key].copy_(p)
            elif follower is None:
                p_ref.lerp_(p, rate)
            else:
                delta = (p - p_ref).mul_(rate)
                p_ref.add_(delta)
                follower[key].add_(delta)

    def policy_due(self, step: int) -> bool:
        """Whether learner step ``step`` (0-based) runs QAM: after the warm-up, every ``policy_every``-th."""
        delay = self.cfg.policy_delay_steps
        return step >= delay and (step - delay) % self.cfg.policy_every == 0

    def policy_step(self, obs: dict) -> dict[str, float]:
        """One QAM step (section 4) against the target critic (mean of heads) and pi_ref."""
        self.policy.train()
        loss, metrics = self.qam_loss(obs)
        metrics["policy/grad_norm"] = optimizer_step(
            self.policy_opt, loss, self._policy_params, self.cfg.policy_grad_clip, self.policy_sched
        )
        return metrics

    def qam_loss(self, obs: dict) -> tuple[Tensor, dict[str, float]]:
        """QAM on the first ``cfg.qam_batch`` rows of ``obs`` (all if 0): rows are sampled at random,
        so a prefix is a uniform subsample."""
        rows = self.cfg.qam_batch
        if rows and rows < obs["state"].shape[0]:
            obs = slice_obs(obs, rows)
        if self.cfg.train_backbone:
            cond = self.policy.encode(obs)
        else:
            with torch.no_grad():
                cond = self.policy.encode(obs)
        with torch.no_grad():
            cond_ref = self.reference.encode(obs)
            f_ref = bound_velocity(self.reference, cond_ref)
        f_theta = bound_velocity(self.policy, cond)
        target_critic = self.value_critic.target_critic

        def q_fn(a):
            return target_critic(obs, a).mean(dim=0)

        b = cond.shape[0]
        x0 = torch.randn(
            b, self.policy.config.chunk_len, self.policy.config.action_dim, generator=self.generator
        ).to(cond.device)
        return qam_loss(f_theta, f_ref, q_fn, x0, self.cfg.qam, generator=self.generator)

    # -- publishing and checkpoints --------------------------------------------------------------
    def acting_policy(self) -> FlowPolicy:
        """The policy robots run: the trained policy itself."""
        return self.policy

    def policy_weights(self) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in self.policy.state_dict().items()}

    def state_dict(self) -> dict:
        extra = {}
        if self.reference_trainee is not None:
            extra = {"reference_trainee": self.reference_trainee.state_dict(),
                     "reference_opt": self.reference_opt.state_dict()}  # fmt: skip
        return {
            **extra,
            "policy": self.policy.state_dict(),
            "reference": self.reference.state_dict(),
            "learner": self.value_critic.state_dict(),  # the checkpoint key older stages wrote
            "policy_opt": self.policy_opt.state_dict(),
            "policy_sched": self.policy_sched.state_dict(),
            "step": self.step,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.reference.load_state_dict(state["reference"])
        self.value_critic.load_state_dict(state["learner"])
        self.policy_opt.load_state_dict(state["policy_opt"])
        self.policy_sched.load_state_dict(state["policy_sched"])
        self.step = int(state["step"])
        self.generator.set_state(state["generator"])
        if self.reference_trainee is not None:  # a frozen-reference stage: the copy starts at its pi_ref
            self.reference_trainee.load_state_dict(state.get("reference_trainee", state["reference"]))
            if "reference_opt" in state:
                self.reference_opt.load_state_dict(state["reference_opt"])


def build_lwd_algorithm(
    policy: FlowPolicy,
    text_encoder: TextEncoder,
    norm_stats: NormStats | None = None,
    cfg: LWDConfig = LWDConfig(),
    value: str = "divl",
    iql: IQLConfig | None = None,
    critic_hidden: int = 256,
    seed: int = 0,
) -> LWDAlgorithm:
    """LWD (``value="divl"``) or the IQL+QAM ablation (``value="iql"``) around an SFT FlowPolicy.

    The critic and value get their own encoders (sizes from ``critic_config_for``); the reference
    policy starts as a frozen copy of ``policy`` taken now (``cfg.reference`` says whether it moves).
    """
    ccfg = critic_config_for(policy.config, hidden=critic_hidden)
    if value == "divl":
        value_critic = DIVLUpdater.build(ccfg, cfg.divl, cfg.total_steps)
    elif value == "iql":
        value_critic = IQLUpdater(
            build_chunk_critic(ccfg), build_scalar_value(ccfg), iql or IQLConfig(), cfg.total_steps
        )
    else:
        raise ValueError(f"unknown value updater {value!r}; expected 'divl' or 'iql'")
    return LWDAlgorithm(policy, value_critic, text_encoder, norm_stats, cfg, seed=seed)
