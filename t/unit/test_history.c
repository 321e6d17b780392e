/* Unit tests for history: resumable ids, replay order and completeness,
 * eviction by memory and age, gaps. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "tap.h"

#define NOW 1000000

struct sink {
	uint64_t offsets[4096];
	size_t n, stop_after;
};

static bool take(void *arg, struct hist_entry *e)
{
	struct sink *s = arg;

	s->offsets[s->n++] = e->offset;
	return s->stop_after == 0 || s->n % s->stop_after != 0;
}

static struct hist_entry *add(struct history *h, uint64_t off, enum hist_kind kind, const char *user,
    uint64_t now)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "{\"n\":%llu}", (unsigned long long)off);
	struct hist_entry *e = hist_entry_new(off, (uint32_t)off * 7u, kind, body, (size_t)n);

	if (e == NULL)
		return NULL;
	(void)history_add(h, e, user, user != NULL ? strlen(user) : 0, now);
	hist_entry_unref(e);	/* the history holds its own */
	return e;
}

static const char *id_of(uint64_t off, char buf[MSG_ID_MAX])
{
	msg_id_format(buf, off, (uint32_t)off * 7u);
	return buf;
}

static enum hist_outcome since(struct history *h, const char *id, const char *user, uint64_t *after)
{
	return history_since(h, id, strlen(id), user, strlen(user), after);
}

static void test_frame(void)
{
	struct hist_entry *e = hist_entry_new(42, 0xabc, HIST_USER, "{\"a\":\"\\n\"}", 10);
	const char want[] = "{\"type\":\"message\",\"id\":\"42-00000abc\",\"data\":{\"a\":\"\\n\"}}";

	ok(e != NULL && e->frame[0] == 0x81 && e->frame[1] == sizeof(want) - 1 &&
	    e->frame_len == 2 + sizeof(want) - 1 && memcmp(e->frame + 2, want, sizeof(want) - 1) == 0,
	    "the notifyd.v2 frame carries the id and the body as it is");
	hist_entry_unref(e);
	e = hist_entry_new(43, 1, HIST_ANCHOR, "{}", 2);
	ok(e != NULL && e->frame_len == 0 && strcmp(e->id, "43-00000001") == 0, "an anchor has an id, no frame");
	hist_entry_unref(e);
}

static void test_replay(void)
{
	struct history *h = history_new(1 << 20, 3600000);
	struct sink s = { .n = 0 };
	char id[MSG_ID_MAX];
	uint64_t after = 0;
	enum hist_replay r;

	add(h, 10, HIST_ANCHOR, NULL, NOW);
	for (uint64_t o = 11; o < 40; o++)
		add(h, o, o % 5 == 0 ? HIST_BROADCAST : HIST_USER, o % 2 ? "alice" : "bob", NOW);
	ok(since(h, id_of(10, id), "alice", &after) == HIST_RESUMABLE && after == 10,
	    "an anchor's id is resumable by anyone");
	r = history_replay(h, "alice", 5, &after, take, &s);
	{
		size_t want = 0, good = 1;

		for (uint64_t o = 11; o < 40; o++)
			if (o % 5 == 0 || o % 2 == 1) {
				good &= want < s.n && s.offsets[want] == o;
				want++;
			}
		ok(r == HIST_REPLAY_DONE && good && s.n == want,
		    "replay: alice's messages and the broadcasts after the id, in order (%zu)", s.n);
	}
	ok(since(h, id_of(12, id), "alice", &after) == HIST_UNKNOWN_EPOCH,
	    "bob's message id is not alice's to resume from");
	ok(since(h, id_of(13, id), "alice", &after) == HIST_RESUMABLE && after == 13, "alice's own id");
	msg_id_format(id, 13, 12345);
	ok(since(h, id, "alice", &after) == HIST_UNKNOWN_EPOCH, "right offset, wrong check: another epoch");
	ok(since(h, id_of(40, id), "alice", &after) == HIST_UNKNOWN_EPOCH, "an id from the future");
	ok(since(h, id_of(9, id), "alice", &after) == HIST_TOO_OLD, "an id before the history");
	ok(since(h, "garbage", "alice", &after) == HIST_MALFORMED, "garbage");
	{
		char next[MSG_ID_MAX], newest[MSG_ID_MAX];

		id_of(40, next);
		id_of(39, newest);
		ok(history_ahead(h, next, strlen(next)) && !history_ahead(h, newest, strlen(newest)) &&
		    !history_ahead(h, "garbage", 7), "ahead: only a well-formed id beyond the newest");
	}
	ok(since(h, id_of(39, id), "alice", &after) == HIST_RESUMABLE && after == 39 &&
	    history_replay(h, "alice", 5, &after, take, &s) == HIST_REPLAY_DONE, "the newest id: nothing to replay");

	/* Paced: emit asks to stop every 3; each call goes on where it stopped. */
	s.n = 0;
	s.stop_after = 3;
	after = 10;
	while ((r = history_replay(h, "alice", 5, &after, take, &s)) == HIST_REPLAY_MORE)
		;
	ok(r == HIST_REPLAY_DONE && s.n == 17 && s.offsets[16] == 39, "replay in steps gives the same (%zu)", s.n);
	history_free(h);
}

