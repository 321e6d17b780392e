"""RFC 6455 violations and control frames, over raw sockets.

Each test starts a daemon, connects a well-behaved bystander (python
websockets) and a raw client, makes the raw client misbehave, checks the close
code, then checks that the bystander still receives a published message."""

import os
import struct

import pytest

import harness
from harness import OP_BIN, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, recv_exact

WS_MAX = 1024  # ws_max_message_size for these tests


@pytest.fixture
def proto(start_notifyd, ws_client, raw_client, publisher):
    """(daemon, raw client of user "raw", check) where check() asserts that the
    daemon still serves the bystander."""
    d = start_notifyd(ws_max_message_size=str(WS_MAX))
    bystander = ws_client(d, "bystander")
    raw = raw_client(d, "raw")
    counter = [0]

    def check():
        counter[0] += 1
        body = ('{"title":"still alive","n":%d}' % counter[0]).encode()
        publisher.publish("user.bystander", body)
        recv_exact(bystander, body, timeout=5)
        assert d.running(), "notifyd died"

    return d, raw, check


def expect_fail(raw, codes, what):
    """The server closes the connection with one of codes: a close frame
    carrying it, then the TCP connection ends (we echo the close like a
    polite client would)."""
    if isinstance(codes, int):
        codes = (codes,)
    try:
        code, reason, seen = raw.expect_close(timeout=5)
    except harness.ConnectionClosed:
        pytest.fail("%s: TCP connection closed without a close frame (wanted %s)" % (what, codes))
    except TimeoutError:
        pytest.fail("%s: connection still open after 5s (wanted close %s)" % (what, codes))
    assert code in codes, "%s: close code %s (reason %r), wanted %s" % (what, code, reason, codes)
    try:
        reason.decode("utf-8")
    except UnicodeDecodeError:
        pytest.fail("close reason is not UTF-8: %r" % reason)
    try:
        raw.send_close(code if code not in (None, 1005) else 1000)
    except OSError:
        pass
    assert raw.wait_eof(5), "%s: TCP connection not closed within 5s of the close frame" % what


def expect_alive(raw, payload=b"are you there"):
    """The raw connection is still open and answers a ping."""
    raw.send_frame(OP_PING, payload)
    for _ in range(20):
        f = raw.recv_frame(timeout=3)
        assert f is not None, "connection closed instead of answering a ping"
        assert f.opcode != OP_CLOSE, "closed with %r" % (f.payload,)
        if f.opcode == OP_PONG:
            assert f.payload == payload
            return
    pytest.fail("no pong")


# ---- violations -------------------------------------------------------------

def test_unmasked_frame_is_1002(proto):
    d, raw, check = proto
    raw.send_frame(OP_TEXT, b'{"hello":1}', mask=False)
    expect_fail(raw, 1002, "unmasked frame")
    check()


@pytest.mark.parametrize("opcode", [0x3, 0x7, 0xB, 0xF])
def test_reserved_opcode_is_1002(proto, opcode):
    d, raw, check = proto
    raw.send_frame(opcode, b"x")
    expect_fail(raw, 1002, "reserved opcode %#x" % opcode)
    check()


@pytest.mark.parametrize("rsv", [4, 2, 1], ids=["rsv1", "rsv2", "rsv3"])
def test_rsv_bit_is_1002(proto, rsv):
    d, raw, check = proto
    raw.send_frame(OP_TEXT, b"hello", rsv=rsv)
    expect_fail(raw, 1002, "RSV bits %d" % rsv)
    check()


@pytest.mark.parametrize("payload", [b"\xc3\x28", b"ok \xff", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                                     b"\xc0\xaf", b"unfinished \xe2\x82"],
                         ids=["bad-continuation", "ff", "surrogate", "above-10ffff", "overlong",
                              "unfinished-at-fin"])
def test_invalid_utf8_text_is_1007(proto, payload):
    d, raw, check = proto
    raw.send_frame(OP_TEXT, payload)
    expect_fail(raw, 1007, "invalid UTF-8 %r" % payload)
    check()


def test_invalid_utf8_in_later_fragment_is_1007(proto):
    d, raw, check = proto
    raw.send_frame(OP_TEXT, b"fine so far ", fin=False)
    raw.send_frame(OP_CONT, b"\xe2\x28\xa1", fin=True)
    expect_fail(raw, 1007, "invalid UTF-8 in a continuation")
    check()


def test_code_point_split_across_fragments_is_fine(proto, publisher):
    d, raw, check = proto
    raw.send_frame(OP_TEXT, b"euro sign: \xe2\x82", fin=False)
    raw.send_frame(OP_CONT, b"\xac and a four-byte one: \xf0\x9f", fin=False)
    raw.send_frame(OP_CONT, b"\x98\x80", fin=True)
    expect_alive(raw)
    # and the connection still gets its notifications
    body = b'{"title":"for the raw client"}'
    publisher.publish("user.raw", body)
    f = raw.recv_frame(timeout=5)
    assert f is not None and f.opcode == OP_TEXT and f.fin and f.payload == body, f
    check()


def test_ping_between_fragments_is_fine(proto):
    d, raw, check = proto
    raw.send_frame(OP_TEXT, b"first half ", fin=False)
    raw.send_frame(OP_PING, b"mid")
    f = raw.recv_frame(timeout=5)
    assert f is not None and f.opcode == OP_PONG and f.payload == b"mid", f
    raw.send_frame(OP_CONT, b"second half", fin=True)
    expect_alive(raw)
    check()


