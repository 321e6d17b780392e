"""wsswarm - many light WebSocket clients in one asyncio event loop.

One Swarm runs its own event loop on a thread; the test (or soak driver)
calls it synchronously.  A client is a raw TCP socket speaking RFC 6455
through harness.wsproto (the upgrade request, the accept key, frames built
and parsed: the same code as the raw test client) in an asyncio.Protocol,
no per-message await, so one Python process holds thousands of them.

Needs harness (t/integration) on sys.path.

Used by t/integration/test_faults.py and test_churn.py (CI sizes) and by
t/soak/soak.py (the long versions behind scripts/soak).

Every wait is bounded; nothing here signals or kills a process.
"""

import asyncio
import collections
import random
import socket
import struct
import threading
import time
import urllib.parse

from harness.util import linger_rst, run_in_loop
from harness.wsproto import (OP_BIN, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                             accept_key, build_frame, close_code, frame_header, new_key,
                             parse_response_head, upgrade_request)


class Conn:
    """One client.  frames: payloads of the data frames received (when the
    swarm keeps them); times: their arrival (time.monotonic()) when asked."""

    __slots__ = ("id", "user", "ok", "status", "frames", "times", "nframes", "bytes_in",
                 "close_code", "close_sent", "eof", "reset", "error", "t_start", "t_open",
                 "t_end", "proto", "read", "opened", "ended", "kind", "note")

    def __init__(self, cid, user, read=True):
        self.id = cid
        self.user = user
        self.ok = False          # 101 received and the accept key checked
        self.status = None       # HTTP status of the handshake answer
        self.frames = []
        self.times = []
        self.nframes = 0
        self.bytes_in = 0
        self.close_code = None   # code of the server's close frame (0: empty close)
        self.close_sent = False
        self.eof = False
        self.reset = False
        self.error = None
        self.t_start = None
        self.t_open = None
        self.t_end = None
        self.proto = None
        self.read = read
        self.opened = None       # asyncio.Future: handshake done (True) or failed (False)
        self.ended = None        # asyncio.Future: TCP connection gone
        self.kind = None
        self.note = None

    @property
    def open(self):
        return self.ok and not self.eof


class _Proto(asyncio.Protocol):
    def __init__(self, swarm, conn, request, key, keep, timestamps, on_frame):
        self.swarm = swarm
        self.c = conn
        self.request = request
        self.key = key
        self.keep = keep
        self.timestamps = timestamps
        self.on_frame = on_frame
        self.buf = bytearray()
        self.handshaken = False
        self.t = None

    # transport callbacks ---------------------------------------------------
    def connection_made(self, transport):
        self.t = transport
        self.c.proto = self
        self.swarm.live.add(self)
        if self.request:
            transport.write(self.request)

    def data_received(self, data):
        c = self.c
        c.bytes_in += len(data)
        self.buf += data
        if not self.handshaken:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                if len(self.buf) > 65536:
                    self._fail("HTTP answer head too large")
                return
            head = bytes(self.buf[:i]).decode("latin-1")
            del self.buf[:i + 4]
            try:
                c.status, _, headers = parse_response_head(head)
            except ValueError:
                self._fail("bad status line %r" % head.split("\r\n")[0][:80])
                return
            if c.status != 101:
                c.error = "handshake answered %d" % c.status
                self._resolve_open(False)
                self.t.close()
                return
            accept = headers.get("sec-websocket-accept", [None])[-1]
            if accept != accept_key(self.key):
                self._fail("bad Sec-WebSocket-Accept %r" % accept)
                return
            self.handshaken = True
            c.ok = True
            c.t_open = time.monotonic()
            self.swarm.n_open += 1
            self._resolve_open(True)
            if not c.read:
                self.t.pause_reading()
        self._parse()

    def _parse(self):
        buf = self.buf
        pos = 0
        n_buf = len(buf)
        c = self.c
        sw = self.swarm
        while True:
            h = frame_header(buf, pos)
            if h is None:
                break
            b0, mk, n, off = h
            if mk is not None:
                c.error = "server sent a masked frame"
            if n_buf < off + n:
                break
            op = b0 & 0xF
            payload = bytes(buf[off:off + n])
            pos = off + n
            if op in (OP_TEXT, OP_BIN, OP_CONT):
                c.nframes += 1
                sw.frames_total += 1
                if self.keep:
                    c.frames.append(payload if self.keep is True else payload[:self.keep])
                if self.timestamps:
                    c.times.append(time.monotonic())
                if self.on_frame is not None:
                    self.on_frame(c, payload)
            elif op == OP_CLOSE:
                c.close_code = close_code(payload, 0)
                if not c.close_sent and not self.t.is_closing():
                    c.close_sent = True
                    self.t.write(build_frame(OP_CLOSE, payload[:2]))
                # the server closes TCP after its close frame; do not wait for it
                self.t.close()
            elif op == OP_PING:
                if not self.t.is_closing():
                    self.t.write(build_frame(OP_PONG, payload))
        if pos:
            del buf[:pos]

    def connection_lost(self, exc):
        c = self.c
        self.swarm.live.discard(self)
        c.eof = True
        c.t_end = time.monotonic()
        if isinstance(exc, ConnectionResetError):
            c.reset = True
        if c.ok:
            self.swarm.n_open -= 1
        if not self.handshaken:
            if c.error is None:
                c.error = "connection ended before the handshake answer (%r)" % (exc,)
            self._resolve_open(False)
        if c.ended is not None and not c.ended.done():
            c.ended.set_result(True)

    # helpers -----------------------------------------------------------------
    def _resolve_open(self, ok):
        if self.c.opened is not None and not self.c.opened.done():
            self.c.opened.set_result(ok)

    def _fail(self, why):
        self.c.error = why
        self._resolve_open(False)
        self.t.close()

    def send(self, data):
        if self.t is not None and not self.t.is_closing():
            self.t.write(data)

    def abort(self, rst=True):
        if self.t is None:
            return
        if rst:
            linger_rst(self.t.get_extra_info("socket"))
            self.t.abort()
        else:
            self.t.close()


