"""Named presets for every command: ``quickstart`` (what `make run` runs), ``debug`` (seconds, the
tiny numpy suite; used by end-to-end tests) and ``benchmark`` (the numbers in the docs).

A preset is a fully built config; command-line flags override its fields.
"""

from __future__ import annotations

from pathlib import Path

from lwd.configs.collect import CollectConfig
from lwd.configs.eval import EvalConfig
from lwd.configs.run import RunConfig
from lwd.configs.train import LoopConfig, PolicyArch, RLConfig, SFTConfig

__all__ = [
    "COLLECT",
    "EVAL",
    "OFFLINE",
    "RUN",
    "SFT",
    "CollectConfig",
    "EvalConfig",
    "RLConfig",
    "RunConfig",
    "SFTConfig",
]

DEBUG_ARCH = PolicyArch(hidden_dim=64, cond_dim=64, expert_width=64, expert_depth=2, text_encoder="hashing")
"""A tiny policy for the fake4 suite: trains in seconds."""

COLLECT: dict[str, CollectConfig] = {
    "quickstart": CollectConfig(out=Path("runs/quickstart/offline_data"), suite="mw8", episodes_per_task=40),
    "debug": CollectConfig(out=Path("runs/debug/offline_data"), suite="fake4", episodes_per_task=20),
    "benchmark": CollectConfig(out=Path("runs/benchmark/offline_data"), suite="mw8", episodes_per_task=200),
}


def _run_dir(preset: str) -> Path:
    return Path("runs") / preset


SFT: dict[str, SFTConfig] = {
    "quickstart": SFTConfig(
        dataset=_run_dir("quickstart") / "offline_data",
        out=_run_dir("quickstart") / "sft",
        loop=LoopConfig(steps=1500, batch_size=256, checkpoint_every=500),
    ),
    "debug": SFTConfig(
        dataset=_run_dir("debug") / "offline_data",
        out=_run_dir("debug") / "sft",
        policy=DEBUG_ARCH,
        loop=LoopConfig(steps=300, batch_size=64, log_every=25, checkpoint_every=100),
        lr=1e-3,
        warmup_steps=20,
    ),
    "benchmark": SFTConfig(
        dataset=_run_dir("benchmark") / "offline_data",
        out=_run_dir("benchmark") / "sft",
        loop=LoopConfig(steps=5000, batch_size=256, checkpoint_every=1000),
    ),
}


OFFLINE: dict[str, RLConfig] = {
    name: RLConfig(
        dataset=_run_dir(name) / "offline_data",
        init=_run_dir(name) / "sft" / "policy",
        out=_run_dir(name) / "offline_lwd",
        loop=loop,
    )
    for name, loop in (
        ("quickstart", LoopConfig(steps=600, batch_size=256, checkpoint_every=200)),
        ("debug", LoopConfig(steps=100, batch_size=64, log_every=25, checkpoint_every=50)),
        ("benchmark", LoopConfig(steps=3000, batch_size=256, checkpoint_every=500)),
    )
}

EVAL: dict[str, EvalConfig] = {
    "quickstart": EvalConfig(
        checkpoint=_run_dir("quickstart") / "sft" / "policy",
        out=_run_dir("quickstart") / "eval",
        episodes_per_task=10,
    ),
    "debug": EvalConfig(
        checkpoint=_run_dir("debug") / "sft" / "policy",
        suite="fake4",
        out=_run_dir("debug") / "eval",
        episodes_per_task=10,
    ),
    "benchmark": EvalConfig(
        checkpoint=_run_dir("benchmark") / "sft" / "policy",
        out=_run_dir("benchmark") / "eval",
        episodes_per_task=50,
        seeds=(0, 1),
    ),
}


RUN: dict[str, RunConfig] = {
    name: RunConfig(
        run_dir=_run_dir(name),
        suite=COLLECT[name].suite,
        collect=COLLECT[name],
        sft=SFT[name],
        offline=OFFLINE[name],
        eval=EVAL[name],
    )
    for name in ("quickstart", "debug", "benchmark")
}
