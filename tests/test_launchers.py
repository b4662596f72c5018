"""The specification-curve sweep on existing distributed engines: Hydra's submitit launcher
(submitit's local executor, the code path SLURM uses) and Hydra's Ray launcher against a local
Ray cluster that the test starts and stops. ``python -m natexp speccurve`` aggregates either,
and the table equals the in-process specification curve.

The Ray cluster runs inside a fresh network namespace that has only the loopback interface, so
nothing Ray starts can listen on, or talk to, any other address, and a fresh process namespace
(``unshare -rn -p -f --mount-proc``): ``ray stop --force`` stops every Ray process it can see,
so without it the test stopped any other Ray cluster on the machine (two test runs side by side
stopped each other's), and whatever Ray started ends with the namespace. Where user namespaces
are not allowed, the Ray test is skipped with the reason, except under CI (``CI`` set), where it
fails: CI must run it.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl
import pytest

from natexp.data.cohort import Design
from natexp.data.rollout import load_rollout
from natexp.data.synthetic import generate
from natexp.speccurve import specification_curve
from tests.conftest import natexp_in_process

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SWEEP = ["design.custody_at_followup=true,false", "sensitivity.enabled=false",
         "report.enabled=false"]
COLS = ["custody", "x1", "n1", "x2", "n2", "estimate", "ci_low", "ci_high", "pvalue"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}


def _natexp(*args: str) -> list[str]:
    return [sys.executable, "-m", "natexp", *args]


def _expected() -> list[dict]:
    fam, _ = generate()
    same = specification_curve(
        fam.lazy(), load_rollout(),
        Design(name="oxon_vs_rest", treatment_counties=("Oxfordshire",)), designs=["oxon_vs_rest"],
        windows=[(dt.date(2022, 7, 1), dt.date(2024, 6, 30))],
        followup_dates=[dt.date(2024, 11, 1)], custody=[True, False], outcome="chas_support",
    )
    return same.select(COLS).sort("custody").to_dicts()


def _collect_and_compare(cwd: Path) -> None:
    proc = natexp_in_process("speccurve", "multirun/oxon_vs_rest", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    sweep = cwd / "multirun" / "oxon_vs_rest"
    got = pl.read_csv(sweep / "specification_curve.csv")
    assert (sweep / "specification_curve.png").stat().st_size > 0
    assert got.select(COLS).sort("custody").to_dicts() == _expected()


def test_sweep_through_submitit_local_executor(tmp_path):
    proc = subprocess.run(
        _natexp("run", "--multirun", "+experiment=oxon_vs_rest", "hydra/launcher=submitit_local",
                "hydra.launcher.timeout_min=20", *SWEEP),
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    sweep = tmp_path / "multirun" / "oxon_vs_rest"
    # submitit really ran the jobs (its job folders and logs), one natexp output per job.
    assert list((sweep / ".submitit").glob("*/*_0_log.out"))
    assert sorted(p.name for p in sweep.glob("[0-9]*")) == ["0", "1"]
    # The task returns nothing: submitit's pickled job results (Hydra's JobReturn: overrides
    # and config) hold no run data.
    results = list((sweep / ".submitit").glob("*/*_result.pkl"))
    assert len(results) == 2
    for pkl in results:
        status, job_return = pickle.loads(pkl.read_bytes())
        assert status == "success"
        assert job_return.return_value is None
    _collect_and_compare(tmp_path)


#: A user namespace with its own network (loopback only) and its own processes (a new /proc).
_NAMESPACES = ["unshare", "-rn", "-p", "-f", "--mount-proc"]


def _loopback_namespace_or_skip() -> None:
    msg = None
    if shutil.which("unshare") is None:
        msg = "the Ray test needs 'unshare' (util-linux) to isolate Ray on loopback"
    else:
        probe = subprocess.run([*_NAMESPACES, "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            msg = ("the Ray test needs network and process namespaces (unshare -rn -p -f "
                   f"--mount-proc), which this machine does not allow: {probe.stderr.strip()}")
    if msg:
        if os.environ.get("CI"):
            pytest.fail("CI is set and the Ray test must run: " + msg)
        pytest.skip(msg)


def test_sweep_through_ray_launcher_on_a_local_cluster(tmp_path):
    _loopback_namespace_or_skip()
    ray = Path(sys.executable).with_name("ray")
    assert ray.exists(), "ray is a dev dependency (pip install -e '.[dev]')"
    run = shlex.join(_natexp(
        "run", "--multirun", "+experiment=oxon_vs_rest", "hydra/launcher=ray",
        "hydra.launcher.ray.init.address=127.0.0.1:6390",
        # hydra-ray-launcher 1.2.2 sets object_store_memory, which ray.init refuses when it
        # joins an existing cluster; null keeps it unset.
        "+hydra.launcher.ray.init.object_store_memory=null",
        *SWEEP,
    ))
    # Ray's socket paths must stay under 108 bytes: a short temporary folder, removed after.
    tmp = Path(tempfile.mkdtemp(prefix="rayt-"))
    script = f"""
