"""Runs inside the LeRobot environment (``make lerobot-env``: lerobot 0.4.4 + transformers 4.57 + torch),
never under the lwd test suite's interpreter, with lwd's ``src`` on PYTHONPATH: it checks
``LeRobotFlowPolicy`` around LeRobot's real SmolVLA core (tiny, random weights: lerobot_tiny.py) for
tests/policy/test_lerobot_real.py and prints ONE JSON object on stdout (no pickle); the test asserts on it.

Numbers are reported, not judged here: each comparison as the largest absolute difference together with
the largest absolute value of the reference, so the test applies the tolerances. Library prints go to
stderr so they cannot corrupt the reply.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from lerobot_tiny import VOCAB  # noqa: E402  (before lerobot and transformers: see there for torchvision)

# isort: split
import lerobot  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from lerobot.policies.smolvla.modeling_smolvla import VLAFlowMatching, make_att_2d_masks  # noqa: E402
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


def _diff(got: torch.Tensor, ref: torch.Tensor) -> dict:
    return {
        "shapes": [list(got.shape), list(ref.shape)],
        "max_abs_diff": float((got - ref).abs().max()),
        "ref_max_abs": float(ref.abs().max()),
    }


def masks_velocity_and_sampling() -> dict:
    cfg = _config()
    policy = LeRobotFlowPolicy(cfg)
    pad = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    att = torch.tensor([[0, 0, 1, 0], [0, 1, 1, 0]], dtype=torch.bool)
    out = {
        "model_class": f"{type(policy.model).__module__}.{type(policy.model).__qualname__}",
        "model_is_lerobots": isinstance(policy.model, VLAFlowMatching),
        "masks_equal": bool(torch.equal(_att_2d_masks(pad, att), make_att_2d_masks(pad, att))),
    }
    _, obs = _obs(cfg)
    with torch.no_grad():
        cond = policy.encode(obs)
        x, w = torch.randn(2, 4, 8), torch.tensor([0.1, 0.7])
        p, kv = unpack_cache(cond, policy._kv_shape)
        u = policy.model.denoise_step(prefix_pad_masks=p, past_key_values=kv, x_t=x, timestep=1.0 - w)
        out["velocity"] = _diff(policy.velocity(cond, x, w), -u)
        images, masks = policy._images(obs)
        tokens, lang = decode_tokens(obs["instruction_emb"], TOKENS, VOCAB)
        state = torch.nn.functional.pad(obs["state"], (0, 3))
        noise = torch.randn(2, 4, 8)
        ref = policy.model.sample_actions(images, masks, tokens, lang, state, noise=noise)
        out["sample"] = _diff(policy.sample(cond, noise=noise), ref)
    return out


def checkpoint_inference_sft_and_lwd(tmp: Path) -> dict:
    cfg = _config(action_dim=2)
    policy = LeRobotFlowPolicy(cfg)
    path = save_policy(tmp / "p", policy, {}, cfg, 1, None)
    loaded, _, _ = load_policy(path, cfg.robot_spec())
    saved, back = policy.state_dict(), loaded.state_dict()
    out = {
        "loaded_class": f"{type(loaded).__module__}.{type(loaded).__qualname__}",
        "state_keys_equal": sorted(saved) == sorted(back),
        "state_tensors": len(saved),
        "state_unequal": [k for k, v in saved.items() if k not in back or not torch.equal(v, back[k])],
    }
    observations, _ = _obs(cfg)
    chunk = InferencePolicy(loaded, {}, 1, _encoder()).act(observations[0], seed=0)
    out["act_shape"] = list(chunk.actions.shape)
    out["act_finite"] = bool(np.isfinite(chunk.actions).all())
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
    out["sft_bc_loss"] = float(sft_step(policy, opt, batch, _encoder(), None)["policy/bc_loss"])
    algo = build_lwd_algorithm(
        policy.train(), _encoder(), None, LWDConfig(qam=QAMConfig(flow_steps=2)), critic_hidden=16
    )
    before = [p.detach().clone() for p in policy.action_expert_parameters()]
    m = algo.update(batch)
    out["adjoint_loss"] = float(m["policy/adjoint_loss"])
    out["td_loss"] = float(m["critic/td_loss"])
    after = list(policy.action_expert_parameters())
    out["expert_tensors"] = len(before)
    out["expert_tensors_moved"] = sum(not torch.equal(a, p) for a, p in zip(before, after, strict=True))
    return out


def main() -> None:
    reply, sys.stdout = sys.stdout, sys.stderr  # library prints must not corrupt the reply
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        result = {
            "versions": {"lerobot": lerobot.__version__, "transformers": transformers.__version__,
                         "torch": torch.__version__},
            "lerobot_file": lerobot.__file__,
            "masks_velocity_and_sampling": masks_velocity_and_sampling(),
            "checkpoint_inference_sft_and_lwd": checkpoint_inference_sft_and_lwd(Path(tmp)),
        }  # fmt: skip
    reply.write(json.dumps(result) + "\n")
    reply.flush()


if __name__ == "__main__":
    main()
