"""Chunked n-step transitions against a slow, literal loop reference of the TransitionBatch docs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lwd_data_factories import reference

from lwd.data.chunking import (
    action_chunk_index,
    chunk_rewards,
    episode_transitions,
    nstep_window,
    steps_remaining,
)


def check_episode(rewards, chunk_len, n, gamma):
    got = episode_transitions(np.asarray(rewards, np.float32), chunk_len, gamma, n)
    for t in range(len(rewards)):
        rows, mask, reward, discount, nxt = reference(rewards, t, chunk_len, n, gamma)
        assert got.action_index[t].tolist() == rows
        assert got.action_mask[t].tolist() == mask
        assert got.reward[t] == pytest.approx(reward, rel=1e-5, abs=1e-6)
        assert got.discount[t] == pytest.approx(discount, rel=1e-5, abs=0)
        assert got.next_state_index[t] == nxt
        assert got.state_index[t] == t


def test_hand_worked_example():
    # T=5, H=2, gamma=0.5, success at the last step.
    got = episode_transitions(np.array([0, 0, 0, 0, 1], np.float32), 2, 0.5, n_step=1)
    np.testing.assert_allclose(got.reward, [0, 0, 0, 0.5, 1.0])
    np.testing.assert_allclose(got.discount, [0.25, 0.25, 0.25, 0.0, 0.0])  # t+H<T only for t<3
    assert got.next_state_index.tolist() == [2, 3, 4, 5, 5]
    assert got.action_index[4].tolist() == [4, 4]  # padded with the last action
    assert got.action_mask[4].tolist() == [True, False]


def test_n1_is_the_one_step_chunk_target():
    rng = np.random.default_rng(0)
    rewards = rng.random(23).astype(np.float32)
    one = episode_transitions(rewards, 4, 0.9, n_step=1)
    rem = steps_remaining(np.array([23]))
    rbar = chunk_rewards(rewards, rem, 4, 0.9)
    np.testing.assert_allclose(one.reward, rbar, rtol=1e-6)
    inside = np.arange(23) + 4 < 23
    np.testing.assert_allclose(one.discount[inside], 0.9**4, rtol=1e-6)
    assert np.all(one.discount[~inside] == 0)


def test_episode_end_inside_window_drops_bootstrap():
    # Time-limit truncation (no success reward) still means no bootstrap once the window passes T.
    rewards = np.zeros(10, np.float32)
    got = episode_transitions(rewards, 3, 0.99, n_step=2)
    assert np.all(got.discount[got.next_state_index == 10] == 0)
    assert np.all(got.discount[:4] > 0)  # t + 6 < 10
    assert np.all(got.discount[4:] == 0)
    # A window ending exactly at T is not "inside": next state s_T, no bootstrap.
    assert got.next_state_index[4] == 10 and got.discount[4] == 0


@pytest.mark.parametrize("chunk_len,n", [(1, 1), (3, 1), (3, 4), (7, 2), (12, 3)])
def test_matches_reference_fixed(chunk_len, n):
    rng = np.random.default_rng(chunk_len * 10 + n)
    check_episode(rng.random(17).round(2).tolist(), chunk_len, n, 0.97)


@settings(max_examples=60, deadline=None)
@given(
    rewards=st.lists(st.sampled_from([0.0, 0.0, 0.5, 1.0]), min_size=1, max_size=40),
    chunk_len=st.integers(1, 9),
    n=st.integers(1, 5),
    gamma=st.sampled_from([0.5, 0.9, 0.99, 1.0]),
)
def test_matches_reference_property(rewards, chunk_len, n, gamma):
    check_episode(rewards, chunk_len, n, gamma)


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=6),
    chunk_len=st.integers(1, 6),
    n=st.lists(st.integers(1, 4), min_size=6, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_flat_buffer_matches_per_episode(lengths, chunk_len, n, seed):
    """Concatenated episodes never leak rewards or actions across episode boundaries."""
    rng = np.random.default_rng(seed)
    per_ep = [rng.random(t).astype(np.float32) for t in lengths]
    flat = np.concatenate(per_ep)
    rem = steps_remaining(np.array(lengths))
    rbar = chunk_rewards(flat, rem, chunk_len, 0.9)
    starts = np.cumsum(lengths) - np.array(lengths)
    for e, rewards in enumerate(per_ep):
        g = starts[e] + np.arange(lengths[e])
        idx, mask = action_chunk_index(g, rem[g], chunk_len)
        reward, discount, offset = nstep_window(g, rem[g], rbar, chunk_len, n[e], 0.9)
        want = episode_transitions(rewards, chunk_len, 0.9, n[e])
        np.testing.assert_array_equal(idx - starts[e], want.action_index)
        np.testing.assert_array_equal(mask, want.action_mask)
        np.testing.assert_allclose(reward, want.reward, rtol=1e-6)
        np.testing.assert_array_equal(discount, want.discount)
        np.testing.assert_array_equal(np.arange(lengths[e]) + offset, want.next_state_index)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        chunk_rewards(np.zeros(3, np.float32), np.array([3, 2, 1]), 0, 0.9)
    with pytest.raises(ValueError):
        steps_remaining(np.array([2, 0]))
    with pytest.raises(ValueError):
        nstep_window(np.array([0]), np.array([3]), np.zeros(3), 2, 0, 0.9)
