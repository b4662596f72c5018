"""Shared fixtures: a tiny, hand-written valid input in the contract (not synthetic data)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

AREAS = [
    "Oxford", "Cherwell", "South Oxfordshire", "Vale of White Horse", "West Oxfordshire",
    "Milton Keynes", "Buckinghamshire", "West Berkshire", "Bracknell Forest", "Reading",
    "Slough", "Windsor and Maidenhead", "Wokingham",
]
AS_OF = dt.date(2026, 1, 1)


def _example_study():
    """The example study's description (conf/study/paramount.yaml), read without Hydra."""
    import yaml

    from natexp.study import Study

    path = Path(__file__).resolve().parents[1] / "conf" / "study" / "paramount.yaml"
    with open(path, encoding="utf-8") as fh:
        return Study.from_dict(yaml.safe_load(fh))


#: The example study (Operation Paramount): its input contract, tables and wording.
EXAMPLE_STUDY = _example_study()


def tiny_families() -> pl.DataFrame:
    """Four families, every column as text, as an analyst's CSV would hold them."""
    return pl.DataFrame(
        {
            "family_id": ["F1", "F2", "F3", "F4"],
            "area": ["Oxford", "Reading", "Slough", "Cherwell"],
            "reception_date": ["2022-08-01", "2023-01-15", "2023-05-02", "2021-01-10"],
            "release_date": ["", "", "2024-01-01", "2021-06-01"],
            "parent_sex": ["M", "M", "F", "M"],
            "paramount_visit": ["true", "false", "false", "false"],
            "chas_support": ["true", "false", "false", "false"],
            "chas_route": ["paramount", "", "", ""],
            "followup_reached": ["true", "false", "", ""],
            "has_contact": ["false", "", "", ""],
            "contact_view": ["positive", "", "", ""],
            "wants_contact": ["false", "", "", ""],
            "court_order": ["false", "", "", ""],
            "referral_response": ["already_supported", "", "", ""],
            "reason_child": ["", "", "", ""],
            "reason_self": ["", "", "", ""],
            "reason_legal": ["", "", "", ""],
            "interview_consent": ["true", "", "", ""],
            "interview_completed": ["false", "", "", ""],
        }
    )


def tiny_children() -> pl.DataFrame:
    """Five children of the four families."""
    return pl.DataFrame(
        {
            "child_id": ["C1", "C2", "C3", "C4", "C5"],
            "family_id": ["F1", "F1", "F2", "F3", "F4"],
            "age": ["3", "11", "7", "15", "9"],
            "carer": ["mother", "mother", "mother", "grandparent", "mother"],
            "cwcf": ["false", "false", "false", "false", "false"],
            "sgo": ["false", "false", "false", "true", "false"],
        }
    )


def write_table(df: pl.DataFrame, path: Path) -> Path:
    """Write ``df`` as CSV, Parquet or Excel by the path's suffix."""
    if path.suffix == ".csv":
        df.write_csv(path)
    elif path.suffix == ".parquet":
        df.write_parquet(path)
    elif path.suffix == ".xlsx":
        df.write_excel(path)
    else:
        raise ValueError(path)
    return path


@pytest.fixture
def write_inputs(tmp_path):
    """Write (families, children) frames to files; returns their paths."""

    def _write(fam: pl.DataFrame | None = None, chi: pl.DataFrame | None = None, fmt="csv"):
        fam = tiny_families() if fam is None else fam
        chi = tiny_children() if chi is None else chi
        return (
            write_table(fam, tmp_path / f"families.{fmt}"),
            write_table(chi, tmp_path / f"children.{fmt}"),
        )

    return _write


