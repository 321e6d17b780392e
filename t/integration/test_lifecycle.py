"""Life cycle: SIGHUP reload, sd_notify readiness and watchdog, SIGTERM
drain, the JSON log format."""

import json
import os
import re
import signal
import time

import pytest

import harness
from harness import push, recv_exact


def wait_log(path, pattern, timeout=5, start=0):
    """Wait until the file at path has a line matching pattern (a regex)
    after byte offset start; returns that line."""
    rx = re.compile(pattern)
    found = []

    def look():
        try:
            with open(path, "rb") as f:
                f.seek(start)
                for line in f.read().decode("utf-8", "replace").splitlines():
                    if rx.search(line):
                        found.append(line)
                        return True
        except OSError:
            return False
        return False
    harness.wait_until(look, timeout, 0.05, "%r in %s" % (pattern, path))
    return found[0]


def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def test_sighup_reloads_push_keys_and_keeps_connections(start_notifyd_x, ws_client, raw_client):
    d = start_notifyd_x(push_keys="old1-0123456789ab, keep-0123456789ab")
    c = ws_client(d, 3)
    raw = raw_client(d, 4)
    assert push(d.port, {"user_id": "3", "k": "old1"}, key="old1-0123456789ab").status == 202
    recv_exact(c, b'{"user_id":"3","k":"old1"}')

    d.rewrite_config(push_keys="keep-0123456789ab, new1-0123456789ab")
    mark = size(d.log_path)
    d.signal(signal.SIGHUP)
    wait_log(d.log_path, r"event=reloaded", start=mark)
    a = push(d.port, {"user_id": "3", "k": "new1"}, key="new1-0123456789ab")
    assert a.status == 202, "the key added by the reload is refused: %r" % a
    recv_exact(c, b'{"user_id":"3","k":"new1"}')
    a = push(d.port, {"user_id": "3", "k": "old1"}, key="old1-0123456789ab")
    assert a.status == 401, "the key removed by the reload still works: %r" % a
    assert push(d.port, {"user_id": "3", "k": "keep"}, key="keep-0123456789ab").status == 202
    recv_exact(c, b'{"user_id":"3","k":"keep"}')
    assert c.open
    # the raw connection is still a working WebSocket
    raw.send_frame(harness.OP_PING, b"still there?")
    f = raw.recv_frame(3)
    assert f is not None and f.opcode == harness.OP_PONG and f.payload == b"still there?", f

    # a configuration that does not load changes nothing, and kills nothing
    with open(d.conf_path, "a") as f:
        f.write("no_such_key = 1\n")
    mark = size(d.log_path)
    d.signal(signal.SIGHUP)
    wait_log(d.log_path, r"reload_failed|level=error", start=mark)
    assert d.running(), "a bad configuration on SIGHUP stopped notifyd"
    assert push(d.port, {"user_id": "3", "k": "keep2"}, key="keep-0123456789ab").status == 202
    assert push(d.port, {"user_id": "3"}, key="old1-0123456789ab").status == 401
    recv_exact(c, b'{"user_id":"3","k":"keep2"}')
    assert c.open


def test_sighup_reopens_log_file(start_notifyd_x, ws_client, workdir):
    log = os.path.join(workdir, "rotated.log")
    d = start_notifyd_x(log_file=log)
    wait_log(log, r"event=started")
    c = ws_client(d, 5)
    wait_log(log, r"event=ws_open .*user=\"5\"")
    os.rename(log, log + ".1")
    assert not os.path.exists(log)
    d.signal(signal.SIGHUP)
    # a new file, with the lines written after the reload
    wait_log(log, r"event=reloaded")
    c.close()
    wait_log(log, r"event=ws_close .*user=\"5\"")
    with open(log + ".1") as f:
        old = f.read()
    assert "event=ws_close" not in old, "lines after SIGHUP still go to the renamed file"
    assert "event=started" in old
    with open(log) as f:
        new = f.read()
    assert "event=started" not in new


