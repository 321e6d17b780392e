"""Load and churn: a reconnect storm, connections opened and closed without
end while messages flow (with slow and misbehaving clients), slow readers
next to fast ones.  The daemon survives, serves the others promptly, and its
memory and descriptors come back to their level afterwards; it then stops
cleanly (exit 0; under the ASan build LeakSanitizer turns any leak into a
failing exit status, which the start_notifyd fixture reports).

CI sizes here; the long versions (10,000-connection storm from several
processes, 30-minute churn, valgrind) are in scripts/soak.  Knobs:
TEST_STORM_N (2000), TEST_CHURN_SECONDS (30), TEST_VALGRIND=0 (skip the
valgrind churn) or 1 (run it even on a sanitizer build), TEST_VALGRIND_SECONDS
(10)."""

import os
import resource
import shutil
import sys
import threading
import time

import pytest

import harness

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "soak"))
import scenarios  # noqa: E402
import wsswarm  # noqa: E402

STORM_N = int(os.environ.get("TEST_STORM_N", "2000"))
CHURN_S = float(os.environ.get("TEST_CHURN_SECONDS", "30"))


@pytest.fixture
def swarm():
    s = wsswarm.Swarm()
    yield s
    s.stop()


connections = scenarios.connections


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = min(hard, want) if hard != resource.RLIM_INFINITY else want
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return soft


# ----------------------------------------------------------------------------
# reconnect storm


@pytest.mark.deadline(150)
def test_reconnect_storm(start_notifyd, swarm, publisher, note):
    """STORM_N clients connect at once, all get in (max_connections high
    enough, ip_connect_rate 0); a broadcast reaches every one; then all drop
    with RST and reconnect at once (a load balancer failing over); the
    daemon counts them right, serves them, and is back to zero connections
    when they leave."""
    n = STORM_N
    limit = raise_nofile(n + 300)
    if limit < n + 100:
        pytest.skip("descriptor limit %d too low for %d clients" % (limit, n))
    d = start_notifyd(max_connections=str(n + 500), ip_connect_rate="0", workers="2")
    base = harness.proc_usage(d.pid)
    users = ["st%d" % i for i in range(n)]
    rows = []
    for wave in (1, 2):
        r = swarm.connect(d.port, users, keep=32)
        rows.append("wave %d: %d of %d in %.2fs (%.0f handshakes/s)%s"
                    % (wave, r.ok, n, r.elapsed, r.rate,
                       "; refused %r %r" % (r.statuses, r.errors) if r.failed else ""))
        assert r.ok == n, "wave %d: %d of %d clients could not connect: %r %r" % (
            wave, r.failed, n, r.statuses, r.errors)
        harness.wait_until(lambda: connections(d) == n, 20, 0.1,
                           "/health to count %d connections" % n)
        body = '{"seq":%d,"b":true,"wave":%d}' % (wave, wave)
        t0 = time.monotonic()
        publisher.publish("broadcast", body)
        harness.wait_until(lambda: all(c.nframes >= 1 for c in r.conns), 30, 0.05,
                           "the broadcast to reach all %d clients" % n)
        rows.append("broadcast to %d in %.2fs" % (n, time.monotonic() - t0))
        for c in r.conns:
            assert [scenarios.seq_of(f) for f in c.frames] == [wave], c.frames[:3]
        usage = harness.proc_usage(d.pid)
        rows.append("daemon RSS %d kB, fds %d" % (usage[0], usage[1]))
        # everybody leaves at once, abruptly
        swarm.close(r.conns, "rst" if wave == 1 else None, timeout=20)
    harness.wait_until(lambda: connections(d) == 0, 20, 0.1, "connections back to 0")
    after = harness.proc_usage(d.pid)
    note("; ".join(rows) + "; idle before: RSS %d kB fds %d, after: RSS %d kB fds %d"
         % (base[0], base[1], after[0], after[1]))
    assert d.running()
    assert after[1] <= base[1] + 2, "descriptors %d -> %d after the storm" % (base[1], after[1])
    code, took, killed = d.stop()
    assert code == 0 and not killed, "stop after the storm: exit %s in %.1fs" % (code, took)


# ----------------------------------------------------------------------------
# churn soak


