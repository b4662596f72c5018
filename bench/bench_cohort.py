"""Benchmark natexp's cohort build at national scale against pandas and DuckDB (issue 10).

The same cohort build (window, custody at follow-up, arm by go-live, CONSORT flow counts, uptake
by area x arm x quarter) is written several ways and run side by side from the same Parquet
file:

* ``natexp``: the public API (:func:`natexp.data.cohort.build_cohort`, ``Cohort.flow()``) on a
  ``polars.scan_parquet`` LazyFrame, plus uptake by area x arm x quarter on ``Cohort.members``;
* ``natexp+validation``: the same after :func:`natexp.data.validate.load_inputs` on both files,
  as ``python -m natexp run`` does it;
* ``pandas``: plain pandas (pyarrow dtypes, merge with the schedule, ``np.select`` of the box
  labels, groupby);
* ``pandas-tuned``: pandas with integer box codes and factorised areas (no merge);
* ``duckdb``: SQL, a view over ``read_parquet`` with a CASE of box labels, two aggregate queries;
* ``duckdb-tuned``: the same SQL with integer box codes (the trick natexp uses with an Enum).

Each gives the flow counts (order, step, arm, n) and the uptake table (area, arm, quarter,
families, uptake); all must be identical (checked on every run, before any timing).

Sub-commands::

    python bench/bench_cohort.py compare --data bench/data/n10000000 --out bench/results/cohort_n10000000.md
    python bench/bench_cohort.py make-big --out bench/data/big --parts 10 --families-per-part 10000000
    python bench/bench_cohort.py stream --source 'bench/data/big/*.parquet' --limit 2G --out ...
    python bench/bench_cohort.py e2e --repeats 5 --out bench/results/e2e.md
    python bench/bench_cohort.py worker --impl natexp --source F.parquet   # one run, JSON out

``compare`` times each implementation in-process (one untimed warm-up, then ``--repeats``) and
measures each one's peak memory in a separate process (``worker``) under ``/usr/bin/time``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import glob
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

from natexp.data.cohort import ARMS, EXCLUSIONS, Design, build_cohort  # noqa: E402
from natexp.data.rollout import load_rollout  # noqa: E402

#: Columns of ``families`` the cohort build reads (flow, window, custody, arm, uptake).
COLUMNS = (
    "area",
    "reception_date",
    "release_date",
    "chas_support",
    "followup_reached",
    "interview_consent",
    "interview_completed",
)
ARM_STEPS = ("identified", "not_called", "not_reached", "reached", "agreed_interview",
             "interviewed")
FLOW_SCHEMA = {"order": pl.Int64, "step": pl.String, "arm": pl.String, "n": pl.Int64}
UPTAKE_SCHEMA = {"area": pl.String, "arm": pl.String, "quarter": pl.Date, "families": pl.Int64,
                 "uptake": pl.Int64}
IMPLS = ("natexp", "natexp+validation", "pandas", "pandas-tuned", "duckdb", "duckdb-tuned")
#: Slow implementations: timed with --slow-repeats.
SLOW = ("natexp+validation", "pandas", "pandas-tuned")


# --------------------------------------------------------------------------- implementations


@functools.lru_cache(maxsize=1)
def _example_study():
    """The example study (conf/study/paramount.yaml): its follow-up stages and input contract."""
    import yaml

    from natexp.paths import CONF_DIR
    from natexp.study import Study

    with open(CONF_DIR / "study" / "paramount.yaml", encoding="utf-8") as fh:
        return Study.from_dict(yaml.safe_load(fh))


def run_natexp(source: str, rollout: pl.DataFrame, design: Design, *,
               families: pl.LazyFrame | None = None) -> tuple[pl.DataFrame, ...]:
    """natexp's public API on a lazy Parquet scan (engine: polars' default, streaming in 2.x)."""
    if families is None:
        families = pl.scan_parquet(source)
    cohort = build_cohort(families, rollout, design,
                          followup=_example_study().followup_stages)
    flow = cohort.flow().select(list(FLOW_SCHEMA))
    uptake = (
        cohort.members.group_by(
            "area", "arm", pl.col("reception_date").dt.truncate("1q").alias("quarter")
        )
        .agg(
            pl.len().cast(pl.Int64).alias("families"),
            pl.col("chas_support").sum().cast(pl.Int64).alias("uptake"),
        )
        .sort("area", "arm", "quarter")
        .collect()
    )
    return flow, uptake


def run_natexp_validated(source: str, rollout: pl.DataFrame,
                         design: Design) -> tuple[pl.DataFrame, ...]:
    """natexp as the pipeline runs it: :func:`natexp.data.validate.load_inputs` on both files
    (families and the ``children.parquet`` beside it), then the same cohort build."""
    from natexp.data.validate import load_inputs

    fam = Path(source)
    inputs = load_inputs(fam, fam.with_name("children.parquet"), rollout["area"].to_list(),
                         study=_example_study())
    return run_natexp(source, rollout, design, families=inputs.families)


def _flow_from_counts(counts: dict[str, dict[str, int]]) -> pl.DataFrame:
    """The flow table (order, step, arm, n) from per-box counts, in natexp's layout."""
    rows = [(0, "input", "all", sum(int(c["n"]) for c in counts.values()))]
    order = 1
    for box in EXCLUSIONS:
        rows.append((order, box, "all", int(counts.get(box, {}).get("n", 0))))
        order += 1
    for step in ARM_STEPS:
        for arm in ARMS:
            c = counts.get(arm, {})
            rows.append((order, step, arm, int(c.get("n" if step == "identified" else step, 0))))
        order += 1
    return pl.DataFrame(rows, schema=FLOW_SCHEMA, orient="row")


