"""The demo page (demo = on) in a real browser: Debian's headless Chromium
driven by playwright-core (npm) through demo_page.cjs.

Needs /usr/bin/chromium, node and playwright-core: scripts/install-browser
installs them.  Without chromium or node the browser test is skipped, unless
TEST_REQUIRE_BROWSER=1 (CI), which installs them or fails.  A missing
playwright-core is installed (npm) when chromium and node are there.
Environment: TEST_NODE_PATH (a node_modules dir with playwright-core),
CHROMIUM (another chromium binary)."""

import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(HERE, "demo_page.cjs")
INSTALL = os.path.join(TOP, "scripts", "install-browser")
IDS = ["user", "token", "connect", "status", "pushkey", "target", "message", "send", "sendstatus", "log"]


def _required():
    return os.environ.get("TEST_REQUIRE_BROWSER", "") not in ("", "0", "no", "false")


def _chromium():
    return os.environ.get("CHROMIUM") or "/usr/bin/chromium"


def _playwright_loads(node, node_path):
    if not node_path or not os.path.isdir(node_path):
        return False
    env = dict(os.environ, NODE_PATH=node_path)
    try:
        p = subprocess.run([node, "-e", "require('playwright-core')"], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0


def _install_dir(session):
    build = os.path.join(TOP, "build")
    if os.access(build if os.path.isdir(build) else TOP, os.W_OK):
        return os.path.join(build, "npm")
    return os.path.join(session.workdir, "npm")


@pytest.fixture(scope="module")
def browser(session):
    """(node, NODE_PATH) for demo_page.cjs, installing what is missing when
    allowed; skips (or fails under TEST_REQUIRE_BROWSER=1) otherwise."""
    required = _required()
    node = shutil.which("node")
    have_chromium = os.access(_chromium(), os.X_OK)
    candidates = [os.environ.get("TEST_NODE_PATH"), os.path.join(TOP, "build", "npm", "node_modules"),
                  os.path.join(session.workdir, "npm", "node_modules")]
    if node and have_chromium:
        for c in candidates:
            if _playwright_loads(node, c):
                return node, c
    if not (node and have_chromium) and not required:
        pytest.skip("headless browser test needs %s (run scripts/install-browser, or set "
                    "TEST_REQUIRE_BROWSER=1 to install it or fail)" %
                    " and ".join(w for w, ok in (("chromium", have_chromium), ("node", node)) if not ok))
    if not os.access(INSTALL, os.X_OK):
        msg = "scripts/install-browser not found at %s" % INSTALL
        if required:
            pytest.fail(msg)
        pytest.skip(msg)
    try:
        p = subprocess.run([INSTALL, _install_dir(session)], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=900)
    except subprocess.TimeoutExpired:
        p = None
    node = shutil.which("node")
    if p is None or p.returncode != 0 or not node:
        msg = "scripts/install-browser failed: %s" % ("timed out" if p is None else p.stderr[-1500:])
        if required:
            pytest.fail(msg)
        pytest.skip(msg)
    node_path = p.stdout.strip().splitlines()[-1]
    if not _playwright_loads(node, node_path):
        msg = "playwright-core does not load from %s after scripts/install-browser" % node_path
        if required:
            pytest.fail(msg)
        pytest.skip(msg)
    return node, node_path


class NodeRun:
    """demo_page.cjs as a child process (its own process group, so that the
    browser it starts goes with it); JSON lines from its stdout."""

    def __init__(self, node, node_path, args, workdir, script=SCRIPT):
        env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "NODE_PATH": node_path, "LANG": "C.UTF-8",
               "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
        if os.environ.get("CHROMIUM"):
            env["CHROMIUM"] = os.environ["CHROMIUM"]
        self.name = os.path.basename(script)
        self.err_path = os.path.join(workdir, self.name + ".stderr")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([node, script] + args, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.err, cwd=workdir,
                                     start_new_session=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace"))
        self.lines.put(None)

    def step(self, name, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r from %s within %.0fs; seen %s; stderr: %s"
                                     % (name, self.name, timeout, self._seen(), self.stderr()))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("%s ended (status %s) before %r; seen %s; stderr: %s"
                                     % (self.name, self.proc.wait(10), name, self._seen(), self.stderr()))
            try:
                obj = json.loads(line)
            except ValueError:
                self.seen.append(line.strip())
                continue
            self.seen.append(obj)
            if obj.get("step") == "error":
                raise AssertionError("%s failed at %r: %s" % (self.name, name, obj.get("message")))
            if obj.get("step") == name:
                return obj

    def _seen(self):
        """The last lines, long values cut (a 60 KB body in base64 says nothing)."""
        return repr([{k: (v if not isinstance(v, str) or len(v) < 200 else "%d chars" % len(v))
                      for k, v in o.items()} if isinstance(o, dict) else o for o in self.seen[-10:]])

    def stderr(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait(10)
        self.err.close()


def test_demo_off_is_404(notifyd):
    for path in ("/", "/index.html"):
        st, hdr, body = harness.http_get(notifyd.port, path)
        assert st == 404, (path, st, body[:200])
        assert json.loads(body) == {"error": "not found"}, body


def test_demo_on_serves_the_page(start_notifyd):
    d = start_notifyd(demo="on")
    st, hdr, body = harness.http_get(d.port, "/")
    assert st == 200, (st, body[:200])
    assert hdr.get("content-type", "").startswith("text/html"), hdr
    text = body.decode("utf-8")
    for i in IDS:
        assert ('id="%s"' % i) in text, "no element with id %s in the demo page" % i
    st, _, _ = harness.http_get(d.port, "/index.html")
    assert st == 200
    st, _, _ = harness.http_get(d.port, "/other.html")
    assert st == 404


@pytest.mark.deadline(300)
def test_demo_page_in_headless_chromium(browser, start_notifyd, publisher, workdir, note):
    node, node_path = browser
    d = start_notifyd(demo="on", push_keys="demo-key-1234567890")
    push_text = "hello from the browser %d" % os.getpid()
    amqp_text = "hello through RabbitMQ \u00e9 %d" % os.getpid()
    shot = os.path.join(workdir, "demo-page.png")
    profile = tempfile.mkdtemp(prefix="chromium-profile.", dir=workdir)
    run = NodeRun(node, node_path, ["http://127.0.0.1:%d/" % d.port, "demo-key-1234567890", push_text,
                                    amqp_text, shot, profile], workdir)
    try:
        loaded = run.step("loaded", 90)
        assert loaded["status"] == 200, loaded
        missing = [i for i in IDS if i not in loaded["ids"]]
        assert not missing, "demo page lacks ids %r" % missing
        run.step("connected", 30)
        pushed = run.step("pushed", 30)
        assert pushed["sendstatus"].startswith("202"), pushed
        assert any(push_text in li for li in pushed["log"]), pushed
        publisher.publish("user.3", json.dumps({"title": "amqp", "message": amqp_text}, ensure_ascii=False))
        got = run.step("amqp", 30)
        assert any(amqp_text in li for li in got["log"]), got
        assert got["status"] == "connected", got
        assert not got.get("consoleErrors"), "console errors on the demo page: %r" % got["consoleErrors"]
        bad = [r for r in got.get("badResponses", []) if not r.endswith("/favicon.ico")]
        assert not bad, "failed requests from the demo page: %r" % bad
        run.step("done", 30)
        assert os.path.getsize(shot) > 1000, "screenshot not written"
        assert run.proc.wait(30) == 0
        note("screenshot: %s (kept with TEST_KEEP_TMP=1)" % shot)
    finally:
        run.stop()
        shutil.rmtree(profile, ignore_errors=True)
    # the browser's connection was notifyd's own origin, and it is gone now
    harness.wait_until(lambda: d.health()[1].get("connections") == 0, 10, 0.1, "the browser's connection to close")
    log = d.log_text()
    assert "demo-key-1234567890" not in log, "the push key was logged"
