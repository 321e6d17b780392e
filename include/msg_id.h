/* msg_id.h - the id a client sees on each notification in stream mode.
 *
 * Promises: an id is "<offset>-<check>": the message's offset in the shared
 * stream (decimal, no leading zero) and 8 lower-case hex digits of a hash
 * of its routing key and body.  Every instance computes the same id for the
 * same message, so a client may resume on any of them.  The check is the
 * epoch: a stream deleted and declared again reuses offsets, but an offset
 * names the same check only if it names the same message, so an id from
 * another stream or an earlier life of this one is told apart without any
 * state kept anywhere.  Clients treat ids as opaque strings.
 * Pure: no I/O, no allocation; any thread.
 */
#ifndef NOTIFYD_MSG_ID_H
#define NOTIFYD_MSG_ID_H

#include <stddef.h>
#include <stdint.h>

#define MSG_ID_MAX 32		/* 19 digits, '-', 8 hex digits, NUL: 29 */
#define MSG_OFFSET_MAX INT64_MAX	/* stream offsets are signed 64-bit */

uint32_t msg_id_check(const void *routing_key, size_t rk_len, const void *body, size_t len);

/* Writes the id and its NUL into out; returns its length. */
size_t msg_id_format(char out[MSG_ID_MAX], uint64_t offset, uint32_t check);

/* Reads an id of exactly len bytes.  Returns 0 with *offset and *check
 * set, or -1 when s is not an id this module writes (any other spelling of
 * the same numbers included: one message, one id). */
int msg_id_parse(const char *s, size_t len, uint64_t *offset, uint32_t *check);

#endif
