#include "autoconfig.h"

#include "history.h"

#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "hash.h"

TAILQ_HEAD(hist_list, hist_entry);

struct hist_user {
	struct hist_user *hnext;
	struct hist_list entries;	/* oldest first */
	uint32_t hash;
	size_t id_len;
	char id[];
};

struct history {
	uint64_t max_bytes, max_age_ms;
	/* The log: a ring of every entry, oldest first, for lookups by offset. */
	struct hist_entry **ring;
	size_t cap, head, n;
	uint64_t bytes;
	/* Every message from this offset on is here (or was for nobody). */
	uint64_t complete_from;
	uint64_t evicted;
	bool live;
	struct hist_list broadcasts;
	struct hist_user **buckets;
	size_t nbuckets, nusers;
};

struct hist_entry *hist_entry_new(uint64_t offset, uint32_t check, enum hist_kind kind,
    const void *body, size_t len)
{
	char id[MSG_ID_MAX];
	size_t id_len = msg_id_format(id, offset, check);
	size_t flen = kind == HIST_ANCHOR ? 0 : envelope_message_len(id_len, len);
	struct hist_entry *e = malloc(sizeof(*e) + flen);

	if (e == NULL)
		return NULL;
	memset(e, 0, sizeof(*e));
	atomic_init(&e->refs, 1);
	e->offset = offset;
	e->check = check;
	e->kind = (uint8_t)kind;
	memcpy(e->id, id, id_len + 1);
	e->frame_len = flen;
	if (flen > 0)
		envelope_message_write(e->frame, id, id_len, body, len);
	return e;
}

