"""Small observation encoders that train on a CPU: state MLP, per-camera conv net, fusion.

Inputs follow the policy's observation dict (see :class:`lwd.policy.flow_policy.FlowPolicy`):
``state`` float [b, d] (already normalised), ``images`` cam -> uint8 [b, H, W, 3],
``instruction_emb`` float [b, e] from a frozen text encoder. The output is a conditioning vector
``cond`` [b, c] consumed by the flow action expert.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 2) -> nn.Sequential:
    """``layers`` Linear layers with LayerNorm + SiLU between them (no activation on the output)."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden), nn.LayerNorm(hidden), nn.SiLU()]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


class StateEncoder(nn.Module):
    """MLP over the normalised low-dimensional state: [b, d] -> [b, out_dim]."""

    def __init__(self, state_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.net = mlp(state_dim, hidden, out_dim, layers=2)

    def forward(self, state: Tensor) -> Tensor:
        return self.net(state)


class SpatialSoftmax(nn.Module):
    """Feature map [b, C, H', W'] -> expected (x, y) keypoint per channel [b, 2C].

    Keypoints keep *where* things are, which global pooling throws away; manipulation needs it.
    """

    def forward(self, feat: Tensor) -> Tensor:
        b, c, hh, ww = feat.shape
        attn = torch.softmax(feat.reshape(b, c, hh * ww), dim=-1).reshape(b, c, hh, ww)
        ys = torch.linspace(-1.0, 1.0, hh, device=feat.device, dtype=feat.dtype)
        xs = torch.linspace(-1.0, 1.0, ww, device=feat.device, dtype=feat.dtype)
        ex = (attn.sum(dim=2) * xs).sum(dim=-1)  # [b, C]
        ey = (attn.sum(dim=3) * ys).sum(dim=-1)  # [b, C]
        return torch.cat([ex, ey], dim=-1)


class ImageEncoder(nn.Module):
    """One camera: uint8 [b, H, W, 3] -> [b, out_dim].

    Pixels are scaled to [0, 1] and centred; three stride-2 3x3 convs (64 -> 8 or 16 -> 2 pixels),
    a spatial softmax and a linear projection.
    """

    def __init__(self, out_dim: int, channels: tuple[int, ...] = (32, 64, 64)) -> None:
        super().__init__()
        convs: list[nn.Module] = []
        cin = 3
        for cout in channels:
            convs += [nn.Conv2d(cin, cout, kernel_size=3, stride=2, padding=1), nn.SiLU()]
            cin = cout
        self.convs = nn.Sequential(*convs[:-1])  # no activation before the softmax
        self.keypoints = SpatialSoftmax()
        self.proj = nn.Sequential(nn.Linear(2 * cin, out_dim), nn.LayerNorm(out_dim))

    def forward(self, image: Tensor) -> Tensor:
        if image.dtype != torch.uint8:
            raise TypeError(f"images must be uint8 [b, H, W, 3], got {image.dtype}")
        x = image.permute(0, 3, 1, 2).float() / 255.0 - 0.5  # [b, 3, H, W]
        return self.proj(self.keypoints(self.convs(x)))


class Fusion(nn.Module):
    """Concatenate the per-modality features with the projected instruction embedding -> cond [b, c]."""

    def __init__(self, feature_dims: list[int], text_dim: int, hidden: int, cond_dim: int) -> None:
        super().__init__()
        self.text_proj = nn.Sequential(nn.Linear(text_dim, hidden), nn.LayerNorm(hidden))
        self.net = nn.Sequential(mlp(sum(feature_dims) + hidden, hidden, cond_dim, layers=2), nn.SiLU())

    def forward(self, features: list[Tensor], instruction_emb: Tensor) -> Tensor:
        return self.net(torch.cat([*features, self.text_proj(instruction_emb)], dim=-1))
