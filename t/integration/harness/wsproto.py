"""The WebSocket protocol (RFC 6455) as a client writes and reads it, the
standard library only: opcodes, the upgrade request, Sec-WebSocket-Accept,
masked frames built and frames parsed.  One copy for the raw test client
(rawws.py, hostile.py) and the soak's swarm of light clients
(t/soak/wsswarm.py)."""

import base64
import collections
import hashlib
import os
import re
import struct

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

Frame = collections.namedtuple("Frame", "fin rsv opcode masked payload")


class ConnectionClosed(Exception):
    def __init__(self, code, reason):
        super().__init__("connection closed (code %s, reason %r)" % (code, reason))
        self.code = code
        self.reason = reason


# ---- handshake ------------------------------------------------------------------


def new_key():
    """A fresh Sec-WebSocket-Key (16 random bytes, base64), as text."""
    return base64.b64encode(os.urandom(16)).decode()


def accept_key(key):
    """The Sec-WebSocket-Accept a server must answer to key (str or bytes)."""
    if isinstance(key, str):
        key = key.encode()
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()


def upgrade_request(path, host, port, key, headers=None, method="GET", version="HTTP/1.1"):
    """The upgrade request's bytes.  headers overrides/extends the defaults
    (Host, Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version, in
    that order); a None value removes a default header."""
    h = collections.OrderedDict()
    h["Host"] = "%s:%d" % (host, port)
    h["Upgrade"] = "websocket"
    h["Connection"] = "Upgrade"
    h["Sec-WebSocket-Key"] = key
    h["Sec-WebSocket-Version"] = "13"
    for k, v in (headers or {}).items():
        for existing in list(h):
            if existing.lower() == k.lower():
                del h[existing]
        if v is not None:
            h[k] = v
    req = "%s %s %s\r\n" % (method, path, version)
    req += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    return req.encode("latin-1")


_STATUS_LINE = re.compile(r"HTTP/1\.[01] (\d{3}) ?(.*)")


def parse_response_head(head):
    """(status, reason, {lower-case name: [values]}) of an HTTP response head
    (text up to, without, the blank line).  ValueError on a bad status line."""
    lines = head.split("\r\n")
    m = _STATUS_LINE.match(lines[0])
    if not m:
        raise ValueError("bad status line %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return int(m.group(1)), m.group(2), headers


# ---- frames ---------------------------------------------------------------------


def mask_bytes(payload, key):
    """payload XOR the 4-byte key repeated (masking and unmasking alike)."""
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def build_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, mask_key=None, length=None):
    """A client frame (masked unless mask=False, with mask_key or a random
    key).  length overrides the declared payload length (for lying headers)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload) if length is None else length
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        mk = mask_key if mask_key is not None else os.urandom(4)
        return hdr + mk + mask_bytes(payload, mk)
    return hdr + payload


def frame_header(buf, pos=0):
    """The header of the frame that starts at buf[pos]: (first byte, mask key
    or None, payload length, offset of the payload in buf), or None while
    buf does not hold the whole header yet."""
    have = len(buf) - pos
    if have < 2:
        return None
    b0 = buf[pos]
    b1 = buf[pos + 1]
    n = b1 & 0x7F
    off = pos + 2
    if n == 126:
        if have < 4:
            return None
        n = (buf[pos + 2] << 8) | buf[pos + 3]
        off = pos + 4
    elif n == 127:
        if have < 10:
            return None
        n = struct.unpack_from("!Q", buf, pos + 2)[0]
        off = pos + 10
    mk = None
    if b1 & 0x80:
        if len(buf) < off + 4:
            return None
        mk = bytes(buf[off:off + 4])
        off += 4
    return b0, mk, n, off


def make_frame(b0, mk, payload):
    """A Frame from frame_header's first byte and mask key and the payload
    as sent (unmasked here)."""
    if mk is not None:
        payload = mask_bytes(payload, mk)
    return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, mk is not None, payload)


def close_code(payload, empty=None):
    """The code of a close frame's payload; empty for an empty payload."""
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else empty
