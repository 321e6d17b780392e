/* loop_base.h - the event base the loop thread runs on, as the daemon and
 * the loop unit tests make it.
 *
 * epoll with a changelist: evhttp turns reading off just before our
 * callback and the WebSocket takeover turns it on again, and a frame queued
 * then written arms and disarms EV_WRITE in the same loop pass; the
 * changelist folds each pair into one epoll_ctl or none.  (Unsafe only for
 * dup()ed descriptors, which notifyd never hands to its loop.)  Falls back
 * to libevent's default base.  NULL when out of memory.
 */
#ifndef NOTIFYD_LOOP_BASE_H
#define NOTIFYD_LOOP_BASE_H

#include <event2/event.h>

static inline struct event_base *loop_base_new(void)
{
	struct event_config *ec = event_config_new();
	struct event_base *base = NULL;

	if (ec != NULL) {
		event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
		base = event_base_new_with_config(ec);
		event_config_free(ec);
	}
	return base != NULL ? base : event_base_new();
}

#endif
