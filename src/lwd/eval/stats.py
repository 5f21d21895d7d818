"""Pure statistics for comparing two policy versions on episode outcomes (binary, or paired scores).

All tests are one-sided and ask "is arm A *worse* than arm B?" for a rate where higher is better
(success) -- for a rate where lower is better (interventions), swap the outcome (count failures).

* :func:`fisher_less` -- exact one-sided Fisher test on one 2x2 table (small counts; one task).
* :func:`cmh_less` -- Cochran-Mantel-Haenszel test over task strata (pooled over tasks without
  confounding by a different task mix in the two arms), one-sided, normal approximation with the
  Mantel-Haenszel continuity correction.
* :func:`mh_risk_difference` -- Mantel-Haenszel weighted rate difference A - B over strata (the
  pooled effect size the promotion margin is applied to).
* :func:`mcnemar_exact` -- exact two-sided McNemar test of two policies on the *same* episodes (same
  tasks and seeds), e.g. a trained policy against SFT on the held-out evaluation seeds.
* :func:`paired_signed_rank` -- two-sided Wilcoxon signed-rank test of paired scores in [0, 1] (the
  sub-step scores of chained tasks) of two policies on the same episodes.

Counts are ``(successes, trials)`` pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats as _st

Counts = tuple[int, int]
"""``(successes, trials)``."""


def _check(c: Counts) -> tuple[int, int]:
    k, n = int(c[0]), int(c[1])
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"invalid counts (successes={k}, trials={n})")
    return k, n


def rate(c: Counts) -> float | None:
    k, n = _check(c)
    return k / n if n else None


def fisher_less(a: Counts, b: Counts) -> float:
    """One-sided exact p-value of H1: rate(a) < rate(b) (1.0 if either arm is empty)."""
    ka, na = _check(a)
    kb, nb = _check(b)
    if na == 0 or nb == 0:
        return 1.0
    return float(_st.fisher_exact([[ka, na - ka], [kb, nb - kb]], alternative="less").pvalue)


def cmh_less(strata: Sequence[tuple[Counts, Counts]], correction: bool = True) -> tuple[float, float]:
    """One-sided Cochran-Mantel-Haenszel test of H1: rate(A) < rate(B) in the common direction.

    ``strata`` are ``(a, b)`` count pairs, one per task. Returns ``(z, p)`` with ``z`` the
    standardised sum of (observed - expected) A-successes (negative: A worse) and ``p = Phi(z)``.
    Strata with an empty arm or without variance carry no information and are skipped; with none
    left, ``(0.0, 1.0)``. ``correction`` (default): the Mantel-Haenszel continuity correction of the
    lower tail, z = (dev + 1/2) / sd. Without it the normal approximation false-alarms at small canary
    counts against an incumbent near 0 or 1 (7/8 vs 65/65: p 0.0022 uncorrected, 0.11 corrected,
    Fisher's exact 0.11).
    """
    dev, var = 0.0, 0.0
    for a, b in strata:
        ka, na = _check(a)
        kb, nb = _check(b)
        n = na + nb
        m1 = ka + kb
        if na == 0 or nb == 0 or n < 2 or m1 == 0 or m1 == n:
            continue
        dev += ka - na * m1 / n
        var += na * nb * m1 * (n - m1) / (n * n * (n - 1))
    if var <= 0:
        return 0.0, 1.0
    z = (dev + (0.5 if correction else 0.0)) / math.sqrt(var)
    return z, float(_st.norm.cdf(z))


def mh_risk_difference(strata: Sequence[tuple[Counts, Counts]]) -> float | None:
    """Mantel-Haenszel weighted rate difference rate(A) - rate(B) (weights ``na*nb/(na+nb)``)."""
    num, den = 0.0, 0.0
    for a, b in strata:
        ka, na = _check(a)
        kb, nb = _check(b)
        if na == 0 or nb == 0:
            continue
        w = na * nb / (na + nb)
        num += w * (ka / na - kb / nb)
        den += w
    return num / den if den else None


def flip(c: Counts) -> Counts:
    """Failures instead of successes (turns "lower is better" into "higher is better")."""
    k, n = _check(c)
    return n - k, n


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Exact two-sided McNemar p-value for paired binary outcomes (same episodes, two policies).

    ``a_only``: episodes A solved and B did not; ``b_only``: the reverse (ties carry no information).
    Under H0 (no difference) ``a_only ~ Binomial(a_only + b_only, 1/2)``; p = 2 min(tail), capped at 1.
    """
    a, b = int(a_only), int(b_only)
    if a < 0 or b < 0:
        raise ValueError(f"invalid discordant counts ({a}, {b})")
    n = a + b
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * _st.binom.cdf(min(a, b), n, 0.5)))


def paired_signed_rank(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired scores ``a[i]`` vs ``b[i]`` (same episodes), e.g.
    two policies' sub-step scores; zero differences are dropped (Wilcoxon's ``zero_method``), and
    the test is exact up to 50 non-zero pairs and a normal approximation beyond. 1.0 if all tie."""
    if len(a) != len(b):
        raise ValueError(f"paired scores of different lengths: {len(a)} vs {len(b)}")
    d = [float(x) - float(y) for x, y in zip(a, b)]
    if not all(math.isfinite(x) for x in d):
        raise ValueError("paired scores must be finite")
    if not any(d):
        return 1.0
    return float(_st.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