def _files(source: str) -> list[str]:
    return sorted(glob.glob(source)) if any(ch in source for ch in "*?[") else [source]


def _read_pandas(source: str):
    import pandas as pd

    parts = [pd.read_parquet(f, columns=list(COLUMNS), dtype_backend="pyarrow")
             for f in _files(source)]
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def run_pandas(source: str, rollout: pl.DataFrame, design: Design) -> tuple[pl.DataFrame, ...]:
    """The same build in plain pandas: merge the schedule, np.select the box labels, groupby."""
    import numpy as np
    import pandas as pd

    df = _read_pandas(source)
    ro = rollout.to_pandas(use_pyarrow_extension_array=True)
    df = df.merge(ro, on="area", how="left")

    def flag(s: pd.Series) -> np.ndarray:
        return s.fillna(False).to_numpy(dtype=bool)

    rec = df["reception_date"]
    live = flag(df["go_live"].notna() & (df["go_live"] <= rec))
    outside = flag((rec < design.window_start) | (rec > design.window_end))
    if design.custody_at_followup:
        released = flag(df["release_date"] <= design.followup_date)
    else:
        released = np.zeros(len(df), dtype=bool)
    if design.phases is not None:
        off_phase = ~flag(df["phase"].isin(list(design.phases)))
    else:
        off_phase = np.zeros(len(df), dtype=bool)
    if design.kind == "treated_counties":
        in_treat = flag(df["county"].isin(list(design.treatment_counties)))
        elsewhere, treated = live & ~in_treat, live & in_treat
    else:
        elsewhere, treated = np.zeros(len(df), dtype=bool), live
    df["box"] = np.select([outside, released, off_phase, elsewhere, treated],
                          [*EXCLUSIONS, "treatment"], default="control")
    fr = df["followup_reached"]
    df["n"] = 1
    df["not_called"] = fr.isna()
    df["not_reached"] = ~fr.fillna(True)
    df["reached"] = fr.fillna(False)
    df["agreed_interview"] = df["reached"] & df["interview_consent"].fillna(False)
    df["interviewed"] = df["reached"] & df["interview_completed"].fillna(False)
    stats = ["n", "not_called", "not_reached", "reached", "agreed_interview", "interviewed"]
    per_box = df.groupby("box")[stats].sum()
    counts = {box: {k: int(v) for k, v in row.items()} for box, row in per_box.iterrows()}
    flow = _flow_from_counts(counts)

    members = df[df["box"].isin(ARMS)]
    quarter = (members["reception_date"].astype("datetime64[s]").dt.to_period("Q")
               .dt.start_time.dt.date.rename("quarter"))
    up = (members.groupby(["area", "box", quarter])
          .agg(families=("n", "size"), uptake=("chas_support", "sum"))
          .reset_index())
    uptake = pl.DataFrame(
        {"area": up["area"].astype(str).tolist(), "arm": up["box"].tolist(),
         "quarter": up["quarter"].tolist(), "families": up["families"].to_numpy(),
         "uptake": up["uptake"].to_numpy()},
        schema=UPTAKE_SCHEMA,
    ).sort("area", "arm", "quarter")
    return flow, uptake


def run_pandas_tuned(source: str, rollout: pl.DataFrame,
                     design: Design) -> tuple[pl.DataFrame, ...]:
    """pandas, tuned: integer box codes, areas factorised, no merge (schedule by area code)."""
    import numpy as np
    import pandas as pd

    df = _read_pandas(source)
    ro = {row["area"]: row for row in rollout.iter_rows(named=True)}
    go_live = {a: r["go_live"] for a, r in ro.items()}
    county = {a: r["county"] for a, r in ro.items()}
    phase = {a: r["phase"] for a, r in ro.items()}

    # Days since the epoch as int32; a null becomes NULL_DAY, later than every real date, so
    # "released on or before follow-up" is False for it (reception_date is never null: contract).
    null_day = np.iinfo(np.int32).max

    def days(s: pd.Series) -> np.ndarray:
        return s.astype("int32[pyarrow]").to_numpy(dtype="int32", na_value=null_day)

    rec = days(df["reception_date"])
    rel = days(df["release_date"])
    area_codes, area_names = pd.factorize(df["area"])
    epoch = dt.date(1970, 1, 1)
    gl_by_code = np.array(
        [null_day if go_live.get(a) is None else (go_live[a] - epoch).days for a in area_names],
        dtype="int32",
    )
    gl = gl_by_code[area_codes]
    live = gl <= rec

    def day(d: dt.date) -> int:
        return (d - epoch).days

    outside = (rec < day(design.window_start)) | (rec > day(design.window_end))
    if design.custody_at_followup:
        released = rel <= day(design.followup_date)
    else:
        released = np.zeros(len(df), dtype=bool)
    if design.phases is not None:
        ok = np.array([phase.get(a) in design.phases for a in area_names], dtype=bool)
        off_phase = ~ok[area_codes]
    else:
        off_phase = np.zeros(len(df), dtype=bool)
    if design.kind == "treated_counties":
        treat_area = np.array([county.get(a) in design.treatment_counties for a in area_names])
        in_treat = treat_area[area_codes]
        elsewhere, treated = live & ~in_treat, live & in_treat
    else:
        elsewhere, treated = np.zeros(len(df), dtype=bool), live
    names = [*EXCLUSIONS, "treatment", "control"]
    box = np.select([outside, released, off_phase, elsewhere, treated],
                    np.arange(5, dtype=np.int8), default=np.int8(5)).astype(np.int8)

    fr = df["followup_reached"]
    reached = fr.fillna(False).to_numpy(dtype=bool)
    flags = pd.DataFrame(
        {
            "box": box,
            "n": 1,
            "not_called": fr.isna().to_numpy(),
            "not_reached": (~fr.fillna(True)).to_numpy(dtype=bool),
            "reached": reached,
            "agreed_interview": reached & df["interview_consent"].fillna(False).to_numpy(bool),
            "interviewed": reached & df["interview_completed"].fillna(False).to_numpy(bool),
        }
    )
    per_box = flags.groupby("box").sum()
    counts = {names[b]: {k: int(v) for k, v in row.items()} for b, row in per_box.iterrows()}
    flow = _flow_from_counts(counts)

    member = box >= 4
    mem = pd.DataFrame(
        {
            "area": area_codes[member],
            "arm": box[member],
            # first day of the calendar quarter, as days since the epoch
            "quarter": rec[member],
            "uptake": df["chas_support"].to_numpy(dtype=bool)[member],
        }
    )
    q = pd.to_datetime(mem["quarter"], unit="D").dt.to_period("Q").dt.start_time
    mem["quarter"] = q.dt.date
    up = (
        mem.groupby(["area", "arm", "quarter"], sort=False)["uptake"]
        .agg(["size", "sum"])
        .reset_index()
    )
    uptake = pl.DataFrame(
        {
            "area": [area_names[i] for i in up["area"]],
            "arm": [names[i] for i in up["arm"]],
            "quarter": up["quarter"].tolist(),
            "families": up["size"].to_numpy(),
            "uptake": up["sum"].to_numpy(),
        },
        schema=UPTAKE_SCHEMA,
    ).sort("area", "arm", "quarter")
    return flow, uptake


