"""The transition batch every learner consumes (numpy on the data side; algorithms convert to torch).

A transition starts at step t of an episode and covers one action chunk of H steps (or an n-step
window of n chunks for offline targets, algorithms.md section 3.4):

  state          float32 [b, d]          s_t
  images         cam -> uint8 [b, H, W, 3]   (pixels mode only)
  instruction_id int64   [b]             index into ``instructions`` (the policy embeds the strings)
  actions        float32 [b, h, a]       a_{t:t+H}; steps past the episode end are padded (see mask)
  action_mask    bool    [b, h]          True where the action step exists in the episode
  reward         float32 [b]             sum_{i<n} gamma^{iH} rbar_{t+iH}  (n=1: the chunk reward rbar_t)
  discount       float32 [b]             bootstrap factor: gamma^{n H} if the window ends inside the
                                         episode, else 0 (episode ended: success or time limit)
  next_state     float32 [b, d]          s_{t+nH} (the last state if the episode ended)
  next_images    cam -> uint8 [b, H, W, 3]
  intervention   bool    [b]             the human acted at the start step t (the one meaning of
                                         "intervention step" in the code base, as TransitionFilter)
  expert_mask    bool    [b, h]          True where that chunk step exists and its action was the
                                         human's: every step of a demonstration, an intervention step
                                         online (imitation losses are masked with it)
  source_id      int64   [b]             index into lwd.types.SOURCES
  task_index     int64   [b]             index into ``task_ids`` (for logging/balancing only; never a
                                         policy input)
  is_online      bool    [b]
  rejected       float32 [b, h, a]       contrast batches only (else None): the chunk the policy
                                         proposed at s_t, which the human rejected by taking over
  autonomous_success bool [b]            the row's episode is online and the policy solved it with
                                         no human step (replay batches; None in hand-made ones)

The critic target is then y = reward + discount * Quant_tau(V(next_state)).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np


@dataclass
class TransitionBatch:
    state: np.ndarray
    instruction_id: np.ndarray
    actions: np.ndarray
    action_mask: np.ndarray
    reward: np.ndarray
    discount: np.ndarray
    next_state: np.ndarray
    intervention: np.ndarray
    expert_mask: np.ndarray
    source_id: np.ndarray
    task_index: np.ndarray
    is_online: np.ndarray
    instructions: tuple[str, ...]
    """The instruction strings that ``instruction_id`` indexes."""
    task_ids: tuple[str, ...]
    images: dict[str, np.ndarray] = field(default_factory=dict)
    next_images: dict[str, np.ndarray] = field(default_factory=dict)
    rejected: np.ndarray | None = None
    """Contrast batches (``ReplayBuffer.sample_rejections``): the policy's rejected proposal at s_t."""
    autonomous_success: np.ndarray | None = None
    """bool [b]: the row's episode is online and the policy solved it with no human step."""

    @property
    def size(self) -> int:
        return int(self.state.shape[0])

    def rows(self, index: slice) -> TransitionBatch:
        """The rows ``index`` of every per-row array (instructions and task ids are shared)."""

        def cut(v):
            if isinstance(v, np.ndarray):
                return v[index]
            if isinstance(v, dict):
                return {k: a[index] for k, a in v.items()}
            return v

        return TransitionBatch(**{f.name: cut(getattr(self, f.name)) for f in dataclasses.fields(self)})
