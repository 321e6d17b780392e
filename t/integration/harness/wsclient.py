"""A real WebSocket client (python-websockets) run on one shared event loop
thread, and recv_exact for any client with recv()."""

import asyncio
import queue
import threading
import time

import websockets
import websockets.exceptions

from .util import _short, run_in_loop
from .wsproto import ConnectionClosed


class _Loop:
    _inst = None
    _lock = threading.Lock()

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ws-loop", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls):
        with cls._lock:
            if cls._inst is None:
                cls._inst = cls()
            return cls._inst

    def run(self, coro, timeout):
        return run_in_loop(self.loop, coro, timeout)


_CLOSED = object()


class WSClient:
    """A real WebSocket client (python-websockets).  Messages received are
    queued by a reader task; recv() takes them with a timeout."""

    def __init__(self, url, connect_timeout=5, **kw):
        self.url = url
        self.messages = queue.Queue()
        self.closed = threading.Event()
        self.close_code = None
        self.close_reason = None
        self.received = 0
        self.arrivals = []  # (time.monotonic(), message) for every message
        self._loop = _Loop.get()
        # No permessage-deflate unless a test asks for it (compression=
        # "deflate"): tests of sizes and slow readers count raw bytes.
        opts = dict(ping_interval=None, max_size=None, max_queue=None, close_timeout=3,
                    open_timeout=connect_timeout, compression=None)
        opts.update(kw)
        async def connect():
            return await websockets.connect(url, **opts)
        self.ws = self._loop.run(connect(), connect_timeout + 2)
        self._task = self._loop.run(self._start_reader(), 5)

    async def _start_reader(self):
        return asyncio.ensure_future(self._reader())

    async def _reader(self):
        try:
            async for m in self.ws:
                self.received += 1
                self.arrivals.append((time.monotonic(), m))
                self.messages.put(m)
        except websockets.exceptions.ConnectionClosed:
            pass
        except Exception as e:  # noqa: BLE001 - surfaced through recv()
            self.messages.put(e)
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self.closed.set()
            self.messages.put(_CLOSED)

    def recv(self, timeout=5):
        """Next message (str for text frames, bytes for binary ones)."""
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no message within %.1fs from %s" % (timeout, self.url)) from None
        if m is _CLOSED:
            self.messages.put(_CLOSED)  # sticky
            raise ConnectionClosed(self.close_code, self.close_reason)
        if isinstance(m, Exception):
            raise m
        return m

    def recv_n(self, n, timeout=10):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("got %d of %d messages within %.1fs" % (len(out), n, timeout))
            out.append(self.recv(left))
        return out

    def expect_nothing(self, wait=0.5):
        """Assert no message arrives within wait seconds; returns nothing."""
        try:
            m = self.messages.get(timeout=wait)
        except queue.Empty:
            return
        if m is _CLOSED:
            self.messages.put(_CLOSED)
            return
        raise AssertionError("unexpected message on %s: %r" % (self.url, _short(m)))

    def pending(self):
        """Messages received so far and not taken (non-blocking)."""
        out = []
        while True:
            try:
                m = self.messages.get_nowait()
            except queue.Empty:
                return out
            if m is _CLOSED:
                self.messages.put(_CLOSED)
                return out
            if not isinstance(m, Exception):
                out.append(m)

    @property
    def open(self):
        return not self.closed.is_set()

    def ping(self, timeout=5):
        async def p():
            w = await self.ws.ping()
            await asyncio.wait_for(w, timeout)
        self._loop.run(p(), timeout + 1)

    def wait_closed(self, timeout=5):
        """Close code sent by the server (None if the TCP connection just ended)."""
        if not self.closed.wait(timeout):
            raise TimeoutError("connection %s still open after %.1fs" % (self.url, timeout))
        return self.close_code

    def close(self, code=1000, timeout=5):
        if self.closed.is_set():
            return
        try:
            self._loop.run(self.ws.close(code), timeout)
        except Exception:  # noqa: BLE001
            pass
        self.closed.wait(timeout)


def recv_exact(client, body, timeout=5):
    """The next message on client is a text frame carrying exactly body (bytes)."""
    m = client.recv(timeout)
    assert isinstance(m, str), "expected a text frame, got %s %r" % (type(m).__name__, _short(m))
    got = m.encode("utf-8")
    assert got == body, "body differs (%d vs %d bytes):\n got %r\nwant %r" % (
        len(got), len(body), got[:300], body[:300])
