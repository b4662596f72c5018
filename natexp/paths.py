"""Locations of the project's own files (configs, experiments), resolved from this file.

natexp is installed in editable mode from its repository, so ``conf/`` and ``experiments/`` sit
one level above the package.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
CONF_DIR = REPO_DIR / "conf"
EXPERIMENTS_DIR = REPO_DIR / "experiments"
DEFAULT_ROLLOUT = CONF_DIR / "rollout" / "thames_valley.yaml"
