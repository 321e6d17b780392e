"""Faults: kill -9 at random instants with many clients and broadcasts, the
broker lost in every way a network can lose it (a TCP proxy the test
controls: drop, stall, reset), a broker application restart and a broker
that blocks publishers (memory alarm) on a node the test owns, and SIGTERM
under load.  The promise under test: a message taken from the broker is
never lost; the daemon keeps serving through broker outages; clients stay
connected; nothing is acked twice; nothing leaks.

The long versions (20 kill instants, thousands of connections) are in
scripts/soak."""

import collections
import json
import os
import random
import signal
import sys
import threading
import time

import pytest

import harness

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "soak"))
import scenarios  # noqa: E402
import wsswarm  # noqa: E402

HB = 2  # amqp_heartbeat for the broker outage tests (seconds)
PUSH_TIMEOUT = 2.0
# "closed 406" is how mq_link logs a channel or connection close with that
# code; a bare "406" also matches ports such as port=34069 (a CI failure).
ACK_ERRORS = ("closed 406", "precondition", "unknown delivery tag")


@pytest.fixture
def swarm():
    s = wsswarm.Swarm()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def faults_broker(request):
    """A RabbitMQ node owned by this module's tests (stop_app, memory alarm):
    the session's node is never stopped or blocked."""
    b = harness.OwnBroker()
    try:
        b.start()
    except harness.HarnessError as e:
        pytest.skip("cannot start a private RabbitMQ node: %s" % e)
    yield b
    b.close()


@pytest.fixture
def own_vhost(faults_broker, test_id):
    """A fresh vhost on the module's own node."""
    br = faults_broker.broker()
    name = "faults-%s" % test_id
    br.add_vhost(name)
    return harness.Vhost(br, name)


def metric(d, name, **labels):
    return harness.get_metrics(d.port).value(name, **labels)


def health_state(d):
    st, h = d.health(timeout=2)
    state = h.get("broker", {}).get("state") if isinstance(h, dict) else None
    return st, state, h


