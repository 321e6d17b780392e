"""Queue mode: an instance's queue does not outlive it for good, and does
not grow without bound while nobody consumes it."""

import time

import harness
from harness import recv_exact


def _exists(vhost, queue_name):
    """Without touching the queue: a passive declare counts as a use and
    would restart its expiry."""
    if vhost.broker.has_ctl:
        return queue_name in vhost.broker.list_queues(vhost.name)
    try:
        vhost.passive_declare(queue_name)
        return True
    except Exception:      # pika: ChannelClosedByBroker 404
        return False


def test_queue_expires_after_its_instance_is_gone(start_notifyd, ws_client, publisher, vhost, queue_name,
                                                   note):
    d = start_notifyd(amqp_queue_expires="6s")
    c = ws_client(d, "q1")
    publisher.publish("user.q1", b'{"n":1}')
    recv_exact(c, b'{"n":1}')
    c.close()
    d.stop()
    t0 = time.monotonic()
    assert _exists(vhost, queue_name), "the queue went with its consumer: a restart would lose messages"
    if vhost.broker.has_ctl:   # each rabbitmqctl call takes about a second
        harness.wait_until(lambda: time.monotonic() - t0 >= 3.0, 5, 0.1, "3 s after the stop")
        assert _exists(vhost, queue_name), "the queue went before amqp_queue_expires"
    else:
        time.sleep(6.5)    # one look only: each look is a use
    harness.wait_until(lambda: not _exists(vhost, queue_name), 15, 0.2, "the unused queue to expire")
    gone = time.monotonic() - t0
    note("queue gone %.1fs after its consumer (amqp_queue_expires = 6s)" % gone)
    assert gone >= 4.0, "gone after %.1fs, before amqp_queue_expires" % gone


def test_queue_caps_its_bytes_while_nobody_consumes(start_notifyd, publisher, vhost, queue_name, note):
    d = start_notifyd(amqp_queue_max_bytes="1k")
    d.stop()
    body = b'{"user_id":"nobody","pad":"' + b"x" * 70 + b'"}'   # 100 bytes
    for _ in range(30):
        publisher.publish("user.nobody", body)
    ready, _consumers = vhost.passive_declare(queue_name)
    note("30 messages of 100 bytes into a 1k queue: %d kept" % ready)
    assert 1 <= ready <= 10, "amqp_queue_max_bytes did not bound the queue: %d messages" % ready


def test_queue_declared_before_with_other_arguments_is_used(start_notifyd, ws_client, publisher, vhost,
                                                             queue_name):
    conn = vhost.connection()
    try:
        conn.channel().queue_declare(queue_name, durable=True)    # as notifyd 0.1 declared it
    finally:
        conn.close()
    d = start_notifyd()
    assert "event=queue_arguments_differ" in d.log_text()
    c = ws_client(d, "q3")
    publisher.publish("user.q3", b'{"n":3}')
    recv_exact(c, b'{"n":3}')
