"""GET /metrics: valid Prometheus text, and counters that move by the right
amounts."""

import shutil
import subprocess

import pika
import pytest

import harness
from harness import get_metrics, push, recv_exact, wait_metric

REASONS = ["not_json", "not_object", "invalid_utf8", "too_large", "no_target", "bad_target",
           "content_encoding"]
MAX = 2048


def test_metrics_format_and_families(notifyd, ws_client, publisher):
    c = ws_client(notifyd, 1)
    publisher.publish("user.1", b'{"title":"one"}')
    recv_exact(c, b'{"title":"one"}')
    st, hdr, body = harness.http_get(notifyd.port, "/metrics")
    assert st == 200
    assert hdr.get("content-type", "").startswith("text/plain"), hdr
    m = harness.Metrics(body.decode("utf-8"))
    assert not m.problems, "\n".join(m.problems)
    assert body.endswith(b"\n"), "exposition must end with a newline"
    # the families the README promises
    for name in ("notifyd_connections", "notifyd_users", "notifyd_messages_consumed_total",
                 "notifyd_frames_delivered_total", "notifyd_messages_undelivered_total",
                 "notifyd_messages_acked_total", "notifyd_messages_redelivered_total",
                 "notifyd_broker_reconnects_total", "notifyd_slow_client_disconnects_total",
                 "notifyd_bytes_out_total", "notifyd_delivery_latency_seconds_count"):
        assert name in m.names(), "no %s in /metrics" % name
    for r in REASONS:
        assert m.get("notifyd_messages_rejected_total", reason=r) is not None, "no rejected{reason=%s}" % r
    for s in ("202", "400", "401", "403", "405", "413", "503"):
        assert m.get("notifyd_push_requests_total", status=s) is not None, "no push{status=%s}" % s
    for lim in ("connections", "per_user", "ip_rate", "handshake"):
        assert m.get("notifyd_limit_hits_total", limit=lim) is not None, "no limit_hits{limit=%s}" % lim
    assert m.types.get("notifyd_delivery_latency_seconds") == "histogram"
    assert m.value("notifyd_connections") == 1
    assert m.value("notifyd_users") == 1
    assert m.value("notifyd_delivery_latency_seconds_count") >= 1
    # the one message took less than 5 s: it is in a finite bucket
    assert m.value("notifyd_delivery_latency_seconds_bucket", le="5") >= 1

    promtool = shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
        assert p.returncode == 0, "promtool check metrics: %s %s" % (p.stdout, p.stderr)


def test_metrics_counters_follow_traffic(start_notifyd, ws_client, publisher, vhost):
    d = start_notifyd(max_message_size=str(MAX), amqp_bindings="events.#")
    c = ws_client(d, 5)
    c2 = ws_client(d, 5)
    m0 = get_metrics(d.port)
    n = 12
    bodies = [('{"n":%d}' % i).encode() for i in range(n)]
    for b in bodies:
        publisher.publish("user.5", b)
    for cl in (c, c2):
        assert [x.encode() for x in cl.recv_n(n)] == bodies
    # two connections: N messages consumed and acked, 2N frames
    wait_metric(d.port, "notifyd_messages_acked_total", lambda v: v >= m0.value("notifyd_messages_acked_total") + n)
    m1 = get_metrics(d.port)

    def delta(name, **labels):
        return m1.value(name, **labels) - m0.value(name, **labels)
    assert delta("notifyd_messages_consumed_total") == n
    assert delta("notifyd_frames_delivered_total") == 2 * n
    assert delta("notifyd_messages_acked_total") == n
    assert delta("notifyd_messages_undelivered_total") == 0
    assert delta("notifyd_delivery_latency_seconds_count") == 2 * n
    frame_bytes = sum(len(b) + 2 for b in bodies)  # short frames: 2-byte header
    assert delta("notifyd_bytes_out_total") == 2 * frame_bytes, delta("notifyd_bytes_out_total")
    assert m1.value("notifyd_connections") == 2 and m1.value("notifyd_users") == 1

    # to a user with no connection: undelivered, acked
    for i in range(4):
        publisher.publish("user.nobody", b'{"x":1}')
    wait_metric(d.port, "notifyd_messages_undelivered_total",
                lambda v: v >= m1.value("notifyd_messages_undelivered_total") + 4)
    wait_metric(d.port, "notifyd_messages_acked_total",
                lambda v: v >= m1.value("notifyd_messages_acked_total") + 4)
    m2 = get_metrics(d.port)
    assert m2.value("notifyd_messages_undelivered_total") - m1.value("notifyd_messages_undelivered_total") == 4
    assert m2.value("notifyd_messages_acked_total") - m1.value("notifyd_messages_acked_total") == 4
    assert m2.value("notifyd_frames_delivered_total") == m1.value("notifyd_frames_delivered_total")

    # one poison message of each reason: that reason +1 and no other
    poison = {
        "not_json": ("user.5", b"not json", None),
        "not_object": ("user.5", b"[1,2]", None),
        "invalid_utf8": ("user.5", b'{"t":"\xff"}', None),
        "too_large": ("user.5", ('{"d":"%s"}' % ("x" * (MAX + 10))).encode(), None),
        "no_target": ("events.x", b'{"title":"nobody"}', None),
        "bad_target": ("user.", b'{"title":"empty id"}', None),
        "content_encoding": ("user.5", b'{"title":"gzip?"}', "gzip"),
    }
    for reason in REASONS:
        before = get_metrics(d.port)
        key, body, enc = poison[reason]
        props = pika.BasicProperties(content_type="application/json", content_encoding=enc)
        publisher.ch.basic_publish("notifications", key, body, properties=props, mandatory=True)
        wait_metric(d.port, "notifyd_messages_rejected_total", lambda v: v >= before.value(
            "notifyd_messages_rejected_total", reason=reason) + 1, reason=reason)
        after = get_metrics(d.port)
        for r in REASONS:
            want = 1 if r == reason else 0
            got = after.value("notifyd_messages_rejected_total", reason=r) - \
                before.value("notifyd_messages_rejected_total", reason=r)
            assert got == want, "after a %s poison message rejected{reason=%s} moved by %d" % (reason, r, got)
        assert after.value("notifyd_messages_consumed_total") - before.value("notifyd_messages_consumed_total") == 1
    c.expect_nothing(0.3)
    vhost.wait_queue_empty(d.queue, timeout=10)


