"""Locations of the project's own files (configs, experiments, lock file).

The repository keeps ``conf/``, ``experiments/`` and ``requirements.lock`` at its top, beside the
``natexp`` package. The build (``setup.py``) copies them into the package as ``natexp/_data/``,
so an installed natexp (``pip install .``, a wheel, an sdist) carries them. This module looks
for them in that order:

1. ``natexp/_data/`` inside the installed package (found with :mod:`importlib.resources`);
2. the source checkout the package is imported from (an editable install, or ``PYTHONPATH``):
   the folder above ``natexp/`` when it holds natexp's ``pyproject.toml``.

Examples
--------
>>> (CONF_DIR / "config.yaml").is_file(), (EXPERIMENTS_DIR / "oxon_vs_rest").is_dir()
(True, True)
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = [
    "CONF_DIR",
    "DATA_DIR",
    "DEFAULT_ROLLOUT",
    "EXPERIMENTS_DIR",
    "LOCK_FILE",
    "PACKAGE_DIR",
    "SOURCE_DIR",
    "source_dir",
]

PACKAGE_DIR = Path(__file__).resolve().parent

#: The package-data folder name the build writes (``natexp/_data/conf`` ...).
DATA_NAME = "_data"


def source_dir() -> Path | None:
    """The source checkout this natexp is imported from, or None when it is installed.

    A checkout is the folder above the package that holds natexp's ``pyproject.toml`` and
    ``conf/`` (an editable install or ``PYTHONPATH``; never ``site-packages``).
    """
    root = PACKAGE_DIR.parent
    pyproject = root / "pyproject.toml"
    if not (pyproject.is_file() and (root / "conf").is_dir()):
        return None
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "natexp"' in text else None


def _installed_data() -> Path | None:
    try:
        base = resources.files("natexp").joinpath(DATA_NAME)
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - natexp is always importable
        return None
    path = Path(str(base))
    return path if isinstance(base, Path) and (path / "conf").is_dir() else None


def _data_dir() -> Path:
    installed = _installed_data()
    if installed is not None:
        return installed
    src = source_dir()
    if src is not None:
        return src
    raise RuntimeError(  # pragma: no cover - a broken install
        f"natexp's configs were not found: neither {PACKAGE_DIR / DATA_NAME / 'conf'} (an "
        f"installed package) nor {PACKAGE_DIR.parent / 'conf'} (a source checkout) exists. "
        "Reinstall natexp (pip install natexp-*.whl, or pip install . from its repository).")


#: The source checkout, or None for an installed natexp.
SOURCE_DIR: Path | None = source_dir()
#: The folder holding ``conf/``, ``experiments/`` and ``requirements.lock``.
DATA_DIR: Path = _data_dir()
CONF_DIR = DATA_DIR / "conf"
EXPERIMENTS_DIR = DATA_DIR / "experiments"
LOCK_FILE = DATA_DIR / "requirements.lock"
DEFAULT_ROLLOUT = CONF_DIR / "rollout" / "thames_valley.yaml"