def push_ok_eventually(d, body, timeout=20):
    """POST /push until 202 (the publishing connection may come back a little
    after the consumer).  Returns (answer, statuses seen)."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        a = harness.push(d.port, body, timeout=PUSH_TIMEOUT + 5)
        seen.append(a.status)
        if a.status == 202 or time.monotonic() > deadline:
            return a, seen
        time.sleep(0.2)


# ----------------------------------------------------------------------------
# kill -9 at random instants


INSTANTS = 6       # kill instants in CI (scripts/soak: 20)
BIG = 2            # of which during a broadcast to ~1,000 connections
BIG_CONNS = 1000


@pytest.mark.deadline(240)
def test_kill9_at_random_instants_users_and_broadcasts(start_notifyd, vhost, queue_name, swarm,
                                                       note):
    """A numbered stream to several users (two connections each) plus
    broadcasts; kill -9 at random instants, BIG of them while a broadcast
    fans out to ~1,000 connections (two publishers keep the daemon busy; the
    kill comes after a random number of publishes, at the first moment
    /metrics shows 3 deliveries in flight; such a kill counts as "during a
    broadcast" when afterwards a broadcast is found both received by some
    connection and still in the queue).  After each kill: every message gone from the
    queue reached every connection it targeted (what clients received plus
    what is left in the queue covers everything); duplicates (received and
    still queued, so delivered again later) are counted and printed."""
    seed = int(os.environ.get("TEST_SEED") or time.time() * 1000) & 0xFFFFFFFF
    rng = random.Random(seed)
    note("seed %d (set TEST_SEED to replay)" % seed)
    plan = [False] * (INSTANTS - BIG) + [True] * BIG
    rng.shuffle(plan)
    failures = []
    hit_broadcast = 0
    extra_big = 0
    k = 0
    totals = collections.Counter()
    while k < len(plan):
        big = plan[k]

        def start(name):
            return start_notifyd(name=name, queue_name=queue_name, max_connections="5000")

        if big:
            r = scenarios.crash_instant(
                start, vhost, queue_name, swarm, rng, base=k * 1000000, users=5, per_user=2,
                extra=BIG_CONNS, n_msgs=200, user_every=4, pad=200, kill_by="inflight",
                kill_lo=0.2, kill_hi=0.8, publishers=2, min_in_flight=3, name="k%d-big" % k)
        else:
            r = scenarios.crash_instant(
                start, vhost, queue_name, swarm, rng, base=k * 1000000, users=5, per_user=2,
                extra=20, n_msgs=600, bcast_every=10, kill_by="published", name="k%d" % k)
        note("instant %d%s (%d connections, killed %s): %s"
             % (k, " [broadcast]" if big else "", r["connections"], r["kill"], scenarios.summarize(r)))
        for p in scenarios.problems(r):
            failures.append("instant %d: %s" % (k, p))
        if r["received_any"] == 0:
            failures.append("instant %d: the clients received nothing before the kill" % k)
        if r["still_open_after_kill"]:
            failures.append("instant %d: %d clients still connected 15s after kill -9"
                            % (k, r["still_open_after_kill"]))
        totals["published"] += r["published"]
        totals["left"] += r["left"]
        totals["dups"] += r["dups_received_and_left"] + r["partial_left"]
        if big:
            if r["inflight_broadcasts"]:
                hit_broadcast += 1
            elif extra_big < 4:
                # no broadcast was caught half-way (about one kill in four):
                # one more try
                extra_big += 1
                plan.append(True)
        k += 1
    note("%d instants: %d messages, %d left in queues, %d delivered twice or partly before the kill"
         % (k, totals["published"], totals["left"], totals["dups"]))
    if hit_broadcast < BIG:
        failures.append("only %d kill(s) fell while a broadcast was in flight (wanted %d)"
                        % (hit_broadcast, BIG))
    assert not failures, "; ".join(failures)


# ----------------------------------------------------------------------------
# broker lost through a TCP proxy: drop, stall, reset


CYCLES = ["drop", "stall", "reset", "drop", "reset"]


@pytest.mark.deadline(150)
def test_broker_outages_through_proxy(start_notifyd, ws_client, vhost, publisher, note):
    """Each cycle cuts the broker off through a TCP proxy (FIN, silence, RST):
    clients stay connected, /health turns 503 within 2 x amqp_heartbeat,
    POST /push answers 503 within push_timeout + 1 s, messages published
    meanwhile arrive once the proxy passes again without any restart,
    notifyd_broker_reconnects_total counts each comeback, and descriptors
    and memory return to their level after the first cycle."""
    proxy = harness.TcpProxy(vhost.broker.port)
    try:
        d = start_notifyd(amqp_url=proxy.amqp_url(vhost.name), amqp_heartbeat="%ds" % HB,
                          amqp_reconnect_min="100ms", amqp_reconnect_max="1s", push_keys=harness.PUSH_KEY,
                          push_timeout="%ds" % int(PUSH_TIMEOUT))
        clients = [ws_client(d, "px"), ws_client(d, "px")]
        a, _ = push_ok_eventually(d, {"user_id": "px", "n": "first"})
        assert a.status == 202, a
        for c in clients:
            assert json.loads(c.recv(5))["n"] == "first"
        base = None
        rows = []
        failures = []
        for cyc, mode in enumerate(CYCLES):
            rec0 = metric(d, "notifyd_broker_reconnects_total")
            t0 = time.monotonic()
            proxy.set_mode(mode)
            seen = {}

            def down():
                st, state, h = health_state(d)
                seen["h"] = h
                return st == 503
            harness.wait_until(down, 2 * HB + 10, 0.05, "/health 503 after proxy mode %s" % mode)
            t503 = time.monotonic() - t0
            h = seen["h"]
            if t503 > 2 * HB + 1:
                failures.append("cycle %d (%s): /health turned 503 after %.2fs (2 x heartbeat = %ds)"
                                % (cyc, mode, t503, 2 * HB))
            if not (isinstance(h, dict) and h.get("broker", {}).get("state") in
                    ("reconnecting", "connecting") and h["broker"].get("last_error")):
                failures.append("cycle %d (%s): /health while down does not say why: %r"
                                % (cyc, mode, h))
            a = harness.push(d.port, {"user_id": "px", "n": "during %s" % mode},
                             timeout=PUSH_TIMEOUT + 10)
            t_push = a.took
            if a.status != 503 or a.took > PUSH_TIMEOUT + 1:
                failures.append("cycle %d (%s): POST /push answered %d after %.2fs (want 503 within "
                                "%.0fs)" % (cyc, mode, a.status, a.took, PUSH_TIMEOUT + 1))
            # published straight to the broker while notifyd cannot reach it
            sent = [('{"cycle":%d,"i":%d}' % (cyc, i)).encode() for i in range(10)]
            for b in sent:
                publisher.publish("user.px", b)
            time.sleep(0.3)
            for c in clients:
                if not c.open:
                    failures.append("cycle %d (%s): a client was disconnected (code %s)"
                                    % (cyc, mode, c.close_code))
            t1 = time.monotonic()
            proxy.set_mode("pass")
            d.wait_ready(20)
            tback = time.monotonic() - t1
            # every message published meanwhile arrives (a 503 push may
            # arrive as well: its publish may have reached the broker)
            for c in clients:
                got = []
                deadline = time.monotonic() + 15
                while len([m for m in got if m in sent]) < len(sent) and time.monotonic() < deadline:
                    try:
                        got.append(c.recv(max(0.1, deadline - time.monotonic())).encode())
                    except TimeoutError:
                        break
                miss = [b for b in sent if b not in got]
                if miss:
                    failures.append("cycle %d (%s): %d of %d messages published during the outage "
                                    "never arrived" % (cyc, mode, len(miss), len(sent)))
            a, statuses = push_ok_eventually(d, {"user_id": "px", "n": "after %d" % cyc})
            if a.status != 202:
                failures.append("cycle %d (%s): POST /push still failing after the broker came back: "
                                "%r (seen %r)" % (cyc, mode, a, statuses))
            for c in clients:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    m = json.loads(c.recv(max(0.1, deadline - time.monotonic())))
                    if m.get("n") == "after %d" % cyc:
                        break
            rec = metric(d, "notifyd_broker_reconnects_total")
            if rec < rec0 + 1:
                failures.append("cycle %d (%s): notifyd_broker_reconnects_total %s -> %s"
                                % (cyc, mode, rec0, rec))
            usage = harness.proc_usage(d.pid)
            if cyc == 0:
                base = usage
            rows.append("%s: 503 after %.2fs, push 503 in %.2fs, consuming %.2fs after the proxy "
                        "passed, reconnects %d, RSS %d kB, fds %d"
                        % (mode, t503, t_push, tback, rec, usage[0],
                           usage[1]))
        note("; ".join(rows))
        end = harness.proc_usage(d.pid)
        note("after %d cycles: RSS %d kB (after cycle 1: %d kB), fds %d (after cycle 1: %d), "
             "proxy accepted %d connections" % (len(CYCLES), end[0], base[0], end[1], base[1],
                                                proxy.accepted))
        if end[1] > base[1] + 1:
            failures.append("descriptors grew from %d to %d over %d broker outages"
                            % (base[1], end[1], len(CYCLES)))
        if end[0] > base[0] * 1.25 + 4096 and not scenarios.sanitized(d.binary):
            failures.append("RSS grew from %d kB to %d kB over %d broker outages"
                            % (base[0], end[0], len(CYCLES)))
        bad = harness.log_lines_matching(d, *ACK_ERRORS)
        if bad:
            failures.append("ack errors in the log: %s" % bad[:5])
        assert all(c.open for c in clients), "a client was disconnected"
        assert not failures, "; ".join(failures)
    finally:
        proxy.close()


@pytest.mark.deadline(120)
def test_acks_in_flight_across_broker_drops(start_notifyd, ws_client, vhost, note):
    """Messages flow while the broker connection drops (FIN, then RST) twice:
    every message arrives at least once, the queue ends empty, no ack reaches
    the broker for a delivery tag of a dead channel (no 406 PRECONDITION_FAILED
    "unknown delivery tag" in the log), and the counters add up: consumed =
    acked + dropped verdicts, and every dropped verdict came back as a
    redelivery."""
    proxy = harness.TcpProxy(vhost.broker.port)
    try:
        d = start_notifyd(amqp_url=proxy.amqp_url(vhost.name), amqp_heartbeat="%ds" % HB,
                          amqp_reconnect_min="100ms", amqp_reconnect_max="500ms",
                          amqp_prefetch="64")
        c = ws_client(d, "fl")
        n = 3000
        stream = scenarios.Stream()
        counter = [0]
        errors = []
        items = [(i, "fl") for i in range(n)]
        t = threading.Thread(target=scenarios.publish_stream,
                             args=(vhost, stream, items, counter, errors), daemon=True)
        t.start()
        for k, (mode, at) in enumerate([("drop", n // 4), ("reset", n // 2)]):
            harness.wait_until(lambda: c.received >= at, 60, 0.002, "%d messages received" % at)
            proxy.set_mode(mode)
            harness.wait_until(lambda: d.health()[0] == 503, 10, 0.02, "/health 503")
            time.sleep(0.2)
            proxy.set_mode("pass")
            d.wait_ready(20)
        t.join(60)
        assert not errors, errors
        assert not t.is_alive(), "publisher stuck"
        harness.wait_until(lambda: len({json.loads(m)["seq"] for _, m in c.arrivals}) >= n, 30, 0.1,
                           "every message received")
        vhost.wait_queue_empty(d.queue, timeout=15)
        got = [json.loads(m)["seq"] for _, m in c.arrivals]
        dups = len(got) - len(set(got))
        m = harness.get_metrics(d.port)
        consumed = m.value("notifyd_messages_consumed_total")
        acked = m.value("notifyd_messages_acked_total")
        dropped = m.value("notifyd_acks_dropped_total")
        redelivered = m.value("notifyd_messages_redelivered_total")
        rec = m.value("notifyd_broker_reconnects_total")
        note("%d messages, %d received (%d duplicates) across 2 broker drops; consumed %d, acked %d, "
             "verdicts dropped %d, redelivered %d, reconnects %d"
             % (n, len(got), dups, consumed, acked, dropped, redelivered, rec))
        assert set(got) == set(range(n)), "lost: %r" % sorted(set(range(n)) - set(got))[:20]
        bad = harness.log_lines_matching(d, *ACK_ERRORS)
        assert not bad, "ack errors in the log:\n" + "\n".join(bad[:10])
        assert rec >= 2, rec
        assert consumed == acked + dropped, \
            "consumed %d != acked %d + dropped %d" % (consumed, acked, dropped)
        assert redelivered >= dropped, \
            "%d verdicts dropped but only %d redeliveries" % (dropped, redelivered)
        assert acked >= n, "acked %d deliveries for %d messages" % (acked, n)
    finally:
        proxy.close()


# ----------------------------------------------------------------------------
# a broker the test owns: application restart, memory alarm


@pytest.mark.deadline(180)
@pytest.mark.parametrize("source", ["queue", "stream"])
def test_broker_app_restart_loses_nothing(faults_broker, own_vhost, start_notifyd, ws_client, note, source):
    """rabbitmqctl stop_app / start_app on the test's own node while a
    numbered stream flows: the client stays connected, /health is 503 while
    the broker is away, notifyd comes back by itself, and every message the
    broker confirmed reaches the client (durable queue, persistent
    messages: what notifyd held unacked is redelivered).  From a stream,
    notifyd goes on from the offset where it was: nothing twice either."""
    br = own_vhost.broker
    d = start_notifyd(amqp_url=own_vhost.url, amqp_heartbeat="%ds" % HB,
                      amqp_reconnect_min="100ms", amqp_reconnect_max="1s", amqp_source=source)
    c = ws_client(d, "rs")
    confirmed = []
    stop = threading.Event()
    err = []

    def pub():
        i = 0
        p = None
        while not stop.is_set() and i < 2000:
            try:
                if p is None:
                    p = harness.Publisher(own_vhost)
                p.publish("user.rs", '{"seq":%d}' % i)
                confirmed.append(i)
                i += 1
            except Exception as e:  # noqa: BLE001 - the broker is away: retry
                err.append(repr(e)[:100])
                if p is not None:
                    p.close()
                p = None
                i += 1  # the unconfirmed one is not expected
                time.sleep(0.3)
        if p is not None:
            p.close()

    t = threading.Thread(target=pub, daemon=True)
    t.start()
    harness.wait_until(lambda: c.received >= 300, 30, 0.01, "300 messages received")
    br.ctl("stop_app", timeout=60)
    t_stop = time.monotonic()
    harness.wait_until(lambda: d.health()[0] == 503, 10, 0.05, "/health 503 after stop_app")
    t503 = time.monotonic() - t_stop
    time.sleep(1)
    assert c.open, "client disconnected when the broker stopped"
    br.ctl("start_app", timeout=120)
    t_start = time.monotonic()
    d.wait_ready(30)
    tback = time.monotonic() - t_start
    harness.wait_until(lambda: len(confirmed) >= 1500 or not t.is_alive(), 60, 0.05,
                       "publishing to resume")
    stop.set()
    t.join(30)
    want = set(confirmed)
    harness.wait_until(lambda: want <= {json.loads(m)["seq"] for _, m in c.arrivals}, 30, 0.1,
                       "every confirmed message received")
    got = [json.loads(m)["seq"] for _, m in c.arrivals]
    if source == "queue":
        own_vhost.wait_queue_empty(d.queue, timeout=20)
    else:
        assert len(got) == len(set(got)), "a stream resumed where it was: %d twice" % (len(got) - len(set(got)))
        assert got == sorted(got), "in order"
    note(source + ": stop_app -> /health 503 in %.2fs; consuming %.2fs after start_app; %d confirmed, %d "
         "received (%d duplicates), %d publish errors while away; reconnects %d"
         % (t503, tback, len(want), len(got), len(got) - len(set(got)), len(err),
            metric(d, "notifyd_broker_reconnects_total")))
    assert c.open
    bad = harness.log_lines_matching(d, *ACK_ERRORS)
    assert not bad, "ack errors in the log:\n" + "\n".join(bad[:10])


def _alarm_on(br):
    p = br.ctl("status", timeout=30, check=False)
    return "memory alarm" in (p.stdout + p.stderr).lower()


@pytest.mark.deadline(150)
def test_connection_blocked_push_503_consumer_keeps_delivering(faults_broker, own_vhost,
                                                               start_notifyd, ws_client, note):
    """A memory alarm on the test's own node (vm_memory_high_watermark near 0)
    blocks publishers: POST /push answers 503 within push_timeout + 1 s,
    while messages already queued keep flowing to clients; after the
    watermark is restored (0.4), /push works again."""
    br = own_vhost.broker
    proxy = harness.TcpProxy(br.port)
    try:
        d = start_notifyd(amqp_url=proxy.amqp_url(own_vhost.name), push_keys=harness.PUSH_KEY,
                          push_timeout="%ds" % int(PUSH_TIMEOUT), amqp_heartbeat="%ds" % HB,
                          amqp_reconnect_min="100ms", amqp_reconnect_max="1s")
        c = ws_client(d, "bl")
        a, _ = push_ok_eventually(d, {"user_id": "bl", "n": "before"})
        assert a.status == 202, a
        assert json.loads(c.recv(5))["n"] == "before"
        # "before" acked (acks may wait a few ms for company): not
        # redelivered among the queued ones after the cut
        own_vhost.wait_queue_empty(d.queue, timeout=10)
        # queue 300 messages while notifyd is cut off, then block publishers
        proxy.set_mode("drop")
        harness.wait_until(lambda: d.health()[0] == 503, 10, 0.05, "/health 503")
        queued = [('{"seq":%d}' % i).encode() for i in range(300)]
        harness.publish_all(own_vhost, [("user.bl", b) for b in queued])
        try:
            br.ctl("set_vm_memory_high_watermark", "0.0000001")
            harness.wait_until(lambda: _alarm_on(br), 20, 0.2, "the memory alarm")
            t_alarm = time.monotonic()
            proxy.set_mode("pass")
            d.wait_ready(20)
            # the consumer delivers what was queued, alarm or not
            got = [m.encode() for m in c.recv_n(len(queued), timeout=30)]
            assert got == queued, "queued messages not delivered in order during the alarm"
            t_drained = time.monotonic() - t_alarm
            answers = []
            for i in range(3):
                a = harness.push(d.port, {"user_id": "bl", "n": "blocked %d" % i},
                                 timeout=PUSH_TIMEOUT + 10)
                answers.append(a)
            for a in answers:
                assert a.status == 503, "POST /push during the memory alarm: %r" % a
                assert a.took < PUSH_TIMEOUT + 1, \
                    "503 took %.2fs (push_timeout %.0fs)" % (a.took, PUSH_TIMEOUT)
            blocked_logged = harness.log_lines_matching(d, "broker_blocked")
        finally:
            br.ctl("set_vm_memory_high_watermark", "0.4")
        harness.wait_until(lambda: not _alarm_on(br), 20, 0.2, "the memory alarm to clear")
        t_clear = time.monotonic()
        a, statuses = push_ok_eventually(d, {"user_id": "bl", "n": "after"}, timeout=20)
        t_ok = time.monotonic() - t_clear
        assert a.status == 202, "POST /push after the alarm cleared: %r (seen %r)" % (a, statuses)
        late = []
        deadline = time.monotonic() + 10
        while True:
            m = json.loads(c.recv(max(0.1, deadline - time.monotonic())))
            if m.get("n") == "after":
                break
            late.append(m.get("n"))
        note("alarm: %d queued messages delivered in %.2fs; /push 503 in %s s; broker_blocked "
             "logged %d time(s); /push 202 %.2fs after the alarm cleared (statuses %s); pushes "
             "answered 503 but delivered after the alarm: %r"
             % (len(queued), t_drained, ", ".join("%.2f" % a.took for a in answers),
                len(blocked_logged), t_ok, statuses, late))
        assert c.open
    finally:
        proxy.close()


# ----------------------------------------------------------------------------
# SIGTERM under load


DRAIN = 4.0


@pytest.mark.deadline(120)
def test_sigterm_under_load(start_notifyd, vhost, queue_name, raw_client, swarm, note):
    """SIGTERM while a stream and broadcasts flow to 300 connections and one
    client that never reads: the readers get 1001, the process exits 0 within
    drain_timeout, and what clients received plus what is left in the queue
    covers every message (the non-reader's unwritten messages stay queued)."""
    # the non-reader is never cut off for slowness: only the drain ends it
    d = start_notifyd(drain_timeout="%ds" % DRAIN, max_connections="2000",
                      ws_send_queue_max="256M", ws_send_timeout="10m")
    users = ["t-u%d" % i for i in range(5)]
    names = [u for u in users for _ in range(2)] + ["t-x%d" % i for i in range(290)]
    r = swarm.connect(d.port, names)
    assert r.ok == len(names), (r.statuses, r.errors)
    slow = raw_client(d, "t-slow", rcvbuf=4096)
    big = [('{"seq":%d,"big":"%s"}' % (900000 + i, "s" * 65536)).encode() for i in range(100)]
    harness.publish_all(vhost, [("user.t-slow", b) for b in big])
    stream = scenarios.Stream()
    for i, b in enumerate(big):
        stream.add(900000 + i, "t-slow")
    items = []
    for i in range(3000):
        items.append((i, "broadcast" if i % 10 == 0 else users[i % len(users)]))
    counter = [0]
    errors = []
    t = threading.Thread(target=scenarios.publish_stream,
                         args=(vhost, stream, items, counter, errors), daemon=True)
    t.start()
    harness.wait_until(lambda: counter[0] >= 1000, 60, 0.002, "1000 messages published")
    at = counter[0]
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    code = d.wait_exit(DRAIN + 5)
    took = time.monotonic() - t0
    t.join(60)
    assert not errors, errors
    assert code is not None, "still running %.1fs after SIGTERM" % took
    still = swarm.wait_ended(r.conns, 10)
    codes = collections.Counter(c.close_code for c in r.conns)
    # what the non-reader got: complete frames, then the end
    slow_frames = []
    while True:
        try:
            f = slow.recv_frame(timeout=5)
        except (TimeoutError, harness.HarnessError):
            break
        if f is None or f.opcode == harness.OP_CLOSE:
            break
        slow_frames.append(f.payload)

    class SlowConn:
        user = "t-slow"
        frames = slow_frames
    vhost.wait_no_consumer(queue_name)
    left = [scenarios.seq_of(b) for _, b, _ in vhost.drain(queue_name)]
    # The drain gives up on the non-reader at drain_timeout: what it was not
    # sent must still be in the queue.
    cov = scenarios.coverage(stream, list(r.conns) + [SlowConn()], left)
    big_got = sum(1 for f in slow_frames if (scenarios.seq_of(f) or 0) >= 900000)
    big_left = sum(1 for q in left if q is not None and q >= 900000)
    note("SIGTERM after %d published: exit %s in %.2fs (drain_timeout %.0fs); close codes %s; "
         "non-reader got %d of %d big messages, %d left in the queue; %s"
         % (at, code, took, DRAIN, dict(codes), big_got, len(big), big_left,
            scenarios.summarize(cov)))
    failures = []
    if code != 0:
        failures.append("exit status %s after SIGTERM" % code)
    if took > DRAIN + 0.5:
        failures.append("exit took %.2fs after SIGTERM (drain_timeout %.0fs)" % (took, DRAIN))
    if still:
        failures.append("%d clients still connected after the exit" % still)
    if codes.get(1001, 0) != len(r.conns):
        failures.append("close codes %r, wanted 1001 for all %d readers" % (dict(codes), len(r.conns)))
    failures += scenarios.problems(cov)
    if big_got + big_left < len(big):
        failures.append("%d of the non-reader's messages were neither written to it nor left in the "
                        "queue (acked unsent when the drain gave up)" % (len(big) - big_got - big_left))
    assert not failures, "; ".join(failures)
