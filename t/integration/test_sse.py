"""GET /sse: the same notifications as /ws as a text/event-stream, read
here byte by byte from a raw socket and through a parser written from the
HTML standard's EventSource algorithm (the browser itself is in
test_sse_browser.py)."""

import json
import os
import socket
import threading
import time
import urllib.parse

import pytest

import harness
from test_auth_jwt import claims, hs_daemon, token

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class SSE:
    """A raw-socket SSE client: sends the request, checks the head, and
    parses events as EventSource does (lines end at CRLF, CR or LF; data
    lines joined with LF; an event without data only moves the last id)."""

    def __init__(self, port, path, headers=(), rcvbuf=None, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n" % (path, port)
        req += "".join("%s: %s\r\n" % h for h in headers) + "\r\n"
        self.sock.sendall(req.encode())
        self.buf = b""
        self.raw = b""
        self.status, self.headers, self.body = None, {}, b""
        self.last_id = ""
        self.retry = None
        self.comments = 0
        self.hello = None       # the "hello" event, skipped by event()
        self._data, self._event = [], ""
        self.eof = False

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            b = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            b = b""
        if not b:
            self.eof = True
            return False
        self.raw += b
        self.buf += b
        return True

    def head(self, timeout=5):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if self.eof or time.monotonic() > deadline:
                raise AssertionError("no response head: %r" % self.buf[:300])
            self._fill(0.2)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        return self.status

    def _line(self):
        for i, c in enumerate(self.buf):
            if c in (10, 13):
                if c == 13 and i + 1 == len(self.buf):
                    return None         # CR at the end: maybe CRLF
                line = self.buf[:i]
                skip = 2 if c == 13 and self.buf[i + 1:i + 2] == b"\n" else 1
                self.buf = self.buf[i + skip:]
                return line.decode("utf-8")
        return None

    def event(self, timeout=5):
        """The next dispatched event as (type, data, last_id)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._line()
            if line is None:
                if self.eof:
                    raise EOFError("stream ended")
                if time.monotonic() > deadline:
                    raise TimeoutError("no event within %.1fs" % timeout)
                self._fill(0.2)
                continue
            if line == "":
                if not self._data:
                    self._event = ""
                    continue
                ev = (self._event or "message", "\n".join(self._data), self.last_id)
                self._data, self._event = [], ""
                if ev[0] == "hello" and self.hello is None:
                    self.hello = json.loads(ev[1])
                    continue
                return ev
            if line.startswith(":"):
                self.comments += 1
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                self._data.append(value)
            elif name == "id":
                self.last_id = value
            elif name == "event":
                self._event = value
            elif name == "retry":
                self.retry = int(value)

    def events(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        return [self.event(max(0.1, deadline - time.monotonic())) for _ in range(n)]

    def wait_eof(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self._fill(0.2)
        return self.eof

    def close(self):
        self.sock.close()


def sse_path(user, **q):
    q = dict(q, userId=user)
    return "/sse?" + urllib.parse.urlencode(q)


@pytest.fixture
def sse_client():
    made = []

    def factory(port, path, **kw):
        c = SSE(port, path, **kw)
        made.append(c)
        return c
    yield factory
    for c in made:
        c.close()


def test_sse_delivers_bodies_with_ids(start_notifyd, publisher, sse_client):
    d = start_notifyd(amqp_source="stream")
    c = sse_client(d.port, sse_path("s1"))
    assert c.head() == 200
    assert c.headers["content-type"] == "text/event-stream"
    assert c.headers["cache-control"] == "no-cache"
    assert c.headers["connection"] == "close" and "transfer-encoding" not in c.headers
    bodies = [b'{"user_id":"s1","a":"x\\ny"}',
              b'{"n":2,\n "lf":true}',
              b'{"n":3,\r\n "crlf":true}',
              '{"n":4,"t":"caf\u00e9 \u2603"}'.encode()]
    publisher.publish("user.s1", bodies[0])
    publisher.publish("broadcast", bodies[1])
    publisher.publish("user.s1", bodies[2])
    publisher.publish("user.s1", bodies[3])
    evs = c.events(4)
    assert c.retry == 2000
    assert c.hello["type"] == "hello" and c.hello["id"], "a fresh stream starts where live delivery does"
    assert [e[0] for e in evs] == ["message"] * 4
    assert evs[0][1].encode() == bodies[0]
    assert evs[1][1].encode() == bodies[1], "a line feed between tokens comes back"
    assert evs[2][1].encode() == bodies[2].replace(b"\r\n", b"\n"), "CRLF between tokens comes back as LF"
    assert evs[3][1].encode() == bodies[3]
    assert b'data: {"n":2,\ndata:  "lf":true}\n' in c.raw, c.raw
    ids = [e[2] for e in evs]
    assert all(ids) and len(set(ids)) == 4


def test_sse_keepalive_comments(start_notifyd, sse_client):
    d = start_notifyd(amqp_source="stream", ws_ping_interval="1s", ws_pong_timeout="500ms")
    c = sse_client(d.port, sse_path("ka"))
    assert c.head() == 200
    t0 = time.monotonic()
    while c.comments < 2 and time.monotonic() - t0 < 5:
        try:
            c.event(0.5)
        except TimeoutError:
            pass
    assert c.comments >= 2, c.raw
    assert not c.eof, "an SSE client sends no pongs and must not be dropped for it"
    c.close()
    harness.wait_until(lambda: "event=sse_close" in d.log_text(), 5, what="an sse_close line")
    line = [l for l in d.log_text().splitlines() if "event=sse_close" in l][0]
    assert 'user="ka"' in line and "event=ws_close" not in d.log_text(), line


def test_sse_resumes_with_last_event_id_after_restart(start_notifyd, publisher, sse_client, note):
    d = start_notifyd(amqp_source="stream")
    c = sse_client(d.port, sse_path("r1"))
    c.head()
    for i in range(3):
        publisher.publish("user.r1", json.dumps({"i": i}).encode())
    got = [json.loads(e[1])["i"] for e in c.events(3)]
    last = c.last_id
    d.stop()
    assert c.wait_eof(10), "the stream ends when the server stops"
    for i in range(3, 8):
        publisher.publish("user.r1" if i % 2 else "broadcast", json.dumps({"i": i}).encode())
    d.start()
    c2 = sse_client(d.port, sse_path("r1"), headers=[("Last-Event-ID", last)])
    c2.head()
    evs = c2.events(6)
    got += [json.loads(e[1])["i"] for e in evs[:5]]
    assert got == list(range(8)), got
    assert evs[5][0] == "recovered"
    rec = json.loads(evs[5][1])
    assert rec["recovered"] is True and rec["count"] == 5 and rec["id"] == evs[5][2]
    publisher.publish("user.r1", b'{"i":8}')
    assert json.loads(c2.event()[1]) == {"i": 8}
    note("Last-Event-ID after a restart: 5 missed, replayed in order, then live")


def test_sse_resume_on_another_instance_with_query_id(start_notifyd, publisher, sse_client):
    a = start_notifyd(name="a", amqp_source="stream")
    b = start_notifyd(name="b", amqp_source="stream")
    c = sse_client(a.port, sse_path("mv"))
    c.head()
    publisher.publish("user.mv", b'{"i":0}')
    c.events(1)
    last = c.last_id
    c.close()
    for i in range(1, 4):
        publisher.publish("user.mv", json.dumps({"i": i}).encode())
    c2 = sse_client(b.port, sse_path("mv", last_event_id=last))
    c2.head()
    evs = c2.events(4)
    # B may not have read all three yet: what it has is replayed, the rest
    # follows live after "recovered"; together, in order, once each.
    assert [json.loads(e[1]) for e in evs if e[0] == "message"] == [{"i": 1}, {"i": 2}, {"i": 3}], evs
    rec = [json.loads(e[1]) for e in evs if e[0] == "recovered"]
    assert len(rec) == 1 and rec[0]["recovered"] is True, evs


def test_sse_not_recovered_is_an_event_then_live(start_notifyd, publisher, sse_client):
    d = start_notifyd(amqp_source="stream")
    c = sse_client(d.port, sse_path("nr"), headers=[("Last-Event-ID", "99999-00000000")])
    c.head()
    ev = c.event(timeout=15)     # an id from the future is waited for (5 s) first
    assert ev[0] == "recovered"
    rec = json.loads(ev[1])
    assert rec["recovered"] is False and rec["reason"] == "unknown_epoch", rec
    publisher.publish("user.nr", b'{"live":1}')
    assert c.event()[1] == '{"live":1}'


def test_sse_queue_mode_has_no_ids(start_notifyd, publisher, sse_client):
    d = start_notifyd()
    c = sse_client(d.port, sse_path("q"))
    c.head()
    publisher.publish("user.q", b'{"q":1}')
    ev = c.event()
    assert ev == ("message", '{"q":1}', "")
    assert c.hello == {"type": "hello"}
    assert b"id:" not in c.raw


def test_sse_slow_reader_is_closed(start_notifyd, publisher, sse_client, note):
    # A queue larger than the whole burst and 3 s of age: the fast reader
    # (a Python thread, which may stall on a busy or sanitized box) is never
    # slow, the one that does not read is caught by the age of its bytes.
    d = start_notifyd(amqp_source="stream", ws_send_queue_max="64M", ws_send_timeout="3s")
    slow = sse_client(d.port, sse_path("slow"), rcvbuf=4096)
    slow.head()
    fast = sse_client(d.port, sse_path("fast"))
    fast.head()
    big = json.dumps({"pad": "x" * 30000}).encode()
    got = []
    reader = threading.Thread(target=lambda: got.extend(fast.events(300, timeout=90)), daemon=True)
    reader.start()
    t0 = time.monotonic()
    # More than the kernel's socket buffers take (loopback grows them to
    # megabytes) before notifyd's own queue starts to fill.
    for _ in range(300):
        publisher.publish("broadcast", big)
    reader.join(90)
    assert len(got) == 300, "a slow reader held up another client (%d of 300)" % len(got)
    harness.wait_metric(d.port, "notifyd_slow_client_disconnects_total", lambda v: v >= 1, timeout=15)
    note("SSE reader that does not read closed after %.1fs; another got all 300" % (time.monotonic() - t0))


def test_sse_auth_and_origin_refused_before_any_event(start_notifyd, sse_client):
    d = hs_daemon(start_notifyd, amqp_source="stream", allowed_origins="https://app.example")
    c = sse_client(d.port, "/sse", headers=[("Origin", "https://app.example")])
    assert c.head() == 401 and b"event" not in c.buf
    assert c.headers.get("access-control-allow-origin") == "https://app.example", \
        "an allowed page can read why it was refused"
    assert "error" in json.loads(c.buf.split(b"\n")[-1] or b"{}") or c.buf
    c = sse_client(d.port, "/sse?token=not.a.token")
    assert c.head() == 401
    good = token(claims(sub="7"))
    c = sse_client(d.port, "/sse?token=" + good, headers=[("Origin", "https://evil.example")])
    assert c.head() == 403 and "access-control-allow-origin" not in c.headers
    c = sse_client(d.port, "/sse?token=" + good, headers=[("Origin", "https://app.example")])
    assert c.head() == 200
    assert c.headers.get("access-control-allow-origin") == "https://app.example"
    assert c.headers.get("vary") == "Origin"
    st, hdr, body = harness.http_request(d.port, "POST", "/sse?token=" + good)
    assert st == 405 and hdr.get("allow") == "GET"


def test_notifyd_js_is_served(notifyd):
    st, hdr, body = harness.http_get(notifyd.port, "/notifyd.js")
    assert st == 200 and hdr["content-type"].startswith("text/javascript")
    assert hdr.get("access-control-allow-origin") == "*"
    with open(os.path.join(TOP, "www", "notifyd.js"), "rb") as f:
        assert body == f.read(), "the served client is www/notifyd.js byte for byte"
