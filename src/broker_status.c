#include "autoconfig.h"

#include "broker_status.h"

const char *broker_state_name(enum broker_state s)
{
	switch (s) {
	case BROKER_CONNECTING: return "connecting";
	case BROKER_CONSUMING: return "consuming";
	case BROKER_RECONNECTING: return "reconnecting";
	case BROKER_STOPPED: return "stopped";
	}
	return "unknown";
}
