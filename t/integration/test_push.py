"""POST /push: publishing over HTTP with publisher confirms."""

import json
import time

import pytest

import harness
from harness import push, recv_exact

K1 = harness.PUSH_KEY  # push()'s default key
K2 = "test-push-key-0002"
KEYS = "%s, %s" % (K1, K2)


def push_daemon(start_notifyd, **kw):
    cfg = dict(push_keys=KEYS, push_max_body="4k", push_max_batch="5", max_message_size="1k")
    cfg.update(kw)
    return start_notifyd(**cfg)


def json_error(a):
    ctype = a.headers.get("content-type", "")
    assert "json" in ctype.lower(), "error answer is not JSON (Content-Type %r): %r" % (ctype, a)
    try:
        j = a.json()
    except ValueError:
        pytest.fail("error body is not JSON: %r" % (a,))
    assert isinstance(j, dict) and isinstance(j.get("error"), str) and j["error"], a
    return j


def expect_202(a, count):
    assert a.status == 202, a
    j = a.json()
    assert j.get("status") == "queued" and j.get("count") == count, a


def test_push_single_is_delivered_byte_for_byte(start_notifyd, ws_client):
    d = push_daemon(start_notifyd)
    c3 = ws_client(d, 3)
    c4 = ws_client(d, 4)
    # odd spacing, key order and escapes, whitespace around: the published
    # body is the request body trimmed, byte for byte
    inner = b'{ "message":"caf\\u00e9 \xc3\xa9\\n",  "user_id" : "3","n":1.50 ,"z":[1, {}]}'
    a = push(d.port, b" \r\n\t" + inner + b"\n\n ")
    expect_202(a, 1)
    assert "json" in a.headers.get("content-type", ""), a
    recv_exact(c3, inner)
    # the second key of the list works as well, and an integer user_id
    inner2 = b'{"user_id":3,"title":"with k2"}'
    expect_202(push(d.port, inner2, key=K2), 1)
    recv_exact(c3, inner2)
    c4.expect_nothing(0.5)
    c3.expect_nothing(0.2)


def test_push_broadcast(start_notifyd, ws_client):
    d = push_daemon(start_notifyd)
    clients = [ws_client(d, u) for u in (1, 2, 2, "bob")]
    body = b'{"broadcast":true,"message":"to everyone"}'
    expect_202(push(d.port, body), 1)
    for c in clients:
        recv_exact(c, body)
        c.expect_nothing(0.2)


def test_push_batch_delivers_every_item_in_order(start_notifyd, ws_client):
    d = push_daemon(start_notifyd)
    c3 = ws_client(d, 3)
    c9 = ws_client(d, 9)
    items = [{"user_id": "3", "seq": 0, "message": "first"},
             {"user_id": "9", "seq": 1},
             {"broadcast": True, "seq": 2, "message": "all"},
             {"user_id": 3, "seq": 3, "message": "d\u00e9j\u00e0"},
             {"user_id": "3", "seq": 4}]
    a = push(d.port, json.dumps(items))
    expect_202(a, 5)
    got3 = [json.loads(m) for m in c3.recv_n(4, timeout=10)]
    got9 = [json.loads(m) for m in c9.recv_n(2, timeout=10)]
    assert got3 == [items[0], items[2], items[3], items[4]], got3
    assert got9 == [items[1], items[2]], got9
    c3.expect_nothing(0.5)
    c9.expect_nothing(0.1)
    # a batch at push_max_batch is fine
    expect_202(push(d.port, [{"user_id": "9", "k": i} for i in range(5)]), 5)
    assert [json.loads(m)["k"] for m in c9.recv_n(5)] == list(range(5))


def test_push_auth_401(start_notifyd, ws_client):
    # eight failures in a row: without the failure limit (test_hardening.py
    # has it), each gets its own 401
    d = push_daemon(start_notifyd, push_auth_fail_rate="0")
    c = ws_client(d, 3)
    body = b'{"user_id":"3","message":"must not arrive"}'
    cases = [("wrong key", dict(key="test-push-key-0003")),
             ("key prefix", dict(key=K1[:-1])),
             ("key with suffix", dict(key=K1 + "x")),
             ("list as key", dict(key=KEYS)),
             ("missing header", dict(key=None)),
             ("Basic scheme", dict(auth="Basic azE6")),
             ("Basic with the key", dict(auth="Basic " + K1)),
             ("empty Bearer", dict(auth="Bearer "))]
    for what, kw in cases:
        a = push(d.port, body, **kw)
        assert a.status == 401, "%s: %r" % (what, a)
        json_error(a)
        www = a.headers.get("www-authenticate", "")
        assert www.lower().startswith("bearer"), "%s: WWW-Authenticate %r" % (what, www)
    c.expect_nothing(0.5)


def test_push_disabled_403_and_get_405(start_notifyd, ws_client):
    d = start_notifyd()  # no push_keys
    c = ws_client(d, 3)
    a = push(d.port, b'{"user_id":"3"}', key="anything")
    assert a.status == 403, a
    json_error(a)
    a = push(d.port, b'{"user_id":"3"}', key=None)
    assert a.status == 403, a
    c.expect_nothing(0.3)
    e = push_daemon(start_notifyd)
    for method in ("GET", "PUT", "DELETE"):
        a = push(e.port, b"" if method != "PUT" else b'{"user_id":"3"}', method=method)
        assert a.status == 405, "%s /push: %r" % (method, a)
        json_error(a)


