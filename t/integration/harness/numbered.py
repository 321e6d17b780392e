"""Numbered messages ({"seq":N}) for the stop and crash tests: a stream
published on a thread of its own while the test stops or kills the daemon,
what a client received and what is left in the queue afterwards, and the
check that the two together cover every message."""

import collections
import json
import threading

from .broker import publish_all
from .util import wait_until


class SeqPublisher:
    """Publishes {"seq":base} .. {"seq":base+n-1} to routing_key with
    confirms, on a thread of its own once started.  published: how many the
    broker confirmed so far; errors: what stopped it early."""

    def __init__(self, vhost, routing_key, n, base=0):
        self.vhost = vhost
        self.routing_key = routing_key
        self.n = n
        self.base = base
        self.published = 0
        self.errors = []
        self.thread = threading.Thread(target=self._run, name="seq-publisher", daemon=True)

    def _messages(self):
        for i in range(self.n):
            yield self.routing_key, '{"seq":%d}' % (self.base + i)
            self.published = i + 1

    def _run(self):
        publish_all(self.vhost, self._messages(), self.errors)

    def start(self):
        self.thread.start()
        return self

    def is_alive(self):
        return self.thread.is_alive()

    def join(self, timeout):
        self.thread.join(timeout)

    def wait_published(self, count, timeout, interval=0.001, what=None):
        """Wait until count messages are confirmed (or the publisher failed
        or ended)."""
        wait_until(lambda: self.published >= count or self.errors or not self.thread.is_alive(),
                   timeout, interval, what or "%d messages published" % count)


def received_seqs(client):
    """The seqs of the messages a WSClient received, in arrival order."""
    return [json.loads(m)["seq"] for _, m in client.arrivals]


def queued_seqs(vhost, queue_name):
    """Once the queue has no consumer (what it held unacknowledged is back):
    the seqs of the messages left in it, taken out."""
    vhost.wait_no_consumer(queue_name)
    return [json.loads(b)["seq"] for _, b, _ in vhost.drain(queue_name)]


SeqCoverage = collections.namedtuple("SeqCoverage", "lost dups stray")


def seq_coverage(want, got, left):
    """What a client received (got) plus what is left in the queue (left)
    against the seqs published (want): lost (sorted, in neither), dups
    (received and also left, or twice), stray (in got or left, not in want)."""
    want = set(want)
    seen = set(got) | set(left)
    return SeqCoverage(sorted(want - seen), len(got) + len(left) - len(seen), sorted(seen - want))
