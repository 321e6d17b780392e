"""Helpers for notifyd's integration tests.

Everything here talks to real things: the notifyd binary, a RabbitMQ node
(through pika and rabbitmqctl) and WebSocket clients (python-websockets, and a
hand-written raw client for protocol abuse).  Every wait is bounded.

Nothing here exports NOTIFYD_* variables: notifyd refuses to start on unknown
ones, so it is started with a minimal explicit environment and a config file.
"""

import asyncio
import base64
import collections
import hashlib
import http.client
import json
import logging
import os
import queue
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.parse

import pika
import pika.exceptions
import websockets
import websockets.exceptions

logging.getLogger("pika").setLevel(logging.CRITICAL)

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HarnessError(Exception):
    pass


def free_port():
    """A loopback TCP port that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it returns a true value (returned) or timeout (raises)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - reported below
            last_exc = e
        if time.monotonic() >= deadline:
            msg = "timed out after %.1fs waiting for %s" % (timeout, what)
            if last_exc is not None:
                msg += " (last error: %r)" % (last_exc,)
            raise TimeoutError(msg)
        time.sleep(interval)


def sanitize(name, maxlen=80):
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")
    return s[:maxlen] or "x"


# --------------------------------------------------------------------------
# Broker


class Broker:
    """A RabbitMQ node: AMQP address plus (optionally) rabbitmqctl access."""

    def __init__(self, host, port, user="guest", password="guest", base_vhost="/",
                 node=None, ctl=None, ctl_home=None):
        self.host = host
        self.port = int(port)
        self.user = user
        self.password = password
        self.base_vhost = base_vhost
        self.node = node
        self.ctl_path = ctl or "/usr/lib/rabbitmq/bin/rabbitmqctl"
        self.ctl_home = ctl_home
        self._deleters = []

    @classmethod
    def from_env_file(cls, path):
        kv = {}
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    k, v = line.split("=", 1)
                    kv[k] = v
        return cls(kv.get("AMQP_HOST", "127.0.0.1"), kv["AMQP_PORT"],
                   node=kv.get("RABBITMQ_NODENAME"), ctl=kv.get("RABBITMQCTL"),
                   ctl_home=kv.get("BROKER_HOME"))

    @classmethod
    def from_url(cls, url, node=None, ctl=None, ctl_home=None):
        u = urllib.parse.urlsplit(url)
        vhost = urllib.parse.unquote(u.path[1:]) if len(u.path) > 1 else "/"
        return cls(u.hostname or "127.0.0.1", u.port or 5672,
                   urllib.parse.unquote(u.username or "guest"),
                   urllib.parse.unquote(u.password or "guest"), vhost, node, ctl, ctl_home)

    @property
    def has_ctl(self):
        return bool(self.node) and os.access(self.ctl_path, os.X_OK)

    def url(self, vhost=None):
        v = self.base_vhost if vhost is None else vhost
        return "amqp://%s:%s@%s:%d/%s" % (
            urllib.parse.quote(self.user, safe=""), urllib.parse.quote(self.password, safe=""),
            self.host, self.port, urllib.parse.quote(v, safe=""))

    def ctl(self, *args, timeout=30, check=True):
        if not self.has_ctl:
            raise HarnessError("rabbitmqctl access to the broker is not configured")
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        if self.ctl_home:
            env["HOME"] = self.ctl_home
        elif "HOME" in os.environ:
            env["HOME"] = os.environ["HOME"]
        cmd = [self.ctl_path, "-n", self.node, "-q"] + list(args)
        p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout, text=True, errors="replace")
        if check and p.returncode != 0:
            raise HarnessError("%s failed (%d): %s %s" % (" ".join(cmd), p.returncode,
                                                        p.stdout.strip(), p.stderr.strip()))
        return p

    def add_vhost(self, name):
        self.ctl("add_vhost", name)
        self.ctl("set_permissions", "-p", name, self.user, ".*", ".*", ".*")

    def delete_vhost(self, name):
        self.ctl("delete_vhost", name, check=False)

    def list_queues(self, vhost):
        """{queue name: (ready + unacked, unacked, consumers)} via rabbitmqctl."""
        p = self.ctl("list_queues", "-p", vhost, "--no-table-headers",
                     "name", "messages", "messages_unacknowledged", "consumers")
        out = {}
        for line in p.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) == 4 and parts[1].isdigit():
                out[parts[0]] = (int(parts[1]), int(parts[2]), int(parts[3]))
        return out


class VhostPool:
    """Hands out fresh vhosts, created ahead in batches by a background thread
    (rabbitmqctl costs about 0.5 s of CPU a call, so one import_definitions
    call creates a whole batch, guest with full permissions on each; plain
    add_vhost + set_permissions is the fallback).  Used vhosts are deleted
    (delete_vhost) right after their test, in the background, unless
    delete=False: a private node that is thrown away at the end of the run
    does not need it."""

    def __init__(self, broker, prefix, workdir, batch=8, delete=True):
        self.broker = broker
        self.prefix = prefix
        self.workdir = workdir
        self.batch = batch
        self.delete = delete
        self._n = 0
        self._ready = queue.Queue()
        self._want = threading.Semaphore(0)
        self._stop = False
        self._use_import = True
        self._creator = threading.Thread(target=self._create_loop, name="vhost-creator", daemon=True)
        self._deleter_q = queue.Queue()
        self._deleter = threading.Thread(target=self._delete_loop, name="vhost-deleter", daemon=True)
        self._pending = True
        self._creator.start()
        self._deleter.start()
        self._want.release()

    def _create_batch(self):
        names = []
        for _ in range(self.batch):
            self._n += 1
            names.append("%s-%d" % (self.prefix, self._n))
        if self._use_import:
            defs = {"vhosts": [{"name": n} for n in names],
                    "permissions": [{"user": self.broker.user, "vhost": n, "configure": ".*",
                                     "write": ".*", "read": ".*"} for n in names]}
            path = os.path.join(self.workdir, "vhosts-%d.json" % self._n)
            with open(path, "w") as f:
                json.dump(defs, f)
            try:
                self.broker.ctl("import_definitions", path, timeout=60)
                return names
            except Exception:  # noqa: BLE001 - fall back to one call per vhost
                self._use_import = False
        for n in names:
            self.broker.add_vhost(n)
        return names

    def _create_loop(self):
        while not self._stop:
            self._want.acquire()
            if self._stop:
                return
            try:
                for n in self._create_batch():
                    self._ready.put((n, None))
            except Exception as e:  # noqa: BLE001 - handed to the taker
                self._ready.put((None, e))
            self._pending = False

    def _delete_loop(self):
        while True:
            name = self._deleter_q.get()
            if name is None:
                return
            try:
                self.broker.delete_vhost(name)
            except Exception:  # noqa: BLE001
                pass

    def take(self, timeout=60):
        if self._ready.qsize() <= self.batch // 2 and not self._pending:
            self._pending = True
            self._want.release()
        name, err = self._ready.get(timeout=timeout)
        if err is not None:
            raise HarnessError("cannot create vhosts: %s" % err)
        return name

    def release(self, name):
        if self.delete:
            self._deleter_q.put(name)

    def close(self, timeout=60):
        self._stop = True
        self._want.release()
        self._creator.join(timeout)
        leftovers = []
        while True:
            try:
                name, err = self._ready.get_nowait()
            except queue.Empty:
                break
            if name:
                leftovers.append(name)
        if self.delete:
            for n in leftovers:
                self._deleter_q.put(n)
        self._deleter_q.put(None)
        self._deleter.join(timeout)


class Vhost:
    def __init__(self, broker, name, shared=False):
        self.broker = broker
        self.name = name
        self.shared = shared  # True: not private to this test (no rabbitmqctl)

    @property
    def url(self):
        return self.broker.url(self.name)

    def connection(self):
        params = pika.URLParameters(self.url)
        params.socket_timeout = 10
        params.blocked_connection_timeout = 30
        params.heartbeat = 60
        return pika.BlockingConnection(params)

    def queue_counts(self, queue_name):
        """(messages ready+unacked, unacked, consumers).  With rabbitmqctl this
        is exact; without it, a passive declare only sees ready messages."""
        if self.broker.has_ctl:
            q = self.broker.list_queues(self.name)
            if queue_name not in q:
                raise HarnessError("queue %r not found in vhost %r (have %r)" %
                                   (queue_name, self.name, sorted(q)))
            return q[queue_name]
        conn = self.connection()
        try:
            ch = conn.channel()
            ok = ch.queue_declare(queue=queue_name, passive=True)
            return (ok.method.message_count, None, ok.method.consumer_count)
        finally:
            conn.close()

    def passive_declare(self, queue_name):
        conn = self.connection()
        try:
            ch = conn.channel()
            ok = ch.queue_declare(queue=queue_name, passive=True)
            return ok.method.message_count, ok.method.consumer_count
        finally:
            conn.close()

    def wait_queue_empty(self, queue_name, timeout=10):
        """Wait until the queue holds no message, ready or unacknowledged."""
        last = [None]

        def empty():
            # a passive declare is cheap but sees only ready messages;
            # rabbitmqctl (about 0.5 s a call) also sees unacknowledged ones
            ready, consumers = self.passive_declare(queue_name)
            last[0] = (ready, None, consumers)
            if ready:
                return False
            c = self.queue_counts(queue_name)
            last[0] = c
            return c[0] == 0 and (c[1] in (0, None))

        try:
            wait_until(empty, timeout, 0.2, "queue %s to be empty" % queue_name)
        except TimeoutError:
            raise AssertionError("queue %s not empty after %.0fs: (messages, unacked, consumers)=%r"
                                 % (queue_name, timeout, last[0]))

    def wait_no_consumer(self, queue_name, timeout=10):
        """Wait until the queue has no consumer (so what a dead or stopped
        consumer held unacknowledged is back in the queue)."""
        def none():
            if self.broker.has_ctl:
                c = self.queue_counts(queue_name)
                return c[2] == 0 and c[1] == 0
            return self.passive_declare(queue_name)[1] == 0
        wait_until(none, timeout, 0.1, "queue %s to have no consumer" % queue_name)

    def drain(self, queue_name, limit=1000000, timeout=60):
        """Take every message left in the queue (basic_get, auto-ack).
        Returns a list of (routing_key, body bytes, redelivered)."""
        out = []
        conn = self.connection()
        deadline = time.monotonic() + timeout
        try:
            ch = conn.channel()
            while len(out) < limit and time.monotonic() < deadline:
                method, props, body = ch.basic_get(queue=queue_name, auto_ack=True)
                if method is None:
                    break
                out.append((method.routing_key, body, method.redelivered))
        finally:
            conn.close()
        return out

    def delete_queue(self, queue_name):
        conn = self.connection()
        try:
            conn.channel().queue_delete(queue=queue_name)
        except pika.exceptions.ChannelClosedByBroker:
            pass
        finally:
            if conn.is_open:
                conn.close()


class Publisher:
    """pika BlockingConnection with publisher confirms: publish() returns once
    the broker has the message.  Not thread-safe: one per thread."""

    def __init__(self, vhost, exchange="notifications"):
        self.vhost = vhost
        self.exchange = exchange
        self.conn = vhost.connection()
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()
        self.count = 0

    def publish(self, routing_key, body, exchange=None, mandatory=True, persistent=True):
        """Publish body (bytes or str; dict/list are JSON-encoded).  With
        mandatory (default) an unroutable message raises pika's UnroutableError,
        so a test cannot silently publish into the void."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":"))
        if isinstance(body, str):
            body = body.encode("utf-8")
        props = pika.BasicProperties(delivery_mode=2 if persistent else 1,
                                     content_type="application/json")
        self.ch.basic_publish(exchange=self.exchange if exchange is None else exchange,
                              routing_key=routing_key, body=body, properties=props,
                              mandatory=mandatory)
        self.count += 1
        return body

    def publish_to_queue(self, queue_name, body):
        """Straight to a queue through the default exchange."""
        return self.publish(queue_name, body, exchange="")

    def close(self):
        try:
            if self.conn.is_open:
                self.conn.close()
        except Exception:  # noqa: BLE001
            pass