ConnectResult = collections.namedtuple("ConnectResult", "conns ok failed statuses errors elapsed rate")


class Swarm:
    """Thousands of WebSocket clients on one event loop thread."""

    def __init__(self, name="wsswarm"):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.n_open = 0
        self.frames_total = 0
        self._next = 0
        self.live = set()
        self.thread.start()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro, timeout):
        return run_in_loop(self.loop, coro, timeout)

    def call(self, fn, *args, timeout=30):
        async def wrap():
            return fn(*args)
        return self.run(wrap(), timeout)

    # connecting --------------------------------------------------------------
    async def open_one(self, c, port, host="127.0.0.1", path=None, source=None, rcvbuf=None,
                       keep=True, timestamps=False, on_frame=None, timeout=30, raw_request=None):
        loop = self.loop
        c.opened = loop.create_future()
        c.ended = loop.create_future()
        c.t_start = time.monotonic()
        key = new_key()
        if path is None:
            path = "/ws?userId=" + urllib.parse.quote(str(c.user), safe="")
        if raw_request is None:
            req = upgrade_request(path, host, port, key)
        else:
            req = raw_request
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            if source:
                sock.bind((source, 0))
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
            await loop.create_connection(
                lambda: _Proto(self, c, req, key, keep, timestamps, on_frame), sock=sock)
        except (OSError, asyncio.TimeoutError) as e:
            sock.close()
            c.error = "connect: %r" % (e,)
            c.eof = True
            c.t_end = time.monotonic()
            if not c.opened.done():
                c.opened.set_result(False)
            if not c.ended.done():
                c.ended.set_result(True)
            return False
        if raw_request is not None and raw_request == b"":
            return True
        try:
            return await asyncio.wait_for(asyncio.shield(c.opened), timeout)
        except asyncio.TimeoutError:
            c.error = c.error or "no handshake answer within %.0fs" % timeout
            if c.proto:
                c.proto.abort(rst=False)
            return False

    def new_conn(self, user, read=True):
        self._next += 1
        return Conn(self._next, user, read)

    async def connect_many(self, port, users, concurrency=0, sources=None, **kw):
        read = kw.pop("read", True)
        conns = [self.new_conn(u, read) for u in users]
        t0 = time.monotonic()
        sem = asyncio.Semaphore(concurrency) if concurrency else None

        async def one(i, c):
            src = sources[i % len(sources)] if sources else None
            if sem is None:
                return await self.open_one(c, port, source=src, **kw)
            async with sem:
                return await self.open_one(c, port, source=src, **kw)

        await asyncio.gather(*(one(i, c) for i, c in enumerate(conns)))
        elapsed = time.monotonic() - t0
        ok = sum(1 for c in conns if c.ok)
        statuses = collections.Counter(c.status for c in conns if not c.ok)
        errors = collections.Counter((c.error or "?")[:60] for c in conns if not c.ok)
        return ConnectResult(conns, ok, len(conns) - ok, dict(statuses), dict(errors), elapsed,
                             ok / elapsed if elapsed > 0 else float("inf"))

    def connect(self, port, users, concurrency=0, sources=None, read=True, timeout=120, **kw):
        """Open one client per entry of users, all at once (or concurrency at
        a time).  Returns a ConnectResult (rate: handshakes per second)."""
        kw["read"] = read
        return self.run(self.connect_many(port, users, concurrency, sources, **kw), timeout)

    # closing -----------------------------------------------------------------
    async def _close_many(self, conns, code, timeout):
        waits = []
        for c in conns:
            if c.proto is None or c.eof:
                continue
            if code is None:
                c.proto.abort(rst=False)
            elif code == "rst":
                c.proto.abort(rst=True)
            else:
                if not c.close_sent:
                    c.close_sent = True
                    c.proto.send(build_frame(OP_CLOSE, struct.pack("!H", code)))
                if not c.read:
                    c.proto.t.resume_reading()
            waits.append(c.ended)
        if waits:
            done, pending = await asyncio.wait(waits, timeout=timeout)
            for c in conns:
                if not c.eof and c.proto is not None:
                    c.proto.abort(rst=False)
            return len(pending)
        return 0

    def close(self, conns, code=1000, timeout=10):
        """code: a close code (close handshake), None (FIN without a close
        frame) or "rst" (RST).  Returns how many had not ended within timeout
        (those are then closed)."""
        return self.run(self._close_many(list(conns), code, timeout), timeout + 5)

    async def _wait_ended(self, conns, timeout):
        waits = [c.ended for c in conns if c.ended is not None and not c.ended.done()]
        if not waits:
            return 0
        _, pending = await asyncio.wait(waits, timeout=timeout)
        return len(pending)

    def wait_ended(self, conns, timeout=10):
        """Wait for the TCP connections to end; returns how many still run."""
        return self.run(self._wait_ended(list(conns), timeout), timeout + 5)

    def resume_reading(self, conns):
        def f():
            for c in conns:
                if c.proto is not None and not c.eof:
                    c.read = True
                    c.proto.t.resume_reading()
        self.call(f)

    def send(self, c, data):
        self.call(lambda: c.proto.send(data))

    def throttle(self, conns, pause=0.2, run=0.05):
        """Make conns slow readers: reading is paused for pause seconds, then
        resumed for run seconds, over and over, until the returned
        threading.Event is set."""
        stop = threading.Event()
        conns = list(conns)

        async def pulse():
            while not stop.is_set():
                for c in conns:
                    if c.proto is not None and not c.eof:
                        c.proto.t.pause_reading()
                await asyncio.sleep(pause)
                for c in conns:
                    if c.proto is not None and not c.eof:
                        c.proto.t.resume_reading()
                await asyncio.sleep(run)
        asyncio.run_coroutine_threadsafe(pulse(), self.loop)
        return stop

    def abort_all(self, rst=False, timeout=10):
        """End every client still connected."""
        def f():
            for p in list(self.live):
                p.abort(rst=rst)
        self.call(f, timeout=timeout)

    def stop(self, timeout=10):
        async def shut():
            for t in asyncio.all_tasks():
                if t is not asyncio.current_task():
                    t.cancel()
            for p in list(self.live):
                p.abort(rst=False)
            await asyncio.sleep(0.05)
        try:
            self.run(shut(), timeout)
        except Exception:  # noqa: BLE001
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)

    # churn -----------------------------------------------------------------------
    async def _churn(self, port, duration, users, concurrent, life, weights, sources, max_ws_message,
                     stats, rng, hold_slow):
        """Run connection life cycles until duration passes: concurrent of
        them at a time, each a behaviour drawn by weights."""
        end = time.monotonic() + duration
        kinds = list(weights)
        wts = [weights[k] for k in kinds]
        slow_conns = []

        async def lifecycle(slot):
            n = 0
            while time.monotonic() < end:
                n += 1
                kind = rng.choices(kinds, wts)[0]
                user = rng.choice(users)
                src = rng.choice(sources) if sources else None
                try:
                    await asyncio.wait_for(
                        one(kind, user, src), max(5.0, life[1] * 3 + 10))
                except asyncio.TimeoutError:
                    stats["timeouts"][kind] += 1
                except Exception as e:  # noqa: BLE001 - counted, the churn goes on
                    stats["errors"][repr(e)[:80]] += 1

        async def one(kind, user, src):
            read = kind != "slow"
            c = self.new_conn(user, read)
            c.kind = kind
            stats["started"][kind] += 1
            if kind == "half_handshake":
                req = b"GET /ws?userId=" + str(user).encode() + b" HTTP/1.1\r\nHost: x\r\nUpg"
                await self.open_one(c, port, source=src, raw_request=req, timeout=10)
                await asyncio.sleep(rng.uniform(0, life[1]))
                if c.proto:
                    c.proto.abort(rst=rng.random() < 0.5)
                stats["done"][kind] += 1
                return
            ok = await self.open_one(c, port, source=src, keep=False, timeout=15,
                                     rcvbuf=4096 if kind == "slow" else None)
            if not ok:
                stats["refused"][(kind, c.status, (c.error or "")[:40])] += 1
                return
            stats["opened"] += 1
            stats["max_open"] = max(stats["max_open"], self.n_open)
            if kind == "slow":
                # never reads: held until the server cuts it off (or the end)
                slow_conns.append(c)
                stats["done"][kind] += 1
                return
            await asyncio.sleep(rng.uniform(*life))
            expect = None
            if kind == "clean":
                c.close_sent = True
                c.proto.send(build_frame(OP_CLOSE, struct.pack("!H", 1000)))
                expect = (1000,)
            elif kind == "fin":
                c.proto.abort(rst=False)
            elif kind == "rst":
                c.proto.abort(rst=True)
            elif kind == "rst_mid_frame":
                c.proto.send(build_frame(OP_TEXT, b"x" * 100)[:20])
                await asyncio.sleep(0.01)
                c.proto.abort(rst=True)
            elif kind == "unmasked":
                c.proto.send(build_frame(OP_TEXT, b'{"hi":1}', mask=False))
                expect = (1002,)
            elif kind == "bad_opcode":
                c.proto.send(build_frame(0x3, b"?"))
                expect = (1002,)
            elif kind == "bad_utf8":
                c.proto.send(build_frame(OP_TEXT, b"caf\xc3\x28 \xff"))
                expect = (1007,)
            elif kind == "too_big":
                c.proto.send(build_frame(OP_TEXT, b"y" * (max_ws_message + 1)))
                expect = (1009,)
            elif kind == "bad_close":
                c.proto.send(build_frame(OP_CLOSE, struct.pack("!H", 1005)))
                c.close_sent = True
                expect = (1002,)
            elif kind == "big_ping":
                c.proto.send(build_frame(OP_PING, b"p" * 126))
                expect = (1002,)
            if expect is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(c.ended), 10)
                except asyncio.TimeoutError:
                    stats["not_closed"][kind] += 1
                    c.proto.abort(rst=False)
                    return
                if c.close_code is None:
                    stats["eof_without_close"][kind] += 1
                elif c.close_code not in expect:
                    stats["wrong_code"][(kind, c.close_code)] += 1
                else:
                    stats["codes"][(kind, c.close_code)] += 1
            stats["frames"] += c.nframes
            stats["done"][kind] += 1

        tasks = [asyncio.ensure_future(lifecycle(i)) for i in range(concurrent)]
        await asyncio.gather(*tasks, return_exceptions=True)
        # what became of the slow ones
        for c in slow_conns:
            if c.eof:
                stats["slow_cut"] += 1
        if not hold_slow:
            for c in slow_conns:
                if not c.eof and c.proto:
                    c.proto.abort(rst=True)
        await asyncio.sleep(0)
        return slow_conns

    def churn(self, port, duration, users, concurrent=100, life=(0.1, 2.0), weights=None,
              sources=None, max_ws_message=65536, seed=None, hold_slow=False):
        """Open and close connections continuously for duration seconds.
        Returns a stats dict (counters by behaviour, close codes, problems)."""
        weights = weights or {"clean": 30, "fin": 20, "rst": 10, "rst_mid_frame": 5,
                              "half_handshake": 3, "unmasked": 3, "bad_opcode": 3, "bad_utf8": 3,
                              "too_big": 2, "bad_close": 2, "big_ping": 2, "slow": 1}
        stats = {"started": collections.Counter(), "done": collections.Counter(),
                 "refused": collections.Counter(), "codes": collections.Counter(),
                 "wrong_code": collections.Counter(), "eof_without_close": collections.Counter(),
                 "not_closed": collections.Counter(), "timeouts": collections.Counter(),
                 "errors": collections.Counter(), "opened": 0, "max_open": 0, "frames": 0,
                 "slow_cut": 0}
        rng = random.Random(seed)
        t0 = time.monotonic()
        slow = self.run(self._churn(port, duration, list(users), concurrent, life, weights, sources,
                                    max_ws_message, stats, rng, hold_slow), duration + 120)
        stats["elapsed"] = time.monotonic() - t0
        stats["slow_conns"] = slow
        return stats


def parse_ws_url_port(url):
    return urllib.parse.urlsplit(url).port
