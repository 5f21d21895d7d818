"""The flow time convention, written once, and the integrators built on it.

Convention (algorithms.md section 2, as in QAM): flow time ``w`` in [0, 1]; ``w = 0`` is Gaussian
noise ``x0 ~ N(0, I)``, ``w = 1`` is the action ``x1``. The linear interpolant is
``x_w = (1 - w) x0 + w x1`` and the velocity network regresses ``x1 - x0``. Sampling integrates the
ODE ``dx/dw = f(x, w)`` from ``w = 0`` to ``w = 1`` with ``K`` Euler steps.

pi0 / openpi use the opposite direction (``t = 1`` noise, ``t = 0`` action, ``u = x0 - x1``); convert
with :func:`pi0_to_lwd` (``w = 1 - t``, ``v = -u``) when loading such weights.

Every function here is pure tensor math on a velocity callable ``f(x [b, h, a], w [b]) -> [b, h, a]``
(bind the conditioning first, e.g. ``lambda x, w: policy.velocity(cond, x, w)``).
Shape letters: b batch, h chunk, a action dim, s flow steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

VelocityFn = Callable[[Tensor, Tensor], Tensor]
"""``f(x [b, h, a], w [b]) -> velocity [b, h, a]`` in the lwd time convention."""


def interpolate(x0: Tensor, x1: Tensor, w: Tensor) -> Tensor:
    """``x_w = (1 - w) x0 + w x1``; ``x0``, ``x1`` [b, ...], ``w`` [b] (broadcast over the rest)."""
    wb = _expand(w, x0)
    return (1.0 - wb) * x0 + wb * x1


def velocity_target(x0: Tensor, x1: Tensor) -> Tensor:
    """The regression target of flow matching, ``d x_w / d w = x1 - x0`` (same shape as x0)."""
    return x1 - x0


def flow_grid(steps: int) -> tuple[float, Tensor]:
    """Uniform grid of ``steps`` = K Euler steps: returns ``(h, w [s])`` with ``h = 1/K``, ``w_i = i h``.

    The grid holds the *start* time of every step (``w_0 = 0`` .. ``w_{K-1} = 1 - h``).
    """
    if steps < 1:
        raise ValueError(f"flow steps must be >= 1, got {steps}")
    h = 1.0 / steps
    return h, torch.arange(steps, dtype=torch.float32) * h


def euler_sample(f: VelocityFn, x0: Tensor, steps: int = 10) -> Tensor:
    """Deterministic Euler ODE ``x_{i+1} = x_i + h f(x_i, w_i)`` from ``w = 0`` (noise) to ``w = 1``.

    ``x0`` [b, h, a] -> ``x_K`` [b, h, a]. Gradient-transparent: wrap in ``torch.no_grad()`` to act.
    """
    h, grid = flow_grid(steps)
    x = x0
    b = x0.shape[0]
    for i in range(steps):
        w = torch.full((b,), float(grid[i]), dtype=x0.dtype, device=x0.device)
        x = x + h * f(x, w)
    return x


def memoryless_sigma(w: Tensor | float, h: float) -> Tensor:
    """Memoryless noise scale ``sigma(w) = sqrt(2 (1 - w + h) / (w + h))`` (algorithms.md section 4).

    This is the memoryless schedule ``2 (1 - w) / w`` of the linear interpolant, shifted by the step
    ``h`` so it stays finite at ``w = 0`` and positive at ``w = 1``.
    """
    w = torch.as_tensor(w, dtype=torch.float32)
    return torch.sqrt(2.0 * (1.0 - w + h) / (w + h))


def memoryless_drift(v: Tensor, x: Tensor, w: Tensor, h: float) -> Tensor:
    """Drift of the memoryless SDE, ``2 v - x / (w + h)``; ``v``, ``x`` [b, h, a], ``w`` [b].

    With ``sigma^2 = 2 (1 - w) / w`` the score term of the linear interpolant turns the ODE velocity
    ``v`` into ``2 v - x / w``; the ``+ h`` shift matches :func:`memoryless_sigma`.
    """
    return 2.0 * v - x / (_expand(w, x) + h)


@torch.no_grad()
def memoryless_sde_trajectory(
    f_theta: VelocityFn,
    f_ref: VelocityFn,
    x0: Tensor,
    steps: int = 10,
    noise: Tensor | None = None,
    *,
    simulate_with_ref: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Memoryless SDE trajectory of QAM (algorithms.md section 4.1), without gradients.

    ``x0`` [b, h, a] ~ N(0, I); ``noise`` [s-1 (or more), b, h, a] holds eps_i for i < K-1 (drawn
    from ``generator`` if None). For ``i < K-1``:
    ``x_{i+1} = x_i + h (2 f(x_i, w_i) - x_i / (w_i + h)) + sqrt(h) sigma_i eps_i`` with
    ``f = f_theta`` (or ``f_ref`` if ``simulate_with_ref``); the last step is the noiseless
    ``x_K = x_{K-1} + h f_ref(x_{K-1}, w_{K-1})``.

    Returns ``xs`` [s+1, b, h, a] = x_0 .. x_K.
    """
    h, grid = flow_grid(steps)
    if noise is None:
        shape = (max(steps - 1, 0), *x0.shape)
        noise = torch.randn(shape, generator=generator, dtype=x0.dtype).to(x0.device)
    elif noise.shape[0] < steps - 1 or noise.shape[1:] != x0.shape:
        raise ValueError(f"noise must be [>= {steps - 1}, {tuple(x0.shape)}], got {tuple(noise.shape)}")
    f_sim = f_ref if simulate_with_ref else f_theta
    b = x0.shape[0]
    xs = [x0]
    x = x0
    for i in range(steps - 1):
        w = torch.full((b,), float(grid[i]), dtype=x0.dtype, device=x0.device)
        sigma = float(memoryless_sigma(float(grid[i]), h))
        x = x + h * memoryless_drift(f_sim(x, w), x, w, h) + math.sqrt(h) * sigma * noise[i]
        xs.append(x)
    w_last = torch.full((b,), float(grid[steps - 1]), dtype=x0.dtype, device=x0.device)
    xs.append(x + h * f_ref(x, w_last))
    return torch.stack(xs, dim=0)


def pi0_to_lwd(t: Tensor | float, u: Tensor) -> tuple[Tensor | float, Tensor]:
    """Convert pi0/openpi time and velocity (t=1 noise, t=0 action) to lwd's: ``w = 1 - t``, ``v = -u``.

    The map is its own inverse, so it also converts lwd -> pi0.
    """
    return 1.0 - t, -u


def pi0_velocity_to_lwd(f_pi0: VelocityFn) -> VelocityFn:
    """Wrap a pi0-convention velocity field ``u(x, t)`` as an lwd field ``f(x, w) = -u(x, 1 - w)``."""

    def f(x: Tensor, w: Tensor) -> Tensor:
        t, _ = pi0_to_lwd(w, x)
        _, v = pi0_to_lwd(t, f_pi0(x, t))
        return v

    return f


def _expand(w: Tensor, like: Tensor) -> Tensor:
    """Reshape ``w`` [b] to broadcast against ``like`` [b, ...]."""
    w = torch.as_tensor(w, dtype=like.dtype, device=like.device)
    if w.ndim == 0:
        return w
    return w.reshape(w.shape[0], *([1] * (like.ndim - 1)))
