"""A policy class that is not the built-in FlowPolicy (lwd.policy.examples.MLPFlowPolicy) goes through
checkpoints, SFT, DIVL + QAM, the registry, a robot's materialised version and evaluation on fake4."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lwd.algorithms.bc import sft_step
from lwd.algorithms.lwd import LWDConfig, build_lwd_algorithm
from lwd.algorithms.qam import QAMConfig
from lwd.data.batch import TransitionBatch
from lwd.envs.fake import ACTION_DIM, STATE_DIM
from lwd.policy.checkpoint import load_inference_policy, load_policy, save_policy
from lwd.policy.examples import MLPFlowPolicy, MLPFlowPolicyConfig
from lwd.policy.flow_policy import FlowPolicy
from lwd.policy.language import HashingTextEncoder
from lwd.policy.protocol import FlowPolicyModel, PolicyConfig, build_policy, class_path
from lwd.utils.errors import ConfigError, DataError

CFG = MLPFlowPolicyConfig(state_dim=STATE_DIM, action_dim=ACTION_DIM, chunk_len=4, flow_steps=3, hidden=16)
MLP_CLASS = "lwd.policy.examples:MLPFlowPolicy"


def _batch(b: int = 8, seed: int = 0) -> TransitionBatch:
    rng = np.random.default_rng(seed)
    h, d, a = CFG.chunk_len, CFG.state_dim, CFG.action_dim
    return TransitionBatch(
        state=rng.normal(size=(b, d)).astype(np.float32),
        instruction_id=rng.integers(0, 2, b),
        actions=rng.uniform(-1, 1, (b, h, a)).astype(np.float32),
        action_mask=np.ones((b, h), dtype=bool),
        reward=rng.uniform(0, 1, b).astype(np.float32),
        discount=np.full(b, 0.99, dtype=np.float32),
        next_state=rng.normal(size=(b, d)).astype(np.float32),
        intervention=np.arange(b) % 2 == 0,
        expert_mask=np.ones((b, h), dtype=bool),
        source_id=rng.integers(0, 4, b),
        task_index=np.zeros(b, dtype=np.int64),
        is_online=np.zeros(b, dtype=bool),
        instructions=("reach the red target", "reach the blue target"),
        task_ids=("reach-red",),
    )


def _policy(seed: int = 0) -> MLPFlowPolicy:
    torch.manual_seed(seed)
    return MLPFlowPolicy(CFG)


def _weights(policy: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in policy.state_dict().items()}


def test_protocol_is_satisfied_by_both_classes(state_config) -> None:
    for policy in (_policy(), FlowPolicy(state_config)):
        assert isinstance(policy, FlowPolicyModel) and isinstance(policy.config, PolicyConfig)
    assert class_path(MLPFlowPolicy) == MLP_CLASS
    assert type(build_policy(MLP_CLASS, CFG.to_json())) is MLPFlowPolicy
    assert type(build_policy(None, state_config.to_json())) is FlowPolicy


def test_round_trip_names_the_class(tmp_path: Path) -> None:
    policy = _policy()
    path = save_policy(tmp_path / "p", policy, {}, CFG, 1, None)
    loaded, _, manifest = load_policy(path, expected_spec=CFG.robot_spec())
    assert manifest["policy_class"] == MLP_CLASS and type(loaded) is MLPFlowPolicy and loaded.config == CFG
    for k, v in policy.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    assert not loaded.training


def test_old_manifest_without_class_loads_flow_policy(tmp_path: Path, state_config) -> None:
    path = save_policy(tmp_path / "p", FlowPolicy(state_config), {}, state_config, 1, None)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest.pop("policy_class") == "lwd.policy.flow_policy:FlowPolicy"
    (path / "manifest.json").write_text(json.dumps(manifest))
    loaded, _, _ = load_policy(path)
    assert type(loaded) is FlowPolicy and loaded.config == state_config


@pytest.mark.parametrize(
    "policy_class, match",
    [
        ("no.such.module:Policy", "cannot be loaded"),
        ("lwd.policy.protocol:class_path", "not a torch.nn.Module"),
        ("torch.nn:Linear", "lacks the flow-policy methods"),
        ("lwd.policy.flow_policy:FlowPolicy", "config"),  # the MLP config does not fit FlowPolicyConfig
        (7, "policy_class must be"),
    ],
)
def test_refuses_bad_policy_class(tmp_path: Path, policy_class: object, match: str) -> None:
    path = save_policy(tmp_path / "p", _policy(), {}, CFG, 1, None)
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "policy_class": policy_class}))
    with pytest.raises(DataError, match=match):
        load_policy(path)


def test_refuses_non_finite_and_local_classes(tmp_path: Path) -> None:
    policy = _policy()
    with torch.no_grad():
        next(policy.head.parameters()).fill_(float("nan"))
    with pytest.raises(DataError, match="non-finite"):
        save_policy(tmp_path / "nan", policy, {}, CFG, 1, None)

    class Local(MLPFlowPolicy):
        pass

    with pytest.raises(ConfigError, match="local"):
        save_policy(tmp_path / "local", Local(CFG), {}, CFG, 1, None)


def test_sft_and_lwd_steps_train_the_custom_policy(tmp_path: Path) -> None:
    policy, enc = _policy(), HashingTextEncoder()
    before = _weights(policy)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    metrics = sft_step(policy, opt, _batch(), enc, None, generator=torch.Generator().manual_seed(0))
    assert np.isfinite(metrics["policy/bc_loss"])
    after_sft = _weights(policy)
    assert all(not torch.equal(before[k], after_sft[k]) for k in before)

    cfg = LWDConfig(qam=QAMConfig(flow_steps=3), policy_lr=1e-3, reference="bc", track_reference=True)
    algo = build_lwd_algorithm(policy.train(), enc, None, cfg, critic_hidden=16)
    for i in range(2):
        m = algo.update(_batch(seed=i), imitation=_batch(seed=10 + i))
    for key in ("value/ce_loss", "critic/td_loss", "policy/adjoint_loss", "reference/bc_loss"):
        assert np.isfinite(m[key]), key
    trained = _weights(algo.policy)
    assert any(not torch.equal(after_sft[k], trained[k]) for k in after_sft if k.startswith("head."))
    path = save_policy(tmp_path / "v2", algo.policy.eval(), {}, algo.policy.config, 2, 1)
    assert type(load_policy(path)[0]) is MLPFlowPolicy


def test_registry_robot_and_evaluation(tmp_path: Path) -> None:
    from lwd.configs.eval import EvalConfig
    from lwd.envs.suites import make_robot
    from lwd.eval.runner import evaluate
    from lwd.fleet.registry.registry import PolicyRegistry
    from lwd.fleet.registry.versions import PolicyVersions, policy_files

    ckpt = save_policy(tmp_path / "ckpt", _policy(), {}, CFG, 41, None, {"task_ids": ["reach-red"]})
    registry = PolicyRegistry(tmp_path / "registry")
    version = registry.publish(policy_files(ckpt))  # number 1 != 41: the robot materialises it
    registry.set_default(version)
    robot = make_robot("fake4", "state", "field")
    versions = PolicyVersions(registry, tmp_path / "cache", expected_spec=robot.spec)
    acting = versions.resolve("robot-000")
    assert acting is not None and acting.version == version and type(acting.policy) is MLPFlowPolicy
    chunk = acting.act(robot.reset("reach-red", "reach the red target", seed=0), seed=0)
    assert chunk.actions.shape == (CFG.chunk_len, CFG.action_dim) and np.abs(chunk.actions).max() <= 1.0

    materialised = next((tmp_path / "cache").iterdir())
    inf = load_inference_policy(materialised, robot.spec)
    assert inf.version == version and type(inf.policy) is MLPFlowPolicy

    res = evaluate(
        EvalConfig(checkpoint=materialised, suite="fake4", tasks=("reach-red",), episodes_per_task=2,
                   workers=1, out=tmp_path / "eval"),
        progress=False,
    )  # fmt: skip
    assert res["episodes"] == 2 and 0.0 <= res["tasks"]["reach-red"]["success_rate"] <= 1.0
