"""Critic-side networks: observation encoder, two-head chunk critic, categorical and scalar values.

The critic has its own encoder, never shared with the policy (docs/algorithms.md section 5).
Observation dict (torch): ``{"state": [b, d] float, "images": {cam: uint8 [b, H, W, 3]},
"instruction_emb": [b, 384] float}``; ``images`` may be empty or absent in state mode.
Shape letters: b batch, h chunk, a action dim, k atoms, e critic heads, c embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lwd.critic.targets import make_atoms

Obs = dict


@dataclass(frozen=True)
class CriticEncoderConfig:
    """Size of the critic-side observation encoder."""

    state_dim: int
    """Length of the low-dimensional state (float features)."""
    cameras: tuple[str, ...] = ()
    """Camera names; one small conv tower per camera (empty in state mode)."""
    instruction_dim: int = 384
    """Width of the frozen sentence embedding of the instruction (0: no instruction input)."""
    hidden: int = 256
    """Hidden width of the MLPs (units)."""
    embed: int = 256
    """Width of the output embedding c (units)."""
    conv_channels: int = 32
    """Channels of each conv layer of the per-camera tower (chosen)."""


def mlp(sizes: list[int], act=nn.Mish, final_act: bool = False) -> nn.Sequential:
    """Plain MLP with LayerNorm-free hidden layers (small, CPU friendly)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or final_act:
            layers.append(act())
    return nn.Sequential(*layers)


class _ConvTower(nn.Module):
    """uint8 [b, H, W, 3] -> [b, out]: three stride-2 convs and global average pooling."""

    def __init__(self, channels: int, out: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, channels, 5, stride=2, padding=2),
            nn.Mish(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1),
            nn.Mish(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1),
            nn.Mish(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(channels, out),
        )

    def forward(self, img: Tensor) -> Tensor:
        x = img.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        return self.net(x)


