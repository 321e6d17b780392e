"""TLS: wss:// and https:// on the listener (tls_port = 0) or on a second
port, protocol versions, certificate reload on SIGHUP, and amqps:// to a
RabbitMQ node with a TLS listener.  Certificates come from the openssl
command line tool, made afresh for each test in its work dir."""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

import harness
from harness import recv_exact

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="the openssl command line tool is not installed")


@pytest.fixture
def pki(workdir):
    ca = harness.CA(os.path.join(workdir, "pki"))
    cert, key, serial = ca.issue("server", cn="notifyd-first")
    return ca, cert, key, serial


def s_client(port, *flags, timeout=10):
    """(handshake completed, protocol, output) of openssl s_client."""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-brief"] + list(flags),
                       input=b"", capture_output=True, timeout=timeout)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    proto = None
    for line in out.splitlines():
        if line.startswith("Protocol version:"):
            proto = line.split(":", 1)[1].strip()
    ok = p.returncode == 0 and proto is not None and "CONNECTION ESTABLISHED" in out
    return ok, proto, out


def tls_daemon(start_notifyd_x, pki, **kw):
    ca, cert, key, _ = pki
    cfg = dict(tls_cert_file=cert, tls_key_file=key)
    cfg.update(kw)
    if int(cfg.get("tls_port", 0)) == 0:
        return start_notifyd_x(ssl_context=ca.context(), **cfg)
    return start_notifyd_x(**cfg)


def test_wss_and_https_on_the_listen_port(start_notifyd_x, url_client, publisher, pki):
    ca = pki[0]
    d = tls_daemon(start_notifyd_x, pki)
    c = url_client("wss://127.0.0.1:%d/ws?userId=3" % d.port, ssl=ca.context())
    c_host = url_client("wss://localhost:%d/ws?userId=3" % d.port, ssl=ca.context())
    body = b'{"title":"over TLS"}'
    publisher.publish("user.3", body)
    recv_exact(c, body)
    recv_exact(c_host, body)
    st, hdr, data = harness.https_request(d.port, "GET", "/health", ca.context())
    assert st == 200 and json.loads(data)["broker"]["state"] == "consuming", (st, data)
    st, hdr, data = harness.https_request(d.port, "GET", "/metrics", ca.context())
    assert st == 200 and b"notifyd_connections 2" in data, data[:200]
    # plain HTTP on a TLS port gets no answer worth having
    try:
        st, _, _ = harness.http_get(d.port, "/health", timeout=3)
    except Exception:  # noqa: BLE001 - connection reset, bad status line...
        st = None
    assert st != 200, "plain HTTP answered 200 on the TLS port"
    # a client that does not trust the CA refuses the server
    import ssl
    with pytest.raises((ssl.SSLError, OSError)):
        harness.https_request(d.port, "GET", "/health", ssl.create_default_context())