def test_push_too_large_413(start_notifyd, ws_client):
    d = push_daemon(start_notifyd)  # push_max_body 4k, batch 5, max_message_size 1k
    c = ws_client(d, 3)
    pad = "x" * 5000
    cases = [
        ("body over push_max_body", json.dumps({"user_id": "3", "pad": pad})),
        ("batch over push_max_batch", json.dumps([{"user_id": "3", "n": i} for i in range(6)])),
        ("item over max_message_size", json.dumps({"user_id": "3", "pad": "y" * 1100})),
        ("batch item over max_message_size",
         json.dumps([{"user_id": "3", "n": 0}, {"user_id": "3", "pad": "y" * 1100}])),
    ]
    for what, body in cases:
        a = push(d.port, body)
        assert a.status == 413, "%s: %r" % (what, a)
        json_error(a)
    # just under the limits is fine
    ok = json.dumps({"user_id": "3", "pad": "z" * 900})
    expect_202(push(d.port, ok), 1)
    recv_exact(c, ok.encode())
    c.expect_nothing(0.5)


BAD_400 = [
    ("not JSON", b"hello"),
    ("truncated JSON", b'{"user_id":"3"'),
    ("trailing garbage", b'{"user_id":"3"} x'),
    ("not UTF-8", b'{"user_id":"3","m":"\xff\xfe"}'),
    ("empty body", b""),
    ("JSON string", b'"just a string"'),
    ("no target", b'{"message":"to nobody"}'),
    ("broadcast false", b'{"broadcast":false,"message":"x"}'),
    ("empty user_id", b'{"user_id":"","message":"x"}'),
    ("user_id with a dot", b'{"user_id":"a.b","message":"x"}'),
    ("user_id an object", b'{"user_id":{"id":3}}'),
    ("empty array", b"[]"),
    ("array with a non-object", b'[{"user_id":"3","n":1}, 5]'),
    ("array with an item without target", b'[{"user_id":"3","n":1}, {"n":2}]'),
]


def test_push_bad_request_400(start_notifyd, ws_client):
    d = push_daemon(start_notifyd)
    c = ws_client(d, 3)
    for what, body in BAD_400:
        a = push(d.port, body)
        assert a.status == 400, "%s: %r" % (what, a)
        json_error(a)
    # nothing of a refused batch was published, not even its good first item
    c.expect_nothing(0.7)
    good = b'{"user_id":"3","message":"after the bad ones"}'
    expect_202(push(d.port, good), 1)
    recv_exact(c, good)


@pytest.mark.deadline(150)
def test_push_503_while_broker_down_and_recovery(spare_broker, start_notifyd, ws_client, note):
    """A broker the test owns (the run's spare node, not the one the other
    tests use) is stopped: /push answers 503 promptly, /health says why;
    started again on the same port, both recover without a restart of
    notifyd."""
    b = spare_broker
    push_timeout = 2.0
    d = start_notifyd(amqp_url=b.url, push_keys=KEYS, push_timeout="2s",
                      amqp_reconnect_min="100ms", amqp_reconnect_max="1s", amqp_heartbeat="2s")
    c = ws_client(d, 3)
    first = b'{"user_id":"3","message":"broker up"}'
    expect_202(push(d.port, first), 1)
    recv_exact(c, first)

    assert b.stop(), "broker.sh stop failed"
    t_stop = time.monotonic()
    # /health: 503, state reconnecting (or connecting), a last_error
    seen = {}

    def health_down():
        st, h = d.health(timeout=2)
        seen["last"] = (st, h)
        return st == 503 and isinstance(h, dict) and h.get("broker", {}).get("last_error")
    harness.wait_until(health_down, 15, 0.1, "/health to report the broker down")
    st, h = seen["last"]
    assert h["broker"]["state"] in ("reconnecting", "connecting"), h
    assert isinstance(h["broker"]["last_error"], str), h
    note("health while the broker is down (%.1fs after stop): %s" % (time.monotonic() - t_stop,
                                                                      json.dumps(h)[:300]))
    # /push: 503 JSON, within push_timeout + 1 s, several times over
    for i in range(3):
        a = push(d.port, {"user_id": "3", "message": "while down %d" % i}, timeout=push_timeout + 5)
        assert a.status == 503, a
        json_error(a)
        assert a.took < push_timeout + 1, "503 took %.2fs (push_timeout %.0fs)" % (a.took, push_timeout)
    assert c.open, "the client was disconnected when the broker went away"
    assert d.running()

    b.start()  # same port
    t_start = time.monotonic()
    d.wait_ready(30)
    st, h = d.health()
    assert st == 200 and h["broker"]["state"] == "consuming", h
    note("consuming again %.1fs after the broker restarted; health %s" % (
        time.monotonic() - t_start, json.dumps(h)[:200]))

    # the publishing connection comes back too (allow it a few seconds)
    after = b'{"user_id":"3","message":"broker back"}'
    deadline = time.monotonic() + 15
    statuses = []
    while True:
        a = push(d.port, after, timeout=push_timeout + 5)
        statuses.append(a.status)
        if a.status == 202 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert a.status == 202, "push still failing after the broker came back: %r (seen %r)" % (a, statuses)
    recv_exact(c, after, timeout=10)
    assert c.open
