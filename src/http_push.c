#include "autoconfig.h"

#include "http_push.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "amqp_publisher.h"
#include "http_reply.h"
#include "log.h"
#include "notifyd.h"
#include "stats.h"
#include "target.h"
#include "utf8.h"
#include "xqueue.h"

#define PEND_BUCKETS 4096
#define KEY_DIGEST 32

/* A request waiting for the broker's confirm.  Deadlines are all
 * push_timeout after arrival, so the FIFO is also ordered by deadline. */
struct pend {
	uint64_t id;
	struct evhttp_request *req;
	uint64_t deadline_ms;
	uint32_t n;
	struct pend *prev, *next;	/* FIFO */
	struct pend *hnext;		/* bucket */
};

struct http_push {
	struct gateway *gw;
	struct xqueue *pushq, *resultq;
	struct event *result_ev, *timer_ev;
	uint8_t (*keys)[KEY_DIGEST];	/* SHA-256 of each accepted key */
	size_t nkeys;
	uint64_t next_id;
	struct pend *head, *tail;
	struct pend *bucket[PEND_BUCKETS];
	size_t npending;
};

static void push_reply(struct http_push *hp, struct evhttp_request *req, int status, const char *why)
{
	stats_add(&hp->gw->stats->push_status[stats_push_index(status)], 1);
	if (status == 401)
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
	http_reply_error(req, status, why);
}

static void pend_unlink(struct http_push *hp, struct pend *p)
{
	struct pend **pp = &hp->bucket[p->id % PEND_BUCKETS];

	while (*pp != p)
		pp = &(*pp)->hnext;
	*pp = p->hnext;
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		hp->head = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	else
		hp->tail = p->prev;
	hp->npending--;
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
			struct pend *p = hp->bucket[r[i].id % PEND_BUCKETS];

			while (p != NULL && p->id != r[i].id)
				p = p->hnext;
			if (p == NULL)
				continue;	/* answered already: it timed out */
			pend_unlink(hp, p);
			if (r[i].status == 202) {
				char body[96];
				int len = snprintf(body, sizeof(body), "{\"status\":\"queued\",\"count\":%u}\n", r[i].count);

				stats_add(&hp->gw->stats->push_status[PUSH_202], 1);
				stats_add(&hp->gw->stats->push_messages, r[i].count);
				http_reply_json(p->req, 202, body, (size_t)len);
			} else {
				log_warn("push_failed", "id=%llu why=\"%s\"", (unsigned long long)p->id, r[i].why);
				push_reply(hp, p->req, 503, r[i].why);
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
	uint64_t now = notifyd_now_ms();

	(void)fd;
	(void)what;
	while (hp->head != NULL && hp->head->deadline_ms <= now) {
		struct pend *p = hp->head;

		pend_unlink(hp, p);
		log_warn("push_timeout", "id=%llu messages=%u", (unsigned long long)p->id, p->n);
		push_reply(hp, p->req, 503, "broker did not confirm in time");
		free(p);
	}
}

/* Constant time in the key's content: every configured key is compared in
 * full, through digests of equal length. */
static bool push_key_ok(const struct http_push *hp, const char *auth)
{
	uint8_t d[KEY_DIGEST];
	unsigned int dl = 0;
	int match = 0;
	const char *tok;

	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return false;
	tok = auth + 7;
	while (*tok == ' ')
		tok++;
	if (*tok == '\0' || !EVP_Digest(tok, strlen(tok), d, &dl, EVP_sha256(), NULL))
		return false;
	for (size_t i = 0; i < hp->nkeys; i++)
		match |= CRYPTO_memcmp(d, hp->keys[i], KEY_DIGEST) == 0;
	OPENSSL_cleanse(d, sizeof(d));
	return match != 0;
}

/* Validate one notification object and fill m.  Returns NULL or why not. */
static const char *push_prepare(const struct config *cfg, const cJSON *obj, const char *raw,
    size_t rawlen, struct push_msg *m)
{
	struct target t;
	char *text;
	int rc;

	if (!cJSON_IsObject(obj))
		return "each notification must be a JSON object";
	rc = target_from_body(obj, &t);
	if (rc == TARGET_MISSING)
		return "no target: give \"user_id\" or \"broadcast\": true";
	if (rc != TARGET_OK)
		return "invalid \"user_id\" or \"broadcast\"";
	if (t.kind == TARGET_USER) {
		/* The queue is bound with "user.*": a dot would make a routing
		 * key that nothing matches, and the broker would drop it. */
		if (memchr(t.id, '.', t.id_len) != NULL)
			return "\"user_id\" must not contain '.'";
		snprintf(m->routing_key, sizeof(m->routing_key), "user.%s", t.id);
	} else {
		snprintf(m->routing_key, sizeof(m->routing_key), "broadcast");
	}
	if (raw != NULL) {
		/* A single object travels byte for byte. */
		text = malloc(rawlen);
		if (text == NULL)
			return "out of memory";
		memcpy(text, raw, rawlen);
		m->len = rawlen;
	} else {
		text = cJSON_PrintUnformatted(obj);
		if (text == NULL)
			return "out of memory";
		m->len = strlen(text);
	}
	m->body = text;
	if (m->len > cfg->max_message_size)
		return "notification larger than max_message_size";
	return NULL;
}

static void trim(const char **p, size_t *n)
{
	while (*n > 0 && (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n')) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' ||
	    (*p)[*n - 1] == '\r' || (*p)[*n - 1] == '\n'))
		(*n)--;
}

void http_push_handle(struct http_push *hp, struct evhttp_request *req)
{
	const struct config *cfg = hp->gw->cfg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	struct push_job job = { 0 };
	struct pend *p;
	const char *text, *why = NULL, *end = NULL;
	cJSON *root = NULL;
	int status = 400;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
		push_reply(hp, req, 405, "use POST");
		return;
	}
	if (hp->nkeys == 0) {
		push_reply(hp, req, 403, "push is disabled: no push_keys configured");
		return;
	}
	if (!push_key_ok(hp, evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization"))) {
		push_reply(hp, req, 401, "missing or wrong push key");
		return;
	}
	if (len > cfg->push_max_body) {
		push_reply(hp, req, 413, "body larger than push_max_body");
		return;
	}
	text = (const char *)evbuffer_pullup(in, -1);
	trim(&text, &len);
	if (len == 0 || text == NULL) {
		why = "empty body";
		goto bad;
	}
	if (!utf8_valid((const uint8_t *)text, len)) {
		why = "body is not valid UTF-8";
		goto bad;
	}
	if (target_has_escaped_nul(text, len)) {
		why = "\\u0000 is not allowed";
		goto bad;
	}
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (root == NULL || end != text + len || target_json_has_raw_control(text, len)) {
		why = "body is not valid JSON";
		goto bad;
	}
	if (cJSON_IsArray(root)) {
		int n = cJSON_GetArraySize(root);
		const cJSON *it;
		uint32_t i = 0;

		if (n == 0 || (uint32_t)n > cfg->push_max_batch) {
			why = n == 0 ? "empty batch" : "batch larger than push_max_batch";
			status = n == 0 ? 400 : 413;
			goto bad;
		}
		job.msgs = calloc((size_t)n, sizeof(*job.msgs));
		if (job.msgs == NULL) {
			why = "out of memory";
			status = 503;
			goto bad;
		}
		cJSON_ArrayForEach(it, root) {
			job.n = i + 1;
			why = push_prepare(cfg, it, NULL, 0, &job.msgs[i++]);
			if (why != NULL)
				goto bad;
		}
	} else {
		job.msgs = calloc(1, sizeof(*job.msgs));
		if (job.msgs == NULL) {
			why = "out of memory";
			status = 503;
			goto bad;
		}
		job.n = 1;
		why = push_prepare(cfg, root, text, len, &job.msgs[0]);
		if (why != NULL)
			goto bad;
	}
	cJSON_Delete(root);
	root = NULL;

	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		why = "out of memory";
		status = 503;
		goto bad;
	}
	job.id = ++hp->next_id;
	p->id = job.id;
	p->req = req;
	p->n = job.n;
	p->deadline_ms = notifyd_now_ms() + cfg->push_timeout_ms;
	if (xqueue_push(hp->pushq, &job) < 0) {
		free(p);
		why = "shutting down";
		status = 503;
		goto bad;
	}
	p->hnext = hp->bucket[p->id % PEND_BUCKETS];
	hp->bucket[p->id % PEND_BUCKETS] = p;
	p->prev = hp->tail;
	if (hp->tail != NULL)
		hp->tail->next = p;
	else
		hp->head = p;
	hp->tail = p;
	hp->npending++;
	return;
bad:
	cJSON_Delete(root);
	push_job_free(&job);
	if (status == 400 && why != NULL && strcmp(why, "notification larger than max_message_size") == 0)
		status = 413;
	push_reply(hp, req, status, why);
}