# --------------------------------------------------------------------------
# HTTP


def http_request(port, method, path, headers=None, body=None, timeout=5):
    """(status, {lower-case header: value}, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def http_get(port, path, timeout=5):
    return http_request(port, "GET", path, timeout=timeout)


# --------------------------------------------------------------------------
# notifyd


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
            f.write("# written by t/integration/harness.py for %s\n" % self.name)
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


def parse_duration(s):
    s = str(s).strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", s)
    if not m:
        raise ValueError("bad duration %r" % s)
    v = float(m.group(1))
    return v * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


# --------------------------------------------------------------------------
# python-websockets client, run on one shared event loop thread


class _Loop:
    _inst = None
    _lock = threading.Lock()

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ws-loop", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls):
        with cls._lock:
            if cls._inst is None:
                cls._inst = cls()
            return cls._inst

    def run(self, coro, timeout):
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise


class ConnectionClosed(Exception):
    def __init__(self, code, reason):
        super().__init__("connection closed (code %s, reason %r)" % (code, reason))
        self.code = code
        self.reason = reason


_CLOSED = object()


class WSClient:
    """A real WebSocket client (python-websockets).  Messages received are
    queued by a reader task; recv() takes them with a timeout."""

    def __init__(self, url, connect_timeout=5, **kw):
        self.url = url
        self.messages = queue.Queue()
        self.closed = threading.Event()
        self.close_code = None
        self.close_reason = None
        self.received = 0
        self.arrivals = []  # (time.monotonic(), message) for every message
        self._loop = _Loop.get()
        opts = dict(ping_interval=None, max_size=None, max_queue=None, close_timeout=3,
                    open_timeout=connect_timeout)
        opts.update(kw)
        async def connect():
            return await websockets.connect(url, **opts)
        self.ws = self._loop.run(connect(), connect_timeout + 2)
        self._task = self._loop.run(self._start_reader(), 5)

    async def _start_reader(self):
        return asyncio.ensure_future(self._reader())

    async def _reader(self):
        try:
            async for m in self.ws:
                self.received += 1
                self.arrivals.append((time.monotonic(), m))
                self.messages.put(m)
        except websockets.exceptions.ConnectionClosed:
            pass
        except Exception as e:  # noqa: BLE001 - surfaced through recv()
            self.messages.put(e)
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self.closed.set()
            self.messages.put(_CLOSED)

    def recv(self, timeout=5):
        """Next message (str for text frames, bytes for binary ones)."""
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no message within %.1fs from %s" % (timeout, self.url)) from None
        if m is _CLOSED:
            self.messages.put(_CLOSED)  # sticky
            raise ConnectionClosed(self.close_code, self.close_reason)
        if isinstance(m, Exception):
            raise m
        return m

    def recv_n(self, n, timeout=10):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("got %d of %d messages within %.1fs" % (len(out), n, timeout))
            out.append(self.recv(left))
        return out

    def expect_nothing(self, wait=0.5):
        """Assert no message arrives within wait seconds; returns nothing."""
        try:
            m = self.messages.get(timeout=wait)
        except queue.Empty:
            return
        if m is _CLOSED:
            self.messages.put(_CLOSED)
            return
        raise AssertionError("unexpected message on %s: %r" % (self.url, _short(m)))

    def pending(self):
        """Messages received so far and not taken (non-blocking)."""
        out = []
        while True:
            try:
                m = self.messages.get_nowait()
            except queue.Empty:
                return out
            if m is _CLOSED:
                self.messages.put(_CLOSED)
                return out
            if not isinstance(m, Exception):
                out.append(m)

    @property
    def open(self):
        return not self.closed.is_set()

    def ping(self, timeout=5):
        async def p():
            w = await self.ws.ping()
            await asyncio.wait_for(w, timeout)
        self._loop.run(p(), timeout + 1)

    def wait_closed(self, timeout=5):
        """Close code sent by the server (None if the TCP connection just ended)."""
        if not self.closed.wait(timeout):
            raise TimeoutError("connection %s still open after %.1fs" % (self.url, timeout))
        return self.close_code

    def close(self, code=1000, timeout=5):
        if self.closed.is_set():
            return
        try:
            self._loop.run(self.ws.close(code), timeout)
        except Exception:  # noqa: BLE001
            pass
        self.closed.wait(timeout)


def _short(m, n=120):
    r = repr(m)
    return r if len(r) <= n else r[:n] + "...(%d chars)" % len(m)


# --------------------------------------------------------------------------
# Raw WebSocket client: handshake by hand, crafted frames


Frame = collections.namedtuple("Frame", "fin rsv opcode masked payload")


class HTTPResponse:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # {lower-case name: [values]}
        self.body = body

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[-1] if v else None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<HTTP %d %s %r %r>" % (self.status, self.reason, self.headers, self.body[:200])


class RawWS:
    def __init__(self, port, host="127.0.0.1", rcvbuf=None, timeout=5):
        self.port = port
        self.host = host
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = bytearray()
        self.eof = False
        self.reset = False
        self.key = None

    # handshake -------------------------------------------------------------
    def handshake(self, path="/ws?userId=1", headers=None, method="GET", version="HTTP/1.1",
                  key=None, timeout=5):
        """Send an upgrade request.  headers overrides/extends the defaults; a
        None value removes a default header.  Returns an HTTPResponse."""
        self.key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
        h = collections.OrderedDict()
        h["Host"] = "%s:%d" % (self.host, self.port)
        h["Upgrade"] = "websocket"
        h["Connection"] = "Upgrade"
        h["Sec-WebSocket-Key"] = self.key
        h["Sec-WebSocket-Version"] = "13"
        for k, v in (headers or {}).items():
            for existing in list(h):
                if existing.lower() == k.lower():
                    del h[existing]
            if v is not None:
                h[k] = v
        req = "%s %s %s\r\n" % (method, path, version)
        req += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        self.sock.sendall(req.encode("latin-1"))
        return self.read_response(timeout)

    def read_response(self, timeout=5):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise HarnessError("HTTP response head too large")
            if not self._fill(deadline):
                raise HarnessError("connection closed before a complete HTTP response: %r"
                                   % bytes(self.buf))
        i = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:i]).decode("latin-1")
        del self.buf[:i + 4]
        lines = head.split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
        if not m:
            raise HarnessError("bad status line %r" % lines[0])
        status = int(m.group(1))
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.setdefault(k.strip().lower(), []).append(v.strip())
        body = b""
        if status != 101:
            cl = headers.get("content-length")
            te = ",".join(headers.get("transfer-encoding", [])).lower()
            if cl:
                n = int(cl[-1])
                while len(self.buf) < n and self._fill(deadline):
                    pass
                body = bytes(self.buf[:n])
                del self.buf[:n]
            elif "chunked" in te:
                body = self._read_chunked(deadline)
            else:
                while self._fill(deadline, eof_ok=True):
                    pass
                body = bytes(self.buf)
                self.buf.clear()
        return HTTPResponse(status, m.group(2), headers, body)

    def _read_chunked(self, deadline):
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                if not self._fill(deadline):
                    return body
            i = self.buf.index(b"\r\n")
            size = int(bytes(self.buf[:i]).split(b";")[0], 16)
            del self.buf[:i + 2]
            while len(self.buf) < size + 2:
                if not self._fill(deadline):
                    return body + bytes(self.buf)
            body += bytes(self.buf[:size])
            del self.buf[:size + 2]
            if size == 0:
                return body

    def expected_accept(self):
        return base64.b64encode(hashlib.sha1(self.key.encode() + WS_GUID).digest()).decode()

    # bytes -------------------------------------------------------------------
    def _fill(self, deadline, eof_ok=False):
        """Read more into buf.  False at EOF (or reset).  TimeoutError at deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data from server within the time limit")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from server within the time limit") from None
        except ConnectionResetError:
            self.eof = True
            self.reset = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def send_raw(self, data):
        self.sock.sendall(data)

    # frames --------------------------------------------------------------------
    @staticmethod
    def build_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, mask_key=None, length=None):
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
        n = len(payload) if length is None else length
        mbit = 0x80 if mask else 0
        if n < 126:
            hdr = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, mbit | 127, n)
        if mask:
            mk = mask_key if mask_key is not None else os.urandom(4)
            payload = bytes(b ^ mk[i % 4] for i, b in enumerate(payload))
            return hdr + mk + payload
        return hdr + payload

    def send_frame(self, opcode, payload=b"", **kw):
        self.sock.sendall(self.build_frame(opcode, payload, **kw))

    def send_text(self, text, **kw):
        self.send_frame(OP_TEXT, text, **kw)

    def send_close(self, code=None, reason=b"", raw=None):
        payload = raw if raw is not None else (b"" if code is None else struct.pack("!H", code) + reason)
        self.send_frame(OP_CLOSE, payload)

    def recv_frame(self, timeout=5):
        """Next frame from the server, or None at EOF."""
        deadline = time.monotonic() + timeout

        def need(n):
            while len(self.buf) < n:
                if not self._fill(deadline):
                    return False
            return True

        if not need(2):
            if self.buf:
                raise HarnessError("EOF inside a frame header")
            return None
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            if not need(4):
                raise HarnessError("EOF inside a frame header")
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            if not need(10):
                raise HarnessError("EOF inside a frame header")
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        masked = bool(b1 & 0x80)
        mk = None
        if masked:
            if not need(off + 4):
                raise HarnessError("EOF inside a frame header")
            mk = bytes(self.buf[off:off + 4])
            off += 4
        if not need(off + n):
            raise HarnessError("EOF inside a frame payload (%d of %d bytes)" % (len(self.buf) - off, n))
        payload = bytes(self.buf[off:off + n])
        del self.buf[:off + n]
        if masked:
            payload = bytes(b ^ mk[i % 4] for i, b in enumerate(payload))
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, masked, payload)

    def expect_close(self, timeout=5):
        """Read frames until a close frame.  Returns (code, reason bytes, data
        frames seen before it); code is None for an empty close payload.
        Raises ConnectionClosed (code None) if the TCP connection ends without
        a close frame, TimeoutError if nothing happens."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            f = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if f is None:
                raise ConnectionClosed(None, "TCP closed without a close frame (reset=%s)" % self.reset)
            if f.masked:
                raise AssertionError("server sent a masked frame: %r" % (f,))
            if f.opcode == OP_CLOSE:
                if len(f.payload) >= 2:
                    return struct.unpack("!H", f.payload[:2])[0], f.payload[2:], seen
                return None, b"", seen
            seen.append(f)

    def wait_eof(self, timeout=5):
        """True once the server has closed the TCP connection (data still
        arriving is discarded); False on timeout."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                self.buf.clear()
        except TimeoutError:
            return False
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def raw_ws_connect(port, user, rcvbuf=None, timeout=5):
    """A raw client past a successful handshake (asserts 101)."""
    c = RawWS(port, rcvbuf=rcvbuf, timeout=timeout)
    r = c.handshake("/ws?userId=%s" % urllib.parse.quote(str(user), safe=""))
    if r.status != 101:
        c.close()
        raise AssertionError("handshake for user %s answered %r" % (user, r))
    return c


