"""Tests of natexp.causal.power (exact power by enumeration).

References: Mathews PG, Minitab macro ``fisherspower.mac`` (MM&B Inc., rev. 2005; documented
example "%fisherspower 0.01 0.05 80 80 ... should return power = 0.211135", one-sided Fisher
test of p1 < p2 at alpha = 0.05, citing Mathews, *Sample Size Calculations*, sec. 4.3.2.1, p. 97);
scipy 1.15 ``fisher_exact``, ``boschloo_exact``, ``barnard_exact`` and ``binom`` run live as a
brute-force reference over every table; Boschloo (1970), Statistica Neerlandica 24:1-9 (his test
is uniformly more powerful than Fisher's one-sided test).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.stats import barnard_exact, binom, boschloo_exact, fisher_exact

from natexp.causal.power import (
    exact_power,
    minimum_detectable_difference,
    rejection_region,
    sample_size,
)
from natexp.causal.result import InvalidInputError


def brute_region(n1, n2, pvalue, alpha=0.05):
    """Tables the reference test rejects, from its p-value function of (x1, x2)."""
    return np.array([[pvalue(a, b) < alpha for b in range(n2 + 1)] for a in range(n1 + 1)])


def brute_power(n1, n2, p1, p2, region):
    """Power by enumeration: sum of Bin(a; n1, p1) Bin(b; n2, p2) over the rejected tables."""
    total = 0.0
    for a in range(n1 + 1):
        for b in range(n2 + 1):
            if region[a, b]:
                total += binom.pmf(a, n1, p1) * binom.pmf(b, n2, p2)
    return total


def fisher_p(n1, n2, alternative):
    # rows are the groups: "less" = odds ratio < 1 = p1 < p2 (scipy.stats.fisher_exact 1.15)
    return lambda a, b: fisher_exact([[a, n1 - a], [b, n2 - b]], alternative=alternative).pvalue


def scipy_unconditional_p(fn, n1, n2, alternative, **kw):
    def p(a, b):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn([[a, b], [n1 - a, n2 - b]], alternative=alternative, n=200, **kw).pvalue

    return p


def test_fisher_two_sided_region_equals_scipy_on_every_table():
    """The Fisher two-sided rejection region (computed for all margins at once) is the set of
    tables scipy's ``fisher_exact`` rejects, at several levels and shapes."""
    for n1, n2 in [(7, 7), (12, 9), (4, 15), (1, 6), (20, 20)]:
        p = np.array([[fisher_exact([[a, n1 - a], [b, n2 - b]]).pvalue for b in range(n2 + 1)]
                      for a in range(n1 + 1)])
        for level in (0.95, 0.9, 0.99, 0.5):
            alpha = 1.0 - level
            ours = rejection_region(n1, n2, test="fisher", confidence_level=level)
            # scipy sums with its own tolerance: compare away from its p-values' last digits
            clear = np.abs(p - alpha) > 1e-9 * alpha
            assert np.array_equal(ours[clear], (p < alpha)[clear]), (n1, n2, level)


def test_fisher_two_sided_region_equals_the_per_margin_pvalues_exactly():
    """Oracle: the region is exactly ``p < alpha`` for natexp's per-margin p-values (the same
    floating-point sums), also when alpha is itself one of the attained p-values (ties), and at
    the several hundred per arm the sample-size search reaches."""
    from natexp.causal.unconditional import _fisher_two_sided

    rng = np.random.default_rng(20261201)
    sizes = [(a, b) for a in range(1, 16) for b in range(1, 16)]
    sizes += [tuple(int(v) for v in rng.integers(1, 260, 2)) for _ in range(25)]
    sizes += [(515, 515), (413, 566), (1, 700), (700, 2)]
    for n1, n2 in sizes:
        pv = _fisher_two_sided(n1, n2)
        attained = np.unique(pv[(pv > 1e-12) & (pv < 1.0 - 1e-12)])
        levels = [0.05, 0.01, 0.2, 1e-6, 0.9]
        levels += [float(v) for v in rng.choice(attained, min(4, attained.size), replace=False)]
        for alpha in levels:
            ours = rejection_region(n1, n2, test="fisher", confidence_level=1.0 - alpha)
            assert np.array_equal(ours, pv < 1.0 - (1.0 - alpha)), (n1, n2, alpha)


