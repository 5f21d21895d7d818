"""Targets of DIVL (algorithms.md section 3) against independent slow references."""

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lwd.critic.targets import (
    adaptive_tau,
    expectile_loss,
    make_atoms,
    normalized_entropy,
    quantile_readout,
    two_atom_projection,
)

ATOMS64 = make_atoms(201, -0.1, 1.1, dtype=torch.float64)


def test_atoms_paper_grid():
    a = make_atoms()
    assert a.shape == (201,)
    assert math.isclose(float(a[0]), -0.1, abs_tol=1e-7) and math.isclose(float(a[-1]), 1.1, abs_tol=1e-7)
    assert torch.allclose(a[1:] - a[:-1], torch.full((200,), 0.006), atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-3.0, 3.0, allow_nan=False), min_size=1, max_size=16))
def test_projection_conserves_mass_and_mean(qs):
    q = torch.tensor(qs, dtype=torch.float64)
    m = two_atom_projection(q, ATOMS64)
    assert (m >= 0).all()
    assert torch.allclose(m.sum(-1), torch.ones(len(qs), dtype=torch.float64), atol=1e-12)
    expected = q.clamp(-0.1, 1.1)
    assert torch.allclose(m @ ATOMS64, expected, atol=1e-12)
    assert ((m > 0).sum(-1) <= 2).all()


def test_projection_exact_at_atoms_and_ends():
    q = torch.cat([ATOMS64[[0, 1, 57, 199, 200]], torch.tensor([-5.0, 7.0], dtype=torch.float64)])
    m = two_atom_projection(q, ATOMS64)
    for row, j in zip(m, [0, 1, 57, 199, 200, 0, 200]):
        assert math.isclose(float(row[j]), 1.0, abs_tol=1e-9), j
        assert math.isclose(float(row.sum()), 1.0, abs_tol=1e-12)


def test_projection_loop_reference():
    atoms = ATOMS64
    d = float(atoms[1] - atoms[0])
    rng = np.random.default_rng(0)
    q = torch.tensor(rng.uniform(-0.3, 1.3, 64))
    m = two_atom_projection(q, atoms)
    for b in range(64):
        ref = np.zeros(201)
        qc = min(max(float(q[b]), -0.1), 1.1)
        for j in range(200):
            lo, hi = float(atoms[j]), float(atoms[j + 1])
            if lo <= qc <= hi:
                ref[j], ref[j + 1] = (hi - qc) / d, (qc - lo) / d
                break
        np.testing.assert_allclose(m[b].numpy(), ref, atol=1e-9)


def _bump(centers_weights, atoms, width=0.02):
    p = torch.zeros_like(atoms)
    for c, w in centers_weights:
        g = torch.exp(-0.5 * ((atoms - c) / width) ** 2)
        p = p + w * g / g.sum()
    return p / p.sum()


def test_quantile_bimodal():
    atoms = make_atoms()
    p = _bump([(0.1, 0.7), (0.9, 0.3)], atoms).unsqueeze(0).repeat(2, 1)
    v = quantile_readout(p, torch.tensor([0.8, 0.5]), atoms)
    assert abs(float(v[0]) - 0.9) < 0.06, v
    assert abs(float(v[1]) - 0.1) < 0.06, v


def test_quantile_loop_reference_and_float_guard():
    atoms = make_atoms()
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(3 * torch.randn(50, 201, generator=g), -1)
    tau = torch.rand(50, generator=g)
    tau[0], tau[1] = 1.0, 0.0
    p[0] = p[0] * (1 - 1e-6)  # total mass slightly below tau = 1: must return the top atom
    v = quantile_readout(p, tau, atoms)
    for b in range(50):
        acc, ref = 0.0, float(atoms[-1])
        for j in range(201):
            acc += float(p[b, j])
            if acc >= float(tau[b]) - 1e-7:
                ref = float(atoms[j])
                break
        assert abs(float(v[b]) - ref) < 1e-6 or b == 0, (b, float(v[b]), ref)
    assert float(v[0]) == float(atoms[-1])
    assert float(v[1]) == float(atoms[0])


def test_entropy_bounds_and_tau_falls_with_entropy():
    atoms = make_atoms()
    k = 201
    uniform = torch.full((1, k), 1.0 / k)
    onehot = torch.zeros(1, k)
    onehot[0, 100] = 1.0
    assert math.isclose(float(normalized_entropy(uniform)), 1.0, abs_tol=1e-5)
    assert float(normalized_entropy(onehot)) == 0.0
    # increasingly diffuse distributions -> entropy rises -> tau falls
    ps = torch.stack([_bump([(0.5, 1.0)], atoms, width=wd) for wd in (0.01, 0.05, 0.2, 1.0)])
    hn = normalized_entropy(ps)
    assert (hn[1:] > hn[:-1]).all()
    tau = adaptive_tau(hn, tau_base=0.9, alpha=0.3, tau_min=0.5, tau_max=0.95)
    assert (tau[1:] < tau[:-1]).all()
    assert torch.allclose(tau, 0.9 - 0.3 * hn)
    # clipping, and alpha = 0 gives a constant tau
    assert float(adaptive_tau(torch.tensor([1.0]), 0.6, 0.3, 0.5, 0.95)) == 0.5
    assert torch.allclose(adaptive_tau(hn, 0.7, 0.0, 0.5, 0.95), torch.full((4,), 0.7))


def test_entropy_loop_reference():
    p = torch.softmax(torch.randn(5, 201, dtype=torch.float64), -1)
    ref = [-sum(float(x) * math.log(float(x)) for x in row) / math.log(201) for row in p]
    assert torch.allclose(normalized_entropy(p), torch.tensor(ref, dtype=torch.float64), atol=1e-12)


def test_expectile_loss():
    u = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0])
    loss = expectile_loss(u, 0.7)
    ref = torch.tensor([0.3 * 4, 0.3 * 0.25, 0.0, 0.7 * 0.25, 0.7 * 4])
    assert torch.allclose(loss, ref)
    # the expectile minimiser of a sample is above the mean for tau > 0.5
    x = torch.tensor([0.0, 0.0, 1.0])
    grid = torch.linspace(0, 1, 1001)
    vals = torch.stack([expectile_loss(x - v, 0.9).mean() for v in grid])
    v_star = float(grid[vals.argmin()])
    # closed form: solves 0.1 * 2 v = 0.9 (1 - v)  ->  v = 0.9 / 1.1
    assert abs(v_star - 0.9 / 1.1) < 2e-3
