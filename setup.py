"""Build hooks (setuptools reads everything else from pyproject.toml).

The repository keeps ``conf/``, ``experiments/`` and ``requirements.lock`` at its top, where
users look for them. A run needs them, so the build ships them inside the package:

- ``build_py`` (used for wheels, ``pip install .`` and installs from an sdist) copies them to
  ``natexp/_data/`` and writes ``natexp/_build_info.py``, the commit the package was built from
  (``NATEXP_BUILD_COMMIT`` / ``NATEXP_BUILD_DIRTY`` when set, else ``git`` in this folder, else
  None); an editable install reads them from the checkout instead (``natexp/paths.py``);
- ``sdist`` includes them (``MANIFEST.in``) and writes ``natexp/_build_info.py`` into the sdist,
  so a wheel built later from the sdist still records the commit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
DATA = ("conf", "experiments", "requirements.lock")
BUILD_INFO = Path("natexp", "_build_info.py")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".*")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                             timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def build_info_text() -> str:
    """The text of ``natexp/_build_info.py``: the commit this source tree is at."""
    commit = os.environ.get("NATEXP_BUILD_COMMIT") or None
    if commit is not None:
        dirty = os.environ.get("NATEXP_BUILD_DIRTY", "0") == "1"
    elif (ROOT / ".git").exists() and (head := _git("rev-parse", "HEAD")):
        commit = head
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    else:
        dirty = False
    return ('"""Written by natexp\'s build (setup.py): the commit it was built from."""\n\n'
            f"COMMIT = {commit!r}\nDIRTY = {dirty!r}\n")


class BuildPy(build_py):
    """``build_py`` that also ships the configs, experiments and lock file, and the commit."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        pkg = Path(self.build_lib, "natexp")
        data = pkg / "_data"
        if data.exists():
            shutil.rmtree(data)
        data.mkdir(parents=True)
        for name in DATA:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, data / name, ignore=IGNORE)
            elif src.is_file():
                shutil.copy2(src, data / name)
            else:
                raise FileNotFoundError(f"natexp build: {name} is missing from {ROOT}")
        if not (ROOT / BUILD_INFO).is_file():  # an sdist carries its own
            (pkg / "_build_info.py").write_text(build_info_text(), encoding="utf-8")

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if getattr(self, "editable_mode", False):
            return outputs
        pkg = Path(self.build_lib, "natexp")
        outputs += [str(p) for p in sorted((pkg / "_data").rglob("*")) if p.is_file()]
        info = pkg / "_build_info.py"
        if str(info) not in outputs:
            outputs.append(str(info))
        return outputs


class Sdist(sdist):
    """``sdist`` that records the commit in the release tree."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        target = Path(base_dir, BUILD_INFO)
        if target.exists():
            target.unlink()  # may be a hard link to the source tree's file
        target.write_text(build_info_text(), encoding="utf-8")


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
