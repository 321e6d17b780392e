"""amqp_source = stream: message ids, and clients that come back with the
last id they saw get exactly what they missed (issue "Nothing missed").

Clients are python-websockets speaking the subprotocol notifyd.v2; the
publishers are pika.  Each test has its own vhost, hence its own stream."""

import json
import threading
import time
import urllib.parse

import pytest

import harness
from harness import recv_exact

V2 = ["notifyd.v2"]


def start_stream(start_notifyd, **kw):
    kw.setdefault("amqp_source", "stream")
    return start_notifyd(**kw)


def v2_url(d, user, since=None):
    url = d.ws_url(user)
    if since is not None:
        url += "&since=" + urllib.parse.quote(since, safe="")
    return url


def frames(client, n, timeout=10):
    return [json.loads(m) for m in client.recv_n(n, timeout)]


def frame(client, timeout=5):
    return json.loads(client.recv(timeout))


class Numbered:
    """Publishes {"n": i, "to": key} to user.<user> (and broadcasts every
    `every`-th one) at about `rate` per second from a thread, remembering
    the order in which the broker confirmed them."""

    def __init__(self, vhost, user, rate, every=0, prefix="live"):
        self.vhost, self.user, self.rate, self.every, self.prefix = vhost, user, rate, every, prefix
        self.sent = []
        self.stop = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        p = harness.Publisher(self.vhost)
        try:
            i = 0
            t0 = time.monotonic()
            while not self.stop.is_set() and i < 100000:
                key = "broadcast" if self.every and i % self.every == 0 else "user." + self.user
                body = json.dumps({"n": "%s-%d" % (self.prefix, i), "to": key}).encode()
                p.publish(key, body)
                self.sent.append(body)
                i += 1
                ahead = t0 + i / self.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            p.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)


def collect_until(client, want_bodies, timeout=30):
    """Take message frames until every body of want_bodies arrived (or the
    time is up); returns (bodies of message frames, other frames)."""
    got, other = [], []
    left = set(want_bodies)
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        try:
            f = frame(client, max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        if f.get("type") == "message":
            b = json.dumps(f["data"]).encode()
            got.append(b)
            left.discard(b)
        else:
            other.append(f)
    return got, other


def test_plain_client_sees_no_change_in_stream_mode(start_notifyd, ws_client, publisher):
    d = start_stream(start_notifyd)
    c = ws_client(d, "plain")
    body = b'{"user_id":"plain", "text":"caf\xc3\xa9 \\n"}'
    publisher.publish("user.plain", body)
    recv_exact(c, body)
    publisher.publish("broadcast", b'{"b":1}')
    recv_exact(c, b'{"b":1}')
    assert c.ws.subprotocol is None


def test_v2_client_gets_hello_then_messages_with_ids(start_notifyd, url_client, publisher):
    d = start_stream(start_notifyd)
    c = url_client(v2_url(d, "ann"), subprotocols=V2)
    assert c.ws.subprotocol == "notifyd.v2"
    hello = frame(c)
    assert hello["type"] == "hello" and isinstance(hello["id"], str) and hello["id"]
    bodies = [b'{"user_id":"ann","n":1}', b'{"n":2,"s":"line\\nbreak\\r\\n"}']
    publisher.publish("user.ann", bodies[0])
    publisher.publish("broadcast", bodies[1])
    raw = c.recv_n(2)
    ids = []
    for r, b in zip(raw, bodies):
        f = json.loads(r)
        assert f["type"] == "message"
        # The body is embedded byte for byte.
        assert r.encode().endswith(b'"data":' + b + b"}"), r
        ids.append(f["id"])
    assert len(set(ids + [hello["id"]])) == 3
    o = [int(i.split("-")[0]) for i in [hello["id"]] + ids]
    assert o == sorted(o), "ids follow the stream order: %r" % o


def test_since_without_v2_is_refused(start_notifyd):
    d = start_stream(start_notifyd)
    status, _h, body = harness.http_request(d.port, "GET", "/ws?userId=x&since=1-00000000", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert status == 400 and b"notifyd.v2" in body


def _blip(d_first, d_second, url_client, vhost, publisher, user, note):
    """The issue's blip: miss 200 messages and 20 broadcasts, come back
    while a publisher keeps going at ~1,000/s; exactly the missed ones in
    order, then the live ones."""
    c = url_client(v2_url(d_first, user), subprotocols=V2)
    last = frame(c)["id"]
    publisher.publish("user." + user, b'{"warmup":1}')
    f = frame(c)
    assert f["type"] == "message"
    last = f["id"]
    c.close()
    missed = []
    for i in range(220):
        key = "broadcast" if i % 11 == 0 else "user." + user
        body = json.dumps({"missed": i, "to": key}).encode()
        missed.append(body)
        publisher.publish(key, body)
        if i % 20 == 0:
            publisher.publish("user.someone-else", b'{"not":"yours"}')
    with Numbered(vhost, user, 1000, every=10) as live:
        time.sleep(0.3)
        c2 = url_client(v2_url(d_second, user, since=last), subprotocols=V2)
        time.sleep(1.0)
    assert live.error is None, live.error
    want = missed + live.sent
    got, other = collect_until(c2, want, timeout=30)
    rec = [o for o in other if o.get("type") == "recovered"]
    assert len(rec) == 1 and rec[0]["recovered"] is True, other
    assert got == want, "first difference at %d of %d/%d" % (
        next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want))),
        len(got), len(want))
    assert rec[0]["count"] >= len(missed)
    note("%d missed + %d live (%d replayed before the seam) in order, none twice" % (
        len(missed), len(live.sent), rec[0]["count"]))


