"""Hostile clients, for test_hostile.py and the soak's hostile phase
(t/soak/soak.py --phases hostile): raw HTTP from a chosen source address
with interim (1xx) answers, noticing the moment the server ends a
connection, bytes trickled, connect+RST floods, a ping flooder that never
reads.  Every wait is bounded."""

import re
import select
import socket
import threading
import time

from .http import HTTPResponse, build_http_request
from .rawws import RawWS
from .util import HarnessError, linger_rst
from .wsproto import OP_CLOSE, OP_PING, close_code


TCP_STATE_NAMES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
                   6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
                   11: "CLOSING"}


def tcp_state(sock):
    """The Linux TCP state of a connected socket (tcp_info.tcpi_state), by
    name: CLOSE_WAIT once the peer sent its FIN, CLOSE once it reset the
    connection.  Reads nothing from the socket."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    except OSError:
        return "CLOSE"
    return TCP_STATE_NAMES.get(info[0], str(info[0]))


def server_holds(sock):
    """Does the server still hold its end of this loopback connection (a
    socket with an owner, i.e. not closed)?  From /proc/net/tcp: the entry
    whose local address is sock's peer and remote address is sock's own; a
    socket the server closed is gone or orphaned (inode 0, e.g. FIN_WAIT1
    behind data a client that does not read never takes).  Needed because
    such a FIN never reaches the client: its TCP state stays ESTABLISHED."""
    try:
        mine = sock.getsockname()
        peer = sock.getpeername()
    except OSError:
        return False

    def hexaddr(a):
        return "%s:%04X" % ("".join("%02X" % int(x) for x in reversed(a[0].split("."))), a[1])
    want_local, want_rem = hexaddr(peer), hexaddr(mine)
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                p = line.split()
                if len(p) > 9 and p[1] == want_local and p[2] == want_rem:
                    return p[9] != "0"
    except OSError:
        return True
    return False


class RawHTTP(RawWS):
    """A raw TCP connection for HTTP abuse (a RawWS, so a WebSocket
    handshake and frames work too): an optional source address (127.0.0.x:
    "another client address" on loopback) and receive buffer, requests with
    repeated headers, responses read one at a time with interim ones (100
    Continue) returned on their own, and noticing when the server ends the
    connection (EOF or reset) without blocking on it."""

    def __init__(self, port, host="127.0.0.1", source=None, rcvbuf=None, timeout=5):
        self.port = port
        self.host = host
        self.source = source
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            if source:
                self.sock.bind((source, 0))
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
        except OSError:
            self.sock.close()
            raise
        self.buf = bytearray()
        self.eof = False
        self.reset = False
        self.key = None
        self.send_error = None

    @property
    def host_header(self):
        return "%s:%d" % (self.host, self.port)

    def send_safe(self, data):
        """sendall; False when the server has already closed (EPIPE, reset):
        what it sent before that can still be read."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError) as e:
            self.send_error = e
            return False

    def send_request(self, method, path, headers=(), body=b"", version="HTTP/1.1"):
        """Send a request (see build_http_request); returns send_safe's answer."""
        return self.send_safe(build_http_request(method, path, headers, body, version,
                                                 host=self.host_header))

    def read_response(self, timeout=5):
        """The next response.  An interim one (1xx other than 101) comes back
        alone, without a body: call again for the final one."""
        deadline = time.monotonic() + timeout
        self._wait_head(deadline, 300)
        m = re.match(rb"HTTP/1\.[01] (1\d\d)", bytes(self.buf[:200]))
        if m and m.group(1) != b"101":
            status, reason, headers = self._take_head()
            return HTTPResponse(status, reason, headers, b"")
        return RawWS.read_response(self, max(0.01, deadline - time.monotonic()))

    def poll_closed(self, timeout=0.0):
        """Read whatever the server sends (kept in buf, at most the last MB)
        for up to timeout seconds; True as soon as the server has ended the
        connection (EOF or reset), False if it is still open then."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            try:
                r, _, _ = select.select([self.sock], [], [], max(0.0, left))
            except (OSError, ValueError):
                self.eof = True
                break
            if not r:
                return False
            try:
                data = self.sock.recv(65536, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                continue
            except ConnectionResetError:
                self.eof = self.reset = True
                break
            except OSError:
                self.eof = True
                break
            if not data:
                self.eof = True
                break
            self.buf += data
            if len(self.buf) > (1 << 20):
                del self.buf[:-65536]
        return True

    def trickle(self, data, interval, until):
        """Send data one byte every interval seconds, watching the connection
        meanwhile, until the server ends it or time.monotonic() passes until
        (after the last byte it goes on watching until then).  Returns
        (time.monotonic() when the end was noticed or None, bytes sent)."""
        sent = 0
        for i in range(len(data)):
            if time.monotonic() >= until:
                break
            if self.poll_closed(0):
                return time.monotonic(), sent
            if not self.send_safe(data[i:i + 1]):
                self.poll_closed(0.2)
                self.eof = True
                return time.monotonic(), sent
            sent += 1
            if self.poll_closed(min(interval, max(0.0, until - time.monotonic()))):
                return time.monotonic(), sent
        if self.poll_closed(max(0.0, until - time.monotonic())):
            return time.monotonic(), sent
        return None, sent

    def rst(self):
        """End the connection with RST (SO_LINGER {on, 0})."""
        linger_rst(self.sock)
        self.close()


def rst_flood(port, n, host="127.0.0.1", source=None, timeout=5):
    """Open n TCP connections to port one after the other and reset each at
    once (SO_LINGER {on, 0}) without sending anything.  Returns how many
    connected."""
    ok = 0
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if source:
                s.bind((source, 0))
            s.settimeout(timeout)
            s.connect((host, port))
            ok += 1
        except OSError:
            pass
        finally:
            linger_rst(s)
            s.close()
    return ok


def idle_connections(port, n, host="127.0.0.1", source=None, timeout=5):
    """n open TCP connections that send nothing (RawHTTP objects, in the
    order they were opened)."""
    out = []
    try:
        for _ in range(n):
            out.append(RawHTTP(port, host=host, source=source, timeout=timeout))
    except OSError:
        for c in out:
            c.close()
        raise
    return out


def closed_among(conns, timeout):
    """Watch conns (RawHTTP) for up to timeout seconds; the list of those the
    server has ended by then (EOF or reset), at the latest once the first
    one ended plus 0.3 s for its neighbours."""
    deadline = time.monotonic() + timeout
    while True:
        closed = [c for c in conns if c.poll_closed(0)]
        if closed:
            time.sleep(0.3)
            return [c for c in conns if c.poll_closed(0)]
        left = deadline - time.monotonic()
        if left <= 0:
            return []
        try:
            select.select([c.sock for c in conns if not c.eof], [], [], min(0.1, left))
        except (OSError, ValueError):
            time.sleep(0.05)


class PingFlooder:
    """A WebSocket client past its handshake (a RawWS, best with a small
    SO_RCVBUF) that never reads and sends masked 125-byte pings as fast as it
    can on a thread of its own, until max_bytes are sent or max_seconds pass
    (sending that blocks, because the server stopped reading, or fails,
    because it closed, is expected); then, still without reading, it watches
    the TCP state for the server's FIN or reset until watch_seconds after the
    start (or for the server to close its socket: see server_holds).
    rate: bytes per second at most (None: as fast as it can).
    Afterwards: sent (bytes), stop_reason, blocked_s (time spent in sends
    that timed out), t_start, t_stop, t_closed (None: still open) and
    close_how."""

    PAYLOAD = 125

    def __init__(self, raw, max_bytes=150 * 1024 * 1024, max_seconds=6.0, watch_seconds=15.0,
                 rate=None):
        self.raw = raw
        self.rate = rate
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.watch_seconds = watch_seconds
        self.sent = 0
        self.stop_reason = None
        self.blocked_s = 0.0
        self.t_start = None
        self.t_stop = None
        self.t_closed = None
        self.close_how = None
        self.error = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ping-flooder", daemon=True)

    def start(self):
        self.t_start = time.monotonic()
        self.thread.start()
        return self

    def stop(self):
        self._stop.set()

    def join(self, timeout):
        self.thread.join(timeout)
        return not self.thread.is_alive()

    @property
    def done(self):
        return self.t_start is not None and not self.thread.is_alive()

    def _run(self):
        sock = self.raw.sock
        frame = RawWS.build_frame(OP_PING, b"p" * self.PAYLOAD)
        chunk = memoryview(frame * 512)
        off = 0
        try:
            sock.settimeout(0.2)
            end = self.t_start + self.max_seconds
            while True:
                if self._stop.is_set():
                    self.stop_reason = "stopped"
                    break
                if self.sent >= self.max_bytes:
                    self.stop_reason = "max_bytes"
                    break
                if time.monotonic() >= end:
                    self.stop_reason = "max_seconds"
                    break
                t = time.monotonic()
                if self.rate:
                    ahead = self.sent / float(self.rate) - (t - self.t_start)
                    if ahead > 0:
                        self._stop.wait(min(ahead, 0.2))
                        continue
                try:
                    n = sock.send(chunk[off:])
                except socket.timeout:
                    self.blocked_s += time.monotonic() - t
                    continue
                except OSError as e:
                    self.t_closed = time.monotonic()
                    self.close_how = "send failed: %s" % (type(e).__name__,)
                    self.stop_reason = "closed"
                    break
                self.sent += n
                off = (off + n) % len(chunk)
            self.t_stop = time.monotonic()
            watch_end = self.t_start + self.watch_seconds
            while self.t_closed is None and not self._stop.is_set():
                st = tcp_state(sock)
                if st != "ESTABLISHED":
                    self.t_closed = time.monotonic()
                    self.close_how = "tcp state %s" % st
                    break
                if not server_holds(sock):
                    # closed by the server, its FIN queued behind data this
                    # client never reads: the client cannot see it
                    self.t_closed = time.monotonic()
                    self.close_how = "the server closed its socket (FIN behind unread data)"
                    break
                if time.monotonic() >= watch_end:
                    break
                time.sleep(0.05)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            self.error = e
        if self.t_stop is None:
            self.t_stop = time.monotonic()

    def close_code(self, timeout=3):
        """After the server ended the connection: read what is left for a
        close frame.  Its code, "eof" / "reset" when the TCP connection ended
        without one (or the kernel dropped it), "timeout"."""
        deadline = time.monotonic() + timeout
        raw = self.raw
        try:
            while time.monotonic() < deadline:
                f = raw.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
                if f is None:
                    return "reset" if raw.reset else "eof"
                if f.opcode == OP_CLOSE:
                    return close_code(f.payload, 1005)
        except TimeoutError:
            return "timeout"
        except (HarnessError, OSError) as e:
            return "broken (%s)" % (e,)
        return "timeout"
