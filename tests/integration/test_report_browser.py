"""report.html in a real browser: headless Chromium (Debian's `chromium`), driven through the DevTools
protocol over a pipe (`--remote-debugging-pipe`: no port, no websocket library).

Console errors are caught from three CDP streams: Runtime.exceptionThrown (uncaught JS errors),
Runtime.consoleAPICalled of type error/assert, and Log.entryAdded at level error (blocked or failed
loads, Content-Security-Policy violations). The detector itself is tested on deliberately broken pages.
The report (build/test-artifacts/report/) and its screenshot (build/test-artifacts/report.png) are kept.
"""
from __future__ import annotations

import base64
import fcntl
import importlib.util
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts"
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)

if CHROMIUM is None:
    pytest.skip("headless Chromium is not installed (Debian: apt-get install -y chromium)", allow_module_level=True)


def _helpers():
    spec = importlib.util.spec_from_file_location("report_helpers", ROOT / "tests" / "unit" / "report_helpers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Browser:
    """Headless Chromium with a DevTools session over fds 3 (commands in) and 4 (replies out)."""

    def __init__(self, timeout: float = 60.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="edgebench-chromium-")
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()
        # move the child's ends above 10 so that dup2 onto 3 and 4 cannot clobber one another
        hi_r, hi_w = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10), fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
        os.close(cmd_r)
        os.close(out_w)

        def child_fds():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--hide-scrollbars", "--mute-audio", f"--user-data-dir={self.profile}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
            pass_fds=(3, 4), preexec_fn=child_fds)
        os.close(hi_r)
        os.close(hi_w)
        self._buf = b""
        self._next_id = 0
        self.events: List[Dict[str, Any]] = []
        self.session: Optional[str] = None

    # --- protocol ---------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> Dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from Chromium")
            ready, _, _ = select.select([self._out_r], [], [], left)
            if ready:
                chunk = os.read(self._out_r, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the DevTools pipe: {self._stderr_tail()}")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: Optional[Dict[str, Any]] = None, session: bool = True) -> Dict[str, Any]:
        self._next_id += 1
        msg: Dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        for e in self.events:
            if e.get("method") == method:
                return e
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._read_message(deadline)
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg

    def drain(self, seconds: float = 0.5) -> None:
        deadline = time.monotonic() + seconds
        try:
            while True:
                msg = self._read_message(deadline)
                if "method" in msg:
                    self.events.append(msg)
        except TimeoutError:
            pass

    # --- page -------------------------------------------------------------------------------
    def open(self, url: str, width: int = 1400, height: int = 900) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.send(domain)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")
        self.drain(0.5)

    def evaluate(self, expression: str) -> Any:
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in res:
            raise RuntimeError(f"evaluate failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def errors(self) -> List[str]:
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                        for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"log ({p['entry'].get('source')}): {p['entry'].get('text')}")
        return out

    def screenshot(self, path: Path, max_height: int = 16000) -> Path:
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], max_height), "scale": 1}
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def _stderr_tail(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-2000:]

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._cmd_w, self._out_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture
def browser():
    b = Browser()
    try:
        yield b
    finally:
        b.close()


# ----------------------------------------------------------------------------------------------
# the detector must see a broken page as broken

BROKEN_PAGES = {
    "uncaught exception": "<script>undefinedFunction();</script>",
    "console.error": "<script>console.error('deliberate');</script>",
    "blocked network load": ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
                             '<img src="http://127.0.0.1:9/x.png">'),
    "missing file": '<img src="does-not-exist.png">',
}


@pytest.mark.parametrize("name", sorted(BROKEN_PAGES))
def test_detector_sees_broken_page(browser, tmp_path, name):
    page = tmp_path / "broken.html"
    page.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{BROKEN_PAGES[name]}"
                    "<p>broken</p></body></html>")
    browser.open(page.as_uri())
    assert browser.errors(), f"a page with {name} produced no error event"


def test_detector_passes_clean_page(browser, tmp_path):
    page = tmp_path / "clean.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body><p>ok</p>"
                    "<script>console.log('fine');</script></body></html>")
    browser.open(page.as_uri())
    assert browser.errors() == []


# ----------------------------------------------------------------------------------------------
# the report

def test_report_renders_in_chromium(browser, tmp_path):
    from edgebench.report import render_report

    helpers = _helpers()
    paths = helpers.write_set(tmp_path / "results")   # two runs, a second device, one truncated file
    # rendered into the artifacts folder, so CI keeps the page itself beside its screenshot
    html, _ = render_report(paths, ARTIFACTS / "report", title="edgebench browser test")
    browser.open(html.as_uri())
    shot = browser.screenshot(ARTIFACTS / "report.png")

    assert browser.errors() == [], "console errors in report.html"
    assert browser.evaluate("document.documentElement.getAttribute('data-report-ready')") == "1"
    kinds = browser.evaluate("Array.from(document.querySelectorAll('svg.chart')).map(s => s.dataset.chart)")
    for kind in ("latency", "throughput", "threads", "accuracy", "comparison"):
        assert kind in kinds, f"no {kind} chart in the report (have {sorted(set(kinds))})"
    # every chart is laid out with a real size and has drawn marks
    sizes = browser.evaluate("Array.from(document.querySelectorAll('svg.chart')).map(s => {"
                             "const r = s.getBoundingClientRect(); "
                             "return [r.width, r.height, s.querySelectorAll('circle,rect,path,line').length]; })")
    assert all(w > 200 and h > 80 and marks >= 4 for w, h, marks in sizes), sizes
    text = browser.evaluate("document.body.innerText")
    assert "truncated.json" in text and "skipped" in text           # the corrupt file is named
    assert "orin-nano (seed study)" in text and "imported" in text  # the reference is there, labelled
    assert "ok, no accuracy" in text                                 # unverified rows are marked
    assert shot.stat().st_size > 10_000


