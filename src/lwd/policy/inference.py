"""InferencePolicy: what a robot calls. A flow policy (any ``FlowPolicyModel``) + norm stats + instruction cache + policy version.

``act(obs) -> ActionChunk`` and ``act_batch([obs, ...])`` (several robots in one forward pass).

Noise and reproducibility: the initial noise x0 [h, a] of each observation is drawn from its own
``torch.Generator`` seeded with a per-observation integer seed, so a row's action never depends on
which other rows share the batch. Pass ``seeds`` explicitly to reproduce a call; otherwise seeds come
from the InferencePolicy's own numpy generator (seeded at construction). ``noise="zero"`` starts
every sample at x0 = 0, a deterministic (mode-seeking) policy for evaluation. Batched and single
calls with the same seeds agree up to float32 reassociation in batched matmuls (tested to 1e-5).

Nothing global is changed, except ``torch.set_num_threads`` when ``num_threads`` is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from lwd.policy.batching import actions_from_policy, obs_from_arrays
from lwd.policy.language import TextEncoder, get_text_encoder
from lwd.policy.protocol import FlowPolicyModel, PolicyConfig
from lwd.transforms import NormStats
from lwd.types import ActionChunk, Observation
from lwd.utils.errors import ConfigError

NoiseMode = Literal["random", "zero"]


class InferencePolicy:
    """A versioned, frozen policy for acting. Not thread-safe (one per robot client thread)."""

    def __init__(
        self,
        policy: FlowPolicyModel,
        norm_stats: NormStats,
        version: int,
        text_encoder: TextEncoder | None = None,
        *,
        noise: NoiseMode = "random",
        seed: int = 0,
        num_threads: int | None = None,
    ) -> None:
        cfg = policy.config
        self.policy = policy.eval()
        self.norm_stats = norm_stats
        self.version = int(version)
        self.text_encoder = text_encoder or get_text_encoder(cfg.text_encoder)
        if self.text_encoder.dim != cfg.text_dim:
            raise ConfigError(
                f"text encoder {self.text_encoder.name!r} has dim {self.text_encoder.dim}, "
                f"policy expects {cfg.text_dim}"
            )
        if noise not in ("random", "zero"):
            raise ConfigError(f"noise must be 'random' or 'zero', got {noise!r}")
        self.noise_mode = noise
        self._rng = np.random.default_rng(seed)
        if num_threads is not None:
            torch.set_num_threads(num_threads)

    @property
    def config(self) -> PolicyConfig:
        return self.policy.config

    def act(self, obs: Observation, seed: int | None = None) -> ActionChunk:
        """One observation -> one action chunk [h, a] in [-1, 1]."""
        return self.act_batch([obs], seeds=None if seed is None else [seed])[0]

    def act_batch(
        self, observations: Sequence[Observation], seeds: Sequence[int] | None = None
    ) -> list[ActionChunk]:
        """b observations -> b action chunks, one forward pass. ``seeds``: b ints for x0 (see module doc)."""
        if not observations:
            return []
        for o in observations:
            self._check(o)
        if seeds is None:
            seeds = self._rng.integers(0, 2**62, size=len(observations)).tolist()
        elif len(seeds) != len(observations):
            raise ValueError(f"got {len(seeds)} seeds for {len(observations)} observations")
        cams = self.config.cameras
        state = np.stack([o.state for o in observations]).astype(np.float32)
        images = {c: np.stack([o.images[c] for o in observations]) for c in cams}
        emb = self.text_encoder.encode([o.instruction for o in observations])
        with torch.no_grad():
            obs_t = obs_from_arrays(state, images, emb, self.norm_stats)
            cond = self.policy.encode(obs_t)
            x = self.policy.sample(cond, noise=self._noise(seeds))
            acts = actions_from_policy(x, self.norm_stats, clip=True).numpy().astype(np.float32)
        return [ActionChunk(actions=acts[i], policy_version=self.version) for i in range(len(observations))]

    def _noise(self, seeds: Sequence[int]) -> torch.Tensor:
        """x0 [b, h, a]: zeros, or one independently seeded standard normal per row."""
        h, a = self.config.chunk_len, self.config.action_dim
        if self.noise_mode == "zero":
            return torch.zeros(len(seeds), h, a)
        return torch.stack(
            [torch.randn(h, a, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
        )

    def _check(self, obs: Observation) -> None:
        cfg = self.config
        if obs.state.shape != (cfg.state_dim,):
            raise ValueError(
                f"observation state has shape {obs.state.shape}, policy expects ({cfg.state_dim},)"
            )
        for cam in cfg.cameras:
            img = obs.images.get(cam)
            if img is None:
                raise ValueError(f"observation lacks camera {cam!r}; policy expects {cfg.cameras}")
            want = (cfg.image_size, cfg.image_size, 3)
            if img.shape != want or img.dtype != np.uint8:
                raise ValueError(f"camera {cam!r}: expected uint8 {want}, got {img.dtype} {img.shape}")