@pytest.mark.parametrize("how", ["single-frame", "fragmented"])
def test_message_over_ws_max_message_size_is_1009(proto, how):
    d, raw, check = proto
    if how == "single-frame":
        raw.send_frame(OP_TEXT, b"a" * (WS_MAX * 2))
    else:
        for i in range(3):
            raw.send_frame(OP_TEXT if i == 0 else OP_CONT, b"b" * (WS_MAX // 2 + 10), fin=(i == 2))
    expect_fail(raw, 1009, "message of %s over ws_max_message_size" % how)
    check()


def test_message_at_ws_max_message_size_is_fine(proto):
    d, raw, check = proto
    raw.send_frame(OP_TEXT, b"c" * WS_MAX)
    raw.send_frame(OP_BIN, b"\x00\xff" * (WS_MAX // 2))
    expect_alive(raw)
    check()


def test_huge_64bit_length_is_refused(proto):
    d, raw, check = proto
    # top bit set in the 64-bit length: invalid; whatever the reason given,
    # the server must not wait for 2^63 bytes
    hdr = struct.pack("!BBQ", 0x81, 0x80 | 127, 1 << 63) + os.urandom(4)
    raw.send_raw(hdr + b"abcd")
    expect_fail(raw, (1002, 1009), "64-bit length with the top bit set")
    check()


def test_continuation_without_start_is_1002(proto):
    d, raw, check = proto
    raw.send_frame(OP_CONT, b"orphan", fin=True)
    expect_fail(raw, 1002, "continuation with no message started")
    check()


def test_new_message_inside_fragmented_one_is_1002(proto):
    d, raw, check = proto
    raw.send_frame(OP_TEXT, b"start", fin=False)
    raw.send_frame(OP_TEXT, b"another start", fin=True)
    expect_fail(raw, 1002, "data frame inside a fragmented message")
    check()


def test_fragmented_control_frame_is_1002(proto):
    d, raw, check = proto
    raw.send_frame(OP_PING, b"frag", fin=False)
    expect_fail(raw, 1002, "ping without FIN")
    check()


def test_control_frame_over_125_bytes_is_1002(proto):
    d, raw, check = proto
    raw.send_frame(OP_PING, b"p" * 126)
    expect_fail(raw, 1002, "126-byte ping")
    check()


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 1100, 2999, 5000])
def test_close_with_invalid_code_is_1002(proto, code):
    d, raw, check = proto
    raw.send_close(code)
    expect_fail(raw, 1002, "close with code %d" % code)
    check()


def test_close_with_one_byte_payload_is_1002(proto):
    d, raw, check = proto
    raw.send_close(raw=b"\x03")
    expect_fail(raw, 1002, "close with a 1-byte payload")
    check()


def test_close_with_invalid_utf8_reason_fails(proto):
    d, raw, check = proto
    raw.send_close(1000, b"bad \xff reason")
    expect_fail(raw, (1002, 1007), "close reason with invalid UTF-8")
    check()


# ---- well-behaved control frames ---------------------------------------------

@pytest.mark.parametrize("payload", [b"", b"hello", bytes(range(125))], ids=["empty", "short", "125-bytes"])
def test_ping_answered_with_same_payload(proto, payload):
    d, raw, check = proto
    raw.send_frame(OP_PING, payload)
    f = raw.recv_frame(timeout=5)
    assert f is not None, "connection closed instead of a pong"
    assert not f.masked, "server frames must not be masked"
    assert f.opcode == OP_PONG and f.fin, f
    assert f.payload == payload
    check()


def test_unsolicited_pong_and_data_frames_are_ignored(proto):
    d, raw, check = proto
    raw.send_frame(OP_PONG, b"unsolicited")
    raw.send_frame(OP_TEXT, '{"client":"says hi ✓"}')
    raw.send_frame(OP_BIN, bytes(range(256)))
    expect_alive(raw)
    check()


@pytest.mark.parametrize("code,reason", [(1000, b""), (1000, b"bye \xe2\x9c\x93"), (4000, b"app code"),
                                         (None, b"")],
                         ids=["1000", "1000-reason", "4000", "empty"])
def test_client_close_is_echoed_and_tcp_closed(proto, code, reason):
    d, raw, check = proto
    if code is None:
        raw.send_close()
    else:
        raw.send_close(code, reason)
    try:
        got, _, _ = raw.expect_close(timeout=5)
    except harness.ConnectionClosed:
        pytest.fail("TCP closed without echoing the close frame")
    # echo: the same code (an empty close may be echoed empty or as 1000)
    want = (None, 1000) if code is None else (code,)
    assert got in want, "server answered close %s, wanted %s" % (got, want)
    assert raw.wait_eof(5), "server did not close the TCP connection after the close handshake"
    check()


def test_abrupt_disconnects_do_not_hurt(proto, raw_client):
    """Clients that vanish mid-handshake, mid-frame or right after the upgrade."""
    d, raw, check = proto
    c = raw_client(d)
    c.send_raw(b"GET /ws?userId=half HTTP/1.1\r\nHost: x\r\nUpg")
    c.close()
    c = raw_client(d, "gone")
    c.send_raw(harness.RawWS.build_frame(OP_TEXT, b"x" * 100)[:20])
    c.close()
    c = raw_client(d, "gone2")
    c.close()
    check()
