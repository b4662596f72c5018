"""Exact power, minimum detectable difference and sample size for two independent binomials.

Power is computed by enumeration, not simulation: with X1 ~ Bin(n1, p1) and X2 ~ Bin(n2, p2)
independent, the power of a test is the probability of its rejection region,

    power = sum over tables (a, b) with p-value(a, b) < 1 - confidence_level
            of Bin(a; n1, p1) Bin(b; n2, p2),

the rejection region being found from the p-values of all (n1 + 1)(n2 + 1) tables at once
(:func:`natexp.causal.unconditional.pvalues_all_tables`). "Significance at
1 - confidence_level" means p-value < 1 - confidence_level.

Exact power is not monotone in the sample size (the saw-tooth of discrete tests; Chernick and
Liu 2002): :func:`sample_size` reports the smallest n with the target power and says whether
every larger n up to a bound also reaches it.

References
----------
Chernick MR, Liu CY (2002). The saw-toothed behavior of power versus sample size and software
solutions: single binomial proportion using exact methods. The American Statistician 56:149-155.
Suissa S, Shuster JJ (1985). Exact unconditional sample sizes for the 2x2 binomial trial.
JRSS A 148:317-327.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.optimize import brentq
from scipy.stats import binom

from natexp.causal._counts import as_count
from natexp.causal.result import InvalidInputError, Result
from natexp.causal.unconditional import (
    _check_alternative,
    _check_confidence_level,
    _sup_equal,
    pvalues_all_tables,
)

__all__ = ["design_effect", "exact_power", "icc_anova", "minimum_detectable_difference",
           "rejection_region", "sample_size"]

_TESTS = ("fisher", "boschloo", "barnard_pooled", "barnard_unpooled")
_LABELS = {
    "fisher": "Fisher's exact test",
    "boschloo": "Boschloo's exact unconditional test",
    "barnard_pooled": "Barnard's exact unconditional test (pooled Z)",
    "barnard_unpooled": "Barnard's exact unconditional test (unpooled Z)",
}


def _check_test(test: str) -> str:
    if test not in _TESTS:
        raise InvalidInputError(f"test must be one of {_TESTS}, got {test!r}")
    return test


def _check_prob(p: float, name: str) -> float:
    try:
        value = float(p)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a probability, got {p!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise InvalidInputError(f"{name} must be in [0, 1], got {value}")
    return value


def _check_power(power: float) -> float:
    value = _check_prob(power, "power")
    if not 0.0 < value < 1.0:
        raise InvalidInputError(f"power must be in (0, 1), got {value}")
    return value


def rejection_region(
    n1: int, n2: int, *, test: str = "fisher", confidence_level: float = 0.95,
    alternative: str = "two-sided",
) -> np.ndarray:
    """Tables (x1, x2) that ``test`` rejects at 1 - confidence_level (p-value < 1 - level).

    Parameters
    ----------
    n1, n2 : int
        Group sizes (at least 1).
    test : {"fisher", "boschloo", "barnard_pooled", "barnard_unpooled"}
    confidence_level : float, default 0.95
    alternative : {"two-sided", "less", "greater"}

    Returns
    -------
    numpy.ndarray of bool
        Shape ``(n1 + 1, n2 + 1)``; ``[a, b]`` is True when a/n1 vs b/n2 is significant.

    Examples
    --------
    >>> r = rejection_region(3, 3)
    >>> bool(r[3, 0]), int(r.sum())      # 3/3 vs 0/3: Fisher two-sided p = 0.1
    (False, 0)
    """
    n1, n2 = as_count(n1, "n1"), as_count(n2, "n2")
    alpha = 1.0 - _check_confidence_level(confidence_level)
    _check_test(test)
    _check_alternative(alternative)
    if test == "fisher" and alternative == "two-sided":
        from natexp.causal.unconditional import _fisher_two_sided_rejects

        return _fisher_two_sided_rejects(n1, n2, alpha)  # == pvalues_all_tables(...) < alpha
    pv = pvalues_all_tables(
        n1, n2, test=test, alternative=alternative, refine_band=(0.5 * alpha, alpha)
    )
    return pv < alpha


def _power_of(region: np.ndarray, n1: int, n2: int, p1: float, p2: float) -> float:
    b1 = binom.pmf(np.arange(n1 + 1), n1, p1)
    b2 = binom.pmf(np.arange(n2 + 1), n2, p2)
    return float(min(b1 @ region.astype(float) @ b2, 1.0))


def exact_power(
    n1, n2, p1, p2, *, test: str = "fisher", confidence_level: float = 0.95,
    alternative: str = "two-sided",
) -> Result:
    """Exact power of a 2x2 test by enumeration of every outcome (x1, x2).

    Parameters
    ----------
    n1, n2 : int
        Group sizes (treated, control).
    p1, p2 : float
        True risks in the two groups.
    test : {"fisher", "boschloo", "barnard_pooled", "barnard_unpooled"}
        Fisher's exact test (as ``scipy.stats.fisher_exact``), Boschloo's or Barnard's test
        (as :func:`natexp.causal.unconditional.boschloo` / ``barnard``).
    confidence_level : float, default 0.95
        Significance at 1 - confidence_level: a table is rejected when its p-value is
        below 1 - confidence_level.
    alternative : {"two-sided", "less", "greater"}

    Returns
    -------
    Result
        ``method`` "power.exact_<test>"; ``estimate`` the power; ``n`` (n1, n2); ``extra``:
        p1, p2, the significance level, ``size`` (the test's actual type I error: the supremum
        over a common risk of the probability of rejection) and the number of rejected tables.

    Raises
    ------
    InvalidInputError
        On invalid sizes, probabilities, test, level or alternative.

    Examples
    --------
    One-sided Fisher test, 1% vs 5%, 80 per group (Mathews' Minitab macro fisherspower returns
    0.211135):

    >>> r = exact_power(80, 80, 0.01, 0.05, alternative="less")
    >>> round(r.estimate, 6)
    0.211135
    """
    n1, n2 = as_count(n1, "n1"), as_count(n2, "n2")
    p1, p2 = _check_prob(p1, "p1"), _check_prob(p2, "p2")
    cl = _check_confidence_level(confidence_level)
    _check_test(test)
    _check_alternative(alternative)
    method, label = f"power.exact_{test}", f"Exact power of {_LABELS[test]}"
    extra = {"p1": p1, "p2": p2, "significance": 1.0 - cl, "confidence_level": cl}
    if n1 == 0 or n2 == 0:
        return Result(method=method, alternative=alternative, n=(n1, n2), label=label,
                      note="a group is empty (n = 0): no test, power undefined", extra=extra)
    region = rejection_region(n1, n2, test=test, confidence_level=cl, alternative=alternative)
    power = _power_of(region, n1, n2, p1, p2)
    size = _sup_equal(region, n1, n2)[0] if region.any() else 0.0
    note = "" if region.any() else "no outcome is significant at this level: the power is 0"
    return Result(
        method=method, estimate=power, alternative=alternative, n=(n1, n2), label=label,
        note=note, extra={**extra, "size": size, "tables_rejected": int(region.sum())},
    )


def minimum_detectable_difference(
    n1, n2, p2, *, power: float = 0.8, test: str = "fisher", confidence_level: float = 0.95,
    alternative: str = "two-sided",
) -> Result:
    """Smallest risk difference p1 - p2 that ``test`` detects with at least ``power``.

    The rejection region is fixed by (n1, n2, test, level); exact power is then a continuous
    function of p1 and the first p1 beyond p2 at which it reaches ``power`` is found by a grid
    scan and root finding (``scipy.optimize.brentq``).

    Parameters
    ----------
    n1, n2 : int
        Group sizes (treated, control).
    p2 : float
        Control risk.
    power : float, default 0.8
    test : {"fisher", "boschloo", "barnard_pooled", "barnard_unpooled"}
    confidence_level : float, default 0.95
        Significance at 1 - confidence_level.
    alternative : {"two-sided", "less", "greater"}
        "two-sided" and "greater" search p1 > p2 (the estimate is positive); "less" searches
        p1 < p2 (the estimate is negative).

    Returns
    -------
    Result
        ``method`` "power.mdd_exact_<test>"; ``estimate`` the difference p1 - p2 (NaN with a note
        when no p1 reaches the power); ``extra`` p1, p2 and the power reached.

    Examples
    --------
    >>> r = minimum_detectable_difference(20, 15, 0.1)
    >>> 0.4 < r.estimate < 0.6
    True
    """
    n1, n2 = as_count(n1, "n1"), as_count(n2, "n2")
    p2 = _check_prob(p2, "p2")
    target = _check_power(power)
    cl = _check_confidence_level(confidence_level)
    _check_test(test)
    _check_alternative(alternative)
    method = f"power.mdd_exact_{test}"
    label = f"Minimum detectable difference, {_LABELS[test]} (exact power)"
    extra = {"p2": p2, "power": target, "significance": 1.0 - cl, "confidence_level": cl}
    if n1 == 0 or n2 == 0:
        return Result(method=method, alternative=alternative, n=(n1, n2), label=label,
                      note="a group is empty (n = 0): nothing is detectable", extra=extra)
    region = rejection_region(n1, n2, test=test, confidence_level=cl, alternative=alternative)
    r = region.astype(float) @ binom.pmf(np.arange(n2 + 1), n2, p2)
    a = np.arange(n1 + 1)

    def pw(p1: float) -> float:
        return float(binom.pmf(a, n1, p1) @ r)

    downward = alternative == "less"
    end = 0.0 if downward else 1.0
    grid = p2 + (end - p2) * np.linspace(0.0, 1.0, 401)
    vals = binom.pmf(a[None, :], n1, grid[:, None]) @ r
    hit = np.flatnonzero(vals >= target)
    if hit.size == 0:
        return Result(
            method=method, alternative=alternative, n=(n1, n2), label=label,
            note=f"no risk p1 in the direction tested reaches power {target:g} with these "
                 f"sample sizes (largest power {float(vals.max()):.3g})",
            extra={**extra, "max_power": float(vals.max())},
        )
    k = int(hit[0])
    if k == 0:
        p1 = p2
    else:
        p1 = brentq(lambda q: pw(q) - target, grid[k - 1], grid[k], xtol=1e-12)
    return Result(
        method=method, estimate=p1 - p2, alternative=alternative, n=(n1, n2), label=label,
        extra={**extra, "p1": p1, "power_reached": pw(p1)},
    )


def _normal_start(p1: float, p2: float, power: float, alpha: float, ratio: float,
                  alternative: str) -> float:
    """Normal-approximation n1 (arcsine effect size) from statsmodels, as a starting point."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    es = proportion_effectsize(p1, p2)
    alt = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}[alternative]
    try:
        # Near the largest possible effect statsmodels' root finder tries negative sizes (numpy
        # warns of sqrt) and gives up (ConvergenceWarning, NaN): handled below, so silenced
        # rather than shown to the user about a starting point.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            n = NormalIndPower().solve_power(effect_size=es, alpha=alpha, power=power,
                                             ratio=ratio, alternative=alt)
        n = float(np.atleast_1d(n)[0])
    except Exception:  # statsmodels' root finder can fail for extreme inputs
        return 20.0
    # ... or return NaN (p1 = 1 and p2 = 0: an arcsine effect size of pi).
    return n if math.isfinite(n) else 20.0


