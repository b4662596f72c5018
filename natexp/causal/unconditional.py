"""Exact unconditional tests and intervals for two independent binomials x1/n1 and x2/n2.

Group 1 (``x1/n1``) is the treated group, group 2 (``x2/n2``) the control group; the risk
difference is ``p1 - p2`` and the risk ratio ``p1 / p2``.

An exact unconditional p-value orders the whole sample space ``{(a, b): 0 <= a <= n1,
0 <= b <= n2}`` by a statistic ``T`` and takes the supremum, over the nuisance parameter, of the
probability of the tables at least as extreme as the observed one:

    p = sup_pi  P_pi(T >= t_obs).

Why natexp has its own engine rather than calling scipy
------------------------------------------------------
``scipy.stats.barnard_exact`` and ``boschloo_exact`` maximise with ``shgo`` from a small Sobol
sample (32 points by default) and sometimes stop below the supremum; they compare the
statistic without a tolerance, so two tables with mathematically equal statistics can fall on
different sides of the observed one; they are slow for large samples (seconds at 500 per arm);
and scipy has no exact unconditional interval at all, nor a p-value for every table at once
(which exact power needs). So this module:

* evaluates the tail probability on a fine arcsine-spaced grid of the nuisance parameter (dense
  where binomial probabilities change fastest, near 0 and 1), then refines the best few local
  maxima with a bounded scalar maximisation (``scipy.optimize.minimize_scalar``), and returns the
  largest value found;
* under ``p1 == p2 == pi`` writes the tail probability as ``sum_m h_m Binom(m; n1 + n2, pi)``,
  where ``h_m`` is the hypergeometric probability of the region given ``x1 + x2 = m``; one
  evaluation then costs O(n1 + n2) instead of O(n1 * n2), which is what makes Barnard's and
  Boschloo's tests fast at 1000 per arm;
* treats statistics equal to within ``1e-9`` (relative; absolute below 1) as ties: mathematically
  equal statistics are computed with different rounding errors, and scipy's Barnard test, which
  compares them exactly, drops such tables from the tail;
* inverts the score-ordered test for the risk difference and the risk ratio (Chan and Zhang 1999;
  Agresti and Min 2001), with the supremum over the nuisance parameter at every null value.

References
----------
Barnard GA (1947). Significance tests for 2x2 tables. Biometrika 34:123-138.
Suissa S, Shuster JJ (1985). Exact unconditional sample sizes for the 2x2 binomial trial.
JRSS A 148:317-327.
Boschloo RD (1970). Raised conditional level of significance for the 2x2-table when testing the
equality of two probabilities. Statistica Neerlandica 24:1-9.
Farrington CP, Manning G (1990). Test statistics and sample size formulae for comparative binomial
trials with null hypothesis of non-zero risk difference or non-unity relative risk. Stat Med
9:1447-1454.
Miettinen O, Nurminen M (1985). Comparative analysis of two rates. Stat Med 4:213-226.
Chan ISF, Zhang Z (1999). Test-based exact confidence intervals for the difference of two binomial
proportions. Biometrics 55:1202-1209.
Agresti A, Min Y (2001). On small-sample confidence intervals for parameters in discrete
distributions. Biometrics 57:963-971.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import gammaln, xlog1py, xlogy
from threadpoolctl import ThreadpoolController

from natexp.causal._counts import as_count, check_two_binomials
from natexp.causal.result import ALTERNATIVES, InvalidInputError, Result

try:  # np.clip's own ufunc: the same values without np.clip's Python dispatch (~2.5 us a call,
    # tens of thousands of calls per interval)
    from numpy._core.umath import clip as _clip
except ImportError:  # pragma: no cover - another numpy layout
    _clip = np.clip

__all__ = [
    "barnard",
    "boschloo",
    "exact_unconditional_ci",
    "exact_unconditional_test",
    "pvalues_all_tables",
]

#: Statistics closer than this (relative) are ties.
TIE_RTOL = 1e-9
#: Golden-section / bounded-maximisation tolerance on the arcsine scale of the nuisance parameter.
_XATOL = 1e-10
#: How many of the best grid local maxima are refined.
_N_PEAKS = 3
#: Below this fraction of the decision level a grid maximum is taken as a sure rejection.
_DECIDE_MARGIN = 0.8
#: Elements of one block of rows in _refine_rows' evaluations (64k doubles: 512 KB an array).
_CACHE_ELEMENTS = 1 << 16
_TESTS = ("fisher", "barnard_pooled", "barnard_unpooled", "boschloo")
_WHAT = {"rd": "risk difference", "rr": "risk ratio", "or": "odds ratio"}


# --------------------------------------------------------------------------------------------
# binomial and hypergeometric building blocks
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _log_choose(n: int) -> np.ndarray:
    k = np.arange(n + 1, dtype=float)
    out = gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=32)
def _counts(n: int) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(n + 1, dtype=float)
    k.flags.writeable = False
    rest = n - k
    rest.flags.writeable = False
    return k, rest


def _binom_pmf_rows(n: int, p: np.ndarray) -> np.ndarray:
    """Binomial(n, p) pmf for every p (rows) and every count 0..n (columns).

    scipy.stats.binom.pmf gives the same numbers (tested) but is several times slower for the
    (grid x counts) tables evaluated here many times; this is the textbook log-space formula.
    """
    p = np.minimum(np.maximum(np.asarray(p, dtype=float).reshape(-1, 1), 0.0), 1.0)
    return np.exp(_log_pmf(n, p))


def _log_pmf(n: int, p: np.ndarray, out: np.ndarray | None = None,
             scratch: np.ndarray | None = None) -> np.ndarray:
    """``log C(n, k) + xlogy(k, p) + xlog1py(n - k, -p)`` for a column ``p`` and k = 0..n.

    The two logarithms are taken once per row and broadcast (the same products and sums in the
    same order as element by element, so the same numbers; the same as scipy's xlogy /
    xlog1py wherever numpy's ``log`` and ``log1p`` are the C library's, and within their last
    bit where numpy uses its own SIMD logarithms, as on AVX-512 CPUs; tested), instead of once
    per element. Rows with p = 0 or 1, where 0 * log(0) must be 0, use xlogy / xlog1py.
    ``out`` and ``scratch`` (shape ``(p.size, n + 1)``): arrays to compute in, for callers that
    evaluate the same shape many times (the result is then ``out``, except when a p is 0 or 1).
    """
    k, n_minus_k = _counts(n)
    # Every p strictly inside (0, 1) (the usual case: checked cheaply, one value at a time in
    # the optimiser's calls): no logarithm of 0, so no warning to silence and no edge row.
    inside = (0.0 < p.item(0) < 1.0) if p.size == 1 else bool(
        (p > 0.0).all() and (p < 1.0).all())
    if inside:  # log C(n, k) + k log(p), then + (n - k) log1p(-p), in place
        out = np.multiply(k, np.log(p), out=out)
        np.add(_log_choose(n), out, out=out)
        return np.add(out, np.multiply(n_minus_k, np.log1p(-p), out=scratch), out=out)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _log_choose(n) + k * np.log(p) + n_minus_k * np.log1p(-p)
    edge = np.flatnonzero((p <= 0.0).ravel() | (p >= 1.0).ravel())
    if edge.size:
        # xlogy / xlog1py give 0 * log(0) = 0 and -inf for log(0), hence exp -> exact 0 or 1
        pe = p[edge]
        out[edge] = _log_choose(n) + xlogy(k, pe) + xlog1py(n_minus_k, -pe)
    return out


class _Space:
    """The sample space {0..n1} x {0..n2} with conditional (hypergeometric) weights."""

    def __init__(self, n1: int, n2: int) -> None:
        self.n1, self.n2, self.N = n1, n2, n1 + n2
        self.i = np.arange(n1 + 1).reshape(-1, 1)
        self.j = np.arange(n2 + 1).reshape(1, -1)
        self.m = self.i + self.j
        # P(X1 = i | X1 + X2 = m) under p1 == p2: C(n1, i) C(n2, j) / C(N, m)
        self.hyp = np.exp(
            _log_choose(n1)[self.i] + _log_choose(n2)[self.j] - _log_choose(self.N)[self.m]
        )
        for a in (self.i, self.j, self.m, self.hyp):
            a.flags.writeable = False


@lru_cache(maxsize=8)
def _space(n1: int, n2: int) -> _Space:
    return _Space(n1, n2)


def _n_grid(n_total: int) -> int:
    """Grid size on the arcsine scale: several points per binomial standard deviation.

    On the scale theta (pi = sin(theta)**2) a binomial proportion from N trials has standard
    deviation about 1 / (2 sqrt(N)) everywhere; 12 sqrt(N) + 50 points on [0, pi/2] put at least
    ~7 grid points inside one standard deviation.
    """
    return int(12.0 * math.sqrt(max(n_total, 1))) + 50


@lru_cache(maxsize=64)
def _theta_grid(theta_max: float, n_grid: int) -> np.ndarray:
    """``np.linspace(0, theta_max, n_grid)``, read-only, made once (an interval asks for the
    same grid for every null it tests)."""
    theta = np.linspace(0.0, theta_max, n_grid)
    theta.flags.writeable = False
    return theta


_NEG_INF = np.array([-np.inf])
_NEG_INF.flags.writeable = False
#: Where a hot cell is cut into four (fractions of its width).
_QUARTERS = np.linspace(0.0, 1.0, 5)
_QUARTERS.flags.writeable = False


# --------------------------------------------------------------------------------------------
# ordering statistics over the whole sample space
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _wald_z(n1: int, n2: int, pooled: bool) -> np.ndarray:
    """Wald Z for every table, defined as scipy.stats.barnard_exact defines it."""
    sp = _space(n1, n2)
    p1 = sp.i / n1
    p2 = sp.j / n2
    if pooled:
        p = sp.m / sp.N
        var = p * (1.0 - p) * (1.0 / n1 + 1.0 / n2)
    else:
        var = p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(var)
    z = np.where(p1 == p2, 0.0, z)
    z.flags.writeable = False
    return z


@lru_cache(maxsize=16)
def _fisher_one_sided(n1: int, n2: int, side: str) -> np.ndarray:
    """Fisher's one-sided conditional p-value for every table.

    ``side="less"``: P(X1 <= x1 | x1 + x2) (alternative p1 < p2); ``"greater"``: P(X1 >= x1 | ...).
    Equal to ``scipy.stats.fisher_exact(..., alternative=side)`` (tested); computed for all tables
    at once by cumulative sums of the hypergeometric pmf within each margin, because calling
    scipy's hypergeom.cdf on a million tables takes seconds.
    """
    sp = _space(n1, n2)
    a = np.zeros((sp.N + 1, n1 + 1))
    ii = np.broadcast_to(sp.i, sp.m.shape)
    a[sp.m, ii] = sp.hyp
    if side == "less":
        c = np.cumsum(a, axis=1)
    else:
        c = np.cumsum(a[:, ::-1], axis=1)[:, ::-1]
    c /= a.sum(axis=1, keepdims=True)  # exact 1 at the far end of every margin
    out = np.minimum(c[sp.m, ii], 1.0)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=8)
def _fisher_two_sided(n1: int, n2: int) -> np.ndarray:
    """Fisher's two-sided p-value (sum of the tables no more probable) for every table.

    Ties within a relative 1e-7, as R's fisher.test. scipy has no all-tables version.
    """
    sp = _space(n1, n2)
    out = np.empty(sp.m.shape)
    for m in range(sp.N + 1):
        lo, hi = max(0, m - n2), min(n1, m)
        xs = np.arange(lo, hi + 1)
        pmf = sp.hyp[xs, m - xs]
        order = np.sort(pmf)
        cum = np.cumsum(order)
        k = np.searchsorted(order, pmf * (1.0 + 1e-7), side="right")
        out[xs, m - xs] = np.minimum(cum[k - 1] / cum[-1], 1.0)
    out.flags.writeable = False
    return out


def _fisher_two_sided_rejects(n1: int, n2: int, alpha: float) -> np.ndarray:
    """``_fisher_two_sided(n1, n2) < alpha`` for every table, without every p-value.

    Exact power and the sample-size search need only which tables Fisher's two-sided test
    rejects. Within a margin ``m`` the p-value of ``x`` is ``c[k - 1]`` where ``c`` is the
    cumulative sum of the margin's sorted probabilities divided by their total and ``k`` the
    number of probabilities at most ``pmf(x) (1 + 1e-7)``. ``c`` never decreases, so ``x`` is
    rejected exactly when ``pmf(x) (1 + 1e-7)`` is below the sorted probability at position
    ``k*`` (the number of ``c < alpha``). All margins are handled at once: each is a row of
    its probabilities padded with zeros (which sort first and change neither the cumulative
    sums nor the comparisons), sorted by rows. The sums and comparisons are the same
    floating-point operations as :func:`_fisher_two_sided`, so the result is identical (tested
    against it), and two to three times faster at several hundred per arm (no loop over
    margins).
    """
    sp = _space(n1, n2)
    big_n, width = n1 + n2, min(n1, n2) + 1
    m = np.arange(big_n + 1)
    lo = np.maximum(0, m - n2)
    length = np.minimum(n1, m) - lo + 1
    col = np.arange(width)
    # row m, column c: the table (lo + c, m - lo - c), at flat index x * (n2 + 1) + (m - x)
    rows = np.take(sp.hyp.ravel(), (lo * n2 + m)[:, None] + n2 * col, mode="clip")
    rows[col >= length[:, None]] = 0.0  # beyond the margin's support
    rows.sort(axis=1, kind="stable")
    cum = np.cumsum(rows, axis=1)
    kstar = np.count_nonzero(cum / cum[:, -1:] < alpha, axis=1)
    threshold = rows[m, np.minimum(kstar, width - 1)]
    threshold[kstar >= width] = np.inf
    return sp.hyp * (1.0 + 1e-7) < threshold[sp.m]


def _rd_restricted_mle(
    x1: np.ndarray, n1: int, x2: np.ndarray, n2: int, d: float
) -> tuple[np.ndarray, np.ndarray]:
    """MLE of (p1, p2) under p1 - p2 = d (Farrington and Manning 1990, appendix; closed form)."""
    p1h = x1 / n1
    p2h = x2 / n2
    theta = n2 / n1
    a = 1.0 + theta
    b = -(1.0 + theta + p1h + theta * p2h + d * (theta + 2.0))
    c = d * d + d * (2.0 * p1h + theta + 1.0) + p1h + theta * p2h
    e = -p1h * d * (1.0 + d)
    # cubes as products: numpy's power of a negative array (b always, u often) takes SVML's
    # slow path on AVX-512 CPUs (~100 ns an element: 32 of 43 ms on a 301 x 701 space), and
    # products are the same IEEE operations on every CPU
    v = b * b * b / (27.0 * a**3) - b * c / (6.0 * a * a) + e / (2.0 * a)
    u = np.sign(v) * np.sqrt(np.maximum(b * b / (9.0 * a * a) - c / (3.0 * a), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = v / (u * u * u)
    ratio = np.where((u == 0.0), 1.0, ratio)
    w = (math.pi + np.arccos(np.clip(ratio, -1.0, 1.0))) / 3.0
    p1t = 2.0 * u * np.cos(w) - b / (3.0 * a)
    p1t = np.clip(p1t, max(0.0, d), min(1.0, 1.0 + d))
    p2t = np.clip(p1t - d, 0.0, 1.0)
    return p1t, p2t


def _rr_restricted_mle(
    x1: np.ndarray, n1: int, x2: np.ndarray, n2: int, r: float
) -> tuple[np.ndarray, np.ndarray]:
    """MLE of (p1, p2) under p1 = r p2 (Miettinen and Nurminen 1985; smaller quadratic root)."""
    big_a = r * (n1 + n2)
    big_b = -(r * n1 + x1 + n2 + r * x2)
    big_c = x1 + x2
    disc = np.sqrt(np.maximum(big_b * big_b - 4.0 * big_a * big_c, 0.0))
    # the smaller root written without cancellation: 2C / (-B + sqrt(B^2 - 4AC))
    p2t = np.clip(2.0 * big_c / (-big_b + disc), 0.0, min(1.0, 1.0 / r))
    p1t = np.clip(r * p2t, 0.0, 1.0)
    return p1t, p2t


def _or_restricted_mle(
    x1: np.ndarray, n1: int, x2: np.ndarray, n2: int, psi: float
) -> tuple[np.ndarray, np.ndarray]:
    """MLE of (p1, p2) under p1 (1 - p2) / ((1 - p1) p2) = psi (Miettinen and Nurminen 1985).

    The control risk solves ``A p2^2 + B p2 + C = 0`` with ``A = n2 (psi - 1)``,
    ``B = n1 psi + n2 - m (psi - 1)``, ``C = -m`` (``m = x1 + x2``), the root in [0, 1]
    (R exact2x2 ``constrMLE.oddsratio`` with the groups swapped), written without cancellation.
    """
    m = np.asarray(x1, dtype=float) + np.asarray(x2, dtype=float)
    if abs(psi - 1.0) < 1e-12:
        p2t = m / (n1 + n2)
    else:
        a = n2 * (psi - 1.0)
        b = n1 * psi + n2 - m * (psi - 1.0)
        disc = np.sqrt(np.maximum(b * b + 4.0 * a * m, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            # (-b + sqrt(disc)) / (2a) = 2m / (b + sqrt(disc)) when b > 0
            p2t = np.where(b > 0.0, 2.0 * m / (b + disc), (-b + disc) / (2.0 * a))
        p2t = np.where(m == 0.0, 0.0, p2t)
    p2t = np.clip(p2t, 0.0, 1.0)
    p1t = np.clip(psi * p2t / (1.0 + p2t * (psi - 1.0)), 0.0, 1.0)
    return p1t, p2t


def _no_information(n1: int, n2: int, measure: str) -> np.ndarray | None:
    """Tables that carry no information on the measure, never counted as extreme (as exact2x2).

    For the odds ratio: (0, 0) and (n1, n2); for the other measures none (None).
    """
    if measure != "or":
        return None
    mask = np.zeros((n1 + 1, n2 + 1), dtype=bool)
    mask[0, 0] = mask[n1, n2] = True
    return mask


def _score_z(
    x1: np.ndarray, n1: int, x2: np.ndarray, n2: int, measure: str, null: float
) -> np.ndarray:
    """Score Z under the null, positive when the data point above the null.

    Risk difference and ratio: Farrington-Manning / Miettinen-Nurminen without N/(N-1); odds
    ratio: the score statistic of Agresti and Min (2002), ``(x1 - n1 p1~) sqrt(1/(n1 p1~ q1~) +
    1/(n2 p2~ q2~))`` at the restricted MLE (as R exact2x2 ``method = "score"``); tables without
    information (all events or none) get 0.
    """
    x1 = np.asarray(x1, dtype=float)
    x2 = np.asarray(x2, dtype=float)
    p1h = x1 / n1
    p2h = x2 / n2
    if measure == "or":
        p1t, p2t = _or_restricted_mle(x1, n1, x2, n2, null)
        num = x1 - n1 * p1t
        with np.errstate(divide="ignore", invalid="ignore"):
            z = num * np.sqrt(1.0 / (n1 * p1t * (1.0 - p1t)) + 1.0 / (n2 * p2t * (1.0 - p2t)))
        m = x1 + x2
        z = np.where((m == 0) | (m == n1 + n2) | (np.abs(num) < 1e-12), 0.0, z)
        return np.where(np.isnan(z), 0.0, z)
    if measure == "rd":
        p1t, p2t = _rd_restricted_mle(x1, n1, x2, n2, null)
        num = p1h - p2h - null
        var = p1t * (1.0 - p1t) / n1 + p2t * (1.0 - p2t) / n2
    else:
        p1t, p2t = _rr_restricted_mle(x1, n1, x2, n2, null)
        num = p1h - null * p2h
        var = p1t * (1.0 - p1t) / n1 + null * null * p2t * (1.0 - p2t) / n2
    num = np.where(np.abs(num) < 1e-14, 0.0, num)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = num / np.sqrt(var)
    return np.where(num == 0.0, 0.0, z)


# --------------------------------------------------------------------------------------------
# regions, tails and the supremum
# --------------------------------------------------------------------------------------------


def _threshold(t: float) -> float:
    """Lower bound for 'at least t' with the tie tolerance (infinite t stays infinite)."""
    if not math.isfinite(t):
        return t
    return t - TIE_RTOL * max(1.0, abs(t))


def _region(stat: np.ndarray, t_obs: float, alternative: str) -> np.ndarray:
    """Tables at least as extreme as t_obs: |T| >= |t| / T >= t / T <= t, with tie tolerance."""
    if alternative == "two-sided":
        return np.abs(stat) >= _threshold(abs(t_obs))
    if alternative == "greater":
        return stat >= _threshold(t_obs)
    return -stat >= _threshold(-t_obs)


def _fisher_region(fp: np.ndarray, fp_obs: float) -> np.ndarray:
    """Tables whose Fisher p-value is no larger than the observed one (relative tolerance)."""
    return fp <= fp_obs * (1.0 + TIE_RTOL)


def _sup(
    f: Callable[[np.ndarray], np.ndarray],
    lo: float,
    hi: float,
    n_grid: int,
    *,
    theta_max: float = math.pi / 2,
    decide: float | None = None,
) -> tuple[float, float]:
    """Supremum over t in [lo, hi] of f(t), with t = lo + (hi - lo) sin(theta)^2.

    Returns ``(value, argmax_t)``. With ``decide=level`` the caller only needs to know whether
    the supremum reaches ``level``: the search stops as soon as a grid value does, and skips the
    refinement when the grid maximum is below ``0.8 * level`` (the grid's relative error is
    about 1%: the grid puts ~7 points in one binomial standard deviation, see ``_n_grid``).
    """
    if hi - lo <= 0.0:
        return float(f(np.array([lo]))[0]), lo

    def t_of(th: np.ndarray | float) -> np.ndarray:
        return lo + (hi - lo) * np.sin(th) ** 2

    theta = _theta_grid(theta_max, n_grid)
    vals = f(t_of(theta))
    k = int(np.argmax(vals))
    best, best_t = float(vals[k]), float(t_of(theta[k]))
    if decide is not None and (best >= decide or best < _DECIDE_MARGIN * decide):
        return best, best_t
    left = np.concatenate((_NEG_INF, vals[:-1]))
    right = np.concatenate((vals[1:], _NEG_INF))
    peaks = np.flatnonzero((vals >= left) & (vals >= right))
    peaks = peaks[np.argsort(vals[peaks])[::-1][:_N_PEAKS]]
    if decide is not None:  # peaks that cannot reach the level need no refinement
        peaks = peaks[vals[peaks] >= _DECIDE_MARGIN * decide]
    for k in peaks:
        a, b = theta[max(k - 1, 0)], theta[min(k + 1, n_grid - 1)]
        res = minimize_scalar(
            lambda th: -float(f(t_of(np.array([th])))[0]),
            bounds=(a, b),
            method="bounded",
            options={"xatol": _XATOL},
        )
        if -res.fun > best:
            best, best_t = float(-res.fun), float(t_of(res.x))
    return best, best_t


def _sup_equal(region: np.ndarray, n1: int, n2: int, decide: float | None = None):
    """sup over pi of P(region) when p1 = p2 = pi (the classical null)."""
    sp = _space(n1, n2)
    if region.all():
        return 1.0, 0.5
    h = np.bincount(sp.m.ravel(), weights=(sp.hyp * region).ravel(), minlength=sp.N + 1)
    symmetric = np.array_equal(region, region[::-1, ::-1])
    n_grid = _n_grid(sp.N)
    if symmetric:  # P_pi(region) = P_{1 - pi}(region): search pi in [0, 1/2] only
        return _sup(
            lambda t: _binom_pmf_rows(sp.N, t) @ h, 0.0, 1.0, n_grid // 2 + 1,
            theta_max=math.pi / 4, decide=decide,
        )
    return _sup(lambda t: _binom_pmf_rows(sp.N, t) @ h, 0.0, 1.0, n_grid, decide=decide)


def _sup_null(
    region: np.ndarray, n1: int, n2: int, measure: str, null: float,
    decide: float | None = None,
):
    """sup over the nuisance p2 of P(region) under p1 - p2 = null (rd) or p1 = null p2 (rr)."""
    if (measure == "rd" and null == 0.0) or (measure in ("rr", "or") and null == 1.0):
        return _sup_equal(region, n1, n2, decide)
    if region.all():
        return 1.0, float("nan")
    rf = region.astype(float)
    lo, hi = _nuisance_range(measure, null, null)
    p1_of = _p1_map(measure, null)

    def f(t: np.ndarray) -> np.ndarray:
        b1 = _binom_pmf_rows(n1, p1_of(t))
        b2 = _binom_pmf_rows(n2, t)
        return np.einsum("gj,gj->g", b1 @ rf, b2)

    return _sup(f, lo, hi, _n_grid(n1 + n2), decide=decide)


def _p1_map(measure: str, null: float) -> Callable[[np.ndarray], np.ndarray]:
    """p1 as a function of the nuisance p2 = t under the null (increasing in t and the null)."""
    if measure == "rd":
        return lambda t: _clip(t + null, 0.0, 1.0)
    if measure == "rr":
        return lambda t: _clip(null * t, 0.0, 1.0)

    def p1_or(t):
        t = np.asarray(t, dtype=float)
        out = null * t / (1.0 - t + null * t)
        return _clip(np.where(t >= 1.0, 1.0, out), 0.0, 1.0)

    if 0.0 < null < math.inf:
        # t in [0, 1] (or just above 1 by rounding): the denominator 1 + t (null - 1) is at
        # least min(1, null) > 0, so nothing to silence (np.errstate costs ~3 us a call)
        return p1_or

    def p1_or_silenced(t):
        with np.errstate(divide="ignore", invalid="ignore"):
            return p1_or(t)

    return p1_or_silenced


def _nuisance_range(measure: str, null_lo: float, null_hi: float) -> tuple[float, float]:
    """Union over nulls in [null_lo, null_hi] of the admissible nuisance range of p2."""
    if measure == "rd":
        return max(0.0, -null_hi), min(1.0, 1.0 - null_lo)
    if measure == "rr":
        return 0.0, min(1.0, 1.0 / null_lo)
    return 0.0, 1.0


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise InvalidInputError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")


def _check_confidence_level(confidence_level: float) -> float:
    try:
        cl = float(confidence_level)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"confidence_level must be a number, got {confidence_level!r}") from exc
    if isinstance(confidence_level, bool) or not 0.0 < cl < 1.0:
        raise InvalidInputError(f"confidence_level must be in (0, 1), got {confidence_level!r}")
    return cl


def _empty_note(n1: int, n2: int) -> str:
    if n1 == 0 and n2 == 0:
        return "both groups are empty (n1 = n2 = 0): nothing to test"
    return f"group {'1' if n1 == 0 else '2'} is empty (n = 0): the test is undefined"


def _same_note(x1: int, n1: int, x2: int, n2: int) -> str:
    if x1 == 0 and x2 == 0:
        return "no events in either group (x1 = x2 = 0): every table is as extreme, p = 1"
    if x1 == n1 and x2 == n2:
        return "every subject had the event (x1 = n1, x2 = n2): every table is as extreme, p = 1"
    return ""


# --------------------------------------------------------------------------------------------
# public tests
# --------------------------------------------------------------------------------------------


def barnard(x1, n1, x2, n2, *, pooled: bool = True, alternative: str = "two-sided") -> Result:
    """Barnard's exact unconditional test (Suissa-Shuster Z ordering) for x1/n1 vs x2/n2.

    Tables are ordered by the Wald Z statistic ``(p1hat - p2hat) / se`` with the pooled
    (Suissa and Shuster 1985) or unpooled variance, as ``scipy.stats.barnard_exact`` defines it;
    the p-value is the supremum over the common success probability ``pi`` in [0, 1] of the
    probability of the tables at least as extreme as the observed one.

    Parameters
    ----------
    x1, n1 : int
        Events and size of group 1 (treated).
    x2, n2 : int
        Events and size of group 2 (control).
    pooled : bool, default True
        Pooled (score) or unpooled (Wald) variance in Z.
    alternative : {"two-sided", "less", "greater"}
        ``"greater"``: p1 > p2; ``"less"``: p1 < p2.

    Returns
    -------
    Result
        ``method`` "test.barnard_pooled" or "test.barnard_unpooled"; ``statistic`` the observed
        Z; ``pvalue``; ``extra["nuisance"]``: the ``pi`` at which the supremum is attained.

    Raises
    ------
    InvalidInputError
        On a non-count, x > n, or an unknown alternative.

    Notes
    -----
    Unlike scipy (``shgo`` from 32 Sobol points by default) the supremum is searched on a grid of
    ``12 sqrt(n1 + n2) + 50`` arcsine-spaced points and its best local maxima are refined, and
    statistics equal to within 1e-9 count as ties (scipy compares them exactly and so can drop
    a table whose Z equals the observed one, e.g. 2/11 vs 8/12 for 9/11 vs 4/12). For the table x1/n1 vs x2/n2 pass
    ``[[x1, x2], [n1 - x1, n2 - x2]]`` to scipy (scipy's samples are the columns).

    Examples
    --------
    >>> r = barnard(9, 11, 4, 12)          # SAS 9.4 PROC FREQ reports 0.0215
    >>> round(r.pvalue, 4)
    0.0215
    >>> round(barnard(9, 11, 4, 12, alternative="greater").pvalue, 4)
    0.012
    """
    x1, n1, x2, n2 = check_two_binomials(x1, n1, x2, n2)
    _check_alternative(alternative)
    kind = "pooled" if pooled else "unpooled"
    method = f"test.barnard_{kind}"
    label = f"Barnard's exact unconditional test ({kind} Z)"
    if n1 == 0 or n2 == 0:
        return Result(method=method, alternative=alternative, n=(n1, n2), label=label,
                      note=_empty_note(n1, n2))
    z = _wald_z(n1, n2, bool(pooled))
    z_obs = float(z[x1, x2])
    region = _region(z, z_obs, alternative)
    p, at = _sup_equal(region, n1, n2)
    return Result(
        method=method, statistic=z_obs, pvalue=min(p, 1.0), alternative=alternative,
        n=(n1, n2), label=label, note=_same_note(x1, n1, x2, n2),
        extra={"nuisance": at, "tables_in_region": int(region.sum())},
    )


def _boschloo_one_sided(x1: int, n1: int, x2: int, n2: int, side: str) -> tuple[float, float, float]:
    fp = _fisher_one_sided(n1, n2, side)
    fp_obs = float(fp[x1, x2])
    p, at = _sup_equal(_fisher_region(fp, fp_obs), n1, n2)
    return fp_obs, min(p, 1.0), at


def boschloo(x1, n1, x2, n2, *, alternative: str = "two-sided") -> Result:
    """Boschloo's exact unconditional test for x1/n1 vs x2/n2.

    Tables are ordered by Fisher's one-sided p-value; the p-value is the supremum over the common
    success probability of the probability of the tables whose Fisher p-value is no larger than
    the observed one. The two-sided p-value is defined as ``scipy.stats.boschloo_exact`` defines
    it: twice the smaller one-sided Boschloo p-value, capped at 1.

    Parameters
    ----------
    x1, n1 : int
        Events and size of group 1 (treated).
    x2, n2 : int
        Events and size of group 2 (control).
    alternative : {"two-sided", "less", "greater"}
        ``"greater"``: p1 > p2; ``"less"``: p1 < p2.

    Returns
    -------
    Result
        ``method`` "test.boschloo"; ``statistic`` the observed Fisher one-sided p-value (of the
        side with the smaller Boschloo p-value when two-sided, as scipy); ``pvalue``;
        ``extra`` the nuisance value at the supremum and, if two-sided, both one-sided p-values.

    Raises
    ------
    InvalidInputError
        On a non-count, x > n, or an unknown alternative.

    Notes
    -----
    StatXact and R's exact2x2 (``tsmethod="minlike"``) define the two-sided Boschloo test
    differently (ordering by Fisher's two-sided p-value); their two-sided values differ from
    scipy's and natexp's.

    Examples
    --------
    >>> round(boschloo(24, 61, 10, 35, alternative="greater").pvalue, 4)   # StatXact 11: 0.1513
    0.1513
    """
    x1, n1, x2, n2 = check_two_binomials(x1, n1, x2, n2)
    _check_alternative(alternative)
    method, label = "test.boschloo", "Boschloo's exact unconditional test"
    if n1 == 0 or n2 == 0:
        return Result(method=method, alternative=alternative, n=(n1, n2), label=label,
                      note=_empty_note(n1, n2))
    note = _same_note(x1, n1, x2, n2)
    if alternative != "two-sided":
        stat, p, at = _boschloo_one_sided(x1, n1, x2, n2, alternative)
        return Result(method=method, statistic=stat, pvalue=p, alternative=alternative,
                      n=(n1, n2), label=label, note=note, extra={"nuisance": at})
    s_less, p_less, at_less = _boschloo_one_sided(x1, n1, x2, n2, "less")
    s_gr, p_gr, at_gr = _boschloo_one_sided(x1, n1, x2, n2, "greater")
    if p_less < p_gr:
        stat, p, at = s_less, p_less, at_less
    else:
        stat, p, at = s_gr, p_gr, at_gr
    return Result(
        method=method, statistic=stat, pvalue=min(2.0 * p, 1.0), alternative=alternative,
        n=(n1, n2), label=label, note=note,
        extra={"nuisance": at, "pvalue_less": p_less, "pvalue_greater": p_gr},
    )


def _check_measure(measure: str, allowed: tuple[str, ...] = ("rd", "rr", "or")) -> str:
    if measure not in allowed:
        raise InvalidInputError(f"measure must be one of {allowed}, got {measure!r}")
    return measure


def _score_pvalue(x1, n1, x2, n2, measure, null, alternative, decide=None, z=None):
    """(p, z_obs, nuisance) of the score-ordered exact unconditional test at ``null``.

    ``z``: the score Z of every table at ``null`` if already computed.
    """
    sp = _space(n1, n2)
    if z is None:
        z = _score_z(sp.i, n1, sp.j, n2, measure, null)
    z_obs = float(z[x1, x2])
    region = _region(z, z_obs, alternative)
    no_info = _no_information(n1, n2, measure)
    if no_info is not None:
        region &= ~no_info
    p, at = _sup_null(region, n1, n2, measure, null, decide=decide)
    return min(p, 1.0), z_obs, at


def exact_unconditional_test(
    x1, n1, x2, n2, *, measure: str = "rd", null: float | None = None,
    alternative: str = "two-sided",
) -> Result:
    """Score-ordered exact unconditional test of a risk difference, risk ratio or odds ratio.

    Tests ``H0: p1 - p2 = null`` (``measure="rd"``, default null 0), ``H0: p1 / p2 = null``
    (``measure="rr"``, default null 1) or ``H0: p1 (1 - p2) / ((1 - p1) p2) = null``
    (``measure="or"``, default null 1). Tables are ordered by the score statistic of
    Farrington and Manning (1990) / Miettinen and Nurminen (1985) (for the odds ratio that of
    Agresti and Min 2002, as R exact2x2), with the variance at the
    maximum-likelihood estimates restricted to the null; the p-value is the supremum over the
    nuisance parameter (the control risk ``p2``) of the probability of the tables at least as
    extreme. At the default null the ordering is the pooled Z, so the test is Barnard's
    (Suissa-Shuster) test. This is the test whose inversion gives
    :func:`exact_unconditional_ci` (two-sided alternative).

    Parameters
    ----------
    x1, n1 : int
        Events and size of group 1 (treated).
    x2, n2 : int
        Events and size of group 2 (control).
    measure : {"rd", "rr", "or"}
        Risk difference ``p1 - p2``, risk ratio ``p1 / p2`` or odds ratio.
    null : float, optional
        Null value: in [-1, 1] for "rd" (default 0); positive and finite for "rr" and "or"
        (default 1).
    alternative : {"two-sided", "less", "greater"}
        Two-sided orders by ``|Z|``; ``"greater"``: the measure exceeds ``null``.

    Returns
    -------
    Result
        ``method`` "test.exact_unconditional_rd", "..._rr" or "..._or";
        ``statistic`` the observed score Z; ``pvalue``; ``extra`` the null and the nuisance
        value at the supremum.

    Raises
    ------
    InvalidInputError
        On invalid counts, measure, null or alternative.

    Examples
    --------
    >>> r = exact_unconditional_test(4, 20, 2, 15)
    >>> round(r.pvalue, 4) == round(barnard(4, 20, 2, 15).pvalue, 4)
    True
    >>> round(exact_unconditional_test(4, 20, 2, 15, null=-0.2).pvalue, 3)
    0.096
    """
    x1, n1, x2, n2 = check_two_binomials(x1, n1, x2, n2)
    measure = _check_measure(measure)
    _check_alternative(alternative)
    null = _check_null(measure, null)
    method = f"test.exact_unconditional_{measure}"
    what = _WHAT[measure]
    label = f"Exact unconditional score test of the {what} (null {null:g})"
    if n1 == 0 or n2 == 0:
        return Result(method=method, alternative=alternative, n=(n1, n2), label=label,
                      note=_empty_note(n1, n2), extra={"null": null})
    p, z_obs, at = _score_pvalue(x1, n1, x2, n2, measure, null, alternative)
    note = ""
    if measure == "rr" and x1 == 0 and x2 == 0:
        note = "no events in either group (x1 = x2 = 0): the table carries no information, p = 1"
    if measure == "or" and x1 + x2 in (0, n1 + n2):
        note = ("no events, or events in everyone: the table carries no information on the odds "
                "ratio")
    return Result(method=method, statistic=z_obs, pvalue=p, alternative=alternative,
                  n=(n1, n2), label=label, note=note, extra={"null": null, "nuisance": at})


def _check_null(measure: str, null: float | None) -> float:
    if null is None:
        return 0.0 if measure == "rd" else 1.0
    try:
        value = float(null)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"null must be a number, got {null!r}") from exc
    if measure == "rd" and not -1.0 <= value <= 1.0:
        raise InvalidInputError(f"a risk-difference null must be in [-1, 1], got {value}")
    if measure in ("rr", "or") and not (value > 0.0 and math.isfinite(value)):
        what = "risk-ratio" if measure == "rr" else "odds-ratio"
        raise InvalidInputError(f"a {what} null must be positive and finite, got {value}")
    return value


# --------------------------------------------------------------------------------------------
# interval by test inversion
# --------------------------------------------------------------------------------------------


#: (len(sys.modules) when made, the controller): see _one_blas_thread.
_BLAS_CONTROLLER: tuple[int, ThreadpoolController] | None = None


def _one_blas_thread():
    """Context limiting BLAS to one thread (threadpoolctl).

    Inverting the test evaluates a few hundred small (grid x n1) @ (n1 x n2) products; OpenBLAS
    threads only add overhead at that size, and on a busy 2-core machine made the n = 100
    interval 2-3 times slower (measured: 0.7 s with one thread, 1.8-2.4 s with two).

    The controller (threadpoolctl's list of the loaded BLAS libraries) is kept, as
    threadpoolctl advises, instead of being rebuilt by ``threadpool_limits`` at every call
    (1.9 ms each: it walks every loaded shared library); it is rebuilt whenever a module was
    imported since, as a new library can only arrive with an import. ``limit`` reads and
    restores the current thread counts each time, as ``threadpool_limits`` does.
    """
    global _BLAS_CONTROLLER
    made = _BLAS_CONTROLLER
    if made is None or made[0] != len(sys.modules):
        made = _BLAS_CONTROLLER = (len(sys.modules), ThreadpoolController())
    return made[1].limit(limits=1, user_api="blas")

_CI_XTOL = 1e-9
#: Cells narrower than this (on the scan scale) are not certified by a bound (see _confidence_set).
_CERT_TOL = 1e-5
#: Most bound evaluations (cell certifications) per interval.
_VERDICT_BUDGET = 100
#: Once the budget is spent, rejected stretches are still scanned down to (range) / _POINT_SCAN.
_POINT_SCAN = 8192
#: Stretches between two accepted nulls are scanned for holes down to (range) / _HOLE_SCAN.
_HOLE_SCAN = 64
#: Ratio nulls are scanned over [exp(-_LOG_RANGE), exp(_LOG_RANGE)]; accepted beyond: 0 or inf.
_LOG_RANGE = math.log(1e8)
#: Equally spaced points of the first pass over the whole range (plus the estimate).
_N_INIT = 17
#: Score Z arrays kept per interval computation (endpoints of neighbouring cells are shared).
_Z_CACHE = 64


def _pmf_matrix(n: int, p: np.ndarray) -> np.ndarray:
    """Binomial(n, p[g, k]) pmf at count k for a (G, n + 1) array of probabilities."""
    k, n_minus_k = _counts(n)
    p = _clip(p, 0.0, 1.0)
    return np.exp(_log_choose(n) + xlogy(k, p) + xlog1py(n_minus_k, -p))


def _box_pmfs(n: int, lo: np.ndarray, hi: np.ndarray, upper: bool) -> np.ndarray:
    """max (``upper``) or min over p in [lo[g], hi[g]] of Binomial(n, p) pmf at every count.

    The pmf of count k is unimodal in p with its mode at k / n (its log is concave in p), so
    the maximum over an interval is at the mode clipped to it and the minimum at an end.
    """
    lo = _clip(lo, 0.0, 1.0)[:, None]
    hi = _clip(hi, 0.0, 1.0)[:, None]
    k, _ = _counts(n)
    if upper:
        return _pmf_matrix(n, _clip(k / n, lo, hi))
    return np.minimum(_pmf_matrix(n, np.broadcast_to(lo, (lo.shape[0], n + 1))),
                      _pmf_matrix(n, np.broadcast_to(hi, (hi.shape[0], n + 1))))


def _box_bound(
    measure: str, n1: int, n2: int, null_a: float, null_b: float,
    sets: list[np.ndarray], upper: bool, level: float,
) -> list[float]:
    """Bound, over every null in [null_a, null_b] and every nuisance value, of P(set).

    ``upper=True``: an upper bound of ``sup_{null, p2} P_{null, p2}(S)`` for each set S (a
    superset of every region in the cell); ``upper=False``: a lower bound of
    ``inf_{null} sup_{p2} P_{null, p2}(S)`` (S a subset of every region in the cell). The
    nuisance range is cut into arcsine-spaced cells; on the box (null cell x nuisance cell) p1
    and p2 each lie in an interval (p1 is increasing in p2 and in the null), and every table's
    probability is bounded by the product of the extreme binomial pmfs over those intervals.
    Nuisance cells whose bound is on the wrong side of ``level`` are cut finer (up to five
    times, 4 pieces each) so that the bound is only as loose as it needs to be.
    """
    if upper:
        t_lo, t_hi = _nuisance_range(measure, null_a, null_b)
    elif measure == "rd":  # nuisance values admissible for every null of the cell
        t_lo, t_hi = max(0.0, -null_a), min(1.0, 1.0 - null_b)
    elif measure == "rr":
        t_lo, t_hi = 0.0, min(1.0, 1.0 / null_b)
    else:
        t_lo, t_hi = 0.0, 1.0
    if t_hi < t_lo:
        return [1.0 if upper else 0.0 for _ in sets]
    map_a, map_b = _p1_map(measure, null_a), _p1_map(measure, null_b)

    def cell_values(s: np.ndarray, th0: np.ndarray, th1: np.ndarray) -> np.ndarray:
        t0 = t_lo + (t_hi - t_lo) * np.sin(th0) ** 2
        t1 = t_lo + (t_hi - t_lo) * np.sin(th1) ** 2
        b1 = _box_pmfs(n1, map_a(t0), map_b(t1), upper)
        b2 = _box_pmfs(n2, t0, t1, upper)
        return np.einsum("gj,gj->g", b1 @ s, b2)

    theta = _theta_grid(math.pi / 2, _n_grid(n1 + n2))
    out = []
    for s in sets:
        if not s.any():
            out.append(0.0)
            continue
        th0, th1 = theta[:-1], theta[1:]
        settled = 0.0
        for round_ in range(4):
            v = cell_values(s, th0, th1)
            if upper:
                hot = v >= level
                if not hot.any() or round_ == 4 or hot.sum() > 128:
                    break
            else:
                if v.max() >= level or round_ == 4:
                    break
                hot = np.zeros(v.size, dtype=bool)
                hot[np.argsort(v)[-8:]] = True
            settled = max(settled, float(v[~hot].max(initial=0.0)))
            w = (th1 - th0)[hot]
            starts = th0[hot][:, None] + w[:, None] * _QUARTERS[None, :-1]
            th0, th1 = starts.ravel(), (starts + w[:, None] / 4.0).ravel()
        out.append(max(settled, float(v.max())))
    return out


def _cell_sets(z_a: np.ndarray, z_b: np.ndarray, obs: tuple[int, int], alternative: str,
               no_info: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(superset, subset) of the rejection regions of every null between null_a < null_b.

    Relies on the score Z of every table being non-increasing in the null (checked by the
    tests for every measure): over the cell, Z lies between its values at the two ends.
    """
    za_o, zb_o = float(z_a[obs]), float(z_b[obs])
    if alternative == "two-sided":
        a_t, b_t = np.abs(z_a), np.abs(z_b)
        hi_t = np.maximum(a_t, b_t)
        lo_t = np.where((z_a >= 0.0) & (z_b <= 0.0), 0.0, np.minimum(a_t, b_t))
        hi_o = max(abs(za_o), abs(zb_o))
        lo_o = 0.0 if (za_o >= 0.0 >= zb_o) else min(abs(za_o), abs(zb_o))
        sup_set = hi_t >= _threshold(lo_o)
        sub_set = lo_t >= hi_o
    elif alternative == "greater":
        sup_set = z_a >= _threshold(zb_o)
        sub_set = z_b >= za_o
    else:
        sup_set = -z_b >= _threshold(-za_o)
        sub_set = -z_a >= -zb_o
    sup_set = sup_set | np.isnan(z_a) | np.isnan(z_b)
    sub_set = sub_set & ~(np.isnan(z_a) | np.isnan(z_b))
    if no_info is not None:
        sup_set &= ~no_info
        sub_set &= ~no_info
    return sup_set.astype(float), sub_set.astype(float)


def _confidence_set(
    accept: Callable[[float], bool],
    verdict: Callable[[float, float], bool | None],
    lo: float, hi: float, starts: list[float],
) -> tuple[list[tuple[float, float]], float]:
    """Every accepted piece of [lo, hi]: a scan that certifies what it leaves out.

    ``accept(u)`` is the test's decision at a null; ``verdict(u, v)`` is False when an upper
    bound of the p-value over [u, v] shows every null there rejected, None when it cannot tell.
    Starting from the ``starts``, cells are taken widest first: a cell whose two ends disagree
    is split (bisection of a boundary, down to ``_CI_XTOL``); a cell between two rejected nulls
    is certified by ``verdict`` or split, down to ``_CERT_TOL``, and once ``_VERDICT_BUDGET``
    bound evaluations are spent, split by point evaluations only, down to 1/``_POINT_SCAN`` of
    the range; a cell between two accepted nulls is split down to 1/``_HOLE_SCAN`` of the
    range (holes are looked for, not certified). The total width of rejected cells left
    uncertified is returned. Every null outside the returned pieces is thus rejected, except
    possibly inside those cells; piece ends lie within ``_CI_XTOL`` of a rejected null.
    """
    import heapq

    hole_scan = (hi - lo) / _HOLE_SCAN
    point_scan = (hi - lo) / _POINT_SCAN

    status: dict[float, bool] = {}

    def acc(u: float) -> bool:
        if u not in status:
            status[u] = bool(accept(u))
        return status[u]

    pts = sorted({lo, hi, *[s for s in starts if lo <= s <= hi]})
    for u in pts:
        acc(u)
    heap = [(-(v - u), u, v) for u, v in zip(pts[:-1], pts[1:], strict=True)]
    heapq.heapify(heap)
    uncertified = 0.0
    budget = _VERDICT_BUDGET
    while heap:
        _, u, v = heapq.heappop(heap)
        su, sv = status[u], status[v]
        scale = max(1.0, abs(u), abs(v))
        if su and sv:  # holes inside accepted stretches: scanned, not certified
            if v - u <= hole_scan:
                continue
        elif su == sv:
            if v - u <= _CERT_TOL * scale or (budget <= 0 and v - u <= point_scan):
                uncertified += v - u
                continue
            if budget > 0:
                budget -= 1
                if verdict(u, v) is False:
                    continue
        elif v - u <= _CI_XTOL * scale:
            continue
        m = 0.5 * (u + v)
        if not u < m < v:
            continue
        acc(m)
        heapq.heappush(heap, (-(m - u), u, m))
        heapq.heappush(heap, (-(v - m), m, v))
    pieces: list[tuple[float, float]] = []
    current: list[float] | None = None
    for u in sorted(status):
        if status[u]:
            if current is None:
                current = [u, u]
            else:
                current[1] = u
        elif current is not None:
            pieces.append((current[0], current[1]))
            current = None
    if current is not None:
        pieces.append((current[0], current[1]))
    return pieces, uncertified


def exact_unconditional_ci(
    x1, n1, x2, n2, *, measure: str = "rd", confidence_level: float = 0.95,
    inversion: str = "two-sided",
) -> Result:
    """Exact unconditional confidence interval for the risk difference, risk ratio or odds ratio.

    The confidence set collects the null values ``d`` (``p1 - p2 = d``), ``r`` (``p1 / p2 =
    r``) or ``psi`` (``p1 (1 - p2) / ((1 - p1) p2) = psi``) that the score-ordered exact
    unconditional test (:func:`exact_unconditional_test`) does not reject at
    ``1 - confidence_level``, the p-value at each null being the supremum over the nuisance
    parameter:

    * ``inversion="two-sided"`` (default): inverts the single two-sided test ordered by ``|Z|``
      (Agresti and Min 2001; StatXact's "invert a two-sided test"; R exact2x2
      ``uncondExact2x2(..., method="score", tsmethod="square")``);
    * ``inversion="central"``: inverts two one-sided tests at ``(1 - confidence_level) / 2``
      each (Chan and Zhang 1999; SAS PROC FREQ ``RISKDIFF(METHOD=SCORE)`` exact; exact2x2
      ``tsmethod="central"``).

    The set can have holes. It is found whole: a first pass evaluates the test at 17 equally
    spaced nulls over the whole range ([-1, 1] for the difference; ratios from 1e-8 to 1e8 on
    the log scale), then every cell between two evaluated nulls is either certified (an upper
    bound of the p-value over the whole cell, from a superset of its rejection regions and the
    extreme binomial probabilities over the cell, stays below the level: every null in it is
    rejected; or a lower bound stays above it: every null accepted) or split in two, and cells
    whose ends disagree are bisected to 1e-9. Every null left out of the set is thus rejected,
    except possibly in a sliver narrower than 1e-5 between two rejected nulls, or, where the
    p-value stays so close below the level that 100 bound evaluations do not settle it, a sliver
    narrower than 1/8192 of the range (then ``extra["uncertified_width"]`` and the note say how
    much of the range was scanned rather than certified); a hole narrower than 1/64 of the range
    between two accepted nulls may go unreported (it cannot move the hull). ``ci`` is the
    hull of the accepted pieces (as R exact2x2 reports), ``extra["confidence_set"]`` the pieces
    and ``extra["confidence_set_is_interval"]`` whether there is only one.

    Parameters
    ----------
    x1, n1 : int
        Events and size of group 1 (treated).
    x2, n2 : int
        Events and size of group 2 (control).
    measure : {"rd", "rr", "or"}
        Risk difference ``p1 - p2``, risk ratio ``p1 / p2`` or odds ratio.
    confidence_level : float, default 0.95
    inversion : {"two-sided", "central"}

    Returns
    -------
    Result
        ``method`` "risk_difference.exact_unconditional", "risk_ratio.exact_unconditional" or
        "odds_ratio.exact_unconditional" (suffix "_central" for the central inversion);
        ``estimate`` the sample RD, RR or OR; ``ci``; ``statistic`` and ``pvalue`` the dual test
        at the null of no difference (d = 0 / r = 1 / psi = 1; for "central", twice the smaller
        one-sided p-value); ``extra`` the null, the inversion, ``confidence_set`` (the pieces),
        ``confidence_set_is_interval`` and ``uncertified_width`` (total width, on the scan
        scale, of rejected stretches scanned by points rather than certified by the bound).

    Raises
    ------
    InvalidInputError
        On invalid counts, measure, confidence level or inversion.

    Examples
    --------
    StatXact 11 (reported in R exact2x2's tests) gives (-0.3079, 0.5542) for 6/13 vs 2/7:

    >>> r = exact_unconditional_ci(6, 13, 2, 7)
    >>> [round(v, 4) for v in r.ci]
    [-0.3079, 0.5542]
    >>> round(r.pvalue, 4)
    0.5374

    R exact2x2 ``uncondExact2x2(2, 15, 4, 20, parmtype = "difference", method = "score",
    tsmethod = "square", conf.int = TRUE)`` gives (-0.2359074, 0.3383094), a set in two pieces:

    >>> r = exact_unconditional_ci(4, 20, 2, 15)
    >>> [round(v, 4) for v in r.ci], r.extra["confidence_set_is_interval"]
    ([-0.2359, 0.3383], False)
    """
    x1, n1, x2, n2 = check_two_binomials(x1, n1, x2, n2)
    measure = _check_measure(measure)
    cl = _check_confidence_level(confidence_level)
    if inversion not in ("two-sided", "central"):
        raise InvalidInputError(f"inversion must be 'two-sided' or 'central', got {inversion!r}")
    return _ci(x1, n1, x2, n2, measure, cl, inversion)


@lru_cache(maxsize=64)
def _ci(x1: int, n1: int, x2: int, n2: int, measure: str, cl: float,
        inversion: str) -> Result:
    """The interval of checked arguments, computed once per process for the same arguments
    (the default run asked for the primary table's risk-difference interval twice; the Result
    is immutable)."""
    with _one_blas_thread():
        return _ci_uncached(x1, n1, x2, n2, measure, cl, inversion)


def _ci_uncached(x1: int, n1: int, x2: int, n2: int, measure: str, cl: float,
                 inversion: str) -> Result:
    alpha = 1.0 - cl
    base = {"rd": "risk_difference", "rr": "risk_ratio", "or": "odds_ratio"}[measure]
    method = f"{base}.exact_unconditional" + ("_central" if inversion == "central" else "")
    label = (
        f"Exact unconditional score interval for the {_WHAT[measure]} "
        + ("(inverted two-sided test, Agresti-Min)" if inversion == "two-sided"
           else "(two one-sided tests, Chan-Zhang)")
    )
    null0 = 0.0 if measure == "rd" else 1.0
    common = dict(method=method, confidence_level=cl, n=(n1, n2), label=label)
    if n1 == 0 or n2 == 0:
        return Result(**common, note=_empty_note(n1, n2).replace("test", "interval"),
                      extra={"null": null0, "inversion": inversion})
    whole = {"null": null0, "inversion": inversion, "confidence_set_is_interval": True,
             "confidence_set": [[0.0, math.inf]], "uncertified_width": 0.0}
    if measure == "rr" and x1 == 0 and x2 == 0:
        return Result(
            **common, ci=(0.0, math.inf), statistic=0.0, pvalue=1.0,
            note="no events in either group (x1 = x2 = 0): the risk ratio is undefined "
                 "and every ratio is compatible with the data, interval (0, inf)",
            extra=whole,
        )
    if measure == "or" and x1 + x2 in (0, n1 + n2):
        return Result(
            **common, ci=(0.0, math.inf), statistic=0.0, pvalue=1.0,
            note="no events, or events in everyone: the odds ratio is undefined and every "
                 "ratio is compatible with the data, interval (0, inf)",
            extra=whole,
        )
    sp = _space(n1, n2)
    no_info = _no_information(n1, n2, measure)
    log_scale = measure != "rd"

    def null_of(u: float) -> float:
        return math.exp(u) if log_scale else u

    z_cache: dict[float, np.ndarray] = {}

    def z_at(u: float) -> np.ndarray:
        z = z_cache.get(u)
        if z is None:
            if len(z_cache) >= _Z_CACHE:
                z_cache.pop(next(iter(z_cache)))
            z = _score_z(sp.i, n1, sp.j, n2, measure, null_of(u))
            z_cache[u] = z
        return z

    def pval(null: float, decide: float | None = None, z=None) -> float:
        if inversion == "two-sided":
            return _score_pvalue(x1, n1, x2, n2, measure, null, "two-sided", decide, z)[0]
        half = None if decide is None else decide / 2.0
        p_gr = _score_pvalue(x1, n1, x2, n2, measure, null, "greater", half, z)[0]
        if half is not None and p_gr < half:
            return 2.0 * p_gr
        p_le = _score_pvalue(x1, n1, x2, n2, measure, null, "less", half, z)[0]
        return min(1.0, 2.0 * min(p_gr, p_le))

    def accept(u: float) -> bool:
        return pval(null_of(u), decide=alpha, z=z_at(u)) >= alpha

    sides = ["two-sided"] if inversion == "two-sided" else ["greater", "less"]
    level = alpha if inversion == "two-sided" else alpha / 2.0

    def verdict(u: float, v: float) -> bool | None:
        # at d = -1 or 1 every variance is 0 and Z is infinite: bound (u, v) from just inside
        # (the end itself is a point the test has evaluated)
        if not log_scale:
            u = u + _CI_XTOL if u <= -1.0 else u
            v = v - _CI_XTOL if v >= 1.0 else v
        za, zb = z_at(u), z_at(v)
        sets = [_cell_sets(za, zb, (x1, x2), side, no_info) for side in sides]
        ub = _box_bound(measure, n1, n2, null_of(u), null_of(v), [s[0] for s in sets], True,
                        level)
        return False if min(ub) < level else None

    z0 = float(_score_z(np.array(x1), n1, np.array(x2), n2, measure, null0))
    p0 = pval(null0)
    notes: list[str] = []
    p1h, p2h = x1 / n1, x2 / n2
    if measure == "rd":
        est = p1h - p2h
        lo, hi, start = -1.0, 1.0, est
    else:
        if measure == "rr":
            est = math.inf if x2 == 0 else p1h / p2h
        else:
            den = (1.0 - p1h) * p2h
            est = math.inf if den == 0.0 else p1h * (1.0 - p2h) / den
        lo, hi = -_LOG_RANGE, _LOG_RANGE
        if 0.0 < est < math.inf:
            start = math.log(est)
        else:  # the estimate with 0.5 added to each cell
            a, b = x1 + 0.5, x2 + 0.5
            c, d = n1 - x1 + 0.5, n2 - x2 + 0.5
            start = math.log((a / (a + c)) / (b / (b + d)) if measure == "rr" else a * d / (b * c))
        start = min(max(start, lo), hi)
    starts = list(np.linspace(lo, hi, _N_INIT)) + [start]
    pieces_u, uncertified = _confidence_set(accept, verdict, lo, hi, starts)
    uncertified = float(uncertified)
    if log_scale:
        def to_ratio(u: float) -> float:
            return 0.0 if u <= lo else (math.inf if u >= hi else math.exp(u))
        pieces = [(to_ratio(a), to_ratio(b)) for a, b in pieces_u]
    else:
        pieces = list(pieces_u)
    if measure == "rr" and x1 == 0:
        notes.append("x1 = 0: the lower limit of the risk ratio is 0")
    if measure == "rr" and x2 == 0:
        notes.append("x2 = 0: the upper limit of the risk ratio is infinite")
    if not pieces:  # cannot happen for a valid level: kept as a guard, said plainly
        return Result(**common, estimate=est, statistic=z0, pvalue=p0,
                      note="no null value is accepted at this confidence level",
                      extra={"null": null0, "inversion": inversion, "confidence_set": [],
                             "confidence_set_is_interval": False,
                             "uncertified_width": uncertified})
    lower, upper = pieces[0][0], pieces[-1][1]
    interval = len(pieces) == 1
    if uncertified > _CERT_TOL * (len(pieces) + 1) * 4:
        width = f"{uncertified:.3g}" + (" on the log scale" if log_scale else "")
        notes.append(
            f"a total width of {width} of rejected nulls lies within the bound's slack of the "
            f"level and was scanned every 1/{_POINT_SCAN} of the range rather than certified: "
            "an accepted sliver narrower than that there could be missed"
        )
    if not interval:
        notes.append(
            f"the set of accepted null values is not an interval ({len(pieces)} pieces, listed "
            "in extra['confidence_set']); the reported limits are those of its hull, which "
            "contains rejected values"
        )
    return Result(
        **common, estimate=est, ci=(lower, upper), statistic=z0, pvalue=p0,
        note="; ".join(notes),
        extra={"null": null0, "inversion": inversion,
               "confidence_set": [[a, b] for a, b in pieces],
               "confidence_set_is_interval": interval, "uncertified_width": uncertified},
    )


# --------------------------------------------------------------------------------------------
# p-values of every table at once (for exact power)
# --------------------------------------------------------------------------------------------


def _all_tables_unconditional(
    stat: np.ndarray, n1: int, n2: int, kind: str, band: tuple[float, float] | None,
    want: np.ndarray | None = None,
) -> np.ndarray:
    """sup-over-pi p-value of every table for an ordering ``stat`` (larger = more extreme).

    ``kind`` "z" (absolute tie tolerance scaled by max(1, |T|)) or "fisher" (stat = -Fisher p,
    relative tolerance). With ``band=(lo, hi)`` only tables whose grid maximum lies in
    [lo, hi) are refined; the others get the grid maximum (a lower bound on the supremum).
    With ``want`` (boolean, the shape of ``stat``; no ``band``) only the wanted tables' p-values
    are computed (the others are left at 0; the caller masks them): the supremum search, the
    expensive part, runs once per distinct statistic value among the wanted tables instead of
    once per value in the space.
    """
    sp = _space(n1, n2)
    n_total = sp.N
    t = stat.ravel()
    order = np.argsort(-t, kind="stable")
    t_desc = t[order]
    if kind == "z":
        with np.errstate(invalid="ignore"):
            thr = np.where(np.isfinite(t), t - TIE_RTOL * np.maximum(1.0, np.abs(t)), t)
    else:
        thr = t * (1.0 + TIE_RTOL)  # t = -p <= 0
    # prefix length of the region of every table in the descending order
    length = np.searchsorted(-t_desc, -thr, side="right")
    lengths, inverse = np.unique(length, return_inverse=True)
    symmetric = np.allclose(stat, stat[::-1, ::-1], rtol=1e-12, atol=1e-12)
    n_grid = _n_grid(n_total)
    theta_max = math.pi / 4 if symmetric else math.pi / 2
    if symmetric:
        n_grid = n_grid // 2 + 1
    theta = np.linspace(0.0, theta_max, n_grid)
    pis = np.sin(theta) ** 2
    flat_i = np.broadcast_to(sp.i, sp.m.shape).ravel()[order]
    flat_j = np.broadcast_to(sp.j, sp.m.shape).ravel()[order]
    m_sorted = (flat_i + flat_j)
    w_sorted = sp.hyp.ravel()[order]

    grid_max = np.zeros(lengths.size)
    if want is not None:
        select = np.unique(inverse[want.ravel()])
    elif band is None:
        select = np.arange(lengths.size)
    else:
        # grid pass by cumulative sums of table probabilities, chunked over the grid
        b1 = _binom_pmf_rows(n1, pis)
        b2 = _binom_pmf_rows(n2, pis)
        chunk = max(1, int(4_000_000 // max(t.size, 1)))
        for s in range(0, n_grid, chunk):
            probs = b1[s:s + chunk][:, flat_i] * b2[s:s + chunk][:, flat_j]
            np.cumsum(probs, axis=1, out=probs)
            vals = probs[:, lengths - 1]
            np.maximum(grid_max, vals.max(axis=0), out=grid_max)
        lo, hi = band
        select = np.flatnonzero((grid_max >= lo) & (grid_max < hi))

    if select.size:
        bgrid = _binom_pmf_rows(n_total, pis)  # (G, N + 1)
        row_chunk = max(1, int(2_000_000 // (n_total + 1)))
        base = np.zeros(n_total + 1)
        start_item = 0
        for s in range(0, select.size, row_chunk):
            sel = select[s:s + row_chunk]
            sel_len = lengths[sel]
            stop_item = int(sel_len[-1])
            items = np.arange(start_item, stop_item)
            seg = np.searchsorted(sel_len, items, side="right")
            h = np.bincount(
                seg * (n_total + 1) + m_sorted[items], weights=w_sorted[items],
                minlength=sel.size * (n_total + 1),
            ).reshape(sel.size, n_total + 1)
            np.cumsum(h, axis=0, out=h)
            h += base
            base = h[-1].copy()
            start_item = stop_item
            grid_max[sel] = _refine_rows(h, bgrid, theta, n_total)
    return grid_max[inverse].reshape(stat.shape)


def _refine_rows(h: np.ndarray, bgrid: np.ndarray, theta: np.ndarray, n_total: int) -> np.ndarray:
    """Vectorised sup over pi of h @ Binom(.; N, pi) for every row of h (grid + golden section)."""
    vals = h @ bgrid.T  # (rows, G)
    best = vals.max(axis=1)
    g = theta.size
    left = np.concatenate([np.full((vals.shape[0], 1), -np.inf), vals[:, :-1]], axis=1)
    right = np.concatenate([vals[:, 1:], np.full((vals.shape[0], 1), -np.inf)], axis=1)
    peak_vals = np.where((vals >= left) & (vals >= right), vals, -np.inf)
    n_peaks = min(_N_PEAKS, g)
    top = np.argpartition(-peak_vals, n_peaks - 1, axis=1)[:, :n_peaks]
    rows = np.repeat(np.arange(vals.shape[0]), n_peaks)
    k = top.ravel()
    ok = np.isfinite(peak_vals[rows, k])
    rows, k = rows[ok], k[ok]
    a = theta[np.maximum(k - 1, 0)]
    b = theta[np.minimum(k + 1, g - 1)]
    # The rows of h searched, gathered once, and two arrays every evaluation computes in. An
    # evaluation is a few million elements: it goes through them a block of rows at a time, so
    # that the block's arrays stay in the CPU's cache between the five passes (log-pmf, exp,
    # product-sum). Each row's numbers are the same operations in the same order either way.
    h_rows = h[rows]
    block = max(1, _CACHE_ELEMENTS // (n_total + 1))
    work = np.empty((min(block, h_rows.shape[0]), n_total + 1))
    scratch = np.empty_like(work)

    def f(th: np.ndarray) -> np.ndarray:
        p = np.clip(np.sin(th) ** 2, 0.0, 1.0)[:, None]
        out = np.empty(p.shape[0])
        for s in range(0, p.shape[0], block):
            pb = p[s:s + block]
            w, sc = work[:pb.shape[0]], scratch[:pb.shape[0]]
            pmf = np.exp(_log_pmf(n_total, pb, out=w, scratch=sc), out=w)
            out[s:s + block] = np.einsum("ij,ij->i", pmf, h_rows[s:s + block])
        return out

    invphi = (math.sqrt(5.0) - 1.0) / 2.0
    c = b - invphi * (b - a)
    d = a + invphi * (b - a)
    fc, fd = f(c), f(d)
    while a.size and np.max(b - a) > 1e-9:
        left_better = fc > fd
        b = np.where(left_better, d, b)
        a = np.where(left_better, a, c)
        new_c = b - invphi * (b - a)
        new_d = a + invphi * (b - a)
        # reuse the surviving interior point
        c_next = np.where(left_better, new_c, d)
        d_next = np.where(left_better, c, new_d)
        f_new = f(np.where(left_better, new_c, new_d))
        fc, fd = np.where(left_better, f_new, fd), np.where(left_better, fc, f_new)
        c, d = c_next, d_next
    if rows.size:
        np.maximum.at(best, rows, np.maximum(fc, fd))
    return np.minimum(best, 1.0)


def pvalues_all_tables(
    n1: int, n2: int, *, test: str = "barnard_pooled", alternative: str = "two-sided",
    refine_band: tuple[float, float] | None = None, only: np.ndarray | None = None,
) -> np.ndarray:
    """p-value of every table (x1, x2) of the sample space of two binomials, in one pass.

    Parameters
    ----------
    n1, n2 : int
        Group sizes (at least 1).
    test : {"barnard_pooled", "barnard_unpooled", "boschloo", "fisher"}
        The test, defined as in :func:`barnard`, :func:`boschloo` and
        ``scipy.stats.fisher_exact`` (two-sided Fisher: tables no more probable, relative
        tolerance 1e-7 as R's fisher.test).
    alternative : {"two-sided", "less", "greater"}
    refine_band : (float, float), optional
        Refine the supremum only for tables whose grid maximum lies in ``[lo, hi)`` and return
        the grid maximum (a slight underestimate) for the others. Exact power uses
        ``(alpha / 2, alpha)``; the rejection decision ``p < alpha`` is then still exact unless
        the grid misses half the supremum. Default: refine every table.
    only : numpy.ndarray of bool, optional
        Shape ``(n1 + 1, n2 + 1)``: compute the p-values of these tables only (the others are
        NaN). The whole sample space still defines every tail; only the supremum searches of
        the tables not asked for are skipped, which is most of the time in a large space.
        The searches run in blocks of rows; while all wanted tables fit in one block (about
        2 million / (n1 + n2 + 1) distinct statistics) the values are exactly those of the
        whole-space pass, otherwise they can differ in the last digits (3e-14 relative,
        measured on a 170 x 283 space), well inside the search's own tolerance. Not with
        ``refine_band``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n1 + 1, n2 + 1)``; entry ``[a, b]`` is the p-value of the table a/n1 vs b/n2.

    Examples
    --------
    >>> p = pvalues_all_tables(11, 12, test="barnard_pooled")
    >>> round(float(p[9, 4]), 4)
    0.0215
    """
    n1 = as_count(n1, "n1")
    n2 = as_count(n2, "n2")
    if n1 == 0 or n2 == 0:
        raise InvalidInputError("n1 and n2 must be at least 1")
    if test not in _TESTS:
        raise InvalidInputError(f"test must be one of {_TESTS}, got {test!r}")
    _check_alternative(alternative)
    want = None
    if only is not None:
        if refine_band is not None:
            raise InvalidInputError("pass either only or refine_band, not both")
        want = np.asarray(only, dtype=bool)
        if want.shape != (n1 + 1, n2 + 1):
            raise InvalidInputError(f"only must have shape {(n1 + 1, n2 + 1)}, got {want.shape}")
    if test == "fisher" and alternative == "two-sided":
        out = _fisher_two_sided(n1, n2).copy()
    elif test == "fisher":
        out = _fisher_one_sided(n1, n2, alternative).copy()
    elif test.startswith("barnard"):
        z = _wald_z(n1, n2, test == "barnard_pooled")
        stat = {"two-sided": np.abs(z), "greater": z, "less": -z}[alternative]
        out = _all_tables_unconditional(stat, n1, n2, "z", refine_band, want)
    elif alternative != "two-sided":
        out = _all_tables_unconditional(
            -_fisher_one_sided(n1, n2, alternative), n1, n2, "fisher", refine_band, want
        )
    else:
        band = None if refine_band is None else (refine_band[0] / 2.0, refine_band[1] / 2.0)
        p_less = _all_tables_unconditional(-_fisher_one_sided(n1, n2, "less"), n1, n2,
                                           "fisher", band, want)
        p_gr = _all_tables_unconditional(-_fisher_one_sided(n1, n2, "greater"), n1, n2,
                                         "fisher", band, want)
        out = np.minimum(2.0 * np.minimum(p_less, p_gr), 1.0)
    if want is not None:
        out[~want] = np.nan
    return out
