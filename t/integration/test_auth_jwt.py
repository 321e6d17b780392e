"""auth = jwt: who a WebSocket client is, from a signed token.

Tokens are made here: HS* with hmac, RS256/ES256 with keys made and
signatures computed by the openssl command line tool."""

import base64
import hashlib
import hmac
import json
import os
import signal
import time
import urllib.parse


import harness
from harness import recv_exact

SECRET = "0123456789abcdef0123456789abcdef-hs256-secret"
SECRET2 = "fedcba9876543210fedcba9876543210-rotated-secret"
ISS = "https://issuer.test"
AUD = "notifyd-test"


# ---- tokens -------------------------------------------------------------------


def b64url(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def der_ecdsa_to_raw(der, size):
    """ECDSA signature from DER (SEQUENCE of two INTEGERs) to r || s."""
    def read_len(b, i):
        n = b[i]
        i += 1
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(b[i:i + k], "big")
            i += k
        return n, i
    assert der[0] == 0x30, der
    _, i = read_len(der, 1)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n, i = read_len(der, i + 1)
        v = int.from_bytes(der[i:i + n], "big")
        i += n
        out += v.to_bytes(size, "big")
    return out


def sign(alg, signing_input, key):
    """key: bytes secret for HS*, a PEM private key path for RS*/ES*."""
    if alg.startswith("HS"):
        h = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
        return hmac.new(key if isinstance(key, bytes) else key.encode(), signing_input, h).digest()
    digest = {"256": "-sha256", "384": "-sha384", "512": "-sha512"}[alg[2:]]
    sig = harness.openssl("dgst", digest, "-sign", key, input=signing_input)
    if alg.startswith("ES"):
        return der_ecdsa_to_raw(sig, {"256": 32, "384": 48, "512": 66}[alg[2:]])
    return sig


def token(claims, alg="HS256", key=SECRET, header=None, signature=None):
    hdr = {"alg": alg, "typ": "JWT"}
    if header is not None:
        hdr = header
    signing_input = (b64url(json.dumps(hdr, separators=(",", ":"))) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")))).encode("ascii")
    if signature is None:
        signature = b"" if alg == "none" else sign(alg, signing_input, key)
    return signing_input.decode("ascii") + "." + b64url(signature)


def claims(sub="3", ttl=300, **extra):
    now = int(time.time())
    c = {"sub": sub, "iss": ISS, "aud": AUD, "iat": now, "exp": now + ttl}
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def key_pair(d, name, *genpkey_args):
    """(private key file, public key file) made by openssl genpkey."""
    priv = os.path.join(d, name + ".key")
    pub = os.path.join(d, name + ".pub.pem")
    harness.openssl("genpkey", *genpkey_args, "-out", priv)
    harness.openssl("pkey", "-in", priv, "-pubout", "-out", pub)
    return priv, pub


def rsa_keys(d, name):
    return key_pair(d, name, "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")


def ec_keys(d, name):
    return key_pair(d, name, "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")


# ---- helpers ----------------------------------------------------------------------


def hs_daemon(start_notifyd, **kw):
    cfg = dict(auth="jwt", jwt_algorithm="HS256", jwt_secret=SECRET, jwt_issuer=ISS, jwt_audience=AUD)
    cfg.update(kw)
    return start_notifyd(**cfg)


def handshake(raw_client, d, query="", headers=None):
    c = raw_client(d)
    return c, c.handshake("/ws" + ("?" + query if query else ""), headers=headers)


def expect_401(raw_client, d, what, query="", headers=None):
    c, r = handshake(raw_client, d, query, headers)
    assert r.status == 401, "%s: %r" % (what, r)
    ctype = r.header("content-type") or ""
    assert "json" in ctype.lower(), "%s: Content-Type %r" % (what, ctype)
    j = r.json()
    assert isinstance(j, dict) and isinstance(j.get("error"), str) and j["error"], "%s: %r" % (what, r)
    return j["error"]


def expect_101(raw_client, d, what, query="", headers=None):
    c, r = handshake(raw_client, d, query, headers)
    assert r.status == 101, "%s: %r" % (what, r)
    return c


def q(tok, **extra):
    params = {"token": tok}
    params.update(extra)
    return urllib.parse.urlencode(params)


def assert_not_logged(d, tokens):
    log = d.log_text()
    for t in tokens:
        sig = t.rsplit(".", 1)[-1]
        assert t not in log, "a token was written to the log"
        if len(sig) > 16:
            assert sig not in log, "a token's signature was written to the log"
        body = t.split(".")[1] if t.count(".") == 2 else ""
        if len(body) > 16:
            assert body not in log, "a token's claims segment was written to the log"


# ---- tests -------------------------------------------------------------------


def test_jwt_token_in_query_header_and_subprotocol(start_notifyd, url_client, raw_client, publisher):
    d = hs_daemon(start_notifyd)
    t3 = token(claims("3"))
    by_query = url_client("ws://127.0.0.1:%d/ws?%s" % (d.port, q(t3)))
    by_header = url_client("ws://127.0.0.1:%d/ws" % d.port, extra_headers={"Authorization": "Bearer " + t3})
    by_proto = url_client("ws://127.0.0.1:%d/ws" % d.port, subprotocols=["notifyd.v1", "bearer." + t3])
    assert by_proto.ws.subprotocol == "notifyd.v1", by_proto.ws.subprotocol
    # userId beside the token: fine when it is the token's user
    with_user = url_client("ws://127.0.0.1:%d/ws?%s" % (d.port, q(t3, userId="3")))
    # an integer sub claim names user "42"
    t42 = token(claims(42))
    int_sub = url_client("ws://127.0.0.1:%d/ws?%s" % (d.port, q(t42)))
    other = url_client("ws://127.0.0.1:%d/ws?%s" % (d.port, q(token(claims("4")))))

    body = b'{"title":"for the token of user 3"}'
    publisher.publish("user.3", body)
    for c in (by_query, by_header, by_proto, with_user):
        recv_exact(c, body)
    body42 = b'{"title":"for 42"}'
    publisher.publish("user.42", body42)
    recv_exact(int_sub, body42)
    other.expect_nothing(0.5)
    for c in (by_query, by_header, by_proto, with_user):
        c.expect_nothing(0.1)

    # the raw handshake answers the subprotocol it chose
    c, r = handshake(raw_client, d, headers={"Sec-WebSocket-Protocol": "notifyd.v1, bearer." + t3})
    assert r.status == 101 and r.header("sec-websocket-protocol") == "notifyd.v1", r
    assert_not_logged(d, [t3, t42])


def test_jwt_refusals_are_401_json(start_notifyd, raw_client, tmp_path):
    d = hs_daemon(start_notifyd)
    now = int(time.time())
    good = claims("3")
    hs512 = token(good, alg="HS512", key=SECRET + SECRET)
    tampered = token(good)[:-4] + ("AAAA" if not token(good).endswith("AAAA") else "BBBB")
    swapped = token(claims("3")).split(".")
    forged_claims = b64url(json.dumps(claims("admin"), separators=(",", ":")))
    cases = [
        ("expired", token(claims("3", exp=now - 120))),
        ("not yet valid (nbf)", token(claims("3", nbf=now + 120))),
        ("bad signature (other secret)", token(good, key="x" * 40)),
        ("tampered signature", tampered),
        ("claims swapped under a valid signature", ".".join([swapped[0], forged_claims, swapped[2]])),
        ("alg none", token(good, alg="none")),
        ("alg none with a signature", token(good, header={"alg": "none"}, signature=b"x" * 32)),
        ("alg in lower case", token(good, alg="HS256", header={"alg": "hs256", "typ": "JWT"})),
        ("HS512 token for an HS256 config", hs512),
        ("duplicate alg members", None),
        ("wrong iss", token(claims("3", iss="https://evil.test"))),
        ("missing iss", token(claims("3", iss=None))),
        ("wrong aud", token(claims("3", aud="someone-else"))),
        ("wrong aud in a list", token(claims("3", aud=["a", "b"]))),
        ("missing sub", token(claims(None))),
        ("sub neither string nor integer", token(claims({"id": 3}))),
        ("empty sub", token(claims(""))),
        ("missing exp", token(claims("3", exp=None))),
        ("garbage", "not-a-token"),
        ("two segments", ".".join(token(good).split(".")[:2])),
    ]
    # a header with "alg" twice: the last one wins in some parsers
    hdr = '{"alg":"none","alg":"HS256","typ":"JWT"}'
    si = b64url(hdr) + "." + b64url(json.dumps(good))
    cases[[c[0] for c in cases].index("duplicate alg members")] = (
        "duplicate alg members", si + "." + b64url(sign("HS256", si.encode(), SECRET)))
    all_tokens = []
    for what, tok in cases:
        all_tokens.append(tok)
        expect_401(raw_client, d, what, q(tok))
    # the same refusals through the other two ways of sending a token
    for what, tok in cases[:3]:
        expect_401(raw_client, d, what + " (header)", headers={"Authorization": "Bearer " + tok})
        expect_401(raw_client, d, what + " (subprotocol)",
                   headers={"Sec-WebSocket-Protocol": "notifyd.v1, bearer." + tok})
    # no token at all, or only a userId (accepted only with auth = none)
    expect_401(raw_client, d, "no token")
    expect_401(raw_client, d, "userId only", "userId=3")
    expect_401(raw_client, d, "Basic scheme", headers={"Authorization": "Basic " + token(good)})
    # a good token with a userId that is not its sub
    expect_401(raw_client, d, "userId differs from sub", q(token(good), userId="4"))
    expect_401(raw_client, d, "user_id differs from sub", q(token(good), user_id="4"))
    # and the good token itself is fine, so the refusals were about the claims
    expect_101(raw_client, d, "good token", q(token(good)))
    assert_not_logged(d, all_tokens + [token(good)])


def test_jwt_leeway(start_notifyd, raw_client):
    d = hs_daemon(start_notifyd, jwt_leeway="30s", jwt_close_on_expiry="off")
    now = int(time.time())
    expect_101(raw_client, d, "expired 10s ago, leeway 30s", q(token(claims("3", exp=now - 10))))
    expect_101(raw_client, d, "nbf in 10s, leeway 30s", q(token(claims("3", nbf=now + 10))))
    expect_401(raw_client, d, "expired 60s ago, leeway 30s", q(token(claims("3", exp=now - 60))))
    expect_401(raw_client, d, "nbf in 60s, leeway 30s", q(token(claims("3", nbf=now + 60))))
    e = hs_daemon(start_notifyd, jwt_leeway="0s", name="no-leeway")
    expect_401(raw_client, e, "expired 2s ago, no leeway", q(token(claims("3", exp=now - 2))))


def test_jwt_token_accepted_within_leeway_is_not_closed_at_once(start_notifyd, url_client):
    """A token accepted thanks to jwt_leeway must not be closed as expired
    the moment the connection opens: expiry is judged with the same leeway."""
    d = hs_daemon(start_notifyd, jwt_leeway="30s", jwt_close_on_expiry="on")
    now = int(time.time())
    c = url_client("ws://127.0.0.1:%d/ws?%s" % (d.port, q(token(claims("3", exp=now - 5)))))
    time.sleep(2.0)
    assert c.open, "connection accepted with a token within the leeway was closed after %s (code %s)" % (
        "< 2s", c.close_code)


def test_jwt_expiry_closes_with_1008_unless_off(start_notifyd, url_client, publisher, queue_name):
    on = hs_daemon(start_notifyd, jwt_leeway="0s")
    off = hs_daemon(start_notifyd, name="keep-open", jwt_leeway="0s", jwt_close_on_expiry="off",
                    queue_name=queue_name + ".b")
    exp = int(time.time()) + 2
    tok = token(claims("3", exp=exp))
    t0 = time.monotonic()
    a = url_client("ws://127.0.0.1:%d/ws?%s" % (on.port, q(tok)))
    b = url_client("ws://127.0.0.1:%d/ws?%s" % (off.port, q(tok)))
    long_lived = url_client("ws://127.0.0.1:%d/ws?%s" % (on.port, q(token(claims("3", ttl=600)))))
    code = a.wait_closed(exp - time.time() + 3)
    took = time.monotonic() - t0
    assert code == 1008, "closed with %s at token expiry, wanted 1008" % code
    assert time.time() >= exp - 0.1, "closed before the token expired"
    assert b.open, "jwt_close_on_expiry = off closed the connection"
    assert long_lived.open
    body = b'{"title":"after expiry"}'
    publisher.publish("user.3", body)
    recv_exact(b, body)
    recv_exact(long_lived, body)
    assert took < 5


def test_jwt_rs256_and_algorithm_confusion(start_notifyd, raw_client, workdir):
    priv, pub = rsa_keys(workdir, "rsa")
    other_priv, _ = rsa_keys(workdir, "rsa-other")
    d = start_notifyd(auth="jwt", jwt_algorithm="RS256", jwt_key_file=pub)
    good = claims("3")
    expect_101(raw_client, d, "RS256 token", q(token(good, alg="RS256", key=priv)))
    with open(pub, "rb") as f:
        pem = f.read()
    toks = [
        ("HS256 signed with the public key PEM", token(good, alg="HS256", key=pem)),
        ("HS256 signed with the PEM without its newline", token(good, alg="HS256", key=pem.strip())),
        ("RS256 signed by another key", token(good, alg="RS256", key=other_priv)),
        ("RS512 with the right key", token(good, alg="RS512", key=priv)),
        ("alg none", token(good, alg="none")),
        ("expired RS256", token(claims("3", exp=int(time.time()) - 100), alg="RS256", key=priv)),
    ]
    for what, tok in toks:
        expect_401(raw_client, d, what, q(tok))
    assert_not_logged(d, [t for _, t in toks])


def test_jwt_es256(start_notifyd, raw_client, workdir, publisher):
    priv, pub = ec_keys(workdir, "ec")
    other_priv, _ = ec_keys(workdir, "ec-other")
    d = start_notifyd(auth="jwt", jwt_algorithm="ES256", jwt_key_file=pub)
    c = expect_101(raw_client, d, "ES256 token", q(token(claims("8"), alg="ES256", key=priv)))
    publisher.publish("user.8", b'{"title":"es256"}')
    f = c.recv_frame(5)
    assert f is not None and f.payload == b'{"title":"es256"}', f
    expect_401(raw_client, d, "ES256 by another key", q(token(claims("8"), alg="ES256", key=other_priv)))
    tok = token(claims("8"), alg="ES256", key=priv)
    h, p, s = tok.split(".")
    raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    flipped = raw[:10] + bytes([raw[10] ^ 1]) + raw[11:]
    expect_401(raw_client, d, "ES256 with a flipped bit", q(h + "." + p + "." + b64url(flipped)))
    expect_401(raw_client, d, "HS256 with the EC PEM as secret",
               q(token(claims("8"), alg="HS256", key=open(pub, "rb").read())))


def test_jwt_sighup_rotates_the_secret(start_notifyd_x, url_client, raw_client, publisher):
    d = start_notifyd_x(auth="jwt", jwt_algorithm="HS256", jwt_secret=SECRET)
    old = token(claims("3"))
    kept = url_client("ws://127.0.0.1:%d/ws?%s" % (d.port, q(old)))
    d.rewrite_config(jwt_secret=SECRET2)
    d.signal(signal.SIGHUP)
    new = token(claims("3"), key=SECRET2)

    def rotated():
        c, r = handshake(raw_client, d, q(new))
        return r.status == 101
    harness.wait_until(rotated, 5, 0.1, "a token signed with the new secret to be accepted")
    expect_401(raw_client, d, "token signed with the old secret after SIGHUP", q(old))
    assert kept.open
    body = b'{"title":"after rotation"}'
    publisher.publish("user.3", body)
    recv_exact(kept, body)
    assert_not_logged(d, [old, new])