def sample_size(
    p1, p2, *, power: float = 0.8, test: str = "fisher", confidence_level: float = 0.95,
    ratio: float = 1.0, alternative: str = "two-sided", max_n: int = 2000,
) -> Result:
    """Smallest group size n1 (n2 = ceil(ratio * n1)) whose exact power reaches ``power``.

    Exact power saw-tooths in n. The search starts from the normal-approximation size
    (statsmodels ``NormalIndPower``), steps down until the exact power is clearly (0.05) below
    the target, then steps up one n at a time; the smallest n reaching the target is the
    estimate. It then checks every n up to ``n + max(5, n // 10)`` and reports in ``extra``
    whether all of them reach the target too and the smallest n from which they all do
    (``stable_n``), as Chernick and Liu (2002) recommend. Each step is one exact power
    calculation: seconds in all for Fisher's test; for Boschloo's test about 5 s at 80 per arm
    (20-30 steps) and minutes at several hundred per arm.

    Parameters
    ----------
    p1, p2 : float
        Anticipated risks (treated, control).
    power : float, default 0.8
    test : {"fisher", "boschloo", "barnard_pooled", "barnard_unpooled"}
    confidence_level : float, default 0.95
        Significance at 1 - confidence_level.
    ratio : float, default 1.0
        n2 / n1.
    alternative : {"two-sided", "less", "greater"}
    max_n : int, default 2000
        Largest n1 tried.

    Returns
    -------
    Result
        ``method`` "power.sample_size_exact_<test>"; ``estimate`` n1; ``n`` (n1, n2); ``extra``
        the exact power at n1, ``stable_n``, ``all_larger_reach_target`` (up to the checked
        bound), the bound, the normal-approximation n1 and the powers computed.

    Examples
    --------
    >>> r = sample_size(0.5, 0.1, power=0.8)
    >>> r.n, round(r.extra["power_at_n"], 3) >= 0.8
    ((23, 23), True)
    """
    p1, p2 = _check_prob(p1, "p1"), _check_prob(p2, "p2")
    target = _check_power(power)
    cl = _check_confidence_level(confidence_level)
    _check_test(test)
    _check_alternative(alternative)
    try:
        ratio = float(ratio)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"ratio must be a positive number, got {ratio!r}") from exc
    if not (ratio > 0.0 and math.isfinite(ratio)):
        raise InvalidInputError(f"ratio must be positive and finite, got {ratio}")
    max_n = as_count(max_n, "max_n")
    alpha = 1.0 - cl
    method = f"power.sample_size_exact_{test}"
    label = f"Sample size for {_LABELS[test]} (exact power)"
    extra: dict = {"p1": p1, "p2": p2, "target_power": target, "ratio": ratio,
                   "significance": alpha, "confidence_level": cl}
    wrong_way = (alternative == "greater" and p1 <= p2) or (alternative == "less" and p1 >= p2)
    if p1 == p2 or wrong_way:
        why = "p1 == p2" if p1 == p2 else f"p1 {'<=' if alternative == 'greater' else '>='} p2"
        return Result(method=method, alternative=alternative, label=label, extra=extra,
                      note=f"{why}: the power cannot exceed the test's size; no sample size")

    def n2_of(n1: int) -> int:
        return max(1, math.ceil(ratio * n1 - 1e-9))

    cache: dict[int, float] = {}

    def pw(n1: int) -> float:
        if n1 not in cache:
            n2 = n2_of(n1)
            region = rejection_region(n1, n2, test=test, confidence_level=cl,
                                      alternative=alternative)
            cache[n1] = _power_of(region, n1, n2, p1, p2)
        return cache[n1]

    n_normal = _normal_start(p1, p2, target, alpha, ratio, alternative)
    n = int(min(max(2, math.ceil(n_normal)), max_n))
    while n > 1 and pw(n) >= target - 0.05:
        n = max(1, int(n * 0.85))
    # Gallop up in steps of about 2% of n, then search the last step one by one: the first n
    # that reaches the target is the same as a one-by-one scan finds unless power rises above
    # the target and falls back within one step (the saw-tooth check below looks past it).
    step = max(1, n // 50)
    while n + step <= max_n and pw(n + step) < target:
        n += step
    while n <= max_n and pw(n) < target:
        n += 1
    if n > max_n:
        return Result(method=method, alternative=alternative, label=label,
                      note=f"no n1 <= max_n = {max_n} reaches power {target:g}",
                      extra={**extra, "normal_approximation_n": n_normal})
    n_min = n
    bound = n_min + max(5, n_min // 10)
    ok = [pw(k) >= target for k in range(n_min, bound + 1)]
    stable = n_min
    for k, good in zip(range(n_min, bound + 1), ok, strict=True):
        if not good:
            stable = k + 1
    note = ""
    if not all(ok):
        note = (f"exact power saw-tooths: n1 = {n_min} reaches the target but some larger n1 do "
                f"not; every n1 from {stable} to {bound} does")
    return Result(
        method=method, estimate=float(n_min), alternative=alternative,
        n=(n_min, n2_of(n_min)), label=label, note=note,
        extra={**extra, "power_at_n": pw(n_min), "stable_n": stable,
               "all_larger_reach_target": all(ok), "checked_up_to": bound,
               "normal_approximation_n": n_normal,
               "powers": {str(k): v for k, v in sorted(cache.items())}},
    )


# --------------------------------------------------------------------------------------------
# clustering: intra-cluster correlation and design effect


def icc_anova(y, cluster) -> Result:
    """One-way ANOVA estimate of the intra-cluster correlation of an outcome.

    With ``k`` clusters of sizes ``n_i`` (``N`` in all), between- and within-cluster mean
    squares ``MSB`` and ``MSW`` and the adjusted mean cluster size
    ``n0 = (N - sum n_i^2 / N) / (k - 1)``::

        ICC = (MSB - MSW) / (MSB + (n0 - 1) MSW)

    (Donner 1986; for a 0/1 outcome this is the ANOVA estimator recommended by Ridout, Demetrio
    and Firth 1999). A negative estimate is reported as is in ``extra["icc_raw"]`` and
    truncated at 0 in ``estimate``. With balanced clusters it is ICC(1) of Shrout and Fleiss
    (1979).

    Parameters
    ----------
    y : array of float
        Outcome (0/1 for a binary outcome).
    cluster : array
        Cluster label of each observation.

    Returns
    -------
    Result
        ``method`` "icc.anova"; ``estimate`` the ICC (>= 0); ``statistic`` the F ratio
        ``MSB / MSW``; ``extra``: ``icc_raw``, ``msb``, ``msw``, ``n0``, ``k``, ``n``,
        ``mean_size``, ``cv_size`` (coefficient of variation of the cluster sizes).

    Examples
    --------
    >>> r = icc_anova([1, 1, 0, 0, 1, 0], ["a", "a", "b", "b", "c", "c"])
    >>> round(r.estimate, 4), r.extra["k"]
    (0.5, 3)
    """
    yv = np.asarray(y, dtype=float).ravel()
    cl = np.asarray(cluster).ravel()
    if yv.shape != cl.shape:
        raise InvalidInputError("y and cluster must have the same length")
    labels, inv = np.unique(cl, return_inverse=True)
    k, n = labels.size, yv.size
    sizes = np.bincount(inv, minlength=k).astype(float)
    method, label = "icc.anova", "Intra-cluster correlation (one-way ANOVA)"
    if k < 2 or n - k < 1:
        return Result(method=method, label=label, n=(n,),
                      note="needs at least two clusters and one cluster with two members",
                      extra={"k": int(k), "n": int(n)})
    means = np.bincount(inv, weights=yv, minlength=k) / sizes
    grand = yv.mean()
    msb = float(np.sum(sizes * (means - grand) ** 2) / (k - 1))
    msw = float(np.sum((yv - means[inv]) ** 2) / (n - k))
    n0 = float((n - np.sum(sizes ** 2) / n) / (k - 1))
    denom = msb + (n0 - 1) * msw
    raw = (msb - msw) / denom if denom > 0 else math.nan
    f = msb / msw if msw > 0 else math.nan
    mean_size = float(sizes.mean())
    cv = float(sizes.std() / mean_size)
    note = "" if math.isnan(raw) else (
        f"the ANOVA estimate is negative ({raw:.3g}): reported as 0" if raw < 0 else "")
    return Result(method=method, estimate=max(raw, 0.0) if not math.isnan(raw) else raw,
                  statistic=f, n=(int(n),), label=label, note=note,
                  extra={"icc_raw": raw, "msb": msb, "msw": msw, "n0": n0, "k": int(k),
                         "n": int(n), "mean_size": mean_size, "cv_size": cv})


def design_effect(icc: float, mean_size: float, cv_size: float = 0.0) -> float:
    """Design effect of cluster sampling: ``1 + ((cv^2 + 1) m - 1) ICC``.

    With equal cluster sizes ``m`` (``cv_size = 0``) this is Kish's ``1 + (m - 1) ICC``; with
    unequal sizes of mean ``m`` and coefficient of variation ``cv``, the formula of Eldridge,
    Ashby and Kerry (2006). Divide a sample size by it for the effective sample size; multiply
    an individually-randomized sample size by it for a cluster design.

    Parameters
    ----------
    icc : float
        Intra-cluster correlation, in [0, 1].
    mean_size : float
        Mean cluster size (>= 1).
    cv_size : float, default 0
        Coefficient of variation of the cluster sizes.

    Returns
    -------
    float

    Examples
    --------
    Kish (1965): clusters of 20 with ICC 0.05.

    >>> round(design_effect(0.05, 20), 10)
    1.95
    """
    try:
        rho, m, cv = float(icc), float(mean_size), float(cv_size)
    except (TypeError, ValueError):
        raise InvalidInputError("icc, mean_size and cv_size must be numbers") from None
    if not (0 <= rho <= 1) or m < 1 or cv < 0:
        raise InvalidInputError("need 0 <= icc <= 1, mean_size >= 1, cv_size >= 0")
    return 1 + ((cv ** 2 + 1) * m - 1) * rho