def random_text(n, rng=random):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def recv_exact(client, body, timeout=5):
    """The next message on client is a text frame carrying exactly body (bytes)."""
    m = client.recv(timeout)
    assert isinstance(m, str), "expected a text frame, got %s %r" % (type(m).__name__, _short(m))
    got = m.encode("utf-8")
    assert got == body, "body differs (%d vs %d bytes):\n got %r\nwant %r" % (
        len(got), len(body), got[:300], body[:300])


# ==========================================================================
# Helpers for test_push, test_metrics, test_lifecycle, test_auth_jwt,
# test_origin_limits, test_tls and test_demo_page.

import ssl  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BROKER_SH = os.path.join(os.path.dirname(HERE), "lib", "broker.sh")


# ---- HTTP over TLS, POST /push ---------------------------------------------


def https_request(port, method, path, context, headers=None, body=None, timeout=5,
                  host="127.0.0.1"):
    """Like http_request, over TLS with the given ssl.SSLContext."""
    c = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


class PushAnswer:
    def __init__(self, status, headers, body, took):
        self.status = status
        self.headers = headers
        self.body = body
        self.took = took

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<push %d %r %r (%.2fs)>" % (self.status, self.headers, self.body[:300], self.took)


# push_keys must be at least 16 characters; the tests' default key.
PUSH_KEY = "test-push-key-0001"


