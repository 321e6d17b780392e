#include "autoconfig.h"

#include "http_push.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admission.h"
#include "clock.h"
#include "http_reply.h"
#include "ip_rate.h"
#include "keyring.h"
#include "log.h"
#include "mq_publisher.h"
#include "notifyd.h"
#include "stats.h"
#include "target.h"
#include "text.h"
#include "xqueue.h"

#define PEND_BUCKETS 4096
/* Spare pend records kept for reuse; beyond this they go back to malloc. */
/* An address's failure budget is whole again a second after its last
 * failure; its entry is kept a little longer than that. */
#define AUTH_FAIL_IDLE_MS 2000
#define AUTH_FAIL_SWEEP_MS 1000

/* The answers of http_push_admit(), in one place for this module and the
 * gate that asks before a body is read. */
static const struct push_refusal {
	int status;
	const char *why;
	const char *hname, *hvalue, *hline;	/* one extra header, or NULLs */
} push_refusals[] = {
	{ 401, "missing or wrong push key", "WWW-Authenticate", "Bearer", "WWW-Authenticate: Bearer" },
	{ 403, "push is disabled: no push_keys configured", NULL, NULL, NULL },
	/* A token comes back within 1 / push_auth_fail_rate seconds. */
	{ 429, "too many failed push authentications from this address", "Retry-After", "1",
	  "Retry-After: 1" },
};

/* A request waiting for the broker's confirm.  Deadlines are all
 * push_timeout after arrival, so the FIFO is also ordered by deadline. */
struct pend {
	uint64_t id;
	struct evhttp_request *req;
	uint64_t deadline_ms;
	size_t bytes;			/* of the body */
	TAILQ_ENTRY(pend) fifo;		/* deadline order: every deadline is now + push_timeout */
	struct pend *hnext;		/* bucket */
};

struct http_push {
	struct gateway *gw;
	struct xqueue *pushq, *resultq;
	struct event *result_ev, *timer_ev, *flush_ev;
	struct keyring *keys;
	uint64_t next_id;
	TAILQ_HEAD(pend_list, pend) pending;
	struct pend *bucket[PEND_BUCKETS];
	size_t npending;
	/* Jobs accepted during this pass of the loop, handed to the publisher
	 * together by flush_ev: one wake-up of its thread for all of them. */
	struct push_job *stash;
	size_t nstash, capstash;
	/* Failed authentications per address (push_auth_fail_rate). */
	struct ip_rate *auth_fails;
	uint64_t auth_fails_sweep_ms;	/* next ip_rate_expire() */
	uint64_t limit_log_next_ms;	/* push_auth_limited: one line a second at most */
	uint64_t limit_unlogged;	/* addresses limited meanwhile, not logged */
};

static const struct push_refusal *push_refusal_of(int status)
{
	for (size_t i = 0; i < sizeof(push_refusals) / sizeof(push_refusals[0]); i++)
		if (push_refusals[i].status == status)
			return &push_refusals[i];
	return NULL;
}

static void push_reply(struct http_push *hp, struct evhttp_request *req, int status, const char *why)
{
	const struct push_refusal *r = push_refusal_of(status);

	stats_add(&hp->gw->stats->push_status[stats_push_index(status)], 1);
	if (r != NULL && r->hname != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req), r->hname, r->hvalue);
	http_reply_error(req, status, why);
}

static void pend_unlink(struct http_push *hp, struct pend *p)
{
	struct pend **pp = &hp->bucket[p->id % PEND_BUCKETS];

	while (*pp != p)
		pp = &(*pp)->hnext;
	*pp = p->hnext;
	TAILQ_REMOVE(&hp->pending, p, fifo);
	hp->npending--;
}

static struct pend *pend_find(struct http_push *hp, uint64_t id)
{
	struct pend *p = hp->bucket[id % PEND_BUCKETS];

	while (p != NULL && p->id != id)
		p = p->hnext;
	return p;
}

