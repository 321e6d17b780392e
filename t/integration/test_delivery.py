"""Delivery: order, size, and exact bytes."""

import json

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
