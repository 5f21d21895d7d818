"""ReplayMixer: offline:online ratio, warm-up, vocabulary merge, online n = 1."""

from __future__ import annotations

import numpy as np
import pytest
from lwd_data_factories import make_episode

from lwd.data.mixer import ReplayMixer
from lwd.data.replay import ReplayBuffer

H, GAMMA = 2, 0.9


def _buffers():
    offline, online = ReplayBuffer(), ReplayBuffer()
    for i in range(3):
        offline.add_episode(make_episode(f"off{i}", length=10, task_id="push", source="demo"))
    return offline, online


def test_warm_up_then_one_to_one():
    offline, online = _buffers()
    mixer = ReplayMixer(offline, online, min_online_transitions=12)
    rng = np.random.default_rng(0)
    assert not mixer.ready()
    b = mixer.sample(16, rng, H, GAMMA)
    assert b.size == 16 and not b.is_online.any()  # warming up: offline only
    online.add_episode(make_episode("on0", length=8, task_id="reach", source="online"), online=True)
    assert not mixer.ready() and mixer.ready(min_online_transitions=8)
    online.add_episode(make_episode("on1", length=8, task_id="reach", source="online"), online=True)
    assert mixer.ready()
    b = mixer.sample(16, rng, H, GAMMA)
    assert b.is_online.sum() == 8 and not b.is_online[:8].any()
    assert mixer.split(10) == (5, 5)
    mixer.online_fraction = 0.25
    assert mixer.sample(40, rng, H, GAMMA).is_online.sum() == 10
    # one batch may ask for its own share (the learner's imitation batch)
    assert mixer.sample(40, rng, H, GAMMA, online_fraction=0.75).is_online.sum() == 30
    assert mixer.split(40) == (30, 10) and mixer.split(40, 1.0) == (0, 40)
    with pytest.raises(ValueError, match="online_fraction"):
        mixer.split(40, 1.5)


def test_vocabularies_are_merged_and_online_uses_n1():
    offline, online = _buffers()
    online.add_episode(
        make_episode("on", length=8, task_id="reach", source="online", instruction="reach out"), online=True
    )
    online.add_episode(make_episode("on2", length=8, task_id="push", source="online"), online=True)
    mixer = ReplayMixer(offline, online)
    b = mixer.sample(400, np.random.default_rng(1), H, GAMMA, n_step_by_task={"push": 3, "reach": 3})
    assert b.task_ids == ("push", "reach")
    assert b.instructions == ("please push", "reach out")
    on = b.is_online
    assert {b.task_ids[i] for i in b.task_index[on]} == {"push", "reach"}
    assert {b.instructions[i] for i in b.instruction_id[on]} == {"please push", "reach out"}
    # Offline rows bootstrap after n=3 chunks, online rows after one chunk.
    assert set(np.unique(b.discount[~on])) <= {0.0, np.float32(GAMMA ** (3 * H))}
    assert set(np.unique(b.discount[on])) <= {0.0, np.float32(GAMMA**H)}
    assert (b.discount[on] > 0).any() and (b.discount[~on] > 0).any()


def test_invalid_fraction_and_empty():
    offline, online = ReplayBuffer(), ReplayBuffer()
    with pytest.raises(ValueError):
        ReplayMixer(offline, online, online_fraction=1.5)
    with pytest.raises(ValueError):
        ReplayMixer(offline, online).sample(4, np.random.default_rng(0), H, GAMMA)
