"""The code a replication bundle carries: natexp's own wheel and the exact package versions.

A reviewer who has never seen the repository installs exactly what built the bundle:

- **natexp's wheel** (``data/code/natexp-VERSION-py3-none-any.whl``), obtained by
  :func:`natexp_wheel` from where the running natexp comes from:

  * a source checkout (editable install or ``PYTHONPATH``): built with ``pip wheel --no-deps``
    from a clean copy of the checkout (so nothing is written into it), with the commit recorded
    inside (``natexp/_build_info.py``) and fixed zip timestamps (``SOURCE_DATE_EPOCH``), so the
    same source gives the same bytes;
  * an installed wheel (``pip install natexp-*.whl``): that very wheel, when the file it was
    installed from is still there with the recorded hash (``direct_url.json``, PEP 610);
  * otherwise an installed natexp (from an index, an sdist or ``pip install .``) is packed
    back into a wheel from its installed files, after checking every file against the
    installation's ``RECORD`` (so the wheel is the code that ran);

  and when none of that is possible the bundle says why, and names the version and commit.
- **the lock** (``data/environment/requirements.lock``): the lines of natexp's
  ``requirements.lock`` that pin natexp's runtime dependencies (the closure of its
  ``Requires-Dist``), so ``pip install -r requirements.lock natexp-*.whl`` installs exactly the
  versions that built the bundle and nothing else (no test or documentation tools).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

__all__ = [
    "CACHE_ENV",
    "CodeWheel",
    "install_footprint_mb",
    "locked_runtime",
    "natexp_wheel",
    "runtime_requirements",
    "wheel_cache_dir",
]

#: Fixed timestamp for the wheel's zip entries (1980-01-01, the earliest a zip can hold).
SOURCE_DATE_EPOCH = "315532800"

#: What a clean copy of the checkout needs to build the wheel.
_SOURCE_FILES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "requirements.lock")
_SOURCE_DIRS = ("natexp", "conf", "experiments")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "_build_info.py", "_data",
                                 ".*")


@dataclass(frozen=True)
class CodeWheel:
    """natexp's wheel for a bundle, or why there is none.

    Attributes
    ----------
    name : str or None
        The wheel's file name (None: no wheel; see ``why_not``).
    data : bytes
        The wheel's bytes (empty without a wheel).
    origin : str
        How it was obtained (for the README).
    why_not : str or None
        Why the bundle carries no wheel (never a machine path).
    """

    name: str | None
    data: bytes = b""
    origin: str = ""
    why_not: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


_CACHE: dict[str, CodeWheel] = {}


def natexp_wheel() -> CodeWheel:
    """natexp's own wheel, built or re-used as the module docstring describes.

    The result is cached for the life of the process (keyed by the source's content when built
    from a checkout), so repeated bundles do not rebuild it. A wheel built from a checkout is
    also kept on disk (:func:`wheel_cache_dir`), keyed by the same digest of the source files,
    the commit and the build tools' versions, so later processes re-use it; the cache holds
    natexp's code only (never data), and an entry whose bytes no longer match its recorded
    SHA-256 is ignored and rebuilt.
    """
    from natexp.paths import SOURCE_DIR

    if SOURCE_DIR is not None:
        digest = _source_digest(SOURCE_DIR)
        key = "src:" + digest
        if key not in _CACHE:
            wheel = _cached_wheel(digest)
            if wheel is None:
                wheel = _build_from_source(SOURCE_DIR)
                _store_wheel(digest, wheel)
            _CACHE[key] = wheel
        return _CACHE[key]
    if "installed" not in _CACHE:
        _CACHE["installed"] = _from_installed()
    return _CACHE["installed"]


# --------------------------------------------------------------------------- from a checkout


def _source_files(root: Path) -> list[Path]:
    files = [root / f for f in _SOURCE_FILES if (root / f).is_file()]
    for d in _SOURCE_DIRS:
        for p in sorted((root / d).rglob("*")):
            rel = p.relative_to(root).parts
            if p.is_file() and not any(part.startswith(".") or part in (
                    "__pycache__", "_data") for part in rel) and p.suffix not in (".pyc", ".pyo") \
                    and p.name != "_build_info.py":
                files.append(p)
    return files


def _tool_versions() -> dict[str, str | None]:
    """Versions of what builds the wheel (its bytes may depend on them)."""
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in ("pip", "setuptools", "wheel"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _source_digest(root: Path) -> str:
    from natexp.version import build_info

    h = hashlib.sha256(json.dumps({"build": build_info(), "tools": _tool_versions()},
                                  sort_keys=True).encode())
    for p in _source_files(root):
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    return h.hexdigest()


def _copy_source(root: Path, dst: Path) -> None:
    dst.mkdir(parents=True)
    for f in _SOURCE_FILES:
        if (root / f).is_file():
            shutil.copy2(root / f, dst / f)
    for d in _SOURCE_DIRS:
        shutil.copytree(root / d, dst / d, ignore=_IGNORE)


def _build_isolation_needed() -> bool:
    """True unless this environment can build natexp itself (setuptools >= 77)."""
    try:
        major = int(metadata.version("setuptools").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return True
    return major < 77


def _build_from_source(root: Path) -> CodeWheel:
    from natexp import __version__
    from natexp.version import build_info

    info = build_info()
    with tempfile.TemporaryDirectory(prefix="natexp-wheel-") as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "dist"
        _copy_source(root, src)
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
               "NATEXP_BUILD_COMMIT": info["commit"] or "",
               "NATEXP_BUILD_DIRTY": "1" if info["dirty"] else "0",
               "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out)]
        if not _build_isolation_needed():
            cmd.append("--no-build-isolation")
        try:
            proc = subprocess.run([*cmd, str(src)], cwd=tmp, env=env, capture_output=True,
                                  text=True, timeout=900)
        except (OSError, subprocess.SubprocessError) as exc:
            return CodeWheel(None, why_not=f"building natexp's wheel failed to start "
                                           f"({type(exc).__name__})")
        wheels = sorted(out.glob(f"natexp-{__version__}-*.whl")) if out.is_dir() else []
        if proc.returncode != 0 or len(wheels) != 1:
            return CodeWheel(None, why_not=(
                f"'pip wheel' could not build natexp's wheel from its source (exit status "
                f"{proc.returncode}); install natexp {__version__} from its repository at "
                "the commit named below"))
        origin = "built from the natexp source checkout with `pip wheel --no-deps`"
        if info["commit"]:
            origin += f" at commit {info['commit']}"
        notes = ()
        if info["dirty"]:
            notes = ("the checkout had uncommitted changes: the wheel, not the commit, holds "
                     "the exact code",)
        return CodeWheel(wheels[0].name, wheels[0].read_bytes(), origin, None, notes)


# --------------------------------------------------------------------------- on-disk wheel cache

#: Environment variable: the folder of natexp's on-disk cache (empty: no on-disk cache).
CACHE_ENV = "NATEXP_CACHE_DIR"


def wheel_cache_dir() -> Path | None:
    """Where built wheels are kept between processes, or None when the cache is off.

    ``$NATEXP_CACHE_DIR/wheels`` when that variable is set (an empty value turns the cache
    off), else ``$XDG_CACHE_HOME/natexp/wheels`` or ``~/.cache/natexp/wheels``. Only natexp's
    own wheels are kept there, never data.

    Returns
    -------
    pathlib.Path or None
    """
    raw = os.environ.get(CACHE_ENV)
    if raw is not None:
        return Path(raw).expanduser() / "wheels" if raw.strip() else None
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base) if base else Path.home() / ".cache"
    return root / "natexp" / "wheels"


def _cached_wheel(digest: str) -> CodeWheel | None:
    """The wheel kept under ``digest``, if present and its bytes match the recorded hash."""
    folder = wheel_cache_dir()
    if folder is None:
        return None
    entry = folder / digest
    try:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        name = meta["name"]
        if not isinstance(name, str) or Path(name).name != name or not name.endswith(".whl"):
            return None
        data = (entry / name).read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        return None
    return CodeWheel(name, data, str(meta.get("origin", "")), None,
                     tuple(str(n) for n in meta.get("notes", ())))


def _store_wheel(digest: str, wheel: CodeWheel) -> None:
    """Keep a freshly built wheel under ``digest`` (best effort; never replaces an entry).

    The entry is written into a private temporary folder inside the cache and renamed into
    place, so a reader never sees half an entry; a folder left by a killed process holds only
    natexp's code and is removed by the next store once its process is gone.
    """
    folder = wheel_cache_dir()
    if folder is None or wheel.name is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(folder)
        if (folder / digest).exists():
            return
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=folder))
        try:
            (tmp / wheel.name).write_bytes(wheel.data)
            meta = {"name": wheel.name, "sha256": hashlib.sha256(wheel.data).hexdigest(),
                    "origin": wheel.origin, "notes": list(wheel.notes)}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n",
                                           encoding="utf-8")
            os.rename(tmp, folder / digest)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # our own folder (another process won)
    except OSError:
        return


def _remove_stale_temps(folder: Path) -> None:
    """Remove ``.tmp-<pid>-*`` folders of this cache whose process no longer runs."""
    for p in folder.glob(".tmp-*-*"):
        try:
            pid = int(p.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


# --------------------------------------------------------------------------- installed natexp


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
        b"=").decode()


def _from_installed() -> CodeWheel:
    try:
        dist = metadata.distribution("natexp")
    except metadata.PackageNotFoundError:
        return CodeWheel(None, why_not="natexp runs neither from a source checkout nor from "
                                       "an installed distribution")
    files = dist.files or []
    if not files:
        return CodeWheel(None, why_not="the natexp installation has no RECORD of its files")
    modified = []
    for f in files:
        if f.hash is None or "__pycache__" in f.parts:
            continue
        try:
            data = f.read_binary()
        except OSError:
            modified.append(str(f))
            continue
        if _record_hash(data) != f"{f.hash.mode}={f.hash.value}":
            modified.append(str(f))
    if modified:
        return CodeWheel(None, why_not=(
            f"{len(modified)} installed natexp file(s) differ from the installation's RECORD "
            "(changed after installation), so no wheel can stand for the code that ran"))
    original = _original_wheel(dist)
    if original is not None:
        return original
    return _repack(dist, files)


def _original_wheel(dist: metadata.Distribution) -> CodeWheel | None:
    """The wheel natexp was installed from, if it is still where it was, with its hash."""
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "null")
    except ValueError:
        return None
    if not isinstance(direct, dict) or "archive_info" not in direct:
        return None
    url = urlparse(str(direct.get("url", "")))
    if url.scheme != "file" or not url.path.endswith(".whl"):
        return None
    path = Path(unquote(url.path))
    if not path.is_file():
        return None
    data = path.read_bytes()
    info = direct.get("archive_info") or {}
    wanted = dict(info.get("hashes") or {})
    if not wanted and "=" in str(info.get("hash", "")):
        algo, _, value = str(info["hash"]).partition("=")
        wanted = {algo: value}
    if wanted.get("sha256") != hashlib.sha256(data).hexdigest():
        return None
    return CodeWheel(path.name, data, "the wheel this natexp was installed from (its SHA-256 "
                     "checked against the installation's direct_url.json)")


def _repack(dist: metadata.Distribution, files: list) -> CodeWheel:
    """A wheel holding the installed natexp's files (checked against RECORD by the caller)."""
    from natexp import __version__

    info_dir = next((f.parts[0] for f in files if f.parts[0].endswith(".dist-info")), None)
    if info_dir is None:
        return CodeWheel(None, why_not="the natexp installation has no .dist-info folder")
    skip = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    members: dict[str, bytes] = {}
    for f in files:
        parts = f.parts
        if parts[0] == ".." or "__pycache__" in parts or f.suffix in (".pyc", ".pyo"):
            continue  # console scripts are regenerated from entry_points.txt on install
        if parts[0] == info_dir and len(parts) == 2 and parts[1] in skip:
            continue
        members["/".join(parts)] = f.read_binary()
    if not any(n.startswith("natexp/") for n in members):
        return CodeWheel(None, why_not="the natexp installation holds no package files "
                                       "(an editable install outside a checkout)")
    tag = "py3-none-any"
    wheel_meta = members.get(f"{info_dir}/WHEEL", b"").decode("utf-8", "replace")
    for line in wheel_meta.splitlines():
        if line.startswith("Tag:"):
            tag = line.split(":", 1)[1].strip()
            break
    record = "".join(f"{n},{_record_hash(d)},{len(d)}\n" for n, d in sorted(members.items()))
    record += f"{info_dir}/RECORD,,\n"
    members[f"{info_dir}/RECORD"] = record.encode("utf-8")
    name = f"natexp-{__version__}-{tag}.whl"
    buf = _zip_bytes(members)
    return CodeWheel(name, buf, "packed from the installed natexp's files (each checked "
                     "against the installation's RECORD); the wheel it was installed from "
                     "was not available")


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        # dist-info last, as wheels put it
        for name in sorted(members, key=lambda n: (".dist-info/" in n, n)):
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, members[name])
    return buf.getvalue()


