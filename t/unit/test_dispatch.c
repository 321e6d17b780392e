/* test_dispatch.c - the dispatcher on a real loop (no broker): ready items
 * put back in the broker's order, fan-out to a user's connections or to
 * everyone, consecutive broadcasts of one pass written as one batch, and
 * the ack of each delivery only once every target connection has written
 * its frame (or had none).  The test plays the workers (readyq, through
 * worker_prepare) and the consumer (ackq). */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ack_window.h"
#include "dispatch.h"
#include "loop_fixture.h"
#include "tap.h"

struct peer_c {
	const char *user;
	struct fx_client *c;
};

/* Read the text frames c gets until it has want of them or none comes for
 * a while; their bodies, joined with '|', into out. */
static unsigned texts(struct fx_client *c, unsigned want, char *out, size_t len, unsigned ms)
{
	struct fx_frame fr;
	unsigned n = 0;
	size_t o = 0;

	out[0] = '\0';
	while (n < want && fx_ws_read(c, &fr, ms)) {
		if (fr.opcode == 0x1) {
			o += (size_t)snprintf(out + o, o < len ? len - o : 0, "%s%s", n ? "|" : "", (char *)fr.payload);
			n++;
		}
		fx_frame_free(&fr);
	}
	return n;
}

static int by_tag(const void *x, const void *y)
{
	const struct ack_item *a = x, *b = y;

	return a->tag < b->tag ? -1 : a->tag > b->tag;
}

/* The acks' tags in increasing order (writers finish in any order; the
 * consumer's ack window copes), as "1,2,3"; a "!" marks a reject. */
static void tags(struct ack_item *a, size_t n, char *out, size_t len)
{
	size_t o = 0;

	qsort(a, n, sizeof(*a), by_tag);

	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(out + o, o < len ? len - o : 0, "%s%llu%s", i ? "," : "",
		    (unsigned long long)a[i].tag, a[i].kind == ACK_ACK ? "" : "!");
}

static void test_order_and_fan_out(struct fx *f, struct peer_c *p)
{
	struct ack_item a[16];
	size_t na = 0;
	char got[512], t[128];

	/* Workers finish out of order: 3 and 2 wait for 1. */
	fx_ready(f, 3, 103, "user.bob", "{\"m\":3}");
	fx_ready(f, 2, 102, "user.alice", "{\"m\":2}");
	FX_WAIT(f, 3000, dispatch_in_flight(f->gw.dispatch) == 2);
	ok(dispatch_in_flight(f->gw.dispatch) == 2, "later seqs are taken and held");
	fx_run_for(f, 30);
	ok(fx_acks(f, a, 16) == 0 && p[0].c->len == 0 && p[2].c->len == 0,
	    "nothing leaves before the seq before it");
	fx_ready(f, 1, 101, "user.alice", "{\"m\":1}");
	fx_wait_acks(f, a, &na, 3, 3000);
	tags(a, na, t, sizeof(t));
	ok(strcmp(t, "101,102,103") == 0 && dispatch_in_flight(f->gw.dispatch) == 0,
	    "each acked once written (%s)", t);
	for (int i = 0; i < 2; i++) {
		texts(p[i].c, 2, got, sizeof(got), 3000);
		ok(strcmp(got, "{\"m\":1}|{\"m\":2}") == 0, "alice's connection %d: 1 then 2, byte for byte (%s)", i, got);
	}
	ok(texts(p[2].c, 1, got, sizeof(got), 3000) == 1 && strcmp(got, "{\"m\":3}") == 0, "bob: 3 (%s)", got);
	ok(stats_get(&f->stats.delivered) == 5 && stats_get(&f->stats.undelivered) == 0,
	    "delivered counts frames: 2 + 2 + 1");

	/* A rejected delivery keeps its place: 5 waits for 4, which has no msg. */
	na = 0;
	fx_ready(f, 5, 105, "user.bob", "{\"m\":5}");
	fx_run_for(f, 30);
	ok(fx_acks(f, a, 16) == 0, "seq 5 waits for seq 4");
	fx_ready_rejected(f, 4);
	fx_wait_acks(f, a, &na, 1, 3000);
	ok(na == 1 && a[0].tag == 105 && texts(p[2].c, 1, got, sizeof(got), 3000) == 1,
	    "a rejected seq moves the order on; only the delivered one is acked here");

	/* Nobody to deliver to: acked at once, counted undelivered. */
	na = 0;
	fx_ready(f, 6, 106, "user.nobody", "{\"m\":6}");
	fx_wait_acks(f, a, &na, 1, 3000);
	ok(na == 1 && a[0].tag == 106 && stats_get(&f->stats.undelivered) == 1,
	    "no connection for the user: acked, counted undelivered");

	/* A user id from the body (routing key that does not decide). */
	na = 0;
	fx_ready(f, 7, 107, "other.key", "{\"user_id\":\"bob\",\"m\":7}");
	fx_wait_acks(f, a, &na, 1, 3000);
	ok(texts(p[2].c, 1, got, sizeof(got), 3000) == 1 && strstr(got, "\"m\":7") != NULL &&
	    p[0].c->len == 0, "routed by the body's user_id to bob only");
}

