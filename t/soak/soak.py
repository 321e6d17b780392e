#!/usr/bin/python3
"""soak.py - the long versions of notifyd's fault, load and churn tests.

scripts/soak builds notifyd, starts a private RabbitMQ node and runs this;
by hand:

    t/soak/soak.py --notifyd BUILD/notifyd --broker-env BROKERDIR/env \\
        [--phases storm,churn,crash,valgrind] [--minutes 30] [--storm 10000] \\
        [--storm-procs 4] [--crash-instants 20] [--crash-conns 3000] \\
        [--valgrind-minutes 3] [--workdir DIR] [--seed N] [--hostile-seconds 300]

Phases (each bounded in time, each starting its own notifyd):
  storm     N clients from several processes, each bound to its own source
            address 127.0.0.x, all connecting at once; a broadcast must
            reach every one; then they all drop with RST.
  churn     connections opened and closed without end for --minutes while
            ~200 messages a second flow, with slow and misbehaving clients;
            the daemon's RSS and descriptors are printed every minute and
            must come back to their baseline; SIGTERM must give exit 0.
  crash     kill -9 at --crash-instants random instants (every other one
            while broadcasts fan out to --crash-conns connections): what the
            clients got plus what is left in the queue covers everything.
  valgrind  a churn of --valgrind-minutes with notifyd under valgrind
            memcheck (--leak-check=full --error-exitcode=99).
  hostile   (not in the default list) --hostile-clients normal clients get
            --hostile-rate numbered messages a second, first alone, then
            beside the attackers of attackers.py (ping flood, slow
            keep-alive, slow unauthenticated body, connect+RST flood,
            per-address cap): delivery complete, p99 latency within
            max(2 x, +20 ms) of the quiet window, RSS and descriptors
            bounded, every attack ended within its bound.
            --hostile-seconds (SOAK_HOSTILE_SECONDS, default 300).

Prints one report (also written to WORKDIR/report.txt); exit status 1 if any
phase found a problem.
"""

import argparse
import collections
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.dont_write_bytecode = True

import harness  # noqa: E402
import scenarios  # noqa: E402
import wsswarm  # noqa: E402

REPORT = []
PROBLEMS = []


def say(text):
    line = "[%s] %s" % (time.strftime("%H:%M:%S"), text)
    print(line, flush=True)


def report(text):
    REPORT.append(text)
    say(text)


def problem(phase, text):
    PROBLEMS.append("%s: %s" % (phase, text))
    say("PROBLEM %s: %s" % (phase, text))


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if soft < new:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Ctx:
    def __init__(self, args):
        self.args = args
        self.broker = harness.Broker.from_env_file(args.broker_env)
        self.workdir = args.workdir
        self.n = 0
        self.daemons = []

    def vhost(self, phase):
        name = "soak-%s-%d" % (phase, os.getpid())
        self.broker.add_vhost(name)
        return harness.Vhost(self.broker, name)

    def daemon(self, phase, vhost, binary=None, **config):
        self.n += 1
        d = harness.Notifyd(binary or self.args.notifyd, os.path.join(self.workdir, phase),
                            vhost.url, "notifyd.soak.%s" % phase, name="%s-%d" % (phase, self.n),
                            **config)
        self.daemons.append(d)
        return d

    def stop_all(self):
        for d in self.daemons:
            if d.running():
                d.stop(timeout=30)


# ---- storm ------------------------------------------------------------------------------


