"""A TCP proxy in front of the broker whose failure mode the test controls
(pass, drop, stall, reset): for test_faults, test_hostile_broker,
test_churn and the soak driver."""

import asyncio
import threading
import urllib.parse

from .util import HarnessError, linger_rst


class TcpProxy:
    """A TCP proxy on a free loopback port in front of target (host, port),
    run by an asyncio loop on its own thread.  Modes, applied at once to the
    connections it holds and to new ones:
      pass   forward both ways (held connections get their upstream now);
      drop   close both sides (FIN); new connections are accepted and closed;
      stall  stop forwarding and keep every socket open, as a network that
             loses packets would; new connections are accepted and held;
      reset  abort both sides with RST (SO_LINGER 0); new ones too.
    accepted counts connections accepted; open_pairs() those held now."""

    MODES = ("pass", "drop", "stall", "reset")

    def __init__(self, target_port, target_host="127.0.0.1", mode="pass"):
        self.target = (target_host, int(target_port))
        self.mode = mode
        self.accepted = 0
        self.pairs = set()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        self.thread.start()
        if not self._ready.wait(10):
            raise HarnessError("TCP proxy did not start")
        self.port = self._server.sockets[0].getsockname()[1]

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(
            self.loop.create_server(lambda: _ProxySide(self, None, "c"), "127.0.0.1", 0,
                                    backlog=256))
        self._ready.set()
        self.loop.run_forever()

    def _call(self, fn, timeout=10):
        done = threading.Event()
        box = []

        def wrap():
            try:
                box.append(fn())
            finally:
                done.set()
        self.loop.call_soon_threadsafe(wrap)
        if not done.wait(timeout):
            raise HarnessError("TCP proxy loop not answering")
        return box[0] if box else None

    @property
    def url_host_port(self):
        return "127.0.0.1:%d" % self.port

    def amqp_url(self, vhost="/", user="guest", password="guest"):
        return "amqp://%s:%s@127.0.0.1:%d/%s" % (user, password, self.port,
                                                   urllib.parse.quote(vhost, safe=""))

    def set_mode(self, mode):
        if mode not in self.MODES:
            raise ValueError(mode)

        def apply():
            self.mode = mode
            for p in list(self.pairs):
                p.apply_mode()
        self._call(apply)

    def open_pairs(self):
        return self._call(lambda: len(self.pairs))

    def close(self):
        def shut():
            self._server.close()
            for p in list(self.pairs):
                p.close(rst=False)
        try:
            self._call(shut)
        except HarnessError:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class _ProxyPair:
    def __init__(self, proxy):
        self.proxy = proxy
        self.c = None          # client side transport
        self.u = None          # upstream transport
        self.pending = bytearray()
        self.connecting = False
        self.c_gone = False
        self.u_gone = False
        self.closed = False

    def apply_mode(self):
        mode = self.proxy.mode
        if self.closed:
            return
        if mode in ("drop", "reset"):
            self.close(rst=mode == "reset")
        elif mode == "stall":
            for t in (self.c, self.u):
                if t is not None and not t.is_closing():
                    t.pause_reading()
        else:  # pass
            if self.c_gone or self.u_gone:
                # an end went away while stalled: pass that on now
                self.close(rst=False)
                return
            for t in (self.c, self.u):
                if t is not None and not t.is_closing():
                    t.resume_reading()
            if self.u is None and not self.connecting:
                self.connect_upstream()

    def connect_upstream(self):
        self.connecting = True
        loop = self.proxy.loop

        async def go():
            try:
                await loop.create_connection(lambda: _ProxySide(self.proxy, self, "u"),
                                             *self.proxy.target)
            except OSError:
                self.close(rst=False)
        asyncio.ensure_future(go())

    def upstream_made(self, t):
        self.u = t
        self.connecting = False
        if self.closed:
            t.close()
            return
        if self.pending:
            t.write(bytes(self.pending))
            self.pending.clear()
        if self.proxy.mode == "stall":
            t.pause_reading()
        elif self.proxy.mode in ("drop", "reset"):
            self.close(rst=self.proxy.mode == "reset")

    def forward(self, side, data):
        if side == "c":
            if self.u is not None:
                self.u.write(data)
            else:
                self.pending += data
        elif self.c is not None:
            self.c.write(data)

    def lost(self, side):
        if side == "c":
            self.c_gone = True
        else:
            self.u_gone = True
        if self.proxy.mode == "stall":
            return  # a partition does not carry the FIN either
        self.close(rst=False)

    @staticmethod
    def _abort(t, rst):
        if t is None or t.is_closing():
            return
        if rst:
            linger_rst(t.get_extra_info("socket"))
            t.abort()
        else:
            t.close()

    def close(self, rst):
        if self.closed:
            return
        self.closed = True
        self.proxy.pairs.discard(self)
        self._abort(self.c, rst)
        self._abort(self.u, rst)


class _ProxySide(asyncio.Protocol):
    def __init__(self, proxy, pair, side):
        self.proxy = proxy
        self.pair = pair
        self.side = side

    def connection_made(self, transport):
        if self.side == "c":
            self.proxy.accepted += 1
            self.pair = _ProxyPair(self.proxy)
            self.pair.c = transport
            self.proxy.pairs.add(self.pair)
            mode = self.proxy.mode
            if mode in ("drop", "reset"):
                self.pair.close(rst=mode == "reset")
            elif mode == "stall":
                transport.pause_reading()
            else:
                self.pair.connect_upstream()
        else:
            self.pair.upstream_made(transport)

    def data_received(self, data):
        self.pair.forward(self.side, data)

    def connection_lost(self, exc):
        if self.pair is not None:
            self.pair.lost(self.side)