static void push_on_result(evutil_socket_t fd, short what, void *arg)
{
	struct http_push *hp = arg;
	struct push_result r[64];
	size_t n;

	(void)fd;
	(void)what;
	while ((n = xqueue_drain(hp->resultq, r, 64)) > 0) {
		for (size_t i = 0; i < n; i++) {
			struct pend *p = pend_find(hp, r[i].id);

			if (p == NULL)
				continue;	/* answered already: it timed out */
			pend_unlink(hp, p);
			if (r[i].status == 202) {
				static const char one[] = "{\"status\":\"queued\",\"count\":1}\n";

				/* A single notification is the common case: its
				 * body never changes. */
				if (r[i].count == 1) {
					http_reply_json(p->req, 202, one, sizeof(one) - 1);
				} else {
					char body[96];
					int len = snprintf(body, sizeof(body), "{\"status\":\"queued\",\"count\":%u}\n",
					    r[i].count);

					http_reply_json(p->req, 202, body, (size_t)len);
				}
				stats_add(&hp->gw->stats->push_status[PUSH_202], 1);
				stats_add(&hp->gw->stats->push_messages, r[i].count);
			} else {
				/* 400 and 413 are the body's fault; only the broker's
				 * failures are worth a warning. */
				if (r[i].status >= 500)
					log_warn("push_failed", "id=%llu why=\"%s\"", (unsigned long long)p->id,
					    r[i].why);
				push_reply(hp, p->req, r[i].status, r[i].why);
			}
			free(p);
		}
		if (n < 64)
			break;
	}
}

static void push_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_push *hp = arg;
	uint64_t now = clock_now_ms();

	(void)fd;
	(void)what;
	if (now >= hp->auth_fails_sweep_ms) {
		ip_rate_expire(hp->auth_fails, now, AUTH_FAIL_IDLE_MS);
		hp->auth_fails_sweep_ms = now + AUTH_FAIL_SWEEP_MS;
	}
	while (!TAILQ_EMPTY(&hp->pending) && TAILQ_FIRST(&hp->pending)->deadline_ms <= now) {
		struct pend *p = TAILQ_FIRST(&hp->pending);

		pend_unlink(hp, p);
		log_warn("push_timeout", "id=%llu bytes=%zu", (unsigned long long)p->id, p->bytes);
		push_reply(hp, p->req, 503, "broker did not confirm in time");
		free(p);
	}
}

/* An address that used up its failures is logged, but one line a second
 * at most in all: an attack from many addresses must not flood the log. */
static void push_log_limited(struct http_push *hp, const char *addr, uint64_t now_ms)
{
	if (now_ms < hp->limit_log_next_ms) {
		hp->limit_unlogged++;
		return;
	}
	log_warn("push_auth_limited", "addr=%s rate=%u others_since_last=%llu", addr,
	    hp->gw->cfg->push_auth_fail_rate, (unsigned long long)hp->limit_unlogged);
	hp->limit_log_next_ms = now_ms + 1000;
	hp->limit_unlogged = 0;
}

int http_push_admit(struct http_push *hp, const char *authorization, const char *peer_addr,
    uint64_t now_ms)
{
	const char *addr = peer_addr != NULL ? peer_addr : "?";

	if (keyring_count(hp->keys) == 0)
		return 403;
	/* Before the key is looked at: a brute-forcing address learns
	 * nothing more, not even from the right key. */
	if (!ip_rate_peek(hp->auth_fails, addr, now_ms))
		return 429;
	if (keyring_ok(hp->keys, authorization))
		return 0;
	(void)ip_rate_allow(hp->auth_fails, addr, now_ms);
	if (!ip_rate_peek(hp->auth_fails, addr, now_ms))
		push_log_limited(hp, addr, now_ms);
	return 401;
}

void http_push_refusal(struct http_push *hp, int status, const char **why, const char **header)
{
	const struct push_refusal *r = push_refusal_of(status);

	stats_add(&hp->gw->stats->push_status[stats_push_index(status)], 1);
	*why = r != NULL ? r->why : "refused";
	*header = r != NULL ? r->hline : NULL;
}

static int push_stash_grow(struct http_push *hp)
{
	size_t ncap = hp->capstash ? hp->capstash * 2 : 64;
	struct push_job *n = realloc(hp->stash, ncap * sizeof(*n));

	if (n == NULL)
		return -1;
	hp->stash = n;
	hp->capstash = ncap;
	return 0;
}

/* Runs once per loop pass that accepted pushes, after the requests of that
 * pass (an activated event goes to the end of the active queue): the
 * publisher's eventfd is written once for the whole stash. */
static void push_flush(evutil_socket_t fd, short what, void *arg)
{
	struct http_push *hp = arg;
	size_t n = hp->nstash;

	(void)fd;
	(void)what;
	hp->nstash = 0;
	for (size_t i = 0; i < n; i++) {
		struct push_job *j = &hp->stash[i];
		struct pend *p;

		if (xqueue_push(hp->pushq, j) == 0)
			continue;
		/* Closed for shutdown: nobody will publish it. */
		p = pend_find(hp, j->id);
		push_job_free(j);
		if (p == NULL)
			continue;
		pend_unlink(hp, p);
		push_reply(hp, p->req, 503, "shutting down");
		free(p);
	}
}

