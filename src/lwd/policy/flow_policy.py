"""FlowPolicy: a backbone (observation -> cond) plus a flow-matching action expert over the chunk.

The action expert ``f(s, x_w, w)`` predicts the velocity ``x1 - x0`` of the linear interpolant for
the *whole* chunk at once (lwd time convention, see :mod:`lwd.policy.integrators`). Acting draws
``x0 ~ N(0, I)`` [b, h, a] and integrates the Euler ODE with ``flow_steps`` steps.

Action space: the policy works in the robot's normalised action space [-1, 1] (robots already
report actions there). If the norm stats carry an ``"actions"`` entry, actions are additionally
standardised per dimension before training and unstandardised after sampling
(:mod:`lwd.policy.batching`); without it the internal space *is* the robot space, which is the
default and what QAM's critic gradient assumes.

Shape letters: b batch, h chunk, a action dim, c cond width, s flow steps.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lwd.policy.backbone import Obs, SmallBackbone
from lwd.policy.integrators import euler_sample
from lwd.specs import RobotSpec
from lwd.utils.errors import ConfigError


@dataclass(frozen=True)
class FlowPolicyConfig:
    """Sizes of a :class:`FlowPolicy`. Saved with every checkpoint (JSON) and checked on load."""

    state_dim: int
    """Length of the (normalised) state vector, dimensionless floats."""
    action_dim: int
    """Action dimension; actions in [-1, 1] (robot-normalised units)."""
    chunk_len: int = 8
    """H, control steps per action chunk executed open-loop. 8 (chosen): long enough to smooth
    multimodal demos and cut policy calls 8x, short enough to replan on our fast simulated tasks
    (the paper's 30 is 1 s at 30 Hz on real robots)."""
    cameras: tuple[str, ...] = ()
    """Camera names read from ``obs["images"]`` (empty: state mode)."""
    image_size: int = 0
    """Square image side in pixels (64 for simulated cameras, 16 in the fake env; 0 in state mode)."""
    hidden_dim: int = 256
    """Width of the encoders and fusion MLP, units."""
    cond_dim: int = 256
    """Width c of the conditioning vector handed to the action expert, units."""
    expert_width: int = 256
    """Width of the action expert's residual MLP, units."""
    expert_depth: int = 3
    """Number of residual blocks in the action expert."""
    conv_channels: tuple[int, ...] = (32, 64, 64)
    """Output channels of the stride-2 3x3 convs of each camera encoder."""
    flow_steps: int = 10
    """K, Euler steps from noise (w=0) to action (w=1) when acting."""
    text_encoder: str = "minilm"
    """Instruction encoder name: ``"minilm"`` (frozen all-MiniLM-L6-v2) or ``"hashing"`` (tests)."""
    text_dim: int = 384
    """Instruction embedding width e (384 for both built-in encoders)."""
    time_emb_dim: int = 64
    """Width of the sinusoidal flow-time embedding, units."""

    def __post_init__(self) -> None:
        for name in ("state_dim", "action_dim", "chunk_len", "flow_steps", "text_dim", "expert_depth"):
            if getattr(self, name) < 1:
                raise ConfigError(f"FlowPolicyConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.cameras and self.image_size < 1:
            raise ConfigError("FlowPolicyConfig: cameras are set but image_size is 0")

    def robot_spec(self) -> RobotSpec:
        """The robot interface this policy consumes."""
        return RobotSpec(self.state_dim, self.action_dim, tuple(self.cameras), self.image_size)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(d: dict) -> FlowPolicyConfig:
        known = {f.name for f in dataclasses.fields(FlowPolicyConfig)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown FlowPolicyConfig fields {sorted(unknown)}")
        d = dict(d)
        for key in ("cameras", "conv_channels"):
            if key in d:
                d[key] = tuple(d[key])
        return FlowPolicyConfig(**d)


class TimeEmbedding(nn.Module):
    """Flow time w [b] in [0, 1] -> [b, dim]: sinusoids over log-spaced frequencies, then an MLP."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        freqs = torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(1000.0) / max(half - 1, 1)))
        self.register_buffer("freqs", freqs * 1000.0, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * half, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, w: Tensor) -> Tensor:
        arg = w[:, None] * self.freqs[None, :]
        return self.mlp(torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1))


class ResidualBlock(nn.Module):
    """Pre-norm residual MLP block with FiLM from the context (cond + time): x + MLP(film(LN(x)))."""

    def __init__(self, width: int, ctx_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.film = nn.Linear(ctx_dim, 2 * width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.SiLU(), nn.Linear(2 * width, width))

    def forward(self, x: Tensor, ctx: Tensor) -> Tensor:
        scale, shift = self.film(ctx).chunk(2, dim=-1)
        return x + self.mlp(self.norm(x) * (1.0 + scale) + shift)


class ActionExpert(nn.Module):
    """``f(cond [b, c], x [b, h, a], w [b]) -> velocity [b, h, a]`` over the flattened chunk."""

    def __init__(self, cfg: FlowPolicyConfig) -> None:
        super().__init__()
        self.chunk_len, self.action_dim = cfg.chunk_len, cfg.action_dim
        flat = cfg.chunk_len * cfg.action_dim
        ctx_dim = cfg.cond_dim + cfg.time_emb_dim
        self.time_emb = TimeEmbedding(cfg.time_emb_dim)
        self.inp = nn.Linear(flat + ctx_dim, cfg.expert_width)
        self.blocks = nn.ModuleList(ResidualBlock(cfg.expert_width, ctx_dim) for _ in range(cfg.expert_depth))
        self.out_norm = nn.LayerNorm(cfg.expert_width)
        self.out = nn.Linear(cfg.expert_width, flat)

    def forward(self, cond: Tensor, x: Tensor, w: Tensor) -> Tensor:
        b = x.shape[0]
        ctx = torch.cat([cond, self.time_emb(w)], dim=-1)
        hdn = self.inp(torch.cat([x.reshape(b, -1), ctx], dim=-1))
        for blk in self.blocks:
            hdn = blk(hdn, ctx)
        return self.out(self.out_norm(hdn)).reshape(b, self.chunk_len, self.action_dim)

    def conditioned(self, cond: Tensor) -> Callable[[Tensor, Tensor | float], Tensor]:
        """``f(x [b, h, a], w [b] or a float) -> velocity [b, h, a]`` for a fixed ``cond`` [b, c]; the same
        function as :meth:`forward` (tested), for many calls on one conditioning (QAM: ~4K calls).

        The context enters ``inp`` and every FiLM layer linearly, so its cond part (W_c cond + bias)
        is computed once here, and its time part (W_t temb(w)) once per flow time and grad mode,
        on one row when the whole batch shares w (a flow-time grid) and then broadcast.
        """
        flat, c = self.chunk_len * self.action_dim, cond.shape[-1]
        w_inp = self.inp.weight
        inp_cond = F.linear(cond, w_inp[:, flat : flat + c], self.inp.bias)  # [b, width]
        film_cond = [F.linear(cond, blk.film.weight[:, :c], blk.film.bias) for blk in self.blocks]
        cache: dict[tuple[float, bool], tuple[Tensor, list[Tensor]]] = {}

        def time_terms(w: Tensor | float) -> tuple[Tensor, list[Tensor]]:
            if isinstance(w, Tensor) and w.ndim > 0 and not bool((w == w[0]).all()):
                shared, rows = False, w
            else:  # one flow time for the whole batch
                value = float(w if not isinstance(w, Tensor) or w.ndim == 0 else w[0])
                shared, rows = True, torch.full((1,), value, dtype=cond.dtype, device=cond.device)
            key = (float(rows[0]), torch.is_grad_enabled())
            if shared and key in cache:
                return cache[key]
            temb = self.time_emb(rows)
            out = (F.linear(temb, w_inp[:, flat + c :]), [F.linear(temb, blk.film.weight[:, c:]) for blk in self.blocks])
            if shared:
                cache[key] = out
            return out

        def f(x: Tensor, w: Tensor | float) -> Tensor:
            b = x.shape[0]
            inp_t, film_t = time_terms(w)
            hdn = F.linear(x.reshape(b, -1), w_inp[:, :flat]) + inp_cond + inp_t
            for blk, fc, ft in zip(self.blocks, film_cond, film_t, strict=True):
                scale, shift = (fc + ft).chunk(2, dim=-1)
                hdn = hdn + blk.mlp(blk.norm(hdn) * (1.0 + scale) + shift)
            return self.out(self.out_norm(hdn)).reshape(b, self.chunk_len, self.action_dim)

        return f


class FlowPolicy(nn.Module):
    """The network: ``encode(obs) -> cond``, ``velocity(cond, x, w)``, ``sample(cond) -> actions``.

    ``obs = {"state": float [b, d] (normalised), "images": {cam: uint8 [b, H, W, 3]},
    "instruction_emb": float [b, e]}``. Satisfies :class:`lwd.policy.protocol.FlowPolicyModel`.
    """

    config_class: ClassVar[type[FlowPolicyConfig]] = FlowPolicyConfig

    def __init__(self, config: FlowPolicyConfig, backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone or SmallBackbone(
            config.state_dim,
            tuple(config.cameras),
            config.text_dim,
            config.hidden_dim,
            config.cond_dim,
            tuple(config.conv_channels),
        )
        self.action_expert = ActionExpert(config)

    def encode(self, obs: Obs) -> Tensor:
        """Observation dict -> cond [b, c]."""
        return self.backbone(obs)

    def velocity(self, cond: Tensor, x: Tensor, w: Tensor | float) -> Tensor:
        """Action-expert velocity ``f(s, x_w, w)``: cond [b, c], x [b, h, a], w [b] (or scalar) -> [b, h, a]."""
        w = torch.as_tensor(w, dtype=x.dtype, device=x.device)
        if w.ndim == 0:
            w = w.expand(x.shape[0])
        return self.action_expert(cond, x, w)

    def velocity_fn(self, cond: Tensor) -> Callable[[Tensor, Tensor | float], Tensor]:
        """``velocity`` with ``cond`` bound, for many calls on one conditioning (``x``, ``w`` [b] ->
        [b, h, a]); the cond and per-time projections are computed once (``ActionExpert.conditioned``)."""
        return self.action_expert.conditioned(cond)

    @torch.no_grad()
    def sample(
        self,
        cond: Tensor,
        steps: int | None = None,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Euler-ODE sample (no gradients): cond [b, c] -> actions [b, h, a] in the policy's space.

        ``noise`` [b, h, a] is x0 (drawn from ``generator`` if None); ``steps`` defaults to K.
        """
        if noise is None:
            noise = self.noise(cond.shape[0], generator=generator).to(cond.device)
        k = steps or self.config.flow_steps
        return euler_sample(lambda x, w: self.velocity(cond, x, w), noise, steps=k)

    def noise(self, batch: int, generator: torch.Generator | None = None) -> Tensor:
        """Standard normal x0 [b, h, a] (float32, CPU)."""
        return torch.randn(batch, self.config.chunk_len, self.config.action_dim, generator=generator)

    def action_expert_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the action expert only (what QAM trains when the backbone is frozen)."""
        return self.action_expert.parameters()

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        return self.backbone.parameters()

    def freeze_backbone(self) -> None:
        """Stop gradients into the backbone (``requires_grad = False``)."""
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    @property
    def robot_spec(self) -> RobotSpec:
        return self.config.robot_spec()
