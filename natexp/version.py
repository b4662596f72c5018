"""natexp's version and the commit it comes from.

The commit is read from ``natexp/_build_info.py``, which the build writes (``setup.py``) into
every wheel, sdist and ``pip install .``; when natexp runs from a source checkout (an editable
install, ``PYTHONPATH``) it is asked from ``git``; otherwise it is unknown.

Examples
--------
>>> info = build_info()
>>> sorted(info)
['commit', 'dirty', 'source', 'version']
>>> info["source"] in ("build", "git", "unknown")
True
"""

from __future__ import annotations

import functools
import subprocess
from importlib import import_module

from natexp import __version__

__all__ = ["__version__", "build_info", "version_text"]


def _git(root: str, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True,
                             timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.cache
def build_info() -> dict:
    """Version, commit (40 hex digits or None), whether the tree had uncommitted changes.

    Returns
    -------
    dict
        ``version``; ``commit``; ``dirty`` (True: tracked files differed from the commit, so
        the commit alone does not describe the code); ``source``: ``"build"`` (recorded when
        the package was built), ``"git"`` (asked from the checkout) or ``"unknown"``.
    """
    try:
        recorded = import_module("natexp._build_info")
    except ImportError:
        recorded = None
    if recorded is not None and getattr(recorded, "COMMIT", None):
        return {"version": __version__, "commit": recorded.COMMIT,
                "dirty": bool(getattr(recorded, "DIRTY", False)), "source": "build"}
    from natexp.paths import SOURCE_DIR

    if SOURCE_DIR is not None and (SOURCE_DIR / ".git").exists():
        head = _git(str(SOURCE_DIR), "rev-parse", "HEAD")
        if head:
            dirty = bool(_git(str(SOURCE_DIR), "status", "--porcelain", "--untracked-files=no"))
            return {"version": __version__, "commit": head, "dirty": dirty, "source": "git"}
    return {"version": __version__, "commit": None, "dirty": False, "source": "unknown"}


def version_text() -> str:
    """The line ``python -m natexp --version`` prints.

    Examples
    --------
    >>> version_text().startswith(f"natexp {__version__} (commit ")
    True
    """
    info = build_info()
    commit = info["commit"] or "unknown"
    note = ", with uncommitted changes" if info["dirty"] else ""
    return f"natexp {info['version']} (commit {commit}{note})"