static void test_broadcasts(struct fx *f, struct peer_c *p, uint64_t seq)
{
	uint64_t batches = stats_get(&f->stats.broadcast_batches), delivered = stats_get(&f->stats.delivered);
	struct ack_item a[16];
	size_t na = 0;
	char got[512], t[128];

	/* Three broadcasts in one pass: one batch, three frames. */
	for (int i = 0; i < 3; i++) {
		char b[32];

		snprintf(b, sizeof(b), "{\"b\":%d}", i);
		fx_ready(f, seq + (uint64_t)i, 200 + (uint64_t)i, "broadcast", b);
	}
	fx_wait_acks(f, a, &na, 3, 3000);
	tags(a, na, t, sizeof(t));
	ok(strcmp(t, "200,201,202") == 0, "batch: each part acked (%s)", t);
	ok(stats_get(&f->stats.broadcast_batches) == batches + 1, "consecutive broadcasts of a pass: one batch");
	ok(stats_get(&f->stats.delivered) == delivered + 3 * 3, "delivered counts each part for each connection");
	for (int i = 0; i < 3; i++) {
		texts(p[i].c, 3, got, sizeof(got), 3000);
		ok(strcmp(got, "{\"b\":0}|{\"b\":1}|{\"b\":2}") == 0, "%s got three whole frames in order (%s)",
		    p[i].user, got);
	}

	/* A unicast between two broadcasts ends the run: no batch, order kept. */
	na = 0;
	fx_ready(f, seq + 3, 203, "broadcast", "{\"b\":3}");
	fx_ready(f, seq + 4, 204, "user.alice", "{\"u\":4}");
	fx_ready(f, seq + 5, 205, "broadcast", "{\"b\":5}");
	fx_wait_acks(f, a, &na, 3, 3000);
	tags(a, na, t, sizeof(t));
	ok(strcmp(t, "203,204,205") == 0 && stats_get(&f->stats.broadcast_batches) == batches + 1,
	    "broadcast, unicast, broadcast: three writes, no batch (%s)", t);
	texts(p[0].c, 3, got, sizeof(got), 3000);
	ok(strcmp(got, "{\"b\":3}|{\"u\":4}|{\"b\":5}") == 0, "alice: in seq order (%s)", got);
	texts(p[2].c, 2, got, sizeof(got), 3000);
	ok(strcmp(got, "{\"b\":3}|{\"b\":5}") == 0, "bob: the broadcasts only (%s)", got);
}

static bool behind(struct fx *f)
{
	/* Frames held by a writer, well more than the kernel could still
	 * take if its buffer grew: let libevent write what it can, then look
	 * again. */
	if (dispatch_in_flight(f->gw.dispatch) < 16)
		return false;
	fx_run_for(f, 20);
	return dispatch_in_flight(f->gw.dispatch) >= 16;
}

/* A delivery is acked when the last connection that holds its frame has
 * written it: one reader keeps up, the other does not read. */
static void test_ack_on_last_release(void)
{
	struct fx f;
	struct fx_client *slow, *fast;
	struct fx_frame fr;
	struct ack_item a[64];
	uint64_t seq = 1;
	size_t pushed, acked = 0, got_fast = 0, got_slow = 0;
	bool in_order = true;

	if (fx_start(&f, "ws_send_queue_max = 64M\nws_send_timeout = 60s\n") < 0) {
		ok(0, "fixture for the ack test");
		fx_stop(&f);
		return;
	}
	slow = fx_ws_open(&f, "gina", 4096);
	fast = fx_ws_open(&f, "gina", 0);
	fx_pause(slow, true);
	pushed = fx_fill(&f, "user.gina", 32768, &seq, 400, &acked, behind);
	fx_run_for(&f, 100);
	acked += fx_acks(&f, a, 64);
	ok(acked < pushed && acked + dispatch_in_flight(f.gw.dispatch) == pushed,
	    "frames the paused reader holds are not acked (%zu of %zu)", acked, pushed);
	while (got_fast < pushed && fx_ws_read(fast, &fr, 3000)) {
		got_fast += fr.opcode == 0x1 && fx_body_n(fr.payload) == got_fast + 1;
		fx_frame_free(&fr);
	}
	ok(got_fast == pushed, "the other connection has every frame already (%zu)", got_fast);
	fx_pause(slow, false);
	while (got_slow < pushed && fx_ws_read(slow, &fr, 3000)) {
		got_slow++;
		in_order = in_order && fr.opcode == 0x1 && fr.len == 32768 && fx_body_n(fr.payload) == got_slow;
		fx_frame_free(&fr);
	}
	for (uint64_t end = clock_now_ms() + 3000; acked < pushed && fx_step(&f, end);)
		acked += fx_acks(&f, a, 64);
	ok(got_slow == pushed && in_order, "once it reads, it gets every frame whole and in order");
	ok(acked == pushed && dispatch_in_flight(f.gw.dispatch) == 0 && stats_get(&f.stats.slow_disconnects) == 0,
	    "then every delivery is acked, nothing left in flight");
	fx_stop(&f);
}

int main(void)
{
	struct fx f;
	struct peer_c p[3] = { { "alice", NULL }, { "alice", NULL }, { "bob", NULL } };

	if (fx_start(&f, "") == 0) {
		for (int i = 0; i < 3; i++)
			p[i].c = fx_ws_open(&f, p[i].user, 0);
		if (p[0].c != NULL && p[1].c != NULL && p[2].c != NULL) {
			test_order_and_fan_out(&f, p);
			test_broadcasts(&f, p, 8);
		} else {
			ok(0, "three clients");
		}
	} else {
		ok(0, "fixture");
	}
	fx_stop(&f);
	test_ack_on_last_release();
	return done_testing();
}
