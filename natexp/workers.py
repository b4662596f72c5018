"""A helper process for a run: DoWhy's refuters and part of the figures beside the main work.

A run's two slowest pieces do not depend on each other's order: DoWhy (its import and its
model) and rendering the report's PNG figures. :func:`pool` starts ONE helper process for the
duration of a run (``python -m natexp run`` starts it before Hydra composes the config, with
:data:`EARLY_MODULES`); the pipeline hands it the DoWhy model as soon as the cohort is built,
the figures that need nothing from the sensitivity analyses before those start
(:func:`natexp.report.render.start_figures`), and :func:`natexp.report.render.render_figures`
shares the rest with it. Every result is computed by the same code from the same inputs as in
the main process, so the outputs are byte-identical either way (tested); only the wall time
changes.

Safety and privacy:

* The helper is a fresh interpreter (``python -c``; no fork: polars and the BLAS thread pools
  are not fork-safe, and unlike ``multiprocessing``'s spawn it never re-runs the caller's
  script), limited to one BLAS thread as the run itself is (a multi-threaded BLAS sums in a
  varying order).
* Tasks (a module-level function and its arguments) and their results travel as pickles
  through the helper's stdin and stdout pipes; the helper writes no file (figures come back as
  PNG bytes and the main process writes them into its staging folder). Anything a library
  prints in the helper goes to stderr, as it would in the main process.
* The helper ignores SIGINT (Ctrl-C reaches the main process, which stops it), exits as soon
  as the main process is gone (even after SIGKILL: its stdin closes, and it watches its parent
  id while it computes), and is killed when the run ends or fails.

``NATEXP_WORKERS=0`` in the environment runs everything in the main process instead (the
results are the same).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import pickle
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, Future
from typing import Any

__all__ = ["EARLY_MODULES", "WORKERS_ENV", "Helper", "current", "enabled", "helper_modules",
           "pool", "submit"]

#: Environment variable: ``0`` runs every step in the main process.
WORKERS_ENV = "NATEXP_WORKERS"

_CURRENT: contextvars.ContextVar[Helper | None] = contextvars.ContextVar(
    "natexp_workers", default=None)


def enabled() -> bool:
    """False when ``NATEXP_WORKERS=0`` (or ``false``/``no``/``off``) is set."""
    return os.environ.get(WORKERS_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


def current() -> Helper | None:
    """The helper process of the run in progress, or None (then work runs in-process)."""
    return _CURRENT.get()


class Helper:
    """One helper process running submitted tasks one at a time, in submission order.

    Tasks wait in this process until the helper is free, so a task not yet started can still
    be cancelled (``Future.cancel()``) and done here instead.
    """

    def __init__(self) -> None:
        code = ("import sys; sys.path[:] = " + repr(list(sys.path)) + "; "
                "from natexp.workers import _serve; _serve()")
        self._proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            close_fds=True)
        self._lock = threading.Lock()
        self._queue: deque[tuple[Future, bytes]] = deque()
        self._running: Future | None = None
        self._broken = False
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name="natexp-helper-reader")
        self._reader.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Queue ``fn(*args, **kwargs)`` (``fn`` a module-level function; arguments picklable)."""
        fut: Future = Future()
        payload = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            if self._broken:
                raise RuntimeError("the helper process is gone")
            self._queue.append((fut, payload))
            self._dispatch()
        return fut

    def _dispatch(self) -> None:  # under the lock
        while self._running is None and self._queue:
            fut, payload = self._queue.popleft()
            if not fut.set_running_or_notify_cancel():
                continue  # cancelled: done by the caller instead
            try:
                self._proc.stdin.write(len(payload).to_bytes(8, "little") + payload)
                self._proc.stdin.flush()
            except (OSError, ValueError):
                fut.set_exception(BrokenExecutor("the helper process is gone"))
                self._fail()
                return
            self._running = fut

    def _read(self) -> None:
        out = self._proc.stdout
        while True:
            try:
                head = out.read(8)
                body = out.read(int.from_bytes(head, "little")) if len(head) == 8 else b""
                ok, value = pickle.loads(body) if body else (False, None)
            except Exception:  # noqa: BLE001 - a torn message: the helper is gone
                ok, value, body = False, None, b""
            with self._lock:
                fut, self._running = self._running, None
                if not body:
                    if fut is not None:
                        fut.set_exception(BrokenExecutor("the helper process stopped"))
                    self._fail()
                    return
                if fut is not None:
                    (fut.set_result if ok else fut.set_exception)(value)
                self._dispatch()

    def _fail(self) -> None:  # under the lock
        self._broken = True
        while self._queue:
            fut, _ = self._queue.popleft()
            if fut.set_running_or_notify_cancel():
                fut.set_exception(BrokenExecutor("the helper process stopped"))

    def close(self) -> None:
        """Stop the helper now (whatever it is doing) and reap it."""
        with self._lock:
            self._fail()
        with contextlib.suppress(OSError):
            self._proc.kill()
        with contextlib.suppress(OSError, ValueError):
            self._proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(10)
        self._reader.join(10)
        with contextlib.suppress(OSError, ValueError):
            self._proc.stdout.close()


