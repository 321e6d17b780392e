"""Fault and load scenarios shared by the CI tests (t/integration/test_faults.py,
test_churn.py: small sizes) and the soak driver (t/soak/soak.py: long
versions).  Each returns plain numbers; the caller decides what to assert
and prints them.

Needs harness (t/integration) and wsswarm (this directory) on sys.path.
"""

import collections
import os
import random
import threading
import time

import harness


# ---- process numbers ---------------------------------------------------------------


proc_usage = harness.proc_usage  # (VmRSS kB, open descriptors, threads)

sanitized = harness.sanitized


def fd_kinds(pid):
    """Counter of what the descriptors of pid point at (socket, pipe,
    anon_inode:[eventfd], /dev/null...), for reports."""
    c = collections.Counter()
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        try:
            t = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        c[t.split(":[")[0] if t.startswith(("socket:", "pipe:")) else t] += 1
    return c


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def in_flight(port):
    """notifyd_messages_in_flight from /metrics (a quick read, no format check)."""
    st, _, body = harness.http_get(port, "/metrics", timeout=2)
    for line in body.split(b"\n"):
        if line.startswith(b"notifyd_messages_in_flight "):
            return int(float(line.split()[1]))
    return 0


# ---- numbered messages ------------------------------------------------------------------


def seq_of(payload):
    """The "seq" of a body b'{"seq":N,...}' (fast path), else None."""
    if payload.startswith(b'{"seq":'):
        end = payload.find(b",", 7)
        if end < 0:
            end = payload.find(b"}", 7)
        try:
            return int(payload[7:end])
        except ValueError:
            return None
    return None


class Stream:
    """What was published: seq -> target ("broadcast" or a user id)."""

    def __init__(self):
        self.target = {}
        self.order = []

    def add(self, seq, target):
        self.target[seq] = target
        self.order.append(seq)


def publish_stream(vhost, stream, items, counter, errors, pad=0, stop=None):
    """Publish items [(seq, target)] with confirms, recording each in stream
    and counting in counter[0].  Runs in a thread of its own."""
    padding = ',"pad":"%s"' % ("x" * pad) if pad else ""

    def messages():
        for seq, target in items:
            if stop is not None and stop.is_set():
                break
            if target == "broadcast":
                yield "broadcast", '{"seq":%d,"b":true%s}' % (seq, padding)
            else:
                yield "user." + target, '{"seq":%d,"to":"%s"}' % (seq, target)
            stream.add(seq, target)
            counter[0] += 1

    harness.publish_all(vhost, messages(), errors)


def coverage(stream, conns, left_seqs, excluded=()):
    """Check "what clients received plus what is left in the queue covers
    every message": a message no longer in the queue was acked, so every
    connection it targeted (that the daemon did not close itself) has it.

    conns: wsswarm.Conn with .frames (payloads) and .user.
    Returns a dict of numbers and lists."""
    by_user = collections.defaultdict(list)
    for c in conns:
        by_user[str(c.user)].append(c)
    excluded = set(id(c) for c in excluded)
    got = {}            # id(conn) -> set of seqs
    same_conn_dups = 0
    stray = set()
    for c in conns:
        s = set()
        for f in c.frames:
            q = seq_of(f)
            if q is None or q not in stream.target:
                stray.add(q)
                continue
            if q in s:
                same_conn_dups += 1
            s.add(q)
        got[id(c)] = s
    left = collections.Counter(left_seqs)
    lost = []           # (seq, target, connections that miss it)
    acked_dups = 0      # received by every target and still in the queue
    partial = 0         # received by some targets, not all, still in the queue
    inflight_bcast = 0  # broadcasts received by some connection and still in the queue
    received_any = 0
    for seq in stream.order:
        target = stream.target[seq]
        targets = conns if target == "broadcast" else by_user.get(target, [])
        targets = [c for c in targets if id(c) not in excluded]
        have = sum(1 for c in targets if seq in got[id(c)])
        if have:
            received_any += 1
        if seq in left:
            if targets and have == len(targets):
                acked_dups += 1
            elif have:
                partial += 1
            if have and target == "broadcast":
                inflight_bcast += 1
            continue
        if have < len(targets):
            lost.append((seq, target, len(targets) - have))
    left_unknown = [q for q in left if q not in stream.target]
    queue_dups = sum(n - 1 for n in left.values() if n > 1)
    return {
        "published": len(stream.order),
        "received_any": received_any,
        "left": sum(left.values()),
        "lost": lost,
        "dups_received_and_left": acked_dups,
        "partial_left": partial,
        "inflight_broadcasts": inflight_bcast,
        "same_conn_dups": same_conn_dups,
        "queue_dups": queue_dups,
        "stray": sorted(x for x in stray if x is not None)[:20] + ([None] if None in stray else []),
        "left_unknown": left_unknown[:20],
    }