static void test_eviction(void)
{
	struct history *h = history_new(4096, 1000);
	struct history_stats st;
	struct sink s = { .n = 0, .stop_after = 2 };
	char id[MSG_ID_MAX];
	uint64_t after = 0, first_kept;

	for (uint64_t o = 100; o < 200; o++)
		add(h, o, HIST_USER, "carol", NOW);
	history_get_stats(h, NOW, &st);
	ok(st.bytes <= 4096 && st.entries > 1 && st.entries < 100 && st.evicted == 100 - st.entries,
	    "memory bound: %llu entries in %llu bytes", (unsigned long long)st.entries,
	    (unsigned long long)st.bytes);
	first_kept = 200 - st.entries;
	ok(since(h, id_of(first_kept - 1, id), "carol", &after) == HIST_TOO_OLD, "evicted: too old");
	ok(since(h, id_of(first_kept, id), "carol", &after) == HIST_RESUMABLE, "the oldest kept resumes");

	/* Evicted under a paced replay: LOST, never a silent skip. */
	after = first_kept;
	ok(history_replay(h, "carol", 5, &after, take, &s) == HIST_REPLAY_MORE, "replay paused");
	for (uint64_t o = 200; o < 260; o++)
		add(h, o, HIST_USER, "carol", NOW);
	ok(history_replay(h, "carol", 5, &after, take, &s) == HIST_REPLAY_LOST, "what it needed went: lost");

	history_expire(h, NOW + 999);
	history_get_stats(h, NOW + 999, &st);
	ok(st.entries > 1, "not yet too old");
	history_expire(h, NOW + 1001);
	history_get_stats(h, NOW + 1001, &st);
	ok(st.entries == 1 && st.users == 1, "past max_age only the newest stays");
	ok(since(h, id_of(259, id), "carol", &after) == HIST_RESUMABLE,
	    "an idle system: the newest id still resumes");
	history_free(h);
}

static void test_gap(void)
{
	struct history *h = history_new(1 << 20, 3600000);
	char id[MSG_ID_MAX];
	uint64_t after = 0;

	for (uint64_t o = 1; o <= 10; o++)
		add(h, o, HIST_BROADCAST, NULL, NOW);
	history_gap(h, 20);
	for (uint64_t o = 20; o <= 25; o++)
		add(h, o, HIST_BROADCAST, NULL, NOW);
	ok(since(h, id_of(5, id), "dave", &after) == HIST_TOO_OLD, "before a gap: too old");
	ok(since(h, id_of(20, id), "dave", &after) == HIST_RESUMABLE, "after the gap: fine");
	ok(add(h, 25, HIST_BROADCAST, NULL, NOW) != NULL && history_newest(h)->offset == 25,
	    "an offset seen already is not added twice");
	history_free(h);
}

int main(void)
{
	test_frame();
	test_replay();
	test_eviction();
	test_gap();
	return done_testing();
}
