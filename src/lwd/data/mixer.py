"""ReplayMixer: one batch from an offline and an online :class:`ReplayBuffer` (algorithms.md section 1.3).

The learner samples offline:online about 1:1 (``online_fraction=0.5``). Warm-up: until the online
buffer holds ``min_online_transitions`` transitions, batches are purely offline. Online targets
always use n = 1 (section 3.4: an online window may span policy versions and human segments); the
per-task ``n_step_by_task`` applies to the offline part only.

The two buffers intern instructions and task ids independently; the merged batch uses the offline
vocabulary followed by the online-only entries, and remaps the online ids accordingly.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lwd.data.batch import TransitionBatch
from lwd.data.filters import ALL, TransitionFilter
from lwd.data.replay import ReplayBuffer


def _merge_vocab(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[tuple[str, ...], np.ndarray]:
    """``first`` + the new entries of ``second``, and int64 [len(second)] mapping second -> merged ids."""
    merged = list(first)
    pos = {s: i for i, s in enumerate(merged)}
    remap = np.empty(len(second), np.int64)
    for i, s in enumerate(second):
        if s not in pos:
            pos[s] = len(merged)
            merged.append(s)
        remap[i] = pos[s]
    return tuple(merged), remap


def concat_batches(a: TransitionBatch, b: TransitionBatch) -> TransitionBatch:
    """Concatenate two batches along b, merging their instruction and task vocabularies."""
    instructions, instr_map = _merge_vocab(a.instructions, b.instructions)
    task_ids, task_map = _merge_vocab(a.task_ids, b.task_ids)
    if a.images.keys() != b.images.keys():
        raise ValueError(f"cannot mix batches with cameras {sorted(a.images)} and {sorted(b.images)}")

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(a, name), getattr(b, name)])

    return TransitionBatch(
        state=cat("state"),
        instruction_id=np.concatenate([a.instruction_id, instr_map[b.instruction_id]]),
        actions=cat("actions"),
        action_mask=cat("action_mask"),
        reward=cat("reward"),
        discount=cat("discount"),
        next_state=cat("next_state"),
        intervention=cat("intervention"),
        expert_mask=cat("expert_mask"),
        source_id=cat("source_id"),
        task_index=np.concatenate([a.task_index, task_map[b.task_index]]),
        is_online=cat("is_online"),
        instructions=instructions,
        task_ids=task_ids,
        images={c: np.concatenate([a.images[c], b.images[c]]) for c in a.images},
        next_images={c: np.concatenate([a.next_images[c], b.next_images[c]]) for c in a.next_images},
        rejected=None if a.rejected is None or b.rejected is None else np.concatenate([a.rejected, b.rejected]),
        autonomous_success=None if a.autonomous_success is None or b.autonomous_success is None
        else cat("autonomous_success"),
    )


class ReplayMixer:
    """Samples ``online_fraction`` of each batch from ``online`` once it is warm, the rest from ``offline``."""

    def __init__(
        self,
        offline: ReplayBuffer,
        online: ReplayBuffer,
        online_fraction: float = 0.5,
        min_online_transitions: int = 0,
    ) -> None:
        if not 0.0 <= online_fraction <= 1.0:
            raise ValueError(f"online_fraction must be in [0, 1], got {online_fraction}")
        self.offline = offline
        self.online = online
        self.online_fraction = online_fraction
        self.min_online_transitions = min_online_transitions

    def ready(self, min_online_transitions: int | None = None) -> bool:
        """True once the online buffer holds at least ``min_online_transitions`` (default: the
        constructor's) transitions, and is non-empty."""
        need = self.min_online_transitions if min_online_transitions is None else min_online_transitions
        return len(self.online) > 0 and len(self.online) >= need

    def split(self, batch_size: int, online_fraction: float | None = None) -> tuple[int, int]:
        """(offline, online) sample counts of a batch of ``batch_size`` under the warm-up rule, with
        ``online_fraction`` (default: the constructor's) of it online."""
        frac = self.online_fraction if online_fraction is None else online_fraction
        if not 0.0 <= frac <= 1.0:
            raise ValueError(f"online_fraction must be in [0, 1], got {frac}")
        n_online = int(round(batch_size * frac)) if self.ready() else 0
        if len(self.offline) == 0:
            n_online = batch_size if self.ready() else 0
        return batch_size - n_online, n_online

    def sample(
        self,
        batch_size: int,
        rng: np.random.Generator,
        chunk_len: int,
        gamma: float,
        n_step_by_task: Mapping[str, int] | None = None,
        offline_filter: TransitionFilter = ALL,
        online_filter: TransitionFilter = ALL,
        online_fraction: float | None = None,
    ) -> TransitionBatch:
        """One batch: offline rows first, then online rows (``is_online`` reports each row's episode);
        ``online_fraction`` overrides the constructor's share of online rows for this batch.

        A buffer with no transition eligible under its filter gives its rows to the other one."""
        n_off, n_on = self.split(batch_size, online_fraction)
        if n_on and not self.online.count(online_filter):  # e.g. no intervention yet: all offline
            n_off, n_on = batch_size, 0
        elif n_off and not self.offline.count(offline_filter):
            n_off, n_on = 0, (batch_size if self.ready() and self.online.count(online_filter) else 0)
        if n_off == 0 and n_on == 0:
            raise ValueError("both replay buffers are empty (or the online one is still warming up)")
        parts = []
        if n_off:
            parts.append(self.offline.sample(n_off, rng, chunk_len, gamma, n_step_by_task, offline_filter))
        if n_on:
            parts.append(self.online.sample(n_on, rng, chunk_len, gamma, None, online_filter))
        return parts[0] if len(parts) == 1 else concat_batches(parts[0], parts[1])
