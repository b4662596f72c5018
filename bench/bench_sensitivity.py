"""Benchmark the full sensitivity suite on the default (synthetic) Operation Paramount data.

Times each analysis of natexp.causal.sensitivity, natexp.causal.randomization and
natexp.causal.dowhy_model on the embedded synthetic dataset (85 identified, 35 reached) and
prints a Markdown table of median (min-max) wall times over repeats. natexp's exact-test caches
are cleared before every repeat, so the times are cold-start times. For comparison it also times
the tipping-point grid's 675 Boschloo p-values computed table by table with
``scipy.stats.boschloo_exact`` (once; pass --skip-scipy to leave it out).

Usage::

    python bench/bench_sensitivity.py                   # 5 repeats (DoWhy: 3)
    python bench/bench_sensitivity.py --repeats 3 --skip-scipy
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

from natexp.causal import unconditional as U  # noqa: E402
from natexp.causal.dowhy_model import dowhy_analysis  # noqa: E402
from natexp.causal.randomization import placebo_go_live, randomization_test  # noqa: E402
from natexp.causal.sensitivity import (  # noqa: E402
    evalues_2x2,
    leave_one_area_out,
    nonresponse_counts,
    sensitivity_suite,
    tipping_point,
)
from natexp.data.cohort import Design, build_cohort  # noqa: E402
from natexp.data.rollout import load_rollout  # noqa: E402
from natexp.data.synthetic import generate  # noqa: E402


def timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        C.clear_caches(U)
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def fmt(times: list[float]) -> str:
    return f"{statistics.median(times):.3g} s ({min(times):.3g}-{max(times):.3g})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dowhy-repeats", type=int, default=3)
    ap.add_argument("--skip-scipy", action="store_true")
    args = ap.parse_args()

    fam, kids = generate()
    cohort = build_cohort(fam.lazy(), load_rollout(), Design(treatment_counties=("Oxfordshire",)))
    counts = nonresponse_counts(cohort, outcome="chas_support")
    r = args.repeats
    rows = [
        ("tipping point: 675 completions, Boschloo + Fisher",
         timed(lambda: tipping_point(*counts), r)),
        ("E-values (risk ratio + risk difference)",
         timed(lambda: evalues_2x2(counts.x1, counts.r1, counts.x2, counts.r2), r)),
        ("leave one area out (14 rows, Newcombe + exact CI + Boschloo)",
         timed(lambda: leave_one_area_out(cohort, outcome="chas_support"), r)),
        ("randomization over go-live (1287 assignments, exact)",
         timed(lambda: randomization_test(cohort, outcome="chas_support"), r)),
        ("placebo go-live dates (25 shifts, rebuilt cohorts)",
         timed(lambda: placebo_go_live(cohort, outcome="chas_support"), r)),
        ("sensitivity_suite (all of the above)",
         timed(lambda: sensitivity_suite(cohort, rng=1, outcome="chas_support"), r)),
        ("DoWhy model: estimate + 4 refuters (100 sims) + 9999 permutations",
         timed(lambda: dowhy_analysis(cohort, kids, rng=1, outcome="chas_support"),
               args.dowhy_repeats)),
    ]
    if not args.skip_scipy:
        from scipy.stats import boschloo_exact

        grid = tipping_point(*counts).grid

        def scipy_grid() -> np.ndarray:
            return np.array([boschloo_exact([[a, b], [n1 - a, n2 - b]]).pvalue
                             for a, n1, b, n2 in grid.select("x1", "n1", "x2", "n2").rows()])

        rows.append(("[scipy] 675 x boschloo_exact, table by table (1 run)",
                     timed(scipy_grid, 1)))

    print(f"natexp sensitivity benchmark: Python {platform.python_version()}, numpy "
          f"{np.__version__}, scipy {scipy.__version__}, {platform.machine()}")
    print(f"default synthetic data: counts {tuple(counts)}; median (min-max) over repeats\n")
    print("| analysis | time |")
    print("|---|---|")
    for name, times in rows:
        print(f"| {name} | {fmt(times)} |")


if __name__ == "__main__":
    main()
