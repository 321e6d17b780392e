"""A raw WebSocket client on a plain socket: the handshake written by hand
and crafted frames, for protocol abuse (RawWS, raw_ws_connect)."""

import socket
import struct
import time
import urllib.parse

from .http import HTTPResponse
from .util import HarnessError
from .wsproto import (OP_CLOSE, OP_TEXT, ConnectionClosed, accept_key, build_frame, frame_header,
                      make_frame, new_key, parse_response_head, upgrade_request)


class RawWS:
    def __init__(self, port, host="127.0.0.1", rcvbuf=None, timeout=5):
        self.port = port
        self.host = host
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = bytearray()
        self.eof = False
        self.reset = False
        self.key = None

    # handshake -------------------------------------------------------------
    def handshake(self, path="/ws?userId=1", headers=None, method="GET", version="HTTP/1.1",
                  key=None, timeout=5):
        """Send an upgrade request.  headers overrides/extends the defaults; a
        None value removes a default header.  Returns an HTTPResponse."""
        self.key = key if key is not None else new_key()
        self.sock.sendall(upgrade_request(path, self.host, self.port, self.key, headers, method,
                                          version))
        return self.read_response(timeout)

    def _wait_head(self, deadline, shown=None):
        """Read until buf holds a whole response head."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise HarnessError("HTTP response head too large")
            if not self._fill(deadline):
                raise HarnessError("connection closed before a complete HTTP response: %r"
                                   % bytes(self.buf[:shown]))

    def _take_head(self):
        """(status, reason, headers) of the response head at the start of buf,
        taken out of buf."""
        i = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:i]).decode("latin-1")
        del self.buf[:i + 4]
        try:
            return parse_response_head(head)
        except ValueError as e:
            raise HarnessError(str(e)) from None

    def read_response(self, timeout=5):
        deadline = time.monotonic() + timeout
        self._wait_head(deadline)
        status, reason, headers = self._take_head()
        body = b""
        if status != 101:
            cl = headers.get("content-length")
            te = ",".join(headers.get("transfer-encoding", [])).lower()
            if cl:
                n = int(cl[-1])
                while len(self.buf) < n and self._fill(deadline):
                    pass
                body = bytes(self.buf[:n])
                del self.buf[:n]
            elif "chunked" in te:
                body = self._read_chunked(deadline)
            else:
                while self._fill(deadline, eof_ok=True):
                    pass
                body = bytes(self.buf)
                self.buf.clear()
        return HTTPResponse(status, reason, headers, body)

    def _read_chunked(self, deadline):
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                if not self._fill(deadline):
                    return body
            i = self.buf.index(b"\r\n")
            size = int(bytes(self.buf[:i]).split(b";")[0], 16)
            del self.buf[:i + 2]
            while len(self.buf) < size + 2:
                if not self._fill(deadline):
                    return body + bytes(self.buf)
            body += bytes(self.buf[:size])
            del self.buf[:size + 2]
            if size == 0:
                return body

    def expected_accept(self):
        return accept_key(self.key)

    # bytes -------------------------------------------------------------------
    def _fill(self, deadline, eof_ok=False):
        """Read more into buf.  False at EOF (or reset).  TimeoutError at deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data from server within the time limit")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from server within the time limit") from None
        except ConnectionResetError:
            self.eof = True
            self.reset = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def send_raw(self, data):
        self.sock.sendall(data)

    # frames --------------------------------------------------------------------
    build_frame = staticmethod(build_frame)

    def send_frame(self, opcode, payload=b"", **kw):
        self.sock.sendall(self.build_frame(opcode, payload, **kw))

    def send_text(self, text, **kw):
        self.send_frame(OP_TEXT, text, **kw)

    def send_close(self, code=None, reason=b"", raw=None):
        payload = raw if raw is not None else (b"" if code is None else struct.pack("!H", code) + reason)
        self.send_frame(OP_CLOSE, payload)

    def recv_frame(self, timeout=5):
        """Next frame from the server, or None at EOF."""
        deadline = time.monotonic() + timeout
        while True:
            h = frame_header(self.buf)
            if h is not None:
                break
            if not self._fill(deadline):
                if self.buf:
                    raise HarnessError("EOF inside a frame header")
                return None
        b0, mk, n, off = h
        while len(self.buf) < off + n:
            if not self._fill(deadline):
                raise HarnessError("EOF inside a frame payload (%d of %d bytes)"
                                   % (len(self.buf) - off, n))
        payload = bytes(self.buf[off:off + n])
        del self.buf[:off + n]
        return make_frame(b0, mk, payload)

    def expect_close(self, timeout=5):
        """Read frames until a close frame.  Returns (code, reason bytes, data
        frames seen before it); code is None for an empty close payload.
        Raises ConnectionClosed (code None) if the TCP connection ends without
        a close frame, TimeoutError if nothing happens."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            f = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if f is None:
                raise ConnectionClosed(None, "TCP closed without a close frame (reset=%s)" % self.reset)
            if f.masked:
                raise AssertionError("server sent a masked frame: %r" % (f,))
            if f.opcode == OP_CLOSE:
                if len(f.payload) >= 2:
                    return struct.unpack("!H", f.payload[:2])[0], f.payload[2:], seen
                return None, b"", seen
            seen.append(f)

    def wait_eof(self, timeout=5):
        """True once the server has closed the TCP connection (data still
        arriving is discarded); False on timeout."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                self.buf.clear()
        except TimeoutError:
            return False
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def raw_ws_connect(port, user, rcvbuf=None, timeout=5):
    """A raw client past a successful handshake (asserts 101)."""
    c = RawWS(port, rcvbuf=rcvbuf, timeout=timeout)
    r = c.handshake("/ws?userId=%s" % urllib.parse.quote(str(user), safe=""))
    if r.status != 101:
        c.close()
        raise AssertionError("handshake for user %s answered %r" % (user, r))
    return c