def test_published_fisher_power_mathews():
    # Mathews' fisherspower macro: 0.211135 (one-sided Fisher, p1 = 0.01 < p2 = 0.05, n = 80 + 80)
    r = exact_power(80, 80, 0.01, 0.05, alternative="less")
    assert round(r.estimate, 6) == 0.211135
    assert r.method == "power.exact_fisher" and r.n == (80, 80)


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_fisher_power_equals_scipy_enumeration(alternative):
    n1, n2 = 12, 9
    ref = brute_region(n1, n2, fisher_p(n1, n2, alternative))
    for p1, p2 in [(0.2, 0.7), (0.6, 0.1), (0.35, 0.35), (0.05, 0.5)]:
        ours = exact_power(n1, n2, p1, p2, alternative=alternative).estimate
        assert ours == pytest.approx(brute_power(n1, n2, p1, p2, ref), abs=1e-12)


@pytest.mark.parametrize("test,fn,kw", [
    ("boschloo", boschloo_exact, {}),
    ("barnard_pooled", barnard_exact, {"pooled": True}),
    ("barnard_unpooled", barnard_exact, {"pooled": False}),
])
def test_unconditional_power_equals_scipy_enumeration(test, fn, kw):
    n1, n2 = 5, 4
    for alternative in ("two-sided", "greater"):
        ref = brute_region(n1, n2, scipy_unconditional_p(fn, n1, n2, alternative, **kw))
        assert np.array_equal(rejection_region(n1, n2, test=test, alternative=alternative), ref)
        for p1, p2 in [(0.9, 0.1), (0.7, 0.3), (0.5, 0.5)]:
            ours = exact_power(n1, n2, p1, p2, test=test, alternative=alternative).estimate
            assert ours == pytest.approx(brute_power(n1, n2, p1, p2, ref), abs=1e-12)


@pytest.mark.parametrize("test", ["fisher", "boschloo", "barnard_pooled", "barnard_unpooled"])
def test_exact_tests_keep_their_size(test):
    for n1, n2 in [(10, 10), (17, 6)]:
        for alt in ("two-sided", "less", "greater"):
            r = exact_power(n1, n2, 0.3, 0.3, test=test, alternative=alt)
            assert r.extra["size"] <= 0.05 + 1e-12
            assert r.estimate <= r.extra["size"] + 1e-12


def test_boschloo_is_uniformly_more_powerful_than_fisher_one_sided():
    # Boschloo (1970): the one-sided Boschloo test rejects whenever Fisher's does
    for n1, n2 in [(10, 8), (25, 25)]:
        fis = rejection_region(n1, n2, test="fisher", alternative="greater")
        bos = rejection_region(n1, n2, test="boschloo", alternative="greater")
        assert np.all(bos[fis])
        for p1, p2 in [(0.5, 0.1), (0.8, 0.4), (0.3, 0.05)]:
            pf = exact_power(n1, n2, p1, p2, test="fisher", alternative="greater").estimate
            pb = exact_power(n1, n2, p1, p2, test="boschloo", alternative="greater").estimate
            assert pb >= pf - 1e-12


def test_minimum_detectable_difference():
    n1, n2, p2 = 20, 15, 0.1
    r = minimum_detectable_difference(n1, n2, p2)
    p1 = p2 + r.estimate
    ref = brute_region(n1, n2, fisher_p(n1, n2, "two-sided"))
    # the power at the MDD is the target, just below it is smaller (scipy enumeration)
    assert brute_power(n1, n2, p1, p2, ref) == pytest.approx(0.8, abs=1e-9)
    assert brute_power(n1, n2, p1 - 1e-4, p2, ref) < 0.8
    assert r.method == "power.mdd_exact_fisher" and r.extra["p1"] == pytest.approx(p1)
    low = minimum_detectable_difference(n1, n2, 0.6, alternative="less", test="boschloo")
    assert low.estimate < 0
    assert exact_power(n1, n2, 0.6 + low.estimate, 0.6, test="boschloo",
                       alternative="less").estimate == pytest.approx(0.8, abs=1e-9)
    none = minimum_detectable_difference(2, 2, 0.5, power=0.99)
    assert math.isnan(none.estimate) and "reaches power" in none.note


