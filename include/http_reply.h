/* http_reply.h - answers in JSON, as the contract wants for every error. */
#ifndef NOTIFYD_HTTP_REPLY_H
#define NOTIFYD_HTTP_REPLY_H

#include <stddef.h>

struct evhttp_request;

const char *http_reason(int code);
void http_reply_json(struct evhttp_request *req, int code, const char *body, size_t len);
void http_reply_body(struct evhttp_request *req, int code, const char *content_type,
    const char *body, size_t len);
#define HTTP_ERROR_BODY_MAX 300

/* {"error":"why"} and a newline, why escaped, into buf; returns its length.
 * The one error body, for evhttp's answers and the gate's own. */
size_t http_error_body(char *buf, size_t len, const char *why);

/* {"error":"why"}, why escaped. */
void http_reply_error(struct evhttp_request *req, int code, const char *why);

#endif
