"""Keep-alive: the server pings; a client that never answers is closed."""

import time

import harness
from harness import OP_CLOSE, OP_PING, recv_exact

PING = 2.0
PONG = 1.0


def test_silent_client_closed_and_polite_client_kept(start_notifyd, ws_client, raw_client, publisher, note):
    d = start_notifyd(ws_ping_interval="%ds" % PING, ws_pong_timeout="%ds" % PONG)
    t0 = time.monotonic()
    raw = raw_client(d, "mute")        # reads, never answers pings
    polite = ws_client(d, "polite")    # python-websockets answers pings itself

    pings = []
    close_code = "none"
    deadline = t0 + PING + PONG + 4
    while time.monotonic() < deadline:
        try:
            f = raw.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        if f is None:
            close_code = "tcp closed without close frame"
            break
        assert not f.masked
        if f.opcode == OP_PING:
            pings.append(time.monotonic() - t0)
        elif f.opcode == OP_CLOSE:
            close_code = f.payload[:2]
            break
    closed_after = time.monotonic() - t0
    assert pings, "no ping from the server within %.1fs" % (closed_after,)
    assert close_code != "none", \
        "client that never answers pings still open after %.1fs (pings at %r)" % (closed_after, pings)
    assert closed_after >= PING * 0.5, "closed too early (%.1fs)" % closed_after
    if isinstance(close_code, bytes):
        close_code = int.from_bytes(close_code, "big") if len(close_code) == 2 else "empty close"
    note("pings at %s s; closed after %.2fs with %s" % (["%.2f" % p for p in pings], closed_after, close_code))
    if close_code != "tcp closed without close frame":
        raw.send_close(1000)
        assert raw.wait_eof(5), "TCP not closed after the close frame"

    # well past two ping intervals: the polite client is still connected and served
    remaining = t0 + 2 * PING + PONG + 1 - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
    assert polite.open, "the client that answers pings was closed (code %s)" % polite.close_code
    body = b'{"title":"still here"}'
    publisher.publish("user.polite", body)
    recv_exact(polite, body)


def test_raw_client_answering_pings_is_kept(start_notifyd, raw_client, publisher):
    d = start_notifyd(ws_ping_interval="%ds" % PING, ws_pong_timeout="%ds" % PONG)
    raw = raw_client(d, "answers")
    t0 = time.monotonic()
    pings = 0
    while time.monotonic() - t0 < 2 * PING + PONG + 0.5:
        try:
            f = raw.recv_frame(timeout=0.5)
        except TimeoutError:
            continue
        assert f is not None, "closed although it answered every ping"
        assert f.opcode != OP_CLOSE, "closed although it answered every ping: %r" % (f.payload,)
        if f.opcode == OP_PING:
            pings += 1
            raw.send_frame(harness.OP_PONG, f.payload)
    assert pings >= 1, "no ping within %.1fs" % (2 * PING + PONG)
    body = b'{"title":"kept"}'
    publisher.publish("user.answers", body)
    deadline = time.monotonic() + 5
    while True:
        f = raw.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
        assert f is not None and f.opcode != OP_CLOSE, f
        if f.opcode == OP_PING:
            raw.send_frame(harness.OP_PONG, f.payload)
            continue
        assert f.opcode == harness.OP_TEXT and f.payload == body, f
        break


def test_client_quiet_longer_than_handshake_timeout_is_kept(start_notifyd, ws_client, publisher, note):
    """A client that answers every ping, but is otherwise quiet for longer
    than handshake_timeout between pongs, stays connected.  Under libevent
    2.1 evhttp's per-read timeout survived the upgrade on the read event:
    after the first pong, reading stopped at handshake_timeout, the next
    pong went unread, and the client was dropped for a missing pong."""
    d = start_notifyd(handshake_timeout="1s", ws_ping_interval="3s", ws_pong_timeout="2s")
    polite = ws_client(d, "quiet")     # python-websockets answers pings itself
    t0 = time.monotonic()
    time.sleep(11)                     # three ping rounds, 3 s of silence after each pong
    assert polite.open, "closed after %.1fs (code %s): pongs went unread" % (
        time.monotonic() - t0, polite.close_code)
    body = b'{"title":"quiet but here"}'
    publisher.publish("user.quiet", body)
    recv_exact(polite, body)
    assert "pong_timeout" not in d.log_text()
    note("kept for %.1fs with handshake_timeout=1s" % (time.monotonic() - t0))
