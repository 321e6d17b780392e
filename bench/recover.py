#!/usr/bin/python3
"""recover.py - many notifyd.v2 clients resuming at once (amqp_source = stream).

usage: recover.py --port P --hello [--user U]
       recover.py --port P --users N --since ID --expect K [--user-prefix rec]
                  [--procs 1] [--timeout 120] [--connect-timeout 60]

--hello: one notifyd.v2 connection; prints {"tool":"recover","hello":"<id>"},
the position from which a later --since replays everything.

Otherwise: opens one notifyd.v2 connection per user <prefix>0 ..
<prefix>(N-1), all at once, each with ?userId=<user>&since=<ID>, and reads
until its {"type":"recovered"} frame.  Each must get exactly K message
frames, all for its user, with the body's "seq" 0 .. K-1 in order (as
bench/amqp_pub publishes round robin: message k goes to user k % N with
seq k / N) and ids growing, then recovered: true with count K.  Measures
the time from the first connect to the last "recovered" frame, and per
connection from its connect to its "recovered".  --procs P splits the
connections over P forked processes (each an asyncio loop; they start at
the same CLOCK_MONOTONIC instant, which is system-wide, so the times
merge).  Bounded by --timeout; prints one JSON line.

Plain /usr/bin/python3 with python3-websockets (Debian 12: 10.4); no
permessage-deflate is offered, as with wsload.
"""
import argparse
import asyncio
import json
import os
import sys
import time
import urllib.parse

import websockets

V2 = ["notifyd.v2"]


def opts():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--hello", action="store_true", help="print the position id and exit")
    p.add_argument("--user", default="rec-position", help="user of the --hello connection")
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--user-prefix", default="rec")
    p.add_argument("--since", help="the id to resume from (a --hello id)")
    p.add_argument("--expect", type=int, default=100, help="messages each user must recover")
    p.add_argument("--procs", type=int, default=1)
    p.add_argument("--timeout", type=float, default=120, help="whole run, seconds")
    p.add_argument("--connect-timeout", type=float, default=60)
    p.add_argument("--label", default="")
    a = p.parse_args()
    if not a.hello and not a.since:
        p.error("--since is required (or --hello)")
    return a


def ws_url(a, user, since=None):
    q = {"userId": user}
    if since is not None:
        q["since"] = since
    return "ws://%s:%d/ws?%s" % (a.host, a.port, urllib.parse.urlencode(q))


def connect(a, url, i=0):
    # Source addresses 127.0.0.2 .. 127.0.0.201 as wsload: no shortage of
    # ephemeral ports whatever the runs before left in TIME_WAIT.
    kw = {}
    if a.host.startswith("127."):
        kw["local_addr"] = ("127.0.0.%d" % (2 + i % 200), 0)
    return websockets.connect(url, subprotocols=V2, compression=None, max_size=None,
                              ping_interval=None, open_timeout=a.connect_timeout,
                              close_timeout=2, **kw)


async def hello(a):
    async with connect(a, ws_url(a, a.user)) as ws:
        f = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if f.get("type") != "hello" or not f.get("id"):
            raise RuntimeError("expected a hello frame with an id, got %r" % f)
        return f["id"]


def id_offset(i):
    try:
        return int(str(i).split("-", 1)[0])
    except ValueError:
        return None


async def one(a, i, res):
    """One resuming client; fills res (a dict) as it goes."""
    user = "%s%d" % (a.user_prefix, i)
    res.update(user=user, t_start=time.monotonic(), messages=0, order=0, wrong_user=0, ok=False)
    try:
        ws = await connect(a, ws_url(a, user, a.since), i)
    except Exception as e:  # noqa: BLE001 - counted and reported
        res["error"] = "connect: %s: %s" % (type(e).__name__, e)
        return
    res["t_open"] = time.monotonic()
    try:
        if ws.subprotocol != "notifyd.v2":
            res["error"] = "subprotocol %r" % ws.subprotocol
            return
        seq, last_off = 0, -1
        while True:
            f = json.loads(await ws.recv())
            t = f.get("type")
            if t == "message":
                res["messages"] += 1
                d = f.get("data")
                if not isinstance(d, dict) or d.get("user_id") != user:
                    res["wrong_user"] += 1
                elif d.get("seq") != seq:
                    res["order"] += 1
                seq += 1
                off = id_offset(f.get("id"))
                if off is None or off <= last_off:
                    res["order"] += 1
                else:
                    last_off = off
            elif t == "recovered":
                res["t_done"] = time.monotonic()
                res["recovered"] = f.get("recovered")
                res["count"] = f.get("count")
                if f.get("recovered") is not True:
                    res["error"] = "recovered false: %s" % f.get("reason")
                elif f.get("count") != a.expect or res["messages"] != a.expect:
                    res["error"] = "count %s, %d message frames, expected %d" % (
                        f.get("count"), res["messages"], a.expect)
                elif res["order"] or res["wrong_user"]:
                    res["error"] = "%d out of order, %d for another user" % (res["order"], res["wrong_user"])
                else:
                    res["ok"] = True
                return
            else:
                res["error"] = "unexpected frame %r" % (f,)
                return
    except Exception as e:  # noqa: BLE001
        res.setdefault("error", "%s: %s" % (type(e).__name__, e))
    finally:
        try:
            await asyncio.wait_for(ws.close(), 3)
        except Exception:  # noqa: BLE001
            pass


