"""Pure tensor functions for DIVL's categorical value (docs/algorithms.md section 3).

Shape letters: b batch, k atoms. Everything here is differentiable where it makes sense (the
projection and readout are targets and carry no gradient by construction).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def make_atoms(k: int = 201, vmin: float = -0.1, vmax: float = 1.1, dtype=torch.float32) -> Tensor:
    """Fixed, evenly spaced value atoms v_1..v_K on [vmin, vmax] (section 3: K=201 on [-0.1, 1.1]).

    Returns ``[k]``.
    """
    if k < 2 or not vmax > vmin:
        raise ValueError(f"need k >= 2 and vmax > vmin, got k={k}, vmin={vmin}, vmax={vmax}")
    return torch.linspace(vmin, vmax, k, dtype=dtype)


def two_atom_projection(q: Tensor, atoms: Tensor) -> Tensor:
    """Two-atom projection of scalar targets onto the atom grid (section 3.1).

    q ``[b]`` is clipped to [v_1, v_K]; with v_j <= q <= v_{j+1}:
    m_j = (v_{j+1} - q)/d, m_{j+1} = (q - v_j)/d, zero elsewhere. Returns m ``[b, k]``, rows sum to 1
    and sum_j m_j v_j = clip(q). Exact at atoms and at both ends (one atom gets all the mass).
    """
    k = atoms.shape[0]
    q = q.detach().to(atoms.dtype).clamp(atoms[0], atoms[-1])
    # Lower neighbour index j in [0, k-2]; searchsorted avoids float error of (q - v1)/d.
    j = torch.searchsorted(atoms, q, right=True) - 1
    j = j.clamp(0, k - 2)
    lo, hi = atoms[j], atoms[j + 1]
    w_hi = ((q - lo) / (hi - lo)).clamp(0.0, 1.0)
    m = torch.zeros(q.shape[0], k, dtype=atoms.dtype, device=atoms.device)
    m.scatter_(1, j.unsqueeze(1), (1.0 - w_hi).unsqueeze(1))
    m.scatter_add_(1, (j + 1).unsqueeze(1), w_hi.unsqueeze(1))
    return m


def normalized_entropy(p: Tensor) -> Tensor:
    """Hn = -sum_i p_i log p_i / log K in [0, 1] (section 3.2). p ``[b, k]`` -> ``[b]``."""
    k = p.shape[-1]
    plogp = torch.where(p > 0, p * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny)), torch.zeros_like(p))
    return (-plogp.sum(-1) / math.log(k)).clamp(0.0, 1.0)


def adaptive_tau(hn: Tensor, tau_base: float, alpha: float, tau_min: float, tau_max: float) -> Tensor:
    """tau(s) = clip(tau_base - alpha * Hn(s), tau_min, tau_max) (section 3.2), no gradient.

    A diffuse distribution (Hn -> 1) lowers tau (more conservative). ``alpha = 0`` gives the
    constant-tau ablation. hn ``[b]`` -> ``[b]``.
    """
    return (tau_base - alpha * hn.detach()).clamp(tau_min, tau_max)


def quantile_readout(p: Tensor, tau: Tensor, atoms: Tensor) -> Tensor:
    """Quant_tau: the smallest atom whose CDF >= tau (section 3.3). p ``[b, k]``, tau ``[b]`` -> ``[b]``.

    If float error leaves the total CDF below tau, the top atom is returned.
    """
    cdf = torch.cumsum(p.detach(), dim=-1)
    tau = tau.detach().to(cdf.dtype).reshape(-1, 1)
    idx = torch.searchsorted(cdf.contiguous(), tau.contiguous(), right=False).squeeze(1)
    idx = idx.clamp(max=atoms.shape[0] - 1)
    return atoms[idx]


def expectile_loss(u: Tensor, tau: float | Tensor) -> Tensor:
    """Elementwise expectile loss |tau - 1(u < 0)| u^2 (section 3.6), u = Q_target(s, a) - V(s).

    Returns the same shape as ``u`` (callers take the mean).
    """
    weight = torch.abs(tau - (u < 0).to(u.dtype))
    return weight * u.pow(2)
