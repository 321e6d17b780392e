"""GET /health, GET /metrics, broker connection states."""

import json
import re
import time

import pytest

import harness
from harness import recv_exact


def find_key(obj, pred, path=""):
    """Paths of keys in nested JSON for which pred(key) is true."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = path + "." + k if path else k
            if pred(k):
                out.append((p, v))
            out += find_key(v, pred, p)
    return out


def test_health_while_consuming(notifyd, ws_client):
    st, hdr, body = harness.http_get(notifyd.port, "/health")
    assert st == 200, (st, body)
    assert "json" in hdr.get("content-type", "").lower(), hdr
    h = json.loads(body)
    assert isinstance(h, dict)
    assert isinstance(h.get("broker"), dict) and h["broker"].get("state") == "consuming", h
    assert find_key(h, lambda k: "connection" in k.lower()), "no connection count in %r" % h
    assert find_key(h, lambda k: "uptime" in k.lower()), "no uptime in %r" % h
    # the connection count follows the clients
    clients = [ws_client(notifyd, 50 + i) for i in range(3)]
    st, h2 = notifyd.health()
    assert st == 200
    counts = [v for p, v in find_key(h2, lambda k: k.lower() in ("connections", "websocket_connections",
                                                                 "ws_connections", "open", "current",
                                                                 "active"))
              if isinstance(v, int) and not isinstance(v, bool)]
    if counts:
        assert 3 in counts, "3 clients connected, /health says %r" % h2
    for c in clients:
        c.close()


def test_health_503_when_broker_unreachable(start_notifyd, note):
    dead = "amqp://guest:guest@127.0.0.1:%d/" % harness.free_port()
    d = start_notifyd(wait=False, amqp_url=dead, amqp_reconnect_min="100ms",
                      amqp_reconnect_max="1s")
    deadline = time.monotonic() + 10
    answer = None
    while time.monotonic() < deadline:
        assert d.running(), "notifyd exited when the broker was unreachable:\n" + d.log_tail(20)
        try:
            answer = harness.http_get(d.port, "/health", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    assert answer is not None, "the HTTP listener never came up without a broker"
    st, hdr, body = answer
    assert st == 503, (st, body)
    # it keeps trying, and keeps answering
    time.sleep(1.5)
    assert d.running(), "notifyd gave up:\n" + d.log_tail(20)
    st, hdr, body = harness.http_get(d.port, "/health", timeout=2)
    assert st == 503, (st, body)
    note("health without broker: %s" % body[:200])


def test_metrics_exposition_format(notifyd, ws_client, publisher):
    c = ws_client(notifyd, 55)
    publisher.publish("user.55", b'{"title":"count me"}')
    recv_exact(c, b'{"title":"count me"}')
    st, hdr, body = harness.http_get(notifyd.port, "/metrics")
    assert st == 200, (st, body[:300])
    assert hdr.get("content-type", "").startswith("text/plain"), hdr
    text = body.decode("utf-8")
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})?'
                        r' [-+]?([0-9.eE+-]+|NaN|Inf)( -?\d+)?$')
    samples = 0
    for line in text.splitlines():
        if not line or line.startswith("#"):
            assert not line.startswith("# TYPE") or re.match(
                r"# TYPE \S+ (counter|gauge|histogram|summary|untyped)$", line), line
            continue
        assert sample.match(line), "not a Prometheus sample line: %r" % line
        samples += 1
    assert samples > 0, "no samples in /metrics"


@pytest.mark.needs_ctl
def test_vhost_name_needing_url_encoding(session, start_notifyd, ws_client, note):
    """amqp_url carries the vhost percent-encoded ('/' and ' ' in the name)."""
    name = "notifyd it/special vhost %d" % session.next_id()
    session.broker.add_vhost(name)
    try:
        v = harness.Vhost(session.broker, name)
        assert "%2F" in v.url and "%20" in v.url, v.url
        d = start_notifyd(amqp_url=v.url)
        c = ws_client(d, 56)
        p = harness.Publisher(v)
        try:
            p.publish("user.56", b'{"title":"odd vhost"}')
        finally:
            p.close()
        recv_exact(c, b'{"title":"odd vhost"}')
        assert d.queue in session.broker.list_queues(name)
        d.stop()
    finally:
        session.broker.delete_vhost(name)


@pytest.mark.needs_ctl
@pytest.mark.deadline(90)
def test_broker_connection_lost_and_regained(notifyd, ws_client, vhost, session, note):
    """Broker closes notifyd's connection: clients stay connected, notifyd
    reconnects (health 503 meanwhile, 200 again after) and delivers again."""
    c = ws_client(notifyd, 57)
    session.broker.ctl("close_all_connections", "-p", vhost.name, "integration test")
    t0 = time.monotonic()
    seen = []

    def back():
        st, body = notifyd.health(timeout=1)
        seen.append(st)
        return st == 200 and isinstance(body, dict) and body.get("broker", {}).get("state") == "consuming"
    time.sleep(0.2)  # let it notice
    harness.wait_until(back, 20, 0.05, "notifyd to consume again after the broker closed its connection")
    note("back to consuming after %.2fs; health statuses seen: %s" % (
        time.monotonic() - t0, sorted(set(seen))))
    assert c.open, "client was disconnected when the broker connection dropped"
    p = harness.Publisher(vhost)
    try:
        p.publish("user.57", b'{"title":"after reconnect"}')
    finally:
        p.close()
    recv_exact(c, b'{"title":"after reconnect"}', timeout=5)
    vhost.wait_queue_empty(notifyd.queue, timeout=10)
    assert vhost.queue_counts(notifyd.queue)[2] == 1, "not exactly one consumer after reconnecting"
