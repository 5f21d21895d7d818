"""Stages resume after Ctrl-C (in process) or SIGKILL (a real `lwd pretrain` process)."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from lwd.configs.presets import DEBUG_ARCH
from lwd.configs.train import LoopConfig, RLConfig, SFTConfig
from lwd.pipeline import pretrain as pretrain_mod
from lwd.pipeline import train_offline as offline_mod
from lwd.policy.checkpoint import load_policy


def sft_cfg(dataset, out, steps=40):
    return SFTConfig(
        dataset=dataset, out=out, policy=DEBUG_ARCH, lr=1e-3, warmup_steps=5,
        loop=LoopConfig(steps=steps, batch_size=16, log_every=5, checkpoint_every=10),
    )  # fmt: skip


def weights(path):
    policy, _, _ = load_policy(path)
    return policy.state_dict()


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def interrupt_after(monkeypatch, module, name, n):
    """Send ourselves a real SIGINT (Ctrl-C) during call number ``n`` of ``module.name``."""
    real = getattr(module, name)
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)


def test_sft_resume_after_ctrl_c_matches_uninterrupted(fake4_dataset, tmp_path, monkeypatch):
    straight = pretrain_mod.pretrain(sft_cfg(fake4_dataset, tmp_path / "a"), progress=False)
    interrupt_after(monkeypatch, pretrain_mod, "sft_step", 23)
    with pytest.raises(KeyboardInterrupt):
        pretrain_mod.pretrain(sft_cfg(fake4_dataset, tmp_path / "b"), progress=False)
    assert (tmp_path / "b" / "checkpoints" / "step-0000023").is_dir()  # the step in flight completed
    monkeypatch.undo()
    resumed = pretrain_mod.pretrain(sft_cfg(fake4_dataset, tmp_path / "b"), progress=False)
    assert_same(weights(straight), weights(resumed))


def test_offline_resume_after_ctrl_c_matches_uninterrupted(
    fake4_dataset, fake4_sft_policy, tmp_path, monkeypatch
):
    def cfg(out):
        return RLConfig(
            dataset=fake4_dataset, init=fake4_sft_policy, out=out, lam=0.1, policy_lr=1e-4,
            loop=LoopConfig(steps=12, batch_size=16, log_every=4, checkpoint_every=4),
        )  # fmt: skip

    straight = offline_mod.train_offline(cfg(tmp_path / "a"), progress=False)
    interrupt_after(monkeypatch, offline_mod.LWDAlgorithm, "update", 7)
    with pytest.raises(KeyboardInterrupt):
        offline_mod.train_offline(cfg(tmp_path / "b"), progress=False)
    monkeypatch.undo()
    resumed = offline_mod.train_offline(cfg(tmp_path / "b"), progress=False)
    assert_same(weights(straight), weights(resumed))
    m = load_policy(resumed)[2]
    assert m["version"] == 1 and m["parent_version"] == 0 and m["extra"]["algorithm"] == "lwd"


def test_sft_resumes_after_sigkill(fake4_dataset, tmp_path):
    out = tmp_path / "sft"
    cmd = [
        sys.executable, "-m", "lwd.cli.main", "pretrain", "--preset", "debug", "--dataset", str(fake4_dataset),
        "--out", str(out), "--loop.steps", "400", "--loop.checkpoint-every", "20", "--loop.batch-size", "16",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "checkpoints" / "latest.json").exists():
        time.sleep(0.2)
    assert (out / "checkpoints" / "latest.json").exists(), "no checkpoint before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "policy").exists()
    killed_at = max(int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("step-*"))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    steps = [
        int(line.split('"step": ')[1].split(",")[0])
        for line in (out / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps[-1] == 400
    resumed_logs = [s for s in steps if s > killed_at]
    assert resumed_logs == sorted(resumed_logs)
    assert load_policy(out / "policy")[2]["version"] == 0
