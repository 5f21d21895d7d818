"""A minimal flow policy that is not the built-in one: the template for bringing your own.

:class:`MLPFlowPolicy` satisfies :class:`lwd.policy.protocol.FlowPolicyModel` with a few dozen lines:
an MLP encoder (state + instruction embedding + mean colour of each camera) and an MLP velocity head
over the flattened chunk. Its checkpoints name it (``"policy_class":
"lwd.policy.examples:MLPFlowPolicy"``), so it goes through SFT, DIVL + QAM, the registry, robot
clients and evaluation like the built-in FlowPolicy (tested in ``tests/policy/test_custom_policy.py``).
It is deliberately tiny and is not meant to solve tasks.

Shape letters: b batch, h chunk, a action dim, d state dim, e instruction width, c cond width.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lwd.policy.backbone import Obs
from lwd.policy.protocol import EulerSampling
from lwd.specs import RobotSpec
from lwd.utils.errors import ConfigError


@dataclass(frozen=True)
class MLPFlowPolicyConfig:
    """Sizes of an :class:`MLPFlowPolicy` (the :class:`~lwd.policy.protocol.PolicyConfig` fields + its own)."""

    state_dim: int
    """d, state vector length."""
    action_dim: int
    """a, action dimension (actions in [-1, 1])."""
    chunk_len: int = 4
    """h, control steps per chunk."""
    cameras: tuple[str, ...] = ()
    """Camera names; each contributes its mean RGB colour (3 numbers) to the encoder input."""
    image_size: int = 0
    """Square image side in pixels (0: state mode)."""
    flow_steps: int = 5
    """Euler steps when acting."""
    text_encoder: str = "hashing"
    """Instruction encoder name (``lwd.policy.language``)."""
    text_dim: int = 384
    """Instruction embedding width e."""
    hidden: int = 64
    """Width of both MLPs and of cond (units)."""

    def __post_init__(self) -> None:
        for name in ("state_dim", "action_dim", "chunk_len", "flow_steps", "text_dim", "hidden"):
            if getattr(self, name) < 1:
                raise ConfigError(f"MLPFlowPolicyConfig.{name} must be >= 1, got {getattr(self, name)}")

    def robot_spec(self) -> RobotSpec:
        return RobotSpec(self.state_dim, self.action_dim, tuple(self.cameras), self.image_size)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MLPFlowPolicyConfig:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown MLPFlowPolicyConfig fields {sorted(unknown)}")
        return cls(**{**d, "cameras": tuple(d.get("cameras", ()))})


class MLPFlowPolicy(EulerSampling, nn.Module):
    """``encode(obs) -> cond [b, c]``; ``velocity(cond, x [b, h, a], w [b]) -> [b, h, a]`` (lwd time)."""

    config_class: ClassVar[type[MLPFlowPolicyConfig]] = MLPFlowPolicyConfig

    def __init__(self, config: MLPFlowPolicyConfig) -> None:
        super().__init__()
        self.config = config
        n_in = config.state_dim + config.text_dim + 3 * len(config.cameras)
        k = config.hidden
        self.encoder = nn.Sequential(nn.Linear(n_in, k), nn.SiLU(), nn.Linear(k, k))
        flat = config.chunk_len * config.action_dim
        self.head = nn.Sequential(
            nn.Linear(flat + k + 1, k), nn.SiLU(), nn.Linear(k, k), nn.SiLU(), nn.Linear(k, flat)
        )

    def encode(self, obs: Obs) -> Tensor:
        state: Tensor = obs["state"]  # type: ignore[assignment]  # [b, d]
        images: dict[str, Tensor] = obs.get("images") or {}  # type: ignore[assignment]
        colours = [images[c].float().mean(dim=(1, 2)) / 255.0 for c in self.config.cameras]  # [b, 3] each
        emb: Tensor = obs["instruction_emb"]  # type: ignore[assignment]  # [b, e]
        return self.encoder(torch.cat([state, emb, *colours], dim=-1))  # [b, c]

    def velocity(self, cond: Tensor, x: Tensor, w: Tensor | float) -> Tensor:
        b = x.shape[0]
        wt = torch.as_tensor(w, dtype=x.dtype, device=x.device).expand(b)  # [b]
        out = self.head(torch.cat([x.reshape(b, -1), cond, wt[:, None]], dim=-1))
        return out.reshape(b, self.config.chunk_len, self.config.action_dim)

    def action_expert_parameters(self) -> Iterator[nn.Parameter]:
        return self.head.parameters()