def storm_worker(args):
    """One client process of the storm: connect args.n clients at args.start_at
    from args.source, report, then obey commands on stdin."""
    raise_nofile(args.n + 200)
    sw = wsswarm.Swarm()
    users = ["%s%d" % (args.prefix, i) for i in range(args.n)]
    delay = args.start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    t0 = time.time()
    r = sw.connect(args.port, users, sources=[args.source] if args.source else None, keep=16,
                   timeout=300)
    t1 = time.time()
    out = {"ok": r.ok, "failed": r.failed, "statuses": {str(k): v for k, v in r.statuses.items()},
           "errors": r.errors, "t0": t0, "t1": t1, "elapsed": r.elapsed}
    print(json.dumps(out), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "wait":
            want = int(cmd[1])
            deadline = time.monotonic() + float(cmd[2])
            while time.monotonic() < deadline and not all(c.nframes >= want for c in r.conns):
                time.sleep(0.05)
            print(json.dumps({"have": sum(1 for c in r.conns if c.nframes >= want),
                              "t": time.time()}), flush=True)
        elif cmd[0] == "close":
            pending = sw.close(r.conns, "rst" if cmd[1:] == ["rst"] else None, timeout=30)
            print(json.dumps({"closed": True, "pending": pending}), flush=True)
        elif cmd[0] == "exit":
            break
    sw.stop()


def phase_storm(ctx):
    a = ctx.args
    n, procs = a.storm, a.storm_procs
    vh = ctx.vhost("storm")
    d = ctx.daemon("storm", vh, max_connections=str(n + 1000), ip_connect_rate="0")
    d.start(timeout=30)
    base = scenarios.proc_usage(d.pid)
    per = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    start_at = time.time() + 3.0
    workers = []
    for i in range(procs):
        cmd = [sys.executable, os.path.abspath(__file__), "storm-worker", "--port", str(d.port),
               "--n", str(per[i]), "--prefix", "s%d-" % i, "--source", "127.0.0.%d" % (2 + i),
               "--start-at", repr(start_at)]
        workers.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, bufsize=1))
    try:
        res = [json.loads(w.stdout.readline() or "{}") for w in workers]
        ok = sum(r.get("ok", 0) for r in res)
        failed = sum(r.get("failed", 0) for r in res)
        t_end = max(r.get("t1", start_at) for r in res)
        span = t_end - start_at
        statuses = collections.Counter()
        for r in res:
            statuses.update(r.get("statuses", {}))
        report("storm: %d of %d clients from %d processes (sources 127.0.0.2-%d) in %.2fs: %.0f "
               "handshakes/s; per process %s; failed %d %s"
               % (ok, n, procs, 1 + procs, span, ok / span if span > 0 else 0,
                  ["%d in %.2fs" % (r.get("ok", 0), r.get("elapsed", 0)) for r in res], failed,
                  dict(statuses) if statuses else ""))
        if ok != n:
            problem("storm", "%d of %d clients could not connect: %r" % (n - ok, n, res))
        try:
            harness.wait_until(lambda: scenarios.connections(d) == ok, 60, 0.2,
                               "/health to count %d connections" % ok)
        except TimeoutError as e:
            problem("storm", str(e))
        peak = scenarios.proc_usage(d.pid)
        p = harness.Publisher(vh)
        t0 = time.time()
        p.publish("broadcast", '{"seq":1,"b":true}')
        p.close()
        for w in workers:
            w.stdin.write("wait 1 60\n")
        got = [json.loads(w.stdout.readline() or "{}") for w in workers]
        have = sum(g.get("have", 0) for g in got)
        t_all = max(g.get("t", t0) for g in got) - t0
        report("storm: a broadcast reached %d of %d clients in %.2fs; daemon RSS %d kB, fds %d "
               "(idle before: %d kB, %d fds)" % (have, ok, t_all, peak[0], peak[1], base[0], base[1]))
        if have != ok:
            problem("storm", "the broadcast reached %d of %d clients" % (have, ok))
        for w in workers:
            w.stdin.write("close rst\n")
        for w in workers:
            w.stdout.readline()
        harness.wait_until(lambda: scenarios.connections(d) == 0, 60, 0.2, "connections back to 0")
        after = scenarios.proc_usage(d.pid)
        report("storm: all gone with RST; daemon RSS %d kB, fds %d" % (after[0], after[1]))
        if after[1] > base[1] + 2:
            problem("storm", "descriptors %d before, %d after" % (base[1], after[1]))
    finally:
        for w in workers:
            try:
                w.stdin.write("exit\n")
                w.stdin.close()
            except OSError:
                pass
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait(10)
    code, took, killed = d.stop()
    report("storm: SIGTERM -> exit %s in %.1fs" % (code, took))
    if code != 0 or killed:
        problem("storm", "exit %s after SIGTERM%s" % (code, " (killed)" if killed else ""))


# ---- churn -------------------------------------------------------------------------------


