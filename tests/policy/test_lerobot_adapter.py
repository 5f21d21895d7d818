"""LeRobotFlowPolicy against a stand-in with LeRobot's SmolVLA method signatures (lerobot_standin):
time convention, interface mapping, token encoding, cache packing, checkpoints and learner steps.
The same checks against the real LeRobot model are in test_lerobot_real.py (run in `.venv/lerobot`, made by `make lerobot-env`)."""

from __future__ import annotations

import numpy as np
import torch
from policy_testing import make_observations

from lwd.algorithms.bc import sft_step
from lwd.algorithms.lwd import LWDConfig, build_lwd_algorithm
from lwd.algorithms.qam import QAMConfig
from lwd.data.batch import TransitionBatch
from lwd.policy.batching import obs_from_arrays
from lwd.policy.checkpoint import load_policy, save_policy
from lwd.policy.inference import InferencePolicy
from lwd.policy.language import HashingTextEncoder
from lwd.policy.lerobot_adapter import (
    LeRobotFlowPolicy,
    LeRobotFlowPolicyConfig,
    VLATokenEncoder,
    decode_tokens,
    pack_cache,
    unpack_cache,
)

VOCAB, TOKENS = 100, 6


def _tokenize(text: str) -> list[int]:
    return [sum(map(ord, w)) % VOCAB for w in text.split()]


def _encoder() -> VLATokenEncoder:
    return VLATokenEncoder(_tokenize, TOKENS, VOCAB, prefix=HashingTextEncoder(dim=16))


def _config(action_dim: int = 3, **kw) -> LeRobotFlowPolicyConfig:
    return LeRobotFlowPolicyConfig(
        state_dim=5, action_dim=action_dim, chunk_len=4, model_factory="lerobot_standin:standin_model",
        model_options={"chunk_size": 4, "max_state_dim": 6, "max_action_dim": 3, "vocab": VOCAB},
        cameras=("front",), image_size=16, vlm_image_size=8, flow_steps=4, text_dim=16 + TOKENS,
        max_tokens=TOKENS, vocab_size=VOCAB, **kw,
    )  # fmt: skip


def _obs(cfg: LeRobotFlowPolicyConfig, n: int = 3) -> tuple[list, dict]:
    observations = make_observations(cfg, n)
    emb = _encoder().encode([o.instruction for o in observations])
    images = {c: np.stack([o.images[c] for o in observations]) for c in cfg.cameras}
    return observations, obs_from_arrays(np.stack([o.state for o in observations]), images, emb)


def test_tokens_round_trip_exactly() -> None:
    enc = VLATokenEncoder(lambda t: [int(x) for x in t.split()], 4, 257152)
    ids, mask = decode_tokens(torch.from_numpy(enc.encode(["257151 0 12345", "7"])), 4, 257152)
    assert ids.tolist() == [[257151, 0, 12345, 0], [7, 0, 0, 0]]
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False]]


def test_cache_packing_round_trips() -> None:
    pad = torch.tensor([[True, True, False]])
    kv = {
        i: {"key_states": torch.randn(1, 3, 2, 4), "value_states": torch.randn(1, 3, 2, 4)} for i in range(2)
    }
    pad2, kv2 = unpack_cache(pack_cache(pad, kv), (2, 2, 4))
    assert torch.equal(pad, pad2)
    assert all(torch.equal(kv[i][k], kv2[i][k]) for i in kv for k in kv[i])


def test_time_convention_and_sampling_match_lerobot() -> None:
    cfg = _config()
    policy = LeRobotFlowPolicy(cfg)
    _, obs = _obs(cfg)
    cond = policy.encode(obs)
    x, w = torch.randn(3, 4, 3), torch.tensor([0.0, 0.3, 0.9])
    pad, kv = unpack_cache(cond, (2, 2, 4))
    u = policy.model.denoise_step(pad, kv, x, 1.0 - w)
    torch.testing.assert_close(policy.velocity(cond, x, w), -u)  # v(x, w) = -u(x, t = 1 - w)
    # whole sampler: lwd's Euler from w = 0 == LeRobot's sample_actions from t = 1
    noise = torch.randn(3, 4, 3)
    images = [img for img, _ in [policy._images(obs)]][0]
    tokens, lang_masks = decode_tokens(obs["instruction_emb"], TOKENS, VOCAB)
    state = torch.nn.functional.pad(obs["state"], (0, 1))
    ref = policy.model.sample_actions(
        images, [torch.ones(3, dtype=torch.bool)], tokens, lang_masks, state, noise=noise
    )
    torch.testing.assert_close(policy.sample(cond, noise=noise), ref, rtol=1e-5, atol=1e-5)


def test_checkpoint_inference_and_learner_steps(tmp_path) -> None:
    cfg = _config(action_dim=2)  # fewer robot action dims than the model's max_action_dim
    policy = LeRobotFlowPolicy(cfg)
    path = save_policy(tmp_path / "p", policy, {}, cfg, 1, None)
    loaded, _, manifest = load_policy(path, cfg.robot_spec())
    assert (
        manifest["policy_class"] == "lwd.policy.lerobot_adapter:LeRobotFlowPolicy"
        and type(loaded) is LeRobotFlowPolicy
    )
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in policy.state_dict().items())
    observations, _ = _obs(cfg)
    chunks = InferencePolicy(loaded, {}, 1, _encoder()).act_batch(observations, seeds=[0, 1, 2])
    assert chunks[0].actions.shape == (4, 2) and all(np.abs(c.actions).max() <= 1 for c in chunks)

    rng = np.random.default_rng(0)
    b = 4
    batch = TransitionBatch(
        state=rng.normal(size=(b, 5)).astype(np.float32), instruction_id=rng.integers(0, 2, b),
        actions=rng.uniform(-1, 1, (b, 4, 2)).astype(np.float32), action_mask=np.ones((b, 4), bool),
        reward=np.ones(b, np.float32), discount=np.full(b, 0.99, np.float32),
        next_state=rng.normal(size=(b, 5)).astype(np.float32), intervention=np.zeros(b, bool),
        expert_mask=np.ones((b, 4), bool), source_id=np.zeros(b, np.int64), task_index=np.zeros(b, np.int64),
        is_online=np.zeros(b, bool), instructions=("pick the cube", "open the drawer"), task_ids=("t",),
        images={"front": rng.integers(0, 256, (b, 16, 16, 3), dtype=np.uint8)},
        next_images={"front": rng.integers(0, 256, (b, 16, 16, 3), dtype=np.uint8)},
    )  # fmt: skip
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    assert np.isfinite(sft_step(policy, opt, batch, _encoder(), None)["policy/bc_loss"])
    algo = build_lwd_algorithm(
        policy.train(), _encoder(), None, LWDConfig(qam=QAMConfig(flow_steps=3)), critic_hidden=16
    )
    before = [p.detach().clone() for p in policy.action_expert_parameters()]
    frozen = {k: v.detach().clone() for k, v in policy.model.state_proj.state_dict().items()}
    m = algo.update(batch)
    assert np.isfinite(m["policy/adjoint_loss"]) and np.isfinite(m["critic/td_loss"])
    assert any(not torch.equal(a, p) for a, p in zip(before, policy.action_expert_parameters()))
    assert all(torch.equal(v, policy.model.state_proj.state_dict()[k]) for k, v in frozen.items())
