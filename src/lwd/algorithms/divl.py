"""DIVL: Distributional Implicit Value Learning (docs/algorithms.md section 3).

Networks (``lwd.critic.networks``): a two-head critic Q_phi(s, a) -> [e, b] with an EMA target copy
Q_phibar, and a categorical value V_psi(s) -> logits [b, k] over fixed atoms. The value models the
distribution of target-critic values of *replay* actions at s (in-sample, no max, no distributional
Bellman backup). One batch (3.5): value step -> critic target with the new value -> critic step -> EMA.

Observations are dicts of tensors (see ``lwd.critic.networks``); actions [b, h, a]; action_mask [b, h].
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lwd.algorithms.base import adam, cosine_schedule, optimizer_step
from lwd.critic.networks import CriticConfig, build_chunk_critic, build_value_distribution, ema_update
from lwd.critic.targets import (
    adaptive_tau,
    make_atoms,
    normalized_entropy,
    quantile_readout,
    two_atom_projection,
)


@dataclass(frozen=True)
class DIVLConfig:
    """Value and critic learning (section 3). Set ``alpha = 0`` for the constant-tau ablation."""

    num_atoms: int = 201
    """K, number of value atoms (paper: 201)."""
    v_min: float = -0.1
    """Lowest atom v_1, in units of return (paper: -0.1)."""
    v_max: float = 1.1
    """Highest atom v_K, in units of return (paper: 1.1)."""
    tau_base: float = 0.6
    """Base quantile level, dimensionless (paper: 0.6 offline, 0.9 online)."""
    alpha: float = 0.3
    """Entropy slope of tau, dimensionless (paper: 0.3; 0 = constant tau)."""
    tau_min: float = 0.5
    """Lower clip of tau (chosen; the paper omits it)."""
    tau_max: float = 0.95
    """Upper clip of tau (chosen; the paper omits it)."""
    ema_rate: float = 0.005
    """Target-critic EMA rate per learner step (paper: 0.005)."""
    lr: float = 5e-4
    """Adam learning rate of value and critic (paper: 5e-4, cosine decay)."""
    grad_clip: float = 10.0
    """Global gradient-norm clip of value and critic, 0 disables (chosen)."""


def min_target_q(target_critic: nn.Module, obs: dict, actions: Tensor, action_mask: Tensor | None) -> Tensor:
    """q = min_e Q_phibar(s, a) at the replay action, no gradient. Returns ``[b]``."""
    with torch.no_grad():
        return target_critic(obs, actions, action_mask).min(dim=0).values


def divl_value_loss(
    value_net: nn.Module,
    target_critic: nn.Module,
    obs: dict,
    actions: Tensor,
    atoms: Tensor,
    action_mask: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """L_V = -E_D [ sum_i m_i log p_psi(i | s) ] (section 3.1, eq. L_V).

    m = two-atom projection of q = min over the two target heads at the replay action (clipped to
    [v_1, v_K]); no gradient flows into the target critic.
    """
    q = min_target_q(target_critic, obs, actions, action_mask)
    m = two_atom_projection(q, atoms)  # [b, k]
    logp = torch.log_softmax(value_net(obs), dim=-1)
    loss = -(m * logp).sum(-1).mean()
    with torch.no_grad():
        p = logp.exp()
        metrics = {
            "value/ce_loss": float(loss),
            "value/entropy": float(normalized_entropy(p).mean()),
            "value/mean": float((p @ atoms).mean()),
            "value/target_q_mean": float(q.mean()),
        }
    return loss, metrics


def divl_bootstrap(
    value_net: nn.Module, next_obs: dict, cfg: DIVLConfig, atoms: Tensor
) -> tuple[Tensor, dict]:
    """Quant_{tau(s')}(V_psi(s')) with the entropy-adaptive tau (sections 3.2-3.3), no gradient. ``[b]``."""
    with torch.no_grad():
        p = torch.softmax(value_net(next_obs), dim=-1)
        hn = normalized_entropy(p)
        tau = adaptive_tau(hn, cfg.tau_base, cfg.alpha, cfg.tau_min, cfg.tau_max)
        v = quantile_readout(p, tau, atoms)
    return v, {
        "value/next_entropy": float(hn.mean()),
        "value/tau": float(tau.mean()),
        "value/quantile": float(v.mean()),
    }


def td_target(reward: Tensor, discount: Tensor, bootstrap: Tensor) -> Tensor:
    """y = rbar + gamma^{nH} (1 - done) V(s') (section 3.4); ``discount`` already folds gamma^{nH}(1-done)."""
    return (reward + discount * bootstrap).detach()


def critic_mse_loss(
    critic: nn.Module, obs: dict, actions: Tensor, y: Tensor, action_mask: Tensor | None = None
) -> tuple[Tensor, dict[str, float]]:
    """Both heads regress y with MSE (section 3.4): sum_e E_b (Q_e(s, a) - y)^2."""
    q = critic(obs, actions, action_mask)  # [e, b]
    per_head = (q - y.unsqueeze(0)).pow(2).mean(-1)
    loss = per_head.sum()
    with torch.no_grad():
        metrics = {
            "critic/td_loss": float(per_head.mean()),
            "critic/q_mean": float(q.mean()),
            "critic/q_min_mean": float(q.min(0).values.mean()),
            "critic/target_mean": float(y.mean()),
        }
    return loss, metrics


@dataclass
class ContrastPair:
    """Two chunks at the same states where ``better`` should rank above ``worse`` (our addition,
    algorithms.md section 3.7, not in the paper). Tensors: obs dict of [b, ...]; better [b, h, a] with
    better_mask [b, h]; worse [b, h, a] (every step exists); margin in Q units, a float or ``[b]``."""

    obs: dict
    better: Tensor
    better_mask: Tensor
    worse: Tensor
    margin: float | Tensor
    weight: float
    name: str = "contrast"
    """Metric prefix: ``critic/<name>_loss``, ``_acc``, ``_gap``."""


def contrast_loss(
    critic: nn.Module,
    target_critic: nn.Module,
    obs: dict,
    human: Tensor,
    human_mask: Tensor,
    rejected: Tensor,
    margin: float | Tensor,
    name: str = "contrast",
) -> tuple[Tensor, dict[str, float]]:
    """Same-state contrast (our addition, algorithms.md section 3.7, not in the paper).

    At a state s the human's chunk a_h is ranked above another chunk a_p (the policy's proposal the
    human rejected at a take-over, or a pi_ref sample where the human acted) by at least ``margin``
    (Q units; a float or one per row). Each head is pushed down where it breaks the rule, against the
    target critic's value of the human's chunk (no gradient there, so the executed actions keep their
    TD targets):

      L_C = sum_e E_b [ max(0, Q_e(s, a_p) - (min_e' Q_phibar(s, a_h) - margin))^2 ]

    human [b, h, a] with human_mask [b, h]; rejected [b, h, a] (every step exists). Returns
    ``(loss, metrics)``; ``critic/<name>_acc`` is P[min_e Q(s, a_h) > min_e Q(s, a_p)] on the batch.
    """
    q_h = min_target_q(target_critic, obs, human, human_mask)  # [b]
    q_p = critic(obs, rejected, None)  # [e, b]
    loss = torch.relu(q_p - (q_h - margin).unsqueeze(0)).pow(2).mean(-1).sum()
    with torch.no_grad():
        q_h_online = critic(obs, human, human_mask).min(0).values
        metrics = {
            f"critic/{name}_loss": float(loss.detach()),
            f"critic/{name}_acc": float((q_h_online > q_p.min(0).values).float().mean()),
            f"critic/{name}_gap": float((q_h_online - q_p.min(0).values).mean()),
        }
    return loss, metrics


class ValueCriticUpdater:
    """Shared update order of section 3.5 for DIVL and the IQL ablation.

    Subclasses define :meth:`value_loss` and :meth:`bootstrap`. ``update`` runs, per batch:
    value step, target y with the *just-updated* value, critic step, EMA of the target critic.
    """

    def __init__(
        self,
        critic: nn.Module,
        value_net: nn.Module,
        lr: float,
        ema_rate: float,
        grad_clip: float,
        total_steps: int = 0,
    ):
        self.critic = critic
        self.target_critic = copy.deepcopy(critic).requires_grad_(False)
        self.value_net = value_net
        self.ema_rate, self.grad_clip = ema_rate, grad_clip
        self.value_opt = adam(value_net.parameters(), lr)
        self.critic_opt = adam(critic.parameters(), lr)
        self.value_sched = cosine_schedule(self.value_opt, total_steps)
        self.critic_sched = cosine_schedule(self.critic_opt, total_steps)

    def value_loss(self, obs, actions, action_mask) -> tuple[Tensor, dict]:
        raise NotImplementedError

    def bootstrap(self, next_obs) -> tuple[Tensor, dict]:
        raise NotImplementedError

    def value_step(self, obs: dict, actions: Tensor, action_mask: Tensor | None) -> dict[str, float]:
        loss, m = self.value_loss(obs, actions, action_mask)
        m["value/grad_norm"] = optimizer_step(
            self.value_opt, loss, self.value_net.parameters(), self.grad_clip, self.value_sched
        )
        return m

    def compute_target(self, next_obs: dict, reward: Tensor, discount: Tensor) -> tuple[Tensor, dict]:
        v, m = self.bootstrap(next_obs)
        return td_target(reward, discount, v), m

    def critic_step(
        self, obs, actions, action_mask, y: Tensor, contrasts: Sequence[ContrastPair] = ()
    ) -> dict[str, float]:
        """MSE to y (3.4), plus, per same-state pair, its weight x its contrast loss (section 3.7)."""
        loss, m = critic_mse_loss(self.critic, obs, actions, y, action_mask)
        for c in contrasts:
            if c.weight > 0:
                c_loss, cm = contrast_loss(self.critic, self.target_critic, c.obs, c.better, c.better_mask,
                                           c.worse, c.margin, c.name)  # fmt: skip
                loss = loss + c.weight * c_loss
                m.update(cm)
        m["critic/grad_norm"] = optimizer_step(
            self.critic_opt, loss, self.critic.parameters(), self.grad_clip, self.critic_sched
        )
        return m

    def ema_step(self) -> None:
        ema_update(self.target_critic, self.critic, self.ema_rate)

    def update(
        self,
        obs: dict,
        actions: Tensor,
        reward: Tensor,
        discount: Tensor,
        next_obs: dict,
        action_mask: Tensor | None = None,
        contrasts: Sequence[ContrastPair] = (),
    ) -> dict[str, float]:
        """One batch in the order of section 3.5 (the policy step, if any, comes after); ``contrasts``
        optional, see :meth:`critic_step`."""
        metrics = self.value_step(obs, actions, action_mask)
        y, m = self.compute_target(next_obs, reward, discount)
        metrics.update(m)
        metrics.update(self.critic_step(obs, actions, action_mask, y, contrasts))
        self.ema_step()
        return metrics

    def modules(self) -> dict[str, nn.Module]:
        return {"critic": self.critic, "target_critic": self.target_critic, "value": self.value_net}

    def state_dict(self) -> dict:
        out = {k: m.state_dict() for k, m in self.modules().items()}
        out.update(
            value_opt=self.value_opt.state_dict(),
            critic_opt=self.critic_opt.state_dict(),
            value_sched=self.value_sched.state_dict(),
            critic_sched=self.critic_sched.state_dict(),
        )
        return out

    def load_state_dict(self, state: dict) -> None:
        for k, m in self.modules().items():
            m.load_state_dict(state[k])
        self.value_opt.load_state_dict(state["value_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.value_sched.load_state_dict(state["value_sched"])
        self.critic_sched.load_state_dict(state["critic_sched"])


class DIVLUpdater(ValueCriticUpdater):
    """DIVL value (categorical, cross-entropy to the two-atom projection) + two-head critic."""

    def __init__(
        self, critic: nn.Module, value_net: nn.Module, cfg: DIVLConfig = DIVLConfig(), total_steps: int = 0
    ):
        super().__init__(critic, value_net, cfg.lr, cfg.ema_rate, cfg.grad_clip, total_steps)
        self.cfg = cfg
        self.atoms = make_atoms(cfg.num_atoms, cfg.v_min, cfg.v_max)
        net_atoms = getattr(value_net, "atoms", None)
        if net_atoms is not None and (net_atoms.shape != self.atoms.shape or not torch.allclose(net_atoms.cpu(), self.atoms)):
            raise ValueError(
                f"the value network's {net_atoms.shape[0]} atoms on [{float(net_atoms[0])}, {float(net_atoms[-1])}] "
                f"differ from DIVLConfig's {cfg.num_atoms} on [{cfg.v_min}, {cfg.v_max}]; build it with "
                "DIVLUpdater.build (the atoms come from DIVLConfig only)"
            )

    @classmethod
    def build(cls, critic_cfg: CriticConfig, cfg: DIVLConfig = DIVLConfig(), total_steps: int = 0) -> DIVLUpdater:
        """Critic and categorical value of ``critic_cfg`` with ``cfg``'s atoms (their one source)."""
        value_net = build_value_distribution(critic_cfg, cfg.num_atoms, cfg.v_min, cfg.v_max)
        return cls(build_chunk_critic(critic_cfg), value_net, cfg, total_steps)

    def value_loss(self, obs, actions, action_mask):
        return divl_value_loss(self.value_net, self.target_critic, obs, actions, self.atoms, action_mask)

    def bootstrap(self, next_obs):
        return divl_bootstrap(self.value_net, next_obs, self.cfg, self.atoms)

    def state_value(self, obs: dict) -> Tensor:
        """Expected value E_p[v] under V_psi(s), ``[b]`` (used e.g. by RECAP's indicator)."""
        with torch.no_grad():
            return torch.softmax(self.value_net(obs), dim=-1) @ self.atoms
