"""Pickle-free checkpointing of a :class:`~lwd.data.replay.ReplayBuffer`: named numpy arrays
(safetensors-ready) plus JSON metadata, and back. Works on the buffer's own arrays (a friend module
of :mod:`lwd.data.replay`, split out to keep that module readable).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from lwd.data.chunking import steps_remaining
from lwd.data.growable import GrowableArray
from lwd.types import SOURCES

if TYPE_CHECKING:
    from lwd.data.replay import ReplayBuffer

REPLAY_FORMAT = "lwd.replay/1"
EPISODE_FIELDS = ("task_index", "instruction_id", "source_id", "policy_version", "online", "success")
"""Per-episode columns of a buffer."""


def to_arrays(buf: ReplayBuffer) -> dict[str, np.ndarray]:
    """Everything needed to rebuild the buffer, as named numpy arrays (copies)."""
    if buf._states is None:
        return {}
    out = {
        "states": buf._states.view.copy(),
        "actions": buf._actions.view.copy(),
        "rewards": buf._rewards.view.copy(),
        "intervention": buf._interv.view.copy(),
        "episode_length": np.bincount(buf._step_episode.view, minlength=buf.num_episodes).astype(
            np.int64
        ),
    }
    for k, col in buf._episodes.items():
        out[f"episode_{k}"] = col.view.copy()
    for cam, col in buf._images.items():
        out[f"images.{cam}"] = col.view.copy()
    if buf._rej_actions is not None:
        out["rejected_step"] = buf._rej_step.view.copy()
        out["rejected_actions"] = buf._rej_actions.view.copy()
    return out


def meta(buf: ReplayBuffer) -> dict[str, Any]:
    """JSON-able metadata accompanying :func:`to_arrays`."""
    return {
        "format": REPLAY_FORMAT,
        "balance": buf.balance,
        "instructions": list(buf._instructions),
        "task_ids": list(buf._task_ids),
        "episode_ids": list(buf._episode_ids),
        "sources": list(SOURCES),
    }


def from_arrays(cls: type[ReplayBuffer], arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> ReplayBuffer:
    """Inverse of :func:`to_arrays` / :func:`meta`; raises ``ValueError`` on inconsistent input."""
    if meta.get("format") != REPLAY_FORMAT:
        raise ValueError(
            f"not a replay buffer state (format {meta.get('format')!r} != {REPLAY_FORMAT!r})"
        )
    if tuple(meta["sources"]) != SOURCES:
        raise ValueError(f"replay state uses sources {meta['sources']}, this code {list(SOURCES)}")
    buf = cls(balance=meta["balance"])
    buf._instructions = list(meta["instructions"])
    buf._instruction_ids = {s: i for i, s in enumerate(buf._instructions)}
    buf._task_ids = list(meta["task_ids"])
    buf._episode_ids = list(meta["episode_ids"])
    buf._episode_lookup = {s: i for i, s in enumerate(buf._episode_ids)}
    if not buf._episode_ids:
        return buf
    lengths = np.asarray(arrays["episode_length"], np.int64)
    n, e = int(lengths.sum()), len(buf._episode_ids)
    if (
        lengths.shape != (e,)
        or arrays["states"].shape[0] != n + e
        or arrays["actions"].shape[0] != n
        or arrays["rewards"].shape != (n,)
        or arrays["intervention"].shape != (n,)
    ):
        raise ValueError("replay state arrays are inconsistent with episode_length / episode_ids")
    buf._states = GrowableArray.from_array(np.asarray(arrays["states"], np.float32))
    buf._actions = GrowableArray.from_array(np.asarray(arrays["actions"], np.float32))
    buf._rewards = GrowableArray.from_array(np.asarray(arrays["rewards"], np.float32))
    buf._interv = GrowableArray.from_array(np.asarray(arrays["intervention"], bool))
    buf._step_episode = GrowableArray.from_array(np.repeat(np.arange(e, dtype=np.int64), lengths))
    buf._remaining = GrowableArray.from_array(steps_remaining(lengths))
    for k in EPISODE_FIELDS:
        buf._episodes[k] = GrowableArray.from_array(np.asarray(arrays[f"episode_{k}"]))
    buf._images = {
        key.removeprefix("images."): GrowableArray.from_array(np.asarray(v, np.uint8))
        for key, v in arrays.items()
        if key.startswith("images.")
    }
    if "rejected_step" in arrays:  # states written before rejected proposals existed have none
        steps = np.asarray(arrays["rejected_step"], np.int64)
        acts = np.asarray(arrays["rejected_actions"], np.float32)
        if acts.ndim != 3 or acts.shape[0] != steps.shape[0] or (steps < 0).any() or (steps >= n).any():
            raise ValueError("replay state rejected proposals are inconsistent with the stored steps")
        buf._rej_step = GrowableArray.from_array(steps)
        buf._rej_actions = GrowableArray.from_array(acts)
    return buf
