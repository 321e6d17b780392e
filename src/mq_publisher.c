#include "autoconfig.h"

#include "mq_publisher.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "mq_link.h"
#include "push_body.h"
#include "seq_window.h"
#include "xqueue.h"

#define JOB_BATCH 64

/* A job whose messages were published and await their confirms; its seqs
 * are first..last on the current channel. */
struct pending {
	uint64_t id;
	uint64_t first, last;
	uint32_t n;
	bool nacked;
};

struct mq_publisher {
	const struct config *cfg;
	struct xqueue *pushq, *resultq;
	int ctl_fd;
	atomic_bool stop;
	pthread_t thread;

	/* publisher thread only */
	struct mq_link link;
	bool connected;
	struct seq_window confirms;	/* publish seqs of the channel, from 1 */
	struct pending *fifo;
	size_t fhead, fcount, fcap;
	struct mq_backoff backoff;
	uint64_t serviced_ms;		/* last call in with nothing to read */
	/* Results of this pass, handed to the loop together at its end: one
	 * eventfd write for a burst of confirms instead of one per job. */
	struct push_result *out;
	size_t nout, capout;
};

static void publisher_result(struct mq_publisher *p, uint64_t id, uint16_t status,
    uint32_t count, const char *why)
{
	struct push_result r, *slot = &r;

	if (p->nout == p->capout) {
		size_t ncap = p->capout ? p->capout * 2 : 64;
		struct push_result *n = realloc(p->out, ncap * sizeof(*n));

		if (n != NULL) {
			p->out = n;
			p->capout = ncap;
		}
	}
	if (p->nout < p->capout)
		slot = &p->out[p->nout++];
	memset(slot, 0, sizeof(*slot));
	slot->id = id;
	slot->status = status;
	slot->count = count;
	if (why[0] != '\0')
		snprintf(slot->why, sizeof(slot->why), "%s", why);
	/* Out of memory for the batch: this one goes alone. */
	if (slot == &r)
		(void)xqueue_push(p->resultq, &r);
}

static void publisher_flush_results(struct mq_publisher *p)
{
	for (size_t i = 0; i < p->nout; i++)
		(void)xqueue_push(p->resultq, &p->out[i]);
	p->nout = 0;
}

/* Fail everything that waits for a confirm: its channel is gone, so the
 * confirms never come (the messages may or may not have been routed). */
static void publisher_fail_pending(struct mq_publisher *p, const char *why)
{
	while (p->fcount > 0) {
		struct pending *pd = &p->fifo[p->fhead];

		publisher_result(p, pd->id, 503, 0, why);
		p->fhead = (p->fhead + 1) % p->fcap;
		p->fcount--;
	}
}

static void publisher_disconnect(struct mq_publisher *p, const char *why)
{
	publisher_fail_pending(p, why);
	mq_link_close(&p->link);
	p->connected = false;
}

static int publisher_connect(struct mq_publisher *p)
{
	if (mq_link_open(&p->link, p->cfg, "publisher") < 0)
		return -1;
	amqp_confirm_select(p->link.conn, MQ_LINK_CHANNEL);
	if (!mq_link_rpc_ok(&p->link, "confirm.select")) {
		mq_link_close(&p->link);
		return -1;
	}
	p->connected = true;
	seq_window_reset(&p->confirms, 1);
	log_info("publisher_ready", "exchange=%s", p->cfg->amqp_exchange);
	return 0;
}

static int publisher_grow(struct mq_publisher *p)
{
	size_t ncap = p->fcap ? p->fcap * 2 : 64;
	struct pending *n = malloc(ncap * sizeof(*n));

	if (n == NULL)
		return -1;
	for (size_t i = 0; i < p->fcount; i++)
		n[i] = p->fifo[(p->fhead + i) % p->fcap];
	free(p->fifo);
	p->fifo = n;
	p->fhead = 0;
	p->fcap = ncap;
	return 0;
}

