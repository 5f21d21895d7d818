"""numpy -> torch plumbing shared by acting and every learner: observation dicts and action spaces.

The policy consumes ``obs = {"state": float32 [b, d] (normalised), "images": {cam: uint8 [b, H, W,
3]}, "instruction_emb": float32 [b, e]}``. Norm stats keys: ``"state"`` (standardise the state; absent
means identity) and optionally ``"actions"`` (standardise actions inside the policy; absent, the
default, means the policy acts directly in the robot's [-1, 1] space).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from lwd.policy.language import TextEncoder
from lwd.transforms import ACTION_KEY, STATE_KEY, NormStats


def embed_instructions(
    encoder: TextEncoder, instructions: Sequence[str], instruction_id: np.ndarray
) -> np.ndarray:
    """Embed each row's instruction: ``instructions[instruction_id[i]]`` -> float32 [b, e].

    Only the distinct strings are encoded (and the encoder caches them across calls).
    """
    table = encoder.encode(list(instructions))  # [n, e]
    return table[np.asarray(instruction_id, dtype=np.int64)]


def normalize_state(state: np.ndarray, norm_stats: NormStats | None) -> np.ndarray:
    """Standardise ``state`` [..., d] with ``norm_stats[STATE_KEY]`` if present (float32)."""
    if norm_stats and STATE_KEY in norm_stats:
        return norm_stats[STATE_KEY].normalize(state)
    return np.asarray(state, dtype=np.float32)


def obs_from_arrays(
    state: np.ndarray,
    images: dict[str, np.ndarray] | None,
    instruction_emb: np.ndarray,
    norm_stats: NormStats | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, object]:
    """Build the policy's observation dict from numpy arrays.

    ``state`` float [b, d] (raw; standardised here with ``norm_stats``), ``images`` cam -> uint8
    [b, H, W, 3], ``instruction_emb`` float [b, e].
    """
    st = normalize_state(state, norm_stats)
    imgs = {
        cam: torch.from_numpy(np.ascontiguousarray(img, dtype=np.uint8)).to(device)
        for cam, img in (images or {}).items()
    }
    return {
        "state": torch.from_numpy(np.ascontiguousarray(st, dtype=np.float32)).to(device),
        "images": imgs,
        "instruction_emb": torch.from_numpy(np.ascontiguousarray(instruction_emb, dtype=np.float32)).to(
            device
        ),
    }


def actions_to_policy(actions: Tensor, norm_stats: NormStats | None) -> Tensor:
    """Robot actions [..., a] in [-1, 1] -> the policy's internal action space."""
    if norm_stats and ACTION_KEY in norm_stats:
        st = norm_stats[ACTION_KEY]
        mean = torch.as_tensor(st.mean, dtype=actions.dtype, device=actions.device)
        std = torch.as_tensor(st.std, dtype=actions.dtype, device=actions.device)
        return (actions - mean) / std
    return actions


def actions_from_policy(actions: Tensor, norm_stats: NormStats | None, clip: bool = True) -> Tensor:
    """The policy's internal actions [..., a] -> robot space, clipped to [-1, 1] by default."""
    if norm_stats and ACTION_KEY in norm_stats:
        st = norm_stats[ACTION_KEY]
        mean = torch.as_tensor(st.mean, dtype=actions.dtype, device=actions.device)
        std = torch.as_tensor(st.std, dtype=actions.dtype, device=actions.device)
        actions = actions * std + mean
    return actions.clamp(-1.0, 1.0) if clip else actions