def watchdog_wrapper(workdir, binary, pid_mode):
    """A shell script that sets WATCHDOG_PID (to its own pid, which exec
    hands to notifyd, or to 1) and execs notifyd."""
    path = os.path.join(workdir, "notifyd-wd-%s.sh" % pid_mode)
    val = "$$" if pid_mode == "self" else "1"
    with open(path, "w") as f:
        f.write('#!/bin/sh\nWATCHDOG_PID=%s\nexport WATCHDOG_PID\nexec "%s" "$@"\n' % (val, binary))
    os.chmod(path, 0o755)
    return path


@pytest.mark.deadline(60)
def test_sd_notify_ready_watchdog_stopping(start_notifyd_x, session, workdir, note):
    sock = harness.NotifySocket()
    other = harness.NotifySocket()
    try:
        d = start_notifyd_x(extra_env={"NOTIFY_SOCKET": sock.path, "WATCHDOG_USEC": "500000"},
                            binary=watchdog_wrapper(workdir, session.binary, "self"))
        assert sock.wait_for("READY=1", 5) is not None, "no READY=1 (got %r)" % sock.received
        # WATCHDOG=1 from the loop, at least every WATCHDOG_USEC/2 or so
        msgs = sock.collect(2.0)
        pings = [t for t, m in msgs if "WATCHDOG=1" in m.split("\n")]
        assert len(pings) >= 5, "%d WATCHDOG=1 in 2s with WATCHDOG_USEC=500000: %r" % (len(pings), msgs)
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        # systemd wants one within every 0.5 s; allow for this test's own
        # scheduling delays on a busy machine
        assert max(gaps) < 0.6, "watchdog gaps %r (WATCHDOG_USEC=500000)" % gaps
        note("watchdog pings every %.0f ms" % (1000 * sum(gaps) / len(gaps)))

        # WATCHDOG_PID naming another process: no watchdog pings, READY still
        e = start_notifyd_x(name="other-pid",
                            extra_env={"NOTIFY_SOCKET": other.path, "WATCHDOG_USEC": "500000"},
                            binary=watchdog_wrapper(workdir, session.binary, "pid1"))
        assert other.wait_for("READY=1", 5) is not None, "no READY=1 from the second daemon"
        msgs = other.collect(1.2)
        assert not [m for _, m in msgs if "WATCHDOG=1" in m], \
            "WATCHDOG=1 sent although WATCHDOG_PID is another process: %r" % msgs
        e.stop()

        # SIGTERM: STOPPING=1
        d.signal(signal.SIGTERM)
        t = sock.wait_for("STOPPING=1", 5)
        assert t is not None, "no STOPPING=1 after SIGTERM (got %r)" % sock.received[-5:]
        assert d.wait_exit(8) == 0
    finally:
        sock.close()
        other.close()


def test_sd_notify_watchdog_without_pid(start_notifyd_x):
    sock = harness.NotifySocket()
    try:
        d = start_notifyd_x(extra_env={"NOTIFY_SOCKET": sock.path, "WATCHDOG_USEC": "400000"})
        assert sock.wait_for("READY=1", 5) is not None
        msgs = sock.collect(1.0)
        assert sum("WATCHDOG=1" in m for _, m in msgs) >= 2, msgs
        d.stop()
    finally:
        sock.close()


@pytest.mark.deadline(90)
def test_sigterm_mid_burst_every_message_received_or_queued(start_notifyd, ws_client, vhost, note):
    """Two connections of one user, a burst, SIGTERM in the middle: for each
    connection every message was received or is still in the queue, and
    notifyd exits 0 within drain_timeout."""
    drain = 5.0
    d = start_notifyd(drain_timeout="5s", amqp_prefetch="64")
    conns = [ws_client(d, 66), ws_client(d, 66)]
    n = 1500
    t = harness.SeqPublisher(vhost, "user.66", n).start()
    harness.wait_until(lambda: conns[0].received >= 200, 30, 0.005, "200 messages received")
    code, took = d.signal_and_wait(signal.SIGTERM, drain + 2)
    t.join(60)
    assert not t.errors, t.errors
    assert code == 0, "exit status %s %.1fs after SIGTERM" % (code, took)
    assert took <= drain + 1, "took %.1fs to exit (drain_timeout %.0fs)" % (took, drain)
    for c in conns:
        assert c.wait_closed(3) == 1001, c.close_code
    left = set(harness.queued_seqs(vhost, d.queue))
    for i, c in enumerate(conns):
        got = harness.received_seqs(c)
        assert got == sorted(got), "connection %d got messages out of order" % i
        lost = harness.seq_coverage(range(n), got, left).lost
        assert not lost, "connection %d lost %d messages: %r" % (i, len(lost), lost[:20])
    note("received %d and %d, left in queue %d, exit after %.2fs" % (
        conns[0].received, conns[1].received, len(left), took))


