"""Sessions under control (issue 14): disconnect a user on every instance,
bans and revocations, presence over the broker, and events to the backend
(online, offline, undelivered).  Two notifyd instances on one broker, each
with its own queue; python-websockets and raw sockets as clients."""

import json
import time
import urllib.parse

import pytest

import harness
from test_auth_jwt import SECRET, claims, token
from test_sse import SSE, sse_path

ADMIN = "admin-key-0123456789abcdef"
AUTH = {"Authorization": "Bearer " + ADMIN}


def two(start_notifyd, queue_name, **cfg):
    base = dict(admin_keys=ADMIN, control_heartbeat="300ms", presence_timeout="700ms")
    base.update(cfg)
    a = start_notifyd(name="a", instance_name="a", **base)
    b = start_notifyd(name="b", instance_name="b", queue_name=queue_name + "-b", **base)
    wait_instances(a, 2)
    wait_instances(b, 2)
    return a, b


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<HTTP %d %r>" % (self.status, self.body[:300])


def request(port, method, path, headers=None, body=None):
    return Resp(*harness.http_request(port, method, path, headers=headers, body=body))


def api(d, method, path, body=None, headers=None):
    h = dict(AUTH)
    h.update(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    return request(d.port, method, path, headers=h, body=data)


def wait_instances(d, n, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = api(d, "GET", "/presence?scope=cluster")
        if r.status == 200 and r.json()["cluster"]["answered"] == n:
            return r.json()
        time.sleep(0.1)
    raise AssertionError("%s does not see %d instances: %r" % (d.name, n, r.json()))


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("not within %.1fs: %s" % (timeout, what))


def upgrade_status(d, user, query="", headers=None):
    """The status of a WebSocket handshake (and its JSON body if refused)."""
    path = "/ws?" + (query or "userId=" + urllib.parse.quote(user))
    h = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    h.update(headers or {})
    return request(d.port, "GET", path, headers=h)


class EventQueue:
    """A queue bound to the events exchange, read with pika."""

    def __init__(self, vhost, exchange="notifyd.events"):
        self.conn = vhost.connection()
        self.ch = self.conn.channel()
        self.ch.exchange_declare(exchange, "topic", durable=True)
        self.q = self.ch.queue_declare("", exclusive=True).method.queue
        self.ch.queue_bind(self.q, exchange, "#")

    def take(self, wait):
        out, deadline = [], time.monotonic() + wait
        while time.monotonic() < deadline:
            m, props, body = self.ch.basic_get(self.q, auto_ack=True)
            if m is None:
                time.sleep(0.05)
                continue
            ev = json.loads(body)
            ev["_rk"] = m.routing_key
            ev["_raw"] = body
            out.append(ev)
        return out

    def close(self):
        self.conn.close()


def test_disconnect_reaches_every_instance_with_the_code(start_notifyd, queue_name, url_client, vhost, note):
    a, b = two(start_notifyd, queue_name)
    alice = [url_client(a.ws_url("alice")), url_client(a.ws_url("alice")), url_client(b.ws_url("alice"))]
    bob = url_client(a.ws_url("bob"))
    t0 = time.monotonic()
    r = api(a, "POST", "/users/alice/disconnect", {"message": "see you"})
    assert r.status == 200, r
    assert r.json() == {"status": "confirmed"}
    codes = [(c.wait_closed(1.0), c.close_reason) for c in alice]
    took = time.monotonic() - t0
    assert codes == [(4000, "see you")] * 3, codes
    assert took < 1.0
    assert bob.open
    bob.ping()
    # The same command as a message on the control exchange, from a backend.
    alice2 = [url_client(a.ws_url("alice")), url_client(b.ws_url("alice"))]
    conn = vhost.connection()
    ch = conn.channel()
    t0 = time.monotonic()
    ch.basic_publish("notifyd.control", "", json.dumps(
        {"type": "disconnect", "user": "alice", "code": 4001, "reason": "banned",
         "instance": "backend", "boot": "django"}))
    codes = [(c.wait_closed(1.0), c.close_reason) for c in alice2]
    took2 = time.monotonic() - t0
    conn.close()
    assert codes == [(4001, "banned")] * 2, codes
    assert bob.open
    note("HTTP disconnect: 3 connections on 2 instances closed with 4000 in %.0f ms; "
         "AMQP control message: 2 closed with 4001 in %.0f ms; another user untouched"
         % (took * 1000, took2 * 1000))


def test_block_refuses_the_user_everywhere_until_it_ends(start_notifyd, queue_name, url_client):
    a, b = two(start_notifyd, queue_name)
    c = url_client(b.ws_url("mallory"))
    r = api(a, "POST", "/users/mallory/disconnect", {"reason": "ban", "block": 2})
    assert r.status == 200, r
    assert c.wait_closed(1.0) == 4001
    assert c.close_reason == "banned"
    for d in (a, b):
        r = upgrade_status(d, "mallory")
        assert r.status == 403, r
        assert r.json()["error"] == "this user is blocked for now"
        assert 1 <= int(r.header("Retry-After")) <= 3
    assert upgrade_status(a, "trent").status == 101
    wait_until(lambda: upgrade_status(b, "mallory").status == 101, 4, "the block ends")


def test_sse_gets_a_disconnect_event_then_the_stream_ends(start_notifyd, queue_name):
    a, b = two(start_notifyd, queue_name)
    s = SSE(b.port, sse_path("sally"))
    assert s.head() == 200
    wait_until(lambda: api(a, "GET", "/users/sally?scope=cluster").json()["online"], 3, "sally online")
    assert api(a, "POST", "/users/sally/disconnect", {}).status == 200
    ev = s.event(2)
    assert ev[0] == "disconnect"
    assert json.loads(ev[1]) == {"code": 4000, "reason": "logged out"}
    assert s.wait_eof(2)
    s.close()


def test_presence_aggregates_instances_and_reports_a_missing_one(start_notifyd, queue_name, url_client, note):
    a, b = two(start_notifyd, queue_name)
    ca = url_client(a.ws_url("pat"))
    cb = [url_client(b.ws_url("pat")), url_client(b.ws_url("quinn") + "&x=1")]
    local = api(a, "GET", "/users/pat").json()
    assert local["instance"] == "a" and len(local["connections"]) == 1
    conn = local["connections"][0]
    assert conn["transport"] == "websocket" and conn["format"] == "raw"
    assert abs(conn["since"] / 1000 - time.time()) < 30
    r = api(a, "GET", "/users/pat?scope=cluster").json()
    assert r["online"] is True
    assert sorted(c["instance"] for c in r["connections"]) == ["a", "b"]
    assert r["cluster"] == {"asked": 2, "answered": 2, "missing": []}
    p = api(b, "GET", "/presence?scope=cluster").json()
    assert p["connections"] == 3 and p["users"] == 3
    assert sorted((i["instance"], i["connections"]) for i in p["instances"]) == [("a", 1), ("b", 2)]
    # Unknown users are an empty answer.
    r = api(a, "GET", "/users/nobody-here?scope=cluster").json()
    assert r["online"] is False and r["connections"] == []
    # b dies: until it has missed 3 heartbeats it is asked, and reported missing.
    b.kill9()
    t0 = time.monotonic()
    r = api(a, "GET", "/presence?scope=cluster")
    took = time.monotonic() - t0
    assert r.status == 200
    assert r.json()["cluster"] == {"asked": 2, "answered": 1, "missing": ["b"]}, r.json()
    assert 0.6 < took < 2.0
    wait_until(lambda: api(a, "GET", "/presence?scope=cluster").json()["cluster"]["asked"] == 1, 5,
               "b forgotten")
    assert ca.open
    for c in cb:
        c.wait_closed(2)
    note("presence: both instances answered; a killed one reported missing after the %.1fs timeout, "
         "then forgotten" % took)


def test_online_offline_events_are_debounced_and_ordered(start_notifyd, queue_name, url_client, vhost, note):
    events = EventQueue(vhost)
    try:
        a, b = two(start_notifyd, queue_name, events_exchange="notifyd.events", events_offline_delay="1s")
        c = url_client(a.ws_url("olga"))
        c2 = url_client(a.ws_url("olga"))        # a second tab: nothing new
        got = events.take(0.5)
        assert [(e["_rk"], e["type"], e["user"], e["instance"]) for e in got] == [
            ("online", "online", "olga", "a")], got
        # A reload, then a move to the other instance: neither says anything.
        c.close()
        c2.close()
        c = url_client(a.ws_url("olga"))
        c.close()
        time.sleep(0.2)
        c = url_client(b.ws_url("olga"))
        assert events.take(2.0) == []
        c.close()
        got = events.take(2.0)
        assert [(e["type"], e["user"], e["instance"]) for e in got] == [("offline", "olga", "b")], got
        # Back later: online again, once.
        c = url_client(a.ws_url("olga"))
        got = events.take(0.5)
        assert [(e["type"], e["user"]) for e in got] == [("online", "olga")], got
        assert got[0]["time"] / 1000 == pytest.approx(time.time(), abs=30)
        note("online once for two tabs; reload and move between instances: no event; "
             "offline once, %s after the last close" % "1 s")
    finally:
        events.close()


def test_undelivered_is_reported_once_with_the_exact_body(start_notifyd, queue_name, url_client, vhost,
                                                          publisher, note):
    events = EventQueue(vhost)
    try:
        a, b = two(start_notifyd, queue_name, events_exchange="notifyd.events", events_offline_delay="10s",
                   amqp_bindings="app.#")
        c = url_client(b.ws_url("uma"))
        events.take(0.3)            # uma's online
        body = '{"user_id":"vic","text":"caf\u00e9 \u2603","n":[1, 2]}'.encode()
        publisher.publish("user.vic", body)
        publisher.publish("app.notice", body)   # the body names the user
        publisher.publish("user.uma", b'{"to":"uma"}')
        assert c.recv(2) == '{"to":"uma"}'
        got = events.take(1.5)
        und = [e for e in got if e["type"] == "undelivered"]
        assert len(und) == 2, got
        assert [(e["user"], e["_rk"], e["routing_key"]) for e in und] == [
            ("vic", "undelivered", "user.vic"), ("vic", "undelivered", "app.notice")]
        for e in und:
            # Embedded as published, byte for byte.
            assert b'"body":' + body in e["_raw"], e["_raw"]
        note("undelivered: one event per notification across 2 instances, body byte for byte, "
             "routing key as published; a user connected on the other instance: none")
    finally:
        events.close()


def jwt_pair(start_notifyd, queue_name):
    cfg = dict(auth="jwt", jwt_algorithm="HS256", jwt_secret=SECRET)
    return two(start_notifyd, queue_name, **cfg)


def ws_jwt(d, tok):
    return "ws://127.0.0.1:%d/ws?token=%s" % (d.port, tok)


def test_revoked_tokens_are_closed_and_refused(start_notifyd, queue_name, url_client, note):
    a, b = jwt_pair(start_notifyd, queue_name)
    now = int(time.time())
    t1 = token(claims(sub="dave", jti="tok-1", iat=now - 60))
    t2 = token(claims(sub="dave", jti="tok-2", iat=now - 60))
    c1 = [url_client(ws_jwt(a, t1)), url_client(ws_jwt(b, t1))]
    c2 = url_client(ws_jwt(b, t2))
    r = api(a, "POST", "/revoke", {"jti": "tok-1"})
    assert r.status == 200, r
    assert [c.wait_closed(1.0) for c in c1] == [4001, 4001]
    assert c1[0].close_reason == "revoked"
    assert c2.open
    for d in (a, b):
        r = upgrade_status(d, None, query="token=" + t1)
        assert r.status == 403 and r.json()["error"] == "this token was revoked", r
        assert upgrade_status(d, None, query="token=" + t2).status == 101
    # Every token of the user issued until now: a fresh login still works.
    r = api(b, "POST", "/users/dave/disconnect", {"reason": "revoke"})
    assert r.status == 200
    assert c2.wait_closed(1.0) == 4001
    assert upgrade_status(a, None, query="token=" + t2).status == 403
    t3 = token(claims(sub="dave", jti="tok-3", iat=int(time.time()) + 1))
    assert upgrade_status(a, None, query="token=" + t3).status == 101
    note("jti revocation closed the token's 2 connections on 2 instances (4001) and refuses it (403); "
         "a user revocation refuses tokens issued before it, not a fresh one")


def test_a_new_instance_learns_the_rules_in_force(start_notifyd, queue_name):
    a = start_notifyd(name="a", instance_name="a", admin_keys=ADMIN, control_heartbeat="300ms")
    assert api(a, "POST", "/users/zed/disconnect", {"reason": "ban", "block": 60}).status == 200
    b = start_notifyd(name="b", instance_name="b", queue_name=queue_name + "-b", admin_keys=ADMIN,
                      control_heartbeat="300ms")
    wait_until(lambda: upgrade_status(b, "zed").status == 403, 3, "b refuses zed")


def test_admin_refusals(start_notifyd, queue_name):
    a = start_notifyd(admin_keys=ADMIN)
    r = request(a.port, "GET", "/users/x")
    assert r.status == 401 and r.json()["error"] == "missing or wrong admin key"
    assert r.header("WWW-Authenticate") == "Bearer"
    r = request(a.port, "GET", "/presence", headers={"Authorization": "Bearer wrong-key-123456789"})
    assert r.status == 401
    r = request(a.port, "POST", "/users/x/disconnect", body=b"{}",
                headers={"Authorization": "Bearer wrong-key-123456789"})
    assert r.status == 401
    assert api(a, "GET", "/users/%00bad").status == 400
    assert api(a, "GET", "/users/" + "x" * 129).status == 400
    assert api(a, "GET", "/users/x/whatever").status == 404
    assert api(a, "GET", "/users/x/disconnect").status == 405
    assert api(a, "POST", "/users/x").status == 405
    assert api(a, "GET", "/presence?scope=everywhere").status == 400
    for body, why in [(b"[1]", "body is not a JSON object"), (b"{", "body is not a JSON object"),
                      ({"reason": "nuke"}, 'reason must be "logout", "ban" or "revoke"'),
                      ({"block": -1}, "block must be a number of seconds from 0 to 31622400"),
                      ({"message": "x" * 124}, "message must be a string of at most 123 bytes")]:
        r = api(a, "POST", "/users/x/disconnect", body)
        assert (r.status, r.json()["error"]) == (400, why)
    assert api(a, "POST", "/revoke", {}).json()["error"] == "give exactly one of jti and user"
    assert api(a, "POST", "/revoke", {"jti": "a", "until": 5}).status == 400
    assert api(a, "POST", "/users/x/disconnect", b"{" + b" " * 5000 + b"}").status == 413
    # Without admin_keys the API is off.
    d = start_notifyd(name="nokeys", queue_name=queue_name + "-n")
    r = api(d, "GET", "/presence")
    assert r.status == 403 and "no admin_keys" in r.json()["error"]
    # The daemon is fine after all that.
    assert harness.http_get(a.port, "/health")[0] == 200
