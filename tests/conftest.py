"""Session fixtures shared across test packages: a tiny fake4 offline dataset and SFT policy."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

if importlib.util.find_spec("ogbench") is not None:
    # OGBench's scene imports dm_control, whose EGL backend registers an atexit teardown of the display.
    # Imported here, before any Meta-World renderer exists, that teardown runs after the renderers' own
    # atexit close (atexit runs last-registered first), instead of before it (EGL_NOT_INITIALIZED noise).
    from lwd.envs.mw_render import ensure_gl_backend

    ensure_gl_backend()
    import ogbench.manipspace.envs.scene_env  # noqa: F401


@pytest.fixture(scope="session")
def fake4_dataset(tmp_path_factory) -> Path:
    from lwd.configs.collect import CollectConfig
    from lwd.pipeline.collect import collect

    out = tmp_path_factory.mktemp("fake4") / "offline_data"
    collect(CollectConfig(out=out, suite="fake4", episodes_per_task=24), progress=False)
    return out


@pytest.fixture(scope="session")
def fake4_sft_policy(fake4_dataset, tmp_path_factory) -> Path:
    from lwd.configs.presets import DEBUG_ARCH
    from lwd.configs.train import LoopConfig, SFTConfig
    from lwd.pipeline.pretrain import pretrain

    out = tmp_path_factory.mktemp("fake4_sft") / "sft"
    cfg = SFTConfig(
        dataset=fake4_dataset,
        out=out,
        policy=DEBUG_ARCH,
        loop=LoopConfig(steps=150, batch_size=64, log_every=50, checkpoint_every=50, threads=1),
        lr=1e-3,
        warmup_steps=10,
    )
    return pretrain(cfg, progress=False)