def push(port, body, key=PUSH_KEY, auth=None, method="POST", headers=None, timeout=15):
    """POST /push.  body: bytes/str, or dict/list (JSON-encoded).  key: the
    push key sent as "Authorization: Bearer KEY" (None: no header); auth
    replaces the whole header value."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body, separators=(",", ":"))
    if isinstance(body, str):
        body = body.encode("utf-8")
    h = {"Content-Type": "application/json"}
    if auth is not None:
        h["Authorization"] = auth
    elif key is not None:
        h["Authorization"] = "Bearer " + key
    h.update(headers or {})
    t0 = time.monotonic()
    st, hdr, data = http_request(port, method, "/push", headers=h, body=body, timeout=timeout)
    return PushAnswer(st, hdr, data, time.monotonic() - t0)


# ---- Prometheus text format ---------------------------------------------------

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


def _parse_labels(s):
    out = {}
    pos = 0
    while pos < len(s):
        m = _LABEL.match(s, pos)
        if not m:
            raise ValueError("bad label set %r" % s)
        val = m.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        if m.group(1) in out:
            raise ValueError("label %s twice in %r" % (m.group(1), s))
        out[m.group(1)] = val
        pos = m.end()
    return out


def _sample_value(v):
    if v in ("+Inf", "Inf"):
        return float("inf")
    if v == "-Inf":
        return float("-inf")
    if v == "NaN":
        return float("nan")
    return float(v)


class Metrics:
    """A parsed /metrics answer.  Parsing checks the text exposition format:
    every sample's family has # HELP and # TYPE before its first sample,
    names are valid, a family's samples are contiguous, histogram buckets
    are cumulative, end with le="+Inf" and that bucket equals _count.
    problems lists what is wrong (empty: valid)."""

    def __init__(self, text):
        self.text = text
        self.samples = {}   # (name, frozenset(labels.items())) -> value
        self.types = {}     # family -> type
        self.helps = {}
        self.problems = []
        self._parse()

    def _family(self, name):
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and self.types.get(name[:-len(suffix)]) in ("histogram", "summary"):
                return name[:-len(suffix)]
        return name

    def _parse(self):
        p = self.problems
        seen_families = []   # in order of first sample
        closed = set()
        current = None
        buckets = {}         # (family, labels without le) -> [(le, value)]
        counts = {}
        for n, line in enumerate(self.text.split("\n"), 1):
            if line == "":
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    name = parts[2]
                    if not _METRIC_NAME.match(name):
                        p.append("line %d: bad metric name %r" % (n, name))
                    if name in seen_families:
                        p.append("line %d: # %s %s after its samples" % (n, parts[1], name))
                    table = self.helps if parts[1] == "HELP" else self.types
                    if name in table:
                        p.append("line %d: second # %s for %s" % (n, parts[1], name))
                    if parts[1] == "TYPE":
                        t = parts[3].strip() if len(parts) > 3 else ""
                        if t not in ("counter", "gauge", "histogram", "summary", "untyped"):
                            p.append("line %d: bad type %r" % (n, t))
                        self.types[name] = t
                    else:
                        self.helps[name] = parts[3] if len(parts) > 3 else ""
                continue
            m = _SAMPLE.match(line)
            if not m:
                p.append("line %d: not a sample: %r" % (n, line))
                continue
            name = m.group(1)
            try:
                labels = _parse_labels(m.group(3) or "")
                value = _sample_value(m.group(4))
            except ValueError as e:
                p.append("line %d: %s" % (n, e))
                continue
            for k in labels:
                if not _LABEL_NAME.match(k) or k.startswith("__"):
                    p.append("line %d: bad label name %r" % (n, k))
            fam = self._family(name)
            if fam not in self.types:
                p.append("line %d: sample of %s without # TYPE before it" % (n, fam))
            if fam not in self.helps:
                p.append("line %d: sample of %s without # HELP before it" % (n, fam))
            if fam != current:
                if fam in closed:
                    p.append("line %d: samples of %s are not contiguous" % (n, fam))
                if current is not None:
                    closed.add(current)
                current = fam
                if fam not in seen_families:
                    seen_families.append(fam)
            key = (name, frozenset(labels.items()))
            if key in self.samples:
                p.append("line %d: duplicate sample %s%r" % (n, name, labels))
            self.samples[key] = value
            t = self.types.get(fam)
            if t == "counter" and not (value >= 0):
                p.append("line %d: negative counter %s" % (n, name))
            if t == "histogram":
                rest = frozenset((k, v) for k, v in labels.items() if k != "le")
                if name == fam + "_bucket":
                    if "le" not in labels:
                        p.append("line %d: bucket without le" % n)
                    else:
                        buckets.setdefault((fam, rest), []).append((_sample_value(labels["le"]), value))
                elif name == fam + "_count":
                    counts[(fam, rest)] = value
                elif name != fam + "_sum":
                    p.append("line %d: %s in histogram %s" % (n, name, fam))
        for (fam, rest), bl in buckets.items():
            les = [le for le, _ in bl]
            if les != sorted(les):
                p.append("%s: buckets not in increasing le order" % fam)
            vals = [v for _, v in bl]
            if any(b < a for a, b in zip(vals, vals[1:])):
                p.append("%s: buckets not cumulative: %r" % (fam, bl))
            if not les or les[-1] != float("inf"):
                p.append("%s: last bucket is not le=\"+Inf\"" % fam)
            elif (fam, rest) not in counts:
                p.append("%s: no _count" % fam)
            elif counts[(fam, rest)] != vals[-1]:
                p.append("%s: +Inf bucket %s != _count %s" % (fam, vals[-1], counts[(fam, rest)]))
        for fam, t in self.types.items():
            if t == "histogram" and not any(f == fam for f, _ in buckets):
                p.append("%s: histogram without buckets" % fam)

    def get(self, name, default=None, **labels):
        return self.samples.get((name, frozenset((k, str(v)) for k, v in labels.items())), default)

    def value(self, name, **labels):
        v = self.get(name, None, **labels)
        if v is None:
            raise KeyError("no sample %s%r in /metrics" % (name, labels))
        return v

    def names(self):
        return sorted({n for n, _ in self.samples})


def get_metrics(port, timeout=5, check=True):
    """Fetch and parse /metrics; with check, a format problem fails."""
    st, hdr, body = http_get(port, "/metrics", timeout=timeout)
    if st != 200:
        raise AssertionError("/metrics answered %d: %r" % (st, body[:300]))
    m = Metrics(body.decode("utf-8"))
    if check and m.problems:
        raise AssertionError("/metrics is not valid Prometheus text:\n  " + "\n  ".join(m.problems[:30]))
    return m


def wait_metric(port, name, pred, timeout=10, what=None, **labels):
    """Poll /metrics until pred(value of name{labels}) is true; returns the value."""
    last = [None]

    def ok():
        v = get_metrics(port).value(name, **labels)
        last[0] = v
        return pred(v)
    try:
        wait_until(ok, timeout, 0.1, what or "%s%r" % (name, labels))
    except TimeoutError as e:
        raise AssertionError("%s (last value %r)" % (e, last[0])) from None
    return last[0]


# ---- a notifyd with extra environment, or TLS on its listener -----------------


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


# ---- sd_notify socket --------------------------------------------------------


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


# ---- certificates (openssl CLI) ---------------------------------------------


def openssl(*args, cwd=None, input=None, timeout=60):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, input=input, capture_output=True,
                       timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
    if p.returncode != 0:
        raise HarnessError("openssl %s failed: %s" % (" ".join(args),
                                                      p.stderr.decode("utf-8", "replace")))
    return p.stdout


class CA:
    """A throw-away certificate authority (EC P-256) in directory d."""

    def __init__(self, d, name="notifyd test CA"):
        os.makedirs(d, exist_ok=True)
        self.dir = d
        self.name = name
        slug = sanitize(name)
        self.key = os.path.join(d, slug + ".key")
        self.cert = os.path.join(d, slug + ".pem")
        self._serial = 1000 + random.randrange(100000)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=" + name,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, name, cn=None, serial=None, san="IP:127.0.0.1,DNS:localhost", rsa=False):
        """A server certificate: returns (cert path, key path, serial)."""
        self._serial += 1
        serial = serial or self._serial
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        cert = os.path.join(self.dir, name + ".pem")
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n" % san)
        newkey = ["-newkey", "rsa:2048"] if rsa else ["-newkey", "ec", "-pkeyopt",
                                                      "ec_paramgen_curve:P-256"]
        openssl("req", *newkey, "-nodes", "-keyout", key, "-out", csr, "-subj",
                "/CN=" + (cn or name))
        openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                "-set_serial", str(serial), "-days", "2", "-out", cert, "-extfile", ext)
        os.chmod(key, 0o644)  # the broker (same user) and notifyd read it
        return cert, key, serial

    def context(self):
        """A client ssl.SSLContext that trusts this CA (and checks host names)."""
        ctx = ssl.create_default_context(cafile=self.cert)
        return ctx


def peer_certificate(port, host="127.0.0.1", timeout=5):
    """(serial number, subject CN) of the certificate served on port."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as s:
        with ctx.wrap_socket(s, server_hostname=host) as t:
            der = t.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der).encode()
    out = openssl("x509", "-noout", "-serial", "-subject", "-nameopt", "RFC2253",
                  input=pem).decode()
    serial = re.search(r"serial=([0-9A-Fa-f]+)", out).group(1)
    cn = re.search(r"CN=([^,\n]+)", out)
    return int(serial, 16), cn.group(1).strip() if cn else None