def _sql_date(d: dt.date) -> str:
    return f"DATE '{d.isoformat()}'"


def run_duckdb(source: str, rollout: pl.DataFrame, design: Design, *,
               coded: bool = False) -> tuple[pl.DataFrame, ...]:
    """The same build in DuckDB SQL: a view over ``read_parquet`` and two aggregate queries.

    ``coded=True`` ("duckdb-tuned"): the CASE gives integer box codes, turned into names only in
    the small results (the trick natexp uses internally with a polars Enum).
    """
    import duckdb

    names = [*EXCLUSIONS, *ARMS]
    label = (lambda name: str(names.index(name))) if coded else (lambda name: f"'{name}'")

    con = duckdb.connect()
    try:
        con.register("rollout_arrow", rollout.to_arrow())
        live = "(r.go_live IS NOT NULL AND r.go_live <= f.reception_date)"
        outside = (f"(f.reception_date < {_sql_date(design.window_start)} "
                   f"OR f.reception_date > {_sql_date(design.window_end)})")
        released = (f"(f.release_date IS NOT NULL AND f.release_date <= "
                    f"{_sql_date(design.followup_date)})" if design.custody_at_followup
                    else "FALSE")
        if design.phases is not None:
            phases = ", ".join(str(p) for p in design.phases)
            off_phase = f"NOT coalesce(r.phase IN ({phases}), FALSE)"
        else:
            off_phase = "FALSE"
        if design.kind == "treated_counties":
            counties = ", ".join("'" + c.replace("'", "''") + "'"
                                 for c in design.treatment_counties)
            in_treat = f"coalesce(r.county IN ({counties}), FALSE)"
            elsewhere, treated = f"({live} AND NOT {in_treat})", f"({live} AND {in_treat})"
        else:
            elsewhere, treated = "FALSE", live
        src = source.replace("'", "''")
        con.execute(f"""
            CREATE TEMP VIEW assigned AS
            SELECT f.*,
              CASE WHEN {outside} THEN {label("outside_window")}
                   WHEN {released} THEN {label("released_before_followup")}
                   WHEN {off_phase} THEN {label("phase_not_selected")}
                   WHEN {elsewhere} THEN {label("live_outside_treatment_area")}
                   WHEN {treated} THEN {label("treatment")}
                   ELSE {label("control")} END AS box
            FROM read_parquet('{src}') AS f
            LEFT JOIN rollout_arrow AS r USING (area)
        """)
        per_box = con.execute("""
            SELECT box,
              count(*) AS n,
              count(*) FILTER (WHERE followup_reached IS NULL) AS not_called,
              count(*) FILTER (WHERE followup_reached = FALSE) AS not_reached,
              count(*) FILTER (WHERE followup_reached) AS reached,
              count(*) FILTER (WHERE followup_reached AND interview_consent) AS agreed_interview,
              count(*) FILTER (WHERE followup_reached AND interview_completed) AS interviewed
            FROM assigned GROUP BY box
        """).fetchall()
        cols = ("n", "not_called", "not_reached", "reached", "agreed_interview", "interviewed")
        counts = {(names[row[0]] if coded else row[0]): dict(zip(cols, row[1:], strict=True))
                  for row in per_box}
        flow = _flow_from_counts(counts)
        arms = ", ".join(label(a) for a in ARMS)
        uptake_arrow = con.sql(f"""
            SELECT area, box AS arm,
              CAST(date_trunc('quarter', reception_date) AS DATE) AS quarter,
              count(*) AS families,
              count(*) FILTER (WHERE chas_support) AS uptake
            FROM assigned WHERE box IN ({arms})
            GROUP BY ALL ORDER BY area, arm, quarter
        """).to_arrow_table()
    finally:
        con.close()
    uptake = pl.from_arrow(uptake_arrow)
    if coded:
        uptake = uptake.with_columns(pl.col("arm").replace_strict(
            list(range(len(names))), names, return_dtype=pl.String))
    uptake = uptake.cast(UPTAKE_SCHEMA).select(list(UPTAKE_SCHEMA)).sort("area", "arm", "quarter")
    return flow, uptake


