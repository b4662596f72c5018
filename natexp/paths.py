"""Locations of the project's own files (configs, experiments, lock file) and of users' studies.

The repository keeps ``conf/``, ``experiments/`` and ``requirements.lock`` at its top, beside the
``natexp`` package. The build (``setup.py``) copies them into the package as ``natexp/_data/``,
so an installed natexp (``pip install .``, a wheel, an sdist) carries them. This module looks
for them in that order:

1. ``natexp/_data/`` inside the installed package (found with :mod:`importlib.resources`);
2. the source checkout the package is imported from (an editable install, or ``PYTHONPATH``):
   the folder above ``natexp/`` when it holds natexp's ``pyproject.toml``.

A study kept outside the repository (``python -m natexp new-study NAME --out DIR``, see
docs/new-study.md) has its configs in ``DIR/conf/`` and its folder (analysis plan, published
numbers, disclosure exceptions, synthetic hook) in ``DIR/experiments/NAME/``. natexp finds a
study's folder with :func:`experiment_dir`, which searches, in this order:

1. the folders listed in the environment variable ``NATEXP_EXPERIMENTS_PATH``
   (:data:`EXPERIMENTS_PATH_ENV`; separated like ``PATH``, ``:`` or ``;`` on Windows), first
   listed first. ``python -m natexp`` prepends there the ``experiments/`` folder beside every
   config folder given with ``--config-dir DIR`` or ``hydra.searchpath=[file://DIR]``
   (:func:`use_config_dirs`), so the scaffold's layout needs no setting;
2. natexp's own ``experiments/`` (:data:`EXPERIMENTS_DIR`).

The first folder holding ``<name>/`` wins: a user's study of the same name shadows a packaged
one.

Examples
--------
>>> (CONF_DIR / "config.yaml").is_file(), (EXPERIMENTS_DIR / "oxon_vs_rest").is_dir()
(True, True)
>>> experiment_dir("oxon_vs_rest") == EXPERIMENTS_DIR / "oxon_vs_rest"
True
>>> experiment_dir("no_such_study") is None
True
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

__all__ = [
    "CONF_DIR",
    "DATA_DIR",
    "EXPERIMENTS_DIR",
    "EXPERIMENTS_PATH_ENV",
    "LOCK_FILE",
    "PACKAGE_DIR",
    "SOURCE_DIR",
    "config_dirs_in",
    "default_rollout",
    "experiment_dir",
    "experiment_file",
    "experiments_search_path",
    "source_dir",
    "use_config_dirs",
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
#: Environment variable listing folders of users' studies (``<folder>/<name>/``), searched
#: before natexp's own ``experiments/``.
EXPERIMENTS_PATH_ENV = "NATEXP_EXPERIMENTS_PATH"


def default_rollout() -> Path:
    """The rollout file the default configuration selects (``rollout: NAME`` in the defaults
    list of ``conf/config.yaml``): ``conf/rollout/NAME.yaml``.

    Nothing names a particular rollout here: change the default config, and this follows.

    Examples
    --------
    >>> default_rollout().parent == CONF_DIR / "rollout"
    True
    """
    import yaml

    with open(CONF_DIR / "config.yaml", encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    for entry in (doc or {}).get("defaults", []):
        if isinstance(entry, dict) and "rollout" in entry:
            return CONF_DIR / "rollout" / f"{entry['rollout']}.yaml"
    raise RuntimeError(  # pragma: no cover - natexp's own config always selects one
        f"{CONF_DIR / 'config.yaml'} selects no rollout in its defaults list")


def experiments_search_path() -> list[Path]:
    """The folders searched for a study's folder ``<name>/``, first match wins.

    The folders of ``NATEXP_EXPERIMENTS_PATH`` in the order listed, then natexp's own
    ``experiments/``; each once.

    Examples
    --------
    >>> experiments_search_path()[-1] == EXPERIMENTS_DIR
    True
    """
    raw = os.environ.get(EXPERIMENTS_PATH_ENV, "")
    out: list[Path] = []
    for item in [*raw.split(os.pathsep), str(EXPERIMENTS_DIR)]:
        if item.strip():
            path = Path(item.strip()).expanduser().resolve()
            if path not in out:
                out.append(path)
    return out


_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def experiment_dir(name: str) -> Path | None:
    """The folder of study (experiment) ``name``: the first ``<folder>/<name>/`` along
    :func:`experiments_search_path`, or None when there is none.

    A name that is not a plain folder name (a path, ``..``) is never looked up.
    """
    if not isinstance(name, str) or not _STUDY_NAME.match(name) or ".." in name:
        return None
    for folder in experiments_search_path():
        if (folder / name).is_dir():
            return folder / name
    return None


def experiment_file(name: str, filename: str) -> Path | None:
    """``filename`` in the folder of study ``name`` (:func:`experiment_dir`), or None when the
    folder or the file does not exist.

    Examples
    --------
    >>> experiment_file("oxon_vs_rest", "published.yaml").name
    'published.yaml'
    >>> experiment_file("staggered_rollout", "published.yaml") is None
    True
    """
    folder = experiment_dir(name)
    if folder is None or not (folder / filename).is_file():
        return None
    return folder / filename


def config_dirs_in(args: Sequence[str]) -> list[Path]:
    """The config folders named on a natexp command line: ``--config-dir DIR``,
    ``--config-dir=DIR``, ``-cd DIR`` and ``hydra.searchpath=[file://DIR,...]`` (Hydra's
    ``pkg://`` entries are skipped).

    Examples
    --------
    >>> [p.name for p in config_dirs_in(["--config-dir", "/s/conf", "+experiment=x",
    ...                                  "hydra.searchpath=[file:///t/conf2]"])]
    ['conf', 'conf2']
    """
    dirs: list[str] = []
    args = list(args)
    for i, arg in enumerate(args):
        key, eq, value = arg.partition("=")
        if key in ("--config-dir", "-cd"):
            if eq:
                dirs.append(value)
            elif i + 1 < len(args):
                dirs.append(args[i + 1])
        elif key.lstrip("+~") == "hydra.searchpath" and eq:
            for item in value.strip().strip("[]").split(","):
                item = item.strip().strip("'\"")
                if item.startswith("file://"):
                    dirs.append(item[len("file://"):])
    return [Path(d).expanduser().resolve() for d in dirs if d]


def use_config_dirs(config_dirs: Sequence[str | Path]) -> list[Path]:
    """Search the ``experiments/`` folder beside each config folder (``DIR/../experiments``)
    for studies' folders, before any other (prepended to ``NATEXP_EXPERIMENTS_PATH`` of this
    process, so that jobs it starts inherit it). Folders that do not exist are skipped.

    Returns
    -------
    list of Path
        The ``experiments/`` folders added.
    """
    added = [Path(d).expanduser().resolve().parent / "experiments" for d in config_dirs]
    added = [d for d in added if d.is_dir()]
    if added:
        old = [p for p in os.environ.get(EXPERIMENTS_PATH_ENV, "").split(os.pathsep) if p]
        os.environ[EXPERIMENTS_PATH_ENV] = os.pathsep.join(
            dict.fromkeys([*(str(d) for d in added), *old]))
    return added