# ---- a RabbitMQ node owned by one test ------------------------------------------


class OwnBroker:
    """A private RabbitMQ node started with t/lib/broker.sh in its own temp
    dir, for tests that stop and restart the broker or need a TLS listener
    (rabbitmq_conf: text written to DIR/rabbitmq.conf, which broker.sh's
    RABBITMQ_CONFIG_FILE=DIR/rabbitmq names).  stop() and start() may be
    repeated; start() after the first reuses the same AMQP port.  close()
    stops it (by PID, through broker.sh) and removes the dir."""

    def __init__(self, parent=None, rabbitmq_conf=None, start_timeout=90):
        self.dir = tempfile.mkdtemp(prefix="notifyd-own-broker.", dir=parent)
        self.port = None
        self.env = {}
        self.start_timeout = start_timeout
        self.running = False
        if rabbitmq_conf:
            with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
                f.write(rabbitmq_conf)

    def _sh(self, *args, timeout=120):
        env = dict(os.environ)
        env["BROKER_START_TIMEOUT"] = str(self.start_timeout)
        return subprocess.run(["bash", BROKER_SH] + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, env=env)

    def start(self):
        args = ["start", self.dir] + ([str(self.port)] if self.port else [])
        p = self._sh(*args, timeout=self.start_timeout + 30)
        if p.returncode != 0:
            logdir = os.path.join(self.dir, "log")
            tail = ""
            try:
                for fn in sorted(os.listdir(logdir)):
                    with open(os.path.join(logdir, fn), errors="replace") as f:
                        tail += "\n== %s\n%s" % (fn, "".join(f.readlines()[-30:]))
            except OSError:
                pass
            raise HarnessError("cannot start a RabbitMQ node in %s: %s%s" % (self.dir, p.stderr, tail))
        kv = {}
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                if "=" in line:
                    k, v = line.strip().split("=", 1)
                    kv[k] = v
        self.env = kv
        self.port = int(kv["AMQP_PORT"])
        self.running = True
        return self

    def stop(self):
        p = self._sh("stop", self.dir, timeout=120)
        self.running = False
        return p.returncode == 0

    @property
    def url(self):
        return "amqp://guest:guest@127.0.0.1:%d/" % self.port

    def broker(self):
        """A harness Broker for this node (rabbitmqctl works)."""
        return Broker("127.0.0.1", self.port, node=self.env.get("RABBITMQ_NODENAME"),
                      ctl=self.env.get("RABBITMQCTL"), ctl_home=self.env.get("BROKER_HOME"))

    def vhost(self):
        return Vhost(self.broker(), "/")

    def log_tail(self, n=40):
        out = []
        logdir = os.path.join(self.dir, "log")
        try:
            for fn in sorted(os.listdir(logdir)):
                with open(os.path.join(logdir, fn), errors="replace") as f:
                    out.append("== %s\n%s" % (fn, "".join(f.readlines()[-n:])))
        except OSError:
            pass
        return "\n".join(out)

    def close(self):
        if os.path.exists(os.path.join(self.dir, "env")):
            self.stop()
        if not os.environ.get("TEST_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)


# ==========================================================================
# Helpers for test_faults, test_hostile_broker and test_churn (and the soak
# driver t/soak/soak.py): a TCP proxy in front of the broker whose failure
# mode the test controls, and process numbers from /proc.


class TcpProxy:
    """A TCP proxy on a free loopback port in front of target (host, port),
    run by an asyncio loop on its own thread.  Modes, applied at once to the
    connections it holds and to new ones:
      pass   forward both ways (held connections get their upstream now);
      drop   close both sides (FIN); new connections are accepted and closed;
      stall  stop forwarding and keep every socket open, as a network that
             loses packets would; new connections are accepted and held;
      reset  abort both sides with RST (SO_LINGER 0); new ones too.
    accepted counts connections accepted; open_pairs() those held now."""

    MODES = ("pass", "drop", "stall", "reset")

    def __init__(self, target_port, target_host="127.0.0.1", mode="pass"):
        self.target = (target_host, int(target_port))
        self.mode = mode
        self.accepted = 0
        self.pairs = set()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        self.thread.start()
        if not self._ready.wait(10):
            raise HarnessError("TCP proxy did not start")
        self.port = self._server.sockets[0].getsockname()[1]

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(
            self.loop.create_server(lambda: _ProxySide(self, None, "c"), "127.0.0.1", 0,
                                    backlog=256))
        self._ready.set()
        self.loop.run_forever()

    def _call(self, fn, timeout=10):
        done = threading.Event()
        box = []

        def wrap():
            try:
                box.append(fn())
            finally:
                done.set()
        self.loop.call_soon_threadsafe(wrap)
        if not done.wait(timeout):
            raise HarnessError("TCP proxy loop not answering")
        return box[0] if box else None

    @property
    def url_host_port(self):
        return "127.0.0.1:%d" % self.port

    def amqp_url(self, vhost="/", user="guest", password="guest"):
        return "amqp://%s:%s@127.0.0.1:%d/%s" % (user, password, self.port,
                                                   urllib.parse.quote(vhost, safe=""))

    def set_mode(self, mode):
        if mode not in self.MODES:
            raise ValueError(mode)

        def apply():
            self.mode = mode
            for p in list(self.pairs):
                p.apply_mode()
        self._call(apply)

    def open_pairs(self):
        return self._call(lambda: len(self.pairs))

    def close(self):
        def shut():
            self._server.close()
            for p in list(self.pairs):
                p.close(rst=False)
        try:
            self._call(shut)
        except HarnessError:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class _ProxyPair:
    def __init__(self, proxy):
        self.proxy = proxy
        self.c = None          # client side transport
        self.u = None          # upstream transport
        self.pending = bytearray()
        self.connecting = False
        self.c_gone = False
        self.u_gone = False
        self.closed = False

    def apply_mode(self):
        mode = self.proxy.mode
        if self.closed:
            return
        if mode in ("drop", "reset"):
            self.close(rst=mode == "reset")
        elif mode == "stall":
            for t in (self.c, self.u):
                if t is not None and not t.is_closing():
                    t.pause_reading()
        else:  # pass
            if self.c_gone or self.u_gone:
                # an end went away while stalled: pass that on now
                self.close(rst=False)
                return
            for t in (self.c, self.u):
                if t is not None and not t.is_closing():
                    t.resume_reading()
            if self.u is None and not self.connecting:
                self.connect_upstream()

    def connect_upstream(self):
        self.connecting = True
        loop = self.proxy.loop

        async def go():
            try:
                await loop.create_connection(lambda: _ProxySide(self.proxy, self, "u"),
                                             *self.proxy.target)
            except OSError:
                self.close(rst=False)
        asyncio.ensure_future(go())

    def upstream_made(self, t):
        self.u = t
        self.connecting = False
        if self.closed:
            t.close()
            return
        if self.pending:
            t.write(bytes(self.pending))
            self.pending.clear()
        if self.proxy.mode == "stall":
            t.pause_reading()
        elif self.proxy.mode in ("drop", "reset"):
            self.close(rst=self.proxy.mode == "reset")

    def forward(self, side, data):
        if side == "c":
            if self.u is not None:
                self.u.write(data)
            else:
                self.pending += data
        elif self.c is not None:
            self.c.write(data)

    def lost(self, side):
        if side == "c":
            self.c_gone = True
        else:
            self.u_gone = True
        if self.proxy.mode == "stall":
            return  # a partition does not carry the FIN either
        self.close(rst=False)

    @staticmethod
    def _abort(t, rst):
        if t is None or t.is_closing():
            return
        if rst:
            s = t.get_extra_info("socket")
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            t.abort()
        else:
            t.close()

    def close(self, rst):
        if self.closed:
            return
        self.closed = True
        self.proxy.pairs.discard(self)
        self._abort(self.c, rst)
        self._abort(self.u, rst)


class _ProxySide(asyncio.Protocol):
    def __init__(self, proxy, pair, side):
        self.proxy = proxy
        self.pair = pair
        self.side = side

    def connection_made(self, transport):
        if self.side == "c":
            self.proxy.accepted += 1
            self.pair = _ProxyPair(self.proxy)
            self.pair.c = transport
            self.proxy.pairs.add(self.pair)
            mode = self.proxy.mode
            if mode in ("drop", "reset"):
                self.pair.close(rst=mode == "reset")
            elif mode == "stall":
                transport.pause_reading()
            else:
                self.pair.connect_upstream()
        else:
            self.pair.upstream_made(transport)

    def data_received(self, data):
        self.pair.forward(self.side, data)

    def connection_lost(self, exc):
        if self.pair is not None:
            self.pair.lost(self.side)


def proc_usage(pid):
    """(VmRSS kB, open descriptors, threads) of a live process, from /proc."""
    rss = threads = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, len(os.listdir("/proc/%d/fd" % pid)), threads


def log_lines_matching(daemon, *needles):
    """Lines of a daemon's log that contain any of needles (case-insensitive)."""
    low = [n.lower() for n in needles]
    return [l for l in daemon.log_text().splitlines() if any(n in l.lower() for n in low)]


def rabbit_tls_conf(tls_port, ca_file, cert_file, key_file):
    """rabbitmq.conf text for a TLS listener on 127.0.0.1:tls_port (no client
    certificates asked for)."""
    return ("listeners.ssl.1 = 127.0.0.1:%d\n"
            "ssl_options.cacertfile = %s\n"
            "ssl_options.certfile = %s\n"
            "ssl_options.keyfile = %s\n"
            "ssl_options.verify = verify_none\n"
            "ssl_options.fail_if_no_peer_cert = false\n" % (tls_port, ca_file, cert_file, key_file))


# ==========================================================================
# Helpers for test_hostile.py and the soak's hostile phase (t/soak/soak.py
# --phases hostile): raw HTTP from a chosen source address with interim
# (1xx) answers, noticing the moment the server ends a connection, bytes
# trickled, connect+RST floods, a ping flooder that never reads, and the
# daemon's numbers from /proc.  Every wait is bounded.

import select  # noqa: E402

TCP_STATE_NAMES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
                   6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
                   11: "CLOSING"}