def run_duckdb_tuned(source: str, rollout: pl.DataFrame,
                     design: Design) -> tuple[pl.DataFrame, ...]:
    """DuckDB with integer box codes (see :func:`run_duckdb`)."""
    return run_duckdb(source, rollout, design, coded=True)


RUNNERS = {
    "natexp": run_natexp,
    "natexp+validation": run_natexp_validated,
    "pandas": run_pandas,
    "pandas-tuned": run_pandas_tuned,
    "duckdb": run_duckdb,
    "duckdb-tuned": run_duckdb_tuned,
}


def check_equal(results: dict[str, tuple[pl.DataFrame, pl.DataFrame]]) -> None:
    """Assert every implementation gave identical flow and uptake frames (after sorting)."""
    from polars.testing import assert_frame_equal

    ref_name, ref = next(iter(results.items()))
    for name, res in results.items():
        for what, a, b, keys in (
            ("flow", ref[0], res[0], ["order", "arm"]),
            ("uptake", ref[1], res[1], ["area", "arm", "quarter"]),
        ):
            try:
                assert_frame_equal(a.sort(keys), b.sort(keys), check_dtypes=True)
            except AssertionError as exc:
                raise AssertionError(f"{what}: {name} differs from {ref_name}: {exc}") from None


# --------------------------------------------------------------------------- sizes


def resolve_source(data: str) -> str:
    """A folder holds ``families.parquet``; anything else is a file or a glob."""
    p = Path(data)
    return str(p / "families.parquet") if p.is_dir() else data


def _arrow_size(files: list[str], columns: list[str] | None) -> tuple[int, int]:
    """Arrow and polars in-memory bytes of ``columns`` (None: all), one row group at a time."""
    import pyarrow.parquet as pq

    arrow = polars_size = 0
    for f in files:
        pf = pq.ParquetFile(f)
        for g in range(pf.metadata.num_row_groups):
            t = pf.read_row_group(g, columns=columns)
            arrow += t.nbytes
            polars_size += pl.from_arrow(t).estimated_size()
    return arrow, polars_size


def column_sizes(source: str, *, validation: bool = False) -> dict[str, float]:
    """Rows, on-disk (compressed Parquet) and in-memory (Arrow) bytes of the columns read.

    ``validation``: also the in-memory size of every column of ``families.parquet`` and the
    ``children.parquet`` beside it (what :func:`natexp.data.validate.load_inputs` reads).
    """
    import pyarrow.parquet as pq

    files = _files(source)
    disk = rows = 0
    for f in files:
        md = pq.ParquetFile(f).metadata
        rows += md.num_rows
        for g in range(md.num_row_groups):
            rg = md.row_group(g)
            for c in range(rg.num_columns):
                col = rg.column(c)
                if col.path_in_schema in COLUMNS:
                    disk += col.total_compressed_size
    arrow, polars_size = _arrow_size(files, list(COLUMNS))
    out = {"rows": rows, "disk": disk, "arrow": arrow, "polars": polars_size}
    if validation:
        both = [source, str(Path(source).with_name("children.parquet"))]
        out["validation_arrow"] = _arrow_size(both, None)[0]
    return out


# --------------------------------------------------------------------------- worker


def worker(args: argparse.Namespace) -> int:
    """One run of one implementation in this process; print JSON (seconds, own peak RSS)."""
    import resource

    rollout, design = load_rollout(), Design(treatment_counties=("Oxfordshire",))
    if args.impl == "none":
        # Baseline: the same imports as the implementation, no query.
        if args.baseline_of.startswith("pandas"):
            import numpy  # noqa: F401
            import pandas  # noqa: F401
            import pyarrow  # noqa: F401
        elif args.baseline_of.startswith("duckdb"):
            import duckdb  # noqa: F401
            import pyarrow  # noqa: F401
        seconds, out = 0.0, None
    else:
        t = time.perf_counter()
        out = RUNNERS[args.impl](args.source, rollout, design)
        seconds = time.perf_counter() - t
    if args.result and out is not None:
        out[0].write_parquet(args.result + ".flow.parquet")
        out[1].write_parquet(args.result + ".uptake.parquet")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"impl": args.impl, "seconds": seconds, "self_maxrss": rss}))
    return 0


def worker_cmd(impl: str, source: str, *, baseline_of: str | None = None,
               result: str | None = None) -> list[str]:
    cmd = [C.PYTHON, str(Path(__file__).resolve()), "worker", "--impl", impl, "--source", source]
    if baseline_of:
        cmd += ["--baseline-of", baseline_of]
    if result:
        cmd += ["--result", result]
    return cmd


# --------------------------------------------------------------------------- compare


