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
* at 1280 px and 390 px no table or figure is wider than the viewport unless its own scroll
  container (itself inside the viewport) holds it; at 1280 px every results table's key columns
  (estimate, interval, p, chi-squared) are visible at scrollLeft 0; at 390 px a table of at most
  five columns fits without scrolling,
* at 390 px the cohort-flow diagram's text is laid out by the browser at no less than 75% of
  the body's font size (a picture of text would shrink with the screen),

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
import re
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


#: Measures the page's layout: elements wider than the viewport and the scroll container that
#: holds each; per table its columns' right edges against the visible right edge of its scroll
#: container at scrollLeft 0; the flow diagram's text sizes against the body's.
LAYOUT_JS = r"""JSON.stringify((() => {
  const vw = document.documentElement.clientWidth;
  const body = parseFloat(getComputedStyle(document.body).fontSize);
  const name = el => {
    const w = el.closest('.table-wrap, figure, .flow');
    return (w && (w.getAttribute('aria-label') || w.id || w.className)) || el.tagName;
  };
  const scroller = el => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const ox = getComputedStyle(p).overflowX;
      if (ox === 'auto' || ox === 'scroll') return p;
    }
    return null;
  };
  const overflowing = [];
  for (const el of document.querySelectorAll('table, figure, img, svg, .flow')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || (r.left >= -0.5 && r.right <= vw + 0.5)) continue;
    const s = scroller(el);
    const sr = s && s.getBoundingClientRect();
    if (!s || sr.left < -0.5 || sr.right > vw + 0.5) {
      overflowing.push({element: el.tagName.toLowerCase(), name: name(el),
                        left: r.left, right: r.right, viewport: vw,
                        container: s ? [sr.left, sr.right] : null});
    }
  }
  const tables = [];
  for (const table of document.querySelectorAll('table')) {
    const s = scroller(table);
    if (s) s.scrollLeft = 0;
    const box = s ? s.getBoundingClientRect() : {left: 0};
    const right = Math.min(s ? box.left + s.clientLeft + s.clientWidth : vw, vw);
    const heads = Array.from(table.querySelectorAll('thead th'));
    const columns = heads.map((th, i) => {
      const cells = [th, ...Array.from(table.querySelectorAll(
        `tbody tr > :nth-child(${i + 1})`))];
      return {header: th.textContent.trim(),
              right: Math.max(...cells.map(c => c.getBoundingClientRect().right))};
    });
    tables.push({name: name(table), visible_right: right, columns,
                 scrolls: s ? s.scrollWidth > s.clientWidth + 0.5 : false});
  }
  const flow = document.querySelector('.flow');
  const flowText = [];
  if (flow) {
    const walker = document.createTreeWalker(flow, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (!n.textContent.trim()) continue;
      const el = n.parentElement;
      const range = document.createRange();
      range.selectNodeContents(n);
      const rects = Array.from(range.getClientRects());
      // SVG text: its rendered height (the viewBox scales it); HTML: its font size
      const size = el.closest('svg') ? el.getBoundingClientRect().height / 1.15
        : parseFloat(getComputedStyle(el).fontSize);
      flowText.push({text: n.textContent.trim().slice(0, 40), size, lines: rects.length});
    }
  }
  return {viewport: vw, body_font: body, overflowing, tables, flow: flowText,
          flow_kind: flow ? flow.tagName.toLowerCase() : null};
})())"""


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
            if not anchor:
                res = cdp.send("Runtime.evaluate", {"expression": LAYOUT_JS,
                                                    "returnByValue": True}, session=session)
                out["views"][view]["layout"] = json.loads(res["result"]["value"])
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


ARTIFACTS = Path(os.environ.get("NATEXP_ARTIFACTS", REPO / "outputs" / "test-artifacts"))
SHOTS = {"phone": ARTIFACTS / "report-phone.png",
         "phone@primary": ARTIFACTS / "report-phone-primary.png",
         "phone@fig-flow": ARTIFACTS / "report-phone-flow.png",
         "desktop": ARTIFACTS / "report-desktop.png",
         "desktop@descriptive": ARTIFACTS / "report-desktop-descriptive.png"}
#: Headers of the columns a reader needs from a results table: the estimate, its interval, the
#: p-values and test statistics (measured at the desktop width without scrolling).
KEY_COLUMN = re.compile(r"estimate|interval|\bci\b|(^|[\s(])p($|[\s(])|p-value|chi-squared",
                        re.IGNORECASE)
#: A table with at most this many columns fits a phone without scrolling.
PHONE_COLUMNS = 5


@pytest.fixture(scope="module")
def inspected(chromium, report, tmp_path_factory) -> dict:
    return inspect_page(chromium, report, tmp_path_factory.mktemp("chromium"), SHOTS)


def test_report_in_headless_chromium(inspected):
    got = inspected
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
    for path in SHOTS.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("view", ["phone", "desktop"])
def test_nothing_wider_than_the_screen_unless_its_own_box_scrolls(inspected, view):
    layout = inspected["views"][view]["layout"]
    assert layout["tables"], "no table measured"
    assert layout["overflowing"] == [], (
        f"{view}: wider than the {layout['viewport']} px viewport without a scroll container "
        f"of its own: {layout['overflowing']}")


def test_key_columns_visible_without_scrolling_on_a_desktop(inspected):
    layout = inspected["views"]["desktop"]["layout"]
    hidden = [(t["name"], c["header"], round(c["right"]), round(t["visible_right"]))
              for t in layout["tables"] for c in t["columns"]
              if KEY_COLUMN.search(c["header"]) and c["right"] > t["visible_right"] + 0.5]
    assert hidden == [], f"key columns behind horizontal scrolling at 1280 px: {hidden}"


def test_small_tables_fit_a_phone(inspected):
    layout = inspected["views"]["phone"]["layout"]
    cut = [(t["name"], c["header"], round(c["right"]), round(t["visible_right"]))
           for t in layout["tables"] if len(t["columns"]) <= PHONE_COLUMNS
           for c in t["columns"] if c["right"] > t["visible_right"] + 0.5]
    assert cut == [], f"columns cut off at 390 px: {cut}"


def test_flow_diagram_text_legible_on_a_phone(inspected):
    layout = inspected["views"]["phone"]["layout"]
    assert layout["flow"], ("the flow diagram has no text a browser lays out (a picture of "
                            "text shrinks with the screen)")
    small = [(t["text"], round(t["size"], 1)) for t in layout["flow"]
             if t["size"] < 0.75 * layout["body_font"]]
    assert small == [], (f"flow text below 75% of the body's {layout['body_font']} px at "
                         f"390 px: {small}")
