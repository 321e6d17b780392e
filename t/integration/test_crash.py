"""Crash safety: a message is acked only after its frame was handed to the
kernel for every target connection.  So after kill -9 at any instant, every
message published is either received by the client or still in the queue."""

import os
import random
import time

import pytest

import harness

REPEATS = 5
N = 3000


@pytest.mark.deadline(240)
def test_kill9_midstream_loses_nothing(start_notifyd, ws_client, vhost, queue_name, note):
    seed = int(os.environ.get("TEST_SEED") or time.time() * 1000) & 0xFFFFFFFF
    rng = random.Random(seed)
    note("seed %d (set TEST_SEED to replay)" % seed)
    failures = []
    for rep in range(REPEATS):
        base = rep * N
        # a fresh daemon each time, all on the same durable queue
        d = start_notifyd(name="notifyd-rep%d" % rep, queue_name=queue_name)
        c = ws_client(d, 9)
        # kill points spread over the run: each repetition gets its own slice
        lo = N * (0.15 + 0.7 * rep / REPEATS)
        hi = N * (0.15 + 0.7 * (rep + 1) / REPEATS)
        kill_at = rng.randint(int(lo), int(hi))
        extra = rng.uniform(0, 0.01)

        t = harness.SeqPublisher(vhost, "user.9", N, base=base).start()
        t.wait_published(kill_at, 60)
        time.sleep(extra)
        received_before_kill = c.received
        d.kill9()
        t.join(120)
        assert not t.is_alive(), "publisher stuck"
        assert not t.errors, "publisher failed: %r" % t.errors
        try:
            c.wait_closed(5)
        except TimeoutError:
            pytest.fail("client still connected 5s after notifyd was killed")

        got = harness.received_seqs(c)
        left = harness.queued_seqs(vhost, queue_name)
        lost, dups, stray = harness.seq_coverage(range(base, base + N), got, left)
        note("rep %d: killed after %d published (+%.1fms), client had %d; received %d, left in "
             "queue %d, duplicates %d, lost %d"
             % (rep, kill_at, extra * 1000, received_before_kill, len(got), len(left), dups, len(lost)))
        if stray:
            failures.append("rep %d: unexpected seqs %r" % (rep, stray[:10]))
        if lost:
            failures.append("rep %d: lost %d messages (acked but never received), first %r"
                            % (rep, len(lost), lost[:20]))
        if len(got) == 0:
            failures.append("rep %d: the client received nothing before the kill" % rep)
        if len(left) == 0:
            failures.append("rep %d: nothing left in the queue: the kill came too late to test anything"
                            % rep)
    assert not failures, "; ".join(failures)
