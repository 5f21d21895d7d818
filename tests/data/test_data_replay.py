"""ReplayBuffer: exact transitions, task balance, filters, dedup, pickle-free state round trip."""

from __future__ import annotations

import numpy as np
import pytest
from lwd_data_factories import make_episode, reference

from lwd.data.filters import ALL, DEMOS, DEMOS_AND_INTERVENTIONS, TransitionFilter
from lwd.data.replay import ReplayBuffer
from lwd.types import SOURCES

H, GAMMA = 3, 0.9


def _buffer(images=False):
    buf = ReplayBuffer()
    eps = [
        make_episode("a0", length=7, task_id="push", source="demo", images=images),
        make_episode("a1", length=4, task_id="reach", source="rollout", success=False, images=images),
        make_episode("a2", length=9, task_id="push", source="online", images=images, instruction="shove it"),
        make_episode("a3", length=1, task_id="pick", source="play", images=images),
    ]
    for ep in eps:
        assert buf.add_episode(ep, online=ep.source == "online")
    return buf, eps


@pytest.mark.parametrize("images", [False, True])
def test_every_transition_matches_reference(images):
    buf, eps = _buffer(images)
    n_by_task = {"push": 2, "pick": 3}
    batch = buf.transitions(np.arange(len(buf)), H, GAMMA, n_by_task)
    assert batch.size == len(buf) == sum(e.length for e in eps)
    row = 0
    for ep in eps:
        n = n_by_task.get(ep.task_id, 1)
        for t in range(ep.length):
            rows, mask, reward, discount, nxt = reference(ep.rewards, t, H, n, GAMMA)
            np.testing.assert_array_equal(batch.state[row], ep.states[t])
            np.testing.assert_array_equal(batch.actions[row], ep.actions[rows])
            assert batch.action_mask[row].tolist() == mask
            assert batch.reward[row] == pytest.approx(reward, rel=1e-5)
            assert batch.discount[row] == pytest.approx(discount, rel=1e-5)
            np.testing.assert_array_equal(batch.next_state[row], ep.states[nxt])
            assert batch.intervention[row] == bool(ep.intervention[t])  # the human acted at t
            human = [bool(ep.intervention[r]) or ep.source == "demo" for r in rows]
            assert batch.expert_mask[row].tolist() == [m and x for m, x in zip(mask, human)]
            assert batch.instructions[batch.instruction_id[row]] == ep.instruction
            assert batch.task_ids[batch.task_index[row]] == ep.task_id
            assert SOURCES[batch.source_id[row]] == ep.source
            assert batch.is_online[row] == (ep.source == "online")
            if images:
                np.testing.assert_array_equal(batch.images["corner"][row], ep.images["corner"][t])
                np.testing.assert_array_equal(batch.next_images["corner"][row], ep.images["corner"][nxt])
            row += 1
    assert batch.instructions == ("please push", "please reach", "shove it", "please pick")
    assert batch.task_ids == ("push", "reach", "pick")


def test_sample_shapes_and_dtypes():
    buf, _ = _buffer()
    b = buf.sample(32, np.random.default_rng(0), H, GAMMA)
    assert b.state.shape == (32, 3) and b.state.dtype == np.float32
    assert b.actions.shape == (32, H, 2) and b.action_mask.shape == (32, H) and b.action_mask.dtype == bool
    for name in ("reward", "discount"):
        assert getattr(b, name).shape == (32,) and getattr(b, name).dtype == np.float32
    for name in ("instruction_id", "source_id", "task_index"):
        assert getattr(b, name).dtype == np.int64
    assert b.is_online.dtype == bool and b.intervention.dtype == bool


def test_task_balanced_sampling_is_uniform_over_tasks():
    buf = ReplayBuffer()
    for i in range(30):  # "big" has 30 x 20 transitions, "small" has 1 x 2
        buf.add_episode(make_episode(f"big{i}", length=20, task_id="big"))
    buf.add_episode(make_episode("small", length=2, task_id="small"))
    rng = np.random.default_rng(1)
    counts = np.bincount(buf.sample(20_000, rng, H, GAMMA).task_index, minlength=2)
    frac_small = counts[buf.task_ids.index("small")] / 20_000
    assert abs(frac_small - 0.5) < 0.02  # binomial std ~0.0035
    uniform = buf.sample(20_000, rng, H, GAMMA, balance="uniform").task_index
    assert abs(np.mean(uniform == buf.task_ids.index("small")) - 2 / 602) < 0.003
    # Within a task, transitions are uniform: both steps of "small" appear about equally.
    small = buf.sample(20_000, rng, H, GAMMA)
    is_small = small.task_index == buf.task_ids.index("small")
    first_step = small.action_mask[is_small].sum(1) == 2  # t=0 has 2 real steps, t=1 has 1
    assert abs(first_step.mean() - 0.5) < 0.03


