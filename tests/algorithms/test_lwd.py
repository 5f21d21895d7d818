"""LWDAlgorithm, IQL+QAM, HG-DAgger and RECAP driven through the Algorithm protocol on a FlowPolicy."""

import numpy as np
import torch

from lwd.algorithms.base import Algorithm
from lwd.algorithms.divl import DIVLConfig, DIVLUpdater
from lwd.algorithms.iql import IQLUpdater
from lwd.algorithms.lwd import LWDAlgorithm, LWDConfig, build_lwd_algorithm, critic_config_for
from lwd.algorithms.qam import QAMConfig
from lwd.algorithms.recap import (
    IMPROVING,
    IndicatorConditionedPolicy,
    RECAPAlgorithm,
    fold_indicator,
)
from lwd.critic.networks import build_chunk_critic, build_scalar_value
from lwd.data.batch import TransitionBatch
from lwd.policy.flow_policy import FlowPolicy, FlowPolicyConfig
from lwd.policy.language import HashingTextEncoder

D, A, H = 5, 2, 4


def _policy(seed=0):
    torch.manual_seed(seed)
    cfg = FlowPolicyConfig(
        state_dim=D,
        action_dim=A,
        chunk_len=H,
        hidden_dim=32,
        cond_dim=32,
        expert_width=32,
        expert_depth=2,
        flow_steps=4,
        text_encoder="hashing",
    )
    return FlowPolicy(cfg)


def _batch(b=16, seed=0):
    rng = np.random.default_rng(seed)
    return TransitionBatch(
        state=rng.normal(size=(b, D)).astype(np.float32),
        instruction_id=rng.integers(0, 2, b),
        actions=rng.uniform(-1, 1, (b, H, A)).astype(np.float32),
        action_mask=np.ones((b, H), dtype=bool),
        reward=rng.uniform(0, 1, b).astype(np.float32),
        discount=np.where(rng.uniform(size=b) < 0.5, 0.99, 0.0).astype(np.float32),
        next_state=rng.normal(size=(b, D)).astype(np.float32),
        intervention=rng.uniform(size=b) < 0.25,
        expert_mask=np.ones((b, H), dtype=bool),
        source_id=rng.integers(0, 4, b),
        task_index=np.zeros(b, dtype=np.int64),
        is_online=np.zeros(b, dtype=bool),
        instructions=("pick the cube", "open the drawer"),
        task_ids=("t",),
    )


def _lwd(value="divl", **kw):
    policy = _policy()
    ccfg = critic_config_for(policy.config, hidden=32)
    if value == "divl":
        learner = DIVLUpdater.build(ccfg, DIVLConfig())
    else:
        learner = IQLUpdater(build_chunk_critic(ccfg), build_scalar_value(ccfg))
    cfg = LWDConfig(qam=QAMConfig(flow_steps=4), policy_lr=1e-3, **kw)
    return LWDAlgorithm(policy, learner, HashingTextEncoder(), None, cfg)


def test_lwd_update_protocol_and_reference_frozen():
    algo = _lwd()
    assert isinstance(algo, Algorithm)
    ref_before = {k: v.clone() for k, v in algo.reference.state_dict().items()}
    pol_before = algo.policy_weights()
    for i in range(3):
        m = algo.update(_batch(seed=i))
    for key in (
        "value/ce_loss",
        "value/entropy",
        "value/tau",
        "critic/td_loss",
        "critic/q_mean",
        "policy/adjoint_loss",
        "policy/drift",
        "policy/adjoint_norm",
    ):
        assert key in m and np.isfinite(m[key]), key
    after = algo.policy_weights()
    assert all(torch.equal(v, algo.reference.state_dict()[k]) for k, v in ref_before.items())
    changed = [k for k in after if not torch.equal(after[k], pol_before[k])]
    assert changed and all(k.startswith("action_expert.") for k in changed)  # backbone frozen by default
    # state round trip
    state = algo.state_dict()
    other = _lwd()
    other.load_state_dict(state)
    assert all(torch.equal(v, other.policy_weights()[k]) for k, v in after.items())
    assert other.step == algo.step == 3


