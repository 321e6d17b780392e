"""GET /sse with Chromium's own EventSource and no client code: the
browser reconnects by itself after notifyd restarts and, sending
Last-Event-ID, gets what was published meanwhile, then a recovered event,
then live ones.  Skipped like test_demo_page.py when no browser can be had
(required in CI)."""

import json
import os

import pytest

from test_demo_page import NodeRun, browser  # noqa: F401 - the fixture

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "sse-key-1234567890abc"


@pytest.mark.deadline(300)
def test_eventsource_resumes_after_restart(browser, start_notifyd, publisher, workdir, note):  # noqa: F811
    node, node_path = browser
    d = start_notifyd(amqp_source="stream", demo="on", push_keys=KEY)
    flag = os.path.join(workdir, "restarted")
    run = NodeRun(node, node_path, ["http://127.0.0.1:%d" % d.port, KEY, "es", flag], workdir,
                  script=os.path.join(HERE, "sse_page.cjs"))
    try:
        run.step("open", 120)
        run.step("got2", 60)
        d.stop()
        for n in (3, 4, 5):
            publisher.publish("user.es" if n != 4 else "broadcast", json.dumps({"n": n}).encode())
        d.start()
        open(flag, "w").close()
        done = run.step("done", 90)
    finally:
        run.stop()
    msgs = [json.loads(e["data"])["n"] for e in done["seen"] if e["type"] == "message"]
    rec = [json.loads(e["data"]) for e in done["seen"] if e["type"] == "recovered"]
    assert msgs == [1, 2, 3, 4, 5, 6], done["seen"]
    assert len(rec) == 1 and rec[0]["recovered"] is True and rec[0]["count"] == 3, rec
    assert all(e["id"] for e in done["seen"]), "every event carries an id"
    assert done["opens"] >= 2, "EventSource reconnected by itself"
    note("EventSource: 2 received, notifyd restarted, 3 published meanwhile came back after "
         "the automatic reconnect (Last-Event-ID), then live")
