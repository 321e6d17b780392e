/* push_body.h - a POST /push body made into what the publisher sends.
 *
 * A push_job is what crosses from the event loop (http_push) to the
 * publisher thread: the body as received, then its messages.
 *
 * Promises: the body is one JSON object or an array of 1..push_max_batch
 * of them, valid UTF-8, without an escaped NUL; each names its target
 * ("user_id" without '.', or "broadcast": true) and is at most
 * max_message_size once sent.  A single object is sent byte for byte (the
 * message points into the body, which the job keeps); a batch member is
 * printed anew.  Pure: the publisher thread calls it, so a 1 MB body is
 * parsed off the event loop, once.
 */
#ifndef NOTIFYD_PUSH_BODY_H
#define NOTIFYD_PUSH_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "target.h"

struct config;

struct push_msg {
	char routing_key[TARGET_ID_MAX + 8];	/* "user.<id>" or "broadcast" */
	size_t len;
	const char *body;			/* owned, or inside the job's raw */
	char *owned;				/* malloc'd body, or NULL */
};

/* raw is the request body as received; the publisher thread makes msgs
 * from it (push_body_parse) before publishing.  A single message's body
 * points into raw (owned NULL); a batch member's is its own. */
struct push_job {
	uint64_t id;
	char *raw;
	size_t raw_len;
	uint32_t n;
	struct push_msg *msgs;
};

/* Frees what the job holds (raw, msgs and their bodies); the job itself
 * is the caller's. */
void push_job_free(struct push_job *j);

/* Fill job->msgs and job->n from job->raw[0..raw_len).  Returns 0, or the
 * status to answer with (400, 413, or 503 out of memory) and *why; job is
 * then left for push_job_free(). */
int push_body_parse(const struct config *cfg, struct push_job *job, const char **why);

#endif
