"""SIGTERM: clients get 1001, the process exits 0 within drain_timeout, and
nothing that was not delivered is lost."""

import json
import signal
import threading
import time

import harness

DRAIN = 5.0


def test_sigterm_closes_clients_with_1001_and_exits_0(start_notifyd, ws_client, raw_client):
    d = start_notifyd(drain_timeout="%ds" % DRAIN)
    clients = [ws_client(d, u) for u in (60, 60, 61)]
    raw = raw_client(d, 62)
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    code = d.wait_exit(DRAIN + 1)
    took = time.monotonic() - t0
    assert code is not None, "still running %.1fs after SIGTERM (drain_timeout %ds)" % (took, DRAIN)
    assert code == 0, "exit status %d after SIGTERM" % code
    for c in clients:
        assert c.wait_closed(2) == 1001, "close code %s, wanted 1001" % c.close_code
    try:
        rc, reason, _ = raw.expect_close(timeout=2)
    except harness.ConnectionClosed:
        rc = "TCP closed without a close frame"
    assert rc == 1001, rc


def test_sigterm_with_idle_daemon_is_quick(notifyd):
    code, took, killed = notifyd.stop(timeout=DRAIN + 5)
    assert not killed and code == 0, (code, took)
    assert took < 3, "an idle daemon took %.1fs to stop" % took


def test_sigint_works_like_sigterm(notifyd, ws_client):
    c = ws_client(notifyd, 63)
    notifyd.signal(signal.SIGINT)
    code = notifyd.wait_exit(10)
    assert code == 0, code
    assert c.wait_closed(2) == 1001


def test_sigterm_during_traffic_loses_nothing(start_notifyd, ws_client, vhost, note):
    """SIGTERM while messages flow: everything published was either delivered
    or is still in the queue."""
    d = start_notifyd(drain_timeout="%ds" % DRAIN)
    c = ws_client(d, 64)
    n = 2000
    err = []
    published = [0]

    def pub():
        try:
            p = harness.Publisher(vhost)
            for i in range(n):
                p.publish("user.64", '{"seq":%d}' % i)
                published[0] = i + 1
            p.close()
        except Exception as e:  # noqa: BLE001
            err.append(e)

    t = threading.Thread(target=pub, daemon=True)
    t.start()
    harness.wait_until(lambda: published[0] >= n // 3, 30, 0.005, "a third of the messages published")
    d.signal(signal.SIGTERM)
    code = d.wait_exit(DRAIN + 2)
    t.join(60)
    assert not err, err
    assert code == 0, "exit status %s after SIGTERM" % code
    c.wait_closed(3)
    got = [json.loads(m)["seq"] for _, m in c.arrivals]
    vhost.wait_no_consumer(d.queue)
    left = [json.loads(b)["seq"] for _, b, _ in vhost.drain(d.queue)]
    lost = sorted(set(range(n)) - set(got) - set(left))
    dups = len(got) + len(left) - len(set(got) | set(left))
    note("received %d, left in queue %d, duplicates %d" % (len(got), len(left), dups))
    assert not lost, "lost %d messages: %r" % (len(lost), lost[:20])


def test_sighup_keeps_serving(notifyd, ws_client, publisher):
    c = ws_client(notifyd, 65)
    for _ in range(3):
        notifyd.signal(signal.SIGHUP)
        time.sleep(0.2)
    assert notifyd.running(), "notifyd exited on SIGHUP"
    assert c.open, "SIGHUP closed a client"
    body = b'{"title":"after SIGHUP"}'
    publisher.publish("user.65", body)
    harness.recv_exact(c, body)
    st, _ = notifyd.health()
    assert st == 200
