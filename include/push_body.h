/* push_body.h - a POST /push body made into what the publisher sends.
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

struct config;
struct push_job;

/* Fill job->msgs and job->n from job->raw[0..raw_len).  Returns 0, or the
 * status to answer with (400, 413, or 503 out of memory) and *why; job is
 * then left for push_job_free(). */
int push_body_parse(const struct config *cfg, struct push_job *job, const char **why);

#endif
