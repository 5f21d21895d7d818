"""InferencePolicy: batched == single, clipping, noise modes, norm stats, input checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from policy_testing import make_observations

from lwd.policy.batching import actions_from_policy, actions_to_policy
from lwd.policy.flow_policy import FlowPolicy
from lwd.policy.inference import InferencePolicy
from lwd.policy.language import HashingTextEncoder
from lwd.transforms import ACTION_KEY, STATE_KEY, FeatureStats


def make(cfg, **kw) -> InferencePolicy:
    torch.manual_seed(0)
    stats = {
        STATE_KEY: FeatureStats.from_data(np.random.default_rng(0).normal(2.0, 3.0, (100, cfg.state_dim)))
    }
    return InferencePolicy(FlowPolicy(cfg), stats, version=7, text_encoder=HashingTextEncoder(), **kw)


@pytest.mark.parametrize("mode", ["state", "pixels"])
def test_batched_equals_single_with_same_seeds(mode: str, state_config, pixel_config) -> None:
    cfg = state_config if mode == "state" else pixel_config
    pol = make(cfg)
    obs = make_observations(cfg, 5)
    seeds = [11, 12, 13, 14, 15]
    batched = pol.act_batch(obs, seeds=seeds)
    for o, s, chunk in zip(obs, seeds, batched):
        single = pol.act(o, seed=s)
        assert single.policy_version == chunk.policy_version == 7
        assert single.actions.shape == (cfg.chunk_len, cfg.action_dim) and single.actions.dtype == np.float32
        np.testing.assert_allclose(single.actions, chunk.actions, atol=1e-5)
    # A row's action does not depend on its batch neighbours.
    np.testing.assert_allclose(
        pol.act_batch(obs[2:], seeds=seeds[2:])[0].actions, batched[2].actions, atol=1e-5
    )


def test_noise_modes_and_clipping(state_config) -> None:
    pol = make(state_config)
    o = make_observations(state_config, 1)[0]
    a, b = pol.act(o).actions, pol.act(o).actions
    assert not np.array_equal(a, b)  # fresh seeds each call
    zero = make(state_config, noise="zero")
    np.testing.assert_array_equal(zero.act(o).actions, zero.act(o).actions)
    # Blow up the output layer: actions must still be clipped to [-1, 1].
    with torch.no_grad():
        pol.policy.action_expert.out.bias.fill_(50.0)
    acts = pol.act(o).actions
    assert acts.max() == 1.0 and acts.min() >= -1.0


def test_state_is_normalised_with_norm_stats(state_config) -> None:
    pol = make(state_config, noise="zero")
    o = make_observations(state_config, 1)[0]
    raw = pol.act(o).actions
    pol.norm_stats = {}
    assert not np.allclose(raw, pol.act(o).actions)


def test_action_standardisation_round_trip() -> None:
    st = FeatureStats.from_data(np.random.default_rng(0).uniform(-0.5, 0.9, (50, 3)))
    a = torch.rand(4, 2, 3) - 0.5
    internal = actions_to_policy(a, {ACTION_KEY: st})
    assert not torch.allclose(internal, a)
    assert torch.allclose(actions_from_policy(internal, {ACTION_KEY: st}), a, atol=1e-6)
    assert torch.equal(actions_to_policy(a, None), a)


def test_rejects_mismatched_observations(pixel_config) -> None:
    pol = make(pixel_config)
    o = make_observations(pixel_config, 1)[0]
    with pytest.raises(ValueError, match="state"):
        pol.act(dataclasses.replace(o, state=np.zeros(3, np.float32)))
    with pytest.raises(ValueError, match="wrist"):
        pol.act(dataclasses.replace(o, images={"front": o.images["front"]}))
    with pytest.raises(ValueError, match="uint8"):
        pol.act(dataclasses.replace(o, images={**o.images, "front": o.images["front"].astype(np.float32)}))
    assert pol.act_batch([]) == []