def test_blip_resume_gets_exactly_what_was_missed(start_notifyd, url_client, vhost, publisher, note):
    d = start_stream(start_notifyd)
    _blip(d, d, url_client, vhost, publisher, "blip", note)


def test_resume_on_another_instance(start_notifyd, url_client, vhost, publisher, note):
    a = start_stream(start_notifyd, name="a")
    b = start_stream(start_notifyd, name="b")
    _blip(a, b, url_client, vhost, publisher, "mover", note)


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_restart_received_and_recovered_is_everything(start_notifyd, url_client, vhost, how, note):
    d = start_stream(start_notifyd)
    user = "restart-" + how
    c = url_client(v2_url(d, user), subprotocols=V2)
    last = frame(c)["id"]
    received = []
    with Numbered(vhost, user, 500, every=7) as pub:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                f = frame(c, 0.2)
            except (TimeoutError, harness.ConnectionClosed):
                break
            if f["type"] == "message":
                received.append(json.dumps(f["data"]).encode())
                last = f["id"]
        if how == "kill9":
            d.kill9()
        else:
            d.stop()
        # Whatever was already in the client's buffer counts as received.
        for m in c.pending():
            f = json.loads(m)
            if f["type"] == "message":
                received.append(json.dumps(f["data"]).encode())
                last = f["id"]
        time.sleep(0.5)
        d.start()
        c2 = url_client(v2_url(d, user, since=last), subprotocols=V2)
        time.sleep(1.0)
    assert pub.error is None, pub.error
    got, other = collect_until(c2, pub.sent, timeout=30)
    rec = [o for o in other if o.get("type") == "recovered"]
    assert rec and rec[0]["recovered"] is True, other
    everything = received + got
    assert everything == pub.sent, "received %d + recovered/live %d != published %d" % (
        len(received), len(got), len(pub.sent))
    note("%s: %d received before, %d replayed, %d after; union = all %d, in order" % (
        how, len(received), rec[0]["count"], len(got) - rec[0]["count"], len(pub.sent)))


@pytest.mark.parametrize("since,reason", [
    ("garbage", "malformed"),
    ("12-zzzzzzzz", "malformed"),
    ("999999999-00000000", "unknown_epoch"),
])
def test_unusable_id_says_not_recovered_then_goes_live(start_notifyd, url_client, publisher, since, reason):
    d = start_stream(start_notifyd)
    c = url_client(v2_url(d, "bad", since=since), subprotocols=V2)
    t0 = time.monotonic()
    f = frame(c, timeout=15)
    waited = time.monotonic() - t0
    assert f["type"] == "recovered" and f["recovered"] is False and f["reason"] == reason, f
    if reason == "unknown_epoch":
        # An id beyond what this instance has read may come from one that
        # read further: it waits (5 s) for it before calling it foreign.
        assert 4.5 <= waited < 10, waited
    else:
        assert waited < 2, waited
    assert f["id"]
    publisher.publish("user.bad", b'{"after":1}')
    f = frame(c)
    assert f["type"] == "message" and f["data"] == {"after": 1}
    assert c.open