def test_tls_versions(start_notifyd_x, pki):
    d = tls_daemon(start_notifyd_x, pki)
    ok, proto, out = s_client(d.port, "-tls1_3")
    assert ok and proto == "TLSv1.3", "TLS 1.3 refused:\n" + out[-800:]
    ok, proto, out = s_client(d.port, "-tls1_2")
    assert ok and proto == "TLSv1.2", "TLS 1.2 refused:\n" + out[-800:]
    # the client is allowed TLS 1.1 (security level 0), the server must refuse
    ok, proto, out = s_client(d.port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert not ok, "TLS 1.1 accepted:\n" + out[-800:]
    ok, proto, out = s_client(d.port, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert not ok, "TLS 1.0 accepted:\n" + out[-800:]
    assert d.running()


def test_second_tls_port(start_notifyd_x, ws_client, url_client, publisher, pki):
    ca = pki[0]
    tls_port = harness.free_port()
    d = tls_daemon(start_notifyd_x, pki, tls_port=str(tls_port))
    plain = ws_client(d, 4)
    secure = url_client("wss://127.0.0.1:%d/ws?userId=4" % tls_port, ssl=ca.context())
    body = b'{"title":"both listeners"}'
    publisher.publish("user.4", body)
    recv_exact(plain, body)
    recv_exact(secure, body)
    st, _, data = harness.https_request(tls_port, "GET", "/health", ca.context())
    assert st == 200, (st, data)
    st, _, data = harness.http_get(d.port, "/health")
    assert st == 200, (st, data)
    ok, proto, out = s_client(tls_port, "-tls1_2")
    assert ok, out[-500:]


def test_sighup_reloads_the_certificate(start_notifyd_x, url_client, publisher, pki, note):
    ca, cert, key, serial = pki
    d = tls_daemon(start_notifyd_x, pki)
    assert harness.peer_certificate(d.port) == (serial, "notifyd-first")
    kept = url_client("wss://127.0.0.1:%d/ws?userId=5" % d.port, ssl=ca.context())
    new_cert, new_key, new_serial = ca.issue("server2", cn="notifyd-second")
    shutil.copyfile(new_cert, cert)
    shutil.copyfile(new_key, key)
    d.signal(signal.SIGHUP)
    harness.wait_until(lambda: harness.peer_certificate(d.port) == (new_serial, "notifyd-second"), 5, 0.1,
                       "the new certificate to be served after SIGHUP")
    c = url_client("wss://127.0.0.1:%d/ws?userId=5" % d.port, ssl=ca.context())
    body = b'{"title":"after the new certificate"}'
    publisher.publish("user.5", body)
    recv_exact(c, body)
    recv_exact(kept, body)
    # a certificate that does not load (key of another certificate) is not
    # taken: the current one stays
    third_cert, third_key, third_serial = ca.issue("server3", cn="notifyd-third")
    shutil.copyfile(third_cert, cert)  # key still that of server2: mismatch
    d.signal(signal.SIGHUP)
    time.sleep(0.5)
    assert d.running(), "a bad certificate on SIGHUP stopped notifyd"
    got = harness.peer_certificate(d.port)
    assert got == (new_serial, "notifyd-second"), "after a bad reload the server serves %r" % (got,)
    st, _, _ = harness.https_request(d.port, "GET", "/health", ca.context())
    assert st == 200


@pytest.mark.deadline(120)
def test_amqps_to_a_tls_broker(spare_broker, start_notifyd, ws_client, queue_name, workdir, note):
    """The run's spare RabbitMQ node has a TLS listener with a certificate
    for localhost and 127.0.0.1 signed by its own CA."""
    b = spare_broker
    ca = b.ca
    other = harness.CA(os.path.join(workdir, "other-pki"), "some other CA")
    tls_port = b.tls_port
    url = "amqps://guest:guest@localhost:%d/" % tls_port
    d = start_notifyd(amqp_url=url, amqp_ca_file=ca.cert, amqp_reconnect_min="100ms",
                      amqp_reconnect_max="1s")
    st, h = d.health()
    assert st == 200 and h["broker"]["state"] == "consuming", h
    c = ws_client(d, 6)
    p = harness.Publisher(b.vhost())  # plain AMQP port of the same node
    try:
        body = b'{"title":"via amqps"}'
        p.publish("user.6", body)
        recv_exact(c, body)
    finally:
        p.close()

    # a CA that did not sign the broker's certificate: never consuming
    bad = start_notifyd(name="wrong-ca", wait=False, amqp_url=url, amqp_ca_file=other.cert,
                        queue_name=queue_name + ".wrong", amqp_reconnect_min="100ms",
                        amqp_reconnect_max="1s", health_show_errors="on")
    seen = {}

    def reports_error():
        st, h = bad.health(timeout=1)
        seen["h"] = (st, h)
        return isinstance(h, dict) and h.get("broker", {}).get("last_error")
    harness.wait_until(reports_error, 10, 0.1, "/health to report the TLS failure")
    time.sleep(1.0)
    st, h = bad.health()
    assert st == 503, (st, h)
    err = h["broker"]["last_error"]
    note("wrong CA: last_error = %r" % err)
    assert "cert" in err.lower() or "verif" in err.lower(), \
        "last_error does not say the certificate was refused: %r" % err
    assert bad.running()

    # the same node by IP address: the certificate names IP:127.0.0.1 too
    ip = start_notifyd(name="by-ip", wait=False, amqp_url="amqps://guest:guest@127.0.0.1:%d/" % tls_port,
                       amqp_ca_file=ca.cert, queue_name=queue_name + ".ip",
                       amqp_reconnect_min="100ms", amqp_reconnect_max="1s", health_show_errors="on")
    def settled():
        st, h = ip.health(timeout=1)
        return (st, h) if st == 200 or (isinstance(h, dict) and h["broker"].get("last_error")) else None
    st, h = harness.wait_until(settled, 10, 0.1, "the amqps:// by IP daemon to consume or fail")
    note("amqps:// by IP address, certificate with IP:127.0.0.1: %s" % (
        "consuming" if st == 200 else "refused: %s" % h["broker"]["last_error"]))