def compare(args: argparse.Namespace) -> int:
    source = resolve_source(args.data)
    info = C.machine()
    rollout, design = load_rollout(), Design(treatment_counties=("Oxfordshire",))
    impls = [i for i in IMPLS if i not in (args.skip or [])]
    if not Path(source).with_name("children.parquet").exists():
        impls = [i for i in impls if i != "natexp+validation"]
    print(f"compare: {source} ({', '.join(impls)})", file=sys.stderr, flush=True)

    # 1. Identical results (this run also warms the page cache for every implementation).
    outputs = {name: RUNNERS[name](source, rollout, design) for name in impls}
    check_equal(outputs)
    flow = outputs[impls[0]][0]
    identified = flow.filter(pl.col("step") == "identified")["n"].to_list()

    # 2. Times, in-process, interleaved so load changes hit every implementation alike.
    times: dict[str, list[float]] = {name: [] for name in impls}
    repeats = {name: (args.slow_repeats if name in SLOW else args.repeats)
               for name in impls}
    loads = []
    for r in range(max(repeats.values())):
        for name in impls:
            if r < repeats[name]:
                t = time.perf_counter()
                RUNNERS[name](source, rollout, design)
                times[name].append(time.perf_counter() - t)
        loads.append(os.getloadavg()[0])
        print(f"  repeat {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.3f}s" for n in impls
                                                 if len(times[n]) > r), file=sys.stderr,
              flush=True)

    # 3. Peak memory, one fresh process per implementation, and the imports-only baseline.
    mem: dict[str, dict] = {}
    if not args.no_memory:
        for name in impls:
            runs = []
            for _ in range(args.memory_repeats):
                got = C.peak_rss(worker_cmd(name, source))
                if got["returncode"] != 0:
                    raise RuntimeError(f"memory worker {name} failed:\n{got['stderr'][-2000:]}")
                runs.append(got["maxrss"])
            base = C.peak_rss(worker_cmd("none", source, baseline_of=name))
            mem[name] = {"peak": C.median(runs), "peaks": runs, "baseline": base["maxrss"],
                         "method": base["method"]}
    sizes = column_sizes(source, validation="natexp+validation" in impls)

    # 4. Markdown.
    med = {n: C.median(t) for n, t in times.items()}
    rows = []
    for name in impls:
        row = [name, C.fmt_times(times[name]), len(times[name])]
        row.append("1" if name == "natexp" else f"{med[name] / med['natexp']:.2f}"
                   if "natexp" in med else "—")
        if mem:
            m = mem[name]
            read = sizes["validation_arrow"] if name == "natexp+validation" else sizes["arrow"]
            row += [C.fmt_bytes(m["peak"]), C.fmt_bytes(m["baseline"]),
                    C.fmt_bytes(m["peak"] - m["baseline"]), f"{m['peak'] / read:.2f}"]
        rows.append(row)
    headers = ["implementation", "wall time median (min–max)", "repeats",
               "time / natexp time"]
    if mem:
        headers += ["peak RSS (median)", "imports-only RSS", "peak − imports",
                    "peak / Arrow size of columns read"]
    cmdline = "python bench/bench_cohort.py " + " ".join(sys.argv[1:])
    text = [
        f"## Cohort build, {sizes['rows']:,} families ({Path(source).name})",
        "",
        f"Command: `{cmdline}`",
        "",
        C.md_machine(info),
        f"- load average (1 min) during the timed repeats: "
        f"{min(loads):.2f}–{max(loads):.2f}",
        "",
        f"Identical results checked (flow and uptake frames equal across {', '.join(impls)}); "
        f"identified treatment/control: {identified[0]:,}/{identified[1]:,}.",
        "",
        f"Columns read ({len(COLUMNS)}): {', '.join(COLUMNS)}. On disk (Parquet, zstd): "
        f"{C.fmt_bytes(sizes['disk'])}; in memory as Arrow: {C.fmt_bytes(sizes['arrow'])} "
        f"(as polars: {C.fmt_bytes(sizes['polars'])})."
        + (f" natexp+validation reads every column of families.parquet and children.parquet "
           f"({C.fmt_bytes(sizes['validation_arrow'])} as Arrow), which its last column uses."
           if "validation_arrow" in sizes else ""),
        "",
        C.md_table(headers, rows),
        "",
    ]
    if "natexp" in med:
        ratios = [f"{n} / natexp = {med[n] / med['natexp']:.2f} (natexp / {n} = "
                  f"{med['natexp'] / med[n]:.2f})" for n in impls if n != "natexp"]
        text += ["Ratios of median times: " + "; ".join(ratios) + ".", ""]
        best = {n: min(t) for n, t in times.items()}
        text += ["Ratios of the fastest repeats (least disturbed by other processes; natexp and "
                 "DuckDB use both cores, pandas one): "
                 + "; ".join(f"{n} / natexp = {best[n] / best['natexp']:.2f}"
                             for n in impls if n != "natexp") + ".", ""]
    if mem:
        text += [f"Peak RSS: {next(iter(mem.values()))['method']}, one fresh process per "
                 f"implementation, median of {args.memory_repeats}; 'imports-only RSS' is the "
                 "same worker with the same imports and no query.", ""]
    C.write_result(args.out, "\n".join(text))
    return 0


# --------------------------------------------------------------------------- big data


