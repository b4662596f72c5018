"""A progress display for long steps: shown on a terminal, completely silent otherwise.

:func:`progress` wraps an iterable (or is used as a context manager with :meth:`Progress.update`)
and redraws one status line on **stderr** when stderr is a terminal. When the stream is not a
terminal (a pipe, a log file, pytest's capture, a notebook without a TTY) it writes nothing at
all, so logs, CSVs and reports never contain progress text. ``NATEXP_PROGRESS=0`` turns it off
everywhere; ``NATEXP_PROGRESS=1`` turns it on even without a terminal.

Elapsed time is shown on the terminal line only; it never reaches any output file.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

__all__ = ["Progress", "progress"]

T = TypeVar("T")


def _enabled(stream: IO[str]) -> bool:
    env = os.environ.get("NATEXP_PROGRESS", "").strip()
    if env == "0":
        return False
    if env == "1":
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # closed or detached stream
        return False


class Progress:
    """One redrawn status line on a terminal; nothing at all elsewhere.

    Parameters
    ----------
    total : int, optional
        Number of steps (None: unknown, only a counter is shown).
    description : str
        Shown before the bar.
    stream : file-like, optional
        Default ``sys.stderr`` (looked up when the display starts).
    enabled : bool, optional
        Force on or off; default: on when ``stream`` is a terminal (see the module docstring).
    width : int
        Characters of the bar.

    Examples
    --------
    >>> import io
    >>> buf = io.StringIO()                      # not a terminal: silent
    >>> with Progress(3, "figures", stream=buf) as bar:
    ...     for _ in range(3):
    ...         bar.update()
    >>> buf.getvalue()
    ''
    """

    def __init__(self, total: int | None = None, description: str = "", *,
                 stream: IO[str] | None = None, enabled: bool | None = None,
                 width: int = 24) -> None:
        self.total = total
        self.description = description
        self.count = 0
        self.status = ""
        self._stream = stream
        self._enabled = enabled
        self._width = width
        self._start: float | None = None
        self._last_len = 0
        self._closed = False

    @property
    def stream(self) -> IO[str]:
        """The stream written to (``sys.stderr`` unless given)."""
        return self._stream if self._stream is not None else sys.stderr

    @property
    def enabled(self) -> bool:
        """Whether anything is written."""
        return _enabled(self.stream) if self._enabled is None else self._enabled

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        self._draw()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: int = 1, *, status: str | None = None) -> None:
        """Advance by ``n`` steps; ``status`` replaces the text after the bar."""
        self.count += n
        if status is not None:
            self.status = status
        self._draw()

    def close(self) -> None:
        """Finish the line (a newline on a terminal; nothing otherwise)."""
        if self._closed:
            return
        self._closed = True
        if self.enabled and self._start is not None:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def _line(self) -> str:
        elapsed = time.monotonic() - (self._start or time.monotonic())
        clock = f"{int(elapsed // 60)}:{int(elapsed % 60):02d}"
        head = f"{self.description} " if self.description else ""
        if self.total:
            frac = min(1.0, self.count / self.total)
            filled = int(round(frac * self._width))
            bar = "#" * filled + "." * (self._width - filled)
            body = f"[{bar}] {self.count}/{self.total} {100 * frac:3.0f}% {clock}"
        else:
            body = f"{self.count} {clock}"
        tail = f" {self.status}" if self.status else ""
        return head + body + tail

    def _draw(self) -> None:
        if not self.enabled:
            return
        line = self._line()
        pad = " " * max(0, self._last_len - len(line))
        self._last_len = len(line)
        self.stream.write("\r" + line + pad)
        self.stream.flush()


def progress(iterable: Iterable[T] | None = None, description: str = "", *,
             total: int | None = None, stream: IO[str] | None = None,
             enabled: bool | None = None) -> Iterator[T] | Progress:
    """Show progress over ``iterable`` on a terminal (silent when not a terminal).

    Parameters
    ----------
    iterable : iterable, optional
        Items to yield. None: return a :class:`Progress` to use as a context manager.
    description : str
    total : int, optional
        Default ``len(iterable)`` when it has one.
    stream : file-like, optional
        Default ``sys.stderr``.
    enabled : bool, optional
        Force on or off.

    Returns
    -------
    iterator or Progress

    Examples
    --------
    >>> import io
    >>> buf = io.StringIO()
    >>> [x * 2 for x in progress(range(3), "doubling", stream=buf)]
    [0, 2, 4]
    >>> buf.getvalue()
    ''
    """
    if iterable is None:
        return Progress(total, description, stream=stream, enabled=enabled)
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    return _iterate(iterable, Progress(total, description, stream=stream, enabled=enabled))


def _iterate(iterable: Iterable[T], bar: Progress) -> Iterator[T]:
    with bar:
        for item in iterable:
            yield item
            bar.update()
