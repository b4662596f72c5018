"""The run's helper process (natexp.workers): same results as in-process, no stray process.

The helper only moves work (DoWhy's refuters, part of the figures) to a second process; these
tests check that every result is byte-identical to computing it in the main process, that
errors come back as the same exception, and that the helper never outlives its parent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import BrokenExecutor

import polars as pl
import pytest

from natexp import workers
from natexp.causal.result import InvalidInputError


def _add(a, b):
    return a + b


def _fail(message):
    raise InvalidInputError(message)


def _pid():
    return os.getpid()


def _sleep(seconds):
    time.sleep(seconds)
    return seconds


@pytest.fixture(scope="module")
def helper():
    with pytest.MonkeyPatch.context() as mp:  # the suite's runs have no helper by default
        mp.setenv(workers.WORKERS_ENV, "1")
        with workers.pool() as h:
            assert h is not None and workers.current() is h
            yield h
    assert workers.current() is None


def test_helper_runs_tasks_in_another_process_and_returns_errors(helper):
    assert helper.submit(_add, 2, b=3).result(timeout=60) == 5
    assert helper.submit(_pid).result(timeout=60) != os.getpid()
    with pytest.raises(InvalidInputError, match="bad n1"):
        helper.submit(_fail, "bad n1").result(timeout=60)
    # a queued task not yet started can be cancelled (and is then done by the caller)
    busy = helper.submit(_sleep, 0.5)
    queued = helper.submit(_add, 1, 1)
    assert queued.cancel()
    assert busy.result(timeout=60) == 0.5
    assert helper.submit(_add, 1, 2).result(timeout=60) == 3


@pytest.fixture
def outside():
    """No helper of another test's pool is current here."""
    token = workers._CURRENT.set(None)
    yield
    workers._CURRENT.reset(token)


def test_no_helper_when_disabled(monkeypatch, outside):
    monkeypatch.setenv(workers.WORKERS_ENV, "0")
    with workers.pool() as h:
        assert h is None and workers.current() is None
        assert workers.submit(_add, 1, 2) is None
    with workers.pool(active=False) as h:
        assert h is None


def test_a_stopped_helper_fails_its_tasks_cleanly(outside, with_helper):
    with workers.pool() as h:
        fut = h.submit(_sleep, 30)
        time.sleep(0.5)
        h.close()
        with pytest.raises(BrokenExecutor):
            fut.result(timeout=30)
        with pytest.raises(RuntimeError):
            h.submit(_add, 1, 1)


