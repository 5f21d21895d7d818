"""The same-state contrasts of the critic (divl.contrast_loss): the take-over contrast and the reference
contrast, and their wiring through LWD."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lwd.algorithms.divl import DIVLConfig, DIVLUpdater, contrast_loss
from lwd.algorithms.lwd import LWDAlgorithm, LWDConfig, critic_config_for
from lwd.algorithms.qam import QAMConfig
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


def _lwd(weight: float, **cfg_kw) -> LWDAlgorithm:
    torch.manual_seed(0)
    policy = FlowPolicy(FlowPolicyConfig(state_dim=STATE_DIM, action_dim=ACTION_DIM, chunk_len=H, hidden_dim=32,
                                         cond_dim=32, expert_width=32, expert_depth=2, flow_steps=4,
                                         text_encoder="hashing"))  # fmt: skip
    ccfg = critic_config_for(policy.config, hidden=32)
    learner = DIVLUpdater.build(ccfg, DIVLConfig(lr=3e-3))
    cfg = LWDConfig(qam=QAMConfig(flow_steps=4), contrast_weight=weight, contrast_margin=0.1, policy_every=1000,
                    **cfg_kw)
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
    # the weight reaches the critic's loss through the take-over pair (the learner holds no weight of its own)
    assert [(p.name, p.weight) for p in ours.critic_contrasts(None, contrast)] == [("contrast", 1.0)]


def test_contrast_loss_takes_one_margin_per_row():
    critic, target = _MeanCritic(), _MeanCritic()
    human = torch.full((3, 2, 1), 0.4)  # target Q: 0.2
    rejected = torch.tensor([0.1, 0.3, 0.6]).reshape(3, 1, 1).expand(3, 2, 1)
    margin = torch.tensor([0.0, 0.1, 0.2])
    loss, m = contrast_loss(critic, target, {}, human, torch.ones(3, 2, dtype=torch.bool), rejected, margin,
                            name="ref_contrast")  # fmt: skip
    bound = 0.2 - margin.numpy()
    want = np.mean(np.maximum(0, np.array([0.1, 0.3, 0.6]) - bound) ** 2)
    want += np.mean(np.maximum(0, np.array([0.05, 0.15, 0.3]) - bound) ** 2)
    assert float(loss.detach()) == pytest.approx(want, rel=1e-6)
    assert set(m) == {"critic/ref_contrast_loss", "critic/ref_contrast_acc", "critic/ref_contrast_gap"}


def _demo_buffer() -> ReplayBuffer:
    buf = ReplayBuffer()
    for i in range(4):
        buf.add_episode(make_episode(f"demo{i}", length=16, source="demo"), online=False)
    return buf


def test_reference_contrast_margin_is_slope_times_rms_distance():
    algo = _lwd(0.0, reference_contrast_weight=1.0, reference_contrast_slope=0.5)
    imitation = _demo_buffer().sample(8, np.random.default_rng(0), H, 0.99)
    fixed = torch.full((8, H, ACTION_DIM), 0.25)
    algo.reference.sample = lambda cond, **kw: fixed.clone()  # a known pi_ref sample
    pair = algo.reference_contrast(imitation)
    assert pair.name == "ref_contrast" and pair.weight == 1.0 and torch.equal(pair.worse, fixed)
    a_h, mask = pair.better, pair.better_mask
    for i in range(8):  # by hand: RMS over the valid steps and every action dimension
        d = (a_h[i][mask[i]] - 0.25).numpy()
        assert float(pair.margin[i]) == pytest.approx(0.5 * np.sqrt(np.mean(d**2)), rel=1e-5)
    algo.reference.sample = lambda cond, **kw: a_h.clone()  # pi_ref proposes the human's chunk: no margin
    assert float(algo.reference_contrast(imitation).margin.abs().max()) < 1e-6


def test_reference_contrast_asks_for_demos_and_makes_the_critic_rank_them_above_pi_ref():
    buf = _demo_buffer()
    rng = np.random.default_rng(0)
    paper, ours = _lwd(0.0), _lwd(0.0, reference_contrast_weight=1.0)
    assert paper.needs.imitation is None  # frozen reference, no contrast: the paper's batches only
    assert ours.needs.imitation is not None and ours.needs.imitation_batches == 1
    with pytest.raises(ValueError, match="imitation batch"):
        ours.update(buf.sample(32, rng, H, 0.99), None, None)
    for _ in range(100):
        rl = buf.sample(32, rng, H, 0.99)
        imitation = buf.sample(32, rng, H, 0.99, None, ours.needs.imitation)
        m_paper = paper.update(rl, imitation, None)
        m = ours.update(rl, imitation, None)
    assert not any(k.startswith("critic/ref_contrast") for k in m_paper)
    assert "critic/ref_contrast_acc" in m
    # on fresh demo states: how often each critic ranks the demo chunk above a pi_ref sample (chance 0.5)
    pair = ours.reference_contrast(buf.sample(256, rng, H, 0.99, None, ours.needs.imitation))
    acc = {name: contrast_loss(a.value_critic.critic, a.value_critic.target_critic, pair.obs, pair.better, pair.better_mask,
                               pair.worse, 0.0)[1]["critic/contrast_acc"]
           for name, a in (("paper", paper), ("ours", ours))}  # fmt: skip
    assert acc["ours"] >= 0.7 and acc["ours"] >= acc["paper"] + 0.15, acc


def test_contrast_settings_are_validated():
    with pytest.raises(ValueError, match="contrast_weight"):
        LWDConfig(contrast_weight=-1.0)
    with pytest.raises(ValueError, match="reference_contrast_weight"):
        LWDConfig(reference_contrast_weight=float("nan"))
    with pytest.raises(ValueError, match="reference_contrast_slope"):
        LWDConfig(reference_contrast_slope=-0.1)
