"""Benchmark natexp's exact unconditional tests, intervals and exact power against scipy.

Runs natexp and scipy side by side, in one run, on the same tables, and prints a Markdown table
of median (min-max) wall times over repeats, the ratio scipy / natexp and both p-values.
natexp's caches are cleared before every natexp repeat (and the --before commit's before
each of its repeats), so the times are cold-start times.

Usage::

    python bench/bench_unconditional.py                 # full run (a few minutes)
    python bench/bench_unconditional.py --repeats 5 --scipy-repeats 1
    python bench/bench_unconditional.py --skip-scipy-power --skip-1000
    python bench/bench_unconditional.py --intervals-only --before 8edfd1a

``--before COMMIT`` also times the interval code of an earlier commit (its
``natexp/causal/unconditional.py``, read with ``git show`` into a temporary directory and
imported there) on the same tables in the same run: the "before" column.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import scipy
from scipy.stats import barnard_exact, binom, boschloo_exact

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

from natexp.causal import unconditional as U  # noqa: E402
from natexp.causal.power import exact_power  # noqa: E402


def timed(fn, repeats: int, cold: bool = False, module=U):
    times, out = [], None
    for _ in range(repeats):
        if cold:
            C.clear_caches(module)
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, times


def fmt(times: list[float] | None) -> str:
    if not times:
        return "—"
    med = statistics.median(times)
    return f"{med:.3g} s ({min(times):.3g}–{max(times):.3g})"


def scipy_power_boschloo(n1: int, n2: int, p1: float, p2: float, alpha: float = 0.05) -> float:
    """Exact power by calling scipy.stats.boschloo_exact on every table (the naive way)."""
    power = 0.0
    b1 = binom.pmf(np.arange(n1 + 1), n1, p1)
    b2 = binom.pmf(np.arange(n2 + 1), n2, p2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a in range(n1 + 1):
            for b in range(n2 + 1):
                if boschloo_exact([[a, b], [n1 - a, n2 - b]]).pvalue < alpha:
                    power += b1[a] * b2[b]
    return power


def load_before(commit: str):
    """natexp.causal.unconditional as it was at ``commit`` (imported from a temporary file)."""
    root = Path(__file__).resolve().parent.parent
    text = subprocess.run(["git", "show", f"{commit}:natexp/causal/unconditional.py"], cwd=root,
                          check=True, capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory(prefix="natexp-bench-") as tmp:  # removed once loaded
        path = Path(tmp) / "unconditional_before.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location("unconditional_before", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["unconditional_before"] = module
        spec.loader.exec_module(module)
    return module


def interval_rows(repeats: int, before: str | None) -> list[tuple]:
    """Interval times, this tree beside ``before`` (median (min-max) over repeats, cold)."""
    old = load_before(before) if before else None
    cases = [((30, 100, 20, 100), m, i) for m in ("rd", "rr") for i in ("two-sided", "central")]
    cases += [((30, 100, 20, 100), "or", "two-sided"), ((4, 20, 2, 15), "rd", "two-sided"),
              ((6, 48, 3, 3), "rd", "two-sided"), ((120, 400, 90, 400), "rd", "two-sided")]
    rows = []
    for table, measure, inversion in cases:
        def new(t=table, m=measure, i=inversion):
            r = U.exact_unconditional_ci(*t, measure=m, inversion=i)
            return "({:.4f}, {:.4f}) {} piece(s)".format(*r.ci, len(r.extra["confidence_set"]))
        out_new, t_new = timed(new, repeats, cold=True)
        out_old, t_old = "—", None
        if old is not None and measure != "or":
            def prev(t=table, m=measure, i=inversion):
                r = old.exact_unconditional_ci(*t, measure=m, inversion=i)
                return "({:.4f}, {:.4f})".format(*r.ci)
            out_old, t_old = timed(prev, repeats, cold=True, module=old)
        name = f"{measure.upper()} {inversion}, {table[0]}/{table[1]} vs {table[2]}/{table[3]}"
        rows.append((name, fmt(t_new), fmt(t_old), out_new, out_old))
        print(f"  done: {name}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="natexp repeats (default 5)")
    ap.add_argument("--scipy-repeats", type=int, default=3, help="scipy repeats (default 3)")
    ap.add_argument("--skip-1000", action="store_true", help="skip the n = 1000 per arm cases")
    ap.add_argument("--skip-scipy-power", action="store_true",
                    help="skip the naive scipy power loop (about a minute)")
    ap.add_argument("--intervals-only", action="store_true",
                    help="only the exact unconditional intervals (with --before)")
    ap.add_argument("--before", default=None,
                    help="also time the intervals of this git commit (the 'before' column)")
    args = ap.parse_args()
    if args.intervals_only:
        rows = interval_rows(args.repeats, args.before)
        print()
        print(f"Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()};"
              f" repeats {args.repeats}")
        print()
        print("| interval | natexp now, median (min–max) | before "
              f"({args.before or '—'}) | natexp now | before |")
        print("|---|---|---|---|---|")
        for r in rows:
            print("| " + " | ".join(str(v) for v in r) + " |")
        return

    rows = []

    def compare(name, ours_fn, theirs_fn, sreps=None):
        ours, t_ours = timed(ours_fn, args.repeats, cold=True)
        theirs, t_theirs = (None, None)
        if theirs_fn is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs, t_theirs = timed(theirs_fn, sreps or args.scipy_repeats)
        ratio = (f"{statistics.median(t_theirs) / statistics.median(t_ours):.0f}x"
                 if t_theirs else "—")
        rows.append((name, fmt(t_ours), fmt(t_theirs), ratio, ours,
                     "—" if theirs is None else theirs))
        print(f"  done: {name}", flush=True)

    sizes = [500] if args.skip_1000 else [500, 1000]
    for n in sizes:
        x1, x2 = int(0.30 * n), int(0.25 * n)
        table = [[x1, x2], [n - x1, n - x2]]
        compare(f"Barnard pooled, two-sided, {x1}/{n} vs {x2}/{n}",
                lambda x1=x1, x2=x2, n=n: f"{U.barnard(x1, n, x2, n).pvalue:.6g}",
                lambda table=table: f"{barnard_exact(table).pvalue:.6g}")
        compare(f"Boschloo, two-sided, {x1}/{n} vs {x2}/{n}",
                lambda x1=x1, x2=x2, n=n: f"{U.boschloo(x1, n, x2, n).pvalue:.6g}",
                lambda table=table: f"{boschloo_exact(table).pvalue:.6g}")

    for measure in ("rd", "rr"):
        for inversion in ("two-sided", "central"):
            compare(f"exact unconditional CI ({measure}, {inversion}), 30/100 vs 20/100",
                    lambda m=measure, i=inversion: "({:.4f}, {:.4f})".format(
                        *U.exact_unconditional_ci(30, 100, 20, 100, measure=m, inversion=i).ci),
                    None)

    compare("exact power, Boschloo two-sided, n = 50 + 50, p 0.3 vs 0.6",
            lambda: f"{exact_power(50, 50, 0.3, 0.6, test='boschloo').estimate:.6f}",
            None if args.skip_scipy_power
            else (lambda: f"{scipy_power_boschloo(50, 50, 0.3, 0.6):.6f}"),
            sreps=1)
    compare("exact power, Barnard pooled two-sided, n = 50 + 50",
            lambda: f"{exact_power(50, 50, 0.3, 0.6, test='barnard_pooled').estimate:.6f}", None)
    compare("exact power, Fisher two-sided, n = 50 + 50",
            lambda: f"{exact_power(50, 50, 0.3, 0.6).estimate:.6f}", None)

    print()
    print(f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__},"
          f" {platform.machine()}; natexp repeats {args.repeats} (cold caches), scipy repeats "
          f"{args.scipy_repeats} (naive scipy power loop: 1)")
    print()
    print("| case | natexp median (min–max) | scipy median (min–max) | scipy / natexp "
          "| natexp result | scipy result |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(str(v) for v in r) + " |")


if __name__ == "__main__":
    main()