void hist_entry_ref(struct hist_entry *e)
{
	atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

void hist_entry_unref(struct hist_entry *e)
{
	if (e != NULL && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
		free(e);
}

void hist_entry_release(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	hist_entry_unref(arg);
}

static size_t entry_size(const struct hist_entry *e)
{
	return sizeof(*e) + e->frame_len;
}

struct history *history_new(uint64_t max_bytes, uint64_t max_age_ms)
{
	struct history *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->max_bytes = max_bytes;
	h->max_age_ms = max_age_ms;
	TAILQ_INIT(&h->broadcasts);
	h->nbuckets = 64;
	h->buckets = calloc(h->nbuckets, sizeof(*h->buckets));
	if (h->buckets == NULL) {
		free(h);
		return NULL;
	}
	return h;
}

static struct hist_entry *ring_at(const struct history *h, size_t i)
{
	return h->ring[(h->head + i) % h->cap];
}

static struct hist_user **user_slot(const struct history *h, const char *id, size_t len, uint32_t hash)
{
	struct hist_user **p = &h->buckets[hash & (h->nbuckets - 1)];

	while (*p != NULL && !((*p)->hash == hash && (*p)->id_len == len && memcmp((*p)->id, id, len) == 0))
		p = &(*p)->hnext;
	return p;
}

static void users_grow(struct history *h)
{
	size_t nb = h->nbuckets * 2;
	struct hist_user **b = calloc(nb, sizeof(*b));

	if (b == NULL)
		return;		/* longer chains, still correct */
	for (size_t i = 0; i < h->nbuckets; i++)
		for (struct hist_user *u = h->buckets[i], *next; u != NULL; u = next) {
			next = u->hnext;
			u->hnext = b[u->hash & (nb - 1)];
			b[u->hash & (nb - 1)] = u;
		}
	free(h->buckets);
	h->buckets = b;
	h->nbuckets = nb;
}

static struct hist_user *user_get(struct history *h, const char *id, size_t len)
{
	uint32_t hash = hash_bytes(id, len);
	struct hist_user **p = user_slot(h, id, len, hash), *u;

	if (*p != NULL)
		return *p;
	u = malloc(sizeof(*u) + len + 1);
	if (u == NULL)
		return NULL;
	u->hnext = NULL;
	TAILQ_INIT(&u->entries);
	u->hash = hash;
	u->id_len = len;
	memcpy(u->id, id, len);
	u->id[len] = '\0';
	*p = u;
	h->nusers++;
	h->bytes += sizeof(*u) + len + 1;
	if (h->nusers > h->nbuckets)
		users_grow(h);
	return u;
}

static void user_drop(struct history *h, struct hist_user *u)
{
	struct hist_user **p = user_slot(h, u->id, u->id_len, u->hash);

	*p = u->hnext;
	h->nusers--;
	h->bytes -= sizeof(*u) + u->id_len + 1;
	free(u);
}

static void evict_oldest(struct history *h)
{
	struct hist_entry *e = h->ring[h->head];

	h->ring[h->head] = NULL;
	h->head = (h->head + 1) % h->cap;
	h->n--;
	h->bytes -= entry_size(e);
	h->evicted++;
	if (e->offset + 1 > h->complete_from)
		h->complete_from = e->offset + 1;
	if (e->listed) {
		if (e->kind == HIST_USER) {
			TAILQ_REMOVE(&e->user->entries, e, mates);
			if (TAILQ_EMPTY(&e->user->entries))
				user_drop(h, e->user);
		} else {
			TAILQ_REMOVE(&h->broadcasts, e, mates);
		}
	}
	e->user = NULL;
	hist_entry_unref(e);
}

static int ring_grow(struct history *h)
{
	size_t cap = h->cap ? h->cap * 2 : 1024;
	struct hist_entry **r = malloc(cap * sizeof(*r));

	if (r == NULL)
		return -1;
	for (size_t i = 0; i < h->n; i++)
		r[i] = ring_at(h, i);
	free(h->ring);
	h->ring = r;
	h->cap = cap;
	h->head = 0;
	return 0;
}

int history_add(struct history *h, struct hist_entry *e, const char *user, size_t user_len,
    uint64_t now_ms)
{
	if (h->n > 0 && e->offset <= ring_at(h, h->n - 1)->offset)
		return 0;
	if (h->n == h->cap && ring_grow(h) < 0) {
		if (h->n == 0)
			return 0;
		evict_oldest(h);	/* no memory: keep going with less */
	}
	if (h->n == 0 && h->complete_from < e->offset)
		h->complete_from = e->offset;	/* a start, or everything went */
	e->t_ms = now_ms;
	e->listed = false;
	e->user = NULL;
	if (e->kind == HIST_USER) {
		e->user = user_get(h, user, user_len);
		if (e->user != NULL) {
			TAILQ_INSERT_TAIL(&e->user->entries, e, mates);
			e->listed = true;
		} else {
			/* Out of memory: that user cannot resume past here. */
			h->complete_from = e->offset + 1;
		}
	} else if (e->kind == HIST_BROADCAST) {
		TAILQ_INSERT_TAIL(&h->broadcasts, e, mates);
		e->listed = true;
	}
	hist_entry_ref(e);
	h->ring[(h->head + h->n) % h->cap] = e;
	h->n++;
	h->bytes += entry_size(e);
	while (h->n > 1 && h->bytes > h->max_bytes)
		evict_oldest(h);
	return 1;
}

void history_gap(struct history *h, uint64_t offset)
{
	if (offset > h->complete_from)
		h->complete_from = offset;
}

void history_expire(struct history *h, uint64_t now_ms)
{
	while (h->n > 1 && now_ms - h->ring[h->head]->t_ms > h->max_age_ms)
		evict_oldest(h);
}

void history_free(struct history *h)
{
	if (h == NULL)
		return;
	while (h->n > 0)
		evict_oldest(h);
	free(h->ring);
	free(h->buckets);
	free(h);
}

bool history_live(const struct history *h)
{
	return h->live;
}

void history_set_live(struct history *h)
{
	h->live = true;
}

const struct hist_entry *history_newest(const struct history *h)
{
	return h->n > 0 ? ring_at(h, h->n - 1) : NULL;
}

const char *hist_outcome_name(enum hist_outcome o)
{
	static const char *const names[HIST_OUTCOMES] = {
		[HIST_RESUMABLE] = "recovered", [HIST_TOO_OLD] = "too_old",
		[HIST_UNKNOWN_EPOCH] = "unknown_epoch", [HIST_MALFORMED] = "malformed",
	};

	return (unsigned)o < HIST_OUTCOMES ? names[o] : "?";
}

/* The entry at offset, or NULL. */
static const struct hist_entry *find(const struct history *h, uint64_t offset)
{
	size_t lo = 0, hi = h->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct hist_entry *e = ring_at(h, mid);

		if (e->offset == offset)
			return e;
		if (e->offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

enum hist_outcome history_since(const struct history *h, const char *since, size_t len,
    const char *user, size_t user_len, uint64_t *after)
{
	const struct hist_entry *e;
	uint64_t off;
	uint32_t check;

	if (msg_id_parse(since, len, &off, &check) < 0)
		return HIST_MALFORMED;
	if (h->n == 0 || off > ring_at(h, h->n - 1)->offset)
		return HIST_UNKNOWN_EPOCH;
	if (off + 1 < h->complete_from || off < ring_at(h, 0)->offset)
		return HIST_TOO_OLD;
	e = find(h, off);
	/* Inside what is kept, yet not a message a client of this user could
	 * have seen: not from this stream's present life. */
	if (e == NULL || e->check != check ||
	    (e->kind == HIST_USER && (e->user == NULL || e->user->id_len != user_len ||
	    memcmp(e->user->id, user, user_len) != 0)))
		return HIST_UNKNOWN_EPOCH;
	*after = off;
	return HIST_RESUMABLE;
}

bool history_ahead(const struct history *h, const char *since, size_t len)
{
	uint64_t off;
	uint32_t check;

	if (msg_id_parse(since, len, &off, &check) < 0)
		return false;
	return h->n == 0 || off > ring_at(h, h->n - 1)->offset;
}

/* The first entry of list newer than after, walking back from the newest:
 * a resuming client is near the end. */
static struct hist_entry *first_after(const struct hist_list *list, uint64_t after)
{
	struct hist_entry *e = TAILQ_LAST(list, hist_list), *first = NULL;

	while (e != NULL && e->offset > after) {
		first = e;
		e = TAILQ_PREV(e, hist_list, mates);
	}
	return first;
}

enum hist_replay history_replay(const struct history *h, const char *user, size_t user_len,
    uint64_t *after, bool (*emit)(void *arg, struct hist_entry *e), void *arg)
{
	struct hist_user *const *slot;
	struct hist_entry *u = NULL, *b;

	if (*after + 1 < h->complete_from)
		return HIST_REPLAY_LOST;
	slot = user_slot(h, user, user_len, hash_bytes(user, user_len));
	if (*slot != NULL)
		u = first_after(&(*slot)->entries, *after);
	b = first_after(&h->broadcasts, *after);
	while (u != NULL || b != NULL) {
		struct hist_entry *e;
		bool more;

		if (b == NULL || (u != NULL && u->offset < b->offset)) {
			e = u;
			u = TAILQ_NEXT(u, mates);
		} else {
			e = b;
			b = TAILQ_NEXT(b, mates);
		}
		*after = e->offset;
		more = emit(arg, e);
		if (!more)
			return u != NULL || b != NULL ? HIST_REPLAY_MORE : HIST_REPLAY_DONE;
	}
	return HIST_REPLAY_DONE;
}

void history_get_stats(const struct history *h, uint64_t now_ms, struct history_stats *out)
{
	out->bytes = h->bytes;
	out->entries = h->n;
	out->users = h->nusers;
	out->evicted = h->evicted;
	out->oldest_age_ms = h->n > 0 ? now_ms - h->ring[h->head]->t_ms : 0;
}
