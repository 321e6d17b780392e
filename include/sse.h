/* sse.h - the bytes of a text/event-stream (server-sent events, HTML
 * Living Standard 9.2) as notifyd writes them.
 *
 * Promises: an event is "event: <name>\n" when named, "id: <id>\n" when it
 * has one, one "data: " line per line of the data, and an empty line.
 * A body's line breaks (CRLF, CR or LF: all three end a line for
 * EventSource) split it into data lines, which EventSource joins with LF:
 * a JSON body arrives intact, except that a CRLF or CR between tokens
 * comes back as LF (inside JSON strings line breaks are escaped, so never
 * there).  An event without data (only an id) moves EventSource's last
 * event id without firing anything.  Pure: no I/O, no allocation.
 */
#ifndef NOTIFYD_SSE_H
#define NOTIFYD_SSE_H

#include <stddef.h>
#include <stdint.h>

#define SSE_KEEPALIVE ":\n\n"		/* a comment: keeps proxies from timing out */

/* Bytes of the event (event and id may be NULL; data may be empty). */
size_t sse_event_len(const char *event, const char *id, const uint8_t *data, size_t len);

/* Write it into dst (sse_event_len() bytes); returns that length. */
size_t sse_event_write(uint8_t *dst, const char *event, const char *id, const uint8_t *data, size_t len);

#endif