def tcp_state(sock):
    """The Linux TCP state of a connected socket (tcp_info.tcpi_state), by
    name: CLOSE_WAIT once the peer sent its FIN, CLOSE once it reset the
    connection.  Reads nothing from the socket."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    except OSError:
        return "CLOSE"
    return TCP_STATE_NAMES.get(info[0], str(info[0]))


def server_holds(sock):
    """Does the server still hold its end of this loopback connection (a
    socket with an owner, i.e. not closed)?  From /proc/net/tcp: the entry
    whose local address is sock's peer and remote address is sock's own; a
    socket the server closed is gone or orphaned (inode 0, e.g. FIN_WAIT1
    behind data a client that does not read never takes).  Needed because
    such a FIN never reaches the client: its TCP state stays ESTABLISHED."""
    try:
        mine = sock.getsockname()
        peer = sock.getpeername()
    except OSError:
        return False

    def hexaddr(a):
        return "%s:%04X" % ("".join("%02X" % int(x) for x in reversed(a[0].split("."))), a[1])
    want_local, want_rem = hexaddr(peer), hexaddr(mine)
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                p = line.split()
                if len(p) > 9 and p[1] == want_local and p[2] == want_rem:
                    return p[9] != "0"
    except OSError:
        return True
    return False


def proc_rss_kb(pid):
    """VmRSS of a live process in kB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise HarnessError("no VmRSS for pid %d" % pid)


