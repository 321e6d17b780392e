"""The opening handshake and plain HTTP answers."""

import base64
import time

import pytest

import harness
from harness import recv_exact


def json_error(resp):
    ctype = resp.header("content-type") or ""
    assert "json" in ctype.lower(), "error body should be JSON, Content-Type is %r" % ctype
    try:
        body = resp.json()
    except ValueError:
        pytest.fail("error body is not JSON: %r" % resp.body)
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    return body


def test_good_handshake(notifyd, raw_client, publisher):
    c = raw_client(notifyd)
    r = c.handshake("/ws?userId=31")
    assert r.status == 101, r
    assert "websocket" in (r.header("upgrade") or "").lower(), r
    assert "upgrade" in (r.header("connection") or "").lower(), r
    assert r.header("sec-websocket-accept") == c.expected_accept(), r
    body = b'{"title":"hello raw"}'
    publisher.publish("user.31", body)
    f = c.recv_frame(timeout=5)
    assert f is not None and f.opcode == harness.OP_TEXT and f.fin and not f.masked, f
    assert f.payload == body


def test_handshake_tolerates_header_variants(notifyd, raw_client):
    c = raw_client(notifyd)
    r = c.handshake("/ws?user_id=32", headers={"Upgrade": "WebSocket",
                                               "Connection": "keep-alive, upgrade"})
    assert r.status == 101, r
    assert r.header("sec-websocket-accept") == c.expected_accept()


def test_handshake_ignores_unoffered_deflate(notifyd, raw_client):
    """permessage-deflate offered: either declined, or accepted with
    no_context_takeover (the costly variant must never be agreed)."""
    c = raw_client(notifyd)
    r = c.handshake("/ws?userId=33",
                    headers={"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"})
    assert r.status == 101, r
    ext = (r.header("sec-websocket-extensions") or "").lower()
    if ext:
        assert "no_context_takeover" in ext, "deflate accepted with context takeover: %r" % ext


def test_missing_key_is_400_json(notifyd, raw_client):
    c = raw_client(notifyd)
    r = c.handshake("/ws?userId=34", headers={"Sec-WebSocket-Key": None})
    assert r.status == 400, r
    json_error(r)


def test_key_not_16_bytes_is_400(notifyd, raw_client):
    c = raw_client(notifyd)
    r = c.handshake("/ws?userId=34", key=base64.b64encode(b"too short").decode())
    assert r.status == 400, r
    json_error(r)


def test_not_an_upgrade_is_refused(notifyd):
    st, hdr, body = harness.http_get(notifyd.port, "/ws?userId=35")
    assert st in (400, 426), (st, hdr, body)


def test_wrong_version_is_426_with_version_header(notifyd, raw_client):
    c = raw_client(notifyd)
    r = c.handshake("/ws?userId=36", headers={"Sec-WebSocket-Version": "8"})
    assert r.status == 426, r
    assert (r.header("sec-websocket-version") or "").strip() == "13", r


def test_missing_user_is_refused(notifyd, raw_client):
    c = raw_client(notifyd)
    r = c.handshake("/ws")
    assert r.status in (400, 401), r
    json_error(r)


def test_unknown_path_is_404(notifyd, raw_client):
    st, hdr, body = harness.http_get(notifyd.port, "/no/such/thing")
    assert st == 404, (st, hdr, body)
    c = raw_client(notifyd)
    r = c.handshake("/wsx?userId=37")
    assert r.status == 404, r


def test_origin_refused_when_no_origins_allowed(notifyd, raw_client):
    c = raw_client(notifyd)
    r = c.handshake("/ws?userId=38", headers={"Origin": "http://evil.example"})
    assert r.status == 403, r


def test_allowed_origin(start_notifyd, raw_client):
    d = start_notifyd(allowed_origins="http://good.example, https://app.example")
    c = raw_client(d)
    r = c.handshake("/ws?userId=39", headers={"Origin": "https://app.example"})
    assert r.status == 101, r
    c = raw_client(d)
    r = c.handshake("/ws?userId=39", headers={"Origin": "http://evil.example"})
    assert r.status == 403, r


def test_max_connections_is_503(start_notifyd, ws_client, raw_client, publisher):
    d = start_notifyd(max_connections="2")
    a = ws_client(d, 40)
    b = ws_client(d, 41)
    c = raw_client(d)
    r = c.handshake("/ws?userId=42")
    assert r.status == 503, r
    # the two connections still work
    publisher.publish("broadcast", b'{"title":"full house"}')
    recv_exact(a, b'{"title":"full house"}')
    recv_exact(b, b'{"title":"full house"}')
    # a slot freed is a slot available again (the close is asynchronous)
    a.close()
    deadline = time.monotonic() + 5
    status = None
    while time.monotonic() < deadline:
        c = raw_client(d)
        status = c.handshake("/ws?userId=42").status
        if status == 101:
            break
        time.sleep(0.1)
    assert status == 101, "still refused (%s) after a connection closed" % status


def test_stalled_handshake_is_cut_after_handshake_timeout(start_notifyd, raw_client, ws_client, publisher):
    d = start_notifyd(handshake_timeout="1s")
    stalled = raw_client(d)
    stalled.send_raw(b"GET /ws?userId=43 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
    silent = raw_client(d)  # connects and sends nothing at all
    t0 = time.monotonic()
    assert stalled.wait_eof(6), "half-sent request still open after 6s (handshake_timeout 1s)"
    assert silent.wait_eof(6 - (time.monotonic() - t0)), "silent connection still open"
    took = time.monotonic() - t0
    assert took >= 0.5, "closed after %.2fs, before handshake_timeout" % took
    # an upgraded connection is not subject to it
    c = ws_client(d, 44)
    time.sleep(2)
    publisher.publish("user.44", b'{"title":"still open"}')
    recv_exact(c, b'{"title":"still open"}')