# --------------------------------------------------------------------------- dependencies


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def _natexp_requires() -> list[str]:
    from natexp.paths import SOURCE_DIR

    if SOURCE_DIR is not None:  # the checkout's own declaration describes the running code
        import tomllib

        with open(SOURCE_DIR / "pyproject.toml", "rb") as fh:
            return list(tomllib.load(fh)["project"]["dependencies"])
    try:
        return list(metadata.requires("natexp") or [])
    except metadata.PackageNotFoundError:
        return []


def runtime_requirements() -> list[str]:
    """Canonical names of natexp's installed runtime dependencies, transitively, sorted.

    Environment markers are evaluated for this interpreter and platform; extras are not
    followed (natexp's ``dev`` extra is not needed to run or verify).

    Examples
    --------
    >>> names = runtime_requirements()
    >>> {"polars", "scipy", "hydra-core"} <= set(names) and "pytest" not in names
    True
    """
    from packaging.requirements import InvalidRequirement, Requirement

    def wanted(req: Requirement, extras: tuple[str, ...]) -> bool:
        return req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras)

    seen: set[str] = set()
    todo: list[tuple[str, tuple[str, ...]]] = [(r, ("",)) for r in _natexp_requires()]
    while todo:
        text, extras = todo.pop()
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        name = _canonical(req.name)
        if not wanted(req, extras) or name in seen:
            continue
        seen.add(name)
        try:
            todo += [(r, ("", *sorted(req.extras))) for r in metadata.requires(req.name) or []]
        except metadata.PackageNotFoundError:
            pass
    return sorted(seen)


