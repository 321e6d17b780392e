"""permessage-deflate with Node.js's `ws` package (issue 15's last client):
ws_node_client.cjs connects with perMessageDeflate on, ws negotiates the
extension with notifyd, and every notification published through RabbitMQ
(broadcasts and unicasts, small ones sent uncompressed under
ws_deflate_min_size, 2 KB and 60 KB JSON compressed, multi-byte UTF-8)
arrives byte for byte and in order.

Needs node and the ws package (an exact version): scripts/install-browser
installs them into build/npm/node_modules (scripts/test-all runs it).  When
they cannot be found the test fails, saying so; it is never skipped.
Environment: TEST_NODE_PATH (a node_modules dir with ws)."""

import base64
import json
import os
import shutil
import subprocess

import pytest

import harness
from test_deflate import PMD, json_body
from test_demo_page import NodeRun

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(HERE, "ws_node_client.cjs")
HOWTO = ("run scripts/install-browser (it installs nodejs and npm from Debian when missing, and the "
         "pinned ws into build/npm/node_modules), or point TEST_NODE_PATH at a node_modules dir with ws")


def _ws_version(node, node_path):
    """ws's version when it loads from node_path, else None."""
    if not node_path or not os.path.isdir(node_path):
        return None
    env = {"PATH": "/usr/bin:/bin", "NODE_PATH": node_path, "HOME": "/nonexistent"}
    try:
        p = subprocess.run([node, "-e", "require('ws'); console.log(require('ws/package.json').version)"],
                           env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


@pytest.fixture(scope="module")
def node_ws(session):
    """(node, NODE_PATH, ws version); fails (not skips) when there is none."""
    node = shutil.which("node") or ("/usr/bin/node" if os.access("/usr/bin/node", os.X_OK) else None)
    if not node:
        pytest.fail("the Node ws deflate test needs node (Node.js) and the ws npm package: " + HOWTO,
                    pytrace=False)
    candidates = [os.environ.get("TEST_NODE_PATH"), os.path.join(TOP, "build", "npm", "node_modules"),
                  os.path.join(session.workdir, "npm", "node_modules")]
    for c in candidates:
        v = _ws_version(node, c)
        if v:
            return node, c, v
    pytest.fail("the ws npm package does not load from %s: %s"
                % (" or ".join(c for c in candidates if c), HOWTO), pytrace=False)


def test_node_ws_negotiates_deflate_and_gets_everything_intact(node_ws, start_notifyd, publisher, workdir,
                                                               note):
    node, node_path, version = node_ws
    d = start_notifyd(ws_deflate="on", ws_deflate_min_size="256")
    utf8_small = '{"t":"\u00e9\u2603\U0001f600 \u65e5\u672c\u8a9e \u0645\u0631\u062d\u0628\u0627"}'.encode()
    utf8_large = json.dumps({"n": "utf8", "text": "\u00e9\u2603\U0001f600\u65e5\u672c\u8a9e" * 800},
                            ensure_ascii=False).encode()
    # (routing key, body): unicasts to the client's user and broadcasts,
    # one for another user in the middle (must not arrive).
    plan = [
        ("user.nw", b'{"small":1}'),
        ("broadcast", b'{"small":2,"to":"all"}'),
        ("user.nw", json_body(1, 2000)),
        ("user.other", b'{"not":"yours"}'),
        ("broadcast", json_body(2, 2000)),
        ("user.nw", json_body(3, 60000)),
        ("broadcast", json_body(4, 60000)),
        ("user.nw", utf8_small),
        ("broadcast", utf8_large),
        ("user.nw", b'{"small":3,"last":true}'),
    ]
    want = [body for key, body in plan if key != "user.other"]
    assert sum(len(b) < 256 for b in want) == 4 and sum(len(b) > 1900 for b in want) == 5
    c = NodeRun(node, node_path, [d.ws_url("nw"), str(len(want))], workdir, script=SCRIPT)
    try:
        opened = c.step("open", 30)
        assert opened["extensions"] == PMD, \
            "ws did not negotiate permessage-deflate with notifyd: ws.extensions = %r" % opened["extensions"]
        for key, body in plan:
            publisher.publish(key, body)
        got = [c.step("message", 30) for _ in want]
        done = c.step("done", 30)
    finally:
        c.stop()
    assert [m["binary"] for m in got] == [False] * len(want), "every message is a text message"
    bodies = [base64.b64decode(m["b64"]) for m in got]
    for i, (b, w) in enumerate(zip(bodies, want)):
        assert b == w, "message %d (%d bytes published) differs: %d bytes received%s" % (
            i, len(w), len(b), " (the body of message %d: out of order)" % want.index(b) if b in want else "")
    assert done["code"] == 1000, done
    m = harness.get_metrics(d.port)
    zin = m.value("notifyd_deflate_input_bytes_total")
    zout = m.value("notifyd_deflate_output_bytes_total")
    large = sum(len(b) for b in want if len(b) >= 256)
    assert zin == large, "each message of 256 bytes or more compressed once, the small ones not (%r != %r)" \
        % (zin, large)
    note("ws %s: ws.extensions %r; %d messages (4 small sent as they are, 5 of 2-60 KB compressed %d -> %d "
         "bytes, %.1fx) intact and in order" % (version, opened["extensions"], len(want), zin, zout, zin / zout))
