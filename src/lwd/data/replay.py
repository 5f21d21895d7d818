"""ReplayBuffer: episodes in flat, growable numpy arrays, sampled as chunked n-step transitions.

Storage (E episodes, N = sum T_e steps; state rows are N + E since each episode keeps s_T):
  states  float32 [N+E, d]    images cam -> uint8 [N+E, H, W, 3]
  actions float32 [N, a]      rewards float32 [N]     intervention bool [N]
  per step:    episode int64 [N], remaining int64 [N] (T_e - t)
  per episode: task_index, instruction_id, source_id, policy_version int64 [E]; online, success bool [E]
Because episodes are appended whole, step g of episode e has its state s_t at row g + e.
Rejected proposals (``Episode.rejected_*``): flat step int64 [R] and chunk float32 [R, k, a], sampled
by :meth:`ReplayBuffer.sample_rejections` as contrast batches (the human's chunk and the policy's
rejected one at the same state).

Sampling (:meth:`ReplayBuffer.sample`) is task-balanced by default: a task uniformly among those
with eligible transitions, then a transition uniformly within it. A :class:`TransitionFilter`
restricts eligible transitions, e.g. demos only (SFT) or demos plus intervention steps (HG-DAgger).
Checkpointing is pickle-free: :meth:`to_arrays` (numpy arrays, safetensors-ready) + :meth:`meta` (JSON),
implemented in :mod:`lwd.data.replay_state`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np

from lwd.data import replay_state
from lwd.data.batch import TransitionBatch
from lwd.data.chunking import action_chunk_index, chunk_rewards, nstep_window
from lwd.data.filters import ALL, TransitionFilter
from lwd.data.growable import GrowableArray
from lwd.data.replay_state import EPISODE_FIELDS as _EPISODE_FIELDS
from lwd.transforms import ACTION_KEY, STATE_KEY, FeatureStats, NormStats
from lwd.types import SOURCES, Episode

Balance = Literal["task", "uniform"]


class ReplayBuffer:
    """Append-only episode storage with chunked n-step sampling (see module docstring)."""

    def __init__(self, balance: Balance = "task") -> None:
        if balance not in ("task", "uniform"):
            raise ValueError(f"balance must be 'task' or 'uniform', got {balance!r}")
        self.balance: Balance = balance
        self._instructions: list[str] = []
        self._instruction_ids: dict[str, int] = {}
        self._task_ids: list[str] = []
        self._episode_ids: list[str] = []
        self._episode_lookup: dict[str, int] = {}
        self._states: GrowableArray | None = None
        self._actions: GrowableArray | None = None
        self._images: dict[str, GrowableArray] = {}
        self._rewards = GrowableArray((), np.float32)
        self._interv = GrowableArray((), bool)
        self._step_episode = GrowableArray((), np.int64)
        self._remaining = GrowableArray((), np.int64)
        self._episodes = {
            k: GrowableArray((), bool if k in ("online", "success") else np.int64) for k in _EPISODE_FIELDS
        }
        self._rej_step = GrowableArray((), np.int64)
        self._rej_actions: GrowableArray | None = None
        self._rbar_cache: dict[tuple[int, float], np.ndarray] = {}
        self._eligible_cache: dict[TransitionFilter, tuple[int, tuple[np.ndarray, ...]]] = {}
        self._autonomous_cache: tuple[int, np.ndarray] | None = None

    # ---- contents ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Number of transitions (one per executed step)."""
        return len(self._rewards)

    @property
    def num_episodes(self) -> int:
        return len(self._episode_ids)

    @property
    def instructions(self) -> tuple[str, ...]:
        return tuple(self._instructions)

    @property
    def task_ids(self) -> tuple[str, ...]:
        return tuple(self._task_ids)

    @property
    def episode_ids(self) -> tuple[str, ...]:
        return tuple(self._episode_ids)

    @property
    def cameras(self) -> tuple[str, ...]:
        return tuple(sorted(self._images))

    def __contains__(self, episode_id: str) -> bool:
        return episode_id in self._episode_lookup

    def count(self, filt: TransitionFilter = ALL) -> int:
        """Number of eligible transitions under ``filt``."""
        return int(self._eligible(filt)[0].size)

    def num_transitions(self, filt: TransitionFilter = ALL) -> dict[str, int]:
        """Eligible transitions per task id."""
        order, starts, counts, tasks = self._eligible(filt)
        return {self._task_ids[t]: int(c) for t, c in zip(tasks, counts)}

    def norm_stats(self) -> NormStats:
        """``observation.state`` / ``action`` statistics over everything stored."""
        if self._states is None:
            raise ValueError("norm_stats of an empty replay buffer")
        return {
            STATE_KEY: FeatureStats.from_data(self._states.view),
            ACTION_KEY: FeatureStats.from_data(self._actions.view),
        }

    # ---- adding --------------------------------------------------------------------------------------

    def add_episode(self, ep: Episode, online: bool = False) -> bool:
        """Append ``ep``; returns False (and stores nothing) if its episode id is already present."""
        if ep.episode_id in self._episode_lookup:
            return False
        ep.validate()
        self._check_shapes(ep)
        if self._states is None:
            self._states = GrowableArray(ep.states.shape[1:], np.float32)
            self._actions = GrowableArray(ep.actions.shape[1:], np.float32)
            self._images = {c: GrowableArray(v.shape[1:], np.uint8) for c, v in ep.images.items()}
        e = len(self._episode_ids)
        t = ep.length
        if ep.rejected_steps.shape[0]:
            if self._rej_actions is None:
                self._rej_actions = GrowableArray(ep.rejected_actions.shape[1:], np.float32)
            self._rej_step.extend(len(self) + ep.rejected_steps.astype(np.int64))
            self._rej_actions.extend(ep.rejected_actions.astype(np.float32))
        self._states.extend(ep.states)
        self._actions.extend(ep.actions)
        for cam, frames in ep.images.items():
            self._images[cam].extend(frames)
        self._rewards.extend(ep.rewards)
        self._interv.extend(ep.intervention)
        self._step_episode.extend(np.full(t, e, np.int64))
        self._remaining.extend(np.arange(t, 0, -1, dtype=np.int64))
        values = {
            "task_index": self._intern(self._task_ids, None, ep.task_id),
            "instruction_id": self._intern(self._instructions, self._instruction_ids, ep.instruction),
            "source_id": SOURCES.index(ep.source),
            "policy_version": ep.policy_version,
            "online": online,
            "success": ep.success,
        }
        for k, v in values.items():
            self._episodes[k].extend(np.array([v]))
        self._episode_ids.append(ep.episode_id)
        self._episode_lookup[ep.episode_id] = e
        return True

    def add_episodes(self, episodes: Iterable[Episode], online: bool = False) -> int:
        """Add each episode; return how many were new."""
        return sum(self.add_episode(ep, online) for ep in episodes)

    # ---- sampling ------------------------------------------------------------------------------------

    def sample(
        self,
        batch_size: int,
        rng: np.random.Generator,
        chunk_len: int,
        gamma: float,
        n_step_by_task: Mapping[str, int] | None = None,
        filt: TransitionFilter = ALL,
        balance: Balance | None = None,
    ) -> TransitionBatch:
        """Sample ``batch_size`` transitions (with replacement); see the module docstring.

        ``n_step_by_task``: chunks per target window per task id (default 1; tasks not in this
        buffer are ignored). ``balance`` overrides the buffer's default.
        """
        order, starts, counts, tasks = self._eligible(filt)
        if order.size == 0:
            raise ValueError(f"no transitions to sample (buffer holds {len(self)}; filter {filt})")
        if (balance or self.balance) == "task":
            k = rng.integers(0, len(tasks), size=batch_size)
            pick = starts[k] + rng.integers(0, counts[k])
        else:
            pick = rng.integers(0, order.size, size=batch_size)
        return self.transitions(order[pick], chunk_len, gamma, n_step_by_task)

    @property
    def num_rejections(self) -> int:
        """Stored rejected proposals (take-overs with the policy's proposal recorded)."""
        return len(self._rej_step)

    def sample_rejections(
        self, batch_size: int, rng: np.random.Generator, chunk_len: int, gamma: float
    ) -> TransitionBatch:
        """A contrast batch: transitions starting at take-over steps (the human's chunk as ``actions``)
        with the policy's rejected proposal there as ``rejected`` [b, chunk_len, a] (cut or padded
        with its last action to ``chunk_len``); uniform over take-overs, with replacement."""
        if not self.num_rejections:
            raise ValueError("no rejected proposals to sample")
        pick = rng.integers(0, self.num_rejections, size=batch_size)
        batch = self.transitions(self._rej_step.view[pick], chunk_len, gamma)
        chunks = self._rej_actions.view[pick]
        k = chunks.shape[1]
        if k >= chunk_len:
            chunks = chunks[:, :chunk_len]
        else:
            chunks = np.concatenate([chunks, np.repeat(chunks[:, -1:], chunk_len - k, axis=1)], axis=1)
        batch.rejected = np.ascontiguousarray(chunks, dtype=np.float32)
        return batch

    def transitions(
        self,
        steps: np.ndarray,
        chunk_len: int,
        gamma: float,
        n_step_by_task: Mapping[str, int] | None = None,
    ) -> TransitionBatch:
        """The transitions starting at flat step indices ``steps`` [b] (deterministic gather)."""
        steps = np.asarray(steps, np.int64)
        ep = self._step_episode.view[steps]
        rem = self._remaining.view[steps]
        task = self._episodes["task_index"].view[ep]
        source = self._episodes["source_id"].view[ep]
        n_by_task = np.array([int((n_step_by_task or {}).get(t, 1)) for t in self._task_ids], np.int64)
        idx, mask = action_chunk_index(steps, rem, chunk_len)
        rbar = self._chunk_rewards(chunk_len, gamma)
        reward, discount, offset = nstep_window(steps, rem, rbar, chunk_len, n_by_task[task], gamma)
        rows, next_rows = steps + ep, steps + ep + offset
        return TransitionBatch(
            state=self._states.view[rows],
            instruction_id=self._episodes["instruction_id"].view[ep],
            actions=self._actions.view[idx],
            action_mask=mask,
            reward=reward,
            discount=discount,
            next_state=self._states.view[next_rows],
            intervention=self._interv.view[steps],
            expert_mask=mask & (self._interv.view[idx] | (source == SOURCES.index("demo"))[:, None]),
            source_id=source,
            task_index=task,
            is_online=self._episodes["online"].view[ep],
            instructions=self.instructions,
            task_ids=self.task_ids,
            images={c: a.view[rows] for c, a in self._images.items()},
            next_images={c: a.view[next_rows] for c, a in self._images.items()},
            autonomous_success=self._autonomous_success()[ep],
        )

    def _autonomous_success(self) -> np.ndarray:
        """bool [E]: online episodes that succeeded with no human step (cached per buffer length)."""
        cached = self._autonomous_cache
        if cached is None or cached[0] != len(self):
            human = np.bincount(self._step_episode.view, self._interv.view, len(self._episode_ids)) > 0
            e = self._episodes
            cached = self._autonomous_cache = (len(self), e["online"].view & e["success"].view & ~human)
        return cached[1]

    # ---- checkpointing (lwd.data.replay_state) -------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to rebuild the buffer, as named numpy arrays (copies)."""
        return replay_state.to_arrays(self)

    def meta(self) -> dict[str, Any]:
        """JSON-able metadata accompanying :meth:`to_arrays`."""
        return replay_state.meta(self)

    def state_dict(self) -> dict[str, Any]:
        return {"arrays": self.to_arrays(), "meta": self.meta()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the contents with a :meth:`state_dict` (arrays are copied)."""
        other = ReplayBuffer.from_arrays(state["arrays"], state["meta"])
        self.__dict__.update(other.__dict__)

    @staticmethod
    def from_arrays(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> ReplayBuffer:
        """Inverse of :meth:`to_arrays` / :meth:`meta`; raises ``ValueError`` on inconsistent input."""
        return replay_state.from_arrays(ReplayBuffer, arrays, meta)

    # ---- internals -----------------------------------------------------------------------------------

    @staticmethod
    def _intern(values: list[str], lookup: dict[str, int] | None, value: str) -> int:
        """Index of ``value`` in ``values``, appending it if new (``lookup`` caches the positions)."""
        if lookup is None:
            if value not in values:
                values.append(value)
            return values.index(value)
        if value not in lookup:
            lookup[value] = len(values)
            values.append(value)
        return lookup[value]

    def check_compatible(self, ep: Episode) -> None:
        """Raise ``ValueError`` if ``ep`` is invalid or its shapes differ from this buffer's episodes."""
        ep.validate()
        self._check_shapes(ep)

    def _check_shapes(self, ep: Episode) -> None:
        if ep.rejected_steps.shape[0] and self._rej_actions is not None:
            if ep.rejected_actions.shape[1:] != self._rej_actions.row_shape:
                raise ValueError(f"episode {ep.episode_id}: rejected proposals {ep.rejected_actions.shape[1:]} "
                                 f"!= buffer's {self._rej_actions.row_shape}")  # fmt: skip
        if self._states is None:
            return
        want = (
            self._states.row_shape,
            self._actions.row_shape,
            {c: a.row_shape for c, a in self._images.items()},
        )
        got = (ep.states.shape[1:], ep.actions.shape[1:], {c: v.shape[1:] for c, v in ep.images.items()})
        if want != got:
            raise ValueError(
                f"episode {ep.episode_id}: shapes (state, action, images) {got} != buffer's {want}"
            )

    def _chunk_rewards(self, chunk_len: int, gamma: float) -> np.ndarray:
        """rbar [N] for (H, gamma), extended incrementally: appended episodes never change old values."""
        key = (chunk_len, float(gamma))
        old = self._rbar_cache.get(key, np.zeros(0))
        n = len(self)
        if old.shape[0] < n:
            tail = chunk_rewards(
                self._rewards.view[old.shape[0] :], self._remaining.view[old.shape[0] :], chunk_len, gamma
            )
            old = np.concatenate([old, tail])
            self._rbar_cache[key] = old
        return old

    def _eligible(self, filt: TransitionFilter) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Eligible flat steps sorted by task, each present task's start/count in that order, task ids."""
        cached = self._eligible_cache.get(filt)
        if cached is not None and cached[0] == len(self):
            return cached[1]  # type: ignore[return-value]
        ep = self._step_episode.view
        ok = np.ones(len(self), bool)
        if filt.sources is not None:
            allowed = [SOURCES.index(s) for s in filt.sources]
            ok = np.isin(self._episodes["source_id"].view[ep], allowed)
        if filt.intervention_steps:
            ok |= self._interv.view
        if filt.autonomous_successes:
            ok |= self._autonomous_success()[ep]
        steps = np.flatnonzero(ok)
        task = self._episodes["task_index"].view[ep[steps]]
        order = steps[np.argsort(task, kind="stable")]
        tasks, starts, counts = np.unique(np.sort(task), return_index=True, return_counts=True)
        result = (order, starts.astype(np.int64), counts.astype(np.int64), tasks.astype(np.int64))
        self._eligible_cache[filt] = (len(self), result)
        return result
