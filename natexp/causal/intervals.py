"""Confidence intervals for two independent binomials: risk difference, risk ratio, odds ratio.

Group 1 is the treated group (``x1`` events out of ``n1``), group 2 the control group
(``x2`` out of ``n2``). Every function returns an immutable
:class:`~natexp.causal.result.Result` with a stable ``method`` name:

- ``risk_difference.{wald, agresti_caffo, newcombe, miettinen_nurminen}``
- ``risk_ratio.{katz, koopman, miettinen_nurminen}``
- ``odds_ratio.{woolf, cornfield_exact, cornfield_midp, baptista_pike}``

Where a well-kept library has the method and gets it right it is called: statsmodels for the
Wald, Agresti-Caffo and Newcombe intervals and for Woolf's logit interval, scipy for the Katz
interval (``scipy.stats.contingency.relative_risk``) and the Cornfield exact conditional interval
(``scipy.stats.contingency.odds_ratio``). The others are written here, each saying why.

One-sided intervals: with ``alternative="greater"`` (treated risk larger) the interval is
``(low, upper end of the parameter space)``, with ``"less"`` it is ``(lower end, high)``; each
one-sided bound is the corresponding bound of the two-sided interval at level
``2 * confidence_level - 1`` (for the Baptista-Pike interval, whose two-sided test has no
one-sided analogue, the one-sided Cornfield bound is used, which inverts the one-sided Fisher
test).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.special import gammaln
from scipy.stats import norm

from natexp.causal._counts import check_two_binomials
from natexp.causal.result import ALTERNATIVES, InvalidInputError, Result

__all__ = [
    "RISK_DIFFERENCE_METHODS",
    "RISK_RATIO_METHODS",
    "ODDS_RATIO_METHODS",
    "risk_difference_ci",
    "risk_ratio_ci",
    "odds_ratio_ci",
    "minlike_confidence_set",
]

RISK_DIFFERENCE_METHODS = ("wald", "agresti_caffo", "newcombe", "miettinen_nurminen")
RISK_RATIO_METHODS = ("katz", "koopman", "miettinen_nurminen")
ODDS_RATIO_METHODS = ("woolf", "cornfield_exact", "cornfield_midp", "baptista_pike")

# Search range for log odds ratios / log risk ratios. exp(100) ~ 2.7e43: a limit found at
# this bound is reported as 0 or infinity.
_BMAX = 100.0
# Relative tolerance for ties between table probabilities in the minimum-likelihood ordering;
# the same value R's fisher.test and exact2x2 use.
_TIE_RTOL = 1e-7

_LABELS = {
    "risk_difference.wald": "Risk difference, Wald interval",
    "risk_difference.agresti_caffo": "Risk difference, Agresti-Caffo interval",
    "risk_difference.newcombe": "Risk difference, Newcombe hybrid score interval (method 10)",
    "risk_difference.miettinen_nurminen": "Risk difference, Miettinen-Nurminen score interval",
    "risk_ratio.katz": "Risk ratio, Katz log interval",
    "risk_ratio.koopman": "Risk ratio, Koopman asymptotic score interval",
    "risk_ratio.miettinen_nurminen": "Risk ratio, Miettinen-Nurminen score interval",
    "odds_ratio.woolf": "Odds ratio, Woolf logit interval",
    "odds_ratio.cornfield_exact": "Odds ratio, Cornfield exact conditional interval",
    "odds_ratio.cornfield_midp": "Odds ratio, Cornfield mid-p interval",
    "odds_ratio.baptista_pike": "Odds ratio, Baptista-Pike exact conditional interval "
    "(minimum-likelihood, matched to Fisher's two-sided test)",
}


# --------------------------------------------------------------------------- validation
def check_confidence_level(confidence_level: object) -> float:
    """Return ``confidence_level`` as a float in (0, 1) or raise :class:`InvalidInputError`.

    Examples
    --------
    >>> check_confidence_level(0.9)
    0.9
    """
    if isinstance(confidence_level, bool) or not isinstance(confidence_level, numbers.Real):
        raise InvalidInputError(
            f"confidence_level must be a number in (0, 1), got {confidence_level!r}"
        )
    cl = float(confidence_level)
    if not 0.0 < cl < 1.0:
        raise InvalidInputError(f"confidence_level must be in (0, 1), got {cl!r}")
    return cl


def check_alternative(alternative: object) -> str:
    """Return ``alternative`` if it is one of ``ALTERNATIVES`` else raise.

    Examples
    --------
    >>> check_alternative("less")
    'less'
    """
    if alternative not in ALTERNATIVES:
        raise InvalidInputError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    return str(alternative)


def check_level_for(confidence_level: float, alternative: str) -> None:
    """One-sided bounds are two-sided bounds at ``2 cl - 1``, so need ``cl > 0.5``.

    Examples
    --------
    >>> check_level_for(0.95, "less")
    """
    if alternative != "two-sided" and confidence_level <= 0.5:
        raise InvalidInputError(
            f"a one-sided interval needs confidence_level > 0.5, got {confidence_level!r}"
        )


def _validate(x1, n1, x2, n2, confidence_level, alternative):
    x1, n1, x2, n2 = check_two_binomials(x1, n1, x2, n2)
    cl, alternative = check_confidence_level(confidence_level), check_alternative(alternative)
    check_level_for(cl, alternative)
    return x1, n1, x2, n2, cl, alternative


def _tail_alpha(confidence_level: float, alternative: str) -> float:
    """Probability in each excluded tail: (1 - cl) / 2 two-sided, 1 - cl one-sided."""
    a = 1.0 - confidence_level
    return a / 2.0 if alternative == "two-sided" else a


def _z(confidence_level: float, alternative: str) -> float:
    return float(norm.isf(_tail_alpha(confidence_level, alternative)))


def _one_side(ci, alternative, lower_end, upper_end):
    low, high = ci
    if alternative == "greater":
        return (low, upper_end)
    if alternative == "less":
        return (lower_end, high)
    return (low, high)


def _result(method, estimate, ci, cl, alternative, n, note="", **extra) -> Result:
    return Result(
        method=method,
        estimate=estimate,
        ci=ci,
        confidence_level=cl,
        alternative=alternative,
        n=n,
        label=_LABELS[method],
        note=note,
        extra=extra,
    )


def _ratio(a: float, b: float) -> float:
    """a / b with 0/0 = NaN and a/0 = inf (a > 0)."""
    if b == 0:
        return math.nan if a == 0 else math.inf
    return a / b


def _empty_group_result(method, cl, alternative, n) -> Result | None:
    if n[0] == 0 or n[1] == 0:
        which = "treated" if n[0] == 0 else "control"
        if n[0] == 0 and n[1] == 0:
            which = "both"
        return _result(
            method, math.nan, (math.nan, math.nan), cl, alternative, n,
            note=f"no observations in {which} group(s): the risk and the interval are undefined",
        )
    return None


# ----------------------------------------------------------------------- risk difference
def _statsmodels_ci(x1, n1, x2, n2, *, method, compare, cl, alternative):
    # statsmodels.stats.proportion.confint_proportions_2indep is the library implementation
    # of these closed-form intervals (checked against published values in the tests).
    from statsmodels.stats.proportion import confint_proportions_2indep

    alpha = 2.0 * _tail_alpha(cl, alternative)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = confint_proportions_2indep(
            x1, n1, x2, n2, method=method, compare=compare, alpha=alpha
        )
    return float(low), float(high)


def _rd_wald(x1, n1, x2, n2, cl, alternative):
    est = x1 / n1 - x2 / n2
    ci = _statsmodels_ci(x1, n1, x2, n2, method="wald", compare="diff", cl=cl,
                         alternative=alternative)
    note = ""
    if x1 in (0, n1) and x2 in (0, n2):
        note = ("both risks are 0 or 1, so the Wald standard error is 0 and the interval "
                "collapses to the point estimate; use the Newcombe or Miettinen-Nurminen interval")
    ci = (max(ci[0], -1.0), min(ci[1], 1.0))
    return est, _one_side(ci, alternative, -1.0, 1.0), note, {}


def _rd_agresti_caffo(x1, n1, x2, n2, cl, alternative):
    est = x1 / n1 - x2 / n2
    ci = _statsmodels_ci(x1, n1, x2, n2, method="agresti-caffo", compare="diff", cl=cl,
                         alternative=alternative)
    ci = (max(ci[0], -1.0), min(ci[1], 1.0))
    centre = (x1 + 1) / (n1 + 2) - (x2 + 1) / (n2 + 2)
    return est, _one_side(ci, alternative, -1.0, 1.0), "", {"interval_centre": centre}


def _rd_newcombe(x1, n1, x2, n2, cl, alternative):
    est = x1 / n1 - x2 / n2
    ci = _statsmodels_ci(x1, n1, x2, n2, method="newcomb", compare="diff", cl=cl,
                         alternative=alternative)
    ci = (max(ci[0], -1.0), min(ci[1], 1.0))
    return est, _one_side(ci, alternative, -1.0, 1.0), "", {}


def _rd_restricted_mle(p1, p2, n1, n2, delta):
    """Restricted MLE (p1~, p2~) under p1 - p2 = delta.

    Closed-form root of the likelihood cubic (Miettinen & Nurminen 1985, Appendix;
    Farrington & Manning 1990, eq. 2.4).
    """
    theta = n2 / n1
    a = 1.0 + theta
    b = -(1.0 + theta + p1 + theta * p2 + delta * (theta + 2.0))
    c = delta * delta + delta * (2.0 * p1 + theta + 1.0) + p1 + theta * p2
    d = -p1 * delta * (1.0 + delta)
    v = b**3 / (27.0 * a**3) - b * c / (6.0 * a * a) + d / (2.0 * a)
    u2 = b * b / (9.0 * a * a) - c / (3.0 * a)
    u = math.copysign(math.sqrt(max(u2, 0.0)), v)
    if u == 0.0:
        q1 = -b / (3.0 * a)
    else:
        r = min(1.0, max(-1.0, v / u**3))
        w = (math.pi + math.acos(r)) / 3.0
        q1 = 2.0 * u * math.cos(w) - b / (3.0 * a)
    q1 = min(1.0, max(0.0, q1))
    q2 = min(1.0, max(0.0, q1 - delta))
    return q1, q2


def _rd_score_z(delta, x1, n1, x2, n2, factor):
    p1, p2 = x1 / n1, x2 / n2
    q1, q2 = _rd_restricted_mle(p1, p2, n1, n2, delta)
    var = (q1 * (1.0 - q1) / n1 + q2 * (1.0 - q2) / n2) * factor
    num = p1 - p2 - delta
    if var <= 0.0:
        return math.copysign(math.inf, num) if num != 0 else 0.0
    return num / math.sqrt(var)


def _rd_miettinen_nurminen(x1, n1, x2, n2, cl, alternative):
    # Written here: statsmodels' "score" method raises on some zero/extreme tables and gives
    # slightly wrong limits on others (statsmodels issue 10269); scipy has no MN interval.
    est = x1 / n1 - x2 / n2
    big_n = n1 + n2
    factor = big_n / (big_n - 1.0)
    z = _z(cl, alternative)
    eps = 1e-12

    def f(delta, target):
        return _rd_score_z(delta, x1, n1, x2, n2, factor) - target

    low = -1.0 if est <= -1.0 else brentq(f, -1.0 + eps, est, args=(z,), xtol=1e-14)
    high = 1.0 if est >= 1.0 else brentq(f, est, 1.0 - eps, args=(-z,), xtol=1e-14)
    return est, _one_side((low, high), alternative, -1.0, 1.0), "", {}


_RD_IMPL: dict[str, Callable] = {
    "wald": _rd_wald,
    "agresti_caffo": _rd_agresti_caffo,
    "newcombe": _rd_newcombe,
    "miettinen_nurminen": _rd_miettinen_nurminen,
}


def risk_difference_ci(
    x1, n1, x2, n2, *, method: str = "newcombe", confidence_level: float = 0.95,
    alternative: str = "two-sided",
) -> Result:
    """Confidence interval for the risk difference ``p1 - p2`` (treated minus control).

    Parameters
    ----------
    x1, n1 : int
        Events and size of the treated group.
    x2, n2 : int
        Events and size of the control group.
    method : {"wald", "agresti_caffo", "newcombe", "miettinen_nurminen"}
        ``"newcombe"`` is Newcombe's (1998) hybrid score method 10; ``"miettinen_nurminen"``
        inverts the Miettinen-Nurminen (1985) score test with its ``N / (N - 1)`` variance
        correction.
    confidence_level : float
        Coverage of the interval.
    alternative : {"two-sided", "less", "greater"}
        One-sided alternatives give a one-sided interval bounded by -1 or 1.

    Returns
    -------
    Result
        ``method`` is ``"risk_difference.<method>"``.

    Raises
    ------
    InvalidInputError
        On invalid counts, level, alternative or method.

    Examples
    --------
    >>> r = risk_difference_ci(56, 70, 48, 80, method="newcombe")
    >>> round(r.ci_low, 4), round(r.ci_high, 4)
    (0.0524, 0.3339)
    """
    x1, n1, x2, n2, cl, alternative = _validate(x1, n1, x2, n2, confidence_level, alternative)
    if method not in _RD_IMPL:
        raise InvalidInputError(f"method must be one of {RISK_DIFFERENCE_METHODS}, got {method!r}")
    name = f"risk_difference.{method}"
    empty = _empty_group_result(name, cl, alternative, (n1, n2))
    if empty is not None:
        return empty
    est, ci, note, extra = _RD_IMPL[method](x1, n1, x2, n2, cl, alternative)
    return _result(name, est, ci, cl, alternative, (n1, n2), note, **extra)


# --------------------------------------------------------------------------- risk ratio
def _rr_katz(x1, n1, x2, n2, cl, alternative):
    est = _ratio(x1 / n1, x2 / n2)
    if x1 == 0 or x2 == 0:
        note = ("Katz log interval is not computable with zero events in a group (infinite "
                "variance of log RR); reported as the uninformative (0, inf) as in Fagerland et "
                "al. (2017); use the Koopman or Miettinen-Nurminen interval")
        return est, (0.0, math.inf), note, {}
    from scipy.stats.contingency import relative_risk

    two_sided_level = 1.0 - 2.0 * _tail_alpha(cl, alternative)
    ci = relative_risk(x1, n1, x2, n2).confidence_interval(confidence_level=two_sided_level)
    return est, _one_side((float(ci.low), float(ci.high)), alternative, 0.0, math.inf), "", {}


def _rr_restricted_mle(x1, n1, x2, n2, phi):
    """Restricted MLE under p1 = phi * p2 (Miettinen & Nurminen 1985, quadratic root)."""
    a = (n1 + n2) * phi
    b = -(n1 * phi + x1 + n2 + x2 * phi)
    c = x1 + x2
    disc = max(b * b - 4.0 * a * c, 0.0)
    # Smaller root of a q^2 + b q + c, written as 2c / (-b + sqrt(disc)) to avoid the
    # cancellation of (-b - sqrt(disc)) / (2a) at extreme ratios (b < 0 here).
    q2 = 2.0 * c / (-b + math.sqrt(disc))
    q2 = min(1.0, max(0.0, q2))
    q1 = min(1.0, max(0.0, phi * q2))
    return q1, q2


def _rr_score_z(t, x1, n1, x2, n2, factor):
    phi = math.exp(t)
    p1, p2 = x1 / n1, x2 / n2
    q1, q2 = _rr_restricted_mle(x1, n1, x2, n2, phi)
    var = (q1 * (1.0 - q1) / n1 + phi * phi * q2 * (1.0 - q2) / n2) * factor
    num = p1 - phi * p2
    if var <= 0.0:
        return math.copysign(math.inf, num) if num != 0 else 0.0
    return num / math.sqrt(var)


def _invert_decreasing(f, target, lo, hi):
    """Root of the decreasing f(t) = target on [lo, hi]; the bound itself if none inside."""
    flo, fhi = f(lo) - target, f(hi) - target
    if flo <= 0.0:
        return lo
    if fhi >= 0.0:
        return hi
    return brentq(lambda t: f(t) - target, lo, hi, xtol=1e-13)


def _rr_score_interval(x1, n1, x2, n2, cl, alternative, factor):
    est = _ratio(x1 / n1, x2 / n2)
    if x1 == 0 and x2 == 0:
        return est, (0.0, math.inf), ("no events in either group: the score interval for the "
                                      "risk ratio is the whole range (0, inf)")
    z = _z(cl, alternative)

    def f(t):
        return _rr_score_z(t, x1, n1, x2, n2, factor)

    log_est = math.log(est) if 0 < est < math.inf else None
    if x1 == 0:
        low = 0.0
    else:
        t = _invert_decreasing(f, z, -_BMAX, log_est if log_est is not None else _BMAX)
        low = 0.0 if t <= -_BMAX else math.exp(t)
    if x2 == 0:
        high = math.inf
    else:
        t = _invert_decreasing(f, -z, log_est if log_est is not None else -_BMAX, _BMAX)
        high = math.inf if t >= _BMAX else math.exp(t)
    return est, _one_side((low, high), alternative, 0.0, math.inf), ""


def _rr_koopman(x1, n1, x2, n2, cl, alternative):
    # Written here: statsmodels has Koopman only as a private helper (_confint_riskratio_koopman)
    # and scipy has none. Koopman (1984) = the Miettinen-Nurminen score statistic without the
    # N / (N - 1) variance factor (Fagerland, Lydersen & Laake 2017, section 4.8).
    est, ci, note = _rr_score_interval(x1, n1, x2, n2, cl, alternative, 1.0)
    return est, ci, note, {}


def _rr_miettinen_nurminen(x1, n1, x2, n2, cl, alternative):
    # Written here: see statsmodels issue 10269 (score intervals fail on zero cells).
    big_n = n1 + n2
    est, ci, note = _rr_score_interval(x1, n1, x2, n2, cl, alternative, big_n / (big_n - 1.0))
    return est, ci, note, {}


_RR_IMPL: dict[str, Callable] = {
    "katz": _rr_katz,
    "koopman": _rr_koopman,
    "miettinen_nurminen": _rr_miettinen_nurminen,
}


def risk_ratio_ci(
    x1, n1, x2, n2, *, method: str = "koopman", confidence_level: float = 0.95,
    alternative: str = "two-sided",
) -> Result:
    """Confidence interval for the risk ratio ``p1 / p2`` (treated over control).

    Parameters
    ----------
    x1, n1, x2, n2 : int
        Events and sizes of the treated and control groups.
    method : {"katz", "koopman", "miettinen_nurminen"}
        Katz log (Wald on the log scale), Koopman (1984) asymptotic score, or
        Miettinen-Nurminen (1985) score with the ``N / (N - 1)`` variance correction.
    confidence_level : float
        Coverage of the interval.
    alternative : {"two-sided", "less", "greater"}
        One-sided alternatives give a one-sided interval bounded by 0 or infinity.

    Returns
    -------
    Result
        ``method`` is ``"risk_ratio.<method>"``.

    Examples
    --------
    >>> r = risk_ratio_ci(7, 34, 1, 34, method="koopman")
    >>> round(r.ci_low, 4), round(r.ci_high, 4)
    (1.2209, 42.5757)
    """
    x1, n1, x2, n2, cl, alternative = _validate(x1, n1, x2, n2, confidence_level, alternative)
    if method not in _RR_IMPL:
        raise InvalidInputError(f"method must be one of {RISK_RATIO_METHODS}, got {method!r}")
    name = f"risk_ratio.{method}"
    empty = _empty_group_result(name, cl, alternative, (n1, n2))
    if empty is not None:
        return empty
    est, ci, note, extra = _RR_IMPL[method](x1, n1, x2, n2, cl, alternative)
    if math.isnan(est):
        note = "; ".join(filter(None, ["no events in either group: the risk ratio is 0/0", note]))
    elif math.isinf(est) and not note:
        note = "no events in the control group: the risk ratio estimate is infinite"
    return _result(name, est, ci, cl, alternative, (n1, n2), note, **extra)


# ------------------------------------------------------------- conditional distribution
class _Conditional:
    """Fisher's noncentral hypergeometric law of x1 given both margins of the table.

    ``beta`` is the log odds ratio. Written here (rather than with
    scipy.stats.nchypergeom_fisher) so that one vectorised evaluation gives the whole support
    at many odds ratios at once, which the interval inversions below need.
    """

    def __init__(self, x1, n1, x2, n2):
        m = x1 + x2
        self.x = x1
        self.lo = max(0, m - n2)
        self.hi = min(n1, m)
        self.support = np.arange(self.lo, self.hi + 1)
        s = self.support
        self.logc = (
            gammaln(n1 + 1) - gammaln(s + 1) - gammaln(n1 - s + 1)
            + gammaln(n2 + 1) - gammaln(m - s + 1) - gammaln(n2 - m + s + 1)
        )
        self.ix = x1 - self.lo

    def pmf(self, beta: float) -> np.ndarray:
        logw = self.logc + self.support * beta
        w = np.exp(logw - logw.max())
        return w / w.sum()

    def pmf_many(self, betas: np.ndarray) -> np.ndarray:
        logw = self.logc[None, :] + np.outer(betas, self.support)
        w = np.exp(logw - logw.max(axis=1, keepdims=True))
        return w / w.sum(axis=1, keepdims=True)

    def tails(self, beta: float) -> tuple[float, float, float]:
        """(P(X < x), P(X = x), P(X > x)) at log odds ratio ``beta``."""
        p = self.pmf(beta)
        return float(p[: self.ix].sum()), float(p[self.ix]), float(p[self.ix + 1:].sum())


_GRID = np.concatenate(([-_BMAX], np.linspace(-30.0, 30.0, 61), [_BMAX]))


def _cornfield_limits(h: _Conditional, a: float, mid: bool) -> tuple[float, float]:
    """Central conditional limits: each one-sided (mid-)p-value equal to ``a``.

    The lower limit solves P(X >= x) = a (mid: P(X > x) + P(X = x) / 2 = a), which increases
    with the odds ratio; the upper limit solves P(X <= x) = a (or its mid-p version), which
    decreases. A vectorised pass over a grid of log odds ratios brackets each root before
    Brent's method refines it.
    """
    w = 0.5 if mid else 1.0
    ix = h.ix
    pm = h.pmf_many(_GRID)
    upper_grid = pm[:, ix + 1:].sum(axis=1) + w * pm[:, ix]
    lower_grid = pm[:, :ix].sum(axis=1) + w * pm[:, ix]

    def upper_tail(beta):
        _, eq, gt = h.tails(beta)
        return gt + w * eq - a

    def lower_tail(beta):
        lt, eq, _ = h.tails(beta)
        return lt + w * eq - a

    # upper tail increases along the grid: first grid point at or above a
    above = np.nonzero(upper_grid >= a)[0]
    if above.size == 0:
        low = math.inf
    elif above[0] == 0:
        low = 0.0
    else:
        i = above[0]
        low = math.exp(brentq(upper_tail, _GRID[i - 1], _GRID[i], xtol=1e-13))
    # lower tail decreases along the grid: last grid point at or above a
    above = np.nonzero(lower_grid >= a)[0]
    if above.size == 0:
        high = 0.0
    elif above[-1] == _GRID.size - 1:
        high = math.inf
    else:
        i = above[-1]
        high = math.exp(brentq(lower_tail, _GRID[i], _GRID[i + 1], xtol=1e-13))
    return low, high


def minlike_confidence_set(
    x1, n1, x2, n2, *, confidence_level: float = 0.95
) -> list[tuple[float, float]]:
    """Confidence set for the odds ratio that inverts Fisher's two-sided (minlike) test.

    The set is ``{psi : p(psi) >= 1 - confidence_level}``, where ``p(psi)`` is the sum of the
    conditional probabilities, under odds ratio ``psi``, of all tables no more probable than
    the observed one (ties within a relative 1e-7, as R's ``fisher.test``). It can be a union
    of disjoint intervals (Fay 2010); Baptista & Pike (1977) and R's
    ``exact2x2(tsmethod="minlike")`` report its hull.

    Written here because neither scipy nor statsmodels inverts the minimum-likelihood test.
    As psi moves, the set of tables counted in ``p(psi)`` only changes at the closed-form
    odds ratios where a table becomes as probable as the observed one; between two such
    breakpoints ``p`` is one lower tail plus one upper tail, and the region where it falls
    below the level is a single interval (total positivity of the exponential family), so
    each segment needs at most two root searches.

    Parameters
    ----------
    x1, n1, x2, n2 : int
        Events and sizes of the treated and control groups.
    confidence_level : float
        Coverage of the set.

    Returns
    -------
    list of (float, float)
        Disjoint closed intervals of odds ratios, in increasing order.

    Examples
    --------
    >>> [(round(a, 3), round(b, 3)) for a, b in minlike_confidence_set(6, 18, 12, 17)]
    [(0.044, 0.917)]
    """
    x1, n1, x2, n2 = check_two_binomials(x1, n1, x2, n2)
    alpha = 1.0 - check_confidence_level(confidence_level)
    h = _Conditional(x1, n1, x2, n2)
    pieces = _minlike_pieces(h, alpha)
    return [(_to_or(a), _to_or(b)) for a, b in pieces]


def _to_or(beta: float) -> float:
    if beta <= -_BMAX:
        return 0.0
    if beta >= _BMAX:
        return math.inf
    return math.exp(beta)


def _minlike_pieces(h: _Conditional, alpha: float) -> list[tuple[float, float]]:
    """Accepted log-odds-ratio intervals of the minlike test (see minlike_confidence_set)."""
    ys, x, logc = h.support, h.x, h.logc
    if ys.size == 1:
        return [(-_BMAX, _BMAX)]
    other = ys != x
    # y > x is counted iff beta <= b_y; y < x is counted iff beta >= b_y.
    b = np.full(ys.size, np.nan)
    b[other] = (math.log1p(_TIE_RTOL) + logc[h.ix] - logc[other]) / (ys[other] - x)
    inner = np.unique(b[other][(b[other] > -_BMAX) & (b[other] < _BMAX)])
    edges = np.concatenate(([-_BMAX], inner, [_BMAX]))
    mids = (edges[:-1] + edges[1:]) / 2.0
    above, below = (ys > x)[None, :], (ys < x)[None, :]
    counted = (
        (ys == x)[None, :]
        | (above & (b[None, :] >= mids[:, None]))
        | (below & (b[None, :] <= mids[:, None]))
    )
    pm = h.pmf_many(edges)
    p_left = (pm[:-1] * counted).sum(axis=1)
    p_right = (pm[1:] * counted).sum(axis=1)
    # d p / d beta at both ends of each segment: sum over counted y of pmf(y) (y - mean)
    dev = pm * (ys[None, :] - (pm @ ys)[:, None])
    d_left = (dev[:-1] * counted).sum(axis=1)
    d_right = (dev[1:] * counted).sum(axis=1)

    pieces: list[tuple[float, float]] = []
    for i in range(mids.size):
        s0, s1 = float(edges[i]), float(edges[i + 1])
        mask = counted[i]
        acc0, acc1 = p_left[i] >= alpha, p_right[i] >= alpha
        if not (acc0 or acc1):
            continue  # the rejection region within a segment is an interval

        def f(beta, mask=mask):
            return float(h.pmf(beta)[mask].sum()) - alpha

        if acc0 and not acc1:
            pieces.append((s0, brentq(f, s0, s1, xtol=1e-13)))
        elif acc1 and not acc0:
            pieces.append((brentq(f, s0, s1, xtol=1e-13), s1))
        elif d_left[i] < 0.0 < d_right[i]:
            # Both ends accepted but p falls then rises: p is quasi-convex on the segment, so
            # it may dip below alpha inside. p = P(lower part of the counted set) + P(upper
            # part); the first decreases and the second increases with beta, so on a grid cell
            # [g_k, g_k+1], p >= P_low(g_k+1) + P_high(g_k): a certificate that no dip exists.
            grid = np.linspace(s0, s1, 33)
            pg = h.pmf_many(grid)
            pv = (pg * mask).sum(axis=1)
            j = int(np.argmin(pv))
            if pv[j] < alpha:
                pieces.append((s0, brentq(f, s0, float(grid[j]), xtol=1e-13)))
                pieces.append((brentq(f, float(grid[j]), s1, xtol=1e-13), s1))
                continue
            gap = np.nonzero(~mask)[0]
            if gap.size == 0:  # every table counted: p = 1
                pieces.append((s0, s1))
                continue
            low_part = mask & (np.arange(ys.size) < gap[0])
            high_part = mask & (np.arange(ys.size) > gap[-1])
            bound = (pg[1:] * low_part).sum(axis=1) + (pg[:-1] * high_part).sum(axis=1)
            if bound.min() >= alpha:
                pieces.append((s0, s1))
                continue
            k = int(np.argmin(bound))
            lo_b = float(grid[max(min(j, k) - 1, 0)])
            hi_b = float(grid[min(max(j, k) + 2, grid.size - 1)])
            res = minimize_scalar(f, bounds=(lo_b, hi_b), method="bounded",
                                  options={"xatol": 1e-12})
            if res.fun < 0.0:
                bstar = float(res.x)
                pieces.append((s0, brentq(f, s0, bstar, xtol=1e-13)))
                pieces.append((brentq(f, bstar, s1, xtol=1e-13), s1))
            else:
                pieces.append((s0, s1))
        else:
            pieces.append((s0, s1))
    merged: list[tuple[float, float]] = []
    for a, c in pieces:
        if merged and a - merged[-1][1] <= 1e-12:
            merged[-1] = (merged[-1][0], max(c, merged[-1][1]))
        else:
            merged.append((a, c))
    return merged


def _or_sample(x1, n1, x2, n2) -> float:
    return _ratio(x1 * (n2 - x2), (n1 - x1) * x2)


def _degenerate_conditional(x1, n1, x2, n2) -> str:
    m = x1 + x2
    if m == 0 or m == n1 + n2:
        what = "no events" if m == 0 else "only events"
        return (f"{what} in either group: the conditional distribution has a single table, "
                "so the data carry no information on the odds ratio; interval (0, inf)")
    return ""


def _or_woolf(x1, n1, x2, n2, cl, alternative):
    est = _or_sample(x1, n1, x2, n2)
    if 0 in (x1, n1 - x1, x2, n2 - x2):
        note = ("Woolf logit interval is not computable with a zero cell (infinite variance of "
                "log OR); reported as the uninformative (0, inf) as in Fagerland et al. (2017); "
                "use the Baptista-Pike or Cornfield interval")
        return est, (0.0, math.inf), note, {}
    ci = _statsmodels_ci(x1, n1, x2, n2, method="logit", compare="odds-ratio", cl=cl,
                         alternative=alternative)
    return est, _one_side(ci, alternative, 0.0, math.inf), "", {}


def _or_cornfield_exact(x1, n1, x2, n2, cl, alternative):
    from scipy.stats.contingency import odds_ratio

    est = _or_sample(x1, n1, x2, n2)
    res = odds_ratio([[x1, n1 - x1], [x2, n2 - x2]], kind="conditional")
    ci = res.confidence_interval(confidence_level=cl, alternative=alternative)
    extra = {"conditional_mle": float(res.statistic)}
    return est, (float(ci.low), float(ci.high)), _degenerate_conditional(x1, n1, x2, n2), extra


def _or_cornfield_midp(x1, n1, x2, n2, cl, alternative):
    # Written here: scipy and statsmodels have no mid-p conditional interval. Same definition
    # as R exact2x2(tsmethod="central", midp=TRUE) and Fagerland et al. (2017) Cornfield mid-P.
    est = _or_sample(x1, n1, x2, n2)
    h = _Conditional(x1, n1, x2, n2)
    if h.support.size == 1:
        return est, (0.0, math.inf), _degenerate_conditional(x1, n1, x2, n2), {}
    ci = _cornfield_limits(h, _tail_alpha(cl, alternative), mid=True)
    return est, _one_side(ci, alternative, 0.0, math.inf), "", {}


def _or_baptista_pike(x1, n1, x2, n2, cl, alternative):
    est = _or_sample(x1, n1, x2, n2)
    h = _Conditional(x1, n1, x2, n2)
    if h.support.size == 1:
        return (est, (0.0, math.inf), _degenerate_conditional(x1, n1, x2, n2),
                {"confidence_set": [[0.0, math.inf]]})
    if alternative != "two-sided":
        # The minimum-likelihood ordering is two-sided only; its one-sided test is the
        # one-sided Fisher test, inverted by the one-sided Cornfield bound.
        ci = _cornfield_limits(h, _tail_alpha(cl, alternative), mid=False)
        note = ("one-sided: the minimum-likelihood test reduces to the one-sided Fisher test; "
                "this is the one-sided Cornfield exact bound")
        return est, _one_side(ci, alternative, 0.0, math.inf), note, {}
    pieces = _minlike_pieces(h, 1.0 - cl)
    ci = (_to_or(pieces[0][0]), _to_or(pieces[-1][1]))
    note, extra = "", {"confidence_set": [[_to_or(a), _to_or(b)] for a, b in pieces]}
    if len(pieces) > 1:
        note = ("the inverted minimum-likelihood test gives a confidence set with holes; the "
                "interval is its hull (as Baptista & Pike 1977 and R exact2x2), so a null "
                "value inside a hole is rejected by the test but lies inside the interval; "
                "extra['confidence_set'] lists the pieces")
    return est, ci, note, extra


_OR_IMPL: dict[str, Callable] = {
    "woolf": _or_woolf,
    "cornfield_exact": _or_cornfield_exact,
    "cornfield_midp": _or_cornfield_midp,
    "baptista_pike": _or_baptista_pike,
}


def odds_ratio_ci(
    x1, n1, x2, n2, *, method: str = "baptista_pike", confidence_level: float = 0.95,
    alternative: str = "two-sided",
) -> Result:
    """Confidence interval for the odds ratio of treated against control.

    Parameters
    ----------
    x1, n1, x2, n2 : int
        Events and sizes of the treated and control groups.
    method : {"woolf", "cornfield_exact", "cornfield_midp", "baptista_pike"}
        Woolf logit; Cornfield exact conditional (central; inverts the doubled one-sided
        Fisher test, as ``fisher.test``'s interval); Cornfield mid-p (inverts the doubled
        one-sided mid-p test); Baptista-Pike (hull of the set inverting Fisher's two-sided
        minimum-likelihood test, as ``exact2x2(tsmethod="minlike")``).
    confidence_level : float
        Coverage of the interval.
    alternative : {"two-sided", "less", "greater"}
        One-sided alternatives give a one-sided interval bounded by 0 or infinity.

    Returns
    -------
    Result
        ``estimate`` is the sample odds ratio; ``method`` is ``"odds_ratio.<method>"``.

    Examples
    --------
    >>> r = odds_ratio_ci(6, 18, 12, 17, method="baptista_pike")
    >>> round(r.ci_low, 3), round(r.ci_high, 3)
    (0.044, 0.917)
    """
    x1, n1, x2, n2, cl, alternative = _validate(x1, n1, x2, n2, confidence_level, alternative)
    if method not in _OR_IMPL:
        raise InvalidInputError(f"method must be one of {ODDS_RATIO_METHODS}, got {method!r}")
    name = f"odds_ratio.{method}"
    empty = _empty_group_result(name, cl, alternative, (n1, n2))
    if empty is not None:
        return empty
    est, ci, note, extra = _OR_IMPL[method](x1, n1, x2, n2, cl, alternative)
    if math.isnan(est):
        note = "; ".join(filter(None, ["the sample odds ratio is 0/0", note]))
    return _result(name, est, ci, cl, alternative, (n1, n2), note, **extra)