def phase_churn(ctx, minutes, binary=None, phase="churn", concurrent=100):
    vh = ctx.vhost(phase)
    d = ctx.daemon(phase, vh, binary=binary, drain_timeout="20s", **scenarios.CHURN_CONFIG)
    d.start(timeout=120)
    sw = wsswarm.Swarm()
    try:
        r = scenarios.churn_run(d, sw, vh, minutes * 60, concurrent=concurrent, seed=ctx.args.seed,
                                chunk=60, progress=say)
    finally:
        sw.stop()
    report("%s: %s" % (phase, scenarios.churn_report(r)))
    # under valgrind or ASan, RSS is the tool's: leaks show at exit instead
    probs = scenarios.churn_problems(
        r, check_rss=binary is None and not scenarios.sanitized(ctx.args.notifyd))
    for p in probs:
        problem(phase, p)
    code, took, killed = d.stop(timeout=120)
    report("%s: SIGTERM -> exit %s in %.1fs" % (phase, code, took))
    if code != 0 or killed:
        problem(phase, "exit %s after SIGTERM%s" % (code, " (killed)" if killed else ""))
    return d, code


def phase_valgrind(ctx):
    vg = shutil.which("valgrind")
    if not vg:
        problem("valgrind", "valgrind is not installed")
        return
    d0 = os.path.join(ctx.workdir, "valgrind")
    os.makedirs(d0, exist_ok=True)
    vlog = os.path.join(d0, "valgrind.log")
    wrapper = os.path.join(d0, "notifyd-valgrind")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec %s --leak-check=full --show-leak-kinds=definite,indirect "
                "--errors-for-leak-kinds=definite,indirect --error-exitcode=99 --log-file=%s "
                "%s \"$@\"\n" % (vg, vlog, os.path.abspath(ctx.args.notifyd)))
    os.chmod(wrapper, 0o755)
    d, code = phase_churn(ctx, ctx.args.valgrind_minutes, binary=wrapper, phase="valgrind",
                          concurrent=30)
    try:
        with open(vlog, errors="replace") as f:
            text = f.read()
    except OSError as e:
        text = "(no valgrind log: %s)" % e
    keep = [l.split("== ", 1)[-1] for l in text.splitlines()
            if any(k in l for k in ("ERROR SUMMARY", "definitely lost", "indirectly lost",
                                    "possibly lost", "still reachable", "Invalid", "uninitialised"))]
    report("valgrind: exit %s; %s (log: %s)" % (code, " | ".join(keep[:12]), vlog))


# ---- crash ---------------------------------------------------------------------------------


def phase_crash(ctx):
    a = ctx.args
    vh = ctx.vhost("crash")
    queue = "notifyd.soak.crash"
    rng = random.Random(a.seed)
    sw = wsswarm.Swarm()
    raise_nofile(a.crash_conns + 500)
    totals = collections.Counter()
    hit = 0
    big_n = 0
    sources = ["127.0.0.%d" % i for i in range(2, 6)]
    try:
        for k in range(a.crash_instants):
            big = k % 2 == 1

            def start(name):
                d = harness.Notifyd(a.notifyd, os.path.join(ctx.workdir, "crash"), vh.url, queue,
                                    name=name, max_connections=str(a.crash_conns + 1000))
                ctx.daemons.append(d)
                d.start(timeout=30)
                return d
            if big:
                big_n += 1
                r = scenarios.crash_instant(
                    start, vh, queue, sw, rng, base=k * 10000000, users=10, per_user=2,
                    extra=a.crash_conns, n_msgs=400, user_every=4, pad=200, kill_by="inflight",
                    kill_lo=0.2, kill_hi=0.8, publishers=2, min_in_flight=3, sources=sources,
                    name="c%d-big" % k)
            else:
                r = scenarios.crash_instant(
                    start, vh, queue, sw, rng, base=k * 10000000, users=10, per_user=2, extra=100,
                    n_msgs=3000, bcast_every=10, kill_by="published", kill_lo=0.1, kill_hi=0.9,
                    name="c%d" % k)
            report("crash %2d%s: %d connections, killed %s: %s"
                   % (k, " [broadcast]" if big else "", r["connections"], r["kill"],
                      scenarios.summarize(r)))
            for p in scenarios.problems(r):
                problem("crash %d" % k, p)
            if r["still_open_after_kill"]:
                problem("crash %d" % k, "%d clients still connected after kill -9"
                        % r["still_open_after_kill"])
            if big and r["inflight_broadcasts"]:
                hit += 1
            totals["published"] += r["published"]
            totals["left"] += r["left"]
            totals["dups"] += r["dups_received_and_left"] + r["partial_left"]
            totals["lost"] += len(r["lost"])
    finally:
        sw.stop()
    report("crash: %d instants (%d during broadcasts to %d connections, %d of them with a broadcast "
           "caught half-way): %d messages, %d left in the queue, %d to be delivered again "
           "(duplicates), %d lost" % (a.crash_instants, big_n, a.crash_conns, hit,
                                      totals["published"], totals["left"], totals["dups"],
                                      totals["lost"]))