async def run_slice(a, idx, t0):
    """Connections idx (a list of user numbers), started at CLOCK_MONOTONIC t0."""
    delay = t0 - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
    results = [{} for _ in idx]
    tasks = [asyncio.ensure_future(one(a, i, r)) for i, r in zip(idx, results)]
    done, pending = await asyncio.wait(tasks, timeout=max(1.0, a.timeout - (time.monotonic() - t0)))
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)
    for r in results:
        if not r.get("ok") and "error" not in r:
            r["error"] = "timeout"
    return results


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]


def summary(a, results, t0):
    ok = [r for r in results if r.get("ok")]
    opened = [r for r in results if "t_open" in r]
    starts = [r["t_start"] for r in results if "t_start" in r]
    first = min(starts) if starts else t0
    done = [r["t_done"] for r in results if "t_done" in r]
    per = sorted((r["t_done"] - r["t_start"]) * 1e3 for r in results if "t_done" in r)
    errors = {}
    for r in results:
        if "error" in r:
            k = r["error"][:120]
            errors[k] = errors.get(k, 0) + 1
    secs = (max(done) - first) if done and len(ok) == len(results) else None
    msgs = sum(r.get("messages", 0) for r in results)
    return {
        "tool": "recover", "label": a.label, "users": a.users, "expect": a.expect, "since": a.since,
        "procs": a.procs, "connected": len(opened), "complete": len(ok), "failed": len(results) - len(ok),
        "messages": msgs, "expected_messages": a.users * a.expect,
        "order_violations": sum(r.get("order", 0) for r in results),
        "wrong_user": sum(r.get("wrong_user", 0) for r in results),
        # first connect -> last recovered frame (only when all completed)
        "seconds": round(secs, 4) if secs is not None else None,
        "seconds_partial": round(max(done) - first, 4) if done else None,
        "connect_seconds": round(max(r["t_open"] for r in opened) - first, 4) if opened else None,
        "msg_rate": round(msgs / secs, 1) if secs else None,
        "per_conn": {"p50_ms": pct(per, 0.5), "p99_ms": pct(per, 0.99), "max_ms": per[-1] if per else None},
        "errors": dict(sorted(errors.items(), key=lambda kv: -kv[1])[:5]),
        "ok": len(ok) == len(results),
    }


def main():
    a = opts()
    if a.hello:
        try:
            hid = asyncio.run(asyncio.wait_for(hello(a), a.timeout))
        except Exception as e:  # noqa: BLE001
            print(json.dumps({"tool": "recover", "hello": None, "error": "%s: %s" % (type(e).__name__, e)}))
            return 1
        print(json.dumps({"tool": "recover", "hello": hid}))
        return 0
    procs = max(1, min(a.procs, a.users))
    t0 = time.monotonic() + 0.3 * procs     # time for the forks to get ready
    slices = [list(range(p, a.users, procs)) for p in range(procs)]
    if procs == 1:
        results = asyncio.run(run_slice(a, slices[0], t0))
    else:
        kids = []
        for sl in slices:
            rfd, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(rfd)
                try:
                    out = asyncio.run(run_slice(a, sl, t0))
                    data = json.dumps(out).encode()
                except BaseException as e:  # noqa: BLE001 - report, never return into the parent's code
                    data = json.dumps([{"error": "process: %s" % e}] * len(sl)).encode()
                with os.fdopen(wfd, "wb") as w:
                    w.write(data)
                os._exit(0)
            os.close(wfd)
            kids.append((pid, rfd))
        results = []
        for (pid, rfd), sl in zip(kids, slices):
            with os.fdopen(rfd, "rb") as r:
                data = r.read()
            os.waitpid(pid, 0)
            try:
                results.extend(json.loads(data))
            except ValueError:
                results.extend([{"error": "process output"} for _ in sl])
    print(json.dumps(summary(a, results, t0)))
    return 0 if all(r.get("ok") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
