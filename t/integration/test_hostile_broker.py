"""Hostile messages from the broker: every kind of bad body or envelope.

Each case is published, then a broadcast sentinel; when the sentinel has
reached every client, the case has been judged.  What the contract and the
README say decides the expected outcome:

  * rejected without requeue, counted by reason in /metrics
    (notifyd_messages_rejected_total{reason=...}), dead-lettered intact
    (the test's daemon has amqp_dead_letter_exchange), delivered to nobody;
  * or delivered byte for byte, to exactly its target.

Cases where the contract is silent are marked SILENT: they are judged only
for "handled cleanly" (rejected or delivered to the one right target, the
next message flows) and what the daemon does is printed (TAP '#' lines).

test_poison.py covers the basic poison kinds without metrics; this file
adds the reasons, the boundaries, the target edge cases (ids, types,
escapes), the envelope (content-encoding, headers, redelivered) and dead
lettering of every rejected kind."""

import collections
import gzip
import json

import pika
import pytest

import harness

MAX = 16384         # max_message_size of the daemon under test (a 10 KB id fits)
DLX = "notifyd.hostile.dlx"
DEAD = "notifyd.hostile.dead"

ID128 = "L" * 128
ROUNDED = "9007199254740992"   # 2^53: what a double makes of 2^53 + 1
USERS = ["h1", "caf\u00e9", "\u30e6\u30fc\u30b6\u30fc", "a.b", "-5", "3", "1000", ID128, "0", ROUNDED]

R = "reject"
D = "deliver"
B = "broadcast"
U = "undelivered"
SILENT = "silent"


