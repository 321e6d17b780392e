"""Helpers for notifyd's integration tests (and the soak driver, t/soak).

Everything here talks to real things: the notifyd binary, a RabbitMQ node
(through pika and rabbitmqctl) and WebSocket clients (python-websockets, and a
hand-written raw client for protocol abuse).  Every wait is bounded.

Nothing here exports NOTIFYD_* variables: notifyd refuses to start on unknown
ones, so it is started with a minimal explicit environment and a config file.

One module a concern; every name is also here, so "import harness" and
"from harness import X" reach all of them:
  util      HarnessError, free_port, wait_until, sanitize, parse_duration, ...
  broker    Broker (rabbitmqctl), VhostPool, Vhost, Publisher, OwnBroker
  daemon    Notifyd, NotifydX, NotifySocket (sd_notify), log_lines_matching
  http      http_request/http_get/https_request, push, HTTPResponse, request bytes
  wsproto   the WebSocket protocol, standard library only: opcodes, upgrade
            request, accept key, frames built and parsed (also t/soak/wsswarm)
  wsclient  WSClient (python-websockets), recv_exact
  rawws     RawWS: handshake by hand, crafted frames
  hostile   RawHTTP, rst_flood, idle_connections, closed_among, PingFlooder
  metrics   Metrics (Prometheus text format, checked), get_metrics, wait_metric
  tlsca     CA (openssl CLI), peer_certificate
  proxy     TcpProxy: a broker connection that drops, stalls or resets
  procfs    proc_usage, proc_rss_kb, proc_fd_count, RssSampler
  numbered  SeqPublisher, received_seqs, queued_seqs, seq_coverage
"""

from .util import (BROKER_SH, HERE, HarnessError, free_port, linger_rst, parse_duration,
                   random_text, run_in_loop, sanitize, wait_until)
from .wsproto import (OP_BIN, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, WS_GUID,
                      ConnectionClosed, Frame, accept_key, build_frame, close_code, frame_header,
                      make_frame, mask_bytes, new_key, parse_response_head, upgrade_request)
from .http import (PUSH_KEY, HTTPResponse, PushAnswer, bearer, build_http_request, http_get,
                   http_request, https_request, push)
from .broker import Broker, OwnBroker, Publisher, Vhost, VhostPool, publish_all, rabbit_tls_conf
from .daemon import Notifyd, NotifydX, NotifySocket, log_lines_matching
from .wsclient import WSClient, recv_exact
from .rawws import RawWS, raw_ws_connect
from .hostile import (TCP_STATE_NAMES, PingFlooder, RawHTTP, closed_among, idle_connections,
                      rst_flood, server_holds, tcp_state)
from .metrics import Metrics, get_metrics, wait_metric
from .tlsca import CA, openssl, peer_certificate
from .proxy import TcpProxy
from .procfs import RssSampler, proc_fd_count, proc_rss_kb, proc_usage, sanitized
from .numbered import SeqCoverage, SeqPublisher, queued_seqs, received_seqs, seq_coverage

__all__ = ["BROKER_SH", "HERE", "HarnessError", "free_port", "linger_rst", "parse_duration",
           "random_text", "run_in_loop", "sanitize", "wait_until", "OP_BIN", "OP_CLOSE", "OP_CONT",
           "OP_PING", "OP_PONG", "OP_TEXT", "WS_GUID", "ConnectionClosed", "Frame", "accept_key",
           "build_frame", "close_code", "frame_header", "make_frame", "mask_bytes", "new_key",
           "parse_response_head", "upgrade_request", "PUSH_KEY", "HTTPResponse", "PushAnswer",
           "bearer", "build_http_request", "http_get", "http_request", "https_request", "push",
           "Broker", "OwnBroker", "Publisher", "Vhost", "VhostPool", "publish_all",
           "rabbit_tls_conf", "Notifyd", "NotifydX", "NotifySocket", "log_lines_matching",
           "WSClient", "recv_exact", "RawWS", "raw_ws_connect", "TCP_STATE_NAMES", "PingFlooder",
           "RawHTTP", "closed_among", "idle_connections", "rst_flood", "server_holds", "tcp_state",
           "Metrics", "get_metrics", "wait_metric", "CA", "openssl", "peer_certificate",
           "TcpProxy", "RssSampler", "proc_fd_count", "proc_rss_kb", "proc_usage", "sanitized", "SeqCoverage",
           "SeqPublisher", "queued_seqs", "received_seqs", "seq_coverage"]
