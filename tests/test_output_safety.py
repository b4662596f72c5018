"""Issue 13, output side: natexp never deletes or overwrites a file it did not write, checks its
output location before the analysis, and leaves no record behind even when it is killed.

Each test states the behaviour seen before the change that it guards against. Commands whose
test is about what they write or refuse run inside the test process
(``tests.conftest.natexp_in_process``); a lock held by another process, signals and kills need
a process of their own.
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import polars as pl
import pytest

from natexp.safety import (
    OUTPUT_MARKER,
    STAGING_MARKER,
    OutputDirError,
    OutputLock,
    check_target,
    staging_dir,
    sweep_stale,
)
from tests.conftest import natexp_in_process, natexp_process

REPO = Path(__file__).resolve().parents[1]
EXP = "+experiment=oxon_vs_rest"
LIGHT = ("sensitivity.enabled=false", "report.enabled=false")
CANARY = b"CANARY-"


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- refused targets


def test_output_dir_dot_is_refused_and_nothing_is_touched(tmp_path):
    """Before: ``output_dir=.`` emptied the working folder."""
    (tmp_path / "thesis.docx").write_bytes(b"years of work")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text("mine")
    before = tree(tmp_path)
    proc = natexp_in_process("run", EXP, "output_dir=.", *LIGHT, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "not a natexp output" in proc.stderr and "nothing was written" in proc.stderr
    assert tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub", "thesis.docx"]


def test_output_dir_that_is_a_file_is_refused(tmp_path):
    """Before: a file given as output_dir was replaced by a folder."""
    (tmp_path / "results").write_text("a file, not a folder")
    proc = natexp_in_process("run", EXP, "output_dir=results", *LIGHT, cwd=tmp_path)
    assert proc.returncode == 2
    assert "is not a folder" in proc.stderr
    assert (tmp_path / "results").read_text() == "a file, not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_check_target_rules(tmp_path):
    assert check_target(tmp_path / "new") == {}
    (tmp_path / "empty").mkdir()
    assert check_target(tmp_path / "empty") == {}
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.csv").write_text("1")
    with pytest.raises(OutputDirError, match="not a natexp output"):
        check_target(other)
    # what Hydra writes into a sweep's job folder does not make it somebody else's
    hydra = tmp_path / "job"
    (hydra / ".hydra").mkdir(parents=True)
    (hydra / ".hydra" / "config.yaml").write_text("a: 1")
    assert check_target(hydra, tolerate=(".hydra",)) == {}
    # a forged or unreadable marker is not natexp's
    (other / OUTPUT_MARKER).write_text("not json")
    with pytest.raises(OutputDirError):
        check_target(other)


def test_a_previous_natexp_output_is_replaced_file_by_file(tmp_path):
    """A previous natexp output (marker + manifest) is replaced; only the files it lists are
    removed; the user's own files in it stay; a listed file the user edited is refused.
    The folder gets the user's umask, not mode 700 (before: 0700 from mkdtemp)."""
    old = os.umask(0o022)
    try:
        proc = natexp_in_process("run", EXP, "output_dir=out", *LIGHT, cwd=tmp_path)
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    manifest = json.loads((out / OUTPUT_MARKER).read_text())
    assert manifest["natexp"] == "output" and "results.json" in manifest["files"]
    assert set(manifest["files"]) == set(tree(out)) - {OUTPUT_MARKER}
    (out / "my_notes.txt").write_text("mine")
    (out / "flow.csv").unlink()  # the user may delete natexp's files
    proc = natexp_in_process("run", EXP, "output_dir=out", "design.window_end=2023-06-30", *LIGHT,
                             cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (out / "my_notes.txt").read_text() == "mine"
    res = json.loads((out / "results.json").read_text())
    assert res["design"]["window_end"] == "2023-06-30"
    assert (out / "flow.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no lock or staging left
    # a file natexp wrote but the user changed afterwards is not overwritten
    (out / "uptake.csv").write_text("edited by hand")
    before = tree(out)
    proc = natexp_in_process("run", EXP, "output_dir=out", *LIGHT, cwd=tmp_path)
    assert proc.returncode == 2
    assert "changed since natexp wrote them" in proc.stderr
    assert tree(out) == before


def test_results_json_holds_no_absolute_paths(tmp_path):
    """Before: results.json carried the absolute paths of the inputs and the output folder."""
    data = tmp_path / "secret-location" / "extract"
    proc = natexp_in_process("synth", "--out", str(data), "--format", "csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "elsewhere" / "out"
    proc = natexp_in_process("run", EXP, f"data.families={data / 'families.csv'}",
                             f"data.children={data / 'children.csv'}", "data.as_of=2026-01-01",
                             f"output_dir={out}", *LIGHT, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (out / "results.json").read_text()
    assert str(tmp_path) not in text and "secret-location" not in text
    res = json.loads(text)
    assert res["config"]["data"]["families"] == "families.csv"
    assert res["config"]["output_dir"] is None
    assert res["inputs"]["families"]["file"] == "families.csv"
    assert len(res["inputs"]["families"]["sha256"]) == 64
    for name, blob in tree(out).items():
        assert str(tmp_path).encode() not in blob, name


def test_a_replacement_interrupted_half_way_leaves_a_folder_natexp_may_still_replace(
        tmp_path, monkeypatch):
    """SIGTERM between widening the marker and moving the new files in: the folder keeps a
    marker listing the old and the new digests, so the next run replaces it."""
    from natexp.safety import Terminated, cleanup_on_signals, commit_outputs

    target = tmp_path / "out"
    first = staging_dir(tmp_path, ".out.staging-")
    (first / "a.csv").write_text("old")
    (first / "figures").mkdir()
    (first / "figures" / "f.png").write_bytes(b"png")
    commit_outputs(first, target, {})
    assert not first.exists()
    (target / "mine.txt").write_text("mine")
    previous = check_target(target)
    assert set(previous) == {"a.csv", "figures/f.png"}
    second = staging_dir(tmp_path, ".out.staging-")
    (second / "a.csv").write_text("new")
    monkeypatch.setenv("NATEXP_FAULT", "output.commit:TERM")
    with pytest.raises(Terminated), cleanup_on_signals():
        commit_outputs(second, target, previous)
    monkeypatch.delenv("NATEXP_FAULT")
    assert (target / "a.csv").read_text() == "old"  # nothing replaced yet
    again = check_target(target)  # still natexp's, old or new digest accepted
    commit_outputs(second, target, again)
    assert (target / "a.csv").read_text() == "new"
    assert not (target / "figures").exists()  # the previous output's file and folder went
    assert (target / "mine.txt").read_text() == "mine"
    assert set(json.loads((target / OUTPUT_MARKER).read_text())["files"]) == {"a.csv"}


# --------------------------------------------------------------------------- checked before


def test_a_full_location_is_refused_before_the_analysis(tmp_path):
    """Before: a full disk was found only after the whole analysis. The free-space check runs
    first (NATEXP_TEST_FREE_BYTES stands in for the free space of the location)."""
    t0 = time.perf_counter()
    proc = natexp_in_process("run", EXP, "output_dir=out", cwd=tmp_path,
                             env={"NATEXP_TEST_FREE_BYTES": "1000"})
    assert proc.returncode == 2
    assert "MiB free" in proc.stderr and "nothing was run" in proc.stderr
    assert list(tmp_path.iterdir()) == []
    # refused in about the time of the imports, not of the full analysis with the report
    assert time.perf_counter() - t0 < 60


def test_an_unwritable_location_is_refused_before_the_analysis(tmp_path):
    """Before: a read-only output location was found only after the whole analysis."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        target = Path("/proc/natexp-out")  # not writable even for root
        if not Path("/proc").is_dir():
            pytest.skip("no read-only location available")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = ro / "out"
    proc = natexp_in_process("run", EXP, f"output_dir={target}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "cannot write" in proc.stderr and "nothing was run" in proc.stderr
    assert not target.exists()


def test_a_concurrent_run_into_the_same_folder_is_refused(tmp_path):
    """Before: two runs into one folder silently overwrote each other."""
    target = (tmp_path / "out").resolve()
    with OutputLock(target):
        proc = natexp_process("run", EXP, "output_dir=out", *LIGHT, cwd=tmp_path)
        assert proc.returncode == 2
        assert "another natexp process" in proc.stderr and f"pid {os.getpid()}" in proc.stderr
    assert not target.exists()
    lock = OutputLock(target).acquire()  # released: free again
    lock.release()
    assert list(tmp_path.iterdir()) == []


def test_stale_staging_folders_are_recognised_by_their_marker(tmp_path):
    mine = staging_dir(tmp_path, ".x.staging-")  # this process is alive: kept
    dead = tmp_path / ".y.staging-abc"
    dead.mkdir()
    (dead / STAGING_MARKER).write_text(json.dumps(
        {"natexp": "staging", "pid": 2**22 + 12345, "host": os.uname().nodename}))
    (dead / "results.json").write_text("{}")
    foreign = tmp_path / ".z.staging-def"  # no marker: not natexp's, left alone
    foreign.mkdir()
    (foreign / "data.csv").write_text("x")
    assert sweep_stale(tmp_path) == [dead.name]
    assert mine.is_dir() and foreign.is_dir() and not dead.exists()


# --------------------------------------------------------------------------- kills


def canary_extract(folder: Path) -> tuple[Path, Path]:
    """A user extract written with ``python -m natexp synth`` and then edited so that every
    family id and child id is a canary that must never appear outside the user's files.

    Every other family of the synthetic extract (165 of 330, every area still present) and
    their children: the commands that are killed do the same steps on a smaller cohort (its
    exact tests' sample spaces shrink with it); a light run took 1.9-2.4 s of CPU instead of
    2.4-3.2 s (two runs each)."""
    proc = natexp_in_process("synth", "--out", str(folder), "--format", "csv", cwd=folder.parent)
    assert proc.returncode == 0, proc.stderr
    every = pl.read_csv(folder / "families.csv", infer_schema=False)
    fam = every.gather_every(2)
    chi = pl.read_csv(folder / "children.csv", infer_schema=False)
    chi = chi.filter(pl.col("family_id").is_in(fam["family_id"].implode()))
    assert fam["area"].n_unique() == every["area"].n_unique() and chi.height > 0
    ids = {old: f"CANARY-{k:04d}" for k, old in enumerate(fam["family_id"].to_list())}
    fam = fam.with_columns(pl.col("family_id").replace_strict(ids))
    chi = chi.with_columns(pl.col("family_id").replace_strict(ids),
                           pl.Series("child_id", [f"CANARY-C{k:05d}"
                                                  for k in range(chi.height)]))
    fam.write_csv(folder / "families.csv")
    chi.write_csv(folder / "children.csv")
    return folder / "families.csv", folder / "children.csv"


def canaries(*folders: Path) -> list[str]:
    """Files under ``folders`` (zip members too) that hold a canary id."""
    found = []
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if not p.is_file():
                continue
            data = p.read_bytes()
            if CANARY in data:
                found.append(str(p))
            if zipfile.is_zipfile(p):
                with zipfile.ZipFile(p) as zf:
                    found += [f"{p}:{n}" for n in zf.namelist() if CANARY in zf.read(n)]
    return found


def natexp_leftovers(folder: Path) -> list[str]:
    """natexp staging folders and lock files under ``folder``."""
    return sorted(p.name for p in folder.rglob("*")
                  if (p.is_dir() and (p / STAGING_MARKER).exists())
                  or p.name.endswith(".natexp-lock"))


def start(args: list[str], cwd: Path, tmpdir: Path, fault: str | None = None):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmpdir)}
    if fault:
        env["NATEXP_FAULT"] = fault
    return subprocess.Popen([sys.executable, "-m", "natexp", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_killed_run_bundle_and_verify_leave_no_record_behind(tmp_path):
    """Before: killing ``bundle`` left full copies of both input tables (ids included) in a
    hidden staging folder beside the target, killing ``verify`` left them in the temp folder,
    and a kill while writing left a partial output folder.

    ``run``, ``bundle`` and ``verify`` are killed at instrumented points (``NATEXP_FAULT``) and
    after random delays, with SIGTERM and SIGKILL; after each kill the output's parent folder
    and the temp folder (TMPDIR) are searched for the canary ids of the input. After SIGTERM
    nothing of natexp's is left; after SIGKILL the next command removes what is left.

    The random delays are fractions (10-90%) of how long the same command took, moments
    before, to reach its last instrumented point, so the signals land while it works on a
    fast machine as on a slow one (fixed delays of 2-8 s outlasted a light run on a fast one).
    """
    inputs = tmp_path / "user"
    inputs.mkdir()
    fam, chi = canary_extract(inputs / "extract")
    work, tmpdir = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmpdir.mkdir()
    data = [f"data.families={fam}", f"data.children={chi}", "data.as_of=2026-01-01", *LIGHT]

    # a bundle (and a previous run output) to verify and to overwrite later
    proc = start(["bundle", EXP, *data, "--out", str(work / "b.zip")], work, tmpdir)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    proc = start(["run", EXP, *data, "output_dir=prev"], work, tmpdir)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    assert not canaries(work, tmpdir)

    verify = ["verify", str(work / "b.zip"), "--data-families", str(fam),
              "--data-children", str(chi)]
    scenarios = [
        (["run", EXP, *data, "output_dir=r1"], "run.loaded:TERM"),
        (["run", EXP, *data, "output_dir=r2"], "run.writing:KILL"),
        (["run", EXP, *data, "output_dir=prev"], "output.commit:KILL"),
        (["bundle", EXP, *data, "--out", str(work / "k1.zip")], "bundle.loaded:TERM"),
        (["bundle", EXP, *data, "--out", str(work / "k2.zip")], "bundle.ran:KILL"),
        (["bundle", EXP, *data, "--out", str(work / "k3.zip")], "bundle.bagged:TERM"),
        (["bundle", EXP, *data, "--out", str(work / "k4.zip")], "bundle.zipped:KILL"),
        (verify, "verify.loaded:TERM"),
        (verify, "verify.ran:KILL"),
        (verify, "verify.ran:INT"),
    ]
    took = {}  # command -> seconds to its last instrumented point (the KILL faults below)
    for args, fault in scenarios:
        before = natexp_leftovers(work) + natexp_leftovers(tmpdir)
        t0 = time.monotonic()
        proc = start(args, work, tmpdir, fault)
        rc = proc.wait(timeout=600)
        if fault in ("run.writing:KILL", "bundle.zipped:KILL", "verify.ran:KILL"):
            took[args[0]] = time.monotonic() - t0
        sig = fault.split(":")[1]
        expected = {"TERM": 128 + signal.SIGTERM, "INT": 130, "KILL": -signal.SIGKILL}[sig]
        assert rc == expected, (fault, rc, proc.stderr.read())
        assert not canaries(work, tmpdir), fault
        if sig != "KILL":  # cleaned on the way out: nothing new left
            after = natexp_leftovers(work) + natexp_leftovers(tmpdir)
            assert set(after) <= set(before), (fault, after)
    assert not (work / "k2.zip").exists() and not (work / "r2").exists()

    rng = random.Random(13)
    alive = []
    for args in (["run", EXP, *data, "output_dir=r3"],
                 ["bundle", EXP, *data, "--out", str(work / "k5.zip")], verify):
        for signum in (signal.SIGTERM, signal.SIGKILL):
            proc = start(args, work, tmpdir)
            time.sleep(rng.uniform(0.1, 0.9) * took[args[0]])
            alive.append(proc.poll() is None)
            proc.send_signal(signum)
            proc.wait(timeout=600)
            assert not canaries(work, tmpdir), (args[0], signum)
    assert any(alive), "every random kill came after the command had finished"

    # the next commands recognise what SIGKILL left (natexp's marker, owner gone) and remove it
    proc = start(["bundle", EXP, *data, "--out", str(work / "final.zip")], work, tmpdir)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    proc = start(verify, work, tmpdir)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    assert natexp_leftovers(work) == natexp_leftovers(tmpdir) == []
    # a run killed half way through replacing its previous output: the folder is still
    # natexp's (its marker lists old and new files) and the next run replaces it
    proc = start(["run", EXP, *data, "output_dir=prev"], work, tmpdir)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    assert not canaries(work, tmpdir)