@pytest.mark.deadline(int(CHURN_S) + 120)
def test_churn_soak(start_notifyd, swarm, vhost, note):
    """Connections opened and closed continuously for CHURN_S seconds (100 at
    a time, each living 0.05-1.5 s: clean closes, FIN, RST, RST in the middle
    of a frame, half handshakes, bad frames: unmasked, reserved opcode,
    invalid UTF-8, over ws_max_message_size, bad close code, oversized ping;
    and clients that never read) while about 200 messages a second flow.
    Every misbehaving client gets the right close code; afterwards
    descriptors return to their level, RSS to near it (not on an ASan
    build), the counters add up, and SIGTERM stops the daemon with exit 0."""
    d = start_notifyd(**scenarios.CHURN_CONFIG)
    r = scenarios.churn_run(d, swarm, vhost, CHURN_S)
    asan = scenarios.sanitized(d.binary)
    note("seed %d; " % r["seed"] + scenarios.churn_report(r) +
         ("; ASan build: RSS not compared (its quarantine keeps freed memory; LeakSanitizer "
          "checks at exit)" if asan else ""))
    probs = scenarios.churn_problems(r, check_rss=not asan)
    assert d.running(), "notifyd died during the churn"
    code, took, killed = d.stop()
    if code != 0 or killed:
        probs.append("SIGTERM after the churn: exit %s in %.1fs%s" % (code, took, " (killed)" if killed else ""))
    assert not probs, "; ".join(probs)


@pytest.mark.deadline(300)
def test_churn_under_valgrind(session, start_notifyd, swarm, vhost, workdir, note):
    """A shorter churn with notifyd under valgrind memcheck
    (--leak-check=full --error-exitcode=99): no invalid access, no definite
    leak at exit.  About 25 s for TEST_VALGRIND_SECONDS=10 of churn; skipped
    for a sanitizer build and with TEST_VALGRIND=0; scripts/soak --valgrind
    runs a longer one."""
    want = os.environ.get("TEST_VALGRIND", "")
    if want == "0":
        pytest.skip("TEST_VALGRIND=0")
    vg = shutil.which("valgrind")
    if not vg:
        pytest.skip("valgrind is not installed (apt-get install valgrind)")
    if scenarios.sanitized(session.binary) and want != "1":
        pytest.skip("a sanitizer build (valgrind and ASan or TSan do not mix)")
    seconds = float(os.environ.get("TEST_VALGRIND_SECONDS", "10"))
    d = start_notifyd(ready_timeout=60, drain_timeout="10s", **scenarios.CHURN_CONFIG)
    d.stop()
    wrapper = os.path.join(workdir, "notifyd-valgrind")
    vlog = os.path.join(workdir, "valgrind.log")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec %s --leak-check=full --show-leak-kinds=definite,indirect "
                "--errors-for-leak-kinds=definite,indirect --error-exitcode=99 --log-file=%s "
                "%s \"$@\"\n" % (vg, vlog, d.binary))
    os.chmod(wrapper, 0o755)
    d.binary = wrapper
    d.start(wait=True, timeout=60)
    r = scenarios.churn_run(d, swarm, vhost, seconds, concurrent=30)
    code, took, killed = d.stop(timeout=60)
    with open(vlog, errors="replace") as f:
        text = f.read()
    summary = [l for l in text.splitlines() if "ERROR SUMMARY" in l or "definitely lost" in l
               or "indirectly lost" in l or "Invalid" in l][:20]
    note("valgrind churn %.0fs: %s; exit %s in %.1fs; %s" % (
        seconds, scenarios.churn_report(r), code, took, " | ".join(summary)))
    assert code == 0 and not killed, "notifyd under valgrind: exit %s (99: memcheck errors)\n%s" % (
        code, "\n".join(text.splitlines()[-60:]))


# ----------------------------------------------------------------------------
# slow readers


