/* mq_link.h - one rabbitmq-c connection with channel 1 open, for the one
 * thread that owns it (the consumer and the publisher each have their own:
 * a broker that blocks publishers must not stall consumption).
 *
 * Promises: parses amqp_url (vhost "" means "/"), connects with a timeout,
 * over TLS for amqps:// with peer and host name verification (CA, client
 * certificate from the config), logs in with a connection name the broker
 * shows in its UI, opens channel 1.  Errors become one line of text in
 * link->error, never with the password.  Handles the frames that are not
 * deliveries (closes from the broker, returns, blocked/unblocked, confirms).
 */
#ifndef NOTIFYD_MQ_LINK_H
#define NOTIFYD_MQ_LINK_H

#include <stdbool.h>
#include <stdint.h>

#ifdef HAVE_RABBITMQ_C_AMQP_H
#include <rabbitmq-c/amqp.h>
#else
#include <amqp.h>
#endif

#include "config.h"
#include "seq_window.h"

#define MQ_LINK_CHANNEL 1

struct mq_link {
	amqp_connection_state_t conn;
	bool alive;			/* may still be closed politely */
	bool blocked;			/* connection.blocked from the broker */
	char error[200];
};

/* Delays between connection attempts: from amqp_reconnect_min, doubling up
 * to amqp_reconnect_max, back to the minimum after a success.  Each wait
 * has equal jitter (half fixed, half random) so that a fleet of notifyd
 * processes does not reconnect in lockstep. */
struct mq_backoff {
	uint32_t delay_ms, min_ms, max_ms;
	unsigned int seed;
};

void mq_backoff_init(struct mq_backoff *b, const struct config *cfg, unsigned int seed);
void mq_backoff_reset(struct mq_backoff *b);
/* The wait before the next attempt; the one after will be twice as long. */
uint32_t mq_backoff_next(struct mq_backoff *b);

/* Returns 0, or -1 with link->error set (and nothing left open). */
int mq_link_open(struct mq_link *l, const struct config *cfg, const char *role);

/* Close politely if possible (bounded by a short timeout) and free. */
void mq_link_close(struct mq_link *l);

/* Check the reply of the last RPC; on failure fill error with what. */
int mq_link_rpc_ok(struct mq_link *l, const char *what);

void mq_link_set_error(struct mq_link *l, const char *what, amqp_rpc_reply_t r);

enum mq_link_event {
	LINK_NONE = 0,		/* nothing (or nothing of interest) */
	LINK_FATAL,		/* connection or channel gone: error set */
	LINK_CONFIRM_ACK,	/* publisher confirm: tag, multiple */
	LINK_CONFIRM_NACK,
	LINK_RETURNED,		/* an unroutable mandatory publish came back */
	LINK_CANCELLED		/* the broker cancelled our consumer */
};

struct mq_link_frame {
	enum mq_link_event ev;
	uint64_t tag;
	bool multiple;
};

/* Read one frame that is not a delivery, waiting at most timeout (NULL:
 * do not wait).  Returns the event in *f. */
void mq_link_next_frame(struct mq_link *l, struct timeval *timeout, struct mq_link_frame *f);

/* After the broker closed channel 1 in answer to an RPC (e.g. 406 for a
 * declare with other arguments): acknowledge the close and open the channel
 * again.  Returns 0, or -1 with error set. */
int mq_link_reopen_channel(struct mq_link *l);

/* Cork the socket around a burst of publishes (on) and send it (off):
 * rabbitmq-c sends three frames per message, and without the cork the last
 * of them pushes a segment (and a broker read) per message. */
void mq_link_cork(struct mq_link *l, bool on);

/* Publisher confirms: the state of each publish seq of the channel in a
 * seq_window created with settled = MQ_CONFIRM_ACK, starting at 1. */
enum { MQ_CONFIRM_WAIT = 1, MQ_CONFIRM_ACK, MQ_CONFIRM_NACK };

/* Apply a LINK_CONFIRM_ACK or LINK_CONFIRM_NACK frame to w: the seq it
 * names, or with multiple every seq up to it still waiting, become ACK or
 * NACK.  A tag the window does not hold changes nothing.  The caller then
 * takes the settled prefix with seq_window_pop(). */
void mq_link_confirm(struct seq_window *w, const struct mq_link_frame *f);

#endif