int http_push_set_keys(struct http_push *hp, const struct config_list *keys)
{
	uint8_t (*k)[KEY_DIGEST] = NULL;

	if (keys->n > 0) {
		k = calloc(keys->n, sizeof(*k));
		if (k == NULL)
			return -1;
	}
	for (size_t i = 0; i < keys->n; i++) {
		unsigned int dl = 0;

		if (!EVP_Digest(keys->item[i], strlen(keys->item[i]), k[i], &dl, EVP_sha256(), NULL)) {
			free(k);
			return -1;
		}
	}
	if (hp->keys != NULL)
		OPENSSL_cleanse(hp->keys, hp->nkeys * sizeof(*hp->keys));
	free(hp->keys);
	hp->keys = k;
	hp->nkeys = keys->n;
	return 0;
}

struct http_push *http_push_new(struct gateway *gw, struct xqueue *pushq, struct xqueue *resultq)
{
	struct http_push *hp = calloc(1, sizeof(*hp));
	struct timeval tick = { 0, 50000 };

	if (hp == NULL)
		return NULL;
	hp->gw = gw;
	hp->pushq = pushq;
	hp->resultq = resultq;
	hp->result_ev = event_new(gw->base, xqueue_fd(resultq), EV_READ | EV_PERSIST, push_on_result, hp);
	hp->timer_ev = event_new(gw->base, -1, EV_PERSIST, push_on_timer, hp);
	if (hp->result_ev == NULL || hp->timer_ev == NULL || event_add(hp->result_ev, NULL) < 0 ||
	    event_add(hp->timer_ev, &tick) < 0 || http_push_set_keys(hp, &gw->cfg->push_keys) < 0) {
		http_push_free(hp);
		return NULL;
	}
	return hp;
}

void http_push_fail_all(struct http_push *hp, const char *why)
{
	if (hp == NULL)
		return;
	while (hp->head != NULL) {
		struct pend *p = hp->head;

		pend_unlink(hp, p);
		push_reply(hp, p->req, 503, why);
		free(p);
	}
}

void http_push_free(struct http_push *hp)
{
	if (hp == NULL)
		return;
	while (hp->head != NULL) {
		struct pend *p = hp->head;

		pend_unlink(hp, p);
		free(p);
	}
	if (hp->result_ev != NULL)
		event_free(hp->result_ev);
	if (hp->timer_ev != NULL)
		event_free(hp->timer_ev);
	if (hp->keys != NULL)
		OPENSSL_cleanse(hp->keys, hp->nkeys * sizeof(*hp->keys));
	free(hp->keys);
	free(hp);
}
