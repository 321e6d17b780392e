"""pytest fixtures for notifyd's integration tests.

Inputs (environment):
  TEST_NOTIFYD_BIN   the notifyd binary (required)
  TEST_BROKER_ENV    env file written by t/lib/broker.sh (a private node), or
  TEST_AMQP_URL      an existing broker; with TEST_RABBITMQ_NODENAME (and
                     optionally TEST_RABBITMQCTL, TEST_RABBITMQ_HOME) each test
                     still gets its own vhost, otherwise tests share the URL's
                     vhost and use unique queue names.
                     With neither, a private broker is started for the session
                     with t/lib/broker.sh (handy when running pytest by hand).
  TEST_WORKDIR       where config and log files go (default: a temp dir)
  TEST_TAP_FD        if set, write TAP lines to that file descriptor
  TEST_TAP_LOG       if set, also append them to that file
  TEST_DEADLINE      default per-test time limit in seconds (90)
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

import pytest

# Nothing is written into the source tree (make distcheck has it read-only).
sys.dont_write_bytecode = True

import harness  # noqa: E402

BROKER_SH = harness.BROKER_SH


# --------------------------------------------------------------------------
# session


class Session:
    def __init__(self):
        self.binary = None
        self.broker = None
        self.pool = None
        self.workdir = None
        self.own_workdir = False
        self.own_broker_dir = None
        self.counter = 0
        self.lock = threading.Lock()

    def next_id(self):
        with self.lock:
            self.counter += 1
            return self.counter


SESSION = Session()


def _start_private_broker():
    d = tempfile.mkdtemp(prefix="notifyd-it-broker.")
    p = subprocess.run(["bash", BROKER_SH, "start", d], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        shutil.rmtree(d, ignore_errors=True)
        pytest.exit("cannot start a private RabbitMQ node: %s" % p.stderr, returncode=3)
    SESSION.own_broker_dir = d
    return os.path.join(d, "env")


@pytest.fixture(scope="session")
def session():
    s = SESSION
    binary = os.environ.get("TEST_NOTIFYD_BIN")
    if not binary:
        pytest.exit("TEST_NOTIFYD_BIN is not set (path to the notifyd binary)", returncode=3)
    binary = os.path.abspath(binary)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.exit("notifyd binary not found or not executable: %s" % binary, returncode=3)
    s.binary = binary

    if os.environ.get("TEST_WORKDIR"):
        s.workdir = os.environ["TEST_WORKDIR"]
        os.makedirs(s.workdir, exist_ok=True)
    else:
        s.workdir = tempfile.mkdtemp(prefix="notifyd-it.")
        s.own_workdir = True

    env_file = os.environ.get("TEST_BROKER_ENV")
    url = os.environ.get("TEST_AMQP_URL")
    if env_file:
        s.broker = harness.Broker.from_env_file(env_file)
    elif url:
        s.broker = harness.Broker.from_url(url, node=os.environ.get("TEST_RABBITMQ_NODENAME"),
                                           ctl=os.environ.get("TEST_RABBITMQCTL"),
                                           ctl_home=os.environ.get("TEST_RABBITMQ_HOME"))
    else:
        s.broker = harness.Broker.from_env_file(_start_private_broker())

    if s.broker.has_ctl:
        # A private node is discarded at the end of the run, vhosts and all:
        # deleting each one as soon as its test ends only costs CPU then.
        private = bool(env_file or s.own_broker_dir) and not os.environ.get("TEST_DELETE_VHOSTS")
        s.pool = harness.VhostPool(s.broker, "notifyd-it-%d" % os.getpid(), s.workdir,
                                   delete=not private)
    yield s
    if s.pool:
        s.pool.close()
    if s.own_broker_dir:
        subprocess.run(["bash", BROKER_SH, "stop", s.own_broker_dir], stdin=subprocess.DEVNULL,
                       timeout=120)
        shutil.rmtree(s.own_broker_dir, ignore_errors=True)
    if s.own_workdir and not os.environ.get("TEST_KEEP_TMP"):
        shutil.rmtree(s.workdir, ignore_errors=True)


# --------------------------------------------------------------------------
# per test


@pytest.fixture
def test_id(request, session):
    return "%03d-%s" % (session.next_id(), harness.sanitize(request.node.name, 60))


@pytest.fixture
def workdir(session, test_id):
    d = os.path.join(session.workdir, test_id)
    os.makedirs(d, exist_ok=True)
    return d


@pytest.fixture
def vhost(session):
    """A vhost private to this test (created on the private node and deleted
    after), or the shared vhost of TEST_AMQP_URL when rabbitmqctl is not
    available."""
    if session.pool:
        name = session.pool.take()
        v = harness.Vhost(session.broker, name)
        yield v
        session.pool.release(name)
    else:
        yield harness.Vhost(session.broker, session.broker.base_vhost, shared=True)


@pytest.fixture
def queue_name(test_id):
    return "notifyd.it.%d.%s" % (os.getpid(), test_id)


@pytest.fixture
def start_notifyd(request, session, vhost, workdir, queue_name):
    """Factory: start_notifyd(**config) -> a running, consuming Notifyd on this
    test's vhost and queue.  Pass wait=False to skip the readiness wait, or
    name=/queue_name=/amqp_url= to vary.  All are stopped after the test; a
    daemon that died on its own (not stopped or killed by the test) fails it."""
    started = []
    request.node._notifyd_instances = started

    def factory(name=None, wait=True, ready_timeout=15, queue_name=queue_name, amqp_url=None,
                **config):
        return _launch(started, harness.Notifyd, session.binary, workdir, amqp_url or vhost.url,
                       queue_name, name, wait, ready_timeout, **config)

    yield factory

    problems = []
    for d in started:
        if d.proc is None:
            continue
        died = d.proc.poll() is not None and not d.stopped_on_purpose
        code, took, killed = d.stop()
        if died:
            problems.append("%s died during the test (exit status %s)" % (d.name, code))
        elif code is not None and code < 0 and code != -signal.SIGKILL:
            problems.append("%s crashed on SIGTERM (signal %d)" % (d.name, -code))
        elif code is not None and code > 0:
            # A clean stop exits 0; a sanitizer report (leak, UB) does not.
            san = [l for l in d.log_text().splitlines()
                   if "Sanitizer" in l or "runtime error" in l or "SUMMARY" in l][:20]
            problems.append("%s exited with status %d after SIGTERM%s" % (
                d.name, code, (":\n" + "\n".join(san)) if san else ""))
        else:
            # A daemon killed on purpose (kill -9 tests) has no exit status
            # to say it: a race or error report in its log still fails.
            san = [l for l in d.log_text().splitlines()
                   if "WARNING: ThreadSanitizer" in l or "ERROR: AddressSanitizer" in l
                   or "runtime error:" in l][:20]
            if san:
                problems.append("%s reported:\n%s" % (d.name, "\n".join(san)))
            if killed:
                sys.stderr.write("warning: %s did not exit within %.0fs of SIGTERM; killed\n"
                                 % (d.name, took))
    if vhost.shared:
        for q in {d.queue for d in started}:
            try:
                vhost.delete_queue(q)
            except Exception:  # noqa: BLE001
                pass
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


def _launch(started, cls, binary, workdir, amqp_url, queue_name, name, wait, ready_timeout,
            **kw):
    """Start a cls (harness.Notifyd or NotifydX) for start_notifyd(_x), named
    notifyd, notifyd2, ... unless name is given; listed in started."""
    name = name or ("notifyd" if not started else "notifyd%d" % (len(started) + 1))
    d = cls(binary, workdir, amqp_url, queue_name, name=name, **kw)
    started.append(d)
    d.start(wait=wait, timeout=ready_timeout)
    return d


@pytest.fixture
def notifyd(start_notifyd):
    """A notifyd with the test defaults."""
    return start_notifyd()


@pytest.fixture
def note(request):
    """note(text): a remark shown in the TAP output even when the test passes."""
    def add(text):
        request.node.user_properties.append(("note", text))
        sys.stderr.write("note: %s: %s\n" % (request.node.nodeid, text))
    return add


@pytest.fixture
def publisher(vhost):
    """A pika publisher (with confirms) on this test's vhost."""
    p = harness.Publisher(vhost)
    yield p
    p.close()


