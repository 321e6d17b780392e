"""permessage-deflate (RFC 7692): negotiation, one compression per message
for every connection, the client's compressed messages inflated within
bounds.  python-websockets as the real client; raw sockets for the bytes
(frames inflated here with zlib) and for the Autobahn-style violations."""

import json
import zlib

import pytest

import harness
from harness import OP_CONT, OP_PING, OP_PONG, OP_TEXT

PMD = "permessage-deflate"


def inflate(payload):
    d = zlib.decompressobj(-15)
    return d.decompress(payload + b"\x00\x00\xff\xff") + d.flush()


def deflate_msg(data, wbits=15):
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def json_body(i, size):
    """A notification as a backend writes one: repeated keys, some text."""
    items = []
    while len(json.dumps(items)) < size:
        k = len(items)
        items.append({"id": 1000 + k, "type": "comment", "author": "user-%d" % (k % 7),
                      "text": "Your order #%d has shipped \u00e9\u2603" % (k * 31), "read": False})
    return json.dumps({"n": i, "title": "Update", "items": items}, ensure_ascii=False).encode()


def raw_pmd(d, user, offer=PMD + "; client_max_window_bits", headers=None):
    c = harness.RawWS(d.port)
    h = {"Sec-WebSocket-Extensions": offer}
    h.update(headers or {})
    r = c.handshake("/ws?userId=" + user, headers=h)
    return c, r


def test_real_client_negotiates_and_gets_everything_intact(start_notifyd, url_client, publisher, note):
    d = start_notifyd()
    a = url_client(d.ws_url("z1"), compression="deflate")
    b = url_client(d.ws_url("z1"), compression="deflate")
    plain = url_client(d.ws_url("z1"))
    ext = a.ws.response_headers.get("Sec-WebSocket-Extensions", "")
    assert ext.startswith(PMD) and "server_no_context_takeover" in ext, ext
    bodies = [b'{"small":1}', json_body(1, 2000), json_body(2, 60000), '{"t":"\u00e9\u2603\U0001f600"}'.encode()]
    for i, body in enumerate(bodies):
        publisher.publish("broadcast" if i % 2 else "user.z1", body)
    for c in (a, b, plain):
        got = [m.encode() for m in c.recv_n(len(bodies))]
        assert got == bodies
    m = harness.get_metrics(d.port)
    zin = m.value("notifyd_deflate_input_bytes_total")
    zout = m.value("notifyd_deflate_output_bytes_total")
    assert zin == len(bodies[1]) + len(bodies[2]), "each large message compressed once (%r)" % zin
    note("2 clients compressed, 1 plain: the 2 KB and 60 KB JSON compressed once each, %d -> %d bytes "
         "(%.1fx)" % (zin, zout, zin / zout))
    assert zin / zout >= 3, "typical JSON compresses at least 3x"


def test_frames_on_the_wire(start_notifyd, publisher):
    d = start_notifyd(ws_deflate_min_size="100")
    c, r = raw_pmd(d, "wire")
    assert r.status == 101
    assert r.header("sec-websocket-extensions").startswith(PMD)
    big, small = json_body(1, 3000), b'{"s":1}'
    publisher.publish("user.wire", big)
    publisher.publish("user.wire", small)
    f1, f2 = c.recv_frame(), c.recv_frame()
    assert f1.rsv == 4 and f1.opcode == OP_TEXT and len(f1.payload) < len(big) / 3
    assert inflate(f1.payload) == big
    assert f2.rsv == 0 and f2.payload == small, "under ws_deflate_min_size: sent as it is"


