/* notifyd.h - the gateway: everything the event loop thread owns, passed
 * explicitly to the modules that run on it (HTTP, WebSocket connections,
 * dispatch).  Other threads never touch it; they talk to the loop through
 * the queues named in delivery.h.
 */
#ifndef NOTIFYD_NOTIFYD_H
#define NOTIFYD_NOTIFYD_H

#include <stdbool.h>
#include <stdint.h>

#include "broker_status.h"
#include "config.h"
#include "conn_registry.h"
#include "stats.h"
#include "ws_deflate.h"

struct event_base;
struct event;
struct dispatch;
struct http_server;
struct http_push;
struct auth_jwt;
struct xqueue;
struct peer_table;
struct history;
struct control;
struct presence;
struct sessions;

struct gateway {
	const struct config *cfg;
	struct event_base *base;
	struct stats *stats;
	struct conn_registry reg;
	struct dispatch *dispatch;
	struct http_server *http;
	struct http_push *push;
	struct auth_jwt *auth;		/* auth = jwt: the verifier (swapped on SIGHUP) */
	struct peer_table *peers;	/* open connections per client address */
	struct history *hist;		/* stream source: recent messages (NULL: none) */
	struct control *control;	/* the control plane (NULL: none, in unit tests) */
	struct presence *presence;	/* the control's: who is online where (NULL: none) */
	struct sessions *sessions;	/* the control's: bans, revocations (NULL: none) */
	uint32_t resumes_waiting;	/* connections waiting for the history (ws_conn) */
	/* permessage-deflate policy, set by the dispatcher, which compresses:
	 * the handshake must agree only to what it sends */
	struct ws_deflate_config deflate;
	bool deflate_on;
	struct xqueue *ackq;		/* to the consumer thread */
	struct broker_status broker;	/* the loop's copy, for /health */
	uint64_t started_ms;
	uint64_t next_conn_id;
	bool draining;			/* shutting down: no new clients */
};

#endif
