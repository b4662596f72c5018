"""The HTML report in a real browser: headless Chromium driven over the DevTools protocol.

Chromium is started with ``--remote-debugging-pipe`` (the transport Puppeteer and Playwright
use): DevTools messages are NUL-terminated JSON on file descriptors 3 (commands) and 4
(responses), so the client below needs only the standard library. The test loads the report
rendered from a real pipeline run, then checks that

* every image decoded (``complete`` and ``naturalWidth > 0``),
* the page logged no console error, threw no exception and made no request other than
  ``data:``/``file:`` (the report must work offline; its Content-Security-Policy forbids the rest),
* on a phone-sized viewport (390 x 844 CSS px) nothing overflows horizontally (wide tables
  scroll inside their own box),

and saves screenshots (phone and desktop) to ``outputs/test-artifacts/`` (or
``$NATEXP_ARTIFACTS``). Without Chromium the test is skipped, except under CI (``CI`` set),
where it fails: CI must run it (``scripts/install-system-deps.sh`` installs Chromium).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--mute-audio",
]
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
DESKTOP = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}


def find_chromium() -> str | None:
    """The Chromium binary (``$CHROMIUM``, /usr/bin/chromium, or on PATH)."""
    for cand in (os.environ.get("CHROMIUM"), "/usr/bin/chromium",
                 shutil.which("chromium"), shutil.which("chromium-browser"),
                 shutil.which("google-chrome")):
        if cand and Path(cand).exists() and os.access(cand, os.X_OK):
            return cand
    return None


class DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``."""

    def __init__(self, chromium: str, profile: Path, log: Path) -> None:
        cmd_r, self._cmd_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        # move the child's ends above 3/4 so the dup2 calls below cannot clobber them
        child_in = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 100)
        child_out = fcntl.fcntl(resp_w, fcntl.F_DUPFD, 100)
        os.close(cmd_r)
        os.close(resp_w)

        def wire() -> None:  # runs in the child before exec
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self._log = open(log, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            preexec_fn=wire, close_fds=False,
        )
        os.close(child_in)
        os.close(child_out)
        self._next = 0
        self._replies: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._resp_r, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    self._replies.put(msg)
                else:
                    with self._lock:
                        self.events.append(msg)
        self._replies.put({"id": -1, "error": {"message": "browser closed the pipe"}})

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60.0) -> dict:
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._replies.get(timeout=timeout)
            if reply["id"] in (self._next, -1):
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def wait_event(self, method: str, timeout: float = 60.0) -> dict:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for e in self.events:
                    if e.get("method") == method:
                        return e
            time.sleep(0.05)
        raise TimeoutError(f"no {method} event within {timeout} s")

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._cmd_w, self._resp_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()


def inspect_page(chromium: str, page: Path, workdir: Path, shots: dict[str, Path]) -> dict:
    """Load ``page`` at each view of ``shots`` and save a screenshot of each.

    ``shots`` maps a view to a PNG path: ``"phone"`` or ``"desktop"``, optionally followed by
    ``@<element id>`` to scroll that element to the top first.
    """
    profile = workdir / "profile"
    profile.mkdir(parents=True, exist_ok=True)
    cdp = DevTools(chromium, profile, workdir / "chromium.log")
    out: dict = {"views": {}}
    try:
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.send("Target.attachToTarget", {"targetId": target,
                                                     "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.send(f"{domain}.enable", session=session)
        for view, path in shots.items():
            device, _, anchor = view.partition("@")
            metrics = PHONE if device == "phone" else DESKTOP
            cdp.send("Emulation.setDeviceMetricsOverride", metrics, session=session)
            with cdp._lock:
                cdp.events = [e for e in cdp.events if e.get("method") != "Page.loadEventFired"]
            cdp.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
            cdp.wait_event("Page.loadEventFired")
            expr = """JSON.stringify({
              images: Array.from(document.images).map(i => ({
                alt: i.alt, complete: i.complete, width: i.naturalWidth,
                height: i.naturalHeight})),
              scrollWidth: document.documentElement.scrollWidth,
              innerWidth: window.innerWidth,
              title: document.title,
              banner: (document.querySelector('.banner') || {}).textContent || null,
              tables: document.querySelectorAll('table').length
            })"""
            res = cdp.send("Runtime.evaluate", {"expression": expr, "returnByValue": True},
                           session=session)
            out["views"][view] = json.loads(res["result"]["value"])
            if anchor:  # scroll a section to the top before the screenshot
                cdp.send("Runtime.evaluate", {"expression": f"document.getElementById("
                                              f"{json.dumps(anchor)}).scrollIntoView()"},
                         session=session)
            shot = cdp.send("Page.captureScreenshot", {"format": "png"}, session=session)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(base64.b64decode(shot["data"]))
    finally:
        cdp.close()
    events = list(cdp.events)
    out["console_errors"] = [
        e["params"] for e in events
        if (e.get("method") == "Runtime.consoleAPICalled"
            and e["params"].get("type") in ("error", "assert"))
        or e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Log.entryAdded"
            and e["params"]["entry"].get("level") == "error")
    ]
    out["requests"] = sorted({
        e["params"]["request"]["url"].split(":", 1)[0] + ":" +
        e["params"]["request"]["url"].split(":", 1)[1][:60]
        for e in events if e.get("method") == "Network.requestWillBeSent"
    })
    out["failed"] = [e["params"] for e in events if e.get("method") == "Network.loadingFailed"]
    return out


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        msg = ("Chromium not found (/usr/bin/chromium); install it with "
               "scripts/install-system-deps.sh")
        if os.environ.get("CI"):
            pytest.fail("CI is set and the browser test must run: " + msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="module")
def report(example_run, tmp_path_factory) -> Path:
    """The report of a real (in-process) run of the default experiment (DoWhy off: the report
    only lays out its numbers), the session's shared run (tests/conftest.py)."""
    from natexp.report.render import write_report
    from tests.conftest import run_copy

    results, tables = run_copy(example_run)
    out = tmp_path_factory.mktemp("report")
    # 100 dpi keeps the test fast; the pipeline writes 300 dpi
    return write_report(out, results, tables, dpi=100)["html"]


def test_report_in_headless_chromium(chromium, report, tmp_path):
    artifacts = Path(os.environ.get("NATEXP_ARTIFACTS", REPO / "outputs" / "test-artifacts"))
    shots = {"phone": artifacts / "report-phone.png",
             "phone@primary": artifacts / "report-phone-primary.png",
             "desktop": artifacts / "report-desktop.png"}
    got = inspect_page(chromium, report, tmp_path, shots)

    for view, info in got["views"].items():
        images = info["images"]
        assert len(images) >= 8, (view, images)
        broken = [i["alt"] for i in images if not i["complete"] or i["width"] <= 0]
        assert broken == [], f"{view}: images that did not load: {broken}"
        assert info["title"].startswith("natexp report")
        assert info["banner"] and "SYNTHETIC DATA" in info["banner"]
        assert info["tables"] >= 5
    phone = got["views"]["phone"]
    assert phone["innerWidth"] == PHONE["width"]
    assert phone["scrollWidth"] <= phone["innerWidth"], (
        f"the page overflows a phone screen horizontally: {phone}")
    assert got["console_errors"] == [], got["console_errors"]
    assert got["failed"] == [], got["failed"]
    offline = [u for u in got["requests"] if not u.startswith(("data:", "file:"))]
    assert offline == [], f"the report made network requests: {offline}"
    for path in shots.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
