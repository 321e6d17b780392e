"""The Prometheus text format of /metrics: a parser that checks the
exposition format (Metrics), get_metrics and wait_metric."""

import re

from .http import http_get
from .util import wait_until


_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


def _parse_labels(s):
    out = {}
    pos = 0
    while pos < len(s):
        m = _LABEL.match(s, pos)
        if not m:
            raise ValueError("bad label set %r" % s)
        val = m.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        if m.group(1) in out:
            raise ValueError("label %s twice in %r" % (m.group(1), s))
        out[m.group(1)] = val
        pos = m.end()
    return out


def _sample_value(v):
    if v in ("+Inf", "Inf"):
        return float("inf")
    if v == "-Inf":
        return float("-inf")
    if v == "NaN":
        return float("nan")
    return float(v)


class Metrics:
    """A parsed /metrics answer.  Parsing checks the text exposition format:
    every sample's family has # HELP and # TYPE before its first sample,
    names are valid, a family's samples are contiguous, histogram buckets
    are cumulative, end with le="+Inf" and that bucket equals _count.
    problems lists what is wrong (empty: valid)."""

    def __init__(self, text):
        self.text = text
        self.samples = {}   # (name, frozenset(labels.items())) -> value
        self.types = {}     # family -> type
        self.helps = {}
        self.problems = []
        self._parse()

    def _family(self, name):
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and self.types.get(name[:-len(suffix)]) in ("histogram", "summary"):
                return name[:-len(suffix)]
        return name

    def _parse(self):
        p = self.problems
        seen_families = []   # in order of first sample
        closed = set()
        current = None
        buckets = {}         # (family, labels without le) -> [(le, value)]
        counts = {}
        for n, line in enumerate(self.text.split("\n"), 1):
            if line == "":
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    name = parts[2]
                    if not _METRIC_NAME.match(name):
                        p.append("line %d: bad metric name %r" % (n, name))
                    if name in seen_families:
                        p.append("line %d: # %s %s after its samples" % (n, parts[1], name))
                    table = self.helps if parts[1] == "HELP" else self.types
                    if name in table:
                        p.append("line %d: second # %s for %s" % (n, parts[1], name))
                    if parts[1] == "TYPE":
                        t = parts[3].strip() if len(parts) > 3 else ""
                        if t not in ("counter", "gauge", "histogram", "summary", "untyped"):
                            p.append("line %d: bad type %r" % (n, t))
                        self.types[name] = t
                    else:
                        self.helps[name] = parts[3] if len(parts) > 3 else ""
                continue
            m = _SAMPLE.match(line)
            if not m:
                p.append("line %d: not a sample: %r" % (n, line))
                continue
            name = m.group(1)
            try:
                labels = _parse_labels(m.group(3) or "")
                value = _sample_value(m.group(4))
            except ValueError as e:
                p.append("line %d: %s" % (n, e))
                continue
            for k in labels:
                if not _LABEL_NAME.match(k) or k.startswith("__"):
                    p.append("line %d: bad label name %r" % (n, k))
            fam = self._family(name)
            if fam not in self.types:
                p.append("line %d: sample of %s without # TYPE before it" % (n, fam))
            if fam not in self.helps:
                p.append("line %d: sample of %s without # HELP before it" % (n, fam))
            if fam != current:
                if fam in closed:
                    p.append("line %d: samples of %s are not contiguous" % (n, fam))
                if current is not None:
                    closed.add(current)
                current = fam
                if fam not in seen_families:
                    seen_families.append(fam)
            key = (name, frozenset(labels.items()))
            if key in self.samples:
                p.append("line %d: duplicate sample %s%r" % (n, name, labels))
            self.samples[key] = value
            t = self.types.get(fam)
            if t == "counter" and not (value >= 0):
                p.append("line %d: negative counter %s" % (n, name))
            if t == "histogram":
                rest = frozenset((k, v) for k, v in labels.items() if k != "le")
                if name == fam + "_bucket":
                    if "le" not in labels:
                        p.append("line %d: bucket without le" % n)
                    else:
                        buckets.setdefault((fam, rest), []).append((_sample_value(labels["le"]), value))
                elif name == fam + "_count":
                    counts[(fam, rest)] = value
                elif name != fam + "_sum":
                    p.append("line %d: %s in histogram %s" % (n, name, fam))
        for (fam, rest), bl in buckets.items():
            les = [le for le, _ in bl]
            if les != sorted(les):
                p.append("%s: buckets not in increasing le order" % fam)
            vals = [v for _, v in bl]
            if any(b < a for a, b in zip(vals, vals[1:])):
                p.append("%s: buckets not cumulative: %r" % (fam, bl))
            if not les or les[-1] != float("inf"):
                p.append("%s: last bucket is not le=\"+Inf\"" % fam)
            elif (fam, rest) not in counts:
                p.append("%s: no _count" % fam)
            elif counts[(fam, rest)] != vals[-1]:
                p.append("%s: +Inf bucket %s != _count %s" % (fam, vals[-1], counts[(fam, rest)]))
        for fam, t in self.types.items():
            if t == "histogram" and not any(f == fam for f, _ in buckets):
                p.append("%s: histogram without buckets" % fam)

    def get(self, name, default=None, **labels):
        return self.samples.get((name, frozenset((k, str(v)) for k, v in labels.items())), default)

    def value(self, name, **labels):
        v = self.get(name, None, **labels)
        if v is None:
            raise KeyError("no sample %s%r in /metrics" % (name, labels))
        return v

    def names(self):
        return sorted({n for n, _ in self.samples})


def get_metrics(port, timeout=5, check=True):
    """Fetch and parse /metrics; with check, a format problem fails."""
    st, hdr, body = http_get(port, "/metrics", timeout=timeout)
    if st != 200:
        raise AssertionError("/metrics answered %d: %r" % (st, body[:300]))
    m = Metrics(body.decode("utf-8"))
    if check and m.problems:
        raise AssertionError("/metrics is not valid Prometheus text:\n  " + "\n  ".join(m.problems[:30]))
    return m


def wait_metric(port, name, pred, timeout=10, what=None, **labels):
    """Poll /metrics until pred(value of name{labels}) is true; returns the value."""
    last = [None]

    def ok():
        v = get_metrics(port).value(name, **labels)
        last[0] = v
        return pred(v)
    try:
        wait_until(ok, timeout, 0.1, what or "%s%r" % (name, labels))
    except TimeoutError as e:
        raise AssertionError("%s (last value %r)" % (e, last[0])) from None
    return last[0]