def holm_by_definition(p: list[float]) -> list[float]:
    """Holm (1979) by its definition: the i-th smallest p times (m - i + 1), running maximum
    over the smaller ones, capped at 1 (a brute-force oracle of the Holm-adjusted p-values
    natexp reports, no numpy)."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adj, run = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        run = max(run, min(1.0, (m - rank) * p[i]))
        adj[i] = run
    return adj


# --------------------------------------------------------------------------- one shared run

#: The overrides of the in-process run the report tests share: the default experiment with
#: DoWhy's refuters off (about 10 s; the report only lays out their numbers).
REPORT_RUN_OVERRIDES = ("+experiment=oxon_vs_rest", "sensitivity.dowhy=false")


@pytest.fixture(scope="session")
def example_run():
    """One in-process run (``write=False``) of :data:`REPORT_RUN_OVERRIDES`, computed once per
    test session (per xdist worker; its users share an xdist group). A ``RunResult``: users
    take :func:`run_copy` of it, so no test sees what another changed."""
    from natexp.config import compose
    from natexp.pipeline import run

    return run(compose(list(REPORT_RUN_OVERRIDES)), write=False)


@pytest.fixture(scope="session")
def cli_default_run(tmp_path_factory):
    """``python -m natexp run +experiment=oxon_vs_rest`` (everything on: DoWhy, figures, the
    report, and the run's helper process, as a user runs it) in a fresh folder, once per
    session: ``(cwd, completed process)``; the outputs are in
    ``cwd / "outputs" / "oxon_vs_rest"``. Its users share an xdist group."""
    from natexp.workers import WORKERS_ENV

    cwd = tmp_path_factory.mktemp("cli_default_run")
    proc = natexp_process("run", "+experiment=oxon_vs_rest", cwd=cwd, env={WORKERS_ENV: "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, proc


def natexp_process(*args: str, cwd, env: dict[str, str] | None = None, timeout: float = 600):
    """``python -m natexp ARGS`` as a new process of this checkout's natexp (``PYTHONPATH``),
    in ``cwd``, with ``env`` added to the environment: a ``CompletedProcess`` with its output
    as text."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **(env or {})}
    return subprocess.run([sys.executable, "-m", "natexp", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def natexp_in_process(*args: str, cwd, env: dict[str, str] | None = None):
    """``python -m natexp ARGS`` run inside this test process, as a ``CompletedProcess``.

    It calls :func:`natexp.__main__.main` (what the ``python -m natexp`` process runs before it
    exits with the returned status) in the folder ``cwd``, with ``env`` added to the
    environment, its stdout and stderr captured. The working folder, the environment (natexp's
    ``--config-dir`` extends ``NATEXP_EXPERIMENTS_PATH``) and the logging handlers (Hydra
    configures a stdout handler per job) are put back afterwards. An exit through
    ``SystemExit`` (argparse) gives the status a process would have had.

    For the tests whose subject is a command's result (its exit status, its messages, what it
    wrote) rather than the process: a light run costs a third of a new process here, which
    imports natexp, Hydra and scipy again (measured: ~0.8 s of CPU against ~3 s). The tests of
    the process itself start one: the README's default run and one bad input's exit status
    (tests/test_cli.py), locks held by another process, signals and kills
    (tests/test_output_safety.py), the docs' commands of a new study, the launchers and an
    installed natexp.
    """
    import contextlib
    import io
    import logging
    import os
    import subprocess

    from natexp.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        os.environ.update(env or {})
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(list(args))
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
                if exc.code is not None and not isinstance(exc.code, int):
                    print(exc.code, file=err)  # as the interpreter prints sys.exit("text")
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    return subprocess.CompletedProcess(["natexp", *args], status, out.getvalue(),
                                       err.getvalue())


def run_copy(res) -> tuple[dict, dict]:
    """(results, tables) of a ``RunResult``: the results deep-copied, the tables' dict copied
    (polars frames are immutable)."""
    import copy

    return copy.deepcopy(res.results), dict(res.tables)


# --------------------------------------------------------------------------- on-disk caches


def pytest_configure(config):
    """One on-disk cache for the whole session (every xdist worker and every ``natexp``
    process a test starts inherit it), so natexp's wheel is built once per session rather than
    once per bundle, and nothing is written into the user's own cache folder. A
    ``NATEXP_CACHE_DIR`` set by the caller is kept.

    The garbage collector runs as in ``python -m natexp`` (:func:`natexp.workers.tune_gc`).

    Runs compute in their own process (``NATEXP_WORKERS=0``, unless the caller set it) except
    where a test asks for the run's helper process (:func:`with_helper`): the helper only moves
    work to a second core (the outputs are byte-identical, tested), and under xdist both cores
    already run tests, so here it adds a second interpreter's imports and saves no time (the
    default run on the command line: 9.6-9.8 s of CPU without it, 11.4-12.7 s with it, two
    runs each; bench/README.md, "Test suite time / Session 9").
    """
    import os
    import tempfile

    from natexp.workers import WORKERS_ENV, tune_gc

    os.environ.setdefault(WORKERS_ENV, "0")
    # The test processes collect garbage as natexp's own processes do: report, causal, bundle
    # and degenerate-data tests in one process spent 19.3 s of 221 s in the collector at
    # Python's default, 7.4 s of 188 s this way (bench/README.md, "Test suite time / Session 12").
    tune_gc()
    if "NATEXP_CACHE_DIR" not in os.environ and not hasattr(config, "workerinput"):
        os.environ["NATEXP_CACHE_DIR"] = tempfile.mkdtemp(prefix="natexp-test-cache-")
        config._natexp_cache_dir = os.environ["NATEXP_CACHE_DIR"]


@pytest.fixture
def with_helper(monkeypatch):
    """Runs in this test (and the processes it starts) use the run's helper process, as a
    user's do (the suite's default is without: :func:`pytest_configure`)."""
    from natexp.workers import WORKERS_ENV

    monkeypatch.setenv(WORKERS_ENV, "1")


def pytest_unconfigure(config):
    import os
    import shutil

    made = getattr(config, "_natexp_cache_dir", None)
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)
        if os.environ.get("NATEXP_CACHE_DIR") == made:
            del os.environ["NATEXP_CACHE_DIR"]


# --------------------------------------------------------------------------- pytest-xdist groups


#: Tests that take minutes (measured: bench/README.md, "Test suite time"), started first among
#: the single tests (xdist hands out the fixture groups first, largest first).
LONGEST_FIRST = (
    "tests/test_new_study.py::test_a_scaffolded_study_runs_bundles_and_verifies",
    "tests/test_output_safety.py::test_killed_run_bundle_and_verify_leave_no_record_behind",
    "tests/test_install.py",
    "tests/causal/test_unconditional.py::test_no_accepted_null_outside_the_reported_set",
    "tests/causal/test_unconditional.py::test_interval_excludes_the_null_exactly_when_the_test",
    "tests/test_new_study.py::test_lantern_runs_end_to_end_on_synthetic_data",
    "tests/test_degenerate_data.py::test_valid_extracts_never_crash",
    "tests/test_launchers.py",
    "tests/bundle/",
    "tests/test_notebooks.py",
)


def _first_rank(nodeid: str) -> int:
    return next((i for i, p in enumerate(LONGEST_FIRST) if nodeid.startswith(p)),
                len(LONGEST_FIRST))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Keep tests that share an expensive fixture on one xdist worker (``--dist loadgroup``).

    A fixture of this suite scoped wider than a function (a module's pipeline run, a bundle, a
    fresh virtual environment) is computed once per worker that uses it. Tests that share one
    (transitively: a test using fixtures A and B joins A's and B's users) form one group, so
    each such fixture is computed once; every other test goes to whichever worker is idle.

    The group is the ``@name`` suffix of the test's id that xdist's loadgroup scheduler reads.
    It is written here rather than through ``xdist_group`` marks: pytest-xdist 3.8 writes the
    suffix into ``item._nodeid``, which pytest 9.2's structured node ids no longer read, so the
    marks are silently ignored (pytest-xdist issue #1386). Without xdist nothing changes.
    """
    # The longest tests first: with two workers, one that starts late would leave the other
    # idle at the end. xdist's loadgroup scheduler hands out its units (a group, or a single
    # test) largest group first (its --loadscope-reorder, on by default) and in collection
    # order among units of one size, so this order decides among the single tests; measured
    # (bench/README.md, "Test suite time / Session 11"), the two workers still finish together.
    items.sort(key=lambda item: _first_rank(item.nodeid))
    if not config.getoption("loadgroup", default=False):  # set by xdist in its workers
        return
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    shared_of = {}
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        keys = sorted(
            f"{defs[-1].baseid}-{name}"
            for name, defs in (info.name2fixturedefs.items() if info else ())
            if defs and defs[-1].scope != "function" and defs[-1].baseid.startswith("tests")
        )
        if keys:
            shared_of[item] = keys
            for key in keys[1:]:
                parent[find(key)] = find(keys[0])
    for item, keys in shared_of.items():
        _set_group(item, find(keys[0]))


def _set_group(item, group: str) -> None:
    """Append ``@group`` to the item's node id (pytest 9.2: ``_id``; before: ``_nodeid``)."""
    structured = getattr(item, "_id", None)
    if structured is not None and hasattr(structured, "names"):
        # the suffix goes after the parameters ("test[a]@group"): the whole last name, so that
        # the id prints (and reaches xdist's scheduler) as exactly that string
        last = structured.names[-1]
        if structured.params is not None:
            last += f"[{structured.params}]"
        item._id = type(structured)(path=structured.path,
                                    names=(*structured.names[:-1], f"{last}@{group}"))
    else:
        item._nodeid = f"{item.nodeid}@{group}"
