"""The 2x2 panel: effect measures, classical and Fisher-family tests, and their intervals.

Two independent binomial groups: treated (``x1`` events out of ``n1``) and control (``x2`` out
of ``n2``). :func:`compare_groups` returns a :class:`TwoByTwo` holding the counts, the risks,
every interval (:mod:`natexp.causal.intervals`), every test below, the attributable fraction
among the treated and the number needed to treat, each as an immutable
:class:`~natexp.causal.result.Result`; it is the engine of ``python -m natexp table``, an
epitab-style panel like Stata's ``csi``.

Direction: ``alternative="greater"`` means the treated risk is larger (RD > 0, RR > 1,
OR > 1), as in ``scipy.stats.fisher_exact`` applied to ``[[x1, n1 - x1], [x2, n2 - x2]]``.

Tests (stable method names):

- ``test.pearson`` / ``test.pearson_yates`` / ``test.likelihood_ratio``: scipy's
  ``chi2_contingency``; one-sided versions use the signed square root ``z`` of the statistic
  (sign of ``p1 - p2``) referred to the standard normal.
- ``test.fisher_minlike``: scipy's ``fisher_exact`` (two-sided: sum of the probabilities of
  all tables no more probable than the observed one, as R's ``fisher.test``).
- ``test.fisher_central``: twice the smaller one-sided Fisher p-value, capped at 1.
- ``test.fisher_midp``: twice the smaller one-sided mid-p value (``P(X < x) + P(X = x) / 2``),
  as R ``exact2x2(tsmethod="central", midp=TRUE)``. Fagerland et al.'s (2017) minimum-likelihood
  mid-p is reported in ``extra["pvalue_minlike_midp"]``.
- ``test.barnard_pooled``, ``test.barnard_unpooled``, ``test.boschloo``: exact unconditional
  tests from :mod:`natexp.causal.unconditional`.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy.stats import chi2, norm

from natexp.causal._counts import check_two_binomials
from natexp.causal.intervals import (
    _TIE_RTOL,
    ODDS_RATIO_METHODS,
    RISK_DIFFERENCE_METHODS,
    RISK_RATIO_METHODS,
    _Conditional,
    check_alternative,
    check_confidence_level,
    check_level_for,
    odds_ratio_ci,
    risk_difference_ci,
    risk_ratio_ci,
)
from natexp.causal.result import InvalidInputError, Result

__all__ = [
    "TEST_METHODS",
    "TwoByTwo",
    "compare_groups",
    "excludes_null",
    "fisher_test",
    "likelihood_ratio_test",
    "matching_pairs",
    "pearson_test",
]

TEST_METHODS = (
    "pearson", "pearson_yates", "likelihood_ratio", "fisher_minlike", "fisher_central",
    "fisher_midp", "barnard_pooled", "barnard_unpooled", "boschloo",
)
_UNCONDITIONAL_TESTS = ("barnard_pooled", "barnard_unpooled", "boschloo")
JSON_KEYS = ("recommended", "counts", "confidence_level", "alternative", "risks", "arm_risks",
             "risk_difference", "risk_ratio", "odds_ratio", "test", "attributable_fraction",
             "population_attributable_fraction", "nnt", "notes")

#: The interval definition of the attributable fraction among the treated.
AF_INTERVAL = ("(RR - 1) / RR applied to the limits of a risk-ratio interval, as Stata csi "
               "('Attr. frac. ex.') and epiR epi.2by2 ('AFest') define it; natexp applies it to "
               "the Koopman score risk-ratio interval")
#: The definition of the population attributable fraction.
PAF_DEFINITION = ("(risk overall - risk control) / risk overall, taking the sample's share of "
                  "treated as the population's (Stata csi 'Attr. frac. pop'; epiR epi.2by2 "
                  "'PAFest'); no interval")

_SMALL_EXPECTED = 5.0


def _validate(x1, n1, x2, n2, alternative):
    x1, n1, x2, n2 = check_two_binomials(x1, n1, x2, n2)
    return x1, n1, x2, n2, check_alternative(alternative)


def _table(x1, n1, x2, n2) -> np.ndarray:
    return np.array([[x1, n1 - x1], [x2, n2 - x2]], dtype=np.int64)


def _zero_margin(x1, n1, x2, n2) -> str:
    m, big_n = x1 + x2, n1 + n2
    if big_n == 0:
        return "the table is empty"
    if n1 == 0 or n2 == 0:
        return f"the {'treated' if n1 == 0 else 'control'} group has no observations"
    if m == 0:
        return "no events in either group"
    if m == big_n:
        return "every observation is an event"
    return ""


# ---------------------------------------------------------------------- asymptotic tests
def _signed_root_p(stat: float, sign: float, alternative: str) -> tuple[float, float]:
    """(statistic, p) for a 1-df chi-squared statistic: two-sided, or signed root z."""
    if alternative == "two-sided":
        return stat, float(chi2.sf(stat, 1))
    z = math.copysign(math.sqrt(max(stat, 0.0)), sign) if sign != 0 else 0.0
    p = norm.sf(z) if alternative == "greater" else norm.cdf(z)
    return z, float(p)


def _asymptotic_test(x1, n1, x2, n2, alternative, *, kind: str) -> Result:
    from scipy.stats import chi2_contingency

    method = {"pearson": "test.pearson", "yates": "test.pearson_yates",
              "lr": "test.likelihood_ratio"}[kind]
    base = {"pearson": "Pearson chi-squared test",
            "yates": "Pearson chi-squared test with Yates' continuity correction",
            "lr": "Likelihood-ratio (G) test"}[kind]
    one_sided = alternative != "two-sided"
    label = base + (" (one-sided: signed square root z, standard normal)" if one_sided else "")
    degenerate = _zero_margin(x1, n1, x2, n2)
    if degenerate:
        return Result(
            method=method, alternative=alternative, n=(n1, n2), label=label,
            note=f"{degenerate}: an expected count is 0, so the statistic is 0/0 (undefined)",
        )
    table = _table(x1, n1, x2, n2)
    if kind == "lr":
        res = chi2_contingency(table, correction=False, lambda_="log-likelihood")
    else:
        res = chi2_contingency(table, correction=(kind == "yates"))
    expected = np.asarray(res.expected_freq, dtype=float)
    sign = float(np.sign(x1 * (n2 - x2) - x2 * (n1 - x1)))
    stat, p = _signed_root_p(float(res.statistic), sign, alternative)
    diagnostics = []
    small = int((expected < _SMALL_EXPECTED).sum())
    if small:
        diagnostics.append(
            f"{small} of 4 expected counts are below {_SMALL_EXPECTED:g} (smallest "
            f"{expected.min():.3g}): the chi-squared approximation may be poor; prefer an exact "
            "test: test.fisher_midp (Fisher mid-p) or test.boschloo (Boschloo)"
        )
    extra = {"chi2": float(res.statistic), "dof": 1,
             "expected": expected.tolist(), "min_expected": float(expected.min())}
    if one_sided:
        extra["statistic_name"] = "z (signed square root of the chi-squared statistic)"
    return Result(
        method=method, statistic=stat, pvalue=p, alternative=alternative, n=(n1, n2),
        label=label, diagnostics=tuple(diagnostics), extra=extra,
    )


def pearson_test(x1, n1, x2, n2, *, correction: bool = False,
                 alternative: str = "two-sided") -> Result:
    """Pearson's chi-squared test of equal risks, with or without Yates' correction.

    Calls ``scipy.stats.chi2_contingency``. One-sided alternatives use the signed square root
    of the statistic, ``z``, referred to the standard normal (``"greater"``: treated risk
    larger). A diagnostic is attached when any expected count is below 5.

    Parameters
    ----------
    x1, n1, x2, n2 : int
        Events and sizes of the treated and control groups.
    correction : bool
        Apply Yates' continuity correction (method ``test.pearson_yates``).
    alternative : {"two-sided", "less", "greater"}

    Returns
    -------
    Result
        ``statistic`` is chi-squared (two-sided) or ``z`` (one-sided).

    Examples
    --------
    >>> r = pearson_test(3, 4, 1, 4)
    >>> round(r.statistic, 3), round(r.pvalue, 5)
    (2.0, 0.1573)
    """
    x1, n1, x2, n2, alternative = _validate(x1, n1, x2, n2, alternative)
    return _asymptotic_test(x1, n1, x2, n2, alternative, kind="yates" if correction else "pearson")


def likelihood_ratio_test(x1, n1, x2, n2, *, alternative: str = "two-sided") -> Result:
    """Likelihood-ratio (G) test of equal risks (``chi2_contingency(lambda_="log-likelihood")``).

    Parameters
    ----------
    x1, n1, x2, n2 : int
        Events and sizes of the treated and control groups.
    alternative : {"two-sided", "less", "greater"}
        One-sided: signed square root of G against the standard normal.

    Returns
    -------
    Result

    Examples
    --------
    >>> r = likelihood_ratio_test(3, 4, 1, 4)
    >>> round(r.statistic, 3), round(r.pvalue, 5)
    (2.093, 0.14798)
    """
    x1, n1, x2, n2, alternative = _validate(x1, n1, x2, n2, alternative)
    return _asymptotic_test(x1, n1, x2, n2, alternative, kind="lr")


# --------------------------------------------------------------------------- exact tests
_FISHER_LABELS = {
    "minlike": "Fisher's exact test (two-sided: minimum likelihood, as R fisher.test)",
    "central": "Fisher's exact test (two-sided: central, twice the smaller one-sided p)",
    "midp": "Fisher's mid-p test (two-sided: central, twice the smaller one-sided mid-p)",
}


def _minlike_midp(h: _Conditional) -> float:
    # Fagerland, Lydersen & Laake (2017) Fisher mid-P: tables less probable than the observed
    # one, plus half the tables as probable (ties within the relative tolerance of fisher.test).
    p = h.pmf(0.0)
    pobs = p[h.ix]
    less = p < pobs * (1.0 - _TIE_RTOL)
    tie = ~less & (p <= pobs * (1.0 + _TIE_RTOL))
    return float(min(1.0, p[less].sum() + 0.5 * p[tie].sum()))


def fisher_test(x1, n1, x2, n2, *, method: str = "minlike",
                alternative: str = "two-sided") -> Result:
    """Fisher's exact conditional test, two-sided by minimum likelihood, central, or mid-p.

    ``minlike`` and the one-sided p-values come from ``scipy.stats.fisher_exact``;
    ``central`` doubles the smaller one-sided p-value (capped at 1); ``midp`` doubles the
    smaller one-sided mid-p value. The mid-p test is written here because scipy has no mid-p
    Fisher test. One-sided, ``minlike`` and ``central`` coincide.

    Parameters
    ----------
    x1, n1, x2, n2 : int
        Events and sizes of the treated and control groups.
    method : {"minlike", "central", "midp"}
    alternative : {"two-sided", "less", "greater"}
        ``"greater"``: the treated group has the larger odds of an event.

    Returns
    -------
    Result
        ``statistic`` is ``x1``, the conditional test statistic (events among the treated,
        given the margins); ``extra`` holds the probability of the observed table.

    Examples
    --------
    >>> round(fisher_test(6, 18, 12, 17).pvalue, 5)
    0.04371
    >>> round(fisher_test(6, 18, 12, 17, method="central").pvalue, 5)
    0.06059
    """
    x1, n1, x2, n2, alternative = _validate(x1, n1, x2, n2, alternative)
    if method not in _FISHER_LABELS:
        raise InvalidInputError(f"method must be minlike, central or midp, got {method!r}")
    name = f"test.fisher_{method}"
    label = _FISHER_LABELS[method]
    if alternative != "two-sided":
        label = label.split(" (two-sided")[0] + f" (one-sided, {alternative})"
    degenerate = _zero_margin(x1, n1, x2, n2)
    if degenerate:
        return Result(
            method=name, statistic=float(x1), pvalue=1.0, alternative=alternative, n=(n1, n2),
            label=label,
            note=f"{degenerate}: only one table has these margins, so p = 1 (no information)",
        )
    h = _Conditional(x1, n1, x2, n2)
    lt, eq, gt = h.tails(0.0)
    extra: dict[str, Any] = {
        "statistic_name": "x1: events among the treated, conditional on the margins",
        "point_probability": eq,
    }
    note = ""
    if method == "midp":
        p_less, p_greater = lt + 0.5 * eq, gt + 0.5 * eq
        if alternative == "two-sided":
            p = min(1.0, 2.0 * min(p_less, p_greater))
            extra["pvalue_minlike_midp"] = _minlike_midp(h)
        else:
            p = p_less if alternative == "less" else p_greater
    else:
        from scipy.stats import fisher_exact

        table = _table(x1, n1, x2, n2)
        if alternative != "two-sided":
            p = float(fisher_exact(table, alternative=alternative).pvalue)
            note = "one-sided: the minlike and central versions coincide"
        elif method == "minlike":
            p = float(fisher_exact(table).pvalue)
        else:
            p_less = float(fisher_exact(table, alternative="less").pvalue)
            p_greater = float(fisher_exact(table, alternative="greater").pvalue)
            p = min(1.0, 2.0 * min(p_less, p_greater))
    return Result(method=name, statistic=float(x1), pvalue=p, alternative=alternative,
                  n=(n1, n2), label=label, note=note, extra=extra)


# ----------------------------------------------------------------------- test/CI matching
def matching_pairs() -> tuple[tuple[str, str], ...]:
    """Pairs (test, interval) where the interval inverts the test at the null.

    For each pair, with ``alpha = 1 - confidence_level``, the two-sided p-value at the null
    (RD = 0, RR = 1, OR = 1) is below ``alpha`` exactly when the interval excludes the null.

    Caveat for ``fisher_minlike``/``baptista_pike``: inverting the minimum-likelihood test can
    give a confidence *set* with holes (Fay 2010; R exact2x2 ``?exact2x2``, example 2). The
    equivalence holds exactly for the set (``extra["confidence_set"]`` of the interval
    Result); the reported interval is its hull, as in Baptista & Pike (1977) and exact2x2, so
    "interval excludes 1" implies "p < alpha" but a null inside a hole is rejected by the test
    while lying inside the hull. The last two pairs belong to
    :mod:`natexp.causal.unconditional` and are verified there.

    Returns
    -------
    tuple of (str, str)

    Examples
    --------
    >>> matching_pairs()[0]
    ('test.fisher_central', 'odds_ratio.cornfield_exact')
    """
    return (
        ("test.fisher_central", "odds_ratio.cornfield_exact"),
        ("test.fisher_midp", "odds_ratio.cornfield_midp"),
        ("test.fisher_minlike", "odds_ratio.baptista_pike"),
        ("test.barnard_pooled", "risk_difference.exact_unconditional"),
        ("test.barnard_pooled", "risk_ratio.exact_unconditional"),
        ("test.barnard_pooled", "odds_ratio.exact_unconditional"),
    )


def excludes_null(result: Result) -> bool:
    """Whether an interval Result excludes the null (0 for a difference, 1 for a ratio).

    Examples
    --------
    >>> excludes_null(Result(method="odds_ratio.woolf", ci=(1.2, 3.0)))
    True
    """
    null = 0.0 if result.method.startswith("risk_difference") else 1.0
    low, high = result.ci
    return bool(low > null or high < null)


# -------------------------------------------------------------------------- the panel
def _placeholder(method: str, n, alternative: str, note: str) -> Result:
    return Result(method=method, alternative=alternative, n=n, note=note)


def _uc_interval(uc, x1, n1, x2, n2, measure, cl, alternative) -> Result:
    """Exact unconditional RD/RR interval; one-sided = one side of the central interval.

    The central inversion at level ``2 cl - 1`` inverts two one-sided score tests at
    ``1 - cl`` each, so each of its bounds is the one-sided exact unconditional bound at ``cl``.
    """
    if alternative == "two-sided":
        return uc.exact_unconditional_ci(x1, n1, x2, n2, measure=measure, confidence_level=cl)
    res = uc.exact_unconditional_ci(x1, n1, x2, n2, measure=measure,
                                    confidence_level=2.0 * cl - 1.0, inversion="central")
    lower_end, upper_end = (-1.0, 1.0) if measure == "rd" else (0.0, math.inf)
    base = {"rd": "risk_difference", "rr": "risk_ratio", "or": "odds_ratio"}[measure]
    ci = (res.ci_low, upper_end) if alternative == "greater" else (lower_end, res.ci_high)
    note = "; ".join(filter(None, [
        f"one-sided: bound of the central exact unconditional interval at level {2 * cl - 1:g}",
        res.note]))
    return replace(res, method=f"{base}.exact_unconditional", ci=ci, confidence_level=cl, alternative=alternative,
                   statistic=math.nan, pvalue=math.nan, note=note)


def _unconditional(x1, n1, x2, n2, cl, alternative, include: bool) -> dict[str, Result]:
    names = {
        "test.barnard_pooled": None, "test.barnard_unpooled": None, "test.boschloo": None,
        "risk_difference.exact_unconditional": None, "risk_ratio.exact_unconditional": None,
        "odds_ratio.exact_unconditional": None,
    }
    n = (n1, n2)
    if not include:
        return {k: _placeholder(k, n, alternative, "not computed (include_unconditional=False)")
                for k in names}
    from natexp.causal import unconditional as uc

    calls = {
        "test.barnard_pooled": lambda: uc.barnard(x1, n1, x2, n2, pooled=True,
                                                  alternative=alternative),
        "test.barnard_unpooled": lambda: uc.barnard(x1, n1, x2, n2, pooled=False,
                                                    alternative=alternative),
        "test.boschloo": lambda: uc.boschloo(x1, n1, x2, n2, alternative=alternative),
        "risk_difference.exact_unconditional": lambda: _uc_interval(
            uc, x1, n1, x2, n2, "rd", cl, alternative),
        "risk_ratio.exact_unconditional": lambda: _uc_interval(
            uc, x1, n1, x2, n2, "rr", cl, alternative),
        "odds_ratio.exact_unconditional": lambda: _uc_interval(
            uc, x1, n1, x2, n2, "or", cl, alternative),
    }
    out = {}
    for name, call in calls.items():
        try:
            res = call()
        except InvalidInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - one failing method must not sink the panel
            res = _placeholder(name, n, alternative,
                               f"natexp.causal.unconditional failed: {type(exc).__name__}: {exc}")
        out[name] = res
    return out


def _attributable_fraction(rr: Result) -> Result:
    def af(r: float) -> float:
        if math.isnan(r):
            return math.nan
        if r == 0:
            return -math.inf
        return 1.0 - 1.0 / r  # 1 when r is inf

    est = af(rr.estimate)
    ci = (af(rr.ci_low), af(rr.ci_high))
    notes, extra = [], {"based_on": rr.method}
    if rr.note:
        notes.append(f"from {rr.method}: {rr.note}")
    if not math.isnan(rr.estimate) and rr.estimate < 1:
        pf = 1.0 - rr.estimate
        extra["preventive_fraction"] = pf
        notes.append(f"RR < 1: the attributable fraction is negative; the preventive fraction "
                     f"1 - RR is {pf:.4g}")
    return Result(
        method="attributable_fraction.exposed", estimate=est, ci=ci,
        confidence_level=rr.confidence_level, alternative=rr.alternative, n=rr.n,
        label="Attributable fraction among the treated, (RR - 1) / RR, interval from the "
              "Koopman risk-ratio interval",
        note="; ".join(notes), extra=extra,
    )


def _nnt(rd: Result, event_is_benefit: bool) -> Result:
    sign = 1.0 if event_is_benefit else -1.0
    d = sign * rd.estimate
    lo, hi = sorted((sign * rd.ci_low, sign * rd.ci_high))
    label = ("Number needed to treat, 1 / RD (positive: NNT to benefit, NNTB; negative: NNT to "
             "harm, NNTH), interval from the Newcombe risk-difference interval (Altman 1998)")
    extra: dict[str, Any] = {"based_on": rd.method, "event_is_benefit": event_is_benefit}
    notes = []
    if math.isnan(d):
        return Result(method="nnt", n=rd.n, alternative=rd.alternative,
                      confidence_level=rd.confidence_level, label=label,
                      note=f"risk difference undefined: {rd.note}", extra=extra)
    est = math.inf if d == 0 else 1.0 / d
    if d == 0:
        notes.append("risk difference is 0: the NNT is infinite")

    def inv(v: float) -> float:
        return math.inf if v == 0 else 1.0 / v

    if lo > 0 or hi < 0:
        ci = (inv(hi), inv(lo))
        extra["altman"] = (f"NNTB {inv(hi):.3g} to {inv(lo):.3g}" if lo > 0 else
                           f"NNTH {abs(inv(lo)):.3g} to {abs(inv(hi)):.3g}")
    else:
        ci = (math.nan, math.nan)
        nntb, nnth = inv(hi), abs(inv(lo))
        extra.update(nntb_bound=nntb, nnth_bound=nnth,
                     altman=f"NNTB {nntb:.3g} to infinity to NNTH {nnth:.3g}")
        notes.append(
            "the risk-difference interval includes 0, so the NNT confidence set is not an "
            f"interval: {extra['altman']} (Altman 1998); ci is NaN, see extra"
        )
    return Result(method="nnt", estimate=est, ci=ci, confidence_level=rd.confidence_level,
                  alternative=rd.alternative, n=rd.n, label=label, note="; ".join(notes),
                  extra=extra)


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _nonfinite(name: str, value: float) -> str | None:
    if math.isnan(value):
        return f"{name} is NaN"
    if math.isinf(value):
        return f"{name} is {'+' if value > 0 else '-'}inf"
    return None


@dataclass(frozen=True, eq=False)
class TwoByTwo:
    """Immutable 2x2 panel for treated (x1/n1) against control (x2/n2).

    Attributes
    ----------
    x1, n1, x2, n2 : int
        Counts.
    confidence_level : float
    alternative : str
    risk_difference, risk_ratio, odds_ratio, test : Mapping[str, Result]
        Read-only mappings from the short method name (``"newcombe"``) to its Result.
    attributable_fraction : Result
        ``(RR - 1) / RR`` among the treated, from the Koopman risk-ratio interval.
    nnt : Result
        Number needed to treat, from the Newcombe risk-difference interval (Altman 1998).

    Examples
    --------
    >>> t = compare_groups(4, 20, 2, 15, include_unconditional=False)
    >>> round(t.risk_ratio["koopman"].estimate, 3)
    1.5
    >>> list(t.to_dict())[:3]
    ['recommended', 'counts', 'confidence_level']
    """

    x1: int
    n1: int
    x2: int
    n2: int
    confidence_level: float
    alternative: str
    risk_difference: Mapping[str, Result]
    risk_ratio: Mapping[str, Result]
    odds_ratio: Mapping[str, Result]
    test: Mapping[str, Result]
    attributable_fraction: Result
    nnt: Result

    # -- risks
    @property
    def risk_treated(self) -> float:
        """Risk in the treated group, x1 / n1 (NaN when n1 = 0)."""
        return self.x1 / self.n1 if self.n1 else math.nan

    @property
    def risk_control(self) -> float:
        """Risk in the control group, x2 / n2 (NaN when n2 = 0)."""
        return self.x2 / self.n2 if self.n2 else math.nan

    @property
    def risk_overall(self) -> float:
        """Risk in both groups together."""
        big_n = self.n1 + self.n2
        return (self.x1 + self.x2) / big_n if big_n else math.nan

    @property
    def population_attributable_fraction(self) -> float:
        """(risk overall - risk control) / risk overall (NaN when undefined)."""
        r0, rt = self.risk_control, self.risk_overall
        if math.isnan(r0) or math.isnan(rt) or rt == 0:
            return math.nan
        return (rt - r0) / rt

    def arm_risks(self) -> dict[str, dict[str, Any]]:
        """Risk of each arm with its Wilson and Clopper-Pearson intervals (statsmodels).

        Uses ``statsmodels.stats.proportion.proportion_confint`` (``method="wilson"`` and
        ``"beta"``) at the panel's confidence level, two-sided.
        """
        from statsmodels.stats.proportion import proportion_confint

        out = {}
        for arm, (x, n) in (("treated", (self.x1, self.n1)), ("control", (self.x2, self.n2))):
            entry: dict[str, Any] = {"events": x, "n": n,
                                     "risk": _json_number(x / n if n else math.nan)}
            for name, how in (("wilson", "wilson"), ("clopper_pearson", "beta")):
                if n == 0:
                    entry[name] = {"ci_low": None, "ci_high": None}
                    continue
                lo, hi = proportion_confint(x, n, alpha=1.0 - self.confidence_level, method=how)
                entry[name] = {"ci_low": _json_number(float(lo)),
                               "ci_high": _json_number(float(hi))}
            out[arm] = entry
        return out

    def recommended(self) -> dict[str, Any]:
        """The pair the report leads with: the risk difference with its exact unconditional
        interval, and the exact test that interval inverts (Barnard's, pooled Z).

        When the exact unconditional methods were not computed, the Newcombe interval and
        Fisher's central test stand in, and ``sentence`` says so.
        """
        rd = self.risk_difference.get("exact_unconditional")
        test = self.test.get("barnard_pooled")
        level = f"{100 * self.confidence_level:g}%"
        exact = rd is not None and not math.isnan(rd.ci_low)
        if not exact:
            rd, test = self.risk_difference["newcombe"], self.test["fisher_central"]
        interval, test_name = (("exact unconditional", "Barnard's exact unconditional test "
                                "(pooled Z), which that interval inverts") if exact else
                               ("Newcombe hybrid score", "Fisher's exact test (central)"))
        pieces = rd.extra.get("confidence_set") if exact else None
        sentence = (
            f"Risk difference (treated - control) {_fmt_num(rd.estimate)}, {level} "
            f"{interval} interval {_fmt_num(rd.ci_low)} to {_fmt_num(rd.ci_high)}; "
            f"{test_name}: p = {_fmt_num(test.pvalue)}."
        )
        if pieces is not None and len(pieces) > 1:
            sentence += (" The accepted set is not one interval ("
                         + ", ".join(f"{_fmt_num(a)} to {_fmt_num(b)}" for a, b in pieces)
                         + "); the interval given is its hull.")
        if not exact:
            sentence += " (Exact unconditional methods not computed.)"
        return {
            "measure": "risk_difference", "interval_method": rd.method,
            "estimate": _json_number(rd.estimate), "ci_low": _json_number(rd.ci_low),
            "ci_high": _json_number(rd.ci_high), "confidence_level": self.confidence_level,
            "confidence_set": None if pieces is None else [[_json_number(a), _json_number(b)]
                                                           for a, b in pieces],
            "test": test.method, "pvalue": _json_number(test.pvalue), "sentence": sentence,
        }

    def _groups(self) -> dict[str, Mapping[str, Result]]:
        return {"risk_difference": self.risk_difference, "risk_ratio": self.risk_ratio,
                "odds_ratio": self.odds_ratio, "test": self.test}

    def results(self) -> Iterator[tuple[str, Result]]:
        """Yield ``(full method name, Result)`` for every item of the panel."""
        for group, mapping in self._groups().items():
            for name, res in mapping.items():
                yield f"{group}.{name}", res
        yield "attributable_fraction", self.attributable_fraction
        yield "nnt", self.nnt

    def notes(self) -> dict[str, str]:
        """Why a value is null in JSON (NaN or infinite), plus notes and diagnostics."""
        out: dict[str, str] = {}
        for key, res in self.results():
            fields = (("statistic", "pvalue") if key.startswith("test.")
                      else ("estimate", "ci_low", "ci_high"))
            parts = []
            bad = [m for f in fields if (m := _nonfinite(f, getattr(res, f)))]
            if bad:
                parts.append(", ".join(bad) + " (serialised as null)")
            if res.note:
                parts.append(res.note)
            parts.extend(res.diagnostics)
            if parts:
                out[key] = ". ".join(parts)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Nested JSON-able dict; NaN and infinity become None, the reason is in ``notes``.

        Returns
        -------
        dict
            Keys ``counts``, ``risks``, ``risk_difference``, ``risk_ratio``, ``odds_ratio``
            (each ``{method: {"estimate", "ci_low", "ci_high"}}``), ``test``
            (``{method: {"statistic", "pvalue"}}``), ``attributable_fraction``, ``nnt`` and
            ``notes`` (``{"group.method": reason}``).
        """
        out: dict[str, Any] = {
            "recommended": self.recommended(),
            "counts": {"x1": self.x1, "n1": self.n1, "x2": self.x2, "n2": self.n2},
            "confidence_level": self.confidence_level,
            "alternative": self.alternative,
            "risks": {"treated": _json_number(self.risk_treated),
                      "control": _json_number(self.risk_control),
                      "overall": _json_number(self.risk_overall)},
            "arm_risks": self.arm_risks(),
        }
        for group, mapping in self._groups().items():
            if group == "test":
                out[group] = {k: {"statistic": _json_number(r.statistic),
                                  "pvalue": _json_number(r.pvalue)} for k, r in mapping.items()}
            else:
                out[group] = {k: {"estimate": _json_number(r.estimate),
                                  "ci_low": _json_number(r.ci_low),
                                  "ci_high": _json_number(r.ci_high)}
                              for k, r in mapping.items()}
        af = self.attributable_fraction
        out["attributable_fraction"] = {
            "estimate": _json_number(af.estimate), "ci_low": _json_number(af.ci_low),
            "ci_high": _json_number(af.ci_high), "based_on": af.extra["based_on"],
            "interval_definition": AF_INTERVAL,
        }
        out["population_attributable_fraction"] = {
            "estimate": _json_number(self.population_attributable_fraction),
            "definition": PAF_DEFINITION,
        }
        nnt = self.nnt
        out["nnt"] = {
            "estimate": _json_number(nnt.estimate), "ci_low": _json_number(nnt.ci_low),
            "ci_high": _json_number(nnt.ci_high), "based_on": nnt.extra["based_on"],
            "altman": nnt.extra.get("altman"),
        }
        out["notes"] = self.notes()
        return {k: out[k] for k in JSON_KEYS}

    def to_json_dict(self) -> dict[str, Any]:
        """The ``natexp table --json`` object: ``to_dict()`` restricted to ``JSON_KEYS``."""
        d = self.to_dict()
        return {k: d[k] for k in JSON_KEYS}

    def to_polars(self):
        """One row per method (intervals, tests, attributable fraction, NNT).

        Returns
        -------
        polars.DataFrame
        """
        import polars as pl

        rows = []
        for key, r in self.results():
            rows.append({
                "method": key, "label": r.label, "estimate": r.estimate, "ci_low": r.ci_low,
                "ci_high": r.ci_high, "confidence_level": r.confidence_level,
                "statistic": r.statistic, "pvalue": r.pvalue, "alternative": r.alternative,
                "note": r.note, "diagnostics": " | ".join(r.diagnostics),
                "extra": json.dumps(r.to_dict()["extra"], sort_keys=True, default=str),
            })
        schema = {"method": pl.String, "label": pl.String, "estimate": pl.Float64,
                  "ci_low": pl.Float64, "ci_high": pl.Float64, "confidence_level": pl.Float64,
                  "statistic": pl.Float64, "pvalue": pl.Float64, "alternative": pl.String,
                  "note": pl.String, "diagnostics": pl.String, "extra": pl.String}
        return pl.DataFrame(rows, schema=schema)

    # -- display
    def summary(self) -> str:
        """Plain-text panel in the style of Stata's ``csi``."""
        return _summary(self)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return _html(self)


_SHORT = {
    "wald": "Wald", "agresti_caffo": "Agresti-Caffo", "newcombe": "Newcombe hybrid score",
    "miettinen_nurminen": "Miettinen-Nurminen score", "exact_unconditional":
    "exact unconditional", "katz": "Katz log", "koopman": "Koopman score", "woolf":
    "Woolf logit", "cornfield_exact": "Cornfield exact", "cornfield_midp": "Cornfield mid-p",
    "baptista_pike": "Baptista-Pike exact", "pearson": "Pearson chi2", "pearson_yates":
    "Pearson chi2, Yates", "likelihood_ratio": "Likelihood ratio (G)", "fisher_minlike":
    "Fisher exact (minlike)", "fisher_central": "Fisher exact (central)", "fisher_midp":
    "Fisher mid-p (central)", "barnard_pooled": "Barnard (pooled z)", "barnard_unpooled":
    "Barnard (unpooled z)", "boschloo": "Boschloo",
}
_GROUP_TITLE = {"risk_difference": "Risk difference", "risk_ratio": "Risk ratio",
                "odds_ratio": "Odds ratio"}


def _num(x: float, width: int = 10) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return f"{'.':>{width}}"
    if math.isinf(x):
        return f"{('inf' if x > 0 else '-inf'):>{width}}"
    return f"{x:>{width}.4g}" if abs(x) >= 1e4 or (x != 0 and abs(x) < 1e-3) else \
        f"{x:>{width}.4f}"


def _fmt_num(x: float) -> str:
    if x is None or math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"


def _summary(t: TwoByTwo) -> str:
    level = f"{100 * t.confidence_level:g}%"
    sep = "-" * 17 + "+" + "-" * 24 + "+" + "-" * 11
    lines = [
        "Recommended: " + t.recommended()["sentence"],
        "",
        f"Treated {t.x1}/{t.n1} vs control {t.x2}/{t.n2} ({t.alternative}, {level} confidence)",
        "",
        f"{'':>17}|{'Treated':>10}  {'Control':>10}  |{'Total':>11}",
        sep,
        f"{'Events':>16} |{t.x1:>10}  {t.x2:>10}  |{t.x1 + t.x2:>11}",
        f"{'Non-events':>16} |{t.n1 - t.x1:>10}  {t.n2 - t.x2:>10}  |"
        f"{t.n1 - t.x1 + t.n2 - t.x2:>11}",
        sep,
        f"{'Total':>16} |{t.n1:>10}  {t.n2:>10}  |{t.n1 + t.n2:>11}",
        f"{'Risk':>16} |{_num(t.risk_treated)}  {_num(t.risk_control)}  |"
        f"{_num(t.risk_overall, 11)}",
    ]
    arms = t.arm_risks()
    for arm in ("treated", "control"):
        cells = []
        for key, title in (("wilson", "Wilson"), ("clopper_pearson", "Clopper-Pearson")):
            lo, hi = arms[arm][key]["ci_low"], arms[arm][key]["ci_high"]
            cells.append(f"{title} " + ("." if lo is None else f"{lo:.4f} to {hi:.4f}"))
        lines.append(f"  {arm.capitalize()} risk, {level} interval: " + "; ".join(cells))
    lines += [
        "",
        f"{'':<44}{'estimate':>10}  [{level} conf. interval]",
    ]
    for group, mapping in t._groups().items():
        if group == "test":
            continue
        lines.append(_GROUP_TITLE[group])
        for name, r in mapping.items():
            lines.append(f"  {_SHORT.get(name, name):<42}{_num(r.estimate)}  "
                         f"{_num(r.ci_low)}  {_num(r.ci_high)}")
    af, nnt = t.attributable_fraction, t.nnt
    lines.append(f"{'Attr. frac. among treated (Koopman)':<44}{_num(af.estimate)}  "
                 f"{_num(af.ci_low)}  {_num(af.ci_high)}")
    lines.append(f"{'Attr. frac. in the population':<44}"
                 f"{_num(t.population_attributable_fraction)}")
    nnt_ci = nnt.extra.get("altman", "")
    lines.append(f"{'NNT, 1/RD (Newcombe; + benefit, - harm)':<44}{_num(nnt.estimate)}  "
                 f"{nnt_ci}")
    lines += ["", f"{'Tests (' + t.alternative + ')':<44}{'statistic':>10}  {'p-value':>10}"]
    for name, r in t.test.items():
        lines.append(f"  {_SHORT.get(name, name):<42}{_num(r.statistic)}  {_num(r.pvalue)}")
    notes = t.notes()
    if notes:
        lines += ["", "Notes"]
        lines += [f"  {k}: {v}" for k, v in notes.items()]
    return "\n".join(lines)


def _html(t: TwoByTwo) -> str:
    def cell(x: float) -> str:
        return html.escape(_num(x).strip())

    level = f"{100 * t.confidence_level:g}%"
    head = (
        "<table class='natexp-twobytwo'><tr><th></th><th>Treated</th><th>Control</th>"
        "<th>Total</th></tr>"
        f"<tr><th>Events</th><td>{t.x1}</td><td>{t.x2}</td><td>{t.x1 + t.x2}</td></tr>"
        f"<tr><th>Non-events</th><td>{t.n1 - t.x1}</td><td>{t.n2 - t.x2}</td>"
        f"<td>{t.n1 + t.n2 - t.x1 - t.x2}</td></tr>"
        f"<tr><th>Total</th><td>{t.n1}</td><td>{t.n2}</td><td>{t.n1 + t.n2}</td></tr>"
        f"<tr><th>Risk</th><td>{cell(t.risk_treated)}</td><td>{cell(t.risk_control)}</td>"
        f"<td>{cell(t.risk_overall)}</td></tr></table>"
    )
    rows = [f"<tr><th>method</th><th>estimate</th><th>{level} CI</th><th>statistic</th>"
            "<th>p-value</th><th>note</th></tr>"]
    for key, r in t.results():
        ci = "" if math.isnan(r.ci_low) and math.isnan(r.ci_high) else \
            f"{cell(r.ci_low)} to {cell(r.ci_high)}"
        note = "; ".join(filter(None, [r.note, *r.diagnostics]))
        rows.append(f"<tr><td>{html.escape(key)}</td><td>{cell(r.estimate)}</td><td>{ci}</td>"
                    f"<td>{cell(r.statistic)}</td><td>{cell(r.pvalue)}</td>"
                    f"<td>{html.escape(note)}</td></tr>")
    return head + "<table class='natexp-twobytwo-results'>" + "".join(rows) + "</table>"


def compare_groups(
    x1, n1, x2, n2, *, confidence_level: float = 0.95, alternative: str = "two-sided",
    include_unconditional: bool = True, event_is_benefit: bool = True,
) -> TwoByTwo:
    """Compare two independent binomial groups: every measure, interval and test.

    Parameters
    ----------
    x1, n1 : int
        Events and size of the treated group.
    x2, n2 : int
        Events and size of the control group.
    confidence_level : float
        Coverage of every interval.
    alternative : {"two-sided", "less", "greater"}
        Applies to every test and interval (``"greater"``: treated risk larger).
    include_unconditional : bool
        Compute the exact unconditional tests and intervals (Barnard, Boschloo; slower) from
        :mod:`natexp.causal.unconditional`; when False their entries say "not computed".
    event_is_benefit : bool
        Whether an event is a good outcome (as support uptake is), which fixes the sign of the
        number needed to treat (positive: NNT to benefit).

    Returns
    -------
    TwoByTwo

    Raises
    ------
    InvalidInputError
        On invalid counts (negative, non-integer, boolean, x > n), confidence level or
        alternative.

    Examples
    --------
    >>> t = compare_groups(4, 20, 2, 15, include_unconditional=False)
    >>> round(t.test["fisher_minlike"].pvalue, 4)
    0.6804
    >>> t.nnt.extra["altman"]
    'NNTB 3.3 to infinity to NNTH 4.85'
    """
    x1, n1, x2, n2 = check_two_binomials(x1, n1, x2, n2)
    cl = check_confidence_level(confidence_level)
    alternative = check_alternative(alternative)
    check_level_for(cl, alternative)
    kw = {"confidence_level": cl, "alternative": alternative}
    unc = _unconditional(x1, n1, x2, n2, cl, alternative, include_unconditional)

    rd = {m: risk_difference_ci(x1, n1, x2, n2, method=m, **kw) for m in RISK_DIFFERENCE_METHODS}
    rd["exact_unconditional"] = unc["risk_difference.exact_unconditional"]
    rr = {m: risk_ratio_ci(x1, n1, x2, n2, method=m, **kw) for m in RISK_RATIO_METHODS}
    rr["exact_unconditional"] = unc["risk_ratio.exact_unconditional"]
    orr = {m: odds_ratio_ci(x1, n1, x2, n2, method=m, **kw) for m in ODDS_RATIO_METHODS}
    orr["exact_unconditional"] = unc["odds_ratio.exact_unconditional"]
    tests = {
        "pearson": pearson_test(x1, n1, x2, n2, alternative=alternative),
        "pearson_yates": pearson_test(x1, n1, x2, n2, correction=True, alternative=alternative),
        "likelihood_ratio": likelihood_ratio_test(x1, n1, x2, n2, alternative=alternative),
        "fisher_minlike": fisher_test(x1, n1, x2, n2, method="minlike", alternative=alternative),
        "fisher_central": fisher_test(x1, n1, x2, n2, method="central", alternative=alternative),
        "fisher_midp": fisher_test(x1, n1, x2, n2, method="midp", alternative=alternative),
    }
    for name in _UNCONDITIONAL_TESTS:
        tests[name] = unc[f"test.{name}"]
    return TwoByTwo(
        x1=x1, n1=n1, x2=x2, n2=n2, confidence_level=cl, alternative=alternative,
        risk_difference=MappingProxyType(rd), risk_ratio=MappingProxyType(rr),
        odds_ratio=MappingProxyType(orr), test=MappingProxyType(tests),
        attributable_fraction=_attributable_fraction(rr["koopman"]),
        nnt=_nnt(rd["newcombe"], event_is_benefit),
    )