def proc_fd_count(pid):
    """Open descriptors of a live process (entries of /proc/PID/fd)."""
    return len(os.listdir("/proc/%d/fd" % pid))


def build_http_request(method, path, headers=(), body=b"", version="HTTP/1.1", host=None):
    """Request bytes.  headers: (name, value) pairs sent in that order,
    repeats kept (for ambiguous framing); a Host header comes first unless
    one is given.  body is appended as it is (no Content-Length added)."""
    headers = list(headers)
    if host is not None and not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ("Host", host))
    head = "%s %s %s\r\n" % (method, path, version)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in headers) + "\r\n"
    if isinstance(body, str):
        body = body.encode("utf-8")
    return head.encode("latin-1") + (body or b"")


def bearer(key):
    """("Authorization", "Bearer KEY"), the header harness.push() sends."""
    return ("Authorization", "Bearer " + key)


class RawHTTP(RawWS):
    """A raw TCP connection for HTTP abuse (a RawWS, so a WebSocket
    handshake and frames work too): an optional source address (127.0.0.x:
    "another client address" on loopback) and receive buffer, requests with
    repeated headers, responses read one at a time with interim ones (100
    Continue) returned on their own, and noticing when the server ends the
    connection (EOF or reset) without blocking on it."""

    def __init__(self, port, host="127.0.0.1", source=None, rcvbuf=None, timeout=5):
        self.port = port
        self.host = host
        self.source = source
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            if source:
                self.sock.bind((source, 0))
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
        except OSError:
            self.sock.close()
            raise
        self.buf = bytearray()
        self.eof = False
        self.reset = False
        self.key = None
        self.send_error = None

    @property
    def host_header(self):
        return "%s:%d" % (self.host, self.port)

    def send_safe(self, data):
        """sendall; False when the server has already closed (EPIPE, reset):
        what it sent before that can still be read."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError) as e:
            self.send_error = e
            return False

    def send_request(self, method, path, headers=(), body=b"", version="HTTP/1.1"):
        """Send a request (see build_http_request); returns send_safe's answer."""
        return self.send_safe(build_http_request(method, path, headers, body, version,
                                                 host=self.host_header))

    def read_response(self, timeout=5):
        """The next response.  An interim one (1xx other than 101) comes back
        alone, without a body: call again for the final one."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise HarnessError("HTTP response head too large")
            if not self._fill(deadline):
                raise HarnessError("connection closed before a complete HTTP response: %r"
                                   % bytes(self.buf[:300]))
        m = re.match(rb"HTTP/1\.[01] (1\d\d) ?([^\r\n]*)", bytes(self.buf[:200]))
        if m and m.group(1) != b"101":
            i = self.buf.index(b"\r\n\r\n")
            lines = bytes(self.buf[:i]).decode("latin-1").split("\r\n")
            del self.buf[:i + 4]
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers.setdefault(k.strip().lower(), []).append(v.strip())
            return HTTPResponse(int(m.group(1)), m.group(2).decode("latin-1"), headers, b"")
        return RawWS.read_response(self, max(0.01, deadline - time.monotonic()))

    def poll_closed(self, timeout=0.0):
        """Read whatever the server sends (kept in buf, at most the last MB)
        for up to timeout seconds; True as soon as the server has ended the
        connection (EOF or reset), False if it is still open then."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            try:
                r, _, _ = select.select([self.sock], [], [], max(0.0, left))
            except (OSError, ValueError):
                self.eof = True
                break
            if not r:
                return False
            try:
                data = self.sock.recv(65536, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                continue
            except ConnectionResetError:
                self.eof = self.reset = True
                break
            except OSError:
                self.eof = True
                break
            if not data:
                self.eof = True
                break
            self.buf += data
            if len(self.buf) > (1 << 20):
                del self.buf[:-65536]
        return True

    def trickle(self, data, interval, until):
        """Send data one byte every interval seconds, watching the connection
        meanwhile, until the server ends it or time.monotonic() passes until
        (after the last byte it goes on watching until then).  Returns
        (time.monotonic() when the end was noticed or None, bytes sent)."""
        sent = 0
        for i in range(len(data)):
            if time.monotonic() >= until:
                break
            if self.poll_closed(0):
                return time.monotonic(), sent
            if not self.send_safe(data[i:i + 1]):
                self.poll_closed(0.2)
                self.eof = True
                return time.monotonic(), sent
            sent += 1
            if self.poll_closed(min(interval, max(0.0, until - time.monotonic()))):
                return time.monotonic(), sent
        if self.poll_closed(max(0.0, until - time.monotonic())):
            return time.monotonic(), sent
        return None, sent

    def rst(self):
        """End the connection with RST (SO_LINGER {on, 0})."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()


def rst_flood(port, n, host="127.0.0.1", source=None, timeout=5):
    """Open n TCP connections to port one after the other and reset each at
    once (SO_LINGER {on, 0}) without sending anything.  Returns how many
    connected."""
    ok = 0
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if source:
                s.bind((source, 0))
            s.settimeout(timeout)
            s.connect((host, port))
            ok += 1
        except OSError:
            pass
        finally:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            s.close()
    return ok


def idle_connections(port, n, host="127.0.0.1", source=None, timeout=5):
    """n open TCP connections that send nothing (RawHTTP objects, in the
    order they were opened)."""
    out = []
    try:
        for _ in range(n):
            out.append(RawHTTP(port, host=host, source=source, timeout=timeout))
    except OSError:
        for c in out:
            c.close()
        raise
    return out


def closed_among(conns, timeout):
    """Watch conns (RawHTTP) for up to timeout seconds; the list of those the
    server has ended by then (EOF or reset), at the latest once the first
    one ended plus 0.3 s for its neighbours."""
    deadline = time.monotonic() + timeout
    while True:
        closed = [c for c in conns if c.poll_closed(0)]
        if closed:
            time.sleep(0.3)
            return [c for c in conns if c.poll_closed(0)]
        left = deadline - time.monotonic()
        if left <= 0:
            return []
        try:
            select.select([c.sock for c in conns if not c.eof], [], [], min(0.1, left))
        except (OSError, ValueError):
            time.sleep(0.05)


class PingFlooder:
    """A WebSocket client past its handshake (a RawWS, best with a small
    SO_RCVBUF) that never reads and sends masked 125-byte pings as fast as it
    can on a thread of its own, until max_bytes are sent or max_seconds pass
    (sending that blocks, because the server stopped reading, or fails,
    because it closed, is expected); then, still without reading, it watches
    the TCP state for the server's FIN or reset until watch_seconds after the
    start (or for the server to close its socket: see server_holds).
    rate: bytes per second at most (None: as fast as it can).
    Afterwards: sent (bytes), stop_reason, blocked_s (time spent in sends
    that timed out), t_start, t_stop, t_closed (None: still open) and
    close_how."""

    PAYLOAD = 125

    def __init__(self, raw, max_bytes=150 * 1024 * 1024, max_seconds=6.0, watch_seconds=15.0,
                 rate=None):
        self.raw = raw
        self.rate = rate
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.watch_seconds = watch_seconds
        self.sent = 0
        self.stop_reason = None
        self.blocked_s = 0.0
        self.t_start = None
        self.t_stop = None
        self.t_closed = None
        self.close_how = None
        self.error = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ping-flooder", daemon=True)

    def start(self):
        self.t_start = time.monotonic()
        self.thread.start()
        return self

    def stop(self):
        self._stop.set()

    def join(self, timeout):
        self.thread.join(timeout)
        return not self.thread.is_alive()

    @property
    def done(self):
        return self.t_start is not None and not self.thread.is_alive()

    def _run(self):
        sock = self.raw.sock
        frame = RawWS.build_frame(OP_PING, b"p" * self.PAYLOAD)
        chunk = memoryview(frame * 512)
        off = 0
        try:
            sock.settimeout(0.2)
            end = self.t_start + self.max_seconds
            while True:
                if self._stop.is_set():
                    self.stop_reason = "stopped"
                    break
                if self.sent >= self.max_bytes:
                    self.stop_reason = "max_bytes"
                    break
                if time.monotonic() >= end:
                    self.stop_reason = "max_seconds"
                    break
                t = time.monotonic()
                if self.rate:
                    ahead = self.sent / float(self.rate) - (t - self.t_start)
                    if ahead > 0:
                        self._stop.wait(min(ahead, 0.2))
                        continue
                try:
                    n = sock.send(chunk[off:])
                except socket.timeout:
                    self.blocked_s += time.monotonic() - t
                    continue
                except OSError as e:
                    self.t_closed = time.monotonic()
                    self.close_how = "send failed: %s" % (type(e).__name__,)
                    self.stop_reason = "closed"
                    break
                self.sent += n
                off = (off + n) % len(chunk)
            self.t_stop = time.monotonic()
            watch_end = self.t_start + self.watch_seconds
            while self.t_closed is None and not self._stop.is_set():
                st = tcp_state(sock)
                if st != "ESTABLISHED":
                    self.t_closed = time.monotonic()
                    self.close_how = "tcp state %s" % st
                    break
                if not server_holds(sock):
                    # closed by the server, its FIN queued behind data this
                    # client never reads: the client cannot see it
                    self.t_closed = time.monotonic()
                    self.close_how = "the server closed its socket (FIN behind unread data)"
                    break
                if time.monotonic() >= watch_end:
                    break
                time.sleep(0.05)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            self.error = e
        if self.t_stop is None:
            self.t_stop = time.monotonic()

    def close_code(self, timeout=3):
        """After the server ended the connection: read what is left for a
        close frame.  Its code, "eof" / "reset" when the TCP connection ended
        without one (or the kernel dropped it), "timeout"."""
        deadline = time.monotonic() + timeout
        raw = self.raw
        try:
            while time.monotonic() < deadline:
                f = raw.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
                if f is None:
                    return "reset" if raw.reset else "eof"
                if f.opcode == OP_CLOSE:
                    return struct.unpack("!H", f.payload[:2])[0] if len(f.payload) >= 2 else 1005
        except TimeoutError:
            return "timeout"
        except (HarnessError, OSError) as e:
            return "broken (%s)" % (e,)
        return "timeout"


class RssSampler:
    """Samples a process's VmRSS every interval seconds on a thread until
    stop(); samples: [(time.monotonic(), kB)]."""

    def __init__(self, pid, interval=0.1):
        self.pid = pid
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), proc_rss_kb(self.pid)))
            except (OSError, HarnessError):
                return
            self._stop.wait(self.interval)

    def stop(self, timeout=5):
        self._stop.set()
        self.thread.join(timeout)
        return self.samples

    @property
    def peak(self):
        return max((kb for _, kb in self.samples), default=None)
