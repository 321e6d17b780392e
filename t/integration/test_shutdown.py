"""SIGTERM: clients get 1001, the process exits 0 within drain_timeout, and
nothing that was not delivered is lost."""

import signal
import time

import harness

DRAIN = 5.0


def test_sigterm_closes_clients_with_1001_and_exits_0(start_notifyd, ws_client, raw_client):
    d = start_notifyd(drain_timeout="%ds" % DRAIN)
    clients = [ws_client(d, u) for u in (60, 60, 61)]
    raw = raw_client(d, 62)
    code, took = d.signal_and_wait(signal.SIGTERM, DRAIN + 1)
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
    code, _ = notifyd.signal_and_wait(signal.SIGINT, 10)
    assert code == 0, code
    assert c.wait_closed(2) == 1001


def test_sigterm_during_traffic_loses_nothing(start_notifyd, ws_client, vhost, note):
    """SIGTERM while messages flow: everything published was either delivered
    or is still in the queue."""
    d = start_notifyd(drain_timeout="%ds" % DRAIN)
    c = ws_client(d, 64)
    n = 2000
    t = harness.SeqPublisher(vhost, "user.64", n).start()
    t.wait_published(n // 3, 30, 0.005, "a third of the messages published")
    code, _ = d.signal_and_wait(signal.SIGTERM, DRAIN + 2)
    t.join(60)
    assert not t.errors, t.errors
    assert code == 0, "exit status %s after SIGTERM" % code
    c.wait_closed(3)
    got = harness.received_seqs(c)
    left = harness.queued_seqs(vhost, d.queue)
    lost, dups, _ = harness.seq_coverage(range(n), got, left)
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
