"""Sessions (issue 14) seen from the browser: www/notifyd.js in headless
Chromium (driven by sessions_page.cjs), connected as "alice", gets a
notification; the backend then calls POST /users/alice/disconnect with the
admin key.  The client reports "disconnected" with the documented close
code (4000 logged out, 4001 banned) and does not come back: for a few
seconds notifyd holds no connection of alice and sees no new handshake,
and the page made no new request.  Over WebSocket and, with WebSocket
broken, over SSE (the "disconnect" event).  start() connects again after a
logout; after a ban with a block it ends in "authfailed" (403).  Skipped
like test_demo_page.py when no browser can be had (required in CI)."""

import json
import os
import time

import pytest

import harness
from test_demo_page import NodeRun, browser  # noqa: F401 - the fixture

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "sessions-push-key-1234567890"
ADMIN = "sessions-admin-key-1234567890"
USER = "alice"
QUIET = 3.0  # seconds watched after "disconnected"
OPENED = "notifyd_ws_connections_opened_total"  # SSE streams included
REFUSED = "notifyd_ws_handshakes_refused_total"


def admin(d, method, path, body=None, key=ADMIN):
    """(status, parsed JSON body or the raw bytes) of an admin API call."""
    headers = {"Authorization": "Bearer " + key}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    st, _, raw = harness.http_request(d.port, method, path, headers=headers, body=data, timeout=10)
    try:
        return st, json.loads(raw.decode("utf-8"))
    except ValueError:
        return st, raw


def connections(d, user=USER):
    """alice's connections on this instance as GET /users/<id> lists them
    (an empty list for a user without any, not 404)."""
    st, body = admin(d, "GET", "/users/" + user)
    assert st == 200 and isinstance(body, dict) and isinstance(body.get("connections"), list), \
        "GET /users/%s answered %d %r" % (user, st, body)
    return body["connections"]


def gauges(d):
    m = harness.get_metrics(d.port)
    return {k: m.value(k) for k in ("notifyd_connections", "notifyd_users", OPENED, REFUSED)}


def events(step, ev):
    return [e for e in step["log"] if e["ev"] == ev]


def tries(step):
    return {k: step[k] for k in ("wsTries", "esTries", "fetches")}


def watch_quiet(d, before, seconds=QUIET):
    """For that long: no connection of alice (GET /users/alice and the
    gauges), no connection opened, no handshake refused."""
    end = time.monotonic() + seconds
    n = 0
    while True:
        conns = connections(d)
        g = gauges(d)
        assert conns == [], "alice is connected again %.1fs before the end: %r" % (end - time.monotonic(), conns)
        assert g["notifyd_connections"] == 0 and g["notifyd_users"] == 0, g
        assert g[OPENED] == before[OPENED], "a new connection was opened: %r, before %r" % (g, before)
        assert g[REFUSED] == before[REFUSED], "a new handshake was refused: %r, before %r" % (g, before)
        n += 1
        if time.monotonic() >= end:
            return n
        time.sleep(0.25)


def session_run(browser, start_notifyd, workdir, scenario, body, code, reason, meanwhile=None):  # noqa: F811
    """Up to "quiet": returns (daemon, run, steps); the caller goes on with
    run.step("done") and stops run.  meanwhile(d) is called while the page
    still waits (before it calls start()); steps["gauges"]: /metrics then."""
    node, node_path = browser
    d = start_notifyd(demo="on", push_keys=KEY, admin_keys=ADMIN)
    flag = os.path.join(workdir, "quiet-" + scenario)
    args = ["http://127.0.0.1:%d" % d.port, KEY, scenario, USER, flag]
    if scenario == "sse":
        args.append(str(harness.free_port()))
    run = NodeRun(node, node_path, args, workdir, script=os.path.join(HERE, "sessions_page.cjs"))
    steps = {}
    try:
        steps["open"] = run.step("open", 120)
        assert steps["open"]["transport"] == ("sse" if scenario == "sse" else "websocket"), steps["open"]
        steps["got"] = run.step("got", 60)
        conns = connections(d)
        assert len(conns) == 1, "GET /users/alice while connected: %r" % conns
        before = gauges(d)
        assert before["notifyd_connections"] == 1 and before["notifyd_users"] == 1, before

        t0 = time.monotonic()
        st, answer = admin(d, "POST", "/users/%s/disconnect" % USER, body)
        took = time.monotonic() - t0
        assert st == 200 and isinstance(answer, dict) and answer.get("status") == "confirmed", (st, answer)
        steps["disconnected"] = dis = run.step("disconnected", 30)
        steps["took"] = took

        got = events(dis, "disconnected")
        assert len(got) == 1, dis["log"]
        transport = "sse" if scenario == "sse" else "websocket"
        assert got[0]["code"] == code and got[0]["reason"] == reason and got[0]["transport"] == transport, got
        assert got[0]["state"] == "stopped" and dis["state"] == "stopped", dis

        steps["checks"] = watch_quiet(d, before)
        if meanwhile:
            meanwhile(d)
        steps["gauges"] = gauges(d)
        with open(flag, "w"):
            pass
        steps["quiet"] = quiet = run.step("quiet", 30)
    except BaseException:
        run.stop()
        raise

    # Nothing new since "disconnected": no event, no request from the page.
    assert quiet["log"] == dis["log"], quiet["log"][len(dis["log"]):]
    assert tries(quiet) == tries(steps["got"]), (tries(steps["got"]), tries(quiet))
    assert quiet["state"] == "stopped" and quiet["transport"] is None, quiet
    # The open connection ended with a "close" of the same code, then
    # "disconnected"; no "error" (the client did not try again).
    after_got = quiet["log"][len(steps["got"]["log"]):]
    assert [e["ev"] for e in after_got] == ["close", "disconnected"], after_got
    assert after_got[0]["code"] == code and after_got[0]["transport"] == transport, after_got
    assert not events(quiet, "authfailed"), quiet["log"]
    assert [m["data"]["n"] for m in events(quiet, "message")] == ["first"], quiet["log"]
    return d, run, steps