set -e
ip link set lo up 2>/dev/null || true
{shlex.quote(str(ray))} start --head --node-ip-address=127.0.0.1 --port=6390 --num-cpus=2 \\
    --include-dashboard=false --disable-usage-stats --temp-dir={shlex.quote(str(tmp))} \\
    > ray-start.log 2>&1
trap '{shlex.quote(str(ray))} stop --force > /dev/null 2>&1' EXIT
python_status=0
{run} > sweep.log 2>&1 || python_status=$?
# Everything Ray listened on, while the cluster was up: loopback only.
cat /proc/net/tcp /proc/net/tcp6 > sockets.txt
exit $python_status
"""
    try:
        proc = subprocess.run([*_NAMESPACES, "bash", "-c", script], cwd=tmp_path,
                              env=_env(), capture_output=True, text=True, timeout=900)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log = (tmp_path / "sweep.log").read_text() if (tmp_path / "sweep.log").exists() else ""
    assert proc.returncode == 0, (proc.stderr, log[-3000:],
                                  (tmp_path / "ray-start.log").read_text()[-2000:])
    assert log.count("(_run_job pid=") >= 2  # the jobs ran as Ray tasks
    sweep = tmp_path / "multirun" / "oxon_vs_rest"
    assert sorted(p.name for p in sweep.glob("[0-9]*")) == ["0", "1"]
    # No socket outside 127.0.0.0/8 (hex 0100007F ... little-endian; 00000000 = any, which in
    # a loopback-only namespace is loopback too).
    for line in (tmp_path / "sockets.txt").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and ":" in fields[1]:
            local = fields[1].split(":")[0]
            assert (local.endswith("7F") or set(local) == {"0"}
                    or local == "00000000000000000000000001000000"), line
    _collect_and_compare(tmp_path)


def test_power_simulation_sweep_through_submitit_and_pooled(tmp_path):
    """A power simulation split over seeds runs as submitit jobs; powercurve pools them into
    the same counts as the two simulations run in process."""
    from natexp.config import compose
    from natexp.planning import plan_power

    common = ["+experiment=oxon_vs_rest", "power_sim.n_simulations=60",
              "power_sim.target_power=0", "power_sim.families_per_area_month=0.5",
              "power_sim.icc=0.02"]
    proc = subprocess.run(
        _natexp("power", "--multirun", *common, "hydra/launcher=submitit_local",
                "hydra.launcher.timeout_min=20", "power_sim.seed=1,2"),
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    sweep = tmp_path / "multirun" / "oxon_vs_rest-power"
    assert list((sweep / ".submitit").glob("*/*_0_log.out"))
    proc = natexp_in_process("powercurve", str(sweep), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = pl.read_csv(sweep / "power_curve.csv").sort("analysis")
    expected: dict[str, int] = {}
    for seed in (1, 2):
        plan = plan_power(compose([*common, f"power_sim.seed={seed}"]))
        for analysis, r in plan.results["power"].items():
            expected[analysis] = expected.get(analysis, 0) + r["extra"]["rejections"]
    assert got["jobs"].to_list() == [2, 2]
    assert got["n_simulations"].to_list() == [120, 120]
    assert dict(zip(got["analysis"], got["rejections"], strict=True)) == expected