@pytest.fixture
def ws_client(url_client):
    """Factory: ws_client(daemon, user, **websockets.connect options)."""
    def factory(daemon, user, **kw):
        return url_client(daemon.ws_url(user), **kw)

    return factory


@pytest.fixture
def raw_client():
    """Factory: raw_client(daemon, user=None, rcvbuf=None).  With a user the
    handshake is done (101 asserted); without, the socket is just connected."""
    clients = []

    def factory(daemon, user=None, rcvbuf=None, timeout=5):
        if user is None:
            c = harness.RawWS(daemon.port, rcvbuf=rcvbuf, timeout=timeout)
        else:
            c = harness.raw_ws_connect(daemon.port, user, rcvbuf=rcvbuf, timeout=timeout)
        clients.append(c)
        return c

    yield factory
    for c in clients:
        c.close()


# --------------------------------------------------------------------------
# per-test time limit (pytest-timeout is not a dependency)


class TestDeadline(BaseException):
    pass


def pytest_configure(config):
    config.addinivalue_line("markers", "deadline(seconds): time limit for this test "
                            "(setup, call and teardown)")
    config.addinivalue_line("markers", "needs_ctl: needs rabbitmqctl access to the broker")
    # SIGTERM (from t/integration.t's timeout or cleanup): behave like ^C so
    # that fixtures still stop the daemons they started.
    def on_term(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_term)
    tap = TapReporter.from_env()
    if tap:
        config.pluginmanager.register(tap, "notifyd-tap")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    m = item.get_closest_marker("deadline")
    limit = int(m.args[0]) if m else int(os.environ.get("TEST_DEADLINE", "90"))

    def on_alarm(signum, frame):
        raise TestDeadline("test exceeded its %ds time limit" % limit)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def pytest_runtest_setup(item):
    if item.get_closest_marker("needs_ctl"):
        b = SESSION.broker
        if b is not None and not b.has_ctl:
            pytest.skip("needs rabbitmqctl access to the broker")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for d in getattr(item, "_notifyd_instances", []):
            rep.sections.append(("%s log (tail of %s)" % (d.name, d.log_path), d.log_tail(80)))