void http_push_handle(struct http_push *hp, struct evhttp_request *req, bool admitted)
{
	const struct config *cfg = hp->gw->cfg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	struct push_job job = { 0 };
	struct pend *p;
	const char *why = NULL;
	char *peer = NULL;
	ev_uint16_t peer_port = 0;
	int status;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
		push_reply(hp, req, 405, "use POST");
		return;
	}
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &peer_port);
	status = admitted ? 0 : http_push_admit(hp, evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization"), peer, clock_now_ms());
	if (status != 0) {
		push_reply(hp, req, status, push_refusal_of(status)->why);
		return;
	}
	if (len > cfg->push_max_body) {
		push_reply(hp, req, 413, "body larger than push_max_body");
		return;
	}
	/* Parsed and checked by the publisher thread (push_body.c), not here:
	 * a megabyte of JSON would hold up every connection on the loop. */
	job.raw_len = len;
	job.raw = malloc(len > 0 ? len : 1);
	if (job.raw == NULL) {
		why = "out of memory";
		status = 503;
		goto bad;
	}
	evbuffer_remove(in, job.raw, len);
	if (hp->nstash == hp->capstash && push_stash_grow(hp) < 0) {
		why = "out of memory";
		status = 503;
		goto bad;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		why = "out of memory";
		status = 503;
		goto bad;
	}
	job.id = ++hp->next_id;
	p->id = job.id;
	p->req = req;
	p->bytes = job.raw_len;
	p->deadline_ms = clock_now_ms() + cfg->push_timeout_ms;
	hp->stash[hp->nstash++] = job;
	if (hp->nstash == 1)
		event_active(hp->flush_ev, EV_TIMEOUT, 0);
	p->hnext = hp->bucket[p->id % PEND_BUCKETS];
	hp->bucket[p->id % PEND_BUCKETS] = p;
	TAILQ_INSERT_TAIL(&hp->pending, p, fifo);
	hp->npending++;
	return;
bad:
	push_job_free(&job);
	push_reply(hp, req, status, why);
}

int http_push_set_keys(struct http_push *hp, const struct config_list *keys)
{
	return keyring_set(hp->keys, keys);
}

struct http_push *http_push_new(struct gateway *gw, struct xqueue *pushq, struct xqueue *resultq)
{
	struct http_push *hp = calloc(1, sizeof(*hp));
	struct timeval tick = { 0, 50000 };

	if (hp == NULL)
		return NULL;
	hp->gw = gw;
	TAILQ_INIT(&hp->pending);
	hp->pushq = pushq;
	hp->resultq = resultq;
	hp->keys = keyring_new(&gw->cfg->push_keys);
	hp->auth_fails = ip_rate_new(gw->cfg->push_auth_fail_rate);
	hp->result_ev = event_new(gw->base, xqueue_fd(resultq), EV_READ | EV_PERSIST, push_on_result, hp);
	hp->timer_ev = event_new(gw->base, -1, EV_PERSIST, push_on_timer, hp);
	hp->flush_ev = event_new(gw->base, -1, 0, push_flush, hp);
	if (hp->keys == NULL || hp->flush_ev == NULL || hp->auth_fails == NULL ||
	    hp->result_ev == NULL || hp->timer_ev == NULL || event_add(hp->result_ev, NULL) < 0 ||
	    event_add(hp->timer_ev, &tick) < 0) {
		http_push_free(hp);
		return NULL;
	}
	return hp;
}

/* Jobs still in the stash (the loop stopped before flush_ev ran) were never
 * seen by the publisher: their requests are answered by the caller. */
static void push_stash_drop(struct http_push *hp)
{
	for (size_t i = 0; i < hp->nstash; i++)
		push_job_free(&hp->stash[i]);
	hp->nstash = 0;
}

void http_push_fail_all(struct http_push *hp, const char *why)
{
	if (hp == NULL)
		return;
	push_stash_drop(hp);
	while (!TAILQ_EMPTY(&hp->pending)) {
		struct pend *p = TAILQ_FIRST(&hp->pending);

		pend_unlink(hp, p);
		push_reply(hp, p->req, 503, why);
		free(p);
	}
}

void http_push_free(struct http_push *hp)
{
	if (hp == NULL)
		return;
	push_stash_drop(hp);
	free(hp->stash);
	while (!TAILQ_EMPTY(&hp->pending)) {
		struct pend *p = TAILQ_FIRST(&hp->pending);

		pend_unlink(hp, p);
		free(p);
	}
	if (hp->result_ev != NULL)
		event_free(hp->result_ev);
	if (hp->timer_ev != NULL)
		event_free(hp->timer_ev);
	if (hp->flush_ev != NULL)
		event_free(hp->flush_ev);
	ip_rate_free(hp->auth_fails);
	keyring_free(hp->keys);
	free(hp);
}