@pytest.mark.deadline(90)
def test_second_sigterm_during_slow_drain_stops_at_once(start_notifyd, raw_client, ws_client, publisher, note):
    d = start_notifyd(drain_timeout="30s", ws_send_queue_max="256M", ws_send_timeout="120s",
                      ws_ping_interval="120s", ws_pong_timeout="60s")
    raw_client(d, "slow", rcvbuf=4096)  # never reads (the fixture keeps it open)
    fast = ws_client(d, "fast")
    big = ('{"d":"%s"}' % ("s" * 64000)).encode()
    for _ in range(96):
        publisher.publish("user.slow", big)
    marker = b'{"title":"after the big ones"}'
    publisher.publish("user.fast", marker)
    recv_exact(fast, marker, timeout=15)

    # frames stuck in the slow client's buffer keep deliveries in flight
    def in_flight():
        st, h = d.health()
        return isinstance(h, dict) and h.get("in_flight", 0) > 0
    harness.wait_until(in_flight, 10, 0.1, "deliveries in flight for the slow client")
    mark = size(d.log_path)
    d.signal(signal.SIGTERM)
    wait_log(d.log_path, r"event=shutdown_started", start=mark)
    time.sleep(1.5)
    assert d.running(), "notifyd exited although the slow client holds unwritten frames " \
        "(drain_timeout 30s):\n" + d.log_tail(10)
    code, took = d.signal_and_wait(signal.SIGTERM, 3)
    assert code is not None, "still running 3s after the second SIGTERM"
    assert code == 0, "exit status %s after the second SIGTERM" % code
    note("stopped %.2fs after the second SIGTERM" % took)
    assert took < 2.0, "the second SIGTERM took %.2fs" % took


def test_json_log_lines(start_notifyd, url_client, publisher, vhost):
    d = start_notifyd(log_format="json", push_keys="pk-secret-4711-0815")
    odd = 'a"b\\c \u00e9/x'
    c = url_client(d.ws_url(odd))
    body = b'{"title":"json logs"}'
    publisher.publish("user." + odd, body)
    recv_exact(c, body)
    publisher.publish("user.3", b"not json")
    assert push(d.port, {"user_id": "3"}, key="bad-key-0815").status == 401
    assert push(d.port, {"user_id": "3"}, key="pk-secret-4711-0815").status == 202
    vhost.wait_queue_empty(d.queue)
    c.close()
    code, _, _ = d.stop()
    assert code == 0
    events = []
    for line in d.log_text().splitlines():
        if line.startswith("==== start"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            pytest.fail("log line is not JSON: %r" % line)
        assert isinstance(obj, dict), line
        for k in ("ts", "level", "event"):
            assert isinstance(obj.get(k), str) and obj[k], "no %s in %r" % (k, line)
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)$", obj["ts"]), obj["ts"]
        assert obj["level"] in ("debug", "info", "warn", "error"), obj
        events.append(obj)
    names = [e["event"] for e in events]
    for want in ("started", "ws_open", "ws_close", "message_rejected", "stopped"):
        assert want in names, "no %s event in %r" % (want, names)
    opened = [e for e in events if e["event"] == "ws_open"]
    assert any(e.get("user") == odd for e in opened), "user id not kept intact in JSON: %r" % opened
    for secret in ("pk-secret-4711", "bad-key-0815"):
        assert secret not in d.log_text(), "a push key was logged"
