"""TransitionBatch -> tensors: what every learner algorithm feeds its networks (no I/O).

Shape letters: b batch, h chunk, a action dim.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lwd.data.batch import TransitionBatch
from lwd.policy.batching import actions_to_policy, embed_instructions, obs_from_arrays
from lwd.policy.language import TextEncoder
from lwd.transforms import NormStats


def policy_obs(
    batch: TransitionBatch,
    text_encoder: TextEncoder,
    norm_stats: NormStats | None,
    next_obs: bool = False,
    device: torch.device | str = "cpu",
) -> dict[str, object]:
    """The policy observation dict of ``batch`` (``s_t``, or ``s_{t+nH}`` if ``next_obs``) on ``device``."""
    emb = embed_instructions(text_encoder, batch.instructions, batch.instruction_id)  # [b, e]
    if next_obs:
        return obs_from_arrays(batch.next_state, batch.next_images, emb, norm_stats, device)
    return obs_from_arrays(batch.state, batch.images, emb, norm_stats, device)


def batch_actions(
    batch: TransitionBatch, norm_stats: NormStats | None, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor]:
    """``(actions [b, h, a] in the policy's space, mask [b, h] bool)`` as tensors on ``device``."""
    actions = torch.from_numpy(batch.actions.astype("float32", copy=False)).to(device)
    mask = torch.from_numpy(batch.action_mask.astype(bool)).to(device)
    return actions_to_policy(actions, norm_stats), mask


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s parameters (where its batches must go); CPU if it has none."""
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@dataclass
class BatchTensors:
    """A TransitionBatch as tensors: policy/critic observation dicts, actions and targets."""

    obs: dict
    next_obs: dict
    actions: Tensor  # [b, h, a] in the policy's action space
    mask: Tensor  # [b, h] bool
    reward: Tensor  # [b]
    discount: Tensor  # [b]


def to_tensors(
    batch: TransitionBatch,
    text_encoder: TextEncoder,
    norm_stats: NormStats | None,
    device: torch.device | str = "cpu",
) -> BatchTensors:
    """TransitionBatch -> tensors on ``device``, reusing the policy's batching (``lwd.algorithms.bc``)."""
    actions, mask = batch_actions(batch, norm_stats, device)
    return BatchTensors(
        obs=policy_obs(batch, text_encoder, norm_stats, device=device),
        next_obs=policy_obs(batch, text_encoder, norm_stats, next_obs=True, device=device),
        actions=actions,
        mask=mask,
        reward=torch.from_numpy(batch.reward.astype("float32", copy=False)).to(device),
        discount=torch.from_numpy(batch.discount.astype("float32", copy=False)).to(device),
    )


def slice_obs(obs: dict, rows: int) -> dict:
    """The first ``rows`` rows of an observation dict (nested camera dicts included)."""
    return {k: ({c: img[:rows] for c, img in v.items()} if isinstance(v, dict) else v[:rows]) for k, v in obs.items()}