def test_helper_exits_when_its_parent_is_killed(tmp_path, with_helper):
    # the parent: opens a pool, has the helper report its pid, then waits to be killed
    code = (
        "import sys, time, os\n"
        "from natexp import workers\n"
        "def pid():\n    return os.getpid()\n"
        "with workers.pool() as h:\n"
        "    print(h.submit(os.getpid).result(), flush=True)\n"
        "    time.sleep(300)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              cwd=tmp_path)
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        # a zombie (no longer running) counts as gone
        state = open(f"/proc/{child}/stat").read().split(")")[-1].split()[0] \
            if os.path.exists(f"/proc/{child}/stat") else "X"
        if state in ("Z", "X"):
            break
        time.sleep(0.2)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the helper outlived its killed parent")
    assert list(tmp_path.iterdir()) == []  # and it wrote nothing


def test_figures_from_the_helper_are_byte_identical(helper, tmp_path):
    from natexp.report.render import write_figures

    flow = pl.DataFrame({"order": [0, 1, 1], "step": ["input", "identified", "identified"],
                         "arm": ["all", "treatment", "control"],
                         "label": ["In", "Identified", "Identified"], "n": [6, 3, 3]})
    ages = pl.DataFrame({"age": [0, 1, 2, 3], "n": [3, 5, 4, 1]})
    tables = {"flow": flow, "children_by_age": ages}
    with_helper = write_figures({}, tables, tmp_path / "a", dpi=40)
    token = workers._CURRENT.set(None)
    try:
        alone = write_figures({}, tables, tmp_path / "b", dpi=40)
    finally:
        workers._CURRENT.reset(token)
    assert list(with_helper) == list(alone) and len(alone) >= 2
    for name in alone:
        assert with_helper[name].read_bytes() == alone[name].read_bytes(), name


def test_dowhy_in_the_helper_is_identical_to_in_process(helper):
    pytest.importorskip("dowhy")
    from natexp.causal import dowhy_model as D
    from natexp.data.cohort import Design, build_cohort
    from natexp.data.rollout import load_rollout
    from natexp.data.synthetic import generate

    fam, kids = generate()
    cohort = build_cohort(fam.lazy(), load_rollout(), Design(treatment_counties=("Oxfordshire",)))
    kw = {"outcome": "chas_support", "n_simulations": 12, "n_permutations": 199, "rng": 5}
    remote = D.start_dowhy_analysis(cohort, kids, **kw)()  # through the helper
    local = D.dowhy_analysis(cohort, kids, **kw)
    assert json.dumps(remote.to_dict(), sort_keys=True) == json.dumps(local.to_dict(),
                                                                      sort_keys=True)
    assert remote.to_polars().equals(local.to_polars())
    # pandas' object column labels (faster refits) change no number either
    job = D._prepare(cohort, kids, among="followup_reached",
                     method="backdoor.linear_regression", confidence_level=0.95,
                     unobserved_strength=(0.1, 0.1), **kw)
    assert json.dumps(D._fit(job, fast=False).to_dict(), sort_keys=True) == json.dumps(
        local.to_dict(), sort_keys=True)
    # an empty arm is raised when the result is asked for, as before
    empty = build_cohort(fam.lazy(), load_rollout(), Design(treatment_counties=("Nowhere",)))
    finish = D.start_dowhy_analysis(empty, kids, **kw)
    with pytest.raises(InvalidInputError):
        finish()


def test_figures_started_early_are_collected_byte_identical(helper):
    from natexp.report.render import render_figures, start_figures

    flow = pl.DataFrame({"order": [0, 1, 1], "step": ["input", "identified", "identified"],
                         "arm": ["all", "treatment", "control"],
                         "label": ["In", "Identified", "Identified"], "n": [6, 3, 3]})
    ages = pl.DataFrame({"age": [0, 1, 2, 3], "n": [3, 5, 4, 1]})
    tables = {"flow": flow, "children_by_age": ages}
    # handed over with only the flow: the ages figure has no input yet (the helper sends None)
    started = start_figures({}, {"flow": flow}, dpi=40)
    assert "flow" in started and len(started) >= 2  # every early figure is handed over
    early = render_figures({}, tables, dpi=40, started=started)
    token = workers._CURRENT.set(None)
    try:
        assert start_figures({}, tables, dpi=40) == {}  # no helper: nothing handed over
        alone = render_figures({}, tables, dpi=40)
    finally:
        workers._CURRENT.reset(token)
    assert list(early) == list(alone) and len(alone) == 2
    for name in alone:
        assert early[name] == alone[name], name


def test_natexp_processes_collect_garbage_less_often(monkeypatch, helper):
    """``python -m natexp`` (cli) and the run's helper raise the youngest generation's
    threshold; the other generations and the test process's collector are left alone."""
    import gc

    from natexp import __main__ as entry

    assert helper.submit(gc.get_threshold).result(timeout=60)[0] == workers.GC_THRESHOLD
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 11, 12)
        monkeypatch.setattr(entry, "main", lambda: 0)
        monkeypatch.setattr(entry, "exit_now", lambda status: None)
        entry.cli()
        assert gc.get_threshold() == (workers.GC_THRESHOLD, 11, 12)
    finally:
        gc.set_threshold(*saved)
