"""LeRobot's SmolVLA flow-matching core as an lwd flow policy (:class:`LeRobotFlowPolicy`).

LeRobot (``lerobot.policies.smolvla.modeling_smolvla.VLAFlowMatching``, lerobot 0.4.4) denoises an
action chunk with an action expert that attends to a VLM prefix (images, language tokens, state):

* ``embed_prefix(images, img_masks, lang_tokens, lang_masks, state=state) -> (embs, pad_masks,
  att_masks)``; ``vlm_with_expert.forward(attention_mask, position_ids, past_key_values=None,
  inputs_embeds=[embs, None], use_cache=True, fill_kv_cache=True) -> (_, kv)`` caches the prefix;
* ``denoise_step(prefix_pad_masks, past_key_values, x_t, timestep) -> u`` [b, chunk, max_action_dim].

Time convention: LeRobot integrates from ``t = 1`` (noise) to ``t = 0`` (action) and predicts
``u = noise - action``; lwd uses ``w = 0`` noise, ``w = 1`` action, ``v = action - noise``. So
``velocity(cond, x, w) = -denoise_step(..., x, t = 1 - w)`` (:func:`lwd.policy.integrators.pi0_to_lwd`).

Mapping: ``encode`` runs the prefix once and packs the key/value cache and the prefix pad mask into
one batch-first tensor ``cond`` [b, L, 1 + layers * 2 * kv_width] (lwd treats cond as opaque);
``velocity`` unpacks it and calls ``denoise_step``. State and actions are zero-padded to LeRobot's
``max_state_dim`` / ``max_action_dim`` (padded action dims are held at 0 along lwd's flow). Images
uint8 [b, H, W, 3] become float [b, 3, S, S] in [-1, 1] (SigLIP's range, as LeRobot's
``prepare_images``). Language tokens come from the instruction "embedding" written by
:class:`VLATokenEncoder` (token id / vocab size, -1 for padding, in the last ``max_tokens`` columns).
QAM trains ``action_expert_parameters``: the LM expert and the action/time projections.

pi0 and pi0.5 (``PI0Pytorch``, ``PI05Pytorch``) differ: pi0 passes the state to ``denoise_step``
(``denoise_step(state, prefix_pad_masks, past_key_values, x_t, timestep)``) and both cache the prefix
through ``paligemma_with_expert`` with a transformers ``DynamicCache``; they are not wrapped here.
Nothing is downloaded: the model comes from ``model_factory`` (your code, e.g. loading a local
checkpoint directory). Shape letters: b batch, h chunk, a action dim, L prefix length.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lwd.policy.backbone import Obs
from lwd.policy.integrators import pi0_to_lwd
from lwd.policy.language import TextEncoder
from lwd.policy.protocol import EulerSampling
from lwd.specs import RobotSpec
from lwd.utils.errors import ConfigError
from lwd.utils.imports import load_callable


@dataclass(frozen=True)
class LeRobotFlowPolicyConfig:
    """A LeRobot flow model behind lwd's interface (PolicyConfig fields + how to build the model)."""

    state_dim: int
    """d, robot state length (padded to the model's ``max_state_dim``)."""
    action_dim: int
    """a, robot action dimension (padded to the model's ``max_action_dim``)."""
    chunk_len: int
    """h, must equal the model's ``config.chunk_size``."""
    model_factory: str
    """``"package.module:function"`` returning the LeRobot flow model (``VLAFlowMatching``) when
    called with ``**model_options``; it must not download anything."""
    model_options: dict[str, Any] = field(default_factory=dict)
    """JSON keyword arguments of ``model_factory`` (e.g. a local checkpoint directory)."""
    cameras: tuple[str, ...] = ()
    """Cameras fed to the VLM, in this order."""
    image_size: int = 0
    """Robot image side in pixels."""
    vlm_image_size: int = 0
    """Side S the VLM expects (images are resized to S x S); 0 = as the robot sends them."""
    flow_steps: int = 10
    """Euler steps when acting (LeRobot's ``num_steps``)."""
    text_encoder: str = "hashing"
    """A :class:`VLATokenEncoder` factory (``"package.module:function"``, see ``lwd.policy.language``)."""
    text_dim: int = 48
    """Width of the instruction vector the encoder writes (>= ``max_tokens``)."""
    max_tokens: int = 48
    """Language tokens in the last ``max_tokens`` columns of the instruction vector."""
    vocab_size: int = 49280
    """Token ids are stored divided by this (the VLM tokenizer's vocabulary size)."""

    def __post_init__(self) -> None:
        for name in ("state_dim", "action_dim", "chunk_len", "flow_steps", "max_tokens", "vocab_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"LeRobotFlowPolicyConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.text_dim < self.max_tokens:
            raise ConfigError("LeRobotFlowPolicyConfig: text_dim must be >= max_tokens")

    def robot_spec(self) -> RobotSpec:
        return RobotSpec(self.state_dim, self.action_dim, tuple(self.cameras), self.image_size)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LeRobotFlowPolicyConfig:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown LeRobotFlowPolicyConfig fields {sorted(unknown)}")
        return cls(**{**d, "cameras": tuple(d.get("cameras", ()))})


class VLATokenEncoder:
    """Instruction strings -> float32 [b, dim]: ``prefix`` encoder's vector (optional; e.g. MiniLM,
    so the critic keeps a sentence embedding) followed by ``max_tokens`` columns of token id /
    ``vocab_size`` (-1 = padding). ``tokenize(text) -> list[int]`` is the VLM's tokenizer."""

    def __init__(
        self,
        tokenize: Callable[[str], Sequence[int]],
        max_tokens: int,
        vocab_size: int,
        prefix: TextEncoder | None = None,
        name: str = "vla-tokens",
    ) -> None:
        self.tokenize, self.max_tokens, self.vocab_size, self.prefix = (
            tokenize,
            max_tokens,
            vocab_size,
            prefix,
        )
        self.name = name
        self.dim = max_tokens + (prefix.dim if prefix is not None else 0)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.full((len(texts), self.max_tokens), -1.0, dtype=np.float32)
        for i, text in enumerate(texts):
            ids = list(self.tokenize(text))[: self.max_tokens]
            if any(not 0 <= t < self.vocab_size for t in ids):
                raise ConfigError(f"token ids of {text!r} are outside [0, {self.vocab_size})")
            out[i, : len(ids)] = np.asarray(ids, dtype=np.float64) / self.vocab_size
        if self.prefix is None:
            return out
        return np.concatenate([self.prefix.encode(texts).astype(np.float32), out], axis=1)


def decode_tokens(emb: Tensor, max_tokens: int, vocab_size: int) -> tuple[Tensor, Tensor]:
    """Last ``max_tokens`` columns of ``emb`` [b, e] -> (token ids int64 [b, L], mask bool [b, L])."""
    cols = emb[:, -max_tokens:].double()
    mask = cols >= 0
    ids = torch.where(mask, torch.round(cols * vocab_size), torch.zeros_like(cols)).long()
    return ids, mask


class LeRobotFlowPolicy(EulerSampling, nn.Module):
    """A LeRobot ``VLAFlowMatching`` (SmolVLA) as a :class:`~lwd.policy.protocol.FlowPolicyModel`."""

    config_class: ClassVar[type[LeRobotFlowPolicyConfig]] = LeRobotFlowPolicyConfig

    def __init__(self, config: LeRobotFlowPolicyConfig) -> None:
        super().__init__()
        self.config = config
        self.model: Any = load_callable(config.model_factory, "LeRobot model factory")(**config.model_options)
        mcfg = self.model.config
        if int(mcfg.chunk_size) != config.chunk_len:
            raise ConfigError(f"LeRobot model chunk_size {mcfg.chunk_size} != chunk_len {config.chunk_len}")
        if config.action_dim > mcfg.max_action_dim or config.state_dim > mcfg.max_state_dim:
            raise ConfigError(
                "robot state/action dims exceed the LeRobot model's max_state_dim/max_action_dim"
            )
        self.max_state_dim, self.max_action_dim = int(mcfg.max_state_dim), int(mcfg.max_action_dim)

    # -- observation -> prefix cache ----------------------------------------------------------------
    def _images(self, obs: Obs) -> tuple[list[Tensor], list[Tensor]]:
        images: dict[str, Tensor] = obs.get("images") or {}  # type: ignore[assignment]
        out, masks = [], []
        side = self.config.vlm_image_size
        for cam in self.config.cameras:
            img = images[cam].permute(0, 3, 1, 2).float() / 255.0  # [b, 3, H, W] in [0, 1]
            if side and img.shape[-1] != side:
                img = F.interpolate(img, size=(side, side), mode="bilinear", align_corners=False)
            out.append(img * 2.0 - 1.0)
            masks.append(torch.ones(img.shape[0], dtype=torch.bool, device=img.device))
        return out, masks

    def encode(self, obs: Obs) -> Tensor:
        """obs -> cond [b, L, 1 + layers * 2 * kv_width]: prefix pad mask + packed key/value cache."""
        state: Tensor = obs["state"]  # type: ignore[assignment]  # [b, d]
        emb: Tensor = obs["instruction_emb"]  # type: ignore[assignment]  # [b, e]
        tokens, lang_masks = decode_tokens(emb, self.config.max_tokens, self.config.vocab_size)
        images, img_masks = self._images(obs)
        m = self.model
        padded_state = F.pad(state, (0, self.max_state_dim - state.shape[-1]))
        embs, pad_masks, att_masks = m.embed_prefix(
            images, img_masks, tokens.to(state.device), lang_masks.to(state.device), state=padded_state
        )
        att_2d = _att_2d_masks(pad_masks, att_masks)
        positions = torch.cumsum(pad_masks, dim=1) - 1
        _, kv = m.vlm_with_expert.forward(
            attention_mask=att_2d, position_ids=positions, past_key_values=None,
            inputs_embeds=[embs, None], use_cache=True, fill_kv_cache=True,
        )  # fmt: skip
        return pack_cache(pad_masks, kv)

    # -- flow ---------------------------------------------------------------------------------------
    def velocity(self, cond: Tensor, x: Tensor, w: Tensor | float) -> Tensor:
        """lwd velocity at flow time w: ``-denoise_step(x, t = 1 - w)`` on the real action dims."""
        b = x.shape[0]
        w_t = torch.as_tensor(w, dtype=torch.float32, device=x.device).expand(b)
        t, _ = pi0_to_lwd(w_t, x)  # t = 1 - w
        pad_masks, kv = unpack_cache(cond, self._kv_shape, self._dtype)
        x_full = F.pad(x, (0, self.max_action_dim - x.shape[-1]))
        u = self.model.denoise_step(prefix_pad_masks=pad_masks, past_key_values=kv, x_t=x_full, timestep=t)
        _, v = pi0_to_lwd(t, u[..., : self.config.action_dim])
        return v.to(x.dtype)

    @property
    def _kv_shape(self) -> tuple[int, int, int]:
        """(cached layers, key/value heads, head dim) of the VLM prefix cache."""
        vwe = self.model.vlm_with_expert
        text = vwe.config.text_config
        head_dim = int(getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads)
        return int(vwe.num_vlm_layers), int(vwe.num_key_value_heads), head_dim

    @property
    def _dtype(self) -> torch.dtype:
        return self.model.action_out_proj.weight.dtype

    def action_expert_parameters(self) -> Iterator[nn.Parameter]:
        """The LM expert and the action/time projections (what SmolVLA's ``train_expert_only`` trains)."""
        m = self.model
        yield from m.vlm_with_expert.lm_expert.parameters()
        for name in ("action_in_proj", "action_out_proj", "action_time_mlp_in", "action_time_mlp_out"):
            yield from getattr(m, name).parameters()


def _att_2d_masks(pad_masks: Tensor, att_masks: Tensor) -> Tensor:
    """LeRobot's block-causal prefix mask (``make_att_2d_masks``): token i attends to j when j's
    cumulative block index <= i's and both are real tokens. [b, L] x2 -> bool [b, L, L]."""
    cum = torch.cumsum(att_masks.long(), dim=1)
    att = cum[:, None, :] <= cum[:, :, None]
    return att & (pad_masks[:, None, :] & pad_masks[:, :, None])


def pack_cache(pad_masks: Tensor, kv: dict[int, dict[str, Tensor]]) -> Tensor:
    """(pad mask [b, L], {layer: {key_states, value_states: [b, L, heads, dim]}}) -> [b, L, 1 + n*2*heads*dim]."""
    b, length = pad_masks.shape
    parts = [pad_masks.to(torch.float32)[..., None]]
    for layer in sorted(kv):
        for key in ("key_states", "value_states"):
            parts.append(kv[layer][key].reshape(b, length, -1).to(torch.float32))
    return torch.cat(parts, dim=-1)


def unpack_cache(
    cond: Tensor, shape: tuple[int, int, int], dtype: torch.dtype = torch.float32
) -> tuple[Tensor, dict[int, dict[str, Tensor]]]:
    """Inverse of :func:`pack_cache`; ``shape`` = (layers, heads, head dim) -> (pad mask [b, L], kv)."""
    b, length, width = cond.shape
    layers, heads, dim = shape
    per = heads * dim
    if 1 + 2 * layers * per != width:
        raise ValueError(f"cond width {width} does not hold {layers} layers of {heads}x{dim} keys and values")
    pad = cond[..., 0] > 0.5
    kv: dict[int, dict[str, Tensor]] = {}
    for i in range(layers):
        k = cond[..., 1 + 2 * i * per : 1 + (2 * i + 1) * per]
        v = cond[..., 1 + (2 * i + 1) * per : 1 + (2 * i + 2) * per]
        kv[i] = {"key_states": k.reshape(b, length, heads, dim).to(dtype),
                 "value_states": v.reshape(b, length, heads, dim).to(dtype)}  # fmt: skip
    return pad, kv