def locked_runtime(lock_text: str) -> tuple[str, dict[str, str]]:
    """The lock restricted to natexp's runtime dependencies: (file text, name -> version).

    Examples
    --------
    >>> text, pins = locked_runtime("polars==2.1.0\\npytest==9.2.0\\n")
    >>> pins
    {'polars': '2.1.0'}
    """
    keep = set(runtime_requirements())
    lines, pins = [], {}
    for raw in lock_text.splitlines():
        line = raw.split("#")[0].strip()
        if "==" not in line:
            continue
        name, _, version = line.partition("==")
        if _canonical(name.strip()) in keep:
            lines.append(line)
            pins[name.strip()] = version.strip()
    header = ("# natexp's runtime dependencies, pinned exactly as in natexp's requirements.lock\n"
              "# (test and documentation tools left out). Install with natexp's wheel:\n"
              "#   python -m pip install -r requirements.lock natexp-*.whl\n")
    return header + "".join(f"{ln}\n" for ln in lines), pins


def install_footprint_mb() -> int:
    """Disk used by natexp's runtime dependencies as installed here, in MB (rounded up to 10).

    Summed from the sizes each installed distribution records (``RECORD``).
    """
    total = 0
    for name in runtime_requirements():
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            continue
        total += sum(f.size or 0 for f in files)
    mb = total / 1e6
    return int(-(-mb // 10) * 10) if mb else 0
