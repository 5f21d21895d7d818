"""Shared fixtures for policy tests: one torch thread (2 shared cores), small configs."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


SMALL = dict(
    hidden_dim=32, cond_dim=32, expert_width=32, expert_depth=2, conv_channels=(8, 16), text_encoder="hashing"
)


@pytest.fixture
def pixel_config():
    from lwd.policy.flow_policy import FlowPolicyConfig

    return FlowPolicyConfig(
        state_dim=5, action_dim=3, chunk_len=4, cameras=("front", "wrist"), image_size=16, **SMALL
    )


@pytest.fixture
def state_config():
    from lwd.policy.flow_policy import FlowPolicyConfig

    return FlowPolicyConfig(state_dim=7, action_dim=4, chunk_len=6, **SMALL)
