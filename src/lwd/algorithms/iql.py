"""The DIVL ablation: scalar expectile value (IQL), docs/algorithms.md section 3.6.

Same two-head critic, target critic, update order (3.5) and QAM extraction as LWD; only the value
differs: a scalar V_psi(s) fitted with |tau - 1(u<0)| u^2, u = min_e Q_phibar(s, a) - V(s), and the
bootstrap y = rbar + gamma^{nH}(1 - done) V(s').
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lwd.algorithms.divl import ValueCriticUpdater, min_target_q
from lwd.critic.targets import expectile_loss


@dataclass(frozen=True)
class IQLConfig:
    """Scalar expectile value learning (section 3.6)."""

    expectile: float = 0.7
    """Expectile tau, dimensionless (chosen: IQL's usual 0.7; the paper does not give it)."""
    ema_rate: float = 0.005
    """Target-critic EMA rate per learner step (as DIVL)."""
    lr: float = 5e-4
    """Adam learning rate of value and critic (as DIVL)."""
    grad_clip: float = 10.0
    """Global gradient-norm clip, 0 disables (chosen)."""


def iql_value_loss(
    value_net: nn.Module,
    target_critic: nn.Module,
    obs: dict,
    actions: Tensor,
    expectile: float,
    action_mask: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """L_V = E_D |tau - 1(u < 0)| u^2, u = min_e Q_phibar(s, a) - V_psi(s) (section 3.6)."""
    q = min_target_q(target_critic, obs, actions, action_mask)
    v = value_net(obs)
    loss = expectile_loss(q - v, expectile).mean()
    metrics = {
        "value/expectile_loss": float(loss.detach()),
        "value/mean": float(v.detach().mean()),
        "value/target_q_mean": float(q.mean()),
        "value/tau": float(expectile),
    }
    return loss, metrics


class IQLUpdater(ValueCriticUpdater):
    """Scalar expectile value + two-head critic, same order as DIVL (value, target, critic, EMA)."""

    def __init__(
        self, critic: nn.Module, value_net: nn.Module, cfg: IQLConfig = IQLConfig(), total_steps: int = 0
    ):
        super().__init__(critic, value_net, cfg.lr, cfg.ema_rate, cfg.grad_clip, total_steps)
        self.cfg = cfg

    def value_loss(self, obs, actions, action_mask):
        return iql_value_loss(
            self.value_net, self.target_critic, obs, actions, self.cfg.expectile, action_mask
        )

    def bootstrap(self, next_obs):
        with torch.no_grad():
            v = self.value_net(next_obs)
        return v, {"value/next_mean": float(v.mean())}

    def state_value(self, obs: dict) -> Tensor:
        with torch.no_grad():
            return self.value_net(obs)