WIDTH = 1400


def _layout_checks(browser):
    """Every table fits a 1,400 px viewport (no horizontal scrolling, inside or outside its wrapper),
    and every backend has one colour across all charts."""
    overflow = browser.evaluate("""(() => {
      const w = window.innerWidth, bad = [];
      document.querySelectorAll('table').forEach((t, i) => {
        const r = t.getBoundingClientRect(), wrap = t.closest('.tablewrap');
        if (r.right > w + 1 || (wrap && wrap.scrollWidth > wrap.clientWidth + 1))
          bad.push([i, t.className, Math.round(r.width), wrap ? wrap.scrollWidth : null,
                    (t.tHead ? t.tHead.innerText : '').slice(0, 80)]);
      });
      return {bad: bad, page: document.documentElement.scrollWidth, w: w,
              tables: document.querySelectorAll('table').length};
    })()""")
    assert overflow["w"] == WIDTH and overflow["tables"] >= 3
    assert overflow["bad"] == [], f"tables wider than the {WIDTH} px viewport: {overflow['bad']}"
    assert overflow["page"] <= WIDTH, f"the page scrolls sideways ({overflow['page']} px)"
    marks = browser.evaluate("""Array.from(document.querySelectorAll('svg.chart [data-backend]')).map(e =>
        [e.getAttribute('data-backend'), e.getAttribute('data-color'),
         e.getAttribute('fill') === 'none' ? e.getAttribute('stroke')
                                           : (e.getAttribute('fill') || e.getAttribute('stroke')),
         e.closest('svg.chart').dataset.chart])""")
    colours, kinds = {}, {}
    for backend, colour, painted, kind in marks:
        assert painted == colour, (backend, colour, painted, kind)
        colours.setdefault(backend, set()).add(colour)
        kinds.setdefault(backend, set()).add(kind)
    assert colours, "no chart marks carry their backend"
    assert all(len(c) == 1 for c in colours.values()), f"a backend with several colours: {colours}"
    assert max(len(k) for k in kinds.values()) >= 3, kinds   # the same backend drawn in several charts
    by_colour = {}
    for backend, c in colours.items():
        by_colour.setdefault(next(iter(c)), []).append(backend)
    assert all(len(b) == 1 for b in by_colour.values()), f"two backends share a colour: {by_colour}"


def test_report_layout_fits_the_viewport_and_colours_agree(browser, tmp_path):
    """The measured 2-core run (its wide test-set table, 48 skipped rows) beside made-up runs."""
    from edgebench.report import render_report

    helpers = _helpers()
    paths = helpers.write_set(tmp_path / "results")[:3]
    measured = ROOT / "docs" / "measurements" / "local-x86-2core.json"
    html, _ = render_report([measured] + paths, ARTIFACTS / "report-layout", title="edgebench layout test")
    browser.open(html.as_uri(), width=WIDTH)
    browser.screenshot(ARTIFACTS / "report-layout.png")
    assert browser.errors() == []
    _layout_checks(browser)
    text = browser.evaluate("document.body.innerText")
    assert "one line per artifact and reason" in text                     # skips grouped
    assert "local · host · 2026-11-26 09:38" in text                       # device · place · time
    assert "cross-model comparison" in text                                # seed study vs the kit's model


def test_table_sorting_script_works(browser, tmp_path):
    from edgebench.report import render_report

    helpers = _helpers()
    p = helpers.write(tmp_path / "one.json", helpers.make_doc("sort-test"))
    html, _ = render_report([p], tmp_path / "report", include_reference=False)
    browser.open(html.as_uri())
    # click the img/s header of the first table twice: ascending, then descending
    js = """(() => {
      const t = document.querySelector('table.results');
      const col = Array.from(t.tHead.rows[0].cells).findIndex(c => c.textContent.trim() === 'img/s');
      const th = t.tHead.rows[0].cells[col];
      const values = () => Array.from(t.tBodies[0].rows).map(r => r.cells[col])
          .filter(c => c && c.classList.contains('num')).map(c => parseFloat(c.textContent.replace(/,/g, '')));
      th.click(); const up = values(); th.click(); const down = values();
      return [up, down];
    })()"""
    up, down = browser.evaluate(js)
    assert up == sorted(up) and down == sorted(down, reverse=True) and len(up) >= 4
    assert browser.errors() == []
