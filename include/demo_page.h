/* demo_page.h - the page GET / serves when demo = on: connect as a user (or
 * with a token), watch notifications arrive, send one with a push key.
 * One static HTML document; its one script is /notifyd.js, from notifyd. */
#ifndef NOTIFYD_DEMO_PAGE_H
#define NOTIFYD_DEMO_PAGE_H

#include <stddef.h>

extern const char demo_page_html[];
extern const size_t demo_page_len;

#endif
