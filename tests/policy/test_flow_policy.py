"""FlowPolicy shapes, parameter groups, config round trip, and the image encoder's dependence on pixels."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lwd.policy.flow_policy import FlowPolicy, FlowPolicyConfig
from lwd.utils.errors import ConfigError


def obs_dict(cfg: FlowPolicyConfig, b: int, gen: torch.Generator) -> dict:
    return {
        "state": torch.randn(b, cfg.state_dim, generator=gen),
        "images": {
            c: torch.randint(0, 256, (b, cfg.image_size, cfg.image_size, 3), generator=gen, dtype=torch.uint8)
            for c in cfg.cameras
        },
        "instruction_emb": torch.randn(b, cfg.text_dim, generator=gen),
    }


@pytest.mark.parametrize("mode", ["state", "pixels"])
def test_shapes(mode: str, state_config, pixel_config, gen) -> None:
    cfg = state_config if mode == "state" else pixel_config
    policy = FlowPolicy(cfg)
    cond = policy.encode(obs_dict(cfg, 3, gen))
    assert cond.shape == (3, cfg.cond_dim)
    x = torch.randn(3, cfg.chunk_len, cfg.action_dim, generator=gen)
    v = policy.velocity(cond, x, torch.rand(3, generator=gen))
    assert v.shape == x.shape
    assert torch.equal(policy.velocity(cond, x, 0.3), policy.velocity(cond, x, torch.full((3,), 0.3)))
    a = policy.sample(cond, generator=gen)
    assert a.shape == (3, cfg.chunk_len, cfg.action_dim) and not a.requires_grad
    # Same noise -> same sample; steps override is honoured.
    noise = policy.noise(3, generator=gen)
    assert torch.equal(policy.sample(cond, noise=noise), policy.sample(cond, noise=noise))
    assert not torch.equal(policy.sample(cond, noise=noise, steps=2), policy.sample(cond, noise=noise))


def test_velocity_depends_on_inputs(pixel_config, gen) -> None:
    policy = FlowPolicy(pixel_config)
    obs = obs_dict(pixel_config, 2, gen)
    cond = policy.encode(obs)
    x = torch.randn(2, pixel_config.chunk_len, pixel_config.action_dim, generator=gen)
    w = torch.tensor([0.2, 0.7])
    base = policy.velocity(cond, x, w)
    assert not torch.allclose(base, policy.velocity(cond, x, w + 0.1))
    assert not torch.allclose(base, policy.velocity(cond, x + 0.5, w))
    obs2 = dict(obs, images={**obs["images"], "wrist": 255 - obs["images"]["wrist"]})
    assert not torch.allclose(cond, policy.encode(obs2))
    obs3 = dict(obs, instruction_emb=-obs["instruction_emb"])
    assert not torch.allclose(cond, policy.encode(obs3))
    with pytest.raises(KeyError, match="wrist"):
        policy.encode(dict(obs, images={"front": obs["images"]["front"]}))


def test_action_expert_parameters_and_freezing(state_config) -> None:
    policy = FlowPolicy(state_config)
    expert = {id(p) for p in policy.action_expert_parameters()}
    backbone = {id(p) for p in policy.backbone_parameters()}
    assert expert and backbone and not expert & backbone
    assert expert | backbone == {id(p) for p in policy.parameters()}
    policy.freeze_backbone()
    assert all(not p.requires_grad for p in policy.backbone_parameters())
    assert all(p.requires_grad for p in policy.action_expert_parameters())


def test_config_json_round_trip_and_validation(pixel_config) -> None:
    assert FlowPolicyConfig.from_json(pixel_config.to_json()) == pixel_config
    assert pixel_config.robot_spec().cameras == ("front", "wrist")
    with pytest.raises(ConfigError):
        FlowPolicyConfig.from_json({**pixel_config.to_json(), "bogus": 1})
    with pytest.raises(ConfigError):
        dataclasses.replace(pixel_config, image_size=0)
    with pytest.raises(ConfigError):
        FlowPolicyConfig(state_dim=3, action_dim=0)


def test_velocity_fn_is_velocity_with_cond_bound():
    """The bound velocity (cond and flow-time projections computed once) is the same function as
    ``velocity``, in value and gradient, for a shared flow time, per-row times and a float."""
    torch.manual_seed(0)
    policy = FlowPolicy(FlowPolicyConfig(state_dim=5, action_dim=3, chunk_len=4, text_encoder="hashing"))
    for p in policy.parameters():
        p.data += 0.05 * torch.randn_like(p)
    cond = torch.randn(6, policy.config.cond_dim, requires_grad=True)
    x = torch.randn(6, 4, 3)
    f = policy.velocity_fn(cond)
    for w in (torch.full((6,), 0.3), torch.rand(6), 0.7, torch.full((6,), 0.3)):  # the last one is cached
        torch.testing.assert_close(f(x, w), policy.velocity(cond, x, w), rtol=1e-5, atol=1e-5)
    params = [cond, *policy.action_expert.parameters()]
    want = torch.autograd.grad(policy.velocity(cond, x, 0.4).pow(2).sum(), params)
    got = torch.autograd.grad(policy.velocity_fn(cond)(x, 0.4).pow(2).sum(), params)
    for a, b in zip(want, got, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
