"""Delivery: order, size, and exact bytes."""

import json

import harness
from harness import recv_exact


def test_thousand_messages_complete_and_in_order(notifyd, ws_client, publisher, vhost):
    c = ws_client(notifyd, 11)
    n = 1000
    for i in range(n):
        publisher.publish("user.11", '{"seq":%d,"pad":"%s"}' % (i, "x" * (i % 97)))
    got = c.recv_n(n, timeout=30)
    seqs = [json.loads(m)["seq"] for m in got]
    missing = sorted(set(range(n)) - set(seqs))
    assert not missing, "missing %d messages, first ones: %r" % (len(missing), missing[:20])
    assert len(seqs) == len(set(seqs)), "duplicates received"
    out_of_order = [(i, s) for i, s in enumerate(seqs) if s != i]
    assert not out_of_order, "out of order at (position, seq): %r" % out_of_order[:20]
    c.expect_nothing(0.3)
    vhost.wait_queue_empty(notifyd.queue, timeout=10)


def json_body_of_size(size, fill="y"):
    head, tail = '{"title":"big","data":"', '"}'
    return (head + fill * (size - len(head) - len(tail)) + tail).encode()


def test_256k_message_arrives_intact(start_notifyd, ws_client, publisher):
    d = start_notifyd(max_message_size="512k")
    c = ws_client(d, 14)
    other = ws_client(d, 15)
    big = json_body_of_size(256 * 1024)
    assert len(big) == 262144
    publisher.publish("user.14", big)
    recv_exact(c, big, timeout=10)
    # a second one with different content, then a small one: nothing mixed up
    big2 = bytearray(json_body_of_size(256 * 1024 - 3, "z"))
    for i in range(0, len(big2) - 40, 4096):
        big2[i + 30] = ord("0") + (i // 4096) % 10
    big2 = bytes(big2)
    publisher.publish("user.14", big2)
    publisher.publish("user.14", b'{"title":"small"}')
    recv_exact(c, big2, timeout=10)
    recv_exact(c, b'{"title":"small"}')
    other.expect_nothing(0.3)


def test_message_exactly_max_message_size_is_delivered(start_notifyd, ws_client, publisher):
    d = start_notifyd(max_message_size="4k")
    c = ws_client(d, 16)
    body = json_body_of_size(4096)
    publisher.publish("user.16", body)
    recv_exact(c, body)


NON_ASCII = [
    # emoji, including a ZWJ sequence, skin tone modifier and a flag
    '{"title":"\U0001F600 \U0001F469\u200D\U0001F469\u200D\U0001F467 \U0001F44D\U0001F3FD \U0001F1EB\U0001F1F7"}',
    # CJK, Hangul, kana
    '{"title":"通知のテスト","message":"新消息 한국어 메시지 カタカナ"}',
    # combining marks: e + acute, a + ring + dot below, Zalgo-ish stack
    '{"name":"Rene\u0301e A\u030A\u0323 Z\u0351\u0352\u0353\u0354\u0355"}',
    # RTL, U+2028/2029 raw, BOM-like U+FEFF, max code point, escapes kept verbatim
    '{"ar":"مرحبا","sep":"a\u2028b\u2029c","bom":"\uFEFF","max":"\U0010FFFF","esc":"\\u00e9\\ud83d\\ude00"}',
]


def test_non_ascii_byte_identical(notifyd, ws_client, publisher):
    c = ws_client(notifyd, 17)
    for text in NON_ASCII:
        body = text.encode("utf-8")
        publisher.publish("user.17", body)
        recv_exact(c, body)


def test_broadcast_burst_is_batched_in_order_and_acked(start_notifyd, ws_client, publisher, vhost):
    """A backlog of broadcasts with unicasts between them (the broker's
    socket stalled, then released at once): consecutive broadcasts of one
    wake-up are written as one batch, and still every connection gets
    exactly its messages in the broker's order, and every delivery is
    acked."""
    proxy = harness.TcpProxy(vhost.broker.port)
    try:
        d = start_notifyd(amqp_url=proxy.amqp_url(vhost.name), amqp_heartbeat="30s")
        a1, a2, b = ws_client(d, "ba"), ws_client(d, "ba"), ws_client(d, "bb")
        m0 = harness.get_metrics(d.port)
        n = 400
        proxy.set_mode("stall")
        to_a, to_b = [], []
        for i in range(n):
            body = json.dumps({"i": i, "pad": "p" * (i % 50)})
            if i % 11 == 5:
                publisher.publish("user.ba", body)
                to_a.append(body)
            elif i % 23 == 7:
                publisher.publish("user.bb", body)
                to_b.append(body)
            else:
                publisher.publish("broadcast", body)
                to_a.append(body)
                to_b.append(body)
        proxy.set_mode("pass")
        for c, want in ((a1, to_a), (a2, to_a), (b, to_b)):
            got = c.recv_n(len(want), timeout=30)
            assert got == want, "first difference at %r" % next(
                (k, x, y) for k, (x, y) in enumerate(zip(got, want)) if x != y)
            c.expect_nothing(0.2)
        vhost.wait_queue_empty(d.queue, timeout=15)
        harness.wait_metric(d.port, "notifyd_messages_acked_total",
                            lambda v: v >= m0.value("notifyd_messages_acked_total") + n)
        m1 = harness.get_metrics(d.port)
        assert m1.value("notifyd_broadcast_batches_total") > m0.value("notifyd_broadcast_batches_total"), \
            "the backlog was written without a single batch"
        # a broadcast is 3 frames (3 connections), a unicast to ba 2, to bb 1
        nb = len(to_a) + len(to_b) - n
        frames = 3 * nb + 2 * (len(to_a) - nb) + (len(to_b) - nb)
        delivered = m1.value("notifyd_frames_delivered_total") - m0.value("notifyd_frames_delivered_total")
        assert delivered == frames, "frames delivered %d, expected %d" % (delivered, frames)
    finally:
        proxy.close()
