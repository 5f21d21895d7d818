"""The take-over contrast of the critic (divl.contrast_loss) and its wiring through LWD."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lwd.algorithms.divl import DIVLConfig, DIVLLearner, contrast_loss
from lwd.algorithms.lwd import LWDAlgorithm, LWDConfig, critic_config_for
from lwd.algorithms.qam import QAMConfig
from lwd.critic.networks import build_chunk_critic, build_value_distribution
from lwd.data.replay import ReplayBuffer
from lwd.policy.flow_policy import FlowPolicy, FlowPolicyConfig
from lwd.policy.language import HashingTextEncoder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from lwd_data_factories import ACTION_DIM, STATE_DIM, make_episode  # noqa: E402


class _MeanCritic(nn.Module):
    """Q_e(s, a) = scale_e * mean(a): two heads, analytic."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([1.0, 0.5]))

    def forward(self, obs, actions, mask=None):
        return self.scale[:, None] * actions.mean(dim=(1, 2))[None, :]


def test_contrast_loss_matches_the_hinge_and_only_trains_the_critic():
    critic, target = _MeanCritic(), _MeanCritic()
    human = torch.full((3, 2, 1), 0.4)  # target Q: min(0.4, 0.2) = 0.2
    rejected = torch.tensor([0.1, 0.3, 0.6]).reshape(3, 1, 1).expand(3, 2, 1)
    loss, m = contrast_loss(critic, target, {}, human, torch.ones(3, 2, dtype=torch.bool), rejected, margin=0.05)
    # head scales 1 and 0.5: Q_p = [0.1, 0.3, 0.6] and [0.05, 0.15, 0.3]; bound 0.15
    want = np.mean(np.maximum(0, np.array([0.1, 0.3, 0.6]) - 0.15) ** 2)
    want += np.mean(np.maximum(0, np.array([0.05, 0.15, 0.3]) - 0.15) ** 2)
    assert float(loss.detach()) == pytest.approx(want, rel=1e-6)
    loss.backward()
    assert critic.scale.grad is not None and target.scale.grad is None
    # contrast_acc: P[min_e Q(s, a_h) > min_e Q(s, a_p)] = min(0.4, 0.2)=0.2 vs [0.05, 0.15, 0.3]
    assert m["critic/contrast_acc"] == pytest.approx(2 / 3)
    ok, _ = contrast_loss(critic, target, {}, human, torch.ones(3, 2, dtype=torch.bool), rejected * 0 - 1, 0.05)
    assert float(ok.detach()) == 0.0  # every rejected proposal already ranks below: nothing to push


H = 4


def _episode():
    human = np.zeros(16, bool)
    human[[3, 4, 5, 10, 11]] = True
    ep = make_episode("online", length=16, source="online", intervention=human)
    ep.rejected_steps = np.array([3, 10], np.int64)
    ep.rejected_actions = np.full((2, H, ACTION_DIM), 0.9, np.float32)  # far from the human's actions
    ep.validate()
    return ep


def _lwd(weight: float) -> LWDAlgorithm:
    torch.manual_seed(0)
    policy = FlowPolicy(FlowPolicyConfig(state_dim=STATE_DIM, action_dim=ACTION_DIM, chunk_len=H, hidden_dim=32,
                                         cond_dim=32, expert_width=32, expert_depth=2, flow_steps=4,
                                         text_encoder="hashing"))  # fmt: skip
    ccfg = critic_config_for(policy.config, hidden=32)
    learner = DIVLLearner(build_chunk_critic(ccfg), build_value_distribution(ccfg), DIVLConfig(lr=3e-3))
    cfg = LWDConfig(qam=QAMConfig(flow_steps=4), contrast_weight=weight, contrast_margin=0.1, policy_every=1000)
    return LWDAlgorithm(policy, learner, HashingTextEncoder(), None, cfg)


def test_lwd_learns_to_rank_the_humans_chunk_above_the_rejected_one():
    buf = ReplayBuffer()
    buf.add_episode(_episode(), online=True)
    rng = np.random.default_rng(0)
    paper, ours = _lwd(0.0), _lwd(1.0)
    assert not paper.needs.contrast and ours.needs.contrast
    for _ in range(60):
        rl = buf.sample(32, rng, H, 0.99)
        contrast = buf.sample_rejections(32, rng, H, 0.99)
        m_paper = paper.update(rl, None, contrast)
        m = ours.update(rl, None, contrast)
    assert "critic/contrast_loss" not in m_paper  # weight 0: the paper's critic, contrast ignored
    assert m["critic/contrast_acc"] == 1.0 and m["critic/contrast_gap"] > 0.05
    assert ours.learner.contrast_weight == 1.0


def test_contrast_settings_are_validated():
    with pytest.raises(ValueError, match="contrast_weight"):
        LWDConfig(contrast_weight=-1.0)