def _changed(before: dict, after: dict) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before)


def test_policy_every_runs_qam_on_every_kth_step_only_after_the_delay():
    """policy_every=3, policy_delay_steps=2: QAM on steps 2, 5; value and critic on every step."""
    algo = _lwd(policy_every=3, policy_delay_steps=2)
    assert [algo.policy_due(s) for s in range(7)] == [False, False, True, False, False, True, False]
    for i in range(6):
        pol = algo.policy_weights()
        critic = {k: v.clone() for k, v in algo.value_critic.critic.state_dict().items()}
        m = algo.update(_batch(seed=i))
        assert _changed(critic, algo.value_critic.critic.state_dict()), f"critic not updated at step {i}"
        assert _changed(pol, algo.policy_weights()) == (i in (2, 5)), f"step {i}"
        assert ("policy/adjoint_loss" in m) == (i in (2, 5))


def test_policy_every_rejects_bad_values():
    import pytest

    with pytest.raises(ValueError, match="policy_every"):
        LWDConfig(policy_every=0)
    with pytest.raises(ValueError, match="policy_delay_steps"):
        LWDConfig(policy_delay_steps=-1)


def test_iql_qam_variant_runs():
    algo = build_lwd_algorithm(
        _policy(),
        HashingTextEncoder(),
        cfg=LWDConfig(qam=QAMConfig(flow_steps=4)),
        value="iql",
        critic_hidden=32,
    )
    assert isinstance(algo.value_critic, IQLUpdater)
    m = algo.update(_batch())
    assert "value/expectile_loss" in m and "policy/adjoint_loss" in m


def test_recap_fold_indicator_matches_wrapper():
    wrapper = IndicatorConditionedPolicy(_policy())
    torch.nn.init.normal_(wrapper.indicator_embed.weight)
    plain = fold_indicator(wrapper, IMPROVING)
    enc = HashingTextEncoder()
    obs = {
        "state": torch.randn(6, D),
        "images": {},
        "instruction_emb": torch.from_numpy(enc.encode(["pick the cube"] * 6)),
    }
    x, w = torch.randn(6, H, A), torch.rand(6)
    with torch.no_grad():
        v_wrap = wrapper.velocity(wrapper.encode(obs), x, w)  # no indicator key -> I = 1
        v_plain = plain.velocity(plain.encode(obs), x, w)
        v_off = wrapper.velocity(wrapper.encode(dict(obs, indicator=torch.zeros(6, dtype=torch.long))), x, w)
    assert torch.allclose(v_wrap, v_plain, atol=1e-5)
    assert not torch.allclose(v_wrap, v_off, atol=1e-3)


def test_recap_update():
    policy = _policy()
    ccfg = critic_config_for(policy.config, hidden=32)
    learner = DIVLUpdater.build(ccfg)
    algo = RECAPAlgorithm(policy, learner, HashingTextEncoder())
    assert isinstance(algo, Algorithm)
    m = algo.update(_batch())
    assert 0.0 <= m["policy/improving_frac"] <= 1.0 and "critic/td_loss" in m and m["policy/bc_loss"] > 0
    w = algo.policy_weights()
    assert set(w) == set(policy.state_dict())


def test_lwd_state_roundtrip_through_state_io_resumes_identically():
    from lwd.utils.state_io import state_from_bytes, state_to_bytes

    algo = _lwd()
    algo.update(_batch(seed=0))
    restored = _lwd()
    restored.load_state_dict(state_from_bytes(state_to_bytes(algo.state_dict())))
    m1, m2 = algo.update(_batch(seed=1)), restored.update(_batch(seed=1))
    for k in ("critic/td_loss", "value/ce_loss", "policy/adjoint_loss"):
        assert m1[k] == m2[k], k
    w1, w2 = algo.policy_weights(), restored.policy_weights()
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
