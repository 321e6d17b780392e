"""attackers - hostile clients for the soak's hostile phase (t/soak/soak.py
--phases hostile), the long version of t/integration/test_hostile.py.

Run as a process of its own (soak.py hostile-worker ...) so that its CPU
and its GIL stay apart from the normal clients whose latency the phase
measures.  Each attacker is a thread that repeats its attack until the end
time, each from a source address of its own on loopback (so that the
per-address cap bites only the one that tests it), and records what the
daemon did:

  ping_flood     a WebSocket client with SO_RCVBUF 4096 that never reads and
                 sends masked 125-byte pings (at most --flood-rate bytes/s,
                 at most 150 MB or 6 s a round); the daemon must end the
                 connection within 15 s of the start of the round
  slow_keepalive GET /health answered, then a second request on the same
                 connection at one byte every 0.2 s: closed within
                 handshake_timeout + 1.5 s of the request's start
  slow_body      GET /health answered, then on the same connection POST /push
                 without credentials, Content-Length: 1000000, the body at
                 one byte every 0.2 s: answered 401 (before the body) or
                 closed, within handshake_timeout + 1.5 s
  rst_flood      200 connect+RST every 2 s: the daemon's descriptor count
                 must be back near where it was (+50: other attackers come
                 and go meanwhile) 1.5 s after each burst
  per_ip_cap     max_connections_per_ip WebSocket clients, then 5 more from
                 the same address: those must be refused (503); held 3 s,
                 closed, again

Every loop is bounded by the end time; every socket has a timeout.
The result is one JSON object on stdout: per attacker, rounds and the
rounds that broke the bound ("bad"), with examples.
"""

import json
import os
import threading
import time
import urllib.parse

import harness

SOURCES = {"ping_flood": "127.0.0.11", "slow_keepalive": "127.0.0.12", "slow_body": "127.0.0.13",
           "rst_flood": "127.0.0.14", "per_ip_cap": "127.0.0.15"}