def test_id_of_another_stream_life_is_unknown_epoch(start_notifyd, url_client, publisher):
    d = start_stream(start_notifyd)
    c = url_client(v2_url(d, "ep"), subprotocols=V2)
    frame(c)
    publisher.publish("user.ep", b'{"x":1}')
    good = frame(c)["id"]
    off, check = good.split("-")
    forged = "%s-%08x" % (off, (int(check, 16) + 1) % (1 << 32))
    c2 = url_client(v2_url(d, "ep", since=forged), subprotocols=V2)
    f = frame(c2)
    assert f["recovered"] is False and f["reason"] == "unknown_epoch", f
    # Another user's message id is not this user's to resume from.
    c3 = url_client(v2_url(d, "not-ep", since=good), subprotocols=V2)
    f = frame(c3)
    assert f["recovered"] is False and f["reason"] == "unknown_epoch", f


def test_evicted_id_is_too_old(start_notifyd, url_client, publisher):
    d = start_stream(start_notifyd, history_max_bytes="8k")
    c = url_client(v2_url(d, "old"), subprotocols=V2)
    frame(c)
    publisher.publish("user.old", b'{"first":1}')
    first = frame(c)["id"]
    for i in range(200):
        publisher.publish("user.other", json.dumps({"pad": "x" * 100, "i": i}).encode())
    publisher.publish("user.old", b'{"last":1}')
    assert frame(c)["data"] == {"last": 1}
    c2 = url_client(v2_url(d, "old", since=first), subprotocols=V2)
    f = frame(c2)
    assert f["recovered"] is False and f["reason"] == "too_old", f
    publisher.publish("user.old", b'{"live":1}')
    assert frame(c2)["data"] == {"live": 1}


def test_restart_does_not_deliver_old_messages_live_again(start_notifyd, ws_client, publisher):
    d = start_stream(start_notifyd)
    for i in range(20):
        publisher.publish("user.fresh", json.dumps({"old": i}).encode())
    d.stop()
    d.start()
    c = ws_client(d, "fresh")
    c.expect_nothing(1.0)
    publisher.publish("user.fresh", b'{"new":1}')
    recv_exact(c, b'{"new":1}')


def test_queue_mode_v2_has_no_ids_and_says_unavailable(start_notifyd, url_client, ws_client, publisher):
    d = start_notifyd()
    c = url_client(v2_url(d, "q"), subprotocols=V2)
    assert frame(c) == {"type": "hello"}
    publisher.publish("user.q", b'{"q":1}')
    assert c.recv() == '{"type":"message","data":{"q":1}}'
    c2 = url_client(v2_url(d, "q", since="1-00000000"), subprotocols=V2)
    f = frame(c2)
    assert f == {"type": "recovered", "recovered": False, "reason": "unavailable"}
    plain = ws_client(d, "q")
    publisher.publish("user.q", b'{"q":2}')
    recv_exact(plain, b'{"q":2}')


def test_recovery_metrics(start_notifyd, url_client, publisher):
    d = start_stream(start_notifyd)
    url_client(v2_url(d, "m", since="garbage"), subprotocols=V2)
    publisher.publish("user.m", b'{"m":1}')
    harness.wait_metric(d.port, "notifyd_recoveries_total", lambda v: v == 1, outcome="malformed")
    harness.wait_metric(d.port, "notifyd_history_messages", lambda v: v is not None and v >= 2)
    assert harness.get_metrics(d.port).value("notifyd_history_bytes") > 0


def test_invalid_message_in_stream_is_skipped_and_counted(start_notifyd, ws_client, publisher):
    """A stream has no reject (the broker would close the channel): an
    invalid message is acked as credit, counted, and the next one flows."""
    d = start_stream(start_notifyd)
    c = ws_client(d, "inv")
    publisher.publish("user.inv", b"not json")
    publisher.publish("user.inv", b'{"ok":1}')
    recv_exact(c, b'{"ok":1}')
    harness.wait_metric(d.port, "notifyd_messages_rejected_total", lambda v: v == 1, reason="not_json")
    assert harness.get_metrics(d.port).value("notifyd_broker_reconnects_total") == 0


def test_stream_declared_before_with_other_arguments_is_used(start_notifyd, ws_client, publisher, vhost):
    conn = vhost.connection()
    try:
        conn.channel().queue_declare("notifications.log", durable=True,
                                     arguments={"x-queue-type": "stream", "x-max-age": "7D"})
    finally:
        conn.close()
    d = start_stream(start_notifyd)
    assert harness.log_lines_matching(d, "queue_arguments_differ")
    c = ws_client(d, "old")
    publisher.publish("user.old", b'{"x":1}')
    recv_exact(c, b'{"x":1}')
