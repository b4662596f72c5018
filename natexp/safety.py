"""Safe output folders and temporary files: never lose a user's file, never leave one behind.

Four guarantees, shared by ``run``, ``bundle`` and ``verify``:

* **Output folders.** natexp writes into a folder only when it is new, empty, or a previous
  natexp output: a folder carrying natexp's marker file (:data:`OUTPUT_MARKER`), whose manifest
  lists the files natexp wrote there with their SHA-256. Only those files are replaced, and only
  when they are unchanged since; any other non-empty folder, or a file, is refused
  (:class:`OutputDirError`, exit status 2) before anything is touched.
* **One writer at a time.** :class:`OutputLock` stops a second concurrent run into the same
  folder with a clear message (an OS file lock: released by the kernel even when a run is
  killed).
* **Checked first.** :func:`preflight` checks that the location is writable and has free space
  before the analysis starts.
* **Temporary folders.** :func:`staging_dir` makes them with a marker naming the owning process;
  :func:`cleanup_on_signals` turns SIGTERM (and SIGHUP) into an exception so every ``finally``
  and ``except`` runs; :func:`sweep_stale` removes the staging folders of processes that were
  killed outright (SIGKILL), recognised by the marker and by their owner being gone.

:func:`checkpoint` is a fault-injection hook for the tests (``NATEXP_FAULT=<point>:<signal>``
makes the process send itself that signal at that point); it does nothing otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from natexp.causal.result import NatexpError

__all__ = [
    "OUTPUT_MARKER",
    "OutputDirError",
    "OutputLock",
    "Terminated",
    "checkpoint",
    "cleanup_on_signals",
    "commit_outputs",
    "preflight",
    "staging_dir",
    "sweep_stale",
]

#: The marker file of a natexp output folder: its manifest of the files natexp wrote.
OUTPUT_MARKER = ".natexp-output.json"
#: The marker file of a natexp staging (temporary) folder: its owner process.
STAGING_MARKER = ".natexp-staging.json"
#: Free space required in an output location before a run starts (bytes).
MIN_FREE_BYTES = 64 * 2**20
FAULT_ENV = "NATEXP_FAULT"
LOCK_SUFFIX = ".natexp-lock"


class OutputDirError(NatexpError, ValueError):
    """The output location cannot be used (not natexp's, locked, read-only, full): exit 2."""


class Terminated(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """The process received SIGTERM or SIGHUP: unwinds the stack so cleanup code runs.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that ``except Exception`` clauses do not
    swallow it.
    """

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"terminated by signal {signum}")


# --------------------------------------------------------------------------- signals


def _raise_terminated(signum: int, _frame) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def cleanup_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into :class:`Terminated` while the block runs.

    SIGINT already raises ``KeyboardInterrupt``. Only in the main thread (Python delivers
    signals there); elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    old = {s: signal.signal(s, _raise_terminated) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def checkpoint(name: str) -> None:
    """Fault-injection point for the tests: ``NATEXP_FAULT=<name>:TERM`` (or ``:KILL``,
    ``:INT``) makes the process send itself that signal here. A no-op otherwise."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    point, _, sig = spec.partition(":")
    if point != name:
        return
    signum = getattr(signal, f"SIG{sig or 'TERM'}")
    os.kill(os.getpid(), signum)  # a Python handler runs before the next bytecode


# --------------------------------------------------------------------------- staging folders


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


def staging_dir(parent: str | Path, prefix: str) -> Path:
    """A new private folder under ``parent`` with a marker naming this process.

    Removed by its creator on every exit path (the caller's ``finally``); when the process was
    killed outright, :func:`sweep_stale` recognises it by the marker and removes it.
    """
    parent = Path(parent)
    stage = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    (stage / STAGING_MARKER).write_text(json.dumps(
        {"natexp": "staging", "pid": os.getpid(), "host": socket.gethostname()}) + "\n",
        encoding="utf-8")
    return stage


def is_stale(folder: Path) -> bool:
    """True for a natexp staging folder whose owner process (on this host) is gone."""
    try:
        info = json.loads((folder / STAGING_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(info, dict) or info.get("natexp") != "staging":
        return False
    if info.get("host") != socket.gethostname():
        return False  # cannot tell whether its owner still runs
    pid = info.get("pid")
    return isinstance(pid, int) and pid != os.getpid() and not _alive(pid)


def sweep_stale(folder: str | Path) -> list[str]:
    """Remove the natexp staging folders in ``folder`` left by killed processes.

    Only folders that carry natexp's staging marker and whose owner process is gone are
    removed; anything else is left alone. Returns the names removed.
    """
    removed = []
    try:
        entries = sorted(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        if not p.name.startswith((".", "natexp-")):
            continue  # natexp names its staging folders so
        if p.name.endswith(LOCK_SUFFIX) and p.is_file() and not p.is_symlink():
            if _unheld(p):  # a lock file left by a killed run (it holds only a process id)
                removed.append(p.name)
        elif p.is_dir() and not p.is_symlink() and is_stale(p):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
    return removed


def _unheld(path: Path) -> bool:
    """Remove the lock file ``path`` when no process holds its lock; True if removed."""
    try:
        fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError:
        return False
    try:
        _lock(fh)
    except OSError:
        fh.close()
        return False
    with contextlib.suppress(OSError):
        os.unlink(path)
    fh.close()
    return True


# --------------------------------------------------------------------------- output folders


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() or p.is_symlink())


def read_manifest(target: Path) -> dict[str, str] | None:
    """The files (relative path -> SHA-256) a previous natexp run wrote into ``target``, or None
    when ``target`` carries no readable natexp marker.

    While a run replaces a previous output, a file may be listed with two digests (old and new,
    space-separated): either is natexp's.
    """
    try:
        info = json.loads((target / OUTPUT_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = info.get("files") if isinstance(info, dict) else None
    if info.get("natexp") != "output" or not isinstance(files, dict):
        return None
    return {str(k): str(v) for k, v in files.items()}


def check_target(target: Path, *, tolerate: Sequence[str] = ()) -> dict[str, str]:
    """Refuse a target natexp may not write into; return the files it may replace.

    Parameters
    ----------
    target : Path
        The output folder.
    tolerate : sequence of str
        Entries of an unmarked folder that do not make it "somebody else's" (e.g. what Hydra
        itself wrote into a sweep's job folder); they are left alone.

    Raises
    ------
    OutputDirError
        ``target`` is a file, or a non-empty folder that is not a natexp output, or a natexp
        output one of whose files was changed since natexp wrote it.
    """
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise OutputDirError(
            f"output_dir {target.name}: exists and is not a folder; natexp never replaces a "
            "file it did not write (choose another output_dir)")
    if not target.exists():
        return {}
    manifest = read_manifest(target)
    present = [f for f in _files(target) if f != OUTPUT_MARKER]
    if manifest is None:
        others = [f for f in present if f.split("/")[0] not in set(tolerate)]
        if others:
            raise OutputDirError(
                f"output_dir {target.name}: the folder is not empty and is not a natexp output "
                f"({len(others)} file(s) natexp did not write); natexp never deletes or "
                "overwrites files it did not write: choose a new or empty output_dir")
        return {}
    changed = [f for f, digest in sorted(manifest.items())
               if (target / f).is_file() and _sha256(target / f) not in digest.split()]
    if changed:
        raise OutputDirError(
            f"output_dir {target.name}: {len(changed)} file(s) of the previous natexp output "
            f"were changed since natexp wrote them (first: {changed[0]}); they are not "
            "overwritten: move them or choose another output_dir")
    return manifest


def preflight(target: Path, *, min_free: int = MIN_FREE_BYTES) -> None:
    """Check before the analysis that ``target`` can be written and has free space.

    Raises
    ------
    OutputDirError
        Read-only location, or less than ``min_free`` bytes free.
    """
    parent = target if target.is_dir() else target.parent
    try:
        probe = staging_dir(parent, f".{target.name}.probe-")
    except OSError as exc:
        raise OutputDirError(
            f"output_dir {target.name}: cannot write in its location "
            f"({errno.errorcode.get(exc.errno, type(exc).__name__)}); nothing was run") from None
    shutil.rmtree(probe, ignore_errors=True)
    if target.is_dir():
        try:
            probe = staging_dir(target, ".natexp-probe-")
        except OSError as exc:
            raise OutputDirError(
                f"output_dir {target.name}: the folder is not writable "
                f"({errno.errorcode.get(exc.errno, type(exc).__name__)}); nothing was run"
            ) from None
        shutil.rmtree(probe, ignore_errors=True)
    free = _free_bytes(parent)
    if free < min_free:
        raise OutputDirError(
            f"output_dir {target.name}: only {free // 2**20} MiB free in its location, natexp "
            f"needs at least {min_free // 2**20} MiB; nothing was run")


def _free_bytes(folder: Path) -> int:
    fake = os.environ.get("NATEXP_TEST_FREE_BYTES")  # the tests' stand-in for a full disk
    if fake is not None and fake.isdigit():
        return int(fake)
    return shutil.disk_usage(folder).free


class OutputLock:
    """An exclusive lock on an output location, held from the preflight check until the outputs
    are in place.

    The lock file sits beside the target (``.<name>.natexp-lock``, holding only a process id);
    the lock itself is an OS file lock, which the kernel releases when the process dies, however
    it dies.
    """

    def __init__(self, target: Path):
        self.target = target
        self.path = target.parent / f".{target.name}{LOCK_SUFFIX}"
        self._fh = None

    def acquire(self) -> OutputLock:
        """Take the lock or raise :class:`OutputDirError` naming who holds it."""
        while True:
            try:
                fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
            except OSError as exc:
                raise OutputDirError(
                    f"output_dir {self.target.name}: cannot write in its location "
                    f"({errno.errorcode.get(exc.errno, type(exc).__name__)}); nothing was run"
                ) from None
            try:
                _lock(fh)
            except OSError:
                fh.seek(0)
                holder = fh.read().strip()
                fh.close()
                raise OutputDirError(
                    f"output_dir {self.target.name}: another natexp process"
                    + (f" (pid {holder})" if holder.isdigit() else "")
                    + " is writing there; wait for it to finish or choose another output_dir"
                ) from None
            try:  # the file may have been removed by its previous holder meanwhile
                same = os.fstat(fh.fileno()).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                fh.seek(0)
                fh.truncate()
                fh.write(str(os.getpid()))
                fh.flush()
                self._fh = fh
                return self
            fh.close()

    def release(self) -> None:
        """Remove the lock file and release the lock."""
        if self._fh is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            self._fh.close()
        self._fh = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _lock(fh) -> None:
    if sys.platform == "win32":  # pragma: no cover - Windows
        import msvcrt

        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_marker(folder: Path, files: dict[str, str]) -> None:
    """Write natexp's output marker: the manifest of the files natexp wrote (path -> SHA-256)."""
    text = json.dumps({"natexp": "output", "files": dict(sorted(files.items()))}, indent=1)
    tmp = folder / f"{OUTPUT_MARKER}.tmp"
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, folder / OUTPUT_MARKER)


def commit_outputs(stage: Path, target: Path, previous: dict[str, str]) -> None:
    """Move the files of ``stage`` into ``target``, replacing only natexp's previous files.

    ``previous`` is what :func:`check_target` returned (the files of the previous natexp output,
    unchanged since). A new target is one rename. Into an existing folder the marker is first
    widened to list the old and the new files (so that a run killed half way leaves a folder the
    next run may still clean), the previous files are removed, the new ones moved in, and the
    marker rewritten to list the new files only.
    """
    new = {f: _sha256(stage / f) for f in _files(stage) if f != STAGING_MARKER}
    (stage / STAGING_MARKER).unlink(missing_ok=True)
    if not target.exists():
        write_marker(stage, new)
        os.chmod(stage, 0o777 & ~_umask())  # mkdtemp made it private (0700)
        os.replace(stage, target)
        return
    both = {f: " ".join(sorted({*previous.get(f, "").split(), *new.get(f, "").split()}))
            for f in {*previous, *new}}
    write_marker(target, both)
    checkpoint("output.commit")
    for rel in sorted(previous):
        p = target / rel
        if p.is_file() and not p.is_symlink():
            p.unlink()
    for rel in sorted(new):
        dst = target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage / rel, dst)
    # folders the previous output created and that are now empty
    for rel in sorted({str(Path(r).parent) for r in previous if "/" in r}, reverse=True):
        with contextlib.suppress(OSError):
            (target / rel).rmdir()
    write_marker(target, new)
    shutil.rmtree(stage, ignore_errors=True)
