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
 */
#ifndef NOTIFYD_HTTP_PUSH_H
#define NOTIFYD_HTTP_PUSH_H

#include "config.h"

struct evhttp_request;
struct gateway;
struct http_push;
struct xqueue;

struct http_push *http_push_new(struct gateway *gw, struct xqueue *pushq, struct xqueue *resultq);
void http_push_free(struct http_push *hp);

void http_push_handle(struct http_push *hp, struct evhttp_request *req);

/* Replace the accepted keys (SIGHUP).  Returns 0, -1 on allocation failure
 * (the old keys stay). */
int http_push_set_keys(struct http_push *hp, const struct config_list *keys);

/* Answer every parked request with 503 (shutdown, before evhttp is freed). */
void http_push_fail_all(struct http_push *hp, const char *why);

#endif
