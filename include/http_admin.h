/* http_admin.h - the admin API on the event loop: sessions and presence.
 *
 *   GET  /users/<id>[?scope=cluster]    a user's connections (here, or on
 *                                       every instance)
 *   POST /users/<id>/disconnect         close them everywhere, optionally
 *                                       block or revoke
 *   POST /revoke                        revoke a token id or a user's tokens
 *   GET  /presence[?scope=cluster]      users and connections per instance
 *
 * Promises: "Authorization: Bearer KEY" against admin_keys in constant time
 * (no keys: 403, the API is off); failed keys are limited per address like
 * /push's (push_auth_fail_rate, then 429).  A bad user id or body is 400
 * with the reason; an unknown user is an empty answer, not 404.  Commands
 * answer 200 once the broker confirmed them, 503 otherwise; cluster
 * answers say how many instances were asked and which did not answer.
 * Event-loop thread only.
 */
#ifndef NOTIFYD_HTTP_ADMIN_H
#define NOTIFYD_HTTP_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config_list;
struct evhttp_request;
struct gateway;
struct http_admin;

#define HTTP_ADMIN_BODY_MAX 4096

struct http_admin *http_admin_new(struct gateway *gw);
void http_admin_free(struct http_admin *ha);
int http_admin_set_keys(struct http_admin *ha, const struct config_list *keys);

/* Is this path the admin API's (raw, undecoded)? */
bool http_admin_owns(const char *path, size_t len);

/* For the gate, before a body is read: 0, or the status to answer with,
 * *why and *header (one extra "Name: value" line or NULL). */
int http_admin_admit(struct http_admin *ha, const char *authorization, const char *addr, uint64_t now_ms,
    const char **why, const char **header);

/* Serve a request on one of our paths; admitted: the gate checked the key. */
void http_admin_handle(struct http_admin *ha, struct evhttp_request *req, bool admitted);

#endif
