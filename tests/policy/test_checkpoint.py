"""Policy checkpoints: bitwise round trip, and refusal of partial, corrupt or mismatched ones."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from policy_testing import make_observations

from lwd.policy.checkpoint import WEIGHTS, load_inference_policy, load_policy, save_policy
from lwd.policy.flow_policy import FlowPolicy
from lwd.policy.inference import InferencePolicy
from lwd.policy.language import HashingTextEncoder
from lwd.transforms import STATE_KEY, FeatureStats
from lwd.utils.errors import DataError


@pytest.fixture
def saved(tmp_path: Path, pixel_config):
    torch.manual_seed(0)
    policy = FlowPolicy(pixel_config)
    stats = {
        STATE_KEY: FeatureStats.from_data(np.random.default_rng(0).normal(size=(50, pixel_config.state_dim)))
    }
    path = save_policy(tmp_path / "v3", policy, stats, pixel_config, 3, 2, {"learner_step": 150})
    return path, policy, stats


def test_round_trip_is_bitwise(saved, pixel_config) -> None:
    path, policy, stats = saved
    loaded, stats2, manifest = load_policy(path, expected_spec=pixel_config.robot_spec())
    assert manifest["version"] == 3 and manifest["parent_version"] == 2
    assert manifest["extra"] == {"learner_step": 150}
    assert loaded.config == pixel_config
    np.testing.assert_array_equal(stats2[STATE_KEY].mean, stats[STATE_KEY].mean)
    for (k, a), (k2, b) in zip(policy.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    enc = HashingTextEncoder()
    obs = make_observations(pixel_config, 3)
    before = InferencePolicy(policy, stats, 3, enc).act_batch(obs, seeds=[1, 2, 3])
    inf = load_inference_policy(path, text_encoder=enc)
    after = inf.act_batch(obs, seeds=[1, 2, 3])
    assert inf.version == 3
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x.actions, y.actions)


def test_refuses_existing_target(saved, pixel_config) -> None:
    path, policy, stats = saved
    with pytest.raises(FileExistsError):
        save_policy(path, policy, stats, pixel_config, 4, 3)


def test_refuses_flipped_byte(saved) -> None:
    path = saved[0]
    data = bytearray((path / WEIGHTS).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt"):
        load_policy(path)


def test_refuses_missing_manifest(saved) -> None:
    path = saved[0]
    (path / "manifest.json").unlink()
    with pytest.raises(DataError, match="partial"):
        load_policy(path)


def test_refuses_truncated_weights(saved) -> None:
    path = saved[0]
    data = (path / WEIGHTS).read_bytes()
    (path / WEIGHTS).write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match="corrupt"):
        load_policy(path)


def test_refuses_config_weight_mismatch(saved) -> None:
    """A manifest edited to another width (checksums still valid) cannot load the weights."""
    path = saved[0]
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["config"]["expert_width"] = 48
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="do not match"):
        load_policy(path)


def test_refuses_robot_spec_mismatch(saved, pixel_config) -> None:
    path = saved[0]
    other = dataclasses.replace(pixel_config.robot_spec(), action_dim=pixel_config.action_dim + 1)
    with pytest.raises(DataError, match="robot spec mismatch"):
        load_policy(path, expected_spec=other)


def test_refuses_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_policy(tmp_path / "nope")


def test_non_finite_weights_are_never_saved_or_loaded(tmp_path: Path, saved, pixel_config):
    path, policy, stats = saved
    bad = FlowPolicy(pixel_config)
    with torch.no_grad():
        next(bad.parameters()).fill_(float("nan"))
    with pytest.raises(DataError, match="non-finite"):
        save_policy(tmp_path / "nan", bad, stats, pixel_config, 4, 3)
    assert not (tmp_path / "nan").exists()
    # weights written by other code with a valid manifest but inf inside are refused at load
    import safetensors.torch

    from lwd.utils.checkpoint import MANIFEST, write_checkpoint_dir

    tensors = safetensors.torch.load((path / WEIGHTS).read_bytes())
    first = next(iter(tensors))
    tensors[first] = torch.full_like(tensors[first], float("inf"))
    manifest = json.loads((path / MANIFEST).read_text())
    manifest.pop("files")
    write_checkpoint_dir(tmp_path / "inf", {WEIGHTS: safetensors.torch.save(tensors)}, manifest)
    with pytest.raises(DataError, match="non-finite"):
        load_policy(tmp_path / "inf")
