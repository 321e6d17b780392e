"""Routing: who receives a message published to the exchange."""

import json

from harness import recv_exact


def test_user_routing_byte_for_byte_and_no_leak(notifyd, ws_client, publisher):
    c3 = ws_client(notifyd, 3)
    c4 = ws_client(notifyd, 4)
    # Odd spacing, key order and escapes: the body must not be re-serialized.
    body = b'{ "title" :"Hello",  "message":"for user 3 \\u00e9\\n\\"q\\"",\t"n":1.50,"z":[1, 2 ,{}] }'
    publisher.publish("user.3", body)
    recv_exact(c3, body)
    c4.expect_nothing(1.0)
    c3.expect_nothing(0.3)


def test_routing_key_wins_over_body_user_id(notifyd, ws_client, publisher):
    c3 = ws_client(notifyd, 3)
    c4 = ws_client(notifyd, 4)
    body = b'{"user_id":"4","title":"routing key says user 3"}'
    publisher.publish("user.3", body)
    recv_exact(c3, body)
    c4.expect_nothing(1.0)


def test_string_user_id(notifyd, ws_client, publisher):
    alice = ws_client(notifyd, "alice_42")
    other = ws_client(notifyd, "alice_4")
    body = b'{"title":"for alice_42"}'
    publisher.publish("user.alice_42", body)
    recv_exact(alice, body)
    other.expect_nothing(1.0)


def test_every_connection_of_a_user_gets_every_message(notifyd, ws_client, publisher):
    conns = [ws_client(notifyd, 5) for _ in range(3)]
    bystander = ws_client(notifyd, 6)
    bodies = [json.dumps({"n": i, "title": "to all tabs of user 5"}).encode() for i in range(20)]
    for b in bodies:
        publisher.publish("user.5", b)
    for i, c in enumerate(conns):
        got = [m.encode() for m in c.recv_n(len(bodies), timeout=10)]
        assert sorted(got) == sorted(bodies), "connection %d of user 5 got %r" % (i, got)
        c.expect_nothing(0.3)
    bystander.expect_nothing(0.5)


def test_broadcast_reaches_everyone(notifyd, ws_client, publisher):
    clients = [ws_client(notifyd, u) for u in (1, 2, 2, "bob")]
    body = b'{"broadcast":true,"title":"maintenance at 10:00"}'
    publisher.publish("broadcast", body)
    for c in clients:
        recv_exact(c, body)
    # a broadcast with no body flag is still a broadcast: the key decides
    body2 = b'{"title":"key says broadcast"}'
    publisher.publish("broadcast", body2)
    for c in clients:
        recv_exact(c, body2)


def test_body_routing_on_extra_binding(start_notifyd, ws_client, publisher):
    d = start_notifyd(amqp_bindings="events.#")
    c7 = ws_client(d, 7)
    c8 = ws_client(d, 8)

    b1 = b'{"user_id":"7","title":"string id"}'
    publisher.publish("events.x", b1)
    recv_exact(c7, b1)
    c8.expect_nothing(0.5)

    b2 = b'{"user_id":7,"title":"integer id"}'
    publisher.publish("events.x.y", b2)
    recv_exact(c7, b2)
    c8.expect_nothing(0.5)

    b3 = b'{"broadcast":true,"title":"body broadcast"}'
    publisher.publish("events.x", b3)
    recv_exact(c7, b3)
    recv_exact(c8, b3)

    # the usual keys still work alongside the extra binding
    b4 = b'{"title":"plain user key"}'
    publisher.publish("user.8", b4)
    recv_exact(c8, b4)
    c7.expect_nothing(0.5)


def test_body_routing_via_default_exchange(notifyd, ws_client, publisher):
    c7 = ws_client(notifyd, 7)
    c8 = ws_client(notifyd, 8)
    b1 = b'{"user_id":"7","title":"straight to the queue"}'
    publisher.publish_to_queue(notifyd.queue, b1)
    recv_exact(c7, b1)
    c8.expect_nothing(0.5)
    b2 = b'{"broadcast":true,"title":"straight to the queue, everyone"}'
    publisher.publish_to_queue(notifyd.queue, b2)
    recv_exact(c7, b2)
    recv_exact(c8, b2)


def test_user_without_connection_does_not_block(notifyd, ws_client, publisher, vhost):
    """Messages for users with no connection are acked (undelivered) and do
    not hold up the ones behind them."""
    c = ws_client(notifyd, 12)
    for i in range(50):
        publisher.publish("user.nobody%d" % i, {"n": i})
    body = b'{"title":"after 50 messages for absent users"}'
    publisher.publish("user.12", body)
    recv_exact(c, body)
    vhost.wait_queue_empty(notifyd.queue, timeout=10)


def test_client_connected_later_gets_only_new_messages(notifyd, ws_client, publisher, vhost):
    early = b'{"title":"before connecting"}'
    publisher.publish("user.13", early)
    vhost.wait_queue_empty(notifyd.queue, timeout=10)
    c = ws_client(notifyd, 13)
    late = b'{"title":"after connecting"}'
    publisher.publish("user.13", late)
    recv_exact(c, late)
    c.expect_nothing(0.5)


def test_two_instances_each_deliver_to_their_own_clients(start_notifyd, ws_client, publisher, queue_name):
    """Instances behind a load balancer: each has its own queue, sees every
    message, and delivers to the connections it holds."""
    a = start_notifyd(name="notifyd-a", queue_name=queue_name + ".a")
    b = start_notifyd(name="notifyd-b", queue_name=queue_name + ".b")
    ca = ws_client(a, 70)
    cb = ws_client(b, 71)
    cb70 = ws_client(b, 70)  # user 70 also has a tab on the other instance
    m1 = b'{"title":"for 70"}'
    publisher.publish("user.70", m1)
    recv_exact(ca, m1)
    recv_exact(cb70, m1)
    cb.expect_nothing(0.5)
    m2 = b'{"title":"for 71"}'
    publisher.publish("user.71", m2)
    recv_exact(cb, m2)
    ca.expect_nothing(0.3)
    cb70.expect_nothing(0.1)
    m3 = b'{"title":"for all"}'
    publisher.publish("broadcast", m3)
    for c in (ca, cb, cb70):
        recv_exact(c, m3)
