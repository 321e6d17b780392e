/* envelope.h - the frames of subprotocol notifyd.v2, the one that carries
 * message ids and tells a resuming client what happened:
 *
 *   {"type":"message","id":"<id>","data":<the body as published>}
 *   {"type":"hello","id":"<id>"}                  a fresh connection
 *   {"type":"recovered","recovered":true,"count":N,"id":"<id>"}
 *   {"type":"recovered","recovered":false,"reason":"<why>","id":"<id>"}
 *
 * "id" in hello and recovered is where live delivery starts: the newest
 * message known when the connection went live (the client keeps it as its
 * last id).  Without ids (amqp_source = queue) the "id" members are left
 * out.  Each is built as a whole unmasked text frame, header included.
 * Pure: no I/O; only envelope_message_new() allocates.
 */
#ifndef NOTIFYD_ENVELOPE_H
#define NOTIFYD_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_STATUS_MAX 200	/* a hello or recovered frame, header included */

/* Bytes of the message frame for an id of id_len (0: no id) and a body. */
size_t envelope_message_len(size_t id_len, size_t body_len);

/* Write that frame into dst (envelope_message_len() bytes). */
void envelope_message_write(uint8_t *dst, const char *id, size_t id_len, const void *body,
    size_t body_len);

/* The body of a message frame written by envelope_message_write() with
 * an id: *len bytes at the returned pointer. */
const uint8_t *envelope_message_body(const uint8_t *frame, size_t frame_len, size_t id_len, size_t *len);

/* Status frames; id NULL or "" leaves "id" out.  reason NULL: recovered
 * true with count.  Return the frame's length. */
size_t envelope_hello(uint8_t out[ENVELOPE_STATUS_MAX], const char *id);
size_t envelope_recovered(uint8_t out[ENVELOPE_STATUS_MAX], const char *reason, uint64_t count,
    const char *id);
/* The hello object alone, as JSON text (for SSE's "hello" event); returns
 * its length. */
size_t envelope_hello_json(char out[ENVELOPE_STATUS_MAX], const char *id);

/* The recovered object alone, as JSON text (for SSE's "recovered" event);
 * returns its length. */
size_t envelope_recovered_json(char out[ENVELOPE_STATUS_MAX], const char *reason, uint64_t count,
    const char *id);

#endif
