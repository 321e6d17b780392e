"""A client that does not read must not hold up anyone else, nor the acks."""

import json
import struct
import time

import pytest

import harness
from harness import OP_CLOSE, OP_TEXT

MSG_SIZE = 16 * 1024
TOTAL = 4 * 1024 * 1024
SEND_TIMEOUT = 2.0


@pytest.mark.deadline(120)
def test_slow_client_is_cut_off_others_unaffected(start_notifyd, ws_client, raw_client, publisher,
                                                   vhost, note):
    d = start_notifyd(ws_send_queue_max="64k", ws_send_timeout="%ds" % SEND_TIMEOUT)
    slow = raw_client(d, "slow", rcvbuf=4096)   # never reads until the end
    fast = ws_client(d, "fast")

    n = TOTAL // MSG_SIZE
    slow_bodies = []
    fast_sent = {}
    t_start = time.monotonic()
    for i in range(n):
        head = '{"seq":%d,"data":"' % i
        body = (head + "s" * (MSG_SIZE - len(head) - 2) + '"}').encode()
        publisher.publish("user.slow", body)
        slow_bodies.append(body)
        if i % 8 == 0:
            fast_sent[i] = time.monotonic()
            publisher.publish("user.fast", json.dumps({"fast": i}))
    t_published = time.monotonic()

    # the other client got every one of its messages, promptly
    got = fast.recv_n(len(fast_sent), timeout=10)
    lat = []
    for (t_arr, m) in fast.arrivals:
        k = json.loads(m)["fast"]
        lat.append(t_arr - fast_sent[k])
    assert sorted(json.loads(m)["fast"] for m in got) == sorted(fast_sent)
    worst = max(lat)
    note("published %d x %d KiB in %.1fs; fast client worst latency %.3fs"
         % (n, MSG_SIZE // 1024, t_published - t_start, worst))
    assert worst < 2.0, "the fast client waited %.2fs for a message" % worst

    # acks were not held back by the slow client beyond ws_send_timeout
    vhost.wait_queue_empty(d.queue, timeout=SEND_TIMEOUT + 3)
    t_drained = time.monotonic()

    # now read what the slow client was sent: complete frames, in order, then
    # a close frame with 1013 or the end of the connection
    frames = []
    close = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            f = slow.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        except harness.HarnessError as e:
            pytest.fail("broken frame after %d complete ones: %s" % (len(frames), e))
        if f is None:
            close = "eof" + (" (reset)" if slow.reset else "")
            break
        assert not f.masked
        if f.opcode == OP_CLOSE:
            close = struct.unpack("!H", f.payload[:2])[0] if len(f.payload) >= 2 else "empty close"
            break
        if f.opcode == OP_TEXT:
            frames.append(f.payload)
    note("slow client read %d complete messages of %d, then %s; queue drained %.1fs after publishing"
         % (len(frames), n, close, t_drained - t_published))
    assert frames == slow_bodies[:len(frames)], "the slow client's messages are not a clean prefix"
    assert close is not None, \
        "slow client never closed (read %d of %d messages, then nothing for 30s)" % (len(frames), n)
    if isinstance(close, int) or close == "empty close":
        assert close == 1013, "close code %s, wanted 1013" % close
    assert len(frames) < n, "the slow client was sent all %d messages: nothing was cut off" % n
    # the server is fine afterwards
    fast_after = b'{"title":"after the slow one"}'
    publisher.publish("user.fast", fast_after)
    harness.recv_exact(fast, fast_after)
    assert d.running()