/* Publish one job; 0 when it waits for confirms, -1 when the link failed. */
static int publisher_publish(struct mq_publisher *p, struct push_job *j)
{
	amqp_basic_properties_t props;
	struct pending pd;

	if (!p->connected) {
		publisher_result(p, j->id, 503, 0, "broker unavailable");
		return 0;
	}
	if (p->link.blocked) {
		publisher_result(p, j->id, 503, 0, "broker is blocking publishers (resource alarm)");
		return 0;
	}
	if ((p->fcount == p->fcap && publisher_grow(p) < 0) ||
	    seq_window_reserve(&p->confirms, p->confirms.next + j->n - 1) < 0) {
		publisher_result(p, j->id, 503, 0, "out of memory");
		return 0;
	}
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = 2;
	pd.id = j->id;
	pd.first = p->confirms.next;
	pd.last = p->confirms.next + j->n - 1;
	pd.n = j->n;
	pd.nacked = false;
	for (uint32_t i = 0; i < j->n; i++) {
		amqp_bytes_t body = { j->msgs[i].len, (void *)j->msgs[i].body };
		int st = amqp_basic_publish(p->link.conn, MQ_LINK_CHANNEL,
		    amqp_cstring_bytes(p->cfg->amqp_exchange),
		    amqp_cstring_bytes(j->msgs[i].routing_key), 0, 0, &props, body);

		if (st != AMQP_STATUS_OK) {
			snprintf(p->link.error, sizeof(p->link.error), "publish: %s", amqp_error_string2(st));
			p->link.alive = false;
			publisher_result(p, j->id, 503, 0, "broker connection lost while publishing");
			return -1;
		}
		(void)seq_window_add(&p->confirms, p->confirms.next, MQ_CONFIRM_WAIT, NULL);
	}
	p->fifo[(p->fhead + p->fcount) % p->fcap] = pd;
	p->fcount++;
	return 0;
}

static void publisher_confirm(struct mq_publisher *p, const struct mq_link_frame *f)
{
	struct seq_window *w = &p->confirms;
	uint64_t s;
	uint8_t st;

	mq_link_confirm(w, f);
	/* Confirms come in order in practice; a job answers when all of its
	 * seqs are settled and every job before it has answered. */
	while (seq_window_pop(w, &s, &st, NULL)) {
		struct pending *pd = p->fcount > 0 ? &p->fifo[p->fhead] : NULL;

		/* Seqs of a job whose publish failed half way belong to none. */
		if (pd == NULL || s < pd->first)
			continue;
		if (st == MQ_CONFIRM_NACK)
			pd->nacked = true;
		if (s < pd->last)
			continue;
		if (pd->nacked)
			publisher_result(p, pd->id, 503, 0, "broker refused the message (nack)");
		else
			publisher_result(p, pd->id, 202, pd->n, "");
		p->fhead = (p->fhead + 1) % p->fcap;
		p->fcount--;
	}
}

static int publisher_on_frame(struct mq_publisher *p, const struct mq_link_frame *f)
{
	switch (f->ev) {
	case LINK_FATAL:
		return -1;
	case LINK_CONFIRM_ACK:
	case LINK_CONFIRM_NACK:
		publisher_confirm(p, f);
		break;
	default:
		break;
	}
	return 0;
}

/* Handle every frame rabbitmq-c holds, plus one read from the socket when
 * poll said it is readable.  service: call in even with nothing to read,
 * for the heartbeats rabbitmq-c only sends from inside its calls.  Every
 * frame a call returns is handled (a confirm dropped here would leave its
 * requests waiting until push_timeout).  Returns -1 when the link failed. */
static int publisher_read_frames(struct mq_publisher *p, bool readable, bool service)
{
	amqp_connection_state_t c = p->link.conn;

	for (;;) {
		struct mq_link_frame f;
		bool buffered = amqp_data_in_buffer(c) || amqp_frames_enqueued(c);

		if (!buffered) {
			if (!readable && !service)
				return 0;
			readable = false;
			service = false;
			p->serviced_ms = clock_now_ms();
		}
		mq_link_next_frame(&p->link, NULL, &f);
		if (publisher_on_frame(p, &f) < 0)
			return -1;
	}
}

