/* client_js.h - www/notifyd.js, the browser client, as notifyd serves it at
 * GET /notifyd.js (built into the binary by scripts/embed, so the page and
 * the daemon never disagree on the protocol). */
#ifndef NOTIFYD_CLIENT_JS_H
#define NOTIFYD_CLIENT_JS_H

#include <stddef.h>

extern const char notifyd_js[];
extern const size_t notifyd_js_len;

#endif
