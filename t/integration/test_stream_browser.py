"""The README's browser example of notifyd.v2 (ids and resuming) in
headless Chromium: a page that misses notifications while disconnected gets
them back, in order, when it reconnects with its last id.  Skipped like
test_demo_page.py when no browser can be had (required in CI)."""

import os

import pytest

from test_demo_page import NodeRun, browser  # noqa: F401 - the fixture

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "resume-key-1234567890"


@pytest.mark.deadline(300)
def test_browser_resumes_with_its_last_id(browser, start_notifyd, workdir, note):  # noqa: F811
    node, node_path = browser
    d = start_notifyd(amqp_source="stream", demo="on", push_keys=KEY)
    run = NodeRun(node, node_path, ["http://127.0.0.1:%d" % d.port, KEY, "web"], workdir,
                  script=os.path.join(HERE, "resume_page.cjs"))
    try:
        first = run.step("first", 120)
        assert first["protocol"] == "notifyd.v2" and first["first"]["type"] == "hello", first
        assert first["extensions"].startswith("permessage-deflate"), first
        resumed = run.step("resumed", 60)
        done = run.step("done", 60)
    finally:
        run.stop()
    rec = resumed["first"]
    assert rec["type"] == "recovered" and rec["recovered"] is True and rec["count"] == 5, rec
    got = [f["data"]["n"] for f in done["frames"] if f["type"] == "message"]
    assert got == ["before-0", "before-1", "before-2", "missed-0", "missed-1", "missed-2", "missed-3",
                   "missed-4", "live"], got
    pads = [f["data"].get("pad") for f in done["frames"] if f["type"] == "message"][:3]
    assert pads == ["caf\u00e9 \u2603 " * (100 * (i + 1)) for i in range(3)], "compressed ones intact"
    note("Chromium (permessage-deflate): 3 received, 5 missed while closed and replayed after "
         "recovered, then live")
