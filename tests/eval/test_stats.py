"""lwd.eval.stats against analytic cases and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from lwd.eval.stats import cmh_less, fisher_less, flip, mh_risk_difference, rate


def test_fisher_less_analytic_and_direction():
    # a = 0/3, b = 3/3: the only table at least as extreme -> hypergeometric 1 / C(6, 3)
    assert fisher_less((0, 3), (3, 3)) == pytest.approx(1 / 20)
    assert fisher_less((3, 3), (0, 3)) == pytest.approx(1.0)  # a better: no evidence it is worse
    assert fisher_less((0, 0), (3, 3)) == 1.0  # empty arm carries no information
    # agrees with a direct hypergeometric tail
    p = st.hypergeom.cdf(2, 40, 22, 20)  # a: 2 of 20 successes, total successes 2 + 20 = 22 of 40
    assert fisher_less((2, 20), (20, 20)) == pytest.approx(p)


def test_cmh_single_stratum_equals_chi2_with_and_without_yates_correction():
    a, b = (4, 20), (12, 20)
    n = 40
    for correction in (False, True):
        z, p = cmh_less([(a, b)], correction=correction)
        chi2 = st.chi2_contingency([[4, 16], [12, 8]], correction=correction).statistic
        assert z < 0
        assert z * z == pytest.approx(chi2 * (n - 1) / n)
        assert p == pytest.approx(st.norm.cdf(z))


def test_cmh_correction_stops_the_small_canary_false_alarm():
    # a copy of the running policy: 7/8 canary successes against an incumbent's 65/65
    table = [((7, 8), (65, 65))]
    assert cmh_less(table, correction=False)[1] < 0.0025  # the uncorrected test false-alarms
    p = cmh_less(table)[1]
    assert p == pytest.approx(fisher_less((7, 8), (65, 65)), abs=0.02) and p > 0.05


def test_cmh_pools_identical_strata_and_skips_uninformative():
    s = ((3, 10), (7, 10))
    z1, _ = cmh_less([s], correction=False)
    z2, _ = cmh_less([s, s], correction=False)
    assert z2 == pytest.approx(math.sqrt(2) * z1)  # deviation and variance both double
    # strata with an empty arm or no outcome variance are skipped
    assert cmh_less([s, ((0, 0), (5, 5)), ((5, 5), (5, 5))])[0] == pytest.approx(cmh_less([s])[0])
    assert cmh_less([]) == (0.0, 1.0)


def test_cmh_is_calibrated_under_the_null():
    rng = np.random.default_rng(0)
    hits, trials = 0, 2000
    for _ in range(trials):
        strata = []
        for p_task, na, nb in ((0.2, 8, 24), (0.6, 8, 24), (0.9, 10, 10)):
            strata.append(((rng.binomial(na, p_task), na), (rng.binomial(nb, p_task), nb)))
        hits += cmh_less(strata)[1] < 0.05
    assert 0.02 < hits / trials < 0.08


def test_cmh_not_fooled_by_task_mix():
    # both arms have the same per-task rates, but A ran mostly the hard task: pooled raw rates differ
    # (A 0.37 vs B 0.63) while the stratified test sees no difference
    strata = [((2, 20), (1, 10)), ((9, 10), (18, 20))]
    assert rate((11, 30)) < rate((19, 30)) - 0.25
    z, p = cmh_less(strata)
    assert abs(z) < 0.5 and p > 0.3


def test_mh_risk_difference_and_flip():
    assert mh_risk_difference([((5, 10), (8, 10)), ((2, 10), (5, 10))]) == pytest.approx(-0.3)
    assert mh_risk_difference([((0, 0), (1, 1))]) is None
    assert flip((3, 10)) == (7, 10)
    with pytest.raises(ValueError):
        rate((5, 3))


def test_mcnemar_exact_analytic_cases():
    from lwd.eval.stats import mcnemar_exact

    assert mcnemar_exact(0, 0) == 1.0  # no discordant pairs: no evidence
    assert mcnemar_exact(5, 0) == pytest.approx(2 / 32)  # all 5 discordant one way: 2 * 0.5^5
    assert mcnemar_exact(0, 5) == mcnemar_exact(5, 0)  # symmetric
    assert mcnemar_exact(3, 3) == 1.0
    # agrees with scipy's exact binomial test
    assert mcnemar_exact(24, 10) == pytest.approx(st.binomtest(10, 34, 0.5).pvalue)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_paired_signed_rank_analytic_cases_and_scipy():
    from lwd.eval.stats import paired_signed_rank

    assert paired_signed_rank([0.5, 1.0], [0.5, 1.0]) == 1.0  # all ties: no evidence
    # 5 pairs all better by distinct amounts: exact two-sided p = 2 / 2^5
    assert paired_signed_rank([1.0, 0.9, 0.8, 0.7, 0.6], [0.0] * 5) == pytest.approx(2 / 32)
    a, b = [0.25, 0.5, 1.0, 0.75, 0.0, 0.5], [0.0, 0.5, 0.5, 0.25, 0.25, 0.0]
    want = st.wilcoxon(np.subtract(a, b), zero_method="wilcox").pvalue
    assert paired_signed_rank(a, b) == pytest.approx(want) == paired_signed_rank(b, a)
    with pytest.raises(ValueError, match="lengths"):
        paired_signed_rank([1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="finite"):
        paired_signed_rank([float("nan")], [0.0])
