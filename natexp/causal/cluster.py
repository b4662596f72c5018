"""Comparisons of two groups when observations come in clusters (children within families).

Descriptive tables often count children, but siblings share a parent, a carer and often a care
status, so child-level tests assume an independence that fails. Two cluster-aware analyses:

* :func:`cluster_robust_rd`: the risk difference (treated minus untreated share) with a
  cluster-robust (sandwich, CR1) standard error: the ordinary least-squares coefficient of a
  0/1 outcome on a 0/1 group, with the small-sample factor ``G / (G - 1) * (N - 1) / (N - 2)``
  that Stata and statsmodels use (Cameron and Miller 2015, "A practitioner's guide to
  cluster-robust inference", J Human Resources 50:317-372), and a normal reference
  distribution as statsmodels' default.
* :func:`family_level_table`: one row per cluster (family): does any child of the family have
  the outcome? A 2x2 table of families, to be tested with exact tests.

The group must be constant within a cluster (a family's imprisoned parent has one sex).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from natexp.causal.result import InvalidInputError, Result

__all__ = ["cluster_robust_rd", "family_level_table"]


def _arrays(y: Any, group: Any, cluster: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yv = np.asarray(y, dtype=float).ravel()
    gv = np.asarray(group, dtype=float).ravel()
    cv = np.asarray(cluster).ravel()
    if not (yv.shape == gv.shape == cv.shape):
        raise InvalidInputError("y, group and cluster must have the same length")
    if not (np.isin(yv, (0.0, 1.0)).all() and np.isin(gv, (0.0, 1.0)).all()):
        raise InvalidInputError("y and group must be 0/1")
    return yv, gv, cv


def cluster_robust_rd(y: Any, group: Any, cluster: Any, *,
                      confidence_level: float = 0.95) -> Result:
    """Risk difference of ``y`` between ``group == 1`` and ``group == 0``, cluster-robust.

    Parameters
    ----------
    y, group : arrays of 0/1
        Outcome and group of each observation.
    cluster : array
        Cluster label of each observation (e.g. ``family_id``).
    confidence_level : float, default 0.95

    Returns
    -------
    Result
        ``method`` "risk_difference.cluster_robust"; ``estimate`` ``p1 - p0``; Wald ``ci``,
        ``statistic`` (z) and two-sided ``pvalue`` with the CR1 standard error; ``extra``:
        ``se_cluster``, ``se_independent`` (the usual binomial standard error), ``design_effect``
        (ratio of the two variances), ``clusters``. Without both groups, two clusters and
        three observations (CR1's factor ``(n - 1) / (n - 2)`` needs a residual degree of
        freedom) every number is NaN and ``note`` says so.

    Examples
    --------
    >>> r = cluster_robust_rd([1, 1, 0, 0, 1, 0], [1, 1, 1, 0, 0, 0], [1, 1, 2, 3, 3, 4])
    >>> round(r.estimate, 4), r.extra["clusters"]
    (0.3333, 4)
    """
    from scipy.stats import norm

    yv, gv, cv = _arrays(y, group, cluster)
    if not 0 < float(confidence_level) < 1:
        raise InvalidInputError("confidence_level must be in (0, 1)")
    labels, inv = np.unique(cv, return_inverse=True)
    n, g = yv.size, labels.size
    n1, n0 = int(gv.sum()), int(n - gv.sum())
    method, label = "risk_difference.cluster_robust", "Risk difference, cluster-robust (CR1)"
    if n1 == 0 or n0 == 0 or g < 2 or n < 3:
        # CR1's small-sample factor (n - 1) / (n - 2) needs a residual degree of freedom
        return Result(method=method, label=label, n=(n1, n0),
                      note="needs both groups, at least two clusters and three observations",
                      extra={"clusters": int(g)})
    for k in range(g):
        if np.unique(gv[inv == k]).size > 1:
            raise InvalidInputError("the group must be constant within each cluster")
    p1, p0 = yv[gv == 1].mean(), yv[gv == 0].mean()
    x = np.column_stack([np.ones(n), gv])
    e = yv - np.where(gv == 1, p1, p0)
    bread = np.linalg.inv(x.T @ x)
    scores = np.zeros((g, 2))
    np.add.at(scores, inv, x * e[:, None])
    meat = scores.T @ scores
    factor = g / (g - 1) * (n - 1) / (n - 2)
    v = factor * bread @ meat @ bread
    se = math.sqrt(v[1, 1])
    se_ind = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    rd = p1 - p0
    z = norm.ppf(0.5 + float(confidence_level) / 2)
    stat = rd / se if se > 0 else math.nan
    return Result(
        method=method, estimate=rd, ci=(rd - z * se, rd + z * se),
        confidence_level=float(confidence_level), statistic=stat,
        pvalue=2 * norm.sf(abs(stat)) if se > 0 else math.nan, n=(n1, n0), label=label,
        extra={"se_cluster": se, "se_independent": se_ind, "clusters": int(g),
               "design_effect": (se / se_ind) ** 2 if se_ind > 0 else math.nan},
    )


def family_level_table(y: Any, group: Any, cluster: Any) -> dict[str, int]:
    """Clusters (families) per group, and those with the outcome in at least one member.

    Returns
    -------
    dict
        ``x1, n1`` (group 1: clusters with any ``y``, clusters) and ``x0, n0`` (group 0).

    Examples
    --------
    >>> family_level_table([1, 1, 0, 0, 1, 0], [1, 1, 1, 0, 0, 0], [1, 1, 2, 3, 3, 4])
    {'x1': 1, 'n1': 2, 'x0': 1, 'n0': 2}
    """
    yv, gv, cv = _arrays(y, group, cluster)
    labels, inv = np.unique(cv, return_inverse=True)
    anyy = np.zeros(labels.size)
    np.maximum.at(anyy, inv, yv)
    grp = np.zeros(labels.size)
    np.maximum.at(grp, inv, gv)
    low = np.ones(labels.size)
    np.minimum.at(low, inv, gv)
    if not np.array_equal(low, grp):
        raise InvalidInputError("the group must be constant within each cluster")
    return {"x1": int(anyy[grp == 1].sum()), "n1": int((grp == 1).sum()),
            "x0": int(anyy[grp == 0].sum()), "n0": int((grp == 0).sum())}
