"""natexp as a stranger gets it: a real package, and a replication bundle that installs itself.

The stranger's test builds a bundle, unzips it into an empty folder outside the repository,
and runs the commands of its README's "Instructions to replicators" literally (parsed out of
the README, so a wrong README fails here): a fresh virtual environment, natexp's own wheel with
the pinned packages, ``verify``. Then the same non-editable install runs the default experiment
from an empty folder. A second test builds an sdist and a wheel from a clean clone with the
``build`` package (the wheel from the sdist, as pip does) and checks that both carry the
configs, the experiments and the commit.

Slow, and honest about it: the fresh environment installs natexp's ~70 pinned runtime
packages. pip takes them from its cache or the machine's local wheel stores (``PIP_FIND_LINKS``,
a local index), so no run downloads more than the package index serves. Measured on the
development machine, 2 cores shared with other jobs (load average 10-12), two runs:
``pytest tests/test_install.py`` took 9 min 44 s wall, 2 min 34 s of CPU; the fixture (bundle,
fresh environment, install, verify) 420-464 s, the default experiment 110-125 s, the sdist and
wheel 24-27 s. The install alone took 4.4-6 min wall under that load (about 1.5 min of CPU).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from natexp.bundle.build import build_bundle

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
EXP = "+experiment=oxon_vs_rest"
ROOT = "oxon_vs_rest-replication"


def stranger_env() -> dict[str, str]:
    """The environment of someone who has never seen the repository.

    Nothing points at this checkout (no ``PYTHONPATH``, no active virtual environment) and
    natexp's runs use their helper process as a user's do (no ``NATEXP_WORKERS``). Python
    writes the bytecode of what it imports, as on a user's machine (no
    ``PYTHONDONTWRITEBYTECODE``, which some development machines set): with it, every command
    in the fresh environment compiled every module it imported again (measured: the file's
    tests took 79.2-80.1 s of CPU with it, 68.5-72.2 s without, two runs each). The
    Python that runs the tests is first on ``PATH``, so the README's ``pythonX.Y`` is the
    version the bundle was built with; pip's own settings (its cache, ``PIP_FIND_LINKS``) stay.

    One setting is added unless the caller chose one: ``PIP_COMPILE=0``, pip's
    ``--no-compile``. Byte-compiling every module of the ~70 installed packages was 64% of
    pip's CPU in this suite (a py-spy profile of the whole suite); no check here depends on it,
    and Python compiles the modules a command imports when it first imports them (and keeps
    their bytecode for the next command). (pip reads
    ``PIP_NO_COMPILE=1`` as "compile": the boolean is applied to the option's destination.)
    """
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP",
                        "PYTHONDONTWRITEBYTECODE", "NATEXP_WORKERS")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if "PIP_COMPILE" not in env and "PIP_NO_COMPILE" not in env:
        env["PIP_COMPILE"] = "0"
    return env


def replicator_commands(readme: str) -> list[str]:
    """The shell commands of the README's "Instructions to replicators" (its ``sh`` block)."""
    assert "## Instructions to replicators" in readme
    section = readme.split("## Instructions to replicators", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```sh\n(.*?)^```", section, flags=re.S | re.M)
    assert block, "no ```sh block in the README's Instructions to replicators"
    lines = [ln.strip() for ln in block.group(1).splitlines() if ln.strip()]
    assert lines and all(not ln.startswith("#") for ln in lines)
    return lines


def sh(line: str, cwd: Path, timeout: int = 1800) -> subprocess.CompletedProcess:
    """Run one command line as a user would type it (``/bin/sh -c``)."""
    return subprocess.run(line, shell=True, cwd=cwd, env=stranger_env(), capture_output=True,
                          text=True, timeout=timeout)


def tail(text: str, n: int = 30) -> str:
    return "\n".join(text.splitlines()[-n:])


def outside_repo(path: Path) -> Path:
    assert not path.resolve().is_relative_to(REPO.resolve()), path
    return path


@pytest.fixture(scope="module")
def stranger(tmp_path_factory):
    """A bundle, unzipped into an empty folder, its README's commands run one by one."""
    build_dir = tmp_path_factory.mktemp("built")
    ovr = [EXP, "sensitivity.enabled=false", "report.enabled=false"]
    zip_path = build_bundle(ovr, build_dir / f"{ROOT}.zip").path
    home = outside_repo(tmp_path_factory.mktemp("stranger"))
    assert not any(home.iterdir())
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(home)
    readme = (home / ROOT / "README.md").read_text(encoding="utf-8")
    results = []
    for line in replicator_commands(readme):
        proc = sh(line, home)
        assert proc.returncode == 0, (
            f"README command failed ({proc.returncode}): {line}\n{tail(proc.stdout)}\n"
            f"{tail(proc.stderr)}")
        results.append((line, proc))
    venvs = [p.parent.parent for p in home.glob("*/bin/python")]
    assert len(venvs) == 1, "the README's commands create one virtual environment"
    return {"home": home, "bag": home / ROOT, "readme": readme, "results": results,
            "python": venvs[0] / "bin" / "python"}


def test_readme_commands_install_the_bundled_wheel_and_every_output_matches(stranger):
    results = stranger["results"]
    lines = [line for line, _ in results]
    bag = stranger["bag"]
    wheels = sorted((bag / "data" / "code").glob("natexp-*.whl"))
    assert len(wheels) == 1
    # a fresh virtual environment, then exactly the lock and natexp's own wheel
    assert re.match(r"python3\.\d+ -m venv \S+$", lines[0])
    install = [ln for ln in lines if " -m pip install " in ln]
    assert len(install) == 1
    assert f"-r {ROOT}/data/environment/requirements.lock" in install[0]
    assert install[0].endswith(f"{ROOT}/data/code/{wheels[0].name}")
    assert "natexp==" not in stranger["readme"]  # no version no index has

    # the version line names the version and commit the bundle records
    env = json.loads((bag / "data/environment/environment.json").read_text())
    version = next(p.stdout for ln, p in results if ln.endswith("-m natexp --version"))
    assert version.startswith(f"natexp {env['natexp']} (commit ")
    if env["natexp_commit"]:
        assert env["natexp_commit"] in version and env["natexp_commit"] in stranger["readme"]
    assert f"Python {env['python'].rsplit('.', 1)[0]}" in stranger["readme"]

    # verify is the last command: every output matches, package versions as recorded
    last, proc = results[-1]
    assert last.endswith(f"-m natexp verify {ROOT}")
    out = proc.stdout
    assert "every output matches" in out, tail(out)
    assert not [ln for ln in out.splitlines() if " differs " in ln], out
    matched = [ln for ln in out.splitlines() if ln.startswith("output    matches ")]
    assert len(matched) >= 10
    assert re.search(r"package\s+matches\s+(\d+) of \1 versions as recorded", out), out


def test_the_installed_natexp_is_not_this_checkout(stranger):
    code = ("import natexp, natexp.paths as p; "
            "print(natexp.__file__); print(p.SOURCE_DIR); print(p.CONF_DIR)")
    proc = sh(f"{stranger['python']} -c '{code}'", stranger["home"])
    assert proc.returncode == 0, proc.stderr
    module, source, conf = proc.stdout.splitlines()
    assert "site-packages" in module and not Path(module).is_relative_to(REPO)
    assert source == "None"
    assert Path(conf) == Path(module).parent / "_data" / "conf"


def test_plain_install_runs_the_default_experiment_from_an_empty_folder(stranger, tmp_path):
    empty = outside_repo(tmp_path / "empty")
    empty.mkdir()
    proc = sh(f"{stranger['python']} -m natexp run {EXP}", empty)
    assert proc.returncode == 0, f"{tail(proc.stdout)}\n{tail(proc.stderr)}"
    results = sorted(empty.rglob("results.json"))
    assert len(results) == 1, sorted(p.relative_to(empty) for p in empty.rglob("*"))
    res = json.loads(results[0].read_text())
    assert res["config"]["experiment"] == "oxon_vs_rest"
    # the published numbers shipped with the package were checked
    assert (results[0].parent / "replication.csv").is_file()


def test_an_installed_natexp_bundles_the_wheel_it_was_installed_from(stranger):
    wheel = next((stranger["bag"] / "data" / "code").glob("natexp-*.whl"))
    code = ("import hashlib; from natexp.bundle.code import natexp_wheel; w = natexp_wheel(); "
            "print(w.name); print(hashlib.sha256(w.data).hexdigest()); print(w.origin)")
    proc = sh(f"{stranger['python']} -c '{code}'", stranger["home"])
    assert proc.returncode == 0, proc.stderr
    name, digest, origin = proc.stdout.splitlines()
    assert name == wheel.name
    assert digest == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert origin.startswith("the wheel this natexp was installed from")


def test_version_names_the_commit_of_this_checkout(tmp_path):
    import natexp

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "natexp", "--version"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"natexp {natexp.__version__} (commit ")
    if shutil.which("git") and (REPO / ".git").exists():
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
        assert f"(commit {head}" in proc.stdout


def test_sdist_and_wheel_from_a_clean_clone_carry_configs_experiments_and_commit(tmp_path):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: no clean clone to build from")
    clone = outside_repo(tmp_path / "clone")
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    head = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    env = {k: v for k, v in stranger_env().items() if not k.startswith("NATEXP_BUILD_")}
    # python -m build: the sdist, then the wheel built from that sdist (as pip does)
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp_path / "dist"),
                           str(clone)], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, tail(proc.stdout) + tail(proc.stderr)
    (sdist,) = (tmp_path / "dist").glob("natexp-*.tar.gz")
    (wheel,) = (tmp_path / "dist").glob("natexp-*.whl")
    needed = ["conf/config.yaml", "conf/experiment/oxon_vs_rest.yaml",
              "conf/rollout/thames_valley.yaml", "experiments/oxon_vs_rest/published.yaml",
              "experiments/oxon_vs_rest/disclosure_exceptions.yaml",
              "experiments/oxon_vs_rest/README.md", "requirements.lock"]
    with tarfile.open(sdist) as tf:
        top = tf.getnames()[0].split("/")[0]
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
        info = tf.extractfile(f"{top}/natexp/_build_info.py").read().decode()
    assert set(needed) <= names, set(needed) - names
    assert f"COMMIT = {head!r}" in info
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = zf.read("natexp/_build_info.py").decode()
    assert {f"natexp/_data/{n}" for n in needed} <= names
    assert f"COMMIT = {head!r}" in info and "DIRTY = False" in info
    assert not any(n.startswith(("conf/", "experiments/", "tests/")) for n in names)


def test_an_installed_natexp_packs_the_same_wheel_when_the_original_is_gone(stranger):
    """Installed from an index or the wheel file deleted: the wheel is packed back from the
    installed files; every file the original wheel holds comes back byte for byte."""
    wheel = next((stranger["bag"] / "data" / "code").glob("natexp-*.whl"))
    code = ("import sys; from importlib import metadata; from natexp.bundle import code; "
            "d = metadata.distribution('natexp'); w = code._repack(d, d.files); "
            "print(w.name); print(w.why_not); sys.stdout.flush(); "
            "open(sys.argv[1], 'wb').write(w.data)")
    out = stranger["home"] / "repacked.whl"
    proc = sh(f"{stranger['python']} -c \"{code}\" {out}", stranger["home"])
    assert proc.returncode == 0, proc.stderr
    name, why_not = proc.stdout.splitlines()
    assert name == wheel.name and why_not == "None"
    with zipfile.ZipFile(wheel) as a, zipfile.ZipFile(out) as b:
        original = {n: a.read(n) for n in a.namelist() if not n.endswith(".dist-info/RECORD")}
        repacked = {n: b.read(n) for n in b.namelist() if not n.endswith(".dist-info/RECORD")}
    assert repacked == original
    out.unlink()