def summarize(cov):
    return ("published %d, received (by some target) %d, left in queue %d, duplicates "
            "(received by all and left) %d, partly received and left %d, broadcasts in flight at "
            "the kill %d, lost %d, duplicate frames on one connection %d"
            % (cov["published"], cov["received_any"], cov["left"], cov["dups_received_and_left"],
               cov["partial_left"], cov["inflight_broadcasts"], len(cov["lost"]),
               cov["same_conn_dups"]))


def problems(cov):
    out = []
    if cov["lost"]:
        out.append("lost %d messages (gone from the queue but missing on some target connection), "
                   "first %r" % (len(cov["lost"]), cov["lost"][:10]))
    if cov["same_conn_dups"]:
        out.append("%d frames arrived twice on the same connection" % cov["same_conn_dups"])
    if cov["stray"]:
        out.append("unexpected frames: %r" % cov["stray"])
    if cov["left_unknown"]:
        out.append("unknown messages in the queue: %r" % cov["left_unknown"])
    if cov["queue_dups"]:
        out.append("%d messages twice in the queue" % cov["queue_dups"])
    return out


# ---- one crash instant --------------------------------------------------------------------


def crash_instant(start_daemon, vhost, queue, swarm, rng, base, users=5, per_user=2, extra=20,
                  n_msgs=600, bcast_every=10, pad=0, rcvbuf=None, kill_by="published",
                  kill_lo=0.2, kill_hi=0.8, sources=None, slow=0, slow_pulse=False,
                  user_every=None, publishers=2, min_in_flight=1, name="crash"):
    """Start a daemon (start_daemon(name) -> harness.Notifyd on queue), connect
    users x per_user + extra clients (extra: one user each, broadcasts only),
    publish n_msgs numbered messages (every bcast_every-th a broadcast, the
    rest round-robin to the users; or with user_every, every user_every-th to
    a user and the rest broadcasts), kill -9 at a random instant, then
    compare what the clients got with what is left in the queue.

    kill_by="published": after a random count of confirmed publishes;
    "inflight": after a random count of confirmed publishes (the stream goes
    on), at the first moment /metrics shows a delivery taken and not yet
    acked (so the kill falls inside a fan-out);
    "frames": after a random share of all expected frames reached the
    clients.  Returns a dict."""
    d = start_daemon(name)
    ulist = ["%s-u%d" % (name, i) for i in range(users)]
    names = [u for u in ulist for _ in range(per_user)] + ["%s-x%d" % (name, i) for i in range(extra)]
    t0 = time.monotonic()
    r = swarm.connect(d.port, names[:len(names) - slow], rcvbuf=rcvbuf, sources=sources, keep=32)
    if slow:
        r2 = swarm.connect(d.port, names[len(names) - slow:], rcvbuf=2048, sources=sources, keep=32)
        r = r._replace(conns=r.conns + r2.conns, ok=r.ok + r2.ok, failed=r.failed + r2.failed)
    t_conn = time.monotonic() - t0
    if r.failed:
        d.kill9()
        raise AssertionError("%d of %d clients could not connect: %r %r"
                             % (r.failed, len(names), r.statuses, r.errors))
    items = []
    nb = 0
    # kill_by="inflight": the stream runs on (up to 10 x n_msgs) until the kill
    total = n_msgs * 10 if kill_by == "inflight" else n_msgs
    for i in range(total):
        seq = base + i
        if user_every:
            is_b = i % user_every != 0
        else:
            is_b = bool(bcast_every) and i % bcast_every == 0
        if is_b:
            items.append((seq, "broadcast"))
            nb += 1
        else:
            items.append((seq, ulist[i % users]))
    expected_frames = nb * len(names) + (total - nb) * per_user
    throttle = None
    if slow:
        # the last slow clients stop reading (pulse=False) or read in pulses
        if slow_pulse:
            throttle = swarm.throttle(r.conns[-slow:])
        else:
            swarm.call(lambda: [c.proto.t.pause_reading() for c in r.conns[-slow:]])
    stream = Stream()
    counter = [0]
    errors = []
    frames0 = swarm.frames_total
    stop = threading.Event()
    # "inflight": publishers side by side keep the daemon busy fanning out
    npub = publishers if kill_by == "inflight" else 1
    threads = [threading.Thread(target=publish_stream,
                                args=(vhost, stream, items[j::npub], counter, errors, pad, stop),
                                daemon=True) for j in range(npub)]
    for t in threads:
        t.start()

    class _All:
        @staticmethod
        def is_alive():
            return any(x.is_alive() for x in threads)

        @staticmethod
        def join(timeout):
            end = time.monotonic() + timeout
            for x in threads:
                x.join(max(0.0, end - time.monotonic()))
    t = _All
    if kill_by == "published":
        kill_at = rng.randint(int(n_msgs * kill_lo), int(n_msgs * kill_hi))
        harness.wait_until(lambda: counter[0] >= kill_at or errors or not t.is_alive(), 120, 0.001,
                           "%d messages published" % kill_at)
        time.sleep(rng.uniform(0, 0.01))
        at = "after %d of %d published (target %d)" % (counter[0], n_msgs, kill_at)
    elif kill_by == "inflight":
        # after a random share was published, the first moment /metrics
        # shows deliveries taken and not yet acked (a fan-out under way)
        kill_at = rng.randint(int(n_msgs * kill_lo), int(n_msgs * kill_hi))
        harness.wait_until(lambda: counter[0] >= kill_at or errors or not t.is_alive(), 120, 0.001,
                           "%d messages published" % kill_at)
        seen = [0]

        def busy():
            seen[0] = in_flight(d.port)
            return seen[0] >= min_in_flight or not t.is_alive()
        try:
            harness.wait_until(busy, 30, 0, "deliveries in flight")
        except TimeoutError:
            pass
        at = "after %d published, %d deliveries in flight" % (counter[0], seen[0])
    else:
        kill_at = rng.randint(int(expected_frames * kill_lo), int(expected_frames * kill_hi))
        harness.wait_until(lambda: swarm.frames_total - frames0 >= kill_at or errors, 120, 0.001,
                           "%d frames received" % kill_at)
        at = "after %d of %d frames received (%d published)" % (
            swarm.frames_total - frames0, expected_frames, counter[0])
    closed_before = [c for c in r.conns if c.close_code is not None]
    d.kill9()
    t_kill = time.monotonic()
    stop.set()  # what was published so far is the stream to account for
    if throttle is not None:
        throttle.set()
    if slow:
        swarm.resume_reading(r.conns[-slow:])
    t.join(120)
    if t.is_alive():
        raise AssertionError("publisher stuck")
    if errors:
        raise AssertionError("publisher failed: %r" % errors)
    still = swarm.wait_ended(r.conns, 15)
    vhost.wait_no_consumer(queue, timeout=20)
    left = [seq_of(b) for _, b, _ in vhost.drain(queue, timeout=120)]
    cov = coverage(stream, r.conns, left, excluded=closed_before)
    cov.update({"name": name, "connections": len(names), "connect_s": t_conn, "kill": at,
                "still_open_after_kill": still, "closed_by_daemon_before_kill": len(closed_before),
                "wait_after_kill_s": time.monotonic() - t_kill})
    for c in r.conns:  # free the memory of this instant
        c.frames = []
    return cov


