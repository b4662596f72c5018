"""Shared helpers of the benchmarks: machine description, timing, peak memory, Markdown tables.

Benchmarks only: nothing in ``natexp`` or ``tests`` imports this module to time anything.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PYTHON = sys.executable
TIME_BIN = "/usr/bin/time"


def machine() -> dict[str, str]:
    """Describe the machine: date, CPU model, cores, memory, load, library versions."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        free = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False).stdout
        mem = " ".join(free.splitlines()[1].split()[:4]) if free else "unknown"
    except OSError:
        mem = "unknown"
    versions = []
    for mod in ("polars", "pandas", "pyarrow", "duckdb", "numpy"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            versions.append(f"{mod} (not installed)")
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu,
        "nproc": str(os.cpu_count()),
        "memory (free -h: total used free)": mem,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "libraries": ", ".join(versions),
    }


def load_now() -> str:
    """The 1-minute load average, as text."""
    return f"{os.getloadavg()[0]:.2f}"


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[object, list[float]]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; return last output."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, times


def clear_caches(module: object) -> None:
    """Empty every ``functools`` cache among ``module``'s names, so the next call is a cold
    start (natexp's ``unconditional``, or an earlier commit's copy of it)."""
    for value in vars(module).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


def median(times: Sequence[float]) -> float:
    return statistics.median(times)


def fmt_times(times: Sequence[float]) -> str:
    """``median (min-max)`` in seconds."""
    return f"{median(times):.3g} s ({min(times):.3g}–{max(times):.3g})"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} GB"


def peak_rss(cmd: Sequence[str], env: dict[str, str] | None = None,
             timeout: float | None = None) -> dict:
    """Run ``cmd`` in a fresh process; return its peak RSS (bytes), wall time, exit code, output.

    Uses ``/usr/bin/time`` (GNU time, Debian package ``time``) when present; otherwise a small
    Python parent reads ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` after the child ends
    (the parent has exactly one child, so that maximum is the child's own).
    """
    full_env = {**os.environ, **(env or {})}
    if shutil.which(TIME_BIN) or Path(TIME_BIN).exists():
        with tempfile.NamedTemporaryFile("r", suffix=".time", delete=False) as fh:
            tfile = fh.name
        try:
            t = time.perf_counter()
            proc = subprocess.run([TIME_BIN, "-o", tfile, "-f", "%M %e", *cmd], env=full_env,
                                  capture_output=True, text=True, timeout=timeout, check=False)
            wall = time.perf_counter() - t
            last = Path(tfile).read_text().strip().splitlines()
        finally:
            Path(tfile).unlink(missing_ok=True)
        # On failure GNU time writes "Command exited with non-zero status N" first.
        kb = int(last[-1].split()[0]) if last else 0
        return {"maxrss": kb * 1024, "wall": wall, "returncode": proc.returncode,
                "stdout": proc.stdout, "stderr": proc.stderr, "method": "/usr/bin/time"}
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "w = time.perf_counter() - t\n"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps({'maxrss': r * 1024, 'wall': w, 'returncode': p.returncode,"
        " 'stdout': p.stdout, 'stderr': p.stderr}))\n"
    )
    proc = subprocess.run([PYTHON, "-c", wrapper, *cmd], env=full_env, capture_output=True,
                          text=True, timeout=timeout, check=True)
    out = json.loads(proc.stdout)
    out["method"] = "getrusage(RUSAGE_CHILDREN)"
    return out


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def md_machine(info: dict[str, str]) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in info.items())


def write_result(path: str | os.PathLike[str] | None, text: str) -> None:
    """Print ``text`` and, when ``path`` is given, write it there (atomically)."""
    print(text)
    if path is None:
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, p)