@pytest.mark.deadline(240)
def test_logout_closes_websocket_4000_and_stays_away(browser, start_notifyd, workdir, note):  # noqa: F811
    d, run, steps = session_run(browser, start_notifyd, workdir, "logout", {"reason": "logout"},
                                4000, "logged out")
    try:
        done = run.step("done", 90)
        back = connections(d)
    finally:
        run.stop()
    # start() after the logout connects again (the app logged in again).
    assert [o["transport"] for o in events(done, "open")] == ["websocket", "websocket"], done["log"]
    assert [m["data"]["n"] for m in events(done, "message")] == ["first", "again"], done["log"]
    assert done["state"] == "open" and len(back) == 1, (done, back)
    note("notifyd.js over WebSocket: POST /users/alice/disconnect (logout, answered in %.0f ms) "
         "closed it with 4000 \"logged out\"; no reconnect for %.0f s (%d checks of /users/alice and "
         "/metrics), start() connected again" % (steps["took"] * 1000, QUIET, steps["checks"]))


@pytest.mark.deadline(240)
def test_logout_ends_sse_stream_and_stays_away(browser, start_notifyd, workdir, note):  # noqa: F811
    message = "signed out on another device"
    d, run, steps = session_run(browser, start_notifyd, workdir, "sse",
                                {"reason": "logout", "message": message}, 4000, message)
    try:
        done = run.step("done", 90)
        back = connections(d)
    finally:
        run.stop()
    opens = [o["transport"] for o in events(done, "open")]
    assert opens == ["sse", "sse"], done["log"]
    assert [m["data"]["n"] for m in events(done, "message")] == ["first", "again"], done["log"]
    assert done["state"] == "open" and len(back) == 1, (done, back)
    note("notifyd.js over SSE (WebSocket broken): the disconnect event (4000, %r) stopped it, no "
         "new request for %.0f s; start() connected again over SSE" % (message, QUIET))


@pytest.mark.deadline(240)
def test_ban_closes_websocket_4001_and_refuses_start(browser, start_notifyd, workdir, note):  # noqa: F811
    def refused(d):
        """The block holds: notifyd refuses alice with 403, Retry-After and
        a JSON body."""
        st, hdr, body = harness.http_get(d.port, "/sse?userId=" + USER)
        assert st == 403 and 0 < int(hdr.get("retry-after", "0")) <= 120, (st, hdr, body)
        assert isinstance(json.loads(body.decode("utf-8")), dict), body

    d, run, steps = session_run(browser, start_notifyd, workdir, "ban", {"reason": "ban", "block": 120},
                                4001, "banned", meanwhile=refused)
    try:
        done = run.step("done", 90)
    finally:
        run.stop()
    before = steps["gauges"]
    # start() while banned: WebSocket refused fallbackAfter times, then
    # /sse probed: 403, "authfailed"; alice never got in.
    fails = events(done, "authfailed")
    assert len(fails) == 1 and fails[0]["status"] == 403, done["log"]
    assert [o["transport"] for o in events(done, "open")] == ["websocket"], done["log"]
    assert done["state"] == "stopped", done
    assert done["wsTries"] - steps["quiet"]["wsTries"] == 3, (steps["quiet"], done)
    assert done["fetches"] - steps["quiet"]["fetches"] == 1 and done["esTries"] == 0, done
    after = gauges(d)
    assert after[OPENED] == before[OPENED] and after["notifyd_users"] == 0, (before, after)
    assert after[REFUSED] >= before[REFUSED] + 3, (before, after)
    assert connections(d) == []
    note("notifyd.js: ban closed it with 4001 \"banned\", no reconnect; start() during the block: "
         "%d refused (3 WebSocket handshakes, the /sse probe), then authfailed (403)"
         % (after[REFUSED] - before[REFUSED]))
