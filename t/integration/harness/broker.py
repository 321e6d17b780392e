"""RabbitMQ: a node's address and rabbitmqctl (Broker), vhosts made ahead
in batches (VhostPool), one test's vhost (Vhost: queues, drain), a
publisher with confirms, and a node owned by one test (OwnBroker, started
with t/lib/broker.sh), optionally with a TLS listener (rabbit_tls_conf)."""

import json
import logging
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pika
import pika.exceptions

from .util import BROKER_SH, HarnessError, wait_until


logging.getLogger("pika").setLevel(logging.CRITICAL)


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


def publish_all(vhost, messages, errors=None, rate=None):
    """Publish messages, (routing key, body) pairs, through one Publisher
    (confirms) on this thread, at about rate a second (None: as fast as the
    broker confirms).  messages may be a generator: what it does after a
    yield runs once that message is confirmed.  An error ends the run and
    goes to errors (a list), or is raised when errors is None.  Returns how
    many were published."""
    n = 0
    try:
        p = Publisher(vhost)
        try:
            t0 = time.monotonic()
            for routing_key, body in messages:
                p.publish(routing_key, body)
                n += 1
                if rate:
                    ahead = n / rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
        finally:
            p.close()
    except Exception as e:  # noqa: BLE001 - reported by the caller
        if errors is None:
            raise
        errors.append(e)
    return n


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
