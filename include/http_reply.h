/* http_reply.h - answers in JSON, as the contract wants for every error. */
#ifndef NOTIFYD_HTTP_REPLY_H
#define NOTIFYD_HTTP_REPLY_H

#include <stddef.h>

struct evhttp_request;

const char *http_reason(int code);
void http_reply_json(struct evhttp_request *req, int code, const char *body, size_t len);
void http_reply_body(struct evhttp_request *req, int code, const char *content_type,
    const char *body, size_t len);
/* {"error":"why"}, why escaped. */
void http_reply_error(struct evhttp_request *req, int code, const char *why);

#endif
