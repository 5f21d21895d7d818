"""Chunked and n-step transitions from episodes (pure numpy; algorithms.md sections 2 and 3.4).

Episodes are addressed in a *flat step space*: the steps of all episodes concatenated, step g being
step t of episode e with ``remaining[g] = T_e - t >= 1`` steps left (the step itself included). A
transition starts at every step g and covers one chunk of H actions:

  actions        a_{t+i} for i < H; past the episode end padded with the last action a_{T-1},
                 ``mask`` False there
  chunk reward   rbar_t = sum_{i<H, t+i<T} gamma^i r_{t+i}
  n-step reward  sum_{i<n, t+iH<T} gamma^{iH} rbar_{t+iH}
  discount       gamma^{nH} if t + nH < T (the window ends strictly inside the episode), else 0
                 (the episode ended inside the window: success or time limit, no bootstrap)
  next state     s_{min(t+nH, T)}, i.e. ``min(nH, remaining)`` state rows after s_t

Shapes: N flat steps, b sampled transitions, h = H chunk length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def steps_remaining(lengths: np.ndarray) -> np.ndarray:
    """int64 [N]: ``T_e - t`` for every step of episodes with ``lengths`` [E] (each >= 1)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        return np.zeros(0, np.int64)
    if np.any(lengths < 1):
        raise ValueError("every episode needs at least one step")
    starts = np.cumsum(lengths) - lengths
    g = np.arange(int(lengths.sum()), dtype=np.int64)
    ep = np.repeat(np.arange(len(lengths)), lengths)
    return lengths[ep] - (g - starts[ep])


def chunk_rewards(rewards: np.ndarray, remaining: np.ndarray, chunk_len: int, gamma: float) -> np.ndarray:
    """float64 [N]: rbar_g = sum_{i<H, i<remaining[g]} gamma^i r_{g+i} over flat ``rewards`` [N]."""
    if chunk_len < 1:
        raise ValueError(f"chunk_len must be >= 1, got {chunk_len}")
    n = rewards.shape[0]
    padded = np.concatenate([np.asarray(rewards, np.float64), np.zeros(chunk_len)])
    out = np.zeros(n)
    for i in range(chunk_len):  # H vectorised passes; the mask stops at each episode's end
        out += np.where(i < remaining, gamma**i * padded[i : i + n], 0.0)
    return out


def action_chunk_index(
    start: np.ndarray, remaining: np.ndarray, chunk_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Flat action indices int64 [b, h] of the chunks starting at ``start`` [b] and their mask bool [b, h].

    Indices past the episode end repeat the last step (``remaining`` [b] is that of the start step).
    """
    i = np.arange(chunk_len, dtype=np.int64)[None, :]
    rem = np.asarray(remaining, np.int64)[:, None]
    idx = np.asarray(start, np.int64)[:, None] + np.minimum(i, rem - 1)
    return idx, i < rem


def nstep_window(
    start: np.ndarray,
    remaining: np.ndarray,
    rbar: np.ndarray,
    chunk_len: int,
    n_step: np.ndarray | int,
    gamma: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n-step chunked target pieces for transitions starting at flat steps ``start`` [b].

    ``remaining`` [b]: steps left at each start; ``rbar`` [N]: chunk rewards of the flat buffer;
    ``n_step``: int or int [b] (chunks per window, >= 1). Returns reward float32 [b], discount
    float32 [b] and ``offset`` int64 [b] = min(nH, remaining), the number of state rows from s_t to
    the next state.
    """
    start = np.asarray(start, np.int64)
    rem = np.asarray(remaining, np.int64)
    n = np.broadcast_to(np.asarray(n_step, np.int64), start.shape)
    if np.any(n < 1):
        raise ValueError("n_step must be >= 1")
    reward = np.zeros(start.shape, np.float64)
    for i in range(int(n.max()) if n.size else 0):
        k = i * chunk_len
        live = (i < n) & (k < rem)
        idx = np.where(live, start + k, 0)
        reward += np.where(live, gamma**k * rbar[idx], 0.0)
    window = n * chunk_len
    discount = np.where(window < rem, np.power(float(gamma), window.astype(np.float64)), 0.0)
    return reward.astype(np.float32), discount.astype(np.float32), np.minimum(window, rem)


@dataclass(frozen=True)
class EpisodeTransitions:
    """All T transitions of one episode (t = 0..T-1); shapes as in :class:`TransitionBatch`."""

    state_index: np.ndarray
    """int64 [T]: t (row of s_t in ``states``)."""
    action_index: np.ndarray
    """int64 [T, h]: rows of ``actions`` forming each chunk (padded with T-1)."""
    action_mask: np.ndarray
    """bool [T, h]."""
    reward: np.ndarray
    """float32 [T]."""
    discount: np.ndarray
    """float32 [T]."""
    next_state_index: np.ndarray
    """int64 [T]: min(t + nH, T)."""


def episode_transitions(
    rewards: np.ndarray, chunk_len: int, gamma: float, n_step: int = 1
) -> EpisodeTransitions:
    """Index arrays and targets of every transition of one episode with ``rewards`` [T]."""
    t_len = rewards.shape[0]
    rem = steps_remaining(np.array([t_len]))
    start = np.arange(t_len, dtype=np.int64)
    rbar = chunk_rewards(rewards, rem, chunk_len, gamma)
    idx, mask = action_chunk_index(start, rem, chunk_len)
    reward, discount, offset = nstep_window(start, rem, rbar, chunk_len, n_step, gamma)
    return EpisodeTransitions(start, idx, mask, reward, discount, start + offset)
