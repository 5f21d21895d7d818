"""One meaning of "intervention step" (the human's action was executed at that step) from the replay
buffer to every imitation loss: HG-DAgger, RECAP and LWD's BC-trained reference.

Each test here fails on the code before this meaning was fixed: HG-DAgger kept chunks with a human
step *anywhere* (so it imitated the policy's own, deviating actions) and filtered an unfiltered 1:1
batch (so about 40% of its rows were trained on).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lwd.algorithms.base import Algorithm
from lwd.algorithms.divl import DIVLConfig, DIVLUpdater
from lwd.algorithms.hg_dagger import HGDAggerAlgorithm, HGDAggerConfig
from lwd.algorithms.lwd import LWDAlgorithm, LWDConfig, critic_config_for
from lwd.algorithms.qam import QAMConfig
from lwd.algorithms.recap import RECAPAlgorithm
from lwd.data.filters import DEMOS_AND_INTERVENTIONS, DEMOS_INTERVENTIONS_AND_SUCCESSES, supervised_mask
from lwd.data.mixer import ReplayMixer
from lwd.data.replay import ReplayBuffer
from lwd.policy.flow_policy import FlowPolicy, FlowPolicyConfig
from lwd.policy.language import HashingTextEncoder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from lwd_data_factories import ACTION_DIM, STATE_DIM, make_episode  # noqa: E402

H = 4
# policy steps 0-4, the human takes over for steps 5-9, policy again 10-13
HUMAN = np.zeros(14, bool)
HUMAN[5:10] = True


def _buffers() -> tuple[ReplayBuffer, ReplayBuffer]:
    offline, online = ReplayBuffer(), ReplayBuffer()
    offline.add_episode(make_episode("demo-0", length=10, source="demo", intervention=np.zeros(10, bool)))
    offline.add_episode(make_episode("play-0", length=10, source="play", intervention=np.zeros(10, bool)))
    online.add_episode(make_episode("online-0", length=14, source="online", intervention=HUMAN), online=True)
    return offline, online


def test_batch_intervention_means_the_human_acted_at_the_start_step():
    _, online = _buffers()
    batch = online.transitions(np.arange(14), H, 0.99)
    np.testing.assert_array_equal(batch.intervention, HUMAN)  # not "any step of the chunk"
    # chunk starting at 3 = [policy, policy, human, human]: not an intervention transition
    assert not batch.intervention[3] and batch.expert_mask[3].tolist() == [False, False, True, True]
    # chunk starting at 8 = [human, human, policy, policy]
    assert batch.intervention[8] and batch.expert_mask[8].tolist() == [True, True, False, False]
    # past the episode end nothing is expert (action_mask is False there)
    assert batch.expert_mask[13].tolist() == [False, False, False, False]


def test_imitation_filter_and_mask_supervise_only_human_or_demo_steps():
    offline, online = _buffers()
    assert online.num_transitions(DEMOS_AND_INTERVENTIONS) == {"push": 5}  # starts 5..9 only
    assert offline.count(DEMOS_AND_INTERVENTIONS) == 10  # the demo, not the play episode
    rng = np.random.default_rng(0)
    batch = online.sample(256, rng, H, 0.99, filt=DEMOS_AND_INTERVENTIONS)
    steps = supervised_mask(batch, DEMOS_AND_INTERVENTIONS)
    assert batch.intervention.all() and steps[:, 0].all()
    assert not (steps & ~batch.expert_mask).any()  # never the policy's own steps
    demo = offline.sample(64, rng, H, 0.99, filt=DEMOS_AND_INTERVENTIONS)
    np.testing.assert_array_equal(supervised_mask(demo, DEMOS_AND_INTERVENTIONS), demo.action_mask)


def test_mixed_imitation_batch_is_all_eligible_and_falls_back_without_interventions():
    offline, online = _buffers()
    mixer = ReplayMixer(offline, online, 0.5, min_online_transitions=1)
    rng = np.random.default_rng(1)
    batch = mixer.sample(128, rng, H, 0.99, None, DEMOS_AND_INTERVENTIONS, DEMOS_AND_INTERVENTIONS)
    assert supervised_mask(batch, DEMOS_AND_INTERVENTIONS)[:, 0].all()  # every row trains
    assert batch.is_online.sum() == 64
    no_human = ReplayBuffer()
    no_human.add_episode(make_episode("o", length=14, source="online", intervention=np.zeros(14, bool)), online=True)
    fallback = ReplayMixer(offline, no_human, 0.5, 1).sample(32, rng, H, 0.99, None, DEMOS_AND_INTERVENTIONS,
                                                             DEMOS_AND_INTERVENTIONS)  # fmt: skip
    assert not fallback.is_online.any() and fallback.size == 32


def test_autonomous_successes_are_whole_online_episodes_the_policy_solved_alone():
    offline, online = _buffers()  # online-0 succeeded, but the human acted in it
    alone = make_episode("online-1", length=8, source="online", intervention=np.zeros(8, bool))
    failed = make_episode("online-2", length=6, source="online", success=False, intervention=np.zeros(6, bool))
    online.add_episodes([alone, failed], online=True)
    offline.add_episode(make_episode("rollout-0", length=7, source="rollout", intervention=np.zeros(7, bool)))
    filt = DEMOS_INTERVENTIONS_AND_SUCCESSES
    assert online.count(DEMOS_AND_INTERVENTIONS) == 5 and online.count(filt) == 5 + 8  # + online-1 only
    assert offline.count(filt) == 10  # an offline rollout that succeeded is not a field success
    batch = online.transitions(np.arange(14 + 8 + 6), H, 0.99)
    np.testing.assert_array_equal(batch.autonomous_success, (np.arange(28) >= 14) & (np.arange(28) < 22))
    steps = supervised_mask(batch, filt)
    np.testing.assert_array_equal(steps[14:22], batch.action_mask[14:22])  # the policy's own steps
    assert not (steps[:14] & ~batch.expert_mask[:14]).any() and not steps[22:].any()
    np.testing.assert_array_equal(supervised_mask(batch, DEMOS_AND_INTERVENTIONS)[14:22], False)
    mixed = ReplayMixer(offline, online, 0.5, min_online_transitions=1).sample(64, np.random.default_rng(2), H,
                                                                               0.99, None, filt, filt)  # fmt: skip
    assert mixed.autonomous_success is not None and supervised_mask(mixed, filt)[:, 0].all()
    with pytest.raises(ValueError, match="autonomous_success"):
        supervised_mask(dataclasses.replace(batch, autonomous_success=None), filt)


def _policy(seed: int = 0) -> FlowPolicy:
    torch.manual_seed(seed)
    cfg = FlowPolicyConfig(state_dim=STATE_DIM, action_dim=ACTION_DIM, chunk_len=H, hidden_dim=32, cond_dim=32,
                           expert_width=32, expert_depth=2, flow_steps=4, text_encoder="hashing")  # fmt: skip
    return FlowPolicy(cfg)


def test_hg_dagger_asks_for_imitation_rows_and_supervises_only_the_humans_steps(monkeypatch):
    import lwd.algorithms.bc as bc

    _, online = _buffers()
    algo = HGDAggerAlgorithm(_policy(), HashingTextEncoder(), cfg=HGDAggerConfig(lr=1e-3))
    assert isinstance(algo, Algorithm) and algo.needs.imitation == DEMOS_AND_INTERVENTIONS and not algo.needs.rl
    seen = []

    original = bc.flow_matching_loss

    def spy(policy, obs, actions, mask, **kw):
        seen.append(mask.clone())
        return original(policy, obs, actions, mask, **kw)

    monkeypatch.setattr(bc, "flow_matching_loss", spy)
    batch = online.transitions(np.arange(5, 10), H, 0.99)  # human-start chunks, some end on policy steps
    before = algo.policy_weights()
    m = algo.update(None, batch)
    np.testing.assert_array_equal(seen[0].numpy(), batch.expert_mask)  # the loss never sees step 10+
    assert m["policy/bc_loss"] > 0 and any(not torch.equal(v, algo.policy_weights()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="imitation batch"):
        algo.update(batch, None)
    plain = HGDAggerAlgorithm(_policy(), HashingTextEncoder(), cfg=HGDAggerConfig(select_all=True))
    assert plain.needs.rl and plain.needs.imitation is None
    plain.update(batch)
    np.testing.assert_array_equal(seen[1].numpy(), batch.action_mask)


def _divl(policy: FlowPolicy) -> DIVLUpdater:
    ccfg = critic_config_for(policy.config, hidden=32)
    return DIVLUpdater.build(ccfg, DIVLConfig())


def test_recap_counts_human_corrections_as_improving():
    _, online = _buffers()
    policy = _policy()
    algo = RECAPAlgorithm(policy, _divl(policy), HashingTextEncoder())
    human = online.transitions(np.arange(5, 10), H, 0.99)
    assert algo.update(human)["policy/improving_frac"] == 1.0


def _lwd(reference: str, **kw) -> LWDAlgorithm:
    policy = _policy()
    cfg = LWDConfig(qam=QAMConfig(flow_steps=4), policy_lr=1e-3, reference=reference, reference_lr=1e-2,
                    reference_ema=0.5, **kw)  # fmt: skip
    return LWDAlgorithm(policy, _divl(policy), HashingTextEncoder(), None, cfg)


def test_bc_reference_moves_towards_the_imitation_data_and_frozen_does_not():
    offline, online = _buffers()
    rl = online.transitions(np.arange(14), H, 0.99)
    imitation = online.transitions(np.arange(5, 10), H, 0.99)
    frozen, bc = _lwd("frozen"), _lwd("bc")
    assert frozen.needs.imitation is None and bc.needs.imitation == DEMOS_AND_INTERVENTIONS
    before = {k: v.clone() for k, v in bc.reference.state_dict().items()}
    frozen_before = {k: v.clone() for k, v in frozen.reference.state_dict().items()}
    losses = []
    for _ in range(30):
        frozen.update(rl)
        losses.append(bc.update(rl, imitation)["reference/bc_loss"])
    assert all(torch.equal(v, frozen.reference.state_dict()[k]) for k, v in frozen_before.items())
    assert any(not torch.equal(v, bc.reference.state_dict()[k]) for k, v in before.items())
    assert np.mean(losses[-5:]) < np.mean(losses[:5])  # it fits the human's chunks
    with pytest.raises(ValueError, match="imitation batch"):
        bc.update(rl)
    # a frozen-reference stage (offline) feeds a bc online learner: the copy starts at its pi_ref
    resumed = _lwd("bc")
    resumed.load_state_dict(frozen.state_dict())
    for k, v in frozen.reference.state_dict().items():
        assert torch.equal(resumed.reference_trainee.state_dict()[k], v)
    again = _lwd("bc")
    again.load_state_dict(bc.state_dict())
    for k, v in bc.reference_trainee.state_dict().items():
        assert torch.equal(again.reference_trainee.state_dict()[k], v)


def _backbone(algo: LWDAlgorithm, which: str) -> dict[str, torch.Tensor]:
    expert = {id(p) for p in getattr(algo, which).action_expert_parameters()}
    return {n: p.detach().clone() for n, p in getattr(algo, which).named_parameters() if id(p) not in expert}


def test_a_tracking_policy_follows_the_reference_and_keeps_its_qam_tilt():
    _, online = _buffers()
    rl = online.transitions(np.arange(14), H, 0.99)
    imitation = online.transitions(np.arange(5, 10), H, 0.99)
    plain, tracking = _lwd("bc", policy_every=1000), _lwd("bc", policy_every=1000, track_reference=True)
    for algo in (plain, tracking):  # one QAM step (step 0) tilts the policy away from pi_ref
        algo.update(rl, imitation)
    gap = {k: p - tracking.reference.state_dict()[k] for k, p in tracking.policy.state_dict().items()}
    assert any(bool(g.abs().max() > 0) for g in gap.values())
    plain_backbone = _backbone(plain, "policy")
    for _ in range(5):  # reference steps only (QAM is not due again)
        plain.update(rl, imitation)
        tracking.update(rl, imitation)
    ref, pol = tracking.reference.state_dict(), tracking.policy.state_dict()
    for k, g in gap.items():  # the tilt rides on the moved reference
        torch.testing.assert_close(pol[k] - ref[k], g, atol=1e-5, rtol=0)
    moved = _backbone(tracking, "policy")
    start = _backbone(_lwd("bc"), "policy")
    assert any(not torch.equal(moved[k], start[k]) for k in moved)  # the acting backbone learned
    assert all(torch.equal(plain_backbone[k], v) for k, v in _backbone(plain, "policy").items())
    with pytest.raises(ValueError, match="track_reference"):
        LWDConfig(track_reference=True)


def test_reference_successes_widen_the_references_imitation_data():
    _, online = _buffers()
    online.add_episode(make_episode("online-1", length=8, source="online", intervention=np.zeros(8, bool)), online=True)
    algo = _lwd("bc", reference_successes=True)
    assert algo.needs.imitation == DEMOS_INTERVENTIONS_AND_SUCCESSES
    rl = online.transitions(np.arange(22), H, 0.99)
    only_policy_steps = online.transitions(np.arange(14, 18), H, 0.99)  # online-1: no human step
    out = algo.update(rl, only_policy_steps)
    assert out["reference/supervised_step_frac"] == 1.0 and "reference/grad_norm" in out
    assert "reference/grad_norm" not in _lwd("bc").update(rl, only_policy_steps)  # nothing to imitate
    with pytest.raises(ValueError, match="reference_successes"):
        LWDConfig(reference_successes=True)


def test_reference_steps_take_one_bc_step_per_share_of_the_imitation_batch():
    _, online = _buffers()
    rl = online.transitions(np.arange(14), H, 0.99)
    imitation = online.transitions(np.resize(np.arange(5, 10), 12), H, 0.99)  # human steps; 3 shares of 4
    one, three = _lwd("bc"), _lwd("bc", reference_steps=3)
    assert one.needs.imitation_batches == 1 and three.needs.imitation_batches == 3
    part = imitation.rows(slice(4, 8))
    assert part.size == 4 and np.array_equal(part.actions, imitation.actions[4:8])
    assert part.instructions == imitation.instructions
    one.update(rl, imitation)
    three.update(rl, imitation)

    def adam_steps(algo):
        return {int(v["step"]) for v in algo.reference_opt.state_dict()["state"].values()}

    assert adam_steps(one) == {1} and adam_steps(three) == {3}
    with pytest.raises(ValueError, match="reference_steps"):
        _lwd("bc", reference_steps=20).update(rl, imitation)  # fewer rows than steps


def test_reference_settings_are_validated():
    for kw, match in (({"reference": "ema"}, "reference"), ({"reference_ema": 0.0}, "reference_ema"),
                      ({"reference_lr": -1.0}, "reference_lr"), ({"reference_steps": 0}, "reference_steps")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            LWDConfig(**kw)
