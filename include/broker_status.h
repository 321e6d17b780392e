/* broker_status.h - what the consumer thread tells the event loop about
 * the broker, by value through a queue (delivery.h's crossing list has the
 * data; this is the state).  Owned by the broker side; the loop keeps a
 * copy for /health and /metrics.
 */
#ifndef NOTIFYD_BROKER_STATUS_H
#define NOTIFYD_BROKER_STATUS_H

#include <stdbool.h>

enum broker_state {
	BROKER_CONNECTING = 0,
	BROKER_CONSUMING,
	BROKER_RECONNECTING,
	BROKER_STOPPED
};

struct broker_status {
	enum broker_state state;
	bool cancelled;		/* consuming stopped for shutdown */
	bool drained;		/* ... and every delivery taken is settled */
	char error[200];
};

/* "connecting", "consuming", "reconnecting", "stopped". */
const char *broker_state_name(enum broker_state s);

#endif
