"""BC by flow matching: the loss matches section 2, masks padding, and learns a multimodal toy task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lwd.algorithms.batching import policy_obs
from lwd.algorithms.bc import BCUpdate, flow_matching_loss
from lwd.data.batch import TransitionBatch
from lwd.policy.flow_policy import FlowPolicy, FlowPolicyConfig
from lwd.policy.integrators import interpolate
from lwd.policy.language import HashingTextEncoder

torch.set_num_threads(1)

TOY = FlowPolicyConfig(
    state_dim=2, action_dim=2, chunk_len=4, hidden_dim=64, cond_dim=64, expert_width=128,
    expert_depth=2, text_encoder="hashing", time_emb_dim=32,
)  # fmt: skip
INSTRUCTIONS = ("move to the left", "move to the right")


def toy_batch(rng: np.random.Generator, b: int) -> TransitionBatch:
    """Instruction 0 -> x = -0.5, instruction 1 -> x = +0.5; y = +-0.5 with prob 1/2 (two modes)."""
    ids = rng.integers(0, 2, size=b)
    x = np.where(ids == 0, -0.5, 0.5)
    y = rng.choice([-0.5, 0.5], size=b)
    actions = np.repeat(np.stack([x, y], -1)[:, None, :], TOY.chunk_len, axis=1).astype(np.float32)
    actions += rng.normal(0, 0.02, size=actions.shape).astype(np.float32)
    z = np.zeros(b, dtype=np.float32)
    return TransitionBatch(
        state=rng.normal(size=(b, 2)).astype(np.float32), instruction_id=ids.astype(np.int64),
        actions=actions, action_mask=np.ones((b, TOY.chunk_len), bool), reward=z, discount=z,
        next_state=np.zeros((b, 2), np.float32), intervention=np.zeros(b, bool), expert_mask=np.ones((b, TOY.chunk_len), bool),
        source_id=np.zeros(b, np.int64), task_index=ids.astype(np.int64), is_online=np.zeros(b, bool),
        instructions=INSTRUCTIONS, task_ids=("left", "right"),
    )  # fmt: skip


def test_loss_is_masked_mean_of_velocity_error() -> None:
    torch.manual_seed(0)
    policy = FlowPolicy(TOY)
    enc = HashingTextEncoder()
    batch = toy_batch(np.random.default_rng(0), 6)
    obs = policy_obs(batch, enc, None)
    actions = torch.from_numpy(batch.actions)
    noise, w = torch.randn_like(actions), torch.rand(6)
    mask = torch.ones(6, TOY.chunk_len, dtype=torch.bool)
    mask[:, 2:] = False
    loss, metrics = flow_matching_loss(policy, obs, actions, mask, noise=noise, w=w)
    with torch.no_grad():
        pred = policy.velocity(policy.encode(obs), interpolate(noise, actions, w), w)
        expected = ((pred - (actions - noise)) ** 2)[:, :2].mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert metrics["policy/bc_loss"] == pytest.approx(loss.item())
    # A chunk with no valid step contributes nothing (and does not divide by zero).
    empty, _ = flow_matching_loss(policy, obs, actions, torch.zeros_like(mask), noise=noise, w=w)
    assert empty.item() == 0.0


def test_bc_learns_instruction_conditioned_multimodal_chunks() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    policy = FlowPolicy(TOY)
    enc = HashingTextEncoder()
    update = BCUpdate(policy, torch.optim.Adam(policy.parameters(), lr=2e-3), enc)
    gen = torch.Generator().manual_seed(1)
    losses = [update.update(toy_batch(rng, 256), gen)["policy/bc_loss"] for _ in range(300)]
    assert np.mean(losses[-20:]) < 0.6 * np.mean(losses[:20])

    policy.eval()
    for i, x_target in enumerate((-0.5, 0.5)):
        emb = enc.encode([INSTRUCTIONS[i]] * 512)
        obs = {"state": torch.randn(512, 2), "images": {}, "instruction_emb": torch.from_numpy(emb)}
        acts = policy.sample(policy.encode(obs), generator=gen)  # [512, h, 2]
        assert acts[..., 0].mean().item() == pytest.approx(x_target, abs=0.1)
        assert acts[..., 1].mean().item() == pytest.approx(0.0, abs=0.15)
        # Both modes of y are reproduced, not their average (which a regressor would output).
        y = acts[:, :, 1].mean(dim=1)
        assert (y > 0.25).float().mean() > 0.25 and (y < -0.25).float().mean() > 0.25
