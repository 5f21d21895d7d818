"""LeRobotFlowPolicy around LeRobot's real SmolVLA core (lerobot 0.4.4 ``VLAFlowMatching``) at a tiny
size with random weights (lerobot_tiny; nothing downloaded). Skipped where lerobot is not installed
(it is not a dependency of lwd: it pins torch < 2.11 and transformers < 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("lerobot")

from lerobot_tiny import VOCAB  # noqa: E402, I001  (first: it makes lerobot importable without torchvision)
from lerobot.policies.smolvla.modeling_smolvla import make_att_2d_masks  # noqa: E402
from policy_testing import make_observations  # noqa: E402

from lwd.algorithms.bc import sft_step  # noqa: E402
from lwd.algorithms.lwd import LWDConfig, build_lwd_algorithm  # noqa: E402
from lwd.algorithms.qam import QAMConfig  # noqa: E402
from lwd.data.batch import TransitionBatch  # noqa: E402
from lwd.policy.batching import obs_from_arrays  # noqa: E402
from lwd.policy.checkpoint import load_policy, save_policy  # noqa: E402
from lwd.policy.inference import InferencePolicy  # noqa: E402
from lwd.policy.lerobot_adapter import (  # noqa: E402
    LeRobotFlowPolicy,
    LeRobotFlowPolicyConfig,
    VLATokenEncoder,
    _att_2d_masks,
    decode_tokens,
    unpack_cache,
)

TOKENS = 6


def _encoder() -> VLATokenEncoder:
    return VLATokenEncoder(lambda t: [sum(map(ord, w)) % 100 for w in t.split()], TOKENS, VOCAB)


def _config(action_dim: int = 8) -> LeRobotFlowPolicyConfig:
    return LeRobotFlowPolicyConfig(
        state_dim=5, action_dim=action_dim, chunk_len=4, model_factory="lerobot_tiny:tiny_smolvla",
        model_options={"chunk": 4, "max_dim": 8}, cameras=("front",), image_size=16, vlm_image_size=32,
        flow_steps=4, text_dim=TOKENS, max_tokens=TOKENS, vocab_size=VOCAB,
    )  # fmt: skip


def _obs(cfg, n=2):
    observations = make_observations(cfg, n)
    emb = _encoder().encode([o.instruction for o in observations])
    images = {c: np.stack([o.images[c] for o in observations]) for c in cfg.cameras}
    return observations, obs_from_arrays(np.stack([o.state for o in observations]), images, emb)


def test_masks_velocity_and_sampling_match_lerobot() -> None:
    cfg = _config()
    policy = LeRobotFlowPolicy(cfg)
    pad = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    att = torch.tensor([[0, 0, 1, 0], [0, 1, 1, 0]], dtype=torch.bool)
    assert torch.equal(_att_2d_masks(pad, att), make_att_2d_masks(pad, att))
    _, obs = _obs(cfg)
    with torch.no_grad():
        cond = policy.encode(obs)
        x, w = torch.randn(2, 4, 8), torch.tensor([0.1, 0.7])
        p, kv = unpack_cache(cond, policy._kv_shape)
        u = policy.model.denoise_step(prefix_pad_masks=p, past_key_values=kv, x_t=x, timestep=1.0 - w)
        torch.testing.assert_close(policy.velocity(cond, x, w), -u)
        images, masks = policy._images(obs)
        tokens, lang = decode_tokens(obs["instruction_emb"], TOKENS, VOCAB)
        state = torch.nn.functional.pad(obs["state"], (0, 3))
        noise = torch.randn(2, 4, 8)
        ref = policy.model.sample_actions(images, masks, tokens, lang, state, noise=noise)
        torch.testing.assert_close(policy.sample(cond, noise=noise), ref, rtol=1e-4, atol=1e-4)


def test_checkpoint_inference_sft_and_lwd(tmp_path) -> None:
    cfg = _config(action_dim=2)
    policy = LeRobotFlowPolicy(cfg)
    path = save_policy(tmp_path / "p", policy, {}, cfg, 1, None)
    loaded, _, _ = load_policy(path, cfg.robot_spec())
    assert type(loaded) is LeRobotFlowPolicy
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in policy.state_dict().items())
    observations, _ = _obs(cfg)
    chunk = InferencePolicy(loaded, {}, 1, _encoder()).act(observations[0], seed=0)
    assert chunk.actions.shape == (4, 2)
    rng, b = np.random.default_rng(0), 2
    batch = TransitionBatch(
        state=rng.normal(size=(b, 5)).astype(np.float32), instruction_id=np.array([0, 1]),
        actions=rng.uniform(-1, 1, (b, 4, 2)).astype(np.float32), action_mask=np.ones((b, 4), bool),
        reward=np.ones(b, np.float32), discount=np.full(b, 0.99, np.float32),
        next_state=rng.normal(size=(b, 5)).astype(np.float32), intervention=np.zeros(b, bool),
        expert_mask=np.ones((b, 4), bool), source_id=np.zeros(b, np.int64), task_index=np.zeros(b, np.int64),
        is_online=np.zeros(b, bool), instructions=("pick the cube", "open the drawer"), task_ids=("t",),
        images={"front": rng.integers(0, 256, (b, 16, 16, 3), dtype=np.uint8)},
        next_images={"front": rng.integers(0, 256, (b, 16, 16, 3), dtype=np.uint8)},
    )  # fmt: skip
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-4)
    assert np.isfinite(sft_step(policy, opt, batch, _encoder(), None)["policy/bc_loss"])
    algo = build_lwd_algorithm(
        policy.train(), _encoder(), None, LWDConfig(qam=QAMConfig(flow_steps=2)), critic_hidden=16
    )
    before = [p.detach().clone() for p in policy.action_expert_parameters()]
    m = algo.update(batch)
    assert np.isfinite(m["policy/adjoint_loss"]) and np.isfinite(m["critic/td_loss"])
    assert any(not torch.equal(a, p) for a, p in zip(before, policy.action_expert_parameters()))