# ---- churn --------------------------------------------------------------------------------


CHURN_CONFIG = dict(max_connections="5000", ws_max_message_size="4k", ws_send_queue_max="64k",
                    ws_send_timeout="2s", handshake_timeout="2s", ws_ping_interval="3s",
                    ws_pong_timeout="1s", ip_connect_rate="0")


def churn_publisher(vhost, users, stop, counts, errors, rate=200, seed=7):
    """Messages at about rate per second until stop: to random churn users,
    every tenth a broadcast, every fiftieth an 8 KiB one (slow clients fill
    up).  Runs in a thread of its own."""
    rng = random.Random(seed)

    def messages():
        i = 0
        while not stop.is_set():
            i += 1
            if i % 10 == 0:
                yield "broadcast", '{"seq":%d,"b":true}' % i
            elif i % 50 == 1:
                yield "user." + rng.choice(users), '{"seq":%d,"big":"%s"}' % (i, "b" * 8192)
            else:
                yield "user." + rng.choice(users), '{"seq":%d}' % i
            counts[0] = i

    harness.publish_all(vhost, messages(), errors, rate=rate)


def _merge(total, part):
    for k, v in part.items():
        if k == "slow_conns":
            continue
        if isinstance(v, collections.Counter):
            total.setdefault(k, collections.Counter()).update(v)
        elif k == "max_open":
            total[k] = max(total.get(k, 0), v)
        elif isinstance(v, (int, float)):
            total[k] = total.get(k, 0) + v
    return total


def connections(d):
    st, h = d.health()
    return h.get("connections") if isinstance(h, dict) else None