# ---- hostile -------------------------------------------------------------------------------------

# ws_send_* and handshake_timeout as in test_hostile.py; max_connections_per_ip
# above what the normal clients need from one address (they come from four).
HOSTILE_CONFIG = dict(max_connections="5000", ws_send_queue_max="64k", ws_send_timeout="2s",
                      handshake_timeout="2s", ip_connect_rate="0", max_connections_per_ip="32",
                      push_keys="soak-hostile-push-key-0001")
# The normal clients send a ping every HOSTILE_CLIENT_PING seconds, so that
# the phase also measures older binaries: before issue 17's gate, notifyd
# stopped reading a WebSocket connection silent for longer than
# handshake_timeout after its first read (evhttp's read timeout left on the
# socket), and clients that only answer the server's pings died at its
# second one (pong_timeout).  test_keepalive.py's
# test_client_quiet_longer_than_handshake_timeout_is_kept shows that; the
# soak measures the attackers, not that.
HOSTILE_CLIENT_PING = 1.0
HOSTILE_NORMAL_SOURCES = ["127.0.0.%d" % i for i in range(2, 6)]


def start_tolerant(ctx, phase, vh, config):
    """Start a daemon; a key it does not know (an older binary) is dropped
    and noted, so that the phase still runs and reports.  Returns (daemon,
    dropped keys)."""
    import re
    config = dict(config)
    dropped = []
    for _ in range(len(config) + 1):
        d = ctx.daemon(phase, vh, **config)
        try:
            d.start(timeout=30)
            return d, dropped
        except harness.HarnessError:
            m = re.search(r"(\w+): unknown key", d.log_text())
            if not m or m.group(1) not in config:
                raise
            config.pop(m.group(1))
            dropped.append(m.group(1))
    raise harness.HarnessError("cannot start a daemon for %s" % phase)


def hostile_publish(vh, users, seconds, rate, msgs, errors, seq0):
    """Numbered messages at about rate per second for seconds: every fifth a
    broadcast, the others to users in turn; each body carries the publish
    time (this process's time.monotonic()).  msgs gets (seq, target, t)."""
    def messages():
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < seconds:
            seq = seq0 + i
            target = "broadcast" if i % 5 == 0 else users[i % len(users)]
            t = time.monotonic()
            body = '{"seq":%d,"t":%.6f}' % (seq, t)
            yield "broadcast" if target == "broadcast" else "user." + target, body
            msgs.append((seq, target, t))
            i += 1

    harness.publish_all(vh, messages(), errors, rate=rate)


def hostile_window_stats(conns, msgs):
    """Delivery and latency of the messages msgs over the normal clients:
    {"messages", "frames_expected", "missing", "latency": sorted seconds}."""
    by_seq = {seq: target for seq, target, _ in msgs}
    by_user = collections.defaultdict(list)
    for c in conns:
        by_user[str(c.user)].append(c)
    lat = []
    got = {}
    for c in conns:
        s = set()
        for payload, t_arr in zip(c.frames, c.times):
            try:
                j = json.loads(payload)
            except ValueError:
                continue
            q = j.get("seq") if isinstance(j, dict) else None
            if q in by_seq and q not in s:
                s.add(q)
                lat.append(t_arr - j["t"])
        got[id(c)] = s
    expected = missing = 0
    examples = []
    for seq, target in by_seq.items():
        targets = conns if target == "broadcast" else by_user.get(target, [])
        for c in targets:
            expected += 1
            if seq not in got[id(c)]:
                missing += 1
                if len(examples) < 5:
                    examples.append((seq, target, c.user))
    lat.sort()
    return {"messages": len(by_seq), "frames_expected": expected, "missing": missing,
            "missing_examples": examples, "latency": lat}


class UsageSampler:
    """The daemon's (RSS kB, fds, threads) every interval seconds on a thread."""

    def __init__(self, pid, interval=0.5):
        self.pid = pid
        self.samples = []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self.t.start()

    def _run(self, interval):
        while not self.stop_ev.is_set():
            try:
                self.samples.append(scenarios.proc_usage(self.pid))
            except OSError:
                return
            self.stop_ev.wait(interval)

    def stop(self):
        self.stop_ev.set()
        self.t.join(10)
        if not self.samples:
            return (0, 0, 0)
        return tuple(max(s[i] for s in self.samples) for i in range(3))


