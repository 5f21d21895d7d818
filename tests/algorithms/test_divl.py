"""DIVL (algorithms.md section 3): targets, update order, EMA, and a tiny MDP with known values."""

import copy
import math

import pytest
import torch

from lwd.algorithms.divl import DIVLConfig, DIVLUpdater, td_target
from lwd.algorithms.iql import IQLConfig, IQLUpdater
from lwd.critic.networks import (
    CriticConfig,
    CriticEncoderConfig,
    build_chunk_critic,
    build_scalar_value,
)
from lwd.critic.targets import quantile_readout


def _cfg(state_dim=3, hidden=32):
    enc = CriticEncoderConfig(state_dim=state_dim, instruction_dim=0, hidden=hidden, embed=hidden)
    return CriticConfig(encoder=enc, chunk_len=1, action_dim=1, hidden=hidden)


def _learner(divl_cfg=None, seed=0, total_steps=0):
    torch.manual_seed(seed)
    c = _cfg()
    return DIVLUpdater.build(c, divl_cfg or DIVLConfig(), total_steps)


def _onehot(idx, n=3):
    return torch.nn.functional.one_hot(torch.as_tensor(idx), n).float()


def test_value_atoms_have_one_source():
    """The atoms are DIVLConfig's; a value network built with other atoms is refused, not mis-shaped."""
    from lwd.critic.networks import build_value_distribution

    learner = _learner(DIVLConfig(num_atoms=51, v_min=0.0, v_max=1.0))
    assert learner.value_net.atoms.shape == (51,) and float(learner.value_net.atoms[-1]) == 1.0
    assert torch.equal(learner.value_net.atoms, learner.atoms)
    c = _cfg()
    with pytest.raises(ValueError, match="201 atoms on .* differ from DIVLConfig's 51"):
        DIVLUpdater(build_chunk_critic(c), build_value_distribution(c, 201, -0.1, 1.1), DIVLConfig(num_atoms=51))


def test_target_one_step_and_zero_discount():
    r = torch.tensor([0.0, 1.0, 0.3])
    v = torch.tensor([0.5, 0.7, 0.9])
    gamma_h = 0.9999**8
    # n = 1: y = rbar_t + gamma^H V(s'); the data layer folds gamma^{nH}(1 - done) into discount
    assert torch.allclose(td_target(r, torch.full((3,), gamma_h), v), r + gamma_h * v)
    # discount 0 (episode ended inside the window) drops the bootstrap
    assert torch.equal(td_target(r, torch.zeros(3), v), r)


def test_learner_target_matches_loop_reference():
    cfg = DIVLConfig(tau_base=0.9, alpha=0.3)
    lr = _learner(cfg)
    torch.nn.init.normal_(lr.value_net.head[-1].weight, std=0.5)  # a non-trivial distribution
    b, gamma, horizon = 8, 0.9999, 8
    nxt = {"state": torch.randn(b, 3)}
    rbar = torch.rand(b)
    done = torch.tensor([0, 1] * 4, dtype=torch.bool)
    discount = torch.where(done, 0.0, gamma**horizon)  # n = 1 window, as the data layer builds it
    y, m = lr.compute_target(nxt, rbar, discount)
    with torch.no_grad():
        p = torch.softmax(lr.value_net(nxt), -1).double()
    atoms = lr.atoms.double()
    for i in range(b):
        hn = -sum(float(x) * math.log(float(x)) for x in p[i] if x > 0) / math.log(201)
        tau = min(max(0.9 - 0.3 * hn, 0.5), 0.95)
        acc, q = 0.0, float(atoms[-1])
        for j in range(201):
            acc += float(p[i, j])
            if acc >= tau:
                q = float(atoms[j])
                break
        ref = float(rbar[i]) + (0.0 if done[i] else gamma**horizon * q)
        assert abs(float(y[i]) - ref) < 1e-5, (i, float(y[i]), ref)
    assert "value/tau" in m