@pytest.mark.deadline(120)
def test_slow_readers_cut_off_others_keep_low_latency(start_notifyd, raw_client, swarm, vhost, note):
    """A client that never reads and one that reads one byte a second are
    both closed by the slow-client policy (1013: the first by
    ws_send_queue_max, the second by ws_send_timeout), while 20 normal
    clients get every broadcast with a p99 latency (publish to arrival)
    under 500 ms, measured while it happens."""
    d = start_notifyd(ws_send_queue_max="1M", ws_send_timeout="2s")
    never = raw_client(d, "sr-never", rcvbuf=4096)
    trickle = raw_client(d, "sr-trickle", rcvbuf=4096)
    r = swarm.connect(d.port, ["sr-n%d" % i for i in range(20)], keep=32, timestamps=True)
    assert r.ok == 20, (r.statuses, r.errors)
    stop = threading.Event()
    trickled = [0]

    def trickle_reader():
        deadline = time.monotonic() + 60
        trickle.sock.settimeout(1.0)
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                b = trickle.sock.recv(1)
            except (OSError, TimeoutError):
                b = b"?"
            if not b:
                return
            trickled[0] += 1
            stop.wait(1.0)

    tr = threading.Thread(target=trickle_reader, daemon=True)
    tr.start()
    p = harness.Publisher(vhost)
    sent_at = {}
    cut = None
    t_start = time.monotonic()
    i = 0
    big_never = '{"seq":-1,"big":"%s"}' % ("n" * 65536)
    # the trickle gets ~300 KB/s: once the kernel's buffers are full, its
    # oldest frame ages past ws_send_timeout before 1M queue up
    big_trickle = '{"seq":-2,"big":"%s"}' % ("t" * 32768)
    try:
        while time.monotonic() - t_start < 40:
            i += 1
            sent_at[i] = time.monotonic()
            p.publish("broadcast", '{"seq":%d,"b":true}' % i)
            if cut is None:
                p.publish("user.sr-never", big_never)
                if i % 5 == 0:
                    p.publish("user.sr-trickle", big_trickle)
            if cut is None and i % 10 == 0:
                if harness.get_metrics(d.port).value("notifyd_slow_client_disconnects_total") >= 2:
                    cut = time.monotonic() - t_start
                    t_cut_i = i
            if cut is not None and time.monotonic() - t_start > cut + 2:
                break
            time.sleep(0.02)
    finally:
        p.close()
        stop.set()
    tr.join(5)
    harness.wait_until(lambda: all(c.nframes >= i for c in r.conns), 15, 0.05,
                       "all %d broadcasts at the normal clients" % i)
    lat = []
    lat_during = []
    for c in r.conns:
        seqs = [scenarios.seq_of(f) for f in c.frames]
        assert seqs == list(range(1, i + 1)), "a normal client missed or reordered broadcasts"
        for q, ta in zip(seqs, c.times):
            ms = (ta - sent_at[q]) * 1000
            lat.append(ms)
            if cut is None or q <= t_cut_i:
                lat_during.append(ms)
    p50, p99, mx = (scenarios.percentile(lat_during, 50), scenarios.percentile(lat_during, 99),
                    max(lat_during))
    slow_log = harness.log_lines_matching(d, "ws_slow_client")
    conn_of = {}
    for line in d.log_text().splitlines():
        if "event=ws_open" in line:
            kv = dict(x.split("=", 1) for x in line.split() if "=" in x)
            conn_of[kv.get("user", "").strip('"')] = kv.get("conn")
    why = {}
    for line in slow_log:
        kv = dict(x.split("=", 1) for x in line.split() if "=" in x)
        for u in ("sr-never", "sr-trickle"):
            if kv.get("conn") == conn_of.get(u):
                why[u] = kv.get("why")
    codes = {}
    # behind a megabyte of unread frames the close frame may never be read:
    # the server drops the connection after its grace period
    try:
        codes["sr-never"], _, _ = never.expect_close(timeout=10)
    except harness.ConnectionClosed:
        codes["sr-never"] = "eof"
    except harness.HarnessError as e:
        codes["sr-never"] = "eof" if "EOF inside" in str(e) else "error (%s)" % e
    except TimeoutError:
        codes["sr-never"] = "still open"
    # the trickle reader took bytes off the socket itself: only its end is checked
    codes["sr-trickle"] = "eof" if trickle.wait_eof(10) else "still open"
    t0_log = None
    cut_at = {}
    for line in d.log_text().splitlines():
        if "event=ws_open" in line and 'user="sr-never"' in line:
            t0_log = line.split()[0][3:]
        for u in why:
            if "event=ws_slow_client" in line and "conn=%s " % conn_of.get(u) in line:
                cut_at[u] = line.split()[0][3:]
    note("both slow readers cut after %s s (%s; at %s, connected at %s; close codes %s; the trickle "
         "read %d bytes); %d "
         "broadcasts to 20 normal clients: latency p50 %.1f ms, p99 %.1f ms, max %.1f ms while the "
         "slow ones were connected; p99 over the whole run %.1f ms"
         % ("%.1f" % cut if cut is not None else "never", why, cut_at, t0_log, codes, trickled[0], i,
            p50, p99, mx,
            scenarios.percentile(lat, 99)))
    assert cut is not None, "the slow readers were not both cut off within 40 s: %s" % slow_log
    assert all(c.open for c in r.conns), "a normal client was disconnected"
    assert set(why) == {"sr-never", "sr-trickle"}, "slow-client log lines: %s" % slow_log
    for name, code in codes.items():
        assert code in (1013, "eof"), "%s: close code %r, wanted 1013" % (name, code)
    assert p99 < 500, "normal clients' p99 latency %.0f ms while slow readers hung on" % p99