def test_metrics_push_status_counters(start_notifyd, ws_client):
    d = start_notifyd(push_keys=harness.PUSH_KEY, push_max_body="2k")
    c = ws_client(d, 7)
    m0 = get_metrics(d.port)
    calls = [("202", dict(body={"user_id": "7"})),
             ("202", dict(body=[{"user_id": "7"}, {"user_id": "7"}])),
             ("400", dict(body=b"nope")),
             ("400", dict(body={"message": "no target"})),
             ("401", dict(body={"user_id": "7"}, key="bad")),
             ("401", dict(body={"user_id": "7"}, key=None)),
             ("401", dict(body={"user_id": "7"}, key=None)),
             ("405", dict(body=b"", method="GET")),
             ("413", dict(body={"user_id": "7", "pad": "p" * 3000}))]
    want = {}
    for status, kw in calls:
        a = push(d.port, **kw)
        assert str(a.status) == status, (status, kw, a)
        want[status] = want.get(status, 0) + 1
    c.recv_n(3)
    m1 = get_metrics(d.port)
    for s in ("202", "400", "401", "403", "405", "413", "503"):
        got = m1.value("notifyd_push_requests_total", status=s) - m0.value("notifyd_push_requests_total", status=s)
        assert got == want.get(s, 0), "push_requests_total{status=%s} moved by %d, want %d" % (s, got, want.get(s, 0))
    assert m1.value("notifyd_push_messages_total") - m0.value("notifyd_push_messages_total") == 3

    e = start_notifyd(name="nopush")  # push off: 403
    m0 = get_metrics(e.port)
    assert push(e.port, {"user_id": "7"}).status == 403
    m1 = get_metrics(e.port)
    assert m1.value("notifyd_push_requests_total", status="403") - m0.value(
        "notifyd_push_requests_total", status="403") == 1


@pytest.mark.deadline(90)
def test_metrics_slow_client_and_connection_counters(start_notifyd, ws_client, raw_client, publisher):
    d = start_notifyd(ws_send_queue_max="64k", ws_send_timeout="2s", max_connections="3")
    m0 = get_metrics(d.port)
    raw_client(d, "slow", rcvbuf=4096)  # never reads (the fixture keeps it open)
    other = ws_client(d, "other")
    # more than the kernel's socket buffers can hide (loopback autotuning
    # lets them grow to a few MiB)
    big = ('{"d":"%s"}' % ("s" * 64000)).encode()
    for i in range(96):
        publisher.publish("user.slow", big)
    wait_metric(d.port, "notifyd_slow_client_disconnects_total",
                lambda v: v >= m0.value("notifyd_slow_client_disconnects_total") + 1, timeout=15)
    # limit hit: a fourth connection while three are open
    a = ws_client(d, "a")
    # slow may not be gone yet from the count; wait until it is
    wait_metric(d.port, "notifyd_connections", lambda v: v == 2, timeout=10)
    b = ws_client(d, "b")
    r = raw_client(d).handshake("/ws?userId=c")
    assert r.status == 503, r
    m1 = get_metrics(d.port)
    assert m1.value("notifyd_slow_client_disconnects_total") - m0.value("notifyd_slow_client_disconnects_total") == 1
    assert m1.value("notifyd_limit_hits_total", limit="connections") - \
        m0.value("notifyd_limit_hits_total", limit="connections") == 1
    assert m1.value("notifyd_ws_connections_opened_total") - m0.value("notifyd_ws_connections_opened_total") == 4
    assert m1.value("notifyd_ws_connections_closed_total") - m0.value("notifyd_ws_connections_closed_total") == 1
    assert m1.value("notifyd_connections") == 3
    for cl in (other, a, b):
        assert cl.open