def make_big(args: argparse.Namespace) -> int:
    """Write ``--parts`` families files of ``--families-per-part`` rows, one part at a time.

    Each part comes from :func:`natexp.data.synthetic.generate` with its own seed and gets
    family ids prefixed with its part number (so ids stay unique); only one part is ever in
    memory, so the generator needs the memory of one part, not of the whole dataset.
    """
    from natexp.data.synthetic import generate

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for k in range(args.parts):
        target = out / f"families-{k:03d}.parquet"
        if target.exists():
            print(f"  exists: {target}", file=sys.stderr)
            continue
        t = time.perf_counter()
        fam, chi = generate(seed=args.seed + k, n_families=args.families_per_part)
        del chi
        fam = fam.with_columns(pl.format("P{}-{}", pl.lit(f"{k:03d}"), "family_id")
                               .alias("family_id"))
        tmp = out / f".families-{k:03d}.parquet.tmp"
        fam.write_parquet(tmp)
        os.replace(tmp, target)
        del fam
        print(f"  wrote {target} in {time.perf_counter() - t:.1f}s", file=sys.stderr,
              flush=True)
    return 0


def _parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]?)", text.strip().upper())
    if not m:
        raise ValueError(f"bad size {text!r} (e.g. 1500M, 2G)")
    return int(float(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2)])


def stream(args: argparse.Namespace) -> int:
    """natexp on a dataset bigger than a memory limit: streaming engine vs in-memory engine.

    Each run is a fresh process under ``prlimit --as=LIMIT`` (address-space limit). The
    streaming result is checked against DuckDB's on the same files (run without the limit).
    """
    limit = _parse_size(args.limit)
    sizes = column_sizes(args.source)
    info = C.machine()
    tmp = Path(tempfile.mkdtemp(prefix="natexp-stream-"))
    rows = []
    results = {}
    small_rows = None
    runs = []
    if args.small:
        # The same limit on 10x fewer rows: what the limit "comfortably holds" in memory.
        small_rows = column_sizes(args.small)["rows"]
        runs += [("natexp", "in-memory", True, args.small), ("natexp", "streaming", True,
                                                             args.small)]
    runs += [("natexp", "streaming", True, args.source), ("natexp", "in-memory", True,
                                                          args.source)]
    if not args.skip_duckdb:
        runs.append(("duckdb", "-", False, args.source))
    for impl, engine, limited, source in runs:
        big = source == args.source
        res = str(tmp / f"{impl}-{engine}-{'big' if big else 'small'}")
        cmd = worker_cmd(impl, source, result=res)
        if limited:
            cmd = ["prlimit", f"--as={limit}", *cmd]
        env = {"POLARS_ENGINE_AFFINITY": engine} if impl == "natexp" else {}
        print(f"  {impl} ({engine}{', limited' if limited else ''}) ...", file=sys.stderr,
              flush=True)
        got = C.peak_rss(cmd, env=env)
        ok = got["returncode"] == 0
        if ok and big:
            results[(impl, engine)] = (pl.read_parquet(res + ".flow.parquet"),
                                       pl.read_parquet(res + ".uptake.parquet"))
        err = [ln.strip() for ln in got["stderr"].splitlines() if ln.strip()]
        oom = [ln for ln in err if "memory allocation" in ln or "MemoryError" in ln]
        why = "" if ok else ((oom or err or [f"exit code {got['returncode']}"])[0][:160])
        n_rows = sizes["rows"] if big else small_rows
        rows.append([f"{n_rows:,}", impl, engine,
                     f"{limit / 2**30:.3g} GiB" if limited else "none",
                     "completed" if ok else f"FAILED: {why}", f"{got['wall']:.1f} s",
                     C.fmt_bytes(got["maxrss"])])
    equal = "not checked"
    if ("natexp", "streaming") in results and ("duckdb", "-") in results:
        check_equal({"natexp streaming": results[("natexp", "streaming")],
                     "duckdb": results[("duckdb", "-")]})
        equal = "identical to DuckDB's (flow and uptake frames)"
    flow = results.get(("natexp", "streaming"), (None,))[0]
    ident = (flow.filter(pl.col("step") == "identified")["n"].to_list()
             if flow is not None else ["?", "?"])
    cmdline = "python bench/bench_cohort.py " + " ".join(sys.argv[1:])
    text = [
        f"## Streaming beyond a memory limit: {sizes['rows']:,} families",
        "",
        f"Command: `{cmdline}`",
        "",
        C.md_machine(info),
        "",
        f"Source: `{args.source}` ({len(glob.glob(args.source))} Parquet files). Columns read: "
        f"{C.fmt_bytes(sizes['disk'])} on disk, {C.fmt_bytes(sizes['arrow'])} as Arrow, "
        f"{C.fmt_bytes(sizes['polars'])} as polars: {sizes['arrow'] / limit:.1f}x the "
        f"address-space limit of {limit / 2**30:.3g} GiB (`prlimit --as={limit}`, which also "
        "counts address space reserved but never touched, so the limit bites well before "
        "peak RSS reaches it). Each run is a fresh process; polars' engine is chosen with "
        "POLARS_ENGINE_AFFINITY; natexp's code is the same in every row. DuckDB runs without "
        "the limit, as the reference for the result.",
        "",
        C.md_table(["families", "implementation", "polars engine", "memory limit", "outcome",
                    "wall time", "peak RSS"], rows),
        "",
        f"Streaming result: {equal}; identified treatment/control "
        f"{ident[0]:,}/{ident[1]:,}." if flow is not None else "Streaming result: none.",
        "",
    ]
    C.write_result(args.out, "\n".join(text))
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    return 0


# --------------------------------------------------------------------------- end to end


