#include "autoconfig.h"

#include "http_reply.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "log.h"

const char *http_reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

void http_reply_body(struct evhttp_request *req, int code, const char *content_type,
    const char *body, size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	/* Straight into the request's own output buffer: evhttp moves it
	 * behind the headers, so a reply costs no evbuffer of its own (it was
	 * one evbuffer and one 1 KB chain per request on the push path). */
	evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
	evhttp_send_reply(req, code, http_reason(code), NULL);
}

void http_reply_json(struct evhttp_request *req, int code, const char *body, size_t len)
{
	http_reply_body(req, code, "application/json", body, len);
}

size_t http_error_body(char *buf, size_t len, const char *why)
{
	char q[256];
	int n;

	/* log_quote's escapes (\" \\ \u00XX) are JSON's. */
	log_quote(q, sizeof(q), why, strlen(why));
	n = snprintf(buf, len, "{\"error\":%s}\n", q);
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

void http_reply_error(struct evhttp_request *req, int code, const char *why)
{
	char body[HTTP_ERROR_BODY_MAX];

	http_reply_json(req, code, body, http_error_body(body, sizeof(body), why));
}
