"""Open every page of the built book in a real, headless Chromium.

For every page in _toc.yml the test checks that

* the page has its title,
* every image loaded (``naturalWidth > 0``),
* all math was typeset by MathJax (every ``.math`` element holds an
  ``mjx-container`` and no MathJax error),
* every embedded widget was rendered as a control by the ipywidgets HTML manager,
* every widget *works* without a kernel: each control of each of the book's widgets
  (``.ih-widget``, induction_lib/widgets) is used -- every option of every select, range
  inputs at their ends and middle, every checkbox, every button, hovering tokens -- and
  after each use the figure (canvas pixels, SVG, text) changed and agrees with the
  control (the figure's record ``data-shown`` names the control's value; the step label
  is the slider's snapshot; the highlighted row and token are the hovered one); a
  control that needs a kernel says so in the widget. A control outside the book's
  widgets (a plain ipywidgets app, whose callbacks need a kernel) fails the test,
* the widget state embedded in the page is at most 2 MB,
* the console shows no error (apart from a short, commented allow-list),
* no request left the machine: every URL the page requested is on
  127.0.0.1 (or data:/blob:).

A full-page screenshot of each page goes to _build/screenshots/.

Chromium is driven through the Chrome DevTools Protocol over a pipe
(``--remote-debugging-pipe``: NUL-separated JSON on file descriptors 3 and 4),
so no extra Python package is needed. The test fails -- it is not skipped --
when Chromium is missing. Set CHROMIUM=/path/to/chrome to use another browser.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import BUILD_DIR, HTML_DIR, toc_docnames

CHROMIUM_CANDIDATES = ["/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"]
SCREENSHOT_DIR = BUILD_DIR / "screenshots"
PAGE_TIMEOUT = 60  # seconds for a page to load, typeset its math and render its widgets
WIDGET_TIMEOUT = 180  # seconds to work every control of every widget on one page
MAX_WIDGET_STATE = 2_000_000  # bytes of embedded widget state per page
VIEWPORT = {"width": 1280, "height": 900}

# Console messages that are not errors of the book. Keep this list short and
# say why each entry is harmless.
CONSOLE_ALLOW = [
    # Chromium asks every site for /favicon.ico; the book has no favicon.
    re.compile(r"favicon\.ico"),
]


# --------------------------------------------------------------------------
# A minimal Chrome DevTools Protocol client over --remote-debugging-pipe.
# --------------------------------------------------------------------------


class CDPError(RuntimeError):
    pass


class Browser:
    def __init__(self, executable: str):
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        # Pipes: the browser reads commands on fd 3 and writes replies on fd 4.
        cmd_read, self._cmd_write = os.pipe()
        self._reply_read, reply_write = os.pipe()

        def map_fds():  # runs in the child, before exec
            os.dup2(cmd_read, 3)
            os.dup2(reply_write, 4)

        args = [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--metrics-recording-only",
            "--mute-audio",
            "--hide-scrollbars",
            f"--window-size={VIEWPORT['width']},{VIEWPORT['height']}",
            f"--user-data-dir={self.profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(3, 4),
            preexec_fn=map_fds,
        )
        os.close(cmd_read)
        os.close(reply_write)
        self._next_id = 0
        self._lock = threading.Condition()
        self._replies: dict[int, dict] = {}
        self._events: dict[str | None, list[dict]] = {}
        self._closed = False
        self._stderr_lines: list[str] = []
        threading.Thread(target=self._read_loop, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    # -- transport --
    def _read_stderr(self):
        for line in self.proc.stderr:
            self._stderr_lines.append(line.decode(errors="replace").rstrip())

    def _read_loop(self):
        buf = b""
        with os.fdopen(self._reply_read, "rb", buffering=0) as pipe:
            while True:
                chunk = pipe.read(1 << 16)
                if not chunk:
                    break
                buf += chunk
                *messages, buf = buf.split(b"\0")
                for raw in messages:
                    msg = json.loads(raw)
                    with self._lock:
                        if "id" in msg:
                            self._replies[msg["id"]] = msg
                        else:
                            self._events.setdefault(msg.get("sessionId"), []).append(msg)
                        self._lock.notify_all()
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30):
        with self._lock:
            self._next_id += 1
            msg_id = self._next_id
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._cmd_write, data) :]
        deadline = time.monotonic() + timeout
        with self._lock:
            while msg_id not in self._replies:
                if self._closed:
                    raise CDPError("browser exited; stderr:\n" + "\n".join(self._stderr_lines[-20:]))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CDPError(f"timeout waiting for {method}")
                self._lock.wait(left)
            reply = self._replies.pop(msg_id)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def events(self, session: str) -> list[dict]:
        with self._lock:
            return list(self._events.get(session, []))

    def wait_event(self, session: str, method: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for ev in self._events.get(session, []):
                    if ev["method"] == method:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise CDPError(f"no {method} within {timeout}s")
                self._lock.wait(left)

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_write)
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- pages --
    def new_page(self) -> tuple[str, str]:
        """Open a tab; return (target id, session id)."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable", session=session)
        self.send("Network.setCacheDisabled", {"cacheDisabled": True}, session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {**VIEWPORT, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        return target, session

    def evaluate(self, session: str, expression: str, timeout: float = 30):
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session=session,
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            raise CDPError(f"JavaScript error: {result['exceptionDetails']}")
        return result["result"].get("value")


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


def find_chromium() -> str | None:
    if os.environ.get("CHROMIUM"):  # explicit choice: use exactly this one
        return shutil.which(os.environ["CHROMIUM"])
    for candidate in CHROMIUM_CANDIDATES:
        path = shutil.which(candidate)
        if path:
            return path
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(book_build):
    """Serve _build/html on 127.0.0.1 (random free port) in a thread."""
    if not (HTML_DIR / "index.html").exists():
        pytest.fail("the book was not built (_build/html/index.html missing); see test_book.py")
    handler = functools.partial(_QuietHandler, directory=str(HTML_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    executable = find_chromium()
    if executable is None:
        wanted = os.environ.get("CHROMIUM") or CHROMIUM_CANDIDATES
        pytest.fail(f"Chromium not found (looked for {wanted}); install it, e.g. apt-get install chromium")
    b = Browser(executable)
    try:
        b.send("Browser.getVersion", timeout=60)
        yield b
    finally:
        b.close()


# --------------------------------------------------------------------------
# The checks, run in the page once it is ready.
# --------------------------------------------------------------------------

# A widget view counts as rendered when the HTML manager has put, in the
# .widget-subarea it inserts before the view's <script>, a .jupyter-widgets
# element of some widget class (widget-slider, widget-box, widget-output, ...).
JS_HELPERS = """
const widgetViews = () => [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')];
const renderedAsControl = script => {
  const area = script.previousElementSibling;
  if (!area || !area.classList.contains('widget-subarea')) return false;
  if (area.querySelector('.ih-widget [data-control]')) return true;   // the book's widgets (anywidget)
  return [...area.querySelectorAll('.jupyter-widgets')]
    .some(el => [...el.classList].some(c => c.startsWith('widget-') && c !== 'widget-subarea'));
};
"""

WAIT_READY_JS = """
(async () => {
""" + JS_HELPERS + """
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const deadline = Date.now() + %(timeout_ms)d;
  // Math: wait until MathJax has started and finished its first typeset.
  if (document.querySelector('.math')) {
    while (!(window.MathJax && MathJax.startup && MathJax.startup.promise) && Date.now() < deadline) await sleep(100);
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  }
  // Widgets: wait until every widget view has been rendered.
  while (widgetViews().some(s => !renderedAsControl(s)) && Date.now() < deadline) await sleep(100);
  // Images: scroll through the page so lazily loaded images load, then wait for them.
  for (let y = 0; y < document.body.scrollHeight; y += window.innerHeight) { window.scrollTo(0, y); await sleep(50); }
  window.scrollTo(0, 0);
  while ([...document.images].some(i => !i.complete) && Date.now() < deadline) await sleep(100);
  return true;
})()
"""

CHECK_JS = """
(() => {
""" + JS_HELPERS + """
  const views = widgetViews();
  const mathEls = [...document.querySelectorAll('.math')];
  return {
    title: document.title,
    h1: (document.querySelector('main h1, article h1, h1') || {}).textContent || '',
    images: [...document.images].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})),
    mathCount: mathEls.length,
    mathUntypeset: mathEls.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
    mjxContainers: document.querySelectorAll('mjx-container').length,
    mathErrors: [...document.querySelectorAll('mjx-merror, [data-mjx-error]')].map(e => e.textContent.slice(0, 80)),
    widgetStates: document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]').length,
    widgetViews: views.length,
    widgetsRendered: views.filter(renderedAsControl).length,
    widgetErrors: [...document.querySelectorAll('.jupyter-widgets-error-widget, .widget-error')].map(e => e.textContent.slice(0, 120)),
    widgetStateBytes: [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]')]
      .reduce((n, e) => n + new Blob([e.textContent]).size, 0),
    bookWidgets: document.querySelectorAll('.ih-widget').length,
    // controls that are not part of the book's widgets: plain ipywidgets, whose callbacks need a kernel
    deadControls: [...document.querySelectorAll('.widget-subarea')]
      .filter(a => !a.querySelector('.ih-widget'))
      .flatMap(a => [...a.querySelectorAll('input, select, button, textarea, .widget-slider, .widget-hslider, ' +
                     '.widget-vslider, .widget-dropdown, .widget-select, .widget-toggle-buttons, .widget-radio, ' +
                     '.widget-play, .widget-colorpicker, .widget-datepicker, .widget-combobox, .widget-tagsinput')])
      .filter((e, i, all) => !all.some(o => o !== e && o.contains(e)))   // one entry per control
      .map(e => `${e.tagName.toLowerCase()}${e.type ? '[' + e.type + ']' : ''} ` +
                `${(e.closest('.widget-inline-hbox, .jupyter-widgets') || e).textContent.trim().slice(0, 40)}`),
    height: Math.ceil(Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)),
  };
})()
"""

# Works every control of every book widget (.ih-widget) on the page and reports, per widget, how many
# actions it took and what went wrong. A widget records what its figure shows in data-shown (JSON); a
# control is tagged data-control=<name of the value it sets>; hover targets are tagged data-hover.
DRIVE_WIDGETS_JS = """
(async () => {
  const frame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  const sig = root => [
    ...[...root.querySelectorAll('canvas')].map(c => c.toDataURL()),
    ...[...root.querySelectorAll('svg')].map(e => e.outerHTML),
    ...[...root.querySelectorAll('.ih-tokens')].map(e => e.innerHTML),
    ...[...root.querySelectorAll('.ih-bars, .ih-grid, .ih-panel-title, .ih-step, .ih-small')].map(e => e.textContent),
  ].join('|');
  const out = [];
  for (const root of document.querySelectorAll('.ih-widget')) {
    const name = root.dataset.widget;
    const shown = () => JSON.parse(root.dataset.shown || '{}');
    const message = () => (root.querySelector('.ih-message') || {}).textContent || '';
    const problems = [];
    let actions = 0;
    const act = async (what, fn, agree, mustChange = true) => {
      const before = sig(root);
      fn();
      await frame();
      actions++;
      if (mustChange && sig(root) === before) problems.push(`${what}: the figure did not change`);
      const bad = agree && agree();
      if (bad) problems.push(`${what}: ${bad}`);
      if (/traceback/i.test(message())) problems.push(`${what}: a traceback in the widget: ${message()}`);
    };
    const same = (key, want) => () => {
      const got = shown()[key];
      const ok = typeof got === 'number' ? Math.abs(got - Number(want)) < 1e-9 : String(got) === String(want);
      return ok ? null : `the figure shows ${key} = ${JSON.stringify(got)}, the control says ${want}`;
    };
    // widget-specific agreement between the figure and the controls
    const extra = () => {
      const s = shown();
      if (name === 'checkpoint-scrubber') {
        const steps = JSON.parse(root.dataset.steps), slider = root.querySelector('[data-control=step_index]');
        const want = steps[Number(slider.value)];
        const label = root.querySelector('.ih-step').textContent;
        if (label !== `step ${want}`) return `step label '${label}' but the slider is at step ${want}`;
        const stale = [...root.querySelectorAll('[data-step]')].filter(e => e.dataset.step !== String(want));
        if (stale.length) return `${stale.length} pattern(s) drawn for another step than ${want}`;
      }
      if (name === 'attention-explorer') {
        const q = root.querySelector('.ih-token.ih-query');
        if (!q || Number(q.dataset.pos) !== s.query) return `highlighted token ${q && q.dataset.pos}, query ${s.query}`;
        if (Number(root.querySelector('canvas[data-row]').dataset.row) !== s.query) return 'highlighted row is not the query';
      }
      if (name === 'ablation-board') {
        for (const cb of root.querySelectorAll('input[type=checkbox]'))
          if (!!(s.mask >> Number(cb.dataset.bit) & 1) !== cb.checked) return `checkbox ${cb.dataset.control} disagrees with the figure`;
      }
      return null;
    };
    const both = (a, b) => () => a() || b();
    if (name === 'hopfield-playground') {   // JavaScript's retrieval = Python's (HopfieldPlayground.summary)
      const ref = JSON.parse(root.dataset.reference), s = shown();
      if (s.steps !== ref.steps || Math.abs(s.error - ref.error) > 1e-3 || Math.abs(s.count - ref.count) > 1e-2)
        problems.push(`retrieval in the page (${s.steps} steps, error ${s.error}, count ${s.count}) differs from ` +
                      `Python's (${ref.steps}, ${ref.error}, ${ref.count})`);
    }
    const bad = extra();
    if (bad) problems.push(`as loaded: ${bad}`);
    // a value that never arrived prints as a word ("null" from a DOM call given null, "undefined", "NaN")
    const leaked = root.textContent.match(/\\b(null|undefined|NaN)\\b/);
    if (leaked) problems.push(`as loaded: the text shows "${leaked[0]}"`);
    // controls are looked up again before each use: a widget may rebuild them
    const names = [...new Set([...root.querySelectorAll('[data-control]')].map(c => c.dataset.control))];
    for (const key of names) {
      const ctl = () => root.querySelector(`[data-control="${key}"]`);
      const c = ctl();
      if (c.tagName === 'SELECT') {
        const original = c.value;
        for (const v of [...[...c.options].map(o => o.value).filter(v => v !== original), original])
          await act(`${name}: ${key} = ${v}`, () => { const e = ctl(); e.value = v; e.dispatchEvent(new Event('change')); },
                    both(same(key, v), extra));
      } else if (c.type === 'range') {
        const original = c.value, lo = Number(c.min), hi = Number(c.max);
        const mid = c.step === 'any' ? (lo + hi) / 2 : lo + Math.round((hi - lo) / 2 / Number(c.step || 1)) * Number(c.step || 1);
        let last = c.value;
        for (const v of [lo, hi, mid, original]) {
          if (String(v) === String(last)) continue;
          await act(`${name}: ${key} = ${v}`, () => { const e = ctl(); e.value = String(v); e.dispatchEvent(new Event('input')); e.dispatchEvent(new Event('change')); },
                    both(() => same(key, ctl().value)(), extra));
          last = ctl().value;
        }
      } else if (c.type === 'checkbox') {
        for (let i = 0; i < 2; i++)
          await act(`${name}: toggle ${key}`, () => ctl().click(), extra);
      } else if (c.tagName === 'BUTTON' && 'needsKernel' in c.dataset) {
        await act(`${name}: button ${key}`, () => ctl().click(),
                  () => /kernel/i.test(message()) ? null : `no message that '${key}' needs a kernel`, false);
      } else if (c.tagName === 'BUTTON') {
        await act(`${name}: button ${key}`, () => ctl().click(), extra);
      } else if (c.type === 'text') {
        await act(`${name}: type into ${key}`, () => {
          const e = ctl(); e.value = '5 6 7 5 6';
          e.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'}));
        }, () => /kernel/i.test(message()) ? null : `no message that typing needs a kernel`, false);
      } else problems.push(`unknown control ${key} (${c.tagName})`);
    }
    // hover: a few tokens (first, middle, last), each must become the highlighted query
    const targets = () => [...root.querySelectorAll('[data-hover]')];
    const n = targets().length;
    for (const i of [...new Set([0, Math.floor(n / 2), n - 2])].filter(i => i >= 0 && i < n)) {
      if (shown().query === i) continue;
      await act(`${name}: hover token ${i}`, () => {
        const e = targets()[i];
        for (const type of ['mouseover', 'mouseenter', 'mousemove']) e.dispatchEvent(new MouseEvent(type, {bubbles: type !== 'mouseenter'}));
      }, both(same('query', i), extra));
    }
    if (!actions) problems.push('no control to use');
    out.push({name, actions, problems});
  }
  return out;
})()
"""


def _is_local(url: str) -> bool:
    scheme = url.split(":", 1)[0].lower()
    if scheme in {"data", "blob", "about"}:
        return True
    host = urlsplit(url).hostname or ""
    return scheme in {"http", "https", "ws", "wss"} and host in {"127.0.0.1", "localhost"}


def _console_errors(events: list[dict]) -> list[str]:
    errors = []
    for ev in events:
        method, params = ev["method"], ev.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = params["exceptionDetails"]
            text = (d.get("exception") or {}).get("description") or d.get("text", "")
            errors.append(f"uncaught exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            errors.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            errors.append(f"request failed: {params.get('errorText')} (request {params.get('requestId')})")
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            errors.append(f"HTTP {params['response']['status']}: {params['response']['url']}")
    return [e for e in errors if not any(p.search(e) for p in CONSOLE_ALLOW)]


def _pages() -> list[str]:
    return toc_docnames()


@pytest.mark.parametrize("docname", _pages())
def test_page_renders_offline(docname, site, browser):
    target, session = browser.new_page()
    url = f"{site}/{docname}.html"
    browser.send("Page.navigate", {"url": url}, session=session)
    browser.wait_event(session, "Page.loadEventFired", timeout=PAGE_TIMEOUT)
    browser.evaluate(session, WAIT_READY_JS % {"timeout_ms": PAGE_TIMEOUT * 1000}, timeout=PAGE_TIMEOUT + 10)
    time.sleep(0.5)  # let late requests (fonts, lazily loaded modules) start, so they are recorded
    info = browser.evaluate(session, CHECK_JS)
    # Work every control of every widget (before the screenshot, which then shows the widgets as left).
    driven = browser.evaluate(session, DRIVE_WIDGETS_JS, timeout=WIDGET_TIMEOUT) if info["bookWidgets"] else []
    time.sleep(0.3)

    # Full-page screenshot.
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    browser.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": VIEWPORT["width"], "height": min(info["height"], 16000), "deviceScaleFactor": 1, "mobile": False},
        session=session,
    )
    time.sleep(0.3)
    shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session)
    (SCREENSHOT_DIR / (docname.replace("/", "__") + ".png")).write_bytes(base64.b64decode(shot["data"]))

    events = browser.events(session)
    requests = [ev["params"]["request"]["url"] for ev in events if ev["method"] == "Network.requestWillBeSent"]
    browser.send("Target.closeTarget", {"targetId": target})

    problems = []
    # 1. Title.
    if not info["title"].strip() or not info["h1"].strip():
        problems.append(f"missing title (document.title={info['title']!r}, h1={info['h1']!r})")
    # 2. Images.
    problems += [f"image did not load: {img['src']}" for img in info["images"] if not img["ok"]]
    # 3. Math.
    if info["mathCount"]:
        if info["mathUntypeset"]:
            problems.append(f"math not typeset by MathJax: {info['mathUntypeset']}")
        if not info["mjxContainers"]:
            problems.append("page has math but no mjx-container")
    if info["mathErrors"]:
        problems.append(f"MathJax errors: {info['mathErrors']}")
    # 4. Widgets.
    if info["widgetViews"] and not info["widgetStates"]:
        problems.append("widget views but no widget state on the page")
    if info["widgetsRendered"] != info["widgetViews"]:
        problems.append(f"only {info['widgetsRendered']} of {info['widgetViews']} widgets rendered as controls")
    if info["widgetErrors"]:
        problems.append(f"widget errors: {info['widgetErrors']}")
    if info["widgetStateBytes"] > MAX_WIDGET_STATE:
        problems.append(f"embedded widget state is {info['widgetStateBytes']} bytes (budget {MAX_WIDGET_STATE})")
    if info["deadControls"]:
        problems.append(f"controls outside the book's widgets (they need a kernel, so do nothing here): "
                        f"{info['deadControls']}")
    if len(driven) != info["bookWidgets"]:
        problems.append(f"worked {len(driven)} of {info['bookWidgets']} widgets")
    for w in driven:
        problems += [f"widget {w['name']}: {p}" for p in w["problems"]]
    # 5. Console.
    problems += _console_errors(events)
    # 6. Network: nothing but 127.0.0.1 / data: / blob:.
    problems += [f"request left the machine: {u}" for u in requests if not _is_local(u)]

    assert not problems, f"{url}:\n  " + "\n  ".join(problems)
    assert requests, "no requests recorded -- the network log is not working"