def test_filters_for_sft_and_hg_dagger():
    buf = ReplayBuffer()
    interv = np.array([False, True, False, False, True, True])
    buf.add_episode(make_episode("demo", length=4, source="demo", intervention=np.zeros(4, bool)))
    buf.add_episode(make_episode("roll", length=6, source="rollout", intervention=interv))
    assert buf.num_transitions(DEMOS) == {"push": 4}
    assert buf.num_transitions(DEMOS_AND_INTERVENTIONS) == {"push": 4 + 3}
    assert buf.num_transitions(ALL) == {"push": 10}
    b = buf.sample(500, np.random.default_rng(0), H, GAMMA, filt=DEMOS)
    assert set(b.source_id.tolist()) == {SOURCES.index("demo")}
    b = buf.sample(2000, np.random.default_rng(0), H, GAMMA, filt=DEMOS_AND_INTERVENTIONS)
    roll = b.source_id == SOURCES.index("rollout")
    roll_states = {tuple(s) for s in b.state[roll]}
    want = {tuple(s) for s in make_episode("roll", length=6, source="rollout").states[[1, 4, 5]]}
    assert roll_states == want  # only chunks starting at a human step
    with pytest.raises(ValueError, match="no transitions"):
        buf.sample(4, np.random.default_rng(0), H, GAMMA, filt=TransitionFilter(sources=("play",)))
    with pytest.raises(ValueError, match="unknown sources"):
        TransitionFilter(sources=("teleop",))


def test_dedup_by_episode_id_and_instruction_interning():
    buf, eps = _buffer()
    n = len(buf)
    assert not buf.add_episode(eps[0])
    assert buf.add_episodes(eps) == 0
    assert len(buf) == n and buf.num_episodes == 4
    assert "a2" in buf and "zz" not in buf
    buf.add_episode(make_episode("a4", task_id="push", instruction="shove it"))
    assert buf.instructions.count("shove it") == 1


def test_shape_mismatch_is_refused():
    buf, _ = _buffer()
    with pytest.raises(ValueError, match="shapes"):
        buf.add_episode(make_episode("img", images=True))


def test_state_dict_round_trip_without_pickle():
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    buf, _ = _buffer(images=True)
    state = buf.state_dict()
    blob = safetensors_numpy.save(state["arrays"])  # arrays only: no object dtype anywhere
    import json

    meta = json.loads(json.dumps(state["meta"]))
    restored = ReplayBuffer()
    restored.load_state_dict({"arrays": safetensors_numpy.load(blob), "meta": meta})
    assert len(restored) == len(buf) and restored.episode_ids == buf.episode_ids
    a = buf.sample(64, np.random.default_rng(5), H, GAMMA, {"push": 2})
    b = restored.sample(64, np.random.default_rng(5), H, GAMMA, {"push": 2})
    for name in ("state", "actions", "reward", "discount", "next_state", "task_index", "is_online"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.images["corner"], b.images["corner"])
    assert not restored.add_episode(make_episode("a0"))  # dedup survives the round trip
    assert restored.add_episode(make_episode("new", images=True))


def test_empty_buffer():
    buf = ReplayBuffer()
    assert len(buf) == 0 and buf.to_arrays() == {}
    with pytest.raises(ValueError):
        buf.sample(1, np.random.default_rng(0), H, GAMMA)
    restored = ReplayBuffer.from_arrays(buf.to_arrays(), buf.meta())
    assert len(restored) == 0


def test_incremental_chunk_reward_cache_after_adding():
    buf, eps = _buffer()
    buf.sample(8, np.random.default_rng(0), H, GAMMA)  # fills the cache
    late = make_episode("late", length=5, task_id="reach")
    buf.add_episode(late)
    b = buf.transitions(np.arange(len(buf) - 5, len(buf)), H, GAMMA)
    want = [reference(late.rewards, t, H, 1, GAMMA)[2] for t in range(5)]
    np.testing.assert_allclose(b.reward, want, rtol=1e-6)
    stats = buf.norm_stats()
    assert stats["observation.state"].mean.shape == (3,)