def churn_run(d, swarm, vhost, seconds, concurrent=100, seed=None, chunk=None, progress=None,
              rate=200, warmup=2.0):
    """Warm up, take the daemon's baseline, churn for seconds (in chunks of
    chunk seconds, calling progress(text) after each) with about rate
    messages a second flowing, let everything settle.  Returns a dict:
    base/peak/after (RSS kB, fds, threads), stats, metrics, sent, seed."""
    users = ["ch%d" % i for i in range(60)]
    seed = seed if seed is not None else int(time.time())
    # warm-up: the first connections size the allocator's arenas and
    # libevent's tables; the baseline is taken once they are gone
    swarm.churn(d.port, warmup, users, concurrent=concurrent, life=(0.05, 0.5), seed=seed + 1,
                max_ws_message=4096)
    harness.wait_until(lambda: connections(d) == 0, 30, 0.1,
                       "connections to return to 0 after the warm-up")
    time.sleep(0.5)
    base = proc_usage(d.pid)
    stop = threading.Event()
    sent = [0]
    errors = []
    t = threading.Thread(target=churn_publisher, args=(vhost, users, stop, sent, errors, rate),
                         daemon=True)
    t.start()
    total = {}
    peak = base
    t0 = time.monotonic()
    n = 0
    try:
        while True:
            left = seconds - (time.monotonic() - t0)
            if left <= 0.5:
                break
            n += 1
            part = swarm.churn(d.port, min(left, chunk or seconds), users, concurrent=concurrent,
                               life=(0.05, 1.5), seed=seed + 10 * n, max_ws_message=4096)
            _merge(total, part)
            u = proc_usage(d.pid)
            peak = tuple(max(a, b) for a, b in zip(peak, u))
            if progress is not None:
                progress("churn %5.1f min: %d connections opened, %d messages sent, daemon RSS %d kB, "
                         "fds %d, threads %d, open now %s"
                         % ((time.monotonic() - t0) / 60, total.get("opened", 0), sent[0], u[0], u[1],
                            u[2], connections(d)))
            if not d.running():
                break
    finally:
        stop.set()
        t.join(30)
    if errors:
        raise AssertionError("publisher failed: %r" % errors)
    harness.wait_until(lambda: connections(d) == 0, 30, 0.1, "connections to return to 0")
    vhost.wait_queue_empty(d.queue, timeout=30)
    time.sleep(1.0)
    after = proc_usage(d.pid)
    total["elapsed"] = time.monotonic() - t0
    return {"base": base, "peak": peak, "after": after, "stats": total,
            "metrics": harness.get_metrics(d.port), "sent": sent[0], "seed": seed,
            "seconds": seconds}


def _rejected_sum(m):
    return sum(v for (name, labels), v in m.samples.items() if name == "notifyd_messages_rejected_total")


def churn_report(r):
    st, m = r["stats"], r["metrics"]
    base, peak, after = r["base"], r["peak"], r["after"]
    return ("%.0fs: %d connections opened (%.0f/s, at most %d at once), %d frames received, %d "
            "messages published; behaviours %s; close codes seen %s; slow clients cut %d; daemon "
            "RSS %d kB -> peak %d kB -> %d kB after, fds %d -> peak %d -> %d after; consumed %d "
            "acked %d rejected %d"
            % (r["seconds"], st.get("opened", 0), st.get("opened", 0) / max(1e-9, st.get("elapsed", 1)),
               st.get("max_open", 0), st.get("frames", 0), r["sent"],
               dict(st.get("done", {})), dict(st.get("codes", {})),
               m.value("notifyd_slow_client_disconnects_total"),
               base[0], peak[0], after[0], base[1], peak[1], after[1],
               m.value("notifyd_messages_consumed_total"), m.value("notifyd_messages_acked_total"),
               _rejected_sum(m)))


def churn_problems(r, rss_slack_kb=6144, rss_ratio=1.3, check_rss=True):
    st, m = r["stats"], r["metrics"]
    base, after = r["base"], r["after"]
    out = []
    for key in ("wrong_code", "not_closed", "timeouts", "errors", "refused"):
        if st.get(key):
            out.append("%s: %r" % (key, dict(st[key])))
    if after[1] > base[1] + 2:
        out.append("descriptors did not come back: %d before, %d after" % (base[1], after[1]))
    if check_rss and after[0] > base[0] * rss_ratio + rss_slack_kb:
        out.append("RSS did not come back: %d kB before, %d kB after" % (base[0], after[0]))
    consumed = m.value("notifyd_messages_consumed_total")
    acked = m.value("notifyd_messages_acked_total")
    rej = _rejected_sum(m)
    dropped = m.value("notifyd_acks_dropped_total")
    if consumed != acked + rej + dropped:
        out.append("consumed %d != acked %d + rejected %d + dropped %d" % (consumed, acked, rej, dropped))
    opened = m.value("notifyd_ws_connections_opened_total")
    closed = m.value("notifyd_ws_connections_closed_total")
    if opened != closed:
        out.append("ws connections opened %d but closed %d with none open" % (opened, closed))
    return out