static void *publisher_main(void *arg)
{
	struct mq_publisher *p = arg;
	uint64_t retry_at = 0;
	int poll_ms = 1000;

	if (p->cfg->amqp_heartbeat_s > 0 && (int)p->cfg->amqp_heartbeat_s * 250 < poll_ms)
		poll_ms = (int)p->cfg->amqp_heartbeat_s * 250;
	while (!atomic_load(&p->stop)) {
		struct push_job jobs[JOB_BATCH];
		struct pollfd pfd[3];
		size_t n;
		int nfd = 0, timeout = poll_ms, ready;
		bool corked;

		if (!p->connected && clock_now_ms() >= retry_at) {
			if (publisher_connect(p) == 0) {
				mq_backoff_reset(&p->backoff);
			} else {
				uint32_t wait = mq_backoff_next(&p->backoff);

				log_warn("publisher_unavailable", "error=\"%s\" retry_ms=%u", p->link.error, wait);
				retry_at = clock_now_ms() + wait;
			}
		}
		pfd[nfd++] = (struct pollfd){ .fd = xqueue_fd(p->pushq), .events = POLLIN };
		pfd[nfd++] = (struct pollfd){ .fd = p->ctl_fd, .events = POLLIN };
		if (p->connected) {
			pfd[nfd++] = (struct pollfd){ .fd = amqp_get_sockfd(p->link.conn), .events = POLLIN };
			/* Frames rabbitmq-c already took off the socket (it reads
			 * while a send would block) make no POLLIN. */
			if (amqp_data_in_buffer(p->link.conn) || amqp_frames_enqueued(p->link.conn))
				timeout = 0;
		} else if (retry_at > clock_now_ms() && retry_at - clock_now_ms() < (uint64_t)timeout) {
			timeout = (int)(retry_at - clock_now_ms()) + 1;
		}
		ready = poll(pfd, (nfds_t)nfd, timeout);
		if (ready < 0 && errno != EINTR)
			break;
		/* xqueue keeps the eventfd readable while jobs wait that no
		 * drain has taken, so a pass without POLLIN skips the drain. */
		corked = false;
		while ((pfd[0].revents & POLLIN) && (n = xqueue_drain(p->pushq, jobs, JOB_BATCH)) > 0) {
			int failed = 0, st[JOB_BATCH];
			uint32_t msgs = 0;

			for (size_t i = 0; i < n; i++) {
				const char *why;

				st[i] = push_body_parse(p->cfg, &jobs[i], &why);
				if (st[i] != 0)
					publisher_result(p, jobs[i].id, (uint16_t)st[i], 0, why);
				msgs += jobs[i].n;
			}
			if (p->connected && !corked && msgs > 1) {
				mq_link_cork(&p->link, true);
				corked = true;
			}
			for (size_t i = 0; i < n; i++) {
				if (st[i] == 0 && failed)
					publisher_result(p, jobs[i].id, 503, 0, "broker connection lost");
				else if (st[i] == 0 && publisher_publish(p, &jobs[i]) < 0)
					failed = 1;
				push_job_free(&jobs[i]);
			}
			if (failed) {
				log_warn("publisher_lost", "error=\"%s\"", p->link.error);
				publisher_disconnect(p, "broker connection lost before the confirm");
				retry_at = clock_now_ms() + mq_backoff_next(&p->backoff);
				corked = false;
			}
			if (n < JOB_BATCH)
				break;
		}
		if (corked)
			mq_link_cork(&p->link, false);
		if (p->connected) {
			bool readable = nfd == 3 && (pfd[2].revents & (POLLIN | POLLERR | POLLHUP));
			bool service = ready == 0 || clock_now_ms() - p->serviced_ms >= (uint64_t)poll_ms;

			if (publisher_read_frames(p, readable, service) < 0) {
				log_warn("publisher_lost", "error=\"%s\"", p->link.error);
				publisher_disconnect(p, "broker connection lost before the confirm");
				retry_at = clock_now_ms() + mq_backoff_next(&p->backoff);
			}
		}
		publisher_flush_results(p);
	}
	publisher_disconnect(p, "shutting down");
	publisher_flush_results(p);
	return NULL;
}

struct mq_publisher *mq_publisher_start(const struct config *cfg, struct xqueue *pushq,
    struct xqueue *resultq)
{
	struct mq_publisher *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->cfg = cfg;
	p->pushq = pushq;
	p->resultq = resultq;
	mq_backoff_init(&p->backoff, cfg, (unsigned int)(clock_now_ms() ^ ((uint64_t)getpid() << 16)));
	atomic_init(&p->stop, false);
	p->ctl_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->ctl_fd < 0 || seq_window_init(&p->confirms, 4096, false, MQ_CONFIRM_ACK, 1) < 0 ||
	    pthread_create(&p->thread, NULL, publisher_main, p) != 0) {
		if (p->ctl_fd >= 0)
			close(p->ctl_fd);
		seq_window_free(&p->confirms);
		free(p);
		return NULL;
	}
	(void)pthread_setname_np(p->thread, "nd-publisher");
	return p;
}

void mq_publisher_stop(struct mq_publisher *p)
{
	uint64_t one = 1;
	struct push_job j;

	if (p == NULL)
		return;
	atomic_store(&p->stop, true);
	while (write(p->ctl_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_join(p->thread, NULL);
	/* Jobs that arrived after the thread stopped. */
	while (xqueue_drain(p->pushq, &j, 1) == 1) {
		publisher_result(p, j.id, 503, 0, "shutting down");
		push_job_free(&j);
	}
	publisher_flush_results(p);
	close(p->ctl_fd);
	seq_window_free(&p->confirms);
	free(p->fifo);
	free(p->out);
	free(p);
}
