"""Rejected proposals (the policy's chunk a human replaced at a take-over): the episode schema
(version 2, version 1 still loads), validation, and the replay buffer's contrast batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lwd_data_factories import make_episode

from lwd.data.episode_io import (
    META_KEY,
    episode_from_bytes,
    episode_from_table,
    episode_to_bytes,
    episode_to_table,
)
from lwd.data.replay import ReplayBuffer

K = 3
HUMAN = np.zeros(12, bool)
HUMAN[[4, 5, 6, 9, 10]] = True


def _episode(eid: str = "ep-rejected"):
    ep = make_episode(eid, length=12, source="online", intervention=HUMAN.copy())
    ep.rejected_steps = np.array([4, 9], np.int64)
    ep.rejected_actions = np.random.default_rng(0).uniform(-1, 1, (2, K, ep.actions.shape[1])).astype(np.float32)
    ep.validate()
    return ep


def test_payload_round_trip_keeps_rejected_proposals():
    ep = _episode()
    back = episode_from_bytes(episode_to_bytes(ep))
    np.testing.assert_array_equal(back.rejected_steps, ep.rejected_steps)
    np.testing.assert_array_equal(back.rejected_actions, ep.rejected_actions)
    np.testing.assert_array_equal(back.actions, ep.actions)
    plain = episode_from_bytes(episode_to_bytes(make_episode("plain", length=5)))
    assert plain.rejected_steps.shape == (0,)


def test_schema_1_payloads_still_load():
    ep = make_episode("old", length=5)
    table = episode_to_table(ep)
    meta = json.loads(table.schema.metadata[META_KEY])
    meta["schema_version"] = 1
    del meta["rejected_chunk"]
    old = episode_from_table(table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}))
    np.testing.assert_array_equal(old.actions, ep.actions)
    assert old.rejected_steps.shape == (0,)
    meta["schema_version"] = 3
    with pytest.raises(ValueError, match="schema version 3"):
        episode_from_table(table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}))


@pytest.mark.parametrize(
    "steps,actions,match",
    [
        ([4, 9], np.zeros((2, K, 5)), "need steps"),  # wrong action dim
        ([9, 4], None, "strictly increasing"),
        ([4, 12], None, r"in \[0, 12\)"),
        ([4, 7], None, "intervention step"),  # the human did not act at 7
        ([4, 9], np.full((2, K, 2), np.nan), "NaN"),
    ],
)
def test_invalid_rejected_proposals_are_refused(steps, actions, match):
    ep = _episode()
    ep.rejected_steps = np.array(steps, np.int64)
    if actions is not None:
        ep.rejected_actions = actions.astype(np.float32)
    with pytest.raises(ValueError, match=match):
        ep.validate()


def test_replay_samples_contrast_batches_and_checkpoints_them():
    buf = ReplayBuffer()
    buf.add_episode(make_episode("before", length=7, source="demo", intervention=np.zeros(7, bool)))
    ep = _episode()
    buf.add_episode(ep, online=True)
    assert buf.num_rejections == 2
    batch = buf.sample_rejections(64, np.random.default_rng(0), 4, 0.99)
    assert batch.rejected.shape == (64, 4, 2) and batch.intervention.all()
    for row in range(64):  # the human's chunk and the proposal it replaced start at the same state
        t = int(np.flatnonzero((ep.states[:-1] == batch.state[row]).all(1))[0])
        i = list(ep.rejected_steps).index(t)
        np.testing.assert_array_equal(batch.rejected[row, :K], ep.rejected_actions[i])
        np.testing.assert_array_equal(batch.rejected[row, K], ep.rejected_actions[i, -1])  # padded to 4
        np.testing.assert_array_equal(batch.actions[row, 0], ep.actions[t])
    restored = ReplayBuffer.from_arrays(buf.to_arrays(), buf.meta())
    assert restored.num_rejections == 2
    again = restored.sample_rejections(64, np.random.default_rng(0), 4, 0.99)
    np.testing.assert_array_equal(again.rejected, batch.rejected)
    with pytest.raises(ValueError, match="no rejected"):
        ReplayBuffer().sample_rejections(1, np.random.default_rng(0), 4, 0.99)
