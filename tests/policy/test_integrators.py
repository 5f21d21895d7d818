"""The flow time convention and integrators against analytic cases."""

from __future__ import annotations

import math

import pytest
import torch

from lwd.policy.integrators import (
    euler_sample,
    flow_grid,
    interpolate,
    memoryless_sde_trajectory,
    memoryless_sigma,
    pi0_to_lwd,
    pi0_velocity_to_lwd,
    velocity_target,
)

MU, STD = 1.5, 0.3  # target N(MU, STD^2) per dimension; source N(0, 1)


def gaussian_velocity(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Exact E[x1 - x0 | x_w = x] for x0 ~ N(0, I), x1 ~ N(MU, STD^2 I) independent.

    Cov(x1 - x0, x_w) = w STD^2 - (1 - w), Var(x_w) = (1 - w)^2 + w^2 STD^2.
    """
    wb = w.reshape(-1, *([1] * (x.ndim - 1)))
    var = (1 - wb) ** 2 + wb**2 * STD**2
    return MU + (wb * STD**2 - (1 - wb)) / var * (x - wb * MU)


def test_interpolation_endpoints_and_target(gen: torch.Generator) -> None:
    x0, x1 = torch.randn(4, 3, 2, generator=gen), torch.randn(4, 3, 2, generator=gen)
    assert torch.equal(interpolate(x0, x1, torch.zeros(4)), x0)  # w=0 is noise
    assert torch.equal(interpolate(x0, x1, torch.ones(4)), x1)  # w=1 is the action
    w = torch.tensor([0.0, 0.25, 0.5, 1.0])
    mid = interpolate(x0, x1, w)
    assert torch.allclose(mid[1], 0.75 * x0[1] + 0.25 * x1[1])
    assert torch.equal(velocity_target(x0, x1), x1 - x0)
    # Integrating the constant target velocity from x0 lands exactly on x1.
    v = velocity_target(x0, x1)
    assert torch.allclose(euler_sample(lambda x, w: v, x0, steps=7), x1, atol=1e-5)


def test_flow_grid() -> None:
    h, grid = flow_grid(10)
    assert h == pytest.approx(0.1)
    assert grid.shape == (10,) and grid[0] == 0 and grid[-1] == pytest.approx(0.9)
    with pytest.raises(ValueError):
        flow_grid(0)


def test_euler_ode_transports_gaussian_to_target(gen: torch.Generator) -> None:
    x0 = torch.randn(20000, 2, 2, generator=gen)
    x1 = euler_sample(gaussian_velocity, x0, steps=100)
    assert x1.mean().item() == pytest.approx(MU, abs=0.02)
    assert x1.std().item() == pytest.approx(STD, abs=0.02)


def test_memoryless_sde_has_target_marginal(gen: torch.Generator) -> None:
    x0 = torch.randn(20000, 2, 2, generator=gen)
    xs = memoryless_sde_trajectory(gaussian_velocity, gaussian_velocity, x0, steps=100, generator=gen)
    assert xs.shape == (101, 20000, 2, 2)
    assert torch.equal(xs[0], x0)
    xk = xs[-1]
    assert xk.mean().item() == pytest.approx(MU, abs=0.03)
    assert xk.std().item() == pytest.approx(STD, abs=0.03)
    # Memoryless: the endpoint is (nearly) independent of the start noise.
    corr = torch.corrcoef(torch.stack([x0.flatten(), xk.flatten()]))[0, 1]
    assert abs(corr.item()) < 0.05


def test_sde_step_formula_and_ref_last_step() -> None:
    """Two steps by hand: noisy step with f_theta, noiseless last step with f_ref."""
    x0 = torch.full((1, 1, 1), 0.5)
    noise = torch.full((1, 1, 1, 1), 2.0)
    f_theta = lambda x, w: torch.ones_like(x)  # noqa: E731
    f_ref = lambda x, w: 3.0 * torch.ones_like(x)  # noqa: E731
    xs = memoryless_sde_trajectory(f_theta, f_ref, x0, steps=2, noise=noise)
    h = 0.5
    sigma0 = math.sqrt(2 * (1 + h) / h)
    x1 = 0.5 + h * (2 * 1.0 - 0.5 / h) + math.sqrt(h) * sigma0 * 2.0
    assert xs[1].item() == pytest.approx(x1, rel=1e-6)
    assert xs[2].item() == pytest.approx(x1 + h * 3.0, rel=1e-6)
    xs_ref = memoryless_sde_trajectory(f_theta, f_ref, x0, steps=2, noise=noise, simulate_with_ref=True)
    assert xs_ref[1].item() == pytest.approx(0.5 + h * (6.0 - 0.5 / h) + math.sqrt(h) * sigma0 * 2.0)
    assert memoryless_sigma(0.0, h).item() == pytest.approx(sigma0)


def test_pi0_conversion_round_trip(gen: torch.Generator) -> None:
    t = torch.rand(5, generator=gen)
    u = torch.randn(5, 3, generator=gen)
    w, v = pi0_to_lwd(t, u)
    assert torch.allclose(w, 1 - t) and torch.equal(v, -u)
    t2, u2 = pi0_to_lwd(w, v)
    assert torch.allclose(t2, t) and torch.equal(u2, u)

    # A pi0-convention field (t=1 noise -> t=0 action, u = x0 - x1), integrated in lwd time after
    # conversion, transports noise to the target.
    def u_pi0(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -gaussian_velocity(x, 1 - t)

    x1 = euler_sample(pi0_velocity_to_lwd(u_pi0), torch.randn(20000, 1, 1, generator=gen), steps=100)
    assert x1.mean().item() == pytest.approx(MU, abs=0.02)
