"""Critic-side networks: shapes, chunk masking, image inputs and the EMA rule."""

import copy

import torch

from lwd.critic.networks import (
    CriticConfig,
    CriticEncoderConfig,
    build_chunk_critic,
    build_scalar_value,
    build_value_distribution,
    ema_update,
)


def _obs(b, cams=("front",)):
    return {
        "state": torch.randn(b, 7),
        "images": {c: torch.randint(0, 256, (b, 16, 16, 3), dtype=torch.uint8) for c in cams},
        "instruction_emb": torch.randn(b, 384),
    }


def _cfg(cams=("front",)):
    enc = CriticEncoderConfig(state_dim=7, cameras=cams, hidden=32, embed=32, conv_channels=8)
    return CriticConfig(encoder=enc, chunk_len=5, action_dim=3, hidden=32)


def test_shapes_with_images_and_instruction():
    cfg = _cfg()
    obs, actions = _obs(4), torch.rand(4, 5, 3) * 2 - 1
    q = build_chunk_critic(cfg)(obs, actions)
    assert q.shape == (2, 4)
    v = build_value_distribution(cfg, 201, -0.1, 1.1)
    assert v(obs).shape == (4, 201)
    assert torch.allclose(v.probs(obs).sum(-1), torch.ones(4))
    assert v.mean(obs).shape == (4,)
    assert build_scalar_value(cfg)(obs).shape == (4,)


def test_padded_steps_do_not_change_q():
    torch.manual_seed(0)
    critic = build_chunk_critic(_cfg(cams=()))
    obs = _obs(3, cams=())
    a = torch.rand(3, 5, 3)
    mask = torch.tensor([[1, 1, 1, 0, 0]] * 3, dtype=torch.bool)
    b = a.clone()
    b[:, 3:] = torch.randn(3, 2, 3) * 5
    assert torch.allclose(critic(obs, a, mask), critic(obs, b, mask), atol=1e-6)
    assert not torch.allclose(critic(obs, a), critic(obs, b), atol=1e-4)


def test_two_heads_differ_and_gradient_wrt_actions():
    critic = build_chunk_critic(_cfg(cams=()))
    a = torch.rand(2, 5, 3, requires_grad=True)
    q = critic(_obs(2, cams=()), a)
    assert not torch.allclose(q[0], q[1])
    (g,) = torch.autograd.grad(q.mean(0).sum(), a)
    assert g.shape == a.shape and g.abs().sum() > 0


def test_ema_update_rate():
    online = build_chunk_critic(_cfg(cams=()))
    target = copy.deepcopy(online)
    for p in online.parameters():
        p.data.add_(torch.randn_like(p))
    before = [p.clone() for p in target.parameters()]
    ema_update(target, online, rate=0.005)
    for t, t0, o in zip(target.parameters(), before, online.parameters()):
        assert torch.allclose(t, 0.995 * t0 + 0.005 * o, atol=1e-7)
