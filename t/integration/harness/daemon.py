"""The notifyd process: config file, start, readiness wait, signals, stop,
log (Notifyd); with extra environment or TLS on its listener (NotifydX);
a fake systemd notification socket (NotifySocket)."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

from .http import http_get, https_request
from .util import HarnessError, free_port, parse_duration


class Notifyd:
    """One notifyd process with its own config file and log file."""

    # Defaults chosen for tests; any config key can be overridden.
    BASE = {
        "listen_address": "127.0.0.1",
        "workers": "2",
        "log_level": "info",
        "drain_timeout": "5s",
        "auth": "none",
    }

    def __init__(self, binary, workdir, amqp_url, queue_name, name="notifyd", **config):
        self.binary = binary
        self.workdir = workdir
        self.name = name
        os.makedirs(workdir, exist_ok=True)
        self.config = dict(self.BASE)
        lvl = os.environ.get("TEST_NOTIFYD_LOG_LEVEL")
        if lvl:
            self.config["log_level"] = lvl
        self.config["amqp_url"] = amqp_url
        self.config["amqp_queue"] = queue_name
        self.config.update({k: v for k, v in config.items() if v is not None})
        if "listen_port" not in self.config:
            self.config["listen_port"] = str(free_port())
        self.port = int(self.config["listen_port"])
        self.queue = queue_name
        self.conf_path = os.path.join(workdir, name + ".conf")
        self.log_path = os.path.join(workdir, name + ".log")
        self.proc = None
        self.exit_code = None
        self.stopped_on_purpose = False
        self.starts = 0

    # config ------------------------------------------------------------
    @staticmethod
    def _fmt(value):
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        value = str(value)
        if value == "" or re.search(r'[\s#"]', value):
            return '"%s"' % value
        return value

    def write_config(self):
        with open(self.conf_path, "w") as f:
            f.write("# written by t/integration/harness/daemon.py for %s\n" % self.name)
            for k, v in self.config.items():
                f.write("%s = %s\n" % (k, self._fmt(v)))

    def env(self):
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": "UTC"}
        # Let sanitizer builds be configured from outside.
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        return env

    # process -------------------------------------------------------------
    def start(self, wait=True, timeout=15):
        if self.proc is not None and self.proc.poll() is None:
            raise HarnessError("%s already running" % self.name)
        self.write_config()
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(("==== start #%d: %s -c %s\n" % (self.starts, self.binary, self.conf_path)).encode())
        log.flush()
        self.exit_code = None
        self.stopped_on_purpose = False
        self.proc = subprocess.Popen([self.binary, "-c", self.conf_path], env=self.env(),
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     cwd=self.workdir, close_fds=True, start_new_session=True)
        log.close()
        pidfile = os.environ.get("TEST_PIDFILE")
        if pidfile:  # lets t/integration.t kill leftovers if pytest itself dies
            with open(pidfile, "a") as f:
                f.write("%d\n" % self.proc.pid)
        if wait:
            self.wait_ready(timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def health(self, timeout=2):
        """(status, parsed JSON or raw bytes)."""
        st, hdr, body = http_get(self.port, "/health", timeout=timeout)
        try:
            return st, json.loads(body)
        except ValueError:
            return st, body

    def wait_ready(self, timeout=15):
        """Wait until GET /health answers 200 with broker.state "consuming"."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.running():
                raise HarnessError("%s exited with status %s during start-up\n%s"
                                   % (self.name, self.proc.returncode, self.log_tail(40)))
            try:
                st, body = self.health(timeout=1)
                last = "%d %r" % (st, body)
                if st == 200:
                    state = None
                    if isinstance(body, dict) and isinstance(body.get("broker"), dict):
                        state = body["broker"].get("state")
                    if state in (None, "consuming"):
                        return self
            except (OSError, http.client.HTTPException) as e:
                last = repr(e)
            time.sleep(0.1)
        raise HarnessError("%s not ready after %.0fs (last /health: %s)\n%s"
                           % (self.name, timeout, last, self.log_tail(40)))

    def signal(self, sig):
        if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL, signal.SIGQUIT):
            self.stopped_on_purpose = True
        if self.running():
            os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout):
        """Exit status (negative: killed by that signal), or None on timeout."""
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
            return self.exit_code
        except subprocess.TimeoutExpired:
            return None

    def signal_and_wait(self, sig, timeout):
        """Send sig and wait up to timeout seconds for the exit.  Returns (exit
        status or None if still running, seconds from the signal)."""
        t0 = time.monotonic()
        self.signal(sig)
        code = self.wait_exit(timeout)
        return code, time.monotonic() - t0

    def stop(self, timeout=None):
        """SIGTERM, then SIGKILL after a bound.  Returns (exit status, seconds
        it took, whether SIGKILL was needed)."""
        if self.proc is None:
            return None, 0.0, False
        self.stopped_on_purpose = True
        if timeout is None:
            timeout = parse_duration(self.config.get("drain_timeout", "10s")) + 5
        t0 = time.monotonic()
        if self.proc.poll() is not None:
            self.exit_code = self.proc.returncode
            return self.exit_code, 0.0, False
        os.kill(self.proc.pid, signal.SIGTERM)
        code = self.wait_exit(timeout)
        killed = False
        if code is None:
            killed = True
            os.kill(self.proc.pid, signal.SIGKILL)
            code = self.wait_exit(10)
        return code, time.monotonic() - t0, killed

    def kill9(self):
        self.stopped_on_purpose = True
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.wait_exit(10)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError as e:
            return "(no log: %s)" % e

    def log_tail(self, n=60):
        lines = self.log_text().splitlines()
        return "\n".join(lines[-n:])

    def ws_url(self, user, path="/ws"):
        return "ws://127.0.0.1:%d%s?userId=%s" % (self.port, path, urllib.parse.quote(str(user), safe=""))