def _importtime_lines(stderr: str) -> list[tuple[int, str, float]]:
    """(depth, module, cumulative seconds) for every line of ``python -X importtime`` output."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") < 2:
            continue
        _, cum, name = line[len("import time:"):].split("|", 2)
        try:
            cum_us = int(cum)
        except ValueError:  # the header line
            continue
        stripped = name.lstrip()
        depth = (len(name) - len(stripped) - 1) // 2
        rows.append((depth, stripped.rstrip(), cum_us / 1e6))
    return rows


def _is_third_party(module: str) -> bool:
    top = module.split(".")[0]
    return not (top in sys.stdlib_module_names or top.startswith("_") or top in (
        "natexp", "sitecustomize", "usercustomize", "encodings"))


def _declared(tops: list[str]) -> list[str]:
    """Those of ``tops`` that belong to a distribution natexp's pyproject.toml depends on."""
    import importlib.metadata
    import tomllib

    with open(C.REPO_DIR / "pyproject.toml", "rb") as fh:
        deps = tomllib.load(fh)["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower().replace("_", "-") for d in deps}
    dist_of = importlib.metadata.packages_distributions()
    return [t for t in tops
            if any(d.lower().replace("_", "-") in names for d in dist_of.get(t, []))]


def _dependencies(stderr: str) -> tuple[list[str], list[str]]:
    """Third-party imports of a run: top-level package names, and the modules asked for.

    ``-X importtime`` prints a module after its own imports, one indent level deeper than the
    module that imported it. "Asked for" = third-party modules imported directly by natexp or
    at run time (depth 0), e.g. ``scipy.stats`` rather than ``scipy``; importing exactly those
    is the floor any run of this code pays.
    """
    import importlib.util

    lines = _importtime_lines(stderr)
    found: dict[str, bool] = {}

    def importable(top: str) -> bool:  # -X importtime also lists imports that failed
        if top not in found:
            found[top] = importlib.util.find_spec(top) is not None
        return found[top]

    tops: list[str] = []
    asked: list[str] = []
    for i, (depth, name, _) in enumerate(lines):
        top = name.split(".")[0]
        if not _is_third_party(name) or not importable(top):
            continue
        if top not in tops:
            tops.append(top)
        parent = next((n for d, n, _ in lines[i + 1:] if d < depth), None)
        if depth == 0 or (parent is not None and parent.split(".")[0] == "natexp"):
            if name not in asked:
                asked.append(name)
    return tops, asked


def _git_state() -> str:
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=C.REPO_DIR,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=C.REPO_DIR, capture_output=True, text=True,
                               check=True).stdout.strip()
        return head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def e2e(args: argparse.Namespace) -> int:
    """Time ``python -m natexp run [OVERRIDES]`` (default: the default run) against bare
    dependency imports."""
    import shutil

    work = Path(tempfile.mkdtemp(prefix="natexp-e2e-"))
    try:  # the folder goes even when a run fails
        return _e2e(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _e2e(args: argparse.Namespace, work: Path) -> int:
    import io
    import pstats
    import subprocess

    info = C.machine()
    info["natexp commit"] = _git_state()
    overrides = list(args.overrides or [])
    run_cmd = [C.PYTHON, "-m", "natexp", "run", *overrides, f"output_dir={work / 'out'}"]
    run_text = " ".join(["python -m natexp run", *overrides])
    # What the run imports: -X importtime, once (not timed), with the helper process's work
    # (natexp.workers: DoWhy, part of the figures) done in-process so that one process imports
    # everything the run needs, and the nesting of the import lines stays readable.
    probe = subprocess.run([C.PYTHON, "-X", "importtime", *run_cmd[1:]], cwd=work,
                           capture_output=True, text=True, check=False,
                           env={**os.environ, "NATEXP_WORKERS": "0"})
    if probe.returncode != 0:
        tail = [ln for ln in probe.stderr.splitlines() if not ln.startswith("import time:")]
        raise RuntimeError("the natexp run failed:\n" + "\n".join(tail[-30:]))
    every_top, asked = _dependencies(probe.stderr)
    tops = _declared(every_top)
    top_cmd = [C.PYTHON, "-c", "import " + ", ".join(tops)]
    floor_cmd = [C.PYTHON, "-c", "import " + ", ".join(asked)]
    slow = sorted(((n, t) for d, n, t in _importtime_lines(probe.stderr)
                   if _is_third_party(n) and n in asked), key=lambda r: -r[1])[:12]

    cmds = {"empty": [C.PYTHON, "-c", "pass"], "top": top_cmd, "floor": floor_cmd,
            "run": run_cmd}
    for cmd in cmds.values():  # warm the page cache (and .pyc files)
        subprocess.run(cmd, cwd=work, capture_output=True, check=True)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    loads = []
    for r in range(args.repeats):  # interleaved, so load changes hit all of them alike
        for key, cmd in cmds.items():
            t = time.perf_counter()
            subprocess.run(cmd, cwd=work, capture_output=True, check=True)
            times[key].append(time.perf_counter() - t)
        loads.append(os.getloadavg()[0])
        print(f"  repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
              file=sys.stderr, flush=True)

    # The run's own profile (cProfile of the main process; the helper process is not in it).
    profile_text = "(skipped: --no-profile)"
    if not args.no_profile:
        prof_file = work / "run.prof"
        subprocess.run([C.PYTHON, "-m", "cProfile", "-o", str(prof_file), *run_cmd[1:]],
                       cwd=work, capture_output=True, check=True)
        buf = io.StringIO()
        stats = pstats.Stats(str(prof_file), stream=buf)
        stats.sort_stats("cumulative").print_stats(r"natexp/|dowhy/causal_model|hydra/main", 30)
        profile_text = "\n".join(ln for ln in buf.getvalue().splitlines()[6:] if ln.strip())
        profile_text = profile_text.replace(str(C.REPO_DIR) + "/", "").replace(
            str(Path(C.PYTHON).parent.parent) + "/lib/python3.11/site-packages/", "")

    med = {k: C.median(v) for k, v in times.items()}
    ratio_top, ratio_floor = med["run"] / med["top"], med["run"] / med["floor"]
    cmdline = "python bench/bench_cohort.py " + " ".join(sys.argv[1:])
    rows = [
        ["`python -c pass` (interpreter start)", C.fmt_times(times["empty"]), "—", "—"],
        ["`python -c \"import " + ", ".join(tops) + "\"`", C.fmt_times(times["top"]), "1",
         "—"],
        [f"import of the {len(asked)} modules the run asks for (below)",
         C.fmt_times(times["floor"]), f"{med['floor'] / med['top']:.2f}", "1"],
        [f"`{run_text}`", C.fmt_times(times["run"]),
         f"{ratio_top:.2f}", f"{ratio_floor:.2f}"],
    ]
    text = [
        "## End-to-end run vs bare imports",
        "",
        f"Command: `{cmdline}` ({args.repeats} repeats of each, interleaved, fresh processes, "
        "one untimed warm-up each; cwd a temporary folder; output to a temporary folder).",
        "",
        C.md_machine(info),
        f"- load average (1 min) during the repeats: {min(loads):.2f}–{max(loads):.2f}",
        "",
        C.md_table(["process", "wall time median (min–max)", "ratio to top-level imports",
                    "ratio to modules asked for"], rows),
        "",
        f"Target run <= {args.target:g}x the bare import time: "
        f"**{'met' if ratio_top <= args.target else 'missed'}** "
        f"against the top-level package imports (ratio {ratio_top:.2f}); "
        f"**{'met' if ratio_floor <= args.target else 'missed'}** against importing exactly the modules "
        f"the run asks for (ratio {ratio_floor:.2f}).",
        "",
        "Top-level packages: natexp's declared dependencies (pyproject.toml) that the run "
        "imports. All third-party packages the run loads, directly or not: "
        + ", ".join(every_top) + ".",
        "",
        "Modules the run asks for (imported directly by natexp, or at run time; from "
        "`python -X importtime`): " + ", ".join(f"`{m}`" for m in asked) + ".",
        "",
        "Slowest of those imports (cumulative, one `-X importtime` run):",
        "",
        C.md_table(["module", "cumulative import time"], [[f"`{m}`", f"{t:.3f} s"]
                                                          for m, t in slow]),
        "",
        "cProfile of one run's main process (cumulative time; natexp, DoWhy and Hydra "
        "entry points; the helper process's DoWhy refits and figures are not in it):",
        "",
        "```",
        profile_text,
        "```",
        "",
    ]
    C.write_result(args.out, "\n".join(text))
    return 0


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compare", help="natexp vs pandas vs DuckDB on one dataset")
    p.add_argument("--data", required=True, help="folder with families.parquet, or a file/glob")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--slow-repeats", type=int, default=3,
                   help=f"repeats of the slow implementations ({', '.join(SLOW)})")
    p.add_argument("--memory-repeats", type=int, default=3)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    p.add_argument("--skip", action="append", choices=IMPLS, help="leave an implementation out")
    p.add_argument("--out", help="write the Markdown table here too")
    p.set_defaults(fn=compare)

    p = sub.add_parser("worker", help="one run of one implementation (JSON on stdout)")
    p.add_argument("--impl", required=True, choices=[*IMPLS, "none"])
    p.add_argument("--source", required=True)
    p.add_argument("--baseline-of", choices=IMPLS)
    p.add_argument("--result", help="write the two result frames to RESULT.{flow,uptake}.parquet")
    p.set_defaults(fn=worker)

    p = sub.add_parser("make-big", help="write a large families dataset in parts")
    p.add_argument("--out", required=True)
    p.add_argument("--parts", type=int, default=10)
    p.add_argument("--families-per-part", type=int, default=10_000_000)
    p.add_argument("--seed", type=int, default=20250101)
    p.set_defaults(fn=make_big)

    p = sub.add_parser("stream", help="natexp under a memory limit: streaming vs in-memory")
    p.add_argument("--source", required=True, help="Parquet file or glob")
    p.add_argument("--limit", default="2G", help="address-space limit (prlimit --as), e.g. 2G")
    p.add_argument("--small", help="also run both engines under the limit on this smaller "
                   "dataset (e.g. bench/data/n10000000)")
    p.add_argument("--skip-duckdb", action="store_true")
    p.add_argument("--out")
    p.set_defaults(fn=stream)

    p = sub.add_parser("e2e", help="end-to-end run vs bare dependency imports")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--target", type=float, default=2.5, help="target ratio (issue 20: 2.5)")
    p.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    p.add_argument("overrides", nargs="*", help="Hydra overrides of the run (default: none, "
                   "the default run), e.g. +experiment=oxon_vs_rest")
    p.add_argument("--out")
    p.set_defaults(fn=e2e)

    args = ap.parse_args(argv)
    for name in ("source", "small"):
        if getattr(args, name, None):
            setattr(args, name, resolve_source(getattr(args, name)))
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
