/* http_push.h - POST /push on the event loop.
 *
 * Promises: checks "Authorization: Bearer KEY" against the configured push
 * keys in constant time (no keys: 403, push is disabled), bounds the body
 * (413), validates it (UTF-8 JSON object with a target, or an array of at
 * most push_max_batch of them: 400 with the reason otherwise), hands the
 * messages to the publisher thread and answers only when the broker has
 * confirmed them: 202 {"status":"queued","count":N}, or 503 when the broker
 * is down, blocked, refused, or did not confirm within push_timeout.  The
 * loop never waits: the request is parked until its result or its deadline.
 * Failed authentications are limited per client address (token bucket,
 * push_auth_fail_rate a second, as many at once): an address over it is
 * answered 429 with "Retry-After: 1" before its key is even looked at.
 */
#ifndef NOTIFYD_HTTP_PUSH_H
#define NOTIFYD_HTTP_PUSH_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct evhttp_request;
struct gateway;
struct http_push;
struct xqueue;

struct http_push *http_push_new(struct gateway *gw, struct xqueue *pushq, struct xqueue *resultq);
void http_push_free(struct http_push *hp);

/* Answer POST /push.  admitted: the gate already accepted the key (for a
 * request with a body), so it is not checked twice. */
void http_push_handle(struct http_push *hp, struct evhttp_request *req, bool admitted);

/* May a request with this Authorization header value (NULL: none) from
 * peer_addr (printable IP, as evhttp_connection_get_peer() gives it) push?
 * 0: yes; else the status to refuse it with: 403 no push keys configured,
 * 429 the address used up its failures (the key is not checked), 401
 * missing or wrong key (counted as a failure of the address).  The one
 * rule, for http_push_handle() and for a caller that asks before reading
 * the body.  Does not count the answer in the metrics. */
int http_push_admit(struct http_push *hp, const char *authorization, const char *peer_addr,
    uint64_t now_ms);

/* For a caller that answers an http_push_admit() refusal itself: the error
 * text and one extra header line ("Name: value", NULL for none) that go
 * with status, as http_push_handle() would send them.  Counts the answer
 * in the push metrics: once per refused request. */
void http_push_refusal(struct http_push *hp, int status, const char **why, const char **header);

/* Replace the accepted keys (SIGHUP).  Returns 0, -1 on allocation failure
 * (the old keys stay). */
int http_push_set_keys(struct http_push *hp, const struct config_list *keys);

/* Answer every parked request with 503 (shutdown, before evhttp is freed). */
void http_push_fail_all(struct http_push *hp, const char *why);

#endif