class NotifydX(Notifyd):
    """A Notifyd whose environment gets extra variables (NOTIFY_SOCKET,
    WATCHDOG_USEC...), and whose /health is asked over TLS when ssl_context
    is set (tls_cert_file on listen_port, tls_port = 0)."""

    def __init__(self, *a, extra_env=None, ssl_context=None, **kw):
        super().__init__(*a, **kw)
        self.extra_env = dict(extra_env or {})
        self.ssl_context = ssl_context

    def env(self):
        env = super().env()
        env.update(self.extra_env)
        return env

    def health(self, timeout=2):
        if self.ssl_context is None:
            return super().health(timeout)
        st, hdr, body = https_request(self.port, "GET", "/health", self.ssl_context, timeout=timeout)
        try:
            return st, json.loads(body)
        except ValueError:
            return st, body

    def rewrite_config(self, **changes):
        """Change keys (None removes one) and rewrite the config file."""
        for k, v in changes.items():
            if v is None:
                self.config.pop(k, None)
            else:
                self.config[k] = v
        self.write_config()


class NotifySocket:
    """A fake systemd notification socket (AF_UNIX datagrams) in a temp dir."""

    def __init__(self, directory=None):
        self.dir = tempfile.mkdtemp(prefix="sdn.", dir=directory)
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.received = []  # (time.monotonic(), text)

    def recv(self, timeout):
        """Next datagram as text, or None after timeout."""
        self.sock.settimeout(max(0.001, timeout))
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        m = data.decode("utf-8", "replace")
        self.received.append((time.monotonic(), m))
        return m

    def wait_for(self, text, timeout):
        """Read datagrams until one has a line equal to text; returns the
        time it came, or None."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            m = self.recv(left)
            if m is not None and text in m.split("\n"):
                return self.received[-1][0]

    def collect(self, duration):
        end = time.monotonic() + duration
        out = []
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return out
            m = self.recv(left)
            if m is not None:
                out.append((self.received[-1][0], m))

    def close(self):
        try:
            self.sock.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def log_lines_matching(daemon, *needles):
    """Lines of a daemon's log that contain any of needles (case-insensitive)."""
    low = [n.lower() for n in needles]
    return [l for l in daemon.log_text().splitlines() if any(n in l.lower() for n in low)]