def test_sample_size_and_the_saw_tooth():
    r = sample_size(0.5, 0.1, power=0.8)
    ref = {n: brute_power(n, n, 0.5, 0.1, brute_region(n, n, fisher_p(n, n, "two-sided")))
           for n in (22, 23, 24, 25)}
    assert r.estimate == 23 and r.n == (23, 23)
    assert ref[22] < 0.8 <= ref[23]
    assert r.extra["power_at_n"] == pytest.approx(ref[23], abs=1e-12)
    assert r.extra["all_larger_reach_target"] and r.extra["stable_n"] == 23
    # exact power dips from n = 24 to n = 25 (scipy enumeration: 0.83417 > 0.83257)
    assert ref[24] > ref[25]
    target = (ref[24] + ref[25]) / 2
    saw = sample_size(0.5, 0.1, power=target)
    assert saw.estimate == 24
    assert not saw.extra["all_larger_reach_target"] and saw.extra["stable_n"] == 26
    assert "saw-tooth" in saw.note
    unequal = sample_size(0.5, 0.1, ratio=1.5)
    assert unequal.n[1] == math.ceil(1.5 * unequal.n[0])


def test_degenerate_and_invalid():
    r = exact_power(0, 5, 0.2, 0.5)
    assert math.isnan(r.estimate) and "empty" in r.note
    none = exact_power(2, 2, 0.9, 0.1)
    assert none.estimate == 0.0 and "no outcome" in none.note
    same = sample_size(0.3, 0.3)
    assert math.isnan(same.estimate) and "p1 == p2" in same.note
    wrong = sample_size(0.1, 0.3, alternative="greater")
    assert math.isnan(wrong.estimate)
    bad = [
        lambda: exact_power(5, 5, 1.2, 0.5),
        lambda: exact_power(5, 5, 0.2, 0.5, test="chisq"),
        lambda: exact_power(5, 5, 0.2, 0.5, confidence_level=1.0),
        lambda: exact_power(5.5, 5, 0.2, 0.5),
        lambda: exact_power(5, 5, 0.2, 0.5, alternative="one-sided"),
        lambda: sample_size(0.2, 0.5, power=1.0),
        lambda: sample_size(0.2, 0.5, ratio=0),
        lambda: minimum_detectable_difference(5, 5, -0.1),
    ]
    for call in bad:
        with pytest.raises(InvalidInputError):
            call()


def test_sample_size_for_certain_outcomes():
    """p1 = 1, p2 = 0: statsmodels' normal start is NaN (it used to crash a run with a
    ValueError). Outcomes are then certain, so the exact power is 1 from the smallest n at
    which n/n vs 0/n is significant: by scipy's Fisher test 4/4 vs 0/4 has p = 2/C(8,4) = 0.029
    and 3/3 vs 0/3 has p = 2/C(6,3) = 0.1, so n = 4."""
    assert fisher_exact([[4, 0], [0, 4]]).pvalue < 0.05 < fisher_exact([[3, 0], [0, 3]]).pvalue
    for p1, p2 in ((1.0, 0.0), (0.0, 1.0)):
        r = sample_size(p1, p2, power=0.8, test="fisher")
        assert r.n == (4, 4) and r.extra["power_at_n"] == pytest.approx(1.0)


def test_sample_size_near_certain_outcomes_warns_nothing():
    """Near the largest effect statsmodels' normal start fails with a numpy RuntimeWarning
    and a ConvergenceWarning (seen on degenerate extracts); the search starts from 20 instead,
    and nothing about that internal start reaches the user. The size is then the one of
    certain outcomes or close to it: 4/4 vs 0/4 is the smallest significant table (above)."""
    for p1, p2 in ((1.0, 0.0), (0.999, 0.001), (0.99, 0.0)):
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter("always")  # (as errors they would only take the fallback)
            r = sample_size(p1, p2, power=0.8, test="fisher")
        assert not shown, [str(w.message) for w in shown]
        assert r.extra["normal_approximation_n"] == 20.0 and r.n[0] in (4, 5), (p1, p2, r.n)