def obj(**kw):
    return json.dumps(kw, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def pad_to(n, head=b'{"p":"', tail=b'"}'):
    return head + b"x" * (n - len(head) - len(tail)) + tail


# (id, routing key ("=queue": straight to the queue), body, properties, expected)
# expected: (R, reason) | (D, [users]) | (B,) | (U,) | (SILENT, [user it must not reach])
CASES = [
    # ---- bodies that are not one JSON object ---------------------------------
    ("empty-body", "user.h1", b"", {}, (R, "not_json")),
    ("blank-body", "user.h1", b"   \n", {}, (R, "not_json")),
    ("not-json", "user.h1", b"hello", {}, (R, "not_json")),
    ("truncated", "user.h1", b'{"a":', {}, (R, "not_json")),
    ("trailing-garbage", "user.h1", b'{"a":1} x', {}, (R, "not_json")),
    ("two-objects", "user.h1", b'{"a":1}{"b":2}', {}, (R, "not_json")),
    ("single-quotes", "user.h1", b"{'a':1}", {}, (R, "not_json")),
    ("raw-nul-in-string", "user.h1", b'{"a":"x\x00y"}', {}, (R, "not_json")),
    ("raw-newline-in-string", "user.h1", b'{"a":"x\ny"}', {}, (R, "not_json")),
    ("array", "user.h1", b'[{"a":1}]', {}, (R, "not_object")),
    ("string", "user.h1", b'"just a string"', {}, (R, "not_object")),
    ("number", "user.h1", b"42", {}, (R, "not_object")),
    ("null", "user.h1", b"null", {}, (R, "not_object")),
    ("true", "user.h1", b"true", {}, (R, "not_object")),
    ("bom-then-object", "user.h1", b'\xef\xbb\xbf{"a":1}', {}, (SILENT,)),
    ("deeply-nested-2000", "user.h1", b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}", {}, (SILENT,)),
    # ---- invalid UTF-8 -------------------------------------------------------
    ("utf8-lone-ff", "user.h1", b'{"a":"\xff"}', {}, (R, "invalid_utf8")),
    ("utf8-lone-continuation", "user.h1", b'{"a":"\x80"}', {}, (R, "invalid_utf8")),
    ("utf8-overlong-2", "user.h1", b'{"a":"\xc0\xaf"}', {}, (R, "invalid_utf8")),
    ("utf8-overlong-nul", "user.h1", b'{"a":"\xc0\x80"}', {}, (R, "invalid_utf8")),
    ("utf8-overlong-3", "user.h1", b'{"a":"\xe0\x80\xaf"}', {}, (R, "invalid_utf8")),
    ("utf8-overlong-4", "user.h1", b'{"a":"\xf0\x80\x80\xaf"}', {}, (R, "invalid_utf8")),
    ("utf8-surrogate", "user.h1", b'{"a":"\xed\xa0\x80"}', {}, (R, "invalid_utf8")),
    ("utf8-cesu-pair", "user.h1", b'{"a":"\xed\xa0\xbd\xed\xb8\x80"}', {}, (R, "invalid_utf8")),
    ("utf8-above-10ffff", "user.h1", b'{"a":"\xf4\x90\x80\x80"}', {}, (R, "invalid_utf8")),
    ("utf8-5-byte", "user.h1", b'{"a":"\xf8\x88\x80\x80\x80"}', {}, (R, "invalid_utf8")),
    ("utf8-truncated-seq", "user.h1", b'{"a":"\xe2\x82"}', {}, (R, "invalid_utf8")),
    ("utf8-in-key", "user.h1", b'{"\xfe":1}', {}, (R, "invalid_utf8")),
    # valid UTF-8 bytes, JSON escapes that name no character
    ("escaped-lone-surrogate", "user.h1", b'{"a":"\\ud800"}', {}, (SILENT,)),
    ("valid-4-byte-utf8", "user.h1", '{"a":"\U0001F600 \u00e9"}'.encode(), {}, (D, ["h1"])),
    # ---- size ------------------------------------------------------------------
    ("size-exactly-max", "user.h1", pad_to(MAX), {}, (D, ["h1"])),
    ("size-max-plus-1", "user.h1", pad_to(MAX + 1), {}, (R, "too_large")),
    ("size-10x-max", "user.h1", pad_to(MAX * 10), {}, (R, "too_large")),
    # ---- odd but valid objects -----------------------------------------------------
    ("whitespace-around", "user.h1", b' \t{"a":1}\r\n ', {}, (D, ["h1"])),
    ("duplicate-keys", "user.h1", b'{"a":1,"a":2}', {}, (D, ["h1"])),
    ("huge-number", "user.h1", b'{"n":1e999,"m":-0.0}', {}, (D, ["h1"])),
    ("escaped-nul-outside-target", "user.h1", b'{"a":"x\\u0000y"}', {}, (D, ["h1"])),
    # ---- targets in the routing key ------------------------------------------------
    ("key-user-empty-id", "user.", b'{"a":1}', {}, (R, "bad_target")),
    ("key-user-128-bytes", "user." + ID128, b'{"a":"128"}', {}, (D, [ID128])),
    ("key-user-129-bytes", "user." + "L" * 129, b'{"a":"129"}', {}, (R, "bad_target")),
    ("key-user-250-bytes", "user." + "L" * 250, b'{"a":"250"}', {}, (R, "bad_target")),
    ("key-user-non-ascii", "user.caf\u00e9", b'{"a":"cafe"}', {}, (D, ["caf\u00e9"])),
    ("key-user-cjk", "user.\u30e6\u30fc\u30b6\u30fc", b'{"a":"cjk"}', {}, (D, ["\u30e6\u30fc\u30b6\u30fc"])),
    ("key-user-tab", "user.a\tb", b'{"a":1}', {}, (R, "bad_target")),
    ("key-user-del", "user.a\x7fb", b'{"a":1}', {}, (R, "bad_target")),
    ("key-user-nobody", "user.nobody-here", b'{"a":1}', {}, (U,)),
    ("key-wins-over-body", "user.h1", obj(user_id="3", a="key wins"), {}, (D, ["h1"])),
    # ---- targets in the body (bound key events.x, or straight to the queue) -----
    ("body-user-string", "events.x", obj(user_id="h1"), {}, (D, ["h1"])),
    ("body-user-non-ascii", "events.x", obj(user_id="caf\u00e9"), {}, (D, ["caf\u00e9"])),
    ("body-user-escaped-non-ascii", "events.x", b'{"user_id":"caf\\u00e9"}', {}, (D, ["caf\u00e9"])),
    ("body-user-with-dot", "events.x", obj(user_id="a.b"), {}, (D, ["a.b"])),
    ("body-user-128-bytes", "events.x", obj(user_id=ID128), {}, (D, [ID128])),
    ("body-user-129-bytes", "events.x", obj(user_id="L" * 129), {}, (R, "bad_target")),
    ("body-user-10k", "events.x", obj(user_id="u" * 10240), {}, (R, "bad_target")),
    ("body-user-empty", "events.x", obj(user_id=""), {}, (R, "bad_target")),
    ("body-user-escaped-nul", "events.x", b'{"user_id":"h1\\u0000x"}', {}, (R, "bad_target")),
    ("body-user-escaped-nul-only", "events.x", b'{"user_id":"\\u0000"}', {}, (R, "bad_target")),
    ("body-user-control-01", "events.x", b'{"user_id":"a\\u0001b"}', {}, (R, "bad_target")),
    ("body-user-newline", "events.x", b'{"user_id":"a\\nb"}', {}, (R, "bad_target")),
    ("body-user-del", "events.x", b'{"user_id":"a\\u007fb"}', {}, (R, "bad_target")),
    ("body-user-int", "events.x", b'{"user_id":3}', {}, (D, ["3"])),
    ("body-user-negative-int", "events.x", b'{"user_id":-5}', {}, (D, ["-5"])),
    ("body-user-zero", "events.x", b'{"user_id":0}', {}, (D, ["0"])),
    ("body-user-float", "events.x", b'{"user_id":1.5}', {}, (R, "bad_target")),
    ("body-user-float-integral", "events.x", b'{"user_id":3.0}', {}, (SILENT,)),
    ("body-user-exponent", "events.x", b'{"user_id":1e3}', {}, (SILENT,)),
    # an integer id is an id: rounding it to a double must not hand the
    # message to another user
    ("body-user-2pow53-plus-1", "events.x", b'{"user_id":9007199254740993}', {}, (SILENT, ROUNDED)),
    ("body-user-1e300", "events.x", b'{"user_id":1e300}', {}, (R, "bad_target")),
    ("body-user-true", "events.x", b'{"user_id":true}', {}, (R, "bad_target")),
    ("body-user-false", "events.x", b'{"user_id":false}', {}, (R, "bad_target")),
    ("body-user-null", "events.x", b'{"user_id":null}', {}, (R, "bad_target")),
    ("body-user-object", "events.x", b'{"user_id":{"id":"h1"}}', {}, (R, "bad_target")),
    ("body-user-array", "events.x", b'{"user_id":["h1"]}', {}, (R, "bad_target")),
    ("body-user-wrong-case-key", "events.x", b'{"User_Id":"h1"}', {}, (R, "no_target")),
    ("body-user-escaped-key", "events.x", b'{"user\\u005fid":"h1"}', {}, (SILENT,)),
    ("body-nobody", "events.x", obj(user_id="nobody-here"), {}, (U,)),
    ("body-broadcast-true", "events.x", b'{"broadcast":true,"a":"all"}', {}, (B,)),
    ("body-broadcast-string", "events.x", b'{"broadcast":"true"}', {}, (R, "bad_target")),
    ("body-broadcast-1", "events.x", b'{"broadcast":1}', {}, (R, "bad_target")),
    ("body-broadcast-null", "events.x", b'{"broadcast":null}', {}, (SILENT,)),
    ("body-broadcast-false", "events.x", b'{"broadcast":false}', {}, (R, "no_target")),
    ("body-user-and-broadcast", "events.x", b'{"user_id":"h1","broadcast":true}', {}, (SILENT,)),
    ("body-no-target", "events.x", b'{"title":"nobody named"}', {}, (R, "no_target")),
    ("queue-body-user", "=queue", obj(user_id="h1", a="straight to the queue"), {}, (D, ["h1"])),
    ("queue-no-target", "=queue", b'{"a":1}', {}, (R, "no_target")),
    ("queue-not-json", "=queue", b"nope", {}, (R, "not_json")),
    # ---- the envelope ----------------------------------------------------------
    ("content-encoding-gzip", "user.h1", gzip.compress(b'{"a":"zipped"}'),
     {"content_encoding": "gzip"}, (R, "content_encoding")),
    ("content-encoding-gzip-plain-body", "user.h1", b'{"a":"not zipped"}',
     {"content_encoding": "gzip"}, (R, "content_encoding")),
    ("content-encoding-deflate", "user.h1", b'{"a":1}', {"content_encoding": "deflate"},
     (R, "content_encoding")),
    ("content-encoding-identity", "user.h1", b'{"a":"identity"}', {"content_encoding": "identity"},
     (SILENT,)),
    ("content-type-text-plain", "user.h1", b'{"a":"typed"}', {"content_type": "text/plain"},
     (D, ["h1"])),
    ("many-headers", "user.h1", b'{"a":"headers"}',
     {"headers": {"h%d" % i: "v" * 20 for i in range(500)}}, (D, ["h1"])),
    ("all-properties", "user.h1", b'{"a":"props"}',
     {"priority": 9, "expiration": "60000", "message_id": "m\u00e9", "type": "t", "app_id": "a",
      "user_id": "guest", "correlation_id": "c", "reply_to": "r", "timestamp": 1}, (D, ["h1"])),
]


def props_of(kw):
    base = {"delivery_mode": 2}
    if "content_type" not in kw:
        base["content_type"] = "application/json"
    base.update(kw)
    return pika.BasicProperties(**base)


def publish(p, queue, key, body, props):
    if key == "=queue":
        p.ch.basic_publish(exchange="", routing_key=queue, body=body, properties=props_of(props),
                           mandatory=True)
    else:
        p.ch.basic_publish(exchange="notifications", routing_key=key, body=body,
                           properties=props_of(props), mandatory=True)


def rejected_counts(port):
    m = harness.get_metrics(port)
    out = collections.Counter()
    for (name, labels), v in m.samples.items():
        if name == "notifyd_messages_rejected_total":
            out[dict(labels).get("reason")] = v
    return out, m.value("notifyd_messages_undelivered_total")


@pytest.mark.deadline(150)
def test_hostile_messages_from_the_broker(start_notifyd, ws_client, vhost, note):
    conn = vhost.connection()
    try:
        ch = conn.channel()
        ch.exchange_declare(DLX, "fanout", durable=True)
        ch.queue_declare(DEAD, durable=True)
        ch.queue_bind(DEAD, DLX, "")
    finally:
        conn.close()
    d = start_notifyd(max_message_size=str(MAX), amqp_bindings="events.#",
                      amqp_dead_letter_exchange=DLX)
    clients = {u: ws_client(d, u) for u in USERS}
    p = harness.Publisher(vhost)
    failures = []
    silent = []
    rejected_bodies = []
    before, undeliv0 = rejected_counts(d.port)
    try:
        for k, (cid, key, body, props, expect) in enumerate(CASES):
            publish(p, d.queue, key, body, props)
            sentinel = ('{"sentinel":%d}' % k).encode()
            p.publish("broadcast", sentinel)
            got = {}
            for u, c in clients.items():
                msgs = []
                while True:
                    try:
                        m = c.recv(10)
                    except (TimeoutError, harness.ConnectionClosed) as e:
                        failures.append("%s: client %r: %s" % (cid, u, e))
                        break
                    mb = m.encode("utf-8") if isinstance(m, str) else m
                    if mb == sentinel:
                        break
                    msgs.append(mb)
                got[u] = msgs
            after, undeliv = rejected_counts(d.port)
            delta = {r: after[r] - before[r] for r in after if after[r] != before[r]}
            d_undeliv = undeliv - undeliv0
            before, undeliv0 = after, undeliv
            receivers = sorted(u for u, msgs in got.items() if msgs)
            wrong_body = [u for u, msgs in got.items() if msgs and msgs != [body]]
            if delta:
                outcome = "rejected %s" % ",".join("%s+%d" % kv for kv in sorted(delta.items()))
            elif receivers:
                outcome = "delivered to %s" % (receivers if len(receivers) < len(USERS) else "everyone")
            elif d_undeliv:
                outcome = "undelivered (no connection)"
            else:
                outcome = "nothing counted, nothing delivered"
            if wrong_body:
                failures.append("%s: body not delivered byte for byte to %r: %r" % (
                    cid, wrong_body, [got[u][:2] for u in wrong_body]))
            if delta:
                rejected_bodies.append(body)
            kind = expect[0]
            if kind == R:
                if delta != {expect[1]: 1} or receivers:
                    failures.append("%s: want rejected (%s), got %s" % (cid, expect[1], outcome))
            elif kind == D:
                if receivers != sorted(expect[1]) or delta:
                    failures.append("%s: want delivered to %r, got %s" % (cid, expect[1], outcome))
            elif kind == B:
                if receivers != sorted(USERS) or delta:
                    failures.append("%s: want a broadcast, got %s" % (cid, outcome))
            elif kind == U:
                if receivers or delta or d_undeliv != 1:
                    failures.append("%s: want undelivered (counted), got %s" % (cid, outcome))
            else:
                clean = (delta and sum(delta.values()) == 1 and not receivers) or \
                        (not delta and len(receivers) == 1) or (not delta and d_undeliv == 1)
                if not clean:
                    failures.append("%s: not handled cleanly: %s" % (cid, outcome))
                if len(expect) > 1 and expect[1] in receivers:
                    failures.append("%s: delivered to user %r, another user than the one named"
                                    % (cid, expect[1]))
                silent.append("%s -> %s" % (cid, outcome))
    finally:
        p.close()
    vhost.wait_queue_empty(d.queue, timeout=15)
    dead = []
    try:
        harness.wait_until(lambda: dead.extend(vhost.drain(DEAD)) or len(dead) >= len(rejected_bodies),
                           10, 0.2, "%d dead letters" % len(rejected_bodies))
    except TimeoutError:
        pass
    dead_bodies = [b for _, b, _ in dead]
    if dead_bodies != rejected_bodies:
        failures.append("dead letters differ: %d rejected, %d dead-lettered; missing %r; extra %r" % (
            len(rejected_bodies), len(dead_bodies),
            [b[:40] for b in rejected_bodies if b not in dead_bodies][:5],
            [b[:40] for b in dead_bodies if b not in rejected_bodies][:5]))
    totals, _ = rejected_counts(d.port)
    note("%d cases; rejected by reason %s; %d dead-lettered intact, in order" % (
        len(CASES), dict(totals), len(dead_bodies)))
    note("where the contract is silent: " + "; ".join(silent))
    assert d.running(), "notifyd died"
    assert all(c.open for c in clients.values()), "a client was disconnected"
    assert not failures, "\n".join(failures)


@pytest.mark.deadline(90)
def test_redelivered_messages(start_notifyd, ws_client, vhost, queue_name, note):
    """Messages that carry the redelivered flag (taken by another consumer
    first and requeued): a good one is delivered as usual, a poison one is
    rejected without requeue (not requeued for ever), and both are counted
    in notifyd_messages_redelivered_total."""
    conn = vhost.connection()
    good = b'{"title":"second time around"}'
    bad = b"still not JSON"
    try:
        ch = conn.channel()
        ch.exchange_declare("notifications", "topic", durable=True)
        ch.queue_declare(queue_name, durable=True,   # as notifyd declares it
                         arguments={"x-expires": 24 * 3600 * 1000, "x-max-length-bytes": 1 << 30})
        ch.queue_bind(queue_name, "notifications", "user.*")
        for b in (good, bad):
            ch.basic_publish("notifications", "user.rd", b, pika.BasicProperties(delivery_mode=2))
        held = []
        for _ in range(2):
            method, props, body = ch.basic_get(queue_name, auto_ack=False)
            assert method is not None, "basic_get found nothing"
            held.append(method.delivery_tag)
        d = start_notifyd()
        c = ws_client(d, "rd")
        c.expect_nothing(0.3)
        for tag in held:
            ch.basic_nack(tag, requeue=True)
    finally:
        conn.close()
    harness.recv_exact(c, good, timeout=10)
    c.expect_nothing(0.5)
    vhost.wait_queue_empty(d.queue, timeout=10)
    m = harness.get_metrics(d.port)
    red = m.value("notifyd_messages_redelivered_total")
    rej = m.value("notifyd_messages_rejected_total", reason="not_json")
    note("redelivered %d, rejected not_json %d, delivered %d" % (
        red, rej, m.value("notifyd_frames_delivered_total")))
    assert red == 2, "notifyd_messages_redelivered_total %s, want 2" % red
    assert rej == 1
