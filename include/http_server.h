/* http_server.h - the listener and the HTTP routes, on the event loop.
 *
 * Promises: GET /ws (validated upgrade, origin and user checks, connection
 * limit, then ws_conn takes over), GET /health (200 while consuming, 503
 * otherwise, JSON either way), JSON errors for everything else.  Header
 * size and the header phase are bounded (slow clients are dropped).
 */
#ifndef NOTIFYD_HTTP_SERVER_H
#define NOTIFYD_HTTP_SERVER_H

#include <stddef.h>

struct config_list;
struct gateway;
struct http_server;

/* Bind and serve.  Returns NULL with err filled when it cannot listen. */
struct http_server *http_server_start(struct gateway *gw, char *err, size_t errlen);

/* SIGHUP: load the certificate and key again.  Returns 1 reloaded, 0 TLS
 * is off, -1 with err (the old ones stay). */
int http_server_reload_tls(struct http_server *hs, const char *cert, const char *key,
    char *err, size_t errlen);

/* SIGHUP: the admin API's keys.  Returns 0, -1 (the old ones stay). */
int http_server_set_admin_keys(struct http_server *hs, const struct config_list *keys);

/* Stop accepting new connections (shutdown); existing ones go on. */
void http_server_stop_listening(struct http_server *hs);

/* Frees evhttp and with it any connection still open. */
void http_server_free(struct http_server *hs);

#endif
