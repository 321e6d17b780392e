/* history.h - the recent messages of the shared stream, for clients that
 * come back with the id of the last one they saw.
 *
 * Promises: holds every message this instance consumed (not only those of
 * users connected here, so a client may resume on any instance), in stream
 * order, each under its user or as a broadcast, plus "anchors" (positions
 * that are nobody's message: instances' start markers) so that an id is
 * known for every point of the stream.  Bounded by max_bytes (entries and
 * their frames) and max_age, oldest first; the newest entry always stays,
 * so that a client of an idle system never looks too old.  Knows where it
 * is complete: an id is resumable only when nothing after it was evicted
 * or missed, and then the replay holds exactly the user's messages and the
 * broadcasts after it, in order.  Event-loop thread only, except entries:
 * hist_entry_new() and the references may be taken on any thread.
 */
#ifndef NOTIFYD_HISTORY_H
#define NOTIFYD_HISTORY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "msg_id.h"

enum hist_kind { HIST_USER = 0, HIST_BROADCAST, HIST_ANCHOR };

struct hist_user;

struct hist_entry {
	atomic_uint refs;
	TAILQ_ENTRY(hist_entry) mates;	/* same user, or the broadcasts */
	struct hist_user *user;		/* HIST_USER, while in the history */
	uint64_t offset;
	uint64_t t_ms;			/* monotonic, when added */
	uint32_t check;
	uint8_t kind;			/* enum hist_kind */
	bool listed;			/* on a user's or the broadcast list */
	char id[MSG_ID_MAX];
	size_t frame_len;		/* the notifyd.v2 message frame (0: anchor) */
	uint8_t frame[];
};

/* A new entry with one reference (the caller's); the frame holds body.
 * NULL when out of memory. */
struct hist_entry *hist_entry_new(uint64_t offset, uint32_t check, enum hist_kind kind,
    const void *body, size_t len);
void hist_entry_ref(struct hist_entry *e);
void hist_entry_unref(struct hist_entry *e);
/* evbuffer_ref_cleanup_cb shape, for frames referenced into a buffer. */
void hist_entry_release(const void *data, size_t len, void *arg);

struct history;

struct history *history_new(uint64_t max_bytes, uint64_t max_age_ms);
void history_free(struct history *h);

/* Append e (offsets only grow: one at or below the newest is ignored) for
 * user (HIST_USER) and take a reference.  Returns 1 if added, 0 if not. */
int history_add(struct history *h, struct hist_entry *e, const char *user, size_t user_len,
    uint64_t now_ms);
/* Messages before offset may be missing (the stream lost them under us):
 * ids older than that cannot be resumed. */
void history_gap(struct history *h, uint64_t offset);
/* Drop entries older than max_age. */
void history_expire(struct history *h, uint64_t now_ms);

/* Replays are served once the history covers the stream up to the live
 * point (after the warm-up of a start). */
bool history_live(const struct history *h);
void history_set_live(struct history *h);

/* The newest entry, NULL when empty. */
const struct hist_entry *history_newest(const struct history *h);

enum hist_outcome {
	HIST_RESUMABLE = 0,
	HIST_TOO_OLD,		/* older than what is kept, or messages after it were lost */
	HIST_UNKNOWN_EPOCH,	/* not a message of this stream (another one, or re-created) */
	HIST_MALFORMED,		/* not an id at all */
	HIST_OUTCOMES
};
const char *hist_outcome_name(enum hist_outcome o);

/* May a client of user that saw id since[0..len) resume?  On
 * HIST_RESUMABLE *after is its offset. */
enum hist_outcome history_since(const struct history *h, const char *since, size_t len,
    const char *user, size_t user_len, uint64_t *after);

/* Is since an id beyond the newest entry (or is the history empty)?  Then
 * it may name a message this instance has not read yet (another instance
 * is ahead): worth waiting for, before calling it another stream's. */
bool history_ahead(const struct history *h, const char *since, size_t len);

enum hist_replay { HIST_REPLAY_DONE = 0, HIST_REPLAY_MORE, HIST_REPLAY_LOST };

/* Hand emit() the entries of user and the broadcasts with offsets above
 * *after, in order, moving *after along; stop when emit() returns false
 * (it took that entry but wants no more now).  DONE: nothing newer is
 * left; MORE: call again; LOST: entries after *after were evicted. */
enum hist_replay history_replay(const struct history *h, const char *user, size_t user_len,
    uint64_t *after, bool (*emit)(void *arg, struct hist_entry *e), void *arg);

struct history_stats {
	uint64_t bytes, entries, users, oldest_age_ms, evicted;
};
void history_get_stats(const struct history *h, uint64_t now_ms, struct history_stats *out);

#endif
