"""Poison messages: rejected without requeue, never delivered, never blocking."""

import json

import pytest

import harness

from harness import recv_exact

MAX = 4096  # max_message_size for these tests

# (id, routing key or None for "straight to the queue", body)
POISON = [
    ("not-json", "user.21", b"hello, this is not JSON"),
    ("truncated-json", "user.21", b'{"title":"cut'),
    ("json-array", "user.21", b'[{"title":"an array, not an object"}]'),
    ("json-string", "user.21", b'"just a string"'),
    ("empty-body", "user.21", b""),
    ("invalid-utf8", "user.21", b'{"title":"bad \xff\xfe bytes"}'),
    ("utf8-surrogate", "user.21", b'{"title":"cesu \xed\xa0\xbd\xed\xb8\x80"}'),
    ("utf8-overlong", "user.21", b'{"title":"overlong \xc0\xaf"}'),
    ("too-large", "user.21", ('{"title":"big","data":"%s"}' % ("x" * (MAX + 100))).encode()),
    ("empty-user-id", "user.", b'{"title":"user. with an empty id"}'),
    ("no-target-bound-key", "events.x", b'{"title":"no user_id, no broadcast"}'),
    ("no-target-empty-user-id", "events.x", b'{"user_id":"","title":"empty user_id"}'),
    ("no-target-broadcast-false", "events.x", b'{"broadcast":false,"title":"not a broadcast"}'),
    ("no-target-default-exchange", None, b'{"title":"straight to the queue without a target"}'),
]


def _publish(publisher, queue, key, body):
    if key is None:
        publisher.publish_to_queue(queue, body)
    else:
        publisher.publish(key, body)


def _daemon(start_notifyd):
    return start_notifyd(max_message_size=str(MAX), amqp_bindings="events.#")


@pytest.mark.parametrize("key,body", [p[1:] for p in POISON], ids=[p[0] for p in POISON])
def test_poison_is_dropped_and_does_not_block(start_notifyd, ws_client, publisher, vhost, key, body):
    d = _daemon(start_notifyd)
    target = ws_client(d, 21)
    bystander = ws_client(d, 22)
    _publish(publisher, d.queue, key, body)
    good = b'{"title":"good message right after the poison"}'
    publisher.publish("user.21", good)
    # the first thing user 21 sees is the good message: the poison did not reach it
    recv_exact(target, good, timeout=5)
    target.expect_nothing(0.5)
    bystander.expect_nothing(0.2)
    # rejected without requeue: nothing left, ready or unacknowledged
    vhost.wait_queue_empty(d.queue, timeout=10)
    assert d.running(), "notifyd died"


def test_poison_burst_interleaved_with_good_messages(start_notifyd, ws_client, publisher, vhost):
    """All kinds of poison, three rounds, each followed by a good message:
    every good one arrives, in order, and nothing else does."""
    d = _daemon(start_notifyd)
    target = ws_client(d, 21)
    bystander = ws_client(d, 22)
    goods = []
    for rnd in range(3):
        for name, key, body in POISON:
            _publish(publisher, d.queue, key, body)
            g = json.dumps({"title": "good", "after": name, "round": rnd}).encode()
            publisher.publish("user.21", g)
            goods.append(g)
    got = [m.encode() for m in target.recv_n(len(goods), timeout=20)]
    assert sorted(got) == sorted(goods)
    assert got == goods, "good messages out of order"
    target.expect_nothing(0.5)
    bystander.expect_nothing(0.2)
    vhost.wait_queue_empty(d.queue, timeout=10)


def test_poison_is_dead_lettered_when_configured(start_notifyd, ws_client, publisher, vhost):
    """With amqp_dead_letter_exchange, rejected messages land there intact."""
    conn = vhost.connection()
    try:
        ch = conn.channel()
        ch.exchange_declare("notifyd.dlx", "fanout", durable=True)
        ch.queue_declare("notifyd.dead", durable=True)
        ch.queue_bind("notifyd.dead", "notifyd.dlx", "")
    finally:
        conn.close()
    d = start_notifyd(max_message_size=str(MAX), amqp_dead_letter_exchange="notifyd.dlx")
    c = ws_client(d, 21)
    poisons = [b"not json at all", b"[1,2,3]", b'{"bad":"\xff"}',
               ('{"big":"%s"}' % ("x" * (MAX + 1))).encode()]
    for p in poisons:
        publisher.publish("user.21", p)
    good = b'{"title":"after the dead letters"}'
    publisher.publish("user.21", good)
    recv_exact(c, good)
    c.expect_nothing(0.3)
    vhost.wait_queue_empty(d.queue, timeout=10)
    dead = []
    harness.wait_until(lambda: dead.extend(vhost.drain("notifyd.dead")) or len(dead) >= len(poisons),
                       10, 0.2, "%d dead letters" % len(poisons))
    assert sorted(b for _, b, _ in dead) == sorted(poisons)
