#include "autoconfig.h"

#include "stats.h"

const char *stats_reject_name(enum reject_reason r)
{
	static const char *const names[REJECT_REASON_COUNT] = {
		[REJECT_NOT_JSON] = "not_json",
		[REJECT_NOT_OBJECT] = "not_object",
		[REJECT_INVALID_UTF8] = "invalid_utf8",
		[REJECT_TOO_LARGE] = "too_large",
		[REJECT_NO_TARGET] = "no_target",
		[REJECT_BAD_TARGET] = "bad_target",
		[REJECT_CONTENT_ENCODING] = "content_encoding",
	};

	return (unsigned)r < REJECT_REASON_COUNT ? names[r] : "unknown";
}

const double stats_latency_bounds[STATS_LATENCY_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5
};

enum push_status_idx stats_push_index(int status)
{
	switch (status) {
	case 202: return PUSH_202;
	case 400: return PUSH_400;
	case 401: return PUSH_401;
	case 403: return PUSH_403;
	case 405: return PUSH_405;
	case 413: return PUSH_413;
	case 429: return PUSH_429;
	case 503: return PUSH_503;
	default: return PUSH_OTHER;
	}
}

const char *stats_push_label(enum push_status_idx i)
{
	static const char *const labels[PUSH_STATUS_COUNT] = {
		"202", "400", "401", "403", "405", "413", "429", "503", "other"
	};

	return (unsigned)i < PUSH_STATUS_COUNT ? labels[i] : "other";
}

const char *stats_limit_name(enum limit_kind k)
{
	static const char *const names[LIMIT_KIND_COUNT] = {
		"connections", "per_user", "ip_rate", "handshake", "per_ip", "http_connections"
	};

	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "unknown";
}

const char *stats_recovery_name(enum ws_recovery r)
{
	static const char *const names[WS_RECOVERY_COUNT] = {
		"recovered", "too_old", "unknown_epoch", "malformed", "unavailable"
	};

	return (unsigned)r < WS_RECOVERY_COUNT ? names[r] : "unknown";
}

void stats_observe_latency(struct stats *s, uint64_t ns)
{
	double sec = (double)ns / 1e9;
	int i = 0;

	while (i < STATS_LATENCY_BUCKETS && sec > stats_latency_bounds[i])
		i++;
	stats_add(&s->latency_bucket[i], 1);
	stats_add(&s->latency_sum_us, ns / 1000);
	stats_add(&s->latency_count, 1);
}
