#include "autoconfig.h"

#include "metrics.h"

#include <inttypes.h>

#include <event2/buffer.h>

#include "clock.h"
#include "dispatch.h"
#include "history.h"
#include "notifyd.h"
#include "presence.h"
#include "sessions.h"
#include "stats.h"

static void head(struct evbuffer *o, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(struct evbuffer *o, const char *name, const char *help, uint64_t v)
{
	head(o, name, "counter", help);
	evbuffer_add_printf(o, "%s %" PRIu64 "\n", name, v);
}

static void gauge(struct evbuffer *o, const char *name, const char *help, uint64_t v)
{
	head(o, name, "gauge", help);
	evbuffer_add_printf(o, "%s %" PRIu64 "\n", name, v);
}

void metrics_render(const struct gateway *gw, struct evbuffer *o)
{
	struct stats *st = gw->stats;
	uint64_t cum = 0;

	head(o, "notifyd_build_info", "gauge", "Version of the running notifyd.");
	evbuffer_add_printf(o, "notifyd_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	gauge(o, "notifyd_uptime_seconds", "Seconds since notifyd started.",
	    (clock_now_ms() - gw->started_ms) / 1000);
	gauge(o, "notifyd_broker_up", "1 while consuming from the broker, else 0.",
	    gw->broker.state == BROKER_CONSUMING);
	gauge(o, "notifyd_connections", "Open WebSocket connections.", registry_count(&gw->reg));
	gauge(o, "notifyd_http_connections", "Open connections not (yet) WebSocket.",
	    stats_get(&st->http_connections));
	gauge(o, "notifyd_users", "Distinct users with at least one open connection.", registry_users(&gw->reg));
	gauge(o, "notifyd_messages_in_flight", "Messages taken from workers and not yet acked.",
	    dispatch_in_flight(gw->dispatch));
	counter(o, "notifyd_messages_consumed_total", "Deliveries taken from the broker.",
	    stats_get(&st->consumed));
	counter(o, "notifyd_messages_redelivered_total", "Deliveries that carried the redelivered flag.",
	    stats_get(&st->redelivered));
	counter(o, "notifyd_frames_delivered_total", "Notification frames queued to client connections.",
	    stats_get(&st->delivered));
	counter(o, "notifyd_messages_undelivered_total", "Valid messages that had no target connection.",
	    stats_get(&st->undelivered));
	head(o, "notifyd_messages_rejected_total", "counter", "Invalid messages rejected without requeue, by reason.");
	for (int i = 0; i < REJECT_REASON_COUNT; i++)
		evbuffer_add_printf(o, "notifyd_messages_rejected_total{reason=\"%s\"} %" PRIu64 "\n",
		    stats_reject_name((enum reject_reason)i), stats_get(&st->rejected[i]));
	counter(o, "notifyd_messages_acked_total", "Deliveries acked to the broker.", stats_get(&st->acked));
	gauge(o, "notifyd_instances", "Live instances this one knows of, itself included.",
	    gw->presence != NULL ? presence_live_instances(gw->presence, clock_now_ms()) : 1);
	gauge(o, "notifyd_session_rules", "Bans and revocations in force.",
	    gw->sessions != NULL ? sessions_count(gw->sessions) : 0);
	counter(o, "notifyd_sessions_closed_total", "Connections closed by a disconnect or a revocation.",
	    stats_get(&st->disconnected));
	counter(o, "notifyd_events_total", "Events (online, offline, undelivered) handed to the control link.",
	    stats_get(&st->events_published));
	counter(o, "notifyd_control_dropped_total", "Control messages and events the broker did not take.",
	    stats_get(&st->control_dropped));
	counter(o, "notifyd_acks_dropped_total", "Verdicts dropped because their broker channel was gone.",
	    stats_get(&st->ack_stale));
	counter(o, "notifyd_broker_reconnects_total", "Successful reconnections to the broker.",
	    stats_get(&st->broker_reconnects));
	counter(o, "notifyd_slow_client_disconnects_total", "Clients closed with 1013 for reading too slowly.",
	    stats_get(&st->slow_disconnects));
	counter(o, "notifyd_ws_connections_opened_total", "WebSocket connections accepted.",
	    stats_get(&st->ws_opened));
	counter(o, "notifyd_sse_connections_opened_total", "Event streams (GET /sse) opened (also counted as connections opened).",
	    stats_get(&st->sse_opened));
	counter(o, "notifyd_ws_connections_closed_total", "WebSocket connections closed.",
	    stats_get(&st->ws_closed));
	counter(o, "notifyd_ws_handshakes_refused_total", "WebSocket upgrade requests answered with an error.",
	    stats_get(&st->ws_rejected));
	head(o, "notifyd_limit_hits_total", "counter", "Requests refused by a configured limit.");
	for (int i = 0; i < LIMIT_KIND_COUNT; i++)
		evbuffer_add_printf(o, "notifyd_limit_hits_total{limit=\"%s\"} %" PRIu64 "\n",
		    stats_limit_name((enum limit_kind)i), stats_get(&st->limit_hits[i]));
	counter(o, "notifyd_http_refused_total",
	    "Requests answered before their body was read (framing, path, method, credentials, size).",
	    stats_get(&st->http_refused));
	counter(o, "notifyd_pongs_coalesced_total",
	    "Pings answered by the pong already waiting to be sent (a newer ping replaces its payload).",
	    stats_get(&st->pongs_coalesced));
	counter(o, "notifyd_bytes_out_total", "Bytes of notification frames queued to clients.",
	    stats_get(&st->bytes_out));
	counter(o, "notifyd_deflate_input_bytes_total",
	    "Notification payload bytes compressed for permessage-deflate (once per message).",
	    stats_get(&st->deflate_in));
	counter(o, "notifyd_deflate_output_bytes_total", "What those payloads became.",
	    stats_get(&st->deflate_out));
	counter(o, "notifyd_broadcast_batches_total",
	    "Runs of consecutive broadcasts written to each connection as one piece.",
	    stats_get(&st->broadcast_batches));
	head(o, "notifyd_push_requests_total", "counter", "POST /push requests by HTTP status.");
	for (int i = 0; i < PUSH_STATUS_COUNT; i++)
		evbuffer_add_printf(o, "notifyd_push_requests_total{status=\"%s\"} %" PRIu64 "\n",
		    stats_push_label((enum push_status_idx)i), stats_get(&st->push_status[i]));
	counter(o, "notifyd_push_messages_total", "Notifications published by POST /push and confirmed.",
	    stats_get(&st->push_messages));
	head(o, "notifyd_recoveries_total", "counter",
	    "notifyd.v2 clients that asked to resume (since=), by outcome.");
	for (int i = 0; i < WS_RECOVERY_COUNT; i++)
		evbuffer_add_printf(o, "notifyd_recoveries_total{outcome=\"%s\"} %" PRIu64 "\n",
		    stats_recovery_name((enum ws_recovery)i), stats_get(&st->recoveries[i]));
	if (gw->hist != NULL) {
		struct history_stats hs;

		history_get_stats(gw->hist, clock_now_ms(), &hs);
		gauge(o, "notifyd_history_bytes", "Memory held by the message history.", hs.bytes);
		gauge(o, "notifyd_history_messages", "Messages (and start markers) in the history.", hs.entries);
		gauge(o, "notifyd_history_users", "Users with messages in the history.", hs.users);
		gauge(o, "notifyd_history_oldest_age_seconds", "Age of the oldest message in the history.",
		    hs.oldest_age_ms / 1000);
		counter(o, "notifyd_history_evicted_total", "Messages that left the history (memory or age).",
		    hs.evicted);
	}
	head(o, "notifyd_delivery_latency_seconds", "histogram",
	    "Time from the broker's delivery to a frame written to a client socket.");
	for (int i = 0; i < STATS_LATENCY_BUCKETS; i++) {
		cum += stats_get(&st->latency_bucket[i]);
		evbuffer_add_printf(o, "notifyd_delivery_latency_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
		    stats_latency_bounds[i], cum);
	}
	cum += stats_get(&st->latency_bucket[STATS_LATENCY_BUCKETS]);
	evbuffer_add_printf(o, "notifyd_delivery_latency_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
	evbuffer_add_printf(o, "notifyd_delivery_latency_seconds_sum %.6f\n",
	    (double)stats_get(&st->latency_sum_us) / 1e6);
	evbuffer_add_printf(o, "notifyd_delivery_latency_seconds_count %" PRIu64 "\n",
	    stats_get(&st->latency_count));
}