class CriticObsEncoder(nn.Module):
    """State MLP + optional conv tower per camera + projected instruction embedding -> [b, c]."""

    def __init__(self, cfg: CriticEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.state_net = mlp([cfg.state_dim, cfg.hidden, cfg.hidden], final_act=True)
        self.cams = nn.ModuleDict({cam: _ConvTower(cfg.conv_channels, cfg.hidden) for cam in cfg.cameras})
        self.instr_net = nn.Linear(cfg.instruction_dim, cfg.hidden) if cfg.instruction_dim > 0 else None
        n_parts = 1 + len(cfg.cameras) + (1 if self.instr_net is not None else 0)
        self.out = nn.Sequential(
            nn.Linear(n_parts * cfg.hidden, cfg.embed), nn.LayerNorm(cfg.embed), nn.Mish()
        )

    @property
    def out_dim(self) -> int:
        return self.cfg.embed

    def forward(self, obs: Obs) -> Tensor:
        parts = [self.state_net(obs["state"].float())]
        images = obs.get("images") or {}
        for cam in self.cfg.cameras:
            parts.append(self.cams[cam](images[cam]))
        if self.instr_net is not None:
            parts.append(self.instr_net(obs["instruction_emb"].float()))
        return self.out(torch.cat(parts, dim=-1))


class ChunkCritic(nn.Module):
    """Q_phi(s, a) for an action chunk with ``num_heads`` scalar heads (clipped double-Q, e=2).

    The chunk is attention-pooled (section 5): each step is embedded together with a learned
    position embedding, a query computed from the state embedding scores the steps, and the
    softmax-weighted sum is concatenated with the state embedding before each head's MLP.
    Padded steps (``action_mask`` False) are excluded from the pooling.
    """

    def __init__(
        self,
        encoder: nn.Module,
        horizon: int,
        action_dim: int,
        hidden: int = 256,
        num_heads: int = 2,
    ):
        super().__init__()
        self.encoder = encoder
        c = encoder.out_dim
        self.horizon, self.action_dim = horizon, action_dim
        self.step_embed = nn.Linear(action_dim, hidden)
        self.pos_embed = nn.Parameter(torch.zeros(horizon, hidden))
        nn.init.normal_(self.pos_embed, std=0.02)
        self.query = nn.Linear(c, hidden)
        self.value_proj = mlp([hidden, hidden, hidden])
        self.heads = nn.ModuleList(mlp([c + hidden, hidden, hidden, 1]) for _ in range(num_heads))

    @property
    def num_heads(self) -> int:
        return len(self.heads)

    def pool(self, emb: Tensor, actions: Tensor, action_mask: Tensor | None = None) -> Tensor:
        """Attention-pool actions [b, h, a] under state embedding emb [b, c] -> [b, hidden]."""
        tok = self.step_embed(actions.float()) + self.pos_embed[: actions.shape[1]]  # [b, h, hidden]
        scores = torch.einsum("bhd,bd->bh", tok, self.query(emb)) / tok.shape[-1] ** 0.5
        if action_mask is not None:
            scores = scores.masked_fill(~action_mask.bool(), float("-inf"))
        attn = torch.softmax(scores, dim=-1)
        return self.value_proj(torch.einsum("bh,bhd->bd", attn, tok))

    def forward(self, obs: Obs, actions: Tensor, action_mask: Tensor | None = None) -> Tensor:
        """Returns Q ``[e, b]``."""
        emb = self.encoder(obs)
        z = torch.cat([emb, self.pool(emb, actions, action_mask)], dim=-1)
        return torch.stack([head(z).squeeze(-1) for head in self.heads], dim=0)


class ValueDistribution(nn.Module):
    """Categorical V_psi(s): logits over fixed atoms (201 on [-0.1, 1.1], section 3)."""

    def __init__(
        self,
        encoder: nn.Module,
        num_atoms: int = 201,
        v_min: float = -0.1,
        v_max: float = 1.1,
        hidden: int = 256,
    ):
        super().__init__()
        self.encoder = encoder
        self.head = mlp([encoder.out_dim, hidden, num_atoms])
        self.register_buffer("atoms", make_atoms(num_atoms, v_min, v_max), persistent=False)

    def forward(self, obs: Obs) -> Tensor:
        """Returns logits ``[b, k]``."""
        return self.head(self.encoder(obs))

    def probs(self, obs: Obs) -> Tensor:
        return torch.softmax(self.forward(obs), dim=-1)

    def mean(self, obs: Obs) -> Tensor:
        """Expected value sum_k p_k v_k ``[b]``."""
        return self.probs(obs) @ self.atoms


class ScalarValue(nn.Module):
    """Scalar V_psi(s) for the IQL ablation (section 3.6). Returns ``[b]``."""

    def __init__(self, encoder: nn.Module, hidden: int = 256):
        super().__init__()
        self.encoder = encoder
        self.head = mlp([encoder.out_dim, hidden, 1])

    def forward(self, obs: Obs) -> Tensor:
        return self.head(self.encoder(obs)).squeeze(-1)


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, rate: float = 0.005) -> None:
    """target <- (1 - rate) target + rate online, for parameters; float buffers are copied likewise."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.lerp_(o, rate)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        if t.dtype.is_floating_point:
            t.lerp_(o, rate)
        else:
            t.copy_(o)


@dataclass(frozen=True)
class CriticConfig:
    """Sizes of the critic-side networks (each network gets its own encoder instance)."""

    encoder: CriticEncoderConfig
    """Observation encoder of the critic and of the value."""
    chunk_len: int
    """H, steps per action chunk."""
    action_dim: int
    """Action dimension (actions in [-1, 1])."""
    hidden: int = 256
    """Hidden width of heads and the chunk pooling (units)."""
    num_heads: int = 2
    """e, critic heads (clipped double-Q: 2)."""


def build_chunk_critic(cfg: CriticConfig) -> ChunkCritic:
    return ChunkCritic(
        CriticObsEncoder(cfg.encoder), cfg.chunk_len, cfg.action_dim, cfg.hidden, cfg.num_heads
    )


def build_value_distribution(cfg: CriticConfig, num_atoms: int, v_min: float, v_max: float) -> ValueDistribution:
    """The categorical value on ``num_atoms`` atoms over [``v_min``, ``v_max``]. The atoms are the value
    learner's setting (``lwd.algorithms.divl.DIVLConfig``, their one source), not the network's."""
    return ValueDistribution(CriticObsEncoder(cfg.encoder), num_atoms, v_min, v_max, cfg.hidden)


def build_scalar_value(cfg: CriticConfig) -> ScalarValue:
    return ScalarValue(CriticObsEncoder(cfg.encoder), cfg.hidden)