def helper_modules(*, dowhy: bool, figures: bool) -> list[str]:
    """What a run's helper imports as it starts (empty: the run needs no helper).

    Parameters
    ----------
    dowhy : bool
        The run fits the DoWhy model.
    figures : bool
        The run draws figures.

    Returns
    -------
    list of str
        Module names for :func:`pool` (``"dowhy"``: DoWhy's CausalModel).

    Examples
    --------
    >>> helper_modules(dowhy=True, figures=False), helper_modules(dowhy=False, figures=False)
    (['dowhy'], [])
    """
    return (["dowhy"] if dowhy else []) + (["natexp.report.render", "plotnine"] if figures
                                           else [])


#: What a ``run`` command's helper imports before the config is composed: what both of its
#: jobs (DoWhy, figures) import first. See :func:`natexp.cli.run_main`.
EARLY_MODULES = ("pandas", "scipy.stats", "matplotlib.pyplot")


def _warm(modules: Sequence[str]) -> None:
    """Import ``modules`` (``"dowhy"``: DoWhy's CausalModel, as natexp imports it)."""
    import importlib

    for name in modules:
        if name == "dowhy":
            from natexp.causal.dowhy_model import _causal_model_class

            _causal_model_class()
        else:
            importlib.import_module(name)


def _watch_parent(parent: int) -> None:
    import time

    while os.getppid() == parent:
        time.sleep(0.25)
    os._exit(1)


#: Allocations between two collections of the youngest generation in natexp's own processes
#: (Python's default: 700).
GC_THRESHOLD = 10_000


def tune_gc() -> None:
    """Collect the youngest generation every :data:`GC_THRESHOLD` allocations (Python: 700).

    A run allocates millions of short-lived container objects (omegaconf nodes, pandas frames,
    plotnine and matplotlib artists). At Python's default the cyclic collector ran ~1,070
    times in a default run, 8 of them full collections through every object the imported
    libraries hold: 1.3-1.5 s of its ~11 s of CPU. At 10,000: 72 collections, no full one,
    0.4 s, with the same peak memory and the same output bytes (bench/README.md, "Test suite
    time / Session 12"). natexp's own processes call this (``python -m natexp`` and the
    ``natexp`` command through :func:`natexp.__main__.cli`, and the run's helper); importing
    natexp never changes the collector of a user's process.
    """
    import gc

    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, older, oldest)


def _serve() -> None:
    """The helper's loop: read a task from stdin, run it, write the result to stdout."""
    import signal
    import traceback

    tune_gc()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inp = os.fdopen(os.dup(0), "rb")
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # prints go to stderr, never into the results pipe
    sys.stdout = sys.stderr
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    import numpy  # noqa: F401  (loads BLAS before its threads are limited)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        while True:
            head = inp.read(8)
            if len(head) < 8:
                return
            fn, args, kwargs = pickle.loads(inp.read(int.from_bytes(head, "little")))
            try:
                reply = (True, fn(*args, **kwargs))
                body = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as exc:  # noqa: BLE001 - sent back and raised there
                try:
                    body = pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
                    pickle.loads(body)
                except Exception:  # noqa: BLE001 - an exception that does not pickle
                    body = pickle.dumps((False, RuntimeError(
                        "".join(traceback.format_exception(exc)))))
            out.write(len(body).to_bytes(8, "little") + body)
            out.flush()


@contextlib.contextmanager
def pool(*, warm: Sequence[str] = (), active: bool = True) -> Iterator[Helper | None]:
    """One helper process for the block; :func:`current` returns it inside the block.

    None instead (everything then runs in-process) when ``active`` is False, when the
    environment says ``NATEXP_WORKERS=0``, or when no process can be started. Inside another
    pool's block its helper is used (and given ``warm`` to import). The helper is stopped when
    the block that started it ends, however it ends.

    Parameters
    ----------
    warm : sequence of str
        Modules the helper imports as soon as it starts (``"dowhy"``: DoWhy's CausalModel).
    active : bool
        False: no helper (the caller has nothing to give it).
    """
    outer = _CURRENT.get()
    if outer is not None and active and warm:
        with contextlib.suppress(RuntimeError):  # the helper is gone: work runs here
            outer.submit(_warm, tuple(warm))
    if not active or not enabled() or outer is not None:
        yield outer
        return
    try:
        helper = Helper()
    except OSError:  # pragma: no cover - no processes allowed here
        yield None
        return
    token = _CURRENT.set(helper)
    try:
        if warm:
            helper.submit(_warm, tuple(warm))  # imports while this process loads the data
        yield helper
    finally:
        _CURRENT.reset(token)
        helper.close()


def submit(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future | None:
    """Submit ``fn(*args, **kwargs)`` to the current helper; None when there is none (the
    caller then computes in-process)."""
    helper = _CURRENT.get()
    if helper is None:
        return None
    try:
        return helper.submit(fn, *args, **kwargs)
    except RuntimeError:
        return None
