"""Small helpers every part of the harness uses: the harness's error, free
ports, bounded waits, names and durations, where t/lib/broker.sh is."""

import asyncio
import os
import random
import re
import socket
import struct
import time


class HarnessError(Exception):
    pass


def free_port():
    """A loopback TCP port that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it returns a true value (returned) or timeout (raises)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - reported below
            last_exc = e
        if time.monotonic() >= deadline:
            msg = "timed out after %.1fs waiting for %s" % (timeout, what)
            if last_exc is not None:
                msg += " (last error: %r)" % (last_exc,)
            raise TimeoutError(msg)
        time.sleep(interval)


def sanitize(name, maxlen=80):
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")
    return s[:maxlen] or "x"


def parse_duration(s):
    s = str(s).strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", s)
    if not m:
        raise ValueError("bad duration %r" % s)
    v = float(m.group(1))
    return v * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def _short(m, n=120):
    r = repr(m)
    return r if len(r) <= n else r[:n] + "...(%d chars)" % len(m)


def random_text(n, rng=random):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def run_in_loop(loop, coro, timeout):
    """Run coro on loop (an event loop that runs on a thread of its own) and
    return its result; it is cancelled when it takes longer than timeout
    (TimeoutError) or the wait ends otherwise."""
    fut = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return fut.result(timeout)
    except BaseException:
        fut.cancel()
        raise


def linger_rst(sock):
    """Make close() end sock's connection with RST (SO_LINGER {on, 0})."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


# t/integration, and the script that starts a private RabbitMQ node
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROKER_SH = os.path.join(os.path.dirname(HERE), "lib", "broker.sh")
