"""QAM: policy extraction by adjoint matching (docs/algorithms.md section 4).

Target policy: pi*(a|s) proportional to pi_ref(a|s) exp(Q(s, a) / lambda). Everything below works on
closures with the conditioning already bound:

  f_theta(x [b, h, a], w [b]) -> [b, h, a]   trained velocity (carries gradient)
  f_ref(x, w) -> [b, h, a]                    frozen reference velocity
  q_fn(a [b, h, a]) -> [b]                    critic at the (clipped) action, e.g. mean of target heads

Index bookkeeping (K flow steps, h = 1/K, w_i = i h, i = 0..K-1), implemented literally:
  sigma_i = sqrt(2 (1 - w_i + h) / (w_i + h))                                     (lwd.policy.integrators)
  trajectory x_0..x_K: noisy memoryless Euler steps with f(x_i, w_i) for i < K-1, last step
     x_K = x_{K-1} + h f_ref(x_{K-1}, w_{K-1})                                      (4.1, no grad)
  g_K = -(1/lambda) grad_a Q(s, a) at a = clip(x_K, -1, 1)                          (4.2)
  g_i = g_{i+1} + h * [d b(x, w_i + h)/dx at x_i]^T g_{i+1},  b(x, w) = 2 f_ref(x, w) - x / w
     for i = K-1 .. 0 (the VJP uses the *reference* drift at time w_i + h = w_{i+1})  (4.3)
  L = E_b sum_{i=0}^{K-1} || 2 (f_theta(x_i, w_i) - f_ref(x_i, w_i)) / sigma_i + sigma_i g_i ||^2  (4.4)
Nothing is backpropagated through the sampler: x_i and g_i are constants of the loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from lwd.policy.integrators import flow_grid, memoryless_drift, memoryless_sigma

VelocityFn = Callable[[Tensor, Tensor], Tensor]
QFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class QAMConfig:
    """Adjoint-matching policy extraction (section 4)."""

    lam: float = 2.0
    """Temperature lambda of pi_ref exp(Q/lambda), in units of Q (paper: 2 with Q in [0, 1])."""
    flow_steps: int = 10
    """K, number of flow steps of the trajectory (paper default 10)."""
    simulate_with_ref: bool = False
    """Simulate the noisy trajectory with f_ref instead of f_theta (4.1 option; same at init)."""
    clip_actions: bool = True
    """Evaluate the critic at clip(x_K, -1, 1) (4.2)."""
    loss_scale: float = 1.0
    """Multiplier on L_QAM (chosen: 1; the loss is a sum over K steps and h*a action dims)."""

    def __post_init__(self) -> None:
        if not (self.lam > 0 and self.lam < float("inf")):
            raise ValueError(f"lam (QAM temperature) must be a finite number > 0, got {self.lam}")
        if self.flow_steps < 1:
            raise ValueError(f"flow_steps must be >= 1, got {self.flow_steps}")


def _wvec(value: float, like: Tensor) -> Tensor:
    return torch.full((like.shape[0],), value, dtype=like.dtype, device=like.device)


def terminal_adjoint(
    q_fn: QFn, x_k: Tensor, lam: float, clip: bool = True, return_q: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """g_K = -(1/lambda) grad_a Q(s, a) at a = clip(x_K, -1, 1) (4.2). x_k ``[b, h, a]`` -> same shape.

    The gradient is taken with respect to Q's action argument at the clipped point (the clip itself
    is not differentiated). Per-sample gradients: Q is summed over the batch before ``grad``.
    With ``return_q`` also returns Q at that point ``[b]``.
    """
    with torch.enable_grad():
        a = (x_k.clamp(-1.0, 1.0) if clip else x_k).detach().requires_grad_(True)
        q = q_fn(a)
        (grad,) = torch.autograd.grad(q.sum(), a)
    g = -grad.detach() / lam
    return (g, q.detach()) if return_q else g


def lean_adjoint(f_ref: VelocityFn, xs: Tensor, g_k: Tensor, steps: int) -> Tensor:
    """Lean adjoint backward with the reference drift (4.3).

    xs ``[s+1, b, h, a]`` (x_0..x_K), g_k ``[b, h, a]`` -> gs ``[s+1, b, h, a]`` (g_0..g_K).
    g_i = g_{i+1} + h * VJP of b(., w_i + h) at x_i applied to g_{i+1}, b(x, w) = 2 f_ref(x, w) - x/w.
    """
    h, grid = flow_grid(steps)
    gs = [None] * (steps + 1)
    gs[steps] = g_k.detach()
    g = gs[steps]
    for i in range(steps - 1, -1, -1):
        w_next = float(grid[i]) + h  # b is evaluated at w_i + h, not w_i
        with torch.enable_grad():
            x = xs[i].detach().requires_grad_(True)
            drift = 2.0 * f_ref(x, _wvec(w_next, x)) - x / w_next
            (vjp,) = torch.autograd.grad(drift, x, grad_outputs=g)
        g = (g + h * vjp).detach()
        gs[i] = g
    return torch.stack(gs, dim=0)


def adjoint_matching_loss(
    f_theta: VelocityFn,
    f_ref: VelocityFn,
    xs: Tensor,
    gs: Tensor,
    steps: int,
    v_theta: list[Tensor | None] | None = None,
    v_ref: list[Tensor | None] | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """L_QAM = E_b sum_i || 2 (f_theta(x_i, w_i) - f_ref(x_i, w_i)) / sigma_i + sigma_i g_i ||^2 (4.4).

    xs, gs ``[s+1, b, h, a]``; only f_theta carries gradient. ``v_theta[i]`` / ``v_ref[i]``, where
    given (not None), are f_theta(x_i, w_i) (with its graph) / f_ref(x_i, w_i) already computed by the
    trajectory, and are used instead of calling the networks again.
    """
    h, grid = flow_grid(steps)
    sigmas = memoryless_sigma(grid, h)
    total = xs.new_zeros(xs.shape[1])
    drift = xs.new_zeros(())
    for i in range(steps):
        x, g = xs[i].detach(), gs[i].detach()
        w = _wvec(float(grid[i]), x)
        sig = float(sigmas[i])
        vt = v_theta[i] if v_theta is not None and i < len(v_theta) else None
        vr = v_ref[i] if v_ref is not None and i < len(v_ref) else None
        if vr is None:
            with torch.no_grad():
                vr = f_ref(x, w)
        if vt is None:
            vt = f_theta(x, w)
        resid = 2.0 * (vt - vr) / sig + sig * g
        total = total + resid.pow(2).flatten(1).sum(-1)
        drift = drift + (vt.detach() - vr).flatten(1).norm(dim=-1).mean() / steps
    loss = total.mean()
    metrics = {
        "policy/adjoint_loss": float(loss.detach()),
        "policy/drift": float(drift),
        "policy/adjoint_norm": float(gs[0].flatten(1).norm(dim=-1).mean()),
        "policy/terminal_adjoint_norm": float(gs[-1].flatten(1).norm(dim=-1).mean()),
    }
    return loss, metrics


def trajectory_with_velocities(
    f_theta: VelocityFn,
    f_ref: VelocityFn,
    x0: Tensor,
    steps: int,
    noise: Tensor | None = None,
    simulate_with_ref: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, list[Tensor | None], list[Tensor | None]]:
    """The trajectory of ``memoryless_sde_trajectory`` (4.1, same numbers), also returning the
    velocities it computed at (x_i, w_i), i < K-1: f_theta's *with* its graph (they are the loss's
    f_theta(x_i, w_i), so the loss does not call the network again) or, with ``simulate_with_ref``,
    f_ref's. The states themselves carry no gradient. Returns ``(xs [s+1, b, h, a], v_theta, v_ref)``.
    """
    h, grid = flow_grid(steps)
    if noise is None:
        noise = torch.randn((max(steps - 1, 0), *x0.shape), generator=generator, dtype=x0.dtype).to(x0.device)
    elif noise.shape[0] < steps - 1 or noise.shape[1:] != x0.shape:
        raise ValueError(f"noise must be [>= {steps - 1}, {tuple(x0.shape)}], got {tuple(noise.shape)}")
    xs, v_theta, v_ref = [x0.detach()], [], []
    x = xs[0]
    for i in range(steps - 1):
        w = _wvec(float(grid[i]), x)
        if simulate_with_ref:
            with torch.no_grad():
                v_sim = f_ref(x, w)
            v_theta.append(None)
            v_ref.append(v_sim)
        else:
            v = f_theta(x, w)
            v_theta.append(v)
            v_ref.append(None)
            v_sim = v.detach()
        sigma = float(memoryless_sigma(float(grid[i]), h))
        x = (x + h * memoryless_drift(v_sim, x, w, h) + math.sqrt(h) * sigma * noise[i]).detach()
        xs.append(x)
    with torch.no_grad():
        xs.append(x + h * f_ref(x, _wvec(float(grid[steps - 1]), x)))
    return torch.stack(xs, dim=0), v_theta, v_ref


def qam_loss(
    f_theta: VelocityFn,
    f_ref: VelocityFn,
    q_fn: QFn,
    x0: Tensor,
    cfg: QAMConfig,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Full QAM step loss (section 4): trajectory, terminal adjoint, lean adjoint, matching.

    x0 ``[b, h, a]`` ~ N(0, I); ``noise`` ``[s-1, b, h, a]`` optional (drawn from ``generator``).
    The trajectory's f_theta calls double as the loss's (``trajectory_with_velocities``), so a step
    costs ~3K velocity calls instead of ~4K; the value and gradient are those of the literal
    composition of ``memoryless_sde_trajectory``, ``lean_adjoint`` and ``adjoint_matching_loss`` (tested).
    Returns ``(loss, metrics)``; metrics include ``policy/adjoint_loss``, ``policy/drift``
    (mean ||f_theta - f_ref|| over the trajectory) and ``policy/adjoint_norm`` (mean ||g_0||).
    """
    k = cfg.flow_steps
    xs, v_theta, v_ref = trajectory_with_velocities(
        f_theta, f_ref, x0, k, noise, simulate_with_ref=cfg.simulate_with_ref, generator=generator
    )
    g_k, q = terminal_adjoint(q_fn, xs[-1], cfg.lam, cfg.clip_actions, return_q=True)
    gs = lean_adjoint(f_ref, xs, g_k, k)
    loss, metrics = adjoint_matching_loss(f_theta, f_ref, xs, gs, k, v_theta, v_ref)
    metrics["policy/q_sample"] = float(q.mean())
    return cfg.loss_scale * loss, metrics