def test_off_and_declined_offers(start_notifyd):
    d = start_notifyd(ws_deflate="off")
    c, r = raw_pmd(d, "off")
    assert r.status == 101 and r.header("sec-websocket-extensions") is None
    d2 = start_notifyd()
    for offer in (PMD + "; foo=1", PMD + "; server_max_window_bits=8",
                  PMD + "; client_max_window_bits=20", PMD + "; server_no_context_takeover; server_no_context_takeover",
                  "x-webkit-deflate-frame"):
        c, r = raw_pmd(d2, "decl", offer)
        assert r.status == 101 and r.header("sec-websocket-extensions") is None, (offer, r)
    c, r = raw_pmd(d2, "decl", "x-foo, " + PMD + "; foo, " + PMD)
    assert r.status == 101 and r.header("sec-websocket-extensions").startswith(PMD), \
        "the first acceptable offer wins"
    c, r = raw_pmd(d2, "bad", PMD + ";;=")
    assert r.status == 400, "a header that breaks the grammar"


def test_safari_15_0_guard(start_notifyd):
    d = start_notifyd()
    ua = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/15.2 Safari/605.1.15")
    c, r = raw_pmd(d, "saf", PMD + "; client_no_context_takeover", {"User-Agent": ua})
    assert r.header("sec-websocket-extensions") is None
    c, r = raw_pmd(d, "saf", PMD + "; client_max_window_bits", {"User-Agent": ua})
    assert "client_no_context_takeover" not in r.header("sec-websocket-extensions")
    c, r = raw_pmd(d, "saf", PMD + "; client_max_window_bits")
    assert "client_no_context_takeover" in r.header("sec-websocket-extensions"), \
        "others are asked to reset their context"


@pytest.mark.parametrize("case,frames,code", [
    ("rsv1_without_negotiation", None, 1002),
    ("compressed_ping", [(OP_PING, b"x", True, 4)], 1002),
    ("rsv1_on_continuation", "cont", 1002),
    ("invalid_deflate", [(OP_TEXT, b"\xff\xff\xff\xff", True, 4)], 1007),
    ("invalid_utf8", "utf8", 1007),
    ("bomb", "bomb", 1009),
])
def test_violations(start_notifyd, case, frames, code):
    d = start_notifyd(ws_max_message_size="64k")
    if case == "rsv1_without_negotiation":
        c = harness.raw_ws_connect(d.port, "v")
        c.send_frame(OP_TEXT, deflate_msg(b'{"a":1}'), rsv=4)
    else:
        c, r = raw_pmd(d, "v")
        assert r.status == 101
        if frames == "cont":
            z = deflate_msg(b'{"a":"' + b"b" * 100 + b'"}')
            c.send_frame(OP_TEXT, z[:5], fin=False, rsv=4)
            c.send_frame(OP_CONT, z[5:], rsv=4)
        elif frames == "utf8":
            c.send_frame(OP_TEXT, deflate_msg(b"ok \xff\xfe ok"), rsv=4)
        elif frames == "bomb":
            c.send_frame(OP_TEXT, deflate_msg(b"\x00" * (10 << 20)), rsv=4)
        else:
            for op, payload, fin, rsv in frames:
                c.send_frame(op, payload, fin=fin, rsv=rsv)
    got, _, _ = c.expect_close(5)
    assert got == code, (case, got)


def test_fragmented_compressed_message_is_read(start_notifyd, publisher):
    d = start_notifyd()
    c, r = raw_pmd(d, "frag")
    z = deflate_msg(json.dumps({"hello": "\u00e9" * 500}).encode())
    third = len(z) // 3
    c.send_frame(OP_TEXT, z[:third], fin=False, rsv=4)
    c.send_frame(OP_CONT, z[third:2 * third], fin=False)
    c.send_frame(OP_CONT, z[2 * third:])
    c.send_frame(OP_TEXT, deflate_msg(b'{"second":1}'), rsv=4)   # the client keeps its context: fine too
    c.send_frame(OP_PING, b"alive")
    f = c.recv_frame()
    assert f.opcode == OP_PONG and f.payload == b"alive"
    publisher.publish("user.frag", b'{"after":1}')
    assert c.recv_frame().payload == b'{"after":1}'