class Record:
    """Rounds of one attacker: counts and a few examples of each outcome."""

    def __init__(self, name):
        self.name = name
        self.rounds = 0
        self.bad = 0
        self.errors = 0
        self.outcomes = {}
        self.examples = []
        self.bad_examples = []
        self.values = []     # a number per round (seconds to close, MB sent...)
        self.lock = threading.Lock()

    def add(self, outcome, bad=False, example=None, value=None):
        with self.lock:
            self.rounds += 1
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if value is not None:
                self.values.append(value)
            if bad:
                self.bad += 1
                if example and len(self.bad_examples) < 5:
                    self.bad_examples.append(example)
            elif example and len(self.examples) < 3:
                self.examples.append(example)

    def error(self, e):
        with self.lock:
            self.errors += 1
            if len(self.bad_examples) < 5:
                self.bad_examples.append("error: %r" % (e,))

    def summary(self):
        v = sorted(self.values)
        return {"rounds": self.rounds, "bad": self.bad, "errors": self.errors,
                "outcomes": self.outcomes, "examples": self.examples,
                "bad_examples": self.bad_examples,
                "max": v[-1] if v else None, "median": v[len(v) // 2] if v else None}


def _loop(rec, stop, end, body, pause=0.2):
    while not stop.is_set() and time.monotonic() < end:
        try:
            body()
        except Exception as e:  # noqa: BLE001 - recorded, the attack goes on
            rec.error(e)
            stop.wait(0.5)
        stop.wait(pause)


def ws_connect(port, user, source, rcvbuf=None):
    c = harness.RawHTTP(port, source=source, rcvbuf=rcvbuf, timeout=5)
    try:
        r = c.handshake("/ws?userId=%s" % urllib.parse.quote(user, safe=""))
    except BaseException:
        c.close()
        raise
    return c, r


def ping_flood(a, rec, stop, end):
    k = [0]

    def one():
        k[0] += 1
        c, r = ws_connect(a.port, "atk-flood-%d" % k[0], SOURCES["ping_flood"], rcvbuf=4096)
        try:
            if r.status != 101:
                rec.add("handshake %d" % r.status, bad=False)
                stop.wait(1.0)
                return
            f = harness.PingFlooder(c, max_bytes=150 * 1024 * 1024, max_seconds=6.0,
                                    watch_seconds=min(15.0, max(1.0, end + 10 - time.monotonic())),
                                    rate=a.flood_rate).start()
            f.join(30)
            f.stop()
            f.join(5)
            took = None if f.t_closed is None else f.t_closed - f.t_start
            ex = "%.1f MB in %.1fs, %s" % (f.sent / 1048576.0, f.t_stop - f.t_start,
                                           "closed after %.1fs (%s)" % (took, f.close_how)
                                           if took is not None else "not closed")
            if took is None:
                rec.add("not closed within 15 s", bad=True, example=ex)
            else:
                rec.add("closed", bad=took > 15.0, example=ex, value=round(took, 2))
        finally:
            c.close()
    _loop(rec, stop, end, one, pause=0.5)


def _after_keepalive(a, rec, stop, end, source, attack):
    """Round after round until end: a connection from source, a keep-alive
    GET /health first (the first request of a connection always had its
    deadline, the next ones did not), then attack(c, bound) on it."""
    bound = a.handshake_timeout + 1.5

    def one():
        c = harness.RawHTTP(a.port, source=source, timeout=5)
        try:
            c.send_request("GET", "/health")
            r = c.read_response(5)
            if r.status != 200:
                rec.add("first answer %d" % r.status)
                return
            attack(c, bound)
        finally:
            c.close()
    _loop(rec, stop, end, one)


def slow_keepalive(a, rec, stop, end):
    def attack(c, bound):
        req = harness.build_http_request("GET", "/health", [("Host", "127.0.0.1"),
                                                            ("X-Slow", "s" * 200)])
        t0 = time.monotonic()
        t_closed, sent = c.trickle(req, 0.2, until=min(end + 5, t0 + bound + 2.0))
        if t_closed is None:
            rec.add("open after %.1fs" % (time.monotonic() - t0), bad=True,
                    example="%d bytes trickled, still open" % sent)
        else:
            took = t_closed - t0
            rec.add("closed", bad=took > bound, value=round(took, 2),
                    example="closed %.2fs after the request began" % took)
    _after_keepalive(a, rec, stop, end, SOURCES["slow_keepalive"], attack)


def slow_body(a, rec, stop, end):
    def attack(c, bound):
        t0 = time.monotonic()
        c.send_request("POST", "/push", [("Content-Type", "application/json"),
                                         ("Content-Length", "1000000")])
        t_closed, sent = c.trickle(b"x" * 1000, 0.2, until=min(end + 5, t0 + bound + 2.0))
        status = bytes(c.buf[:12]).decode("latin-1", "replace")
        if t_closed is None:
            rec.add("open after %.1fs" % (time.monotonic() - t0), bad=True,
                    example="%d body bytes trickled, still open, answer %r" % (sent, status))
        else:
            took = t_closed - t0
            got = status[9:12] if status.startswith("HTTP/1.") else "nothing"
            rec.add("closed, answer %s" % got, bad=took > bound, value=round(took, 2),
                    example="closed %.2fs after the request began, %d body bytes read, answer %s"
                    % (took, sent, got))
    _after_keepalive(a, rec, stop, end, SOURCES["slow_body"], attack)


def rst_flood(a, rec, stop, end):
    def one():
        base = harness.proc_fd_count(a.pid)
        n = harness.rst_flood(a.port, 200, source=SOURCES["rst_flood"])
        t = time.monotonic()
        peak = last = base
        while time.monotonic() - t < 1.5:
            last = harness.proc_fd_count(a.pid)
            peak = max(peak, last)
            if last <= base + 5:
                break
            time.sleep(0.05)
        rec.add("flood", bad=last > base + 50, value=last - base,
                example="%d connect+RST: fds %d before, peak %d, %d after %.2fs"
                % (n, base, peak, last, time.monotonic() - t))
    _loop(rec, stop, end, one, pause=2.0)


def per_ip_cap(a, rec, stop, end):
    cap = a.per_ip_cap
    k = [0]

    def one():
        held = []
        try:
            ok = 0
            for i in range(cap):
                if time.monotonic() >= end:
                    return
                k[0] += 1
                c, r = ws_connect(a.port, "atk-cap-%d" % k[0], SOURCES["per_ip_cap"])
                held.append(c)
                ok += r.status == 101
            over = {}
            for i in range(5):
                k[0] += 1
                try:
                    c, r = ws_connect(a.port, "atk-cap-%d" % k[0], SOURCES["per_ip_cap"])
                    held.append(c)
                    st = r.status
                except (harness.HarnessError, OSError):
                    st = "closed"
                over[st] = over.get(st, 0) + 1
            ex = "%d of %d under the cap accepted; over the cap: %r" % (ok, cap, over)
            rec.add("round", bad=over.get(101, 0) > 0 or ok < cap, example=ex, value=over.get(101, 0))
            stop.wait(3.0)
        finally:
            for c in held:
                c.close()
    _loop(rec, stop, end, one, pause=1.0)


ATTACKERS = {"ping_flood": ping_flood, "slow_keepalive": slow_keepalive, "slow_body": slow_body,
             "rst_flood": rst_flood, "per_ip_cap": per_ip_cap}


def run(a):
    """Run the attackers named in a.attackers (copies of slow ones: a.copies)
    for a.seconds; returns {attacker: summary}."""
    end = time.monotonic() + a.seconds
    stop = threading.Event()
    recs = {}
    threads = []
    for name in a.attackers:
        n = a.copies if name in ("slow_keepalive", "slow_body") else 1
        rec = recs.setdefault(name, Record(name))
        for i in range(n):
            t = threading.Thread(target=ATTACKERS[name], args=(a, rec, stop, end),
                                 name="%s-%d" % (name, i), daemon=True)
            t.start()
            threads.append(t)
    try:
        while time.monotonic() < end and any(t.is_alive() for t in threads):
            time.sleep(0.2)
    finally:
        stop.set()
        join_end = time.monotonic() + 30
        for t in threads:
            t.join(max(0.1, join_end - time.monotonic()))
    out = {n: r.summary() for n, r in recs.items()}
    out["_still_running"] = [t.name for t in threads if t.is_alive()]
    return out


def main(a):
    if a.nofile:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(a.nofile, hard), hard))
    res = run(a)
    print(json.dumps(res), flush=True)
    os._exit(0)  # daemon threads may still sit in a bounded wait