def _ms(x):
    return x * 1000.0


def phase_hostile(ctx):
    """Normal clients with a stream of numbered messages, first alone (the
    quiet window), then with the attackers of t/soak/attackers.py beside
    them (the hostile window, in a process of its own).  The normal clients'
    delivery must be complete in both and their p99 latency in the hostile
    window within max(factor x quiet p99, quiet p99 + slack); the daemon's
    RSS within --hostile-rss-mb of the quiet peak; its descriptors back to
    where they were; every attack ended within its bound."""
    a = ctx.args
    total = a.hostile_seconds
    quiet_s = max(10.0, total / 4.0)
    hostile_s = max(10.0, total - quiet_s)
    vh = ctx.vhost("hostile")
    d, dropped = start_tolerant(ctx, "hostile", vh, HOSTILE_CONFIG)
    if dropped:
        problem("hostile", "the daemon does not know %s (an older binary?): started without"
                % ", ".join(dropped))
    sw = wsswarm.Swarm()
    users = ["n%d" % i for i in range(a.hostile_clients)]
    keepalive_stop = threading.Event()
    try:
        r = sw.connect(d.port, users, sources=HOSTILE_NORMAL_SOURCES, keep=True, timestamps=True,
                       timeout=60)
        if r.failed:
            problem("hostile", "%d of %d normal clients could not connect: %r %r"
                    % (r.failed, len(users), r.statuses, r.errors))
        conns = [c for c in r.conns if c.ok]

        def keepalive():
            ping = wsswarm.build_frame(wsswarm.OP_PING, b"k")
            while not keepalive_stop.wait(HOSTILE_CLIENT_PING):
                try:
                    sw.call(lambda: [c.proto.send(ping) for c in conns
                                     if c.proto is not None and not c.eof], timeout=10)
                except Exception:  # noqa: BLE001 - the swarm is stopping
                    return
        threading.Thread(target=keepalive, daemon=True).start()
        windows = {}
        seq0 = 0
        for name, seconds in (("quiet", quiet_s), ("hostile", hostile_s)):
            worker = None
            if name == "hostile":
                cmd = [sys.executable, os.path.abspath(__file__), "hostile-worker",
                       "--port", str(d.port), "--pid", str(d.pid),
                       "--seconds", "%.1f" % (seconds + 3), "--handshake-timeout", "2",
                       "--per-ip-cap", HOSTILE_CONFIG["max_connections_per_ip"],
                       "--flood-rate", str(a.hostile_flood_rate), "--copies", "4",
                       "--attackers", a.hostile_attackers]
                worker = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          text=True)
                time.sleep(2.0)  # the attacks under way before the window opens
            usage = UsageSampler(d.pid)
            msgs, errors = [], []
            t = threading.Thread(target=hostile_publish,
                                 args=(vh, users, seconds, a.hostile_rate, msgs, errors, seq0),
                                 daemon=True)
            t.start()
            t.join(seconds + 60)
            seq0 += 10000000
            if t.is_alive() or errors:
                problem("hostile", "%s window: publisher %s" % (name, errors or "stuck"))
            try:
                vh.wait_queue_empty(d.queue, timeout=30)
            except AssertionError as e:
                problem("hostile", "%s window: %s" % (name, e))
            time.sleep(1.0)
            peak = usage.stop()
            st = hostile_window_stats(conns, msgs)
            st["peak"] = peak
            st["seconds"] = seconds
            windows[name] = st
            lat = st["latency"]
            report("hostile: %s window %.0fs: %d messages, %d of %d frames received by %d normal "
                   "clients; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms; daemon peak RSS %d kB, "
                   "fds %d" % (name, seconds, st["messages"], st["frames_expected"] - st["missing"],
                               st["frames_expected"], len(conns),
                               _ms(scenarios.percentile(lat, 50)), _ms(scenarios.percentile(lat, 99)),
                               _ms(lat[-1]) if lat else float("nan"), peak[0], peak[1]))
            if st["missing"]:
                problem("hostile", "%s window: %d frames never reached a normal client, e.g. %r"
                        % (name, st["missing"], st["missing_examples"]))
            if worker is not None:
                try:
                    out, _ = worker.communicate(timeout=seconds + 120)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    out, _ = worker.communicate(timeout=30)
                    problem("hostile", "the attacker process did not finish")
                try:
                    res = json.loads(out.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    res = {}
                    problem("hostile", "no result from the attacker process (exit %s): %r"
                            % (worker.returncode, out[-500:]))
                for atk, s in sorted(res.items()):
                    if atk.startswith("_"):
                        if s:
                            problem("hostile", "attacker threads still running: %r" % s)
                        continue
                    report("hostile: attacker %s: %d rounds, %d over the bound, %d errors; %r; "
                           "max %s, median %s; e.g. %s"
                           % (atk, s["rounds"], s["bad"], s["errors"], s["outcomes"], s["max"],
                              s["median"], "; ".join(s["bad_examples"][:3] or s["examples"][:2])))
                    if s["bad"]:
                        problem("hostile", "attacker %s: %d of %d rounds broke the bound: %s"
                                % (atk, s["bad"], s["rounds"], "; ".join(s["bad_examples"][:3])))
                    if s["rounds"] == 0:
                        problem("hostile", "attacker %s never completed a round (%d errors: %s)"
                                % (atk, s["errors"], "; ".join(s["bad_examples"][:3])))
            if not d.running():
                problem("hostile", "the daemon died in the %s window" % name)
                break
        closed = [c for c in conns if c.eof]
        if closed:
            problem("hostile", "%d normal clients were disconnected (e.g. %s: code %s)"
                    % (len(closed), closed[0].user, closed[0].close_code))
        if "quiet" in windows and "hostile" in windows:
            q, h = windows["quiet"], windows["hostile"]
            q99 = scenarios.percentile(q["latency"], 99)
            h99 = scenarios.percentile(h["latency"], 99)
            allowed = max(q99 * a.hostile_p99_factor, q99 + a.hostile_p99_slack_ms / 1000.0)
            report("hostile: normal clients' p99 %.1f ms quiet, %.1f ms under attack (allowed %.1f ms: "
                   "max(%.1f x quiet, quiet + %.0f ms))" % (_ms(q99), _ms(h99), _ms(allowed),
                                                            a.hostile_p99_factor, a.hostile_p99_slack_ms))
            if not h99 <= allowed:
                problem("hostile", "normal clients' p99 latency %.1f ms under attack, %.1f ms without "
                        "(allowed %.1f ms)" % (_ms(h99), _ms(q99), _ms(allowed)))
            if h["peak"][0] > q["peak"][0] + a.hostile_rss_mb * 1024:
                problem("hostile", "daemon RSS peaked at %d kB under attack, %d kB without (allowed "
                        "+%d MB)" % (h["peak"][0], q["peak"][0], a.hostile_rss_mb))
        # the attackers are gone: descriptors back to the quiet level
        base_fds = windows.get("quiet", {}).get("peak", (0, 0, 0))[1]
        try:
            harness.wait_until(lambda: scenarios.proc_usage(d.pid)[1] <= base_fds + 2, 20, 0.2,
                               "descriptors back to %d" % (base_fds + 2))
        except TimeoutError:
            problem("hostile", "descriptors %d after the attacks, %d before (kinds %r)"
                    % (scenarios.proc_usage(d.pid)[1], base_fds,
                       dict(scenarios.fd_kinds(d.pid))))
        after = scenarios.proc_usage(d.pid)
        report("hostile: after the attacks: daemon RSS %d kB, fds %d, connections %s"
               % (after[0], after[1], scenarios.connections(d)))
    finally:
        keepalive_stop.set()
        sw.stop()
    code, took, killed = d.stop(timeout=60)
    report("hostile: SIGTERM -> exit %s in %.1fs" % (code, took))
    if code != 0 or killed:
        problem("hostile", "exit %s after SIGTERM%s" % (code, " (killed)" if killed else ""))


# ---- main ------------------------------------------------------------------------------------


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "storm-worker":
        p = argparse.ArgumentParser()
        p.add_argument("cmd")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--n", type=int, required=True)
        p.add_argument("--prefix", default="s-")
        p.add_argument("--source", default=None)
        p.add_argument("--start-at", type=float, default=0)
        storm_worker(p.parse_args())
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "hostile-worker":
        import attackers
        p = argparse.ArgumentParser()
        p.add_argument("cmd")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--pid", type=int, required=True)
        p.add_argument("--seconds", type=float, required=True)
        p.add_argument("--handshake-timeout", type=float, default=2.0)
        p.add_argument("--per-ip-cap", type=int, default=32)
        p.add_argument("--flood-rate", type=float, default=40e6)
        p.add_argument("--copies", type=int, default=4)
        p.add_argument("--attackers", default=",".join(attackers.ATTACKERS))
        p.add_argument("--nofile", type=int, default=4096)
        w = p.parse_args()
        w.attackers = [x.strip() for x in w.attackers.split(",") if x.strip()]
        unknown = [x for x in w.attackers if x not in attackers.ATTACKERS]
        if unknown:
            p.error("unknown attackers %r (known: %s)" % (unknown, ", ".join(attackers.ATTACKERS)))
        if not w.flood_rate:
            w.flood_rate = None
        attackers.main(w)
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--notifyd", required=True)
    p.add_argument("--broker-env", required=True)
    p.add_argument("--workdir", default=None)
    p.add_argument("--phases", default="storm,churn,crash")
    p.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "30")))
    p.add_argument("--storm", type=int, default=10000)
    p.add_argument("--storm-procs", type=int, default=4)
    p.add_argument("--crash-instants", type=int, default=20)
    p.add_argument("--crash-conns", type=int, default=3000)
    p.add_argument("--valgrind-minutes", type=float, default=3)
    p.add_argument("--seed", type=int, default=int(time.time()) & 0xFFFFFF)
    p.add_argument("--hostile-seconds", type=float,
                   default=float(os.environ.get("SOAK_HOSTILE_SECONDS", "300")),
                   help="hostile phase: a quarter (at least 10 s) without attackers, the rest with")
    p.add_argument("--hostile-clients", type=int, default=40)
    p.add_argument("--hostile-rate", type=float, default=50, help="messages per second")
    p.add_argument("--hostile-attackers", default="ping_flood,slow_keepalive,slow_body,rst_flood,"
                   "per_ip_cap")
    p.add_argument("--hostile-flood-rate", type=float, default=40e6,
                   help="bytes per second of pings (0: as fast as it can)")
    p.add_argument("--hostile-p99-factor", type=float, default=2.0)
    p.add_argument("--hostile-p99-slack-ms", type=float, default=20.0)
    p.add_argument("--hostile-rss-mb", type=int, default=32)
    a = p.parse_args()
    if a.workdir is None:
        a.workdir = os.path.join("/tmp", "notifyd-soak.%d" % os.getpid())
    os.makedirs(a.workdir, exist_ok=True)
    raise_nofile(20000)
    ctx = Ctx(a)
    phases = [x.strip() for x in a.phases.split(",") if x.strip()]
    report("soak: notifyd %s, seed %d, phases %s, churn %.1f min, storm %d in %d processes, "
           "crash %d instants x %d connections%s"
           % (a.notifyd, a.seed, ",".join(phases), a.minutes, a.storm, a.storm_procs,
              a.crash_instants, a.crash_conns,
              ", valgrind %.1f min" % a.valgrind_minutes if "valgrind" in phases else ""))
    t_all = time.monotonic()
    try:
        for ph in phases:
            t0 = time.monotonic()
            say("==== %s" % ph)
            fn = {"storm": phase_storm, "churn": lambda c: phase_churn(c, a.minutes),
                  "crash": phase_crash, "valgrind": phase_valgrind,
                  "hostile": phase_hostile}.get(ph)
            if fn is None:
                problem(ph, "unknown phase")
                continue
            try:
                fn(ctx)
            except Exception as e:  # noqa: BLE001 - reported, next phase
                problem(ph, "%s: %s" % (type(e).__name__, e))
            report("%s: phase took %.0fs" % (ph, time.monotonic() - t0))
    finally:
        ctx.stop_all()
    lines = ["", "==== notifyd soak report (%.1f min, work dir %s)" % ((time.monotonic() - t_all) / 60,
                                                                       a.workdir)]
    lines += REPORT
    lines.append("problems: %d" % len(PROBLEMS))
    lines += ["  " + x for x in PROBLEMS]
    text = "\n".join(lines)
    print(text, flush=True)
    with open(os.path.join(a.workdir, "report.txt"), "w") as f:
        f.write(text + "\n")
    return 1 if PROBLEMS else 0


if __name__ == "__main__":
    sys.exit(main())
