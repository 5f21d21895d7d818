"""The learner's device setting: ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` resolution, a clear error
for a device this machine lacks, and a learner that trains, publishes and checkpoints on ``cpu``
(CPU tensors on disk whatever the device, so it resumes anywhere)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from lwd.configs.online import LearnerSettings, OnlineConfig
from lwd.fleet.dataplane import DataPlaneConfig
from lwd.fleet.learner.service import Learner
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.fleet.registry.versions import materialize_version
from lwd.pipeline.online import run_online
from lwd.policy.checkpoint import load_policy
from lwd.utils.device import resolve_device
from lwd.utils.errors import ConfigError


def test_auto_resolves_to_the_cpu_on_this_machine():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_a_cuda_device_without_cuda_is_a_config_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    for spec in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(ConfigError, match=rf"device '{spec}' is not available.*use device 'cpu' or 'auto'"):
            resolve_device(spec)
    for spec in ("gpu", "cuda:x", "CPU", ""):
        with pytest.raises(ConfigError, match="unknown device"):
            resolve_device(spec)


def test_cuda_indices_are_checked_against_the_visible_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match="sees 2 CUDA device"):
        resolve_device("cuda:2")


def _learner_config(tmp_path, dataset, init, **settings) -> dict:
    s = LearnerSettings(batch_size=16, publish_every=2, checkpoint_every=2, log_every=1, **settings)
    return {"learner_dir": str(tmp_path / "learner"), "init": str(init), "offline_dataset": str(dataset),
            "dataplane": DataPlaneConfig.local(tmp_path / "fleet").to_dict(),
            "registry": str(tmp_path / "fleet" / "registry"), "settings": dataclasses.asdict(s)}  # fmt: skip


def test_a_learner_on_device_cpu_trains_publishes_cpu_weights_and_resumes(tmp_path, fake4_dataset, fake4_sft_policy):
    cfg = _learner_config(tmp_path, fake4_dataset, fake4_sft_policy, device="cpu")
    learner = Learner(cfg)
    try:
        assert learner.device == torch.device("cpu")
        learner.publish()  # v1: the starting policy
        for _ in range(2):
            learner.train_step()  # offline rows only (the online buffer is empty): publishes v2 at step 2
    finally:
        learner.finish("stopped")
    reg = PolicyRegistry(tmp_path / "fleet" / "registry")
    assert reg.versions() == [1, 2] and reg.info(2)["learner_step"] == 2
    files = list(reg.fetch(2).glob("*.safetensors"))
    assert files and all(t.device.type == "cpu" for f in files for t in load_file(f).values())
    policy, _, _ = load_policy(materialize_version(reg, 2, tmp_path / "v2"))  # loads on a CPU-only machine
    assert all(t.device.type == "cpu" for t in policy.state_dict().values())
    again = Learner(cfg)  # resumes from its checkpoint (CPU tensors on disk)
    try:
        assert again.step == 2
        again.train_step()
        assert again.step == 3
    finally:
        again.finish("stopped")


def test_a_learner_asked_for_cuda_without_one_fails_before_starting(tmp_path, fake4_dataset, fake4_sft_policy):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="device 'cuda' is not available"):
        Learner(_learner_config(tmp_path, fake4_dataset, fake4_sft_policy, device="cuda"))
    assert not (tmp_path / "learner" / "checkpoints").exists()
    # the local launcher refuses it before any process starts
    cfg = OnlineConfig(suite="fake4", num_robots=1, robot_processes=1,
                       learner=LearnerSettings(device="cuda"))  # fmt: skip
    with pytest.raises(ConfigError, match="device 'cuda' is not available"):
        run_online(cfg, tmp_path / "run", fake4_dataset, fake4_sft_policy, display=False)
    assert not (tmp_path / "run" / "online").exists()
