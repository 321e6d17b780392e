"""Plain HTTP clients (http.client) for /health, /metrics and POST /push,
over TCP or TLS; HTTPResponse (what the raw clients read); request bytes
built by hand for the raw clients."""

import http.client
import json
import time


def _exchange(c, method, path, headers, body):
    """One request on the http.client connection c, which is closed after:
    (status, {lower-case header: value}, body bytes)."""
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def http_request(port, method, path, headers=None, body=None, timeout=5):
    """(status, {lower-case header: value}, body bytes)."""
    return _exchange(http.client.HTTPConnection("127.0.0.1", port, timeout=timeout),
                     method, path, headers, body)


def http_get(port, path, timeout=5):
    return http_request(port, "GET", path, timeout=timeout)


class HTTPResponse:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # {lower-case name: [values]}
        self.body = body

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[-1] if v else None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<HTTP %d %s %r %r>" % (self.status, self.reason, self.headers, self.body[:200])


def https_request(port, method, path, context, headers=None, body=None, timeout=5,
                  host="127.0.0.1"):
    """Like http_request, over TLS with the given ssl.SSLContext."""
    return _exchange(http.client.HTTPSConnection(host, port, timeout=timeout, context=context),
                     method, path, headers, body)


class PushAnswer:
    def __init__(self, status, headers, body, took):
        self.status = status
        self.headers = headers
        self.body = body
        self.took = took

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<push %d %r %r (%.2fs)>" % (self.status, self.headers, self.body[:300], self.took)


# push_keys must be at least 16 characters; the tests' default key.
PUSH_KEY = "test-push-key-0001"


def push(port, body, key=PUSH_KEY, auth=None, method="POST", headers=None, timeout=15):
    """POST /push.  body: bytes/str, or dict/list (JSON-encoded).  key: the
    push key sent as "Authorization: Bearer KEY" (None: no header); auth
    replaces the whole header value."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body, separators=(",", ":"))
    if isinstance(body, str):
        body = body.encode("utf-8")
    h = {"Content-Type": "application/json"}
    if auth is not None:
        h["Authorization"] = auth
    elif key is not None:
        h["Authorization"] = "Bearer " + key
    h.update(headers or {})
    t0 = time.monotonic()
    st, hdr, data = http_request(port, method, "/push", headers=h, body=body, timeout=timeout)
    return PushAnswer(st, hdr, data, time.monotonic() - t0)


def build_http_request(method, path, headers=(), body=b"", version="HTTP/1.1", host=None):
    """Request bytes.  headers: (name, value) pairs sent in that order,
    repeats kept (for ambiguous framing); a Host header comes first unless
    one is given.  body is appended as it is (no Content-Length added)."""
    headers = list(headers)
    if host is not None and not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ("Host", host))
    head = "%s %s %s\r\n" % (method, path, version)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in headers) + "\r\n"
    if isinstance(body, str):
        body = body.encode("utf-8")
    return head.encode("latin-1") + (body or b"")


def bearer(key):
    """("Authorization", "Bearer KEY"), the header harness.push() sends."""
    return ("Authorization", "Bearer " + key)
