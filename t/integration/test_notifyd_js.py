"""www/notifyd.js, the browser client, in headless Chromium (driven by
notifyd_js.cjs): it reconnects by itself after notifyd restarts and resumes
from its last id, over WebSocket or, when WebSocket is broken, over SSE; a
last id the server cannot resume gives a recovered:false event; a refused
or expired token stops it with "authfailed" instead of retrying.  Skipped
like test_demo_page.py when no browser can be had (required in CI)."""

import http.client
import json
import os
import time

import pytest

import harness
from test_auth_jwt import AUD, ISS, SECRET, claims, hs_daemon, token
from test_demo_page import NodeRun, browser  # noqa: F401 - the fixture

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "notifyd-js-key-1234567890"
REFUSED = "notifyd_ws_handshakes_refused_total"


def run_page(browser, d, workdir, scenario, user, *args):  # noqa: F811
    node, node_path = browser
    flag = os.path.join(workdir, "restarted-" + scenario)
    return NodeRun(node, node_path, ["http://127.0.0.1:%d" % d.port, KEY, scenario, user, flag] + list(args),
                   workdir, script=os.path.join(HERE, "notifyd_js.cjs")), flag


def events(done, ev):
    return [e for e in done["log"] if e["ev"] == ev]


def sse_status(d):
    """The status GET /sse answers (404 on a notifyd without it)."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
    try:
        c.request("GET", "/sse?userId=probe", headers={"Accept": "text/event-stream"})
        return c.getresponse().status
    finally:
        c.close()


def restart_with_missed(d, publisher, user, how, flag):
    """notifyd stopped (SIGTERM: clients get 1001) or killed (kill -9: the
    connection just breaks) and started again, with notifications published
    all along (the user's and broadcasts); their number goes to the flag
    file, which tells the page to go on."""
    n = 5 if how == "sigterm" else 30
    if how == "sigterm":
        d.stop()
    for i in range(n):
        if how == "kill9" and i == 8:
            d.kill9()
        if how == "kill9" and i == 16:
            d.start(wait=False)
        publisher.publish("user." + user if i % 2 == 0 else "broadcast", json.dumps({"n": "missed-%d" % i}).encode())
        if how == "kill9":
            time.sleep(0.02)
    if how == "sigterm":
        d.start()
    else:
        d.wait_ready()
    with open(flag + ".tmp", "w") as f:
        f.write(str(n))
    os.replace(flag + ".tmp", flag)
    return n


def check_resumed(done, transport, how, n):
    got = [e["data"]["n"] for e in events(done, "message")]
    assert got == ["before-0", "before-1", "before-2"] + ["missed-%d" % i for i in range(n)] + ["live"], done["log"]
    rec = events(done, "recovered")
    assert len(rec) == 1 and rec[0]["recovered"] is True, rec
    if how == "sigterm":
        assert rec[0]["count"] == n, rec
    msgs = events(done, "message")
    assert all(m["id"] for m in msgs), "every message has an id"
    assert len({m["id"] for m in msgs}) == len(msgs), "an id twice"
    assert done["lastId"] == msgs[-1]["id"], (done["lastId"], msgs[-1])
    opens = events(done, "open")
    assert len(opens) >= 2 and all(o["transport"] == transport for o in opens), opens
    assert not events(done, "authfailed"), done["log"]
    assert done["state"] == "open" and done["transport"] == transport, done


@pytest.mark.deadline(300)
@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_js_client_resumes_after_restart(browser, start_notifyd, publisher, workdir, note, how):  # noqa: F811
    d = start_notifyd(amqp_source="stream", demo="on", push_keys=KEY)
    run, flag = run_page(browser, d, workdir, "resume", "js")
    try:
        assert run.step("open", 120)["transport"] == "websocket"
        run.step("got3", 60)
        n = restart_with_missed(d, publisher, "js", how, flag)
        done = run.step("done", 120)
    finally:
        run.stop()
    check_resumed(done, "websocket", how, n)
    closes = events(done, "close")
    assert closes and closes[0]["code"] == (1001 if how == "sigterm" else 1006), closes
    note("notifyd.js, %s: 3 received, %d published while notifyd restarted; the client reconnected "
         "by itself (%d failed tries) and got them once each, in order, recovered (%d replayed), then live"
         % (how, n, len(events(done, "error")), events(done, "recovered")[0]["count"]))


@pytest.mark.deadline(300)
@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_js_client_falls_back_to_sse(browser, start_notifyd, publisher, workdir, note, how):  # noqa: F811
    d = start_notifyd(amqp_source="stream", demo="on", push_keys=KEY)
    if sse_status(d) == 404:
        pytest.skip("this notifyd has no GET /sse yet")
    run, flag = run_page(browser, d, workdir, "sse", "jss", str(harness.free_port()))
    try:
        assert run.step("open", 120)["transport"] == "sse"
        run.step("got3", 60)
        n = restart_with_missed(d, publisher, "jss", how, flag)
        done = run.step("done", 120)
    finally:
        run.stop()
    check_resumed(done, "sse", how, n)
    errors = events(done, "error")
    assert [e["transport"] for e in errors[:3]] == ["websocket"] * 3, errors
    assert done["wsTries"] == 3, "WebSocket tried fallbackAfter times, then SSE: %r" % done["wsTries"]
    note("notifyd.js with WebSocket broken, %s: SSE after 3 WebSocket failures; %d published while "
         "notifyd restarted came back over SSE once each, in order, recovered, then live" % (how, n))


@pytest.mark.deadline(300)
def test_js_client_goes_back_to_websocket(browser, start_notifyd, workdir, note):  # noqa: F811
    d = start_notifyd(amqp_source="stream", demo="on", push_keys=KEY)
    if sse_status(d) == 404:
        pytest.skip("this notifyd has no GET /sse yet")
    run, _ = run_page(browser, d, workdir, "upgrade", "jsu", str(harness.free_port()))
    try:
        assert run.step("open", 120)["transport"] == "sse"
        done = run.step("done", 60)
    finally:
        run.stop()
    opens = [e["transport"] for e in events(done, "open")]
    assert opens[0] == "sse" and opens[-1] == "websocket", opens
    assert [e["data"]["n"] for e in events(done, "message")] == ["over-ws"], done["log"]
    assert done["transport"] == "websocket", done
    note("notifyd.js: SSE while WebSocket was broken, back on WebSocket once it worked (%s)" % " > ".join(opens))


@pytest.mark.deadline(200)
def test_js_client_bogus_last_id_is_recovered_false(browser, start_notifyd, workdir):  # noqa: F811
    d = start_notifyd(amqp_source="stream", demo="on", push_keys=KEY)
    run, _ = run_page(browser, d, workdir, "bogus", "jsb", "999999999-deadbeef")
    try:
        run.step("open", 120)
        done = run.step("done", 60)
    finally:
        run.stop()
    rec = events(done, "recovered")
    assert len(rec) == 1 and rec[0]["recovered"] is False, rec
    assert rec[0]["reason"] in ("unknown_epoch", "too_old"), rec
    msgs = events(done, "message")
    assert [m["data"]["n"] for m in msgs] == ["live"], done["log"]
    assert done["lastId"] == msgs[0]["id"] and done["state"] == "open", done


@pytest.mark.deadline(200)
def test_js_client_refused_token_stops(browser, start_notifyd, workdir, note):  # noqa: F811
    d = hs_daemon(start_notifyd, amqp_source="stream", demo="on", push_keys=KEY)
    expired = token(claims("jsa", exp=int(time.time()) - 120))
    run, _ = run_page(browser, d, workdir, "authbad", "jsa", expired)
    try:
        run.step("authfailed", 120)
        at_stop = harness.get_metrics(d.port).value(REFUSED)
        done = run.step("done", 60)
    finally:
        run.stop()
    later = harness.get_metrics(d.port).value(REFUSED)
    fails = events(done, "authfailed")
    assert len(fails) == 1 and fails[0]["status"] == 401, fails
    assert not events(done, "open") and done["state"] == "stopped", done
    # 3 WebSocket handshakes, then one look at /sse that answered 401; none after
    assert at_stop <= 5 and later == at_stop, (at_stop, later)
    assert len(events(done, "error")) <= 4, done["log"]
    note("notifyd.js with an expired token: authfailed (401) after %d refused handshakes, then quiet"
         % at_stop)


@pytest.mark.deadline(200)
def test_js_client_expired_token_1008_then_start(browser, start_notifyd, workdir, note):  # noqa: F811
    d = hs_daemon(start_notifyd, amqp_source="stream", demo="on", push_keys=KEY, jwt_leeway="0s")
    run, _ = run_page(browser, d, workdir, "expiry", "jse", SECRET, ISS, AUD)
    try:
        run.step("open", 120)
        stopped = run.step("authfailed", 60)
        done = run.step("done", 60)
    finally:
        run.stop()
    assert stopped["state"] == "stopped", stopped
    fails = events(done, "authfailed")
    assert len(fails) == 1 and fails[0]["code"] == 1008, fails
    assert [m["data"]["n"] for m in events(done, "message")] == ["first", "second"], done["log"]
    rec = events(done, "recovered")
    assert len(rec) == 1 and rec[0]["recovered"] is True and rec[0]["count"] == 0, rec
    assert [o["transport"] for o in events(done, "open")] == ["websocket", "websocket"], done["log"]
    assert done["tokenCalls"] == 2, done["tokenCalls"]
    assert SECRET not in d.log_text()
    note("notifyd.js: token expired, closed with 1008, authfailed; start() took a new token "
         "from the token function and resumed")