def test_update_order_value_before_target_and_ema_rate():
    cfg = DIVLConfig(lr=5e-2, ema_rate=0.005, alpha=0.3)
    lr = _learner(cfg)
    b = 64
    obs = {"state": torch.randn(b, 3)}
    nxt = {"state": torch.randn(b, 3)}
    actions = torch.rand(b, 1, 1) * 2 - 1
    reward, discount = torch.rand(b), torch.full((b,), 0.9)

    value_before = copy.deepcopy(lr.value_net)
    target_before = copy.deepcopy(lr.target_critic)
    calls, seen = [], {}
    orig_value_step, orig_critic_step, orig_ema = lr.value_step, lr.critic_step, lr.ema_step

    def value_step(*a):
        calls.append("value")
        out = orig_value_step(*a)
        seen["value_after"] = copy.deepcopy(lr.value_net)
        return out

    def critic_step(o, a, m, y, contrast=None):
        calls.append("critic")
        seen["y"] = y.clone()
        out = orig_critic_step(o, a, m, y, contrast)
        seen["critic_after"] = copy.deepcopy(lr.critic)
        return out

    def ema_step():
        calls.append("ema")
        orig_ema()

    lr.value_step, lr.critic_step, lr.ema_step = value_step, critic_step, ema_step
    metrics = lr.update(obs, actions, reward, discount, nxt)
    assert calls == ["value", "critic", "ema"]

    def y_with(value_net):
        with torch.no_grad():
            p = torch.softmax(value_net(nxt), -1)
        from lwd.critic.targets import adaptive_tau, normalized_entropy

        tau = adaptive_tau(normalized_entropy(p), cfg.tau_base, cfg.alpha, cfg.tau_min, cfg.tau_max)
        return reward + discount * quantile_readout(p, tau, lr.atoms)

    assert torch.allclose(seen["y"], y_with(seen["value_after"]))
    assert not torch.allclose(seen["y"], y_with(value_before))  # the old value would differ
    # EMA: target <- 0.995 target + 0.005 online (online after its step)
    for t_new, t_old, on in zip(
        lr.target_critic.parameters(), target_before.parameters(), seen["critic_after"].parameters()
    ):
        assert torch.allclose(t_new, 0.995 * t_old + 0.005 * on, atol=1e-7)
    for key in ("value/ce_loss", "value/entropy", "value/tau", "critic/td_loss", "critic/q_mean"):
        assert key in metrics


def _tiny_mdp_batch(b, g):
    """s0 -> go (40%): r=0, s1, discount gamma | stop (60%): r=0.5, terminal.
    s1 -> good (30%): r=1, terminal | bad (70%): r=0, terminal. Half the rows start in s0, half in s1."""
    gamma = 0.9
    in_s1 = torch.rand(b, generator=g) < 0.5
    u = torch.rand(b, generator=g)
    good = in_s1 & (u < 0.3)
    go = (~in_s1) & (u < 0.4)
    state = torch.where(in_s1, 1, 0)
    act = torch.where(good | go, 0.5, -0.5).reshape(b, 1, 1)
    reward = torch.where(good, 1.0, 0.0) + torch.where((~in_s1) & ~go, 0.5, 0.0)
    discount = torch.where(go, gamma, 0.0)
    nxt = torch.where(go, 1, 2)
    return {"state": _onehot(state)}, act, reward, discount, {"state": _onehot(nxt)}


def _train_tiny(learner, steps=500, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        learner.update(*_tiny_mdp_batch(128, g))


def _readouts(learner, tau):
    s = {"state": _onehot([0, 1])}
    with torch.no_grad():
        p = torch.softmax(learner.value_net(s), -1)
        v = quantile_readout(p, torch.full((2,), tau), learner.atoms)
        q = learner.critic(
            {"state": _onehot([0, 0, 1, 1])}, torch.tensor([0.5, -0.5, 0.5, -0.5]).reshape(4, 1, 1)
        )
    return p, v, q.min(0).values


def test_divl_tiny_mdp_quantile_values():
    for tau, v_s1, q_go, v_s0 in ((0.8, 1.0, 0.9, 0.9), (0.55, 0.0, 0.0, 0.5)):
        learner = _learner(
            DIVLConfig(lr=3e-3, ema_rate=0.05, tau_base=tau, alpha=0.0, tau_min=0.0, tau_max=1.0),
            total_steps=500,
        )
        _train_tiny(learner)
        p, v, q = _readouts(learner, tau)
        # V(s1): 30% mass at 1, 70% at 0
        upper = float(p[1, learner.atoms > 0.5].sum())
        assert abs(upper - 0.3) < 0.05, upper
        assert abs(float(v[1]) - v_s1) < 0.04, (tau, v)
        assert abs(float(q[0]) - q_go) < 0.05, (tau, q)
        assert abs(float(q[1]) - 0.5) < 0.05, (tau, q)
        assert abs(float(q[2]) - 1.0) < 0.05 and abs(float(q[3])) < 0.05, q
        assert abs(float(v[0]) - v_s0) < 0.04, (tau, v)


def test_iql_tiny_mdp_expectile_values():
    torch.manual_seed(0)
    c = _cfg()
    learner = IQLUpdater(
        build_chunk_critic(c),
        build_scalar_value(c),
        IQLConfig(expectile=0.5, lr=3e-3, ema_rate=0.05),
        total_steps=500,
    )
    _train_tiny(learner)
    with torch.no_grad():
        v = learner.value_net({"state": _onehot([0, 1])})
    # tau = 0.5 expectile = mean: V(s1) = 0.3, V(s0) = 0.4 * 0.9 * 0.3 + 0.6 * 0.5 = 0.408
    assert abs(float(v[1]) - 0.3) < 0.04, v
    assert abs(float(v[0]) - 0.408) < 0.04, v
