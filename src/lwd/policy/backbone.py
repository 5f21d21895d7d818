"""The backbone interface: observation dict -> conditioning vector ``cond`` [b, c].

A :class:`FlowPolicy` is a backbone (perception + language) plus a flow action expert. The small
default :class:`SmallBackbone` trains on a CPU. QAM only trains the action expert online, so a
backbone may be frozen (``FlowPolicy.freeze_backbone``).

Plugging in a large pretrained VLA (pi0-style: PaliGemma backbone + action expert) on a GPU:

1. Wrap the VLM as a ``Backbone``: ``forward(obs)`` runs the vision-language model on
   ``obs["images"]`` and the tokenised instruction (keep the raw strings next to the embeddings, or
   pass tokens under an extra key) and returns a pooled prefix embedding [b, c] (or, for an
   attention-based expert, a prefix KV cache exposed through a richer expert; the protocol here
   covers the pooled case). Set ``out_dim``.
2. Load the pi0 action expert as the policy's ``action_expert``. pi0 integrates from ``t = 1``
   (noise) to ``t = 0`` and predicts ``u = x0 - x1``; lwd integrates ``w = 0 -> 1`` with
   ``v = x1 - x0``. Flip on load: call the expert with ``t = 1 - w`` and negate its output
   (:func:`lwd.policy.integrators.pi0_to_lwd` / ``pi0_velocity_to_lwd``). Nothing else changes:
   BC, the Euler sampler and QAM's memoryless SDE all speak lwd time.
3. Freeze the backbone (QAM trains only ``action_expert_parameters()``), move the policy to the
   GPU, and save weights through :mod:`lwd.policy.checkpoint` (safetensors, never pickle).
No weights are downloaded by this package.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor, nn

from lwd.policy.encoders import Fusion, ImageEncoder, StateEncoder

Obs = dict[str, object]
"""``{"state": float [b, d], "images": {cam: uint8 [b, H, W, 3]}, "instruction_emb": float [b, e]}``."""


@runtime_checkable
class Backbone(Protocol):
    """Maps an observation dict to ``cond`` [b, out_dim]; an ``nn.Module`` in practice."""

    out_dim: int

    def __call__(self, obs: Obs) -> Tensor: ...


class SmallBackbone(nn.Module):
    """State MLP + one conv encoder per camera + projected instruction embedding, fused by an MLP."""

    def __init__(
        self,
        state_dim: int,
        cameras: tuple[str, ...],
        text_dim: int,
        hidden_dim: int,
        cond_dim: int,
        conv_channels: tuple[int, ...] = (32, 64, 64),
    ) -> None:
        super().__init__()
        self.out_dim = cond_dim
        self.cameras = tuple(cameras)
        self.state_encoder = StateEncoder(state_dim, hidden_dim, hidden_dim)
        self.image_encoders = nn.ModuleDict(
            {c: ImageEncoder(hidden_dim, conv_channels) for c in self.cameras}
        )
        dims = [hidden_dim] * (1 + len(self.cameras))
        self.fusion = Fusion(dims, text_dim, hidden_dim, cond_dim)

    def forward(self, obs: Obs) -> Tensor:
        feats = [self.state_encoder(obs["state"])]
        images = obs.get("images") or {}
        for cam in self.cameras:
            if cam not in images:
                raise KeyError(f"observation lacks camera {cam!r}; policy expects {self.cameras}")
            feats.append(self.image_encoders[cam](images[cam]))
        return self.fusion(feats, obs["instruction_emb"])
