"""A process's numbers from /proc: RSS, descriptors, threads, and an RSS
sampler thread."""

import os
import threading
import time

from .util import HarnessError


def _proc_status(pid, *keys):
    """The numbers of the lines "KEY: N ..." of /proc/PID/status (None for a
    key that is not there)."""
    found = dict.fromkeys(keys)
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, rest = line.partition(":")
            if k in found:
                found[k] = int(rest.split()[0])
    return [found[k] for k in keys]


def proc_usage(pid):
    """(VmRSS kB, open descriptors, threads) of a live process, from /proc."""
    rss, threads = _proc_status(pid, "VmRSS", "Threads")
    return rss, proc_fd_count(pid), threads


def proc_rss_kb(pid):
    """VmRSS of a live process in kB."""
    rss, = _proc_status(pid, "VmRSS")
    if rss is None:
        raise HarnessError("no VmRSS for pid %d" % pid)
    return rss


def proc_fd_count(pid):
    """Open descriptors of a live process (entries of /proc/PID/fd)."""
    return len(os.listdir("/proc/%d/fd" % pid))


class RssSampler:
    """Samples a process's VmRSS every interval seconds on a thread until
    stop(); samples: [(time.monotonic(), kB)]."""

    def __init__(self, pid, interval=0.1):
        self.pid = pid
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), proc_rss_kb(self.pid)))
            except (OSError, HarnessError):
                return
            self._stop.wait(self.interval)

    def stop(self, timeout=5):
        self._stop.set()
        self.thread.join(timeout)
        return self.samples

    @property
    def peak(self):
        return max((kb for _, kb in self.samples), default=None)


_SANITIZED = {}


def sanitized(binary):
    """True for an AddressSanitizer or ThreadSanitizer build: ASan's
    quarantine keeps freed memory (up to 256 MB) and TSan's shadow grows
    with every page touched, so RSS says nothing about leaks there
    (LeakSanitizer at exit does); and valgrind cannot run either."""
    if binary not in _SANITIZED:
        try:
            with open(binary, "rb") as f:
                text = f.read()
                _SANITIZED[binary] = b"__asan_init" in text or b"__tsan_init" in text
        except OSError:
            _SANITIZED[binary] = False
    return _SANITIZED[binary]
