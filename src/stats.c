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
