"""The smaller hardening items of issue 17, against the running daemon:
duplicate JSON members in tokens, C1 controls and U+2028/2029 in user ids
(and in the log), the push key's minimum length, the limit on failed
POST /push authentications, the warning about a readable config file
holding secrets, and log_file never opened through a symbolic link."""

import base64
import hashlib
import hmac
import http.client
import json
import os
import signal
import time
import urllib.parse

import harness
from harness import push, recv_exact

SECRET = "0123456789abcdef0123456789abcdef-hardening"


# ---- helpers -------------------------------------------------------------------


def b64url(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_token(header_text, claims_text, secret=SECRET):
    """An HS256 token from header and claims JSON exactly as written (json.dumps
    cannot write a member twice)."""
    signing_input = (b64url(header_text) + "." + b64url(claims_text)).encode("ascii")
    sig = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return signing_input.decode("ascii") + "." + b64url(sig)


def handshake_status(raw_client, d, path):
    c = raw_client(d)
    return c.handshake(path).status


def log_since(d, mark):
    with open(d.log_path, "rb") as f:
        f.seek(mark)
        return f.read()


def log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def wait_log(path, needle, start=0, timeout=5):
    """Wait until the log at path holds needle (bytes) after offset start."""
    def found():
        with open(path, "rb") as f:
            f.seek(start)
            return needle in f.read()
    harness.wait_until(found, timeout, 0.05, "%r in %s" % (needle, path))


def start_refused(session, vhost, workdir, queue_name, name, **config):
    """Start a notifyd that should refuse to start: (exit status or None, its
    output).  Not through start_notifyd, which fails a test whose daemon
    exits on its own; one still running after 10 s is killed."""
    d = harness.Notifyd(session.binary, workdir, vhost.url, queue_name, name=name, **config)
    d.start(wait=False)
    code = d.wait_exit(10)
    if code is None:
        d.kill9()
    return code, d.log_text()


def push_from(port, source, key, body=b'{"user_id":"3"}', timeout=5):
    """POST /push from a chosen loopback source address: (status, headers, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        h = {"Content-Type": "application/json"}
        if key is not None:
            h["Authorization"] = "Bearer " + key
        c.request("POST", "/push", body=body, headers=h)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


# ---- duplicate members in tokens ----------------------------------------------


def test_jwt_duplicate_members_refused(start_notifyd, raw_client, url_client, publisher):
    d = start_notifyd(auth="jwt", jwt_algorithm="HS256", jwt_secret=SECRET)
    exp = int(time.time()) + 300
    hdr = '{"alg":"HS256","typ":"JWT"}'

    def status(header_text, claims_text):
        return handshake_status(raw_client, d, "/ws?token=" + raw_token(header_text, claims_text))

    assert status(hdr, '{"sub":"b","exp":%d}' % exp) == 101, "the plain token for b"
    refused = [
        ("sub a then b (was: logged in as b)", hdr, '{"sub":"a","sub":"b","exp":%d}' % exp),
        ("sub twice, same value", hdr, '{"sub":"b","sub":"b","exp":%d}' % exp),
        ("sub and s\\u0075b", hdr, '{"sub":"a","s\\u0075b":"b","exp":%d}' % exp),
        ("an expired exp, then a valid one", hdr, '{"sub":"b","exp":1,"exp":%d}' % exp),
        ("a claim nobody reads, twice", hdr, '{"sub":"b","x":1,"x":2,"exp":%d}' % exp),
        ("alg twice in the header", '{"alg":"HS256","alg":"HS256"}', '{"sub":"b","exp":%d}' % exp),
        ("typ twice in the header", '{"alg":"HS256","typ":"JWT","typ":"JWT"}', '{"sub":"b","exp":%d}' % exp),
    ]
    for what, h, c in refused:
        assert status(h, c) == 401, what
    # the rule is about the top level: a nested object is the claim's business
    assert status(hdr, '{"sub":"b","ctx":{"k":1,"k":2},"exp":%d}' % exp) == 101, "nested duplicate"
    # and the one that got through is b indeed
    c = url_client("ws://127.0.0.1:%d/ws?token=%s" % (d.port, raw_token(hdr, '{"sub":"b","exp":%d}' % exp)))
    publisher.publish("user.b", b'{"to":"b"}')
    recv_exact(c, b'{"to":"b"}')


# ---- C1 controls and U+2028/2029 in user ids ----------------------------------

BAD_IDS = ["a\u0080", "a\u0085b", "\u009f", "a\u2028b", "a\u2029"]


def test_user_ids_refuse_c1_and_separators(start_notifyd, raw_client, ws_client, publisher, vhost):
    d = start_notifyd(push_keys=harness.PUSH_KEY)
    for uid in BAD_IDS:
        path = "/ws?userId=" + urllib.parse.quote(uid, safe="")
        assert handshake_status(raw_client, d, path) == 400, "userId %r" % uid
        a = push(d.port, {"user_id": uid, "m": 1})
        assert a.status == 400, "push to %r: %r" % (uid, a)
    # what is next to them is fine: U+00A0, U+2027, U+202F
    for uid in ("a\u00a0b", "a\u2027", "\u202f"):
        c = ws_client(d, uid)
        body = json.dumps({"user_id": uid, "n": 1}, separators=(",", ":")).encode()
        a = push(d.port, body)
        assert a.status == 202, "push to %r: %r" % (uid, a)
        recv_exact(c, body)

    # From the broker: the id is refused, and the routing key is logged
    # escaped, never raw.
    mark = log_size(d.log_path)
    publisher.publish("user.a\u0085b\u2028c", b'{"m":"c1"}')
    vhost.wait_queue_empty(d.queue)
    wait_log(d.log_path, b"event=message_rejected", start=mark)
    text = log_since(d, mark)
    assert b'routing_key="user.a\\u0085b\\u2028c"' in text, text
    for raw in (b"\xc2\x85", b"\xe2\x80\xa8"):
        assert raw not in text, "raw %r in the log" % raw


def test_jwt_sub_with_c1_or_separator_refused(start_notifyd, raw_client):
    d = start_notifyd(auth="jwt", jwt_algorithm="HS256", jwt_secret=SECRET)
    exp = int(time.time()) + 300
    hdr = '{"alg":"HS256"}'
    for sub in ("a\\u0085", "a\\u2028b", "\\u2029", "a\\u009f"):
        tok = raw_token(hdr, '{"sub":"%s","exp":%d}' % (sub, exp))
        assert handshake_status(raw_client, d, "/ws?token=" + tok) == 401, sub
    tok = raw_token(hdr, '{"sub":"a\\u00a0","exp":%d}' % exp)
    assert handshake_status(raw_client, d, "/ws?token=" + tok) == 101


# ---- push keys ------------------------------------------------------------------------


def test_short_push_key_refused_at_start(session, vhost, workdir, queue_name):
    short = "tiny-key-4242"  # 13 characters
    code, log = start_refused(session, vhost, workdir, queue_name, "short-key",
                              push_keys="%s, %s" % (harness.PUSH_KEY, short))
    assert code == 1, "notifyd with a 13-character push key: exit status %r\n%s" % (code, log[-2000:])
    assert "push_keys: item 2 is shorter than 16 characters" in log, log[-2000:]
    assert short not in log, "the short key was printed"


def test_failed_push_auth_is_rate_limited_per_address(start_notifyd, ws_client):
    d = start_notifyd(push_keys=harness.PUSH_KEY, push_auth_fail_rate="1")
    c = ws_client(d, 3)
    wrong = "wrong-key-0123456789"
    st, hdr, body = push_from(d.port, "127.0.0.1", wrong)
    assert st == 401, (st, body)
    # the budget (1 a second, 1 at once) is spent: the next one waits,
    # whatever its key, and is told for how long
    for key in (wrong, None, harness.PUSH_KEY):
        st, hdr, body = push_from(d.port, "127.0.0.1", key, body=b'{"user_id":"3","m":"limited"}')
        assert st == 429, "key %r: %r %r" % (key, st, body)
        assert hdr.get("retry-after") == "1", hdr
        assert "json" in hdr.get("content-type", ""), hdr
        assert isinstance(json.loads(body).get("error"), str), body
    c.expect_nothing(0.3)
    # another address has its own budget
    st, _, body = push_from(d.port, "127.0.0.2", wrong)
    assert st == 401, (st, body)
    st, _, body = push_from(d.port, "127.0.0.3", harness.PUSH_KEY, body=b'{"user_id":"3","m":"other"}')
    assert st == 202, (st, body)
    recv_exact(c, b'{"user_id":"3","m":"other"}')
    # a 429 costs nothing: a second after the last failure the right key works
    time.sleep(1.1)
    st, _, body = push_from(d.port, "127.0.0.1", harness.PUSH_KEY, body=b'{"user_id":"3","m":"later"}')
    assert st == 202, (st, body)
    recv_exact(c, b'{"user_id":"3","m":"later"}')

    m = harness.get_metrics(d.port)
    assert m.value("notifyd_push_requests_total", status="429") == 3, m.value(
        "notifyd_push_requests_total", status="429")
    assert m.value("notifyd_push_requests_total", status="401") == 2
    log = d.log_text()
    assert "event=push_auth_limited addr=127.0.0.1 rate=1" in log, log[-2000:]
    assert wrong not in log and harness.PUSH_KEY not in log, "a key was logged"


def test_push_auth_fail_rate_0_is_no_limit(start_notifyd):
    d = start_notifyd(push_keys=harness.PUSH_KEY, push_auth_fail_rate="0")
    got = [push(d.port, {"user_id": "3"}, key="wrong-key-%04d-abcdef" % i).status for i in range(12)]
    assert got == [401] * 12, got
    assert push(d.port, {"user_id": "3"}).status == 202


# ---- the config file and the log file --------------------------------------------


def restart(d):
    d.stop()
    mark = log_size(d.log_path)
    d.start()
    return mark


def test_readable_config_with_secrets_warns(start_notifyd):
    d = start_notifyd(push_keys=harness.PUSH_KEY)
    os.chmod(d.conf_path, 0o644)
    mark = restart(d)  # the file is rewritten in place: its mode stays
    text = log_since(d, mark).decode("utf-8", "replace")
    lines = [l for l in text.splitlines() if "event=config_file_readable" in l]
    assert len(lines) == 1, text
    line = lines[0]
    assert "level=warn" in line and ('path="%s"' % d.conf_path) in line and "mode=0644" in line, line
    assert "secret_key=push_keys" in line and ('hint="chmod 600 %s' % d.conf_path) in line, line
    assert harness.PUSH_KEY not in text, "the key was logged"

    # SIGHUP reads the file again, and warns again
    mark = log_size(d.log_path)
    d.signal(signal.SIGHUP)
    wait_log(d.log_path, b"event=reloaded", start=mark)
    assert b"event=config_file_readable" in log_since(d, mark)

    os.chmod(d.conf_path, 0o600)
    mark = restart(d)
    assert b"config_file_readable" not in log_since(d, mark), "0600 warned"

    # readable, but no secret in it (guest:guest is RabbitMQ's public default)
    d.config.pop("push_keys")
    os.chmod(d.conf_path, 0o644)
    mark = restart(d)
    assert b"config_file_readable" not in log_since(d, mark), "a file without secrets warned"


def test_log_file_is_never_a_symlink(start_notifyd, session, vhost, workdir, queue_name):
    target = os.path.join(workdir, "not-a-log")
    with open(target, "w") as f:
        f.write("precious\n")
    link = os.path.join(workdir, "planted.log")
    os.symlink(target, link)
    code, out = start_refused(session, vhost, workdir, queue_name, "linked", log_file=link)
    assert code == 1, "log_file through a symbolic link: exit status %r\n%s" % (code, out[-2000:])
    assert "log_file %s: is a symbolic link" % link in out, out[-2000:]
    with open(target) as f:
        assert f.read() == "precious\n", "the link's target was written"

    # Planted while running: SIGHUP refuses it and keeps the open file.
    real = os.path.join(workdir, "real.log")
    e = start_notifyd(name="rotated", log_file=real)
    os.rename(real, real + ".1")
    os.symlink(target, real)
    e.signal(signal.SIGHUP)
    wait_log(real + ".1", b"event=reloaded")
    with open(real + ".1", "rb") as f:
        old = f.read()
    assert b"event=log_reopen_failed" in old and b"symbolic link" in old, old[-2000:]
    with open(target) as f:
        assert f.read() == "precious\n", "the link's target was written"