# --------------------------------------------------------------------------
# TAP output


class TapReporter:
    """One TAP line per test (ok / not ok / ok # SKIP), written as each test
    finishes; failure details follow as '# ' comment lines.  The plan is
    written by t/integration.t, which counts the lines."""

    def __init__(self, fd, logpath):
        self.fd = fd
        self.logpath = logpath
        self.n = 0
        self.state = {}

    @classmethod
    def from_env(cls):
        fd = os.environ.get("TEST_TAP_FD")
        if not fd:
            return None
        return cls(int(fd), os.environ.get("TEST_TAP_LOG"))

    def emit(self, text):
        data = (text.rstrip("\n") + "\n").encode("utf-8", "replace")
        try:
            os.write(self.fd, data)
        except OSError:
            pass
        if self.logpath:
            with open(self.logpath, "ab") as f:
                f.write(data)

    def comment(self, text, limit=150):
        lines = text.splitlines()
        if len(lines) > limit:
            lines = lines[:limit // 3] + ["... (%d lines cut) ..." % (len(lines) - limit)] + \
                lines[-(limit - limit // 3):]
        for line in lines:
            self.emit("# " + line)

    def line(self, ok, desc, directive=""):
        self.n += 1
        desc = desc.replace("#", "\\#")
        self.emit("%s %d - %s%s" % ("ok" if ok else "not ok", self.n, desc, directive))

    def pytest_runtest_logreport(self, report):
        st = self.state.setdefault(report.nodeid, {"failed": [], "skipped": None})
        if report.failed:
            st["failed"].append(report)
        elif report.skipped:
            reason = ""
            if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
                reason = str(report.longrepr[2])
            st["skipped"] = reason or "skipped"
        if report.when == "teardown":
            del self.state[report.nodeid]
            if st["failed"]:
                self.line(False, report.nodeid)
                for r in st["failed"]:
                    self.comment("--- %s failed in %s (%.1fs)" % (report.nodeid, r.when, r.duration))
                    self.comment(r.longreprtext)
                    for title, content in r.sections:
                        if "log" in title or "stderr" in title or "stdout" in title:
                            self.comment("--- " + title)
                            self.comment(content, 90)
            elif st["skipped"] is not None:
                self.line(True, report.nodeid, " # SKIP " + st["skipped"].replace("\n", " "))
            else:
                self.line(True, report.nodeid)
            for k, v in report.user_properties:
                if k == "note":
                    self.comment("%s: %s" % (report.nodeid, v))

    def pytest_collectreport(self, report):
        if report.failed:
            self.line(False, "collect " + (report.nodeid or "tests"))
            self.comment(report.longreprtext)


# --------------------------------------------------------------------------
# fixtures added for test_push, test_metrics, test_lifecycle, test_auth_jwt,
# test_origin_limits, test_tls and test_demo_page


@pytest.fixture
def start_notifyd_x(request, session, vhost, workdir, queue_name, start_notifyd):
    """Factory like start_notifyd, for a harness.NotifydX: extra_env={...}
    adds environment variables, ssl_context= makes the readiness wait ask
    /health over TLS, binary= runs another executable (a wrapper script).  Stopped (and checked) by start_notifyd's teardown."""
    started = request.node._notifyd_instances

    def factory(name=None, wait=True, ready_timeout=15, queue_name=queue_name, amqp_url=None,
                extra_env=None, ssl_context=None, binary=None, **config):
        return _launch(started, harness.NotifydX, binary or session.binary, workdir,
                       amqp_url or vhost.url, queue_name, name, wait, ready_timeout,
                       extra_env=extra_env, ssl_context=ssl_context, **config)

    return factory


@pytest.fixture
def url_client():
    """Factory: url_client(url, **websockets.connect options) -> harness.WSClient."""
    clients = []

    def factory(url, **kw):
        c = harness.WSClient(url, **kw)
        clients.append(c)
        return c

    yield factory
    for c in clients:
        c.close(timeout=2)


@pytest.fixture(scope="session")
def _spare_broker(session):
    """A second RabbitMQ node for the whole run, started on first use, with
    both a plain AMQP port and a TLS listener (attributes tls_port, ca:
    the harness.CA that signed its certificate for localhost/127.0.0.1).
    Stopped at the end of the run.  Use it through the spare_broker fixture."""
    d = tempfile.mkdtemp(prefix="spare-broker-pki.", dir=session.workdir)
    ca = harness.CA(d, "notifyd spare broker CA")
    cert, key, _ = ca.issue("broker", cn="localhost")
    tls_port = harness.free_port()
    b = harness.OwnBroker(rabbitmq_conf=harness.rabbit_tls_conf(tls_port, ca.cert, cert, key))
    b.tls_port = tls_port
    b.ca = ca
    try:
        yield b
    finally:
        try:
            b.close()
        except Exception as e:  # noqa: BLE001
            sys.stderr.write("warning: cannot stop the spare broker in %s: %s\n" % (b.dir, e))


@pytest.fixture
def spare_broker(_spare_broker):
    """The run's second RabbitMQ node (see _spare_broker), running.  A test
    may stop it and start it again (same ports: b.stop(), b.start()); the
    next test that asks for it gets it running again.  Tests share it: use
    queues of your own (the queue_name fixture) on its vhost "/"."""
    b = _spare_broker
    if not b.running:
        b.start()
    return b
