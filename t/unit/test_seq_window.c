/* Unit tests for seq_window: the ring under the ack window, the reorder
 * buffer and the publisher's confirm window. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "seq_window.h"
#include "tap.h"

enum { WAIT = 1, DONE = 2 };	/* DONE and above are settled below */

/* Pop everything settled; returns how many, stores seqs and items. */
static size_t pop_all(struct seq_window *w, uint64_t *seqs, void **items, size_t max)
{
	uint64_t s;
	uint8_t st;
	void *it;
	size_t n = 0;

	while (n < max && seq_window_pop(w, &s, &st, &it)) {
		seqs[n] = s;
		if (items != NULL)
			items[n] = it;
		n++;
	}
	return n;
}

static void test_in_order(void)
{
	struct seq_window w;
	uint64_t s[8];
	size_t n;

	ok(seq_window_init(&w, 10, false, DONE, 1) == 0, "init");
	ok(w.mask == 15, "capacity rounded up to a power of two (mask %zu)", w.mask);
	for (uint64_t q = 1; q <= 4; q++)
		seq_window_add(&w, q, WAIT, NULL);
	ok(seq_window_span(&w) == 4 && w.base == 1 && w.next == 5, "four added: base 1, next 5");
	ok(!seq_window_pop(&w, NULL, NULL, NULL), "nothing settled, nothing pops");
	for (uint64_t q = 1; q <= 4; q++)
		seq_window_set(&w, q, DONE);
	n = pop_all(&w, s, NULL, 8);
	ok(n == 4 && s[0] == 1 && s[3] == 4, "settled in order: all four pop, in order (n=%zu)", n);
	ok(seq_window_span(&w) == 0 && w.base == 5, "window empty, base 5");
	seq_window_free(&w);
}

static void test_out_of_order_settle(void)
{
	struct seq_window w;
	uint64_t s[16];
	uint8_t st = 0;
	size_t n;

	seq_window_init(&w, 16, false, DONE, 1);
	for (uint64_t q = 1; q <= 8; q++)
		seq_window_add(&w, q, WAIT, NULL);
	seq_window_set(&w, 3, DONE);
	seq_window_set(&w, 2, DONE + 1);
	seq_window_set(&w, 5, DONE);
	n = pop_all(&w, s, NULL, 16);
	ok(n == 0, "2, 3 and 5 settled while 1 waits: nothing pops");
	seq_window_set(&w, 1, DONE);
	n = pop_all(&w, s, NULL, 16);
	ok(n == 3 && s[0] == 1 && s[1] == 2 && s[2] == 3, "settling 1 releases 1..3 only (n=%zu)", n);
	ok(w.base == 4 && seq_window_state(&w, 5) == DONE, "4 still waits, 5 keeps its state");
	seq_window_set(&w, 4, DONE + 1);
	ok(seq_window_pop(&w, NULL, &st, NULL) && st == DONE + 1, "pop reports the state (%u)", st);
	ok(seq_window_pop(&w, NULL, &st, NULL) && st == DONE, "then 5");
	ok(!seq_window_pop(&w, NULL, NULL, NULL) && w.base == 6, "then 6 stops it");
	seq_window_free(&w);
}

static void test_out_of_order_add_items(void)
{
	struct seq_window w;
	int v[8];
	uint64_t s[8];
	void *it[8];
	size_t n;

	/* The reorder buffer's use: adding is settling, in any order. */
	seq_window_init(&w, 4, true, 1, 1);
	ok(seq_window_add(&w, 3, 1, &v[3]) == 0, "seq 3 added before 1 and 2");
	ok(w.next == 4 && seq_window_state(&w, 1) == 0 && seq_window_item(&w, 1) == NULL,
	    "next is 4; the gap has no state and no item");
	ok(seq_window_add(&w, 2, 1, NULL) == 0, "seq 2 with a NULL item");
	ok(pop_all(&w, s, it, 8) == 0, "nothing pops while 1 is missing");
	ok(seq_window_item(&w, 3) == &v[3], "item of 3 readable in place");
	ok(seq_window_add(&w, 1, 1, &v[1]) == 0, "then seq 1");
	n = pop_all(&w, s, it, 8);
	ok(n == 3 && it[0] == &v[1] && it[1] == NULL && it[2] == &v[3] && s[2] == 3,
	    "1, 2, 3 pop in seq order with their items (n=%zu)", n);
	seq_window_free(&w);
}

static void test_refusals(void)
{
	struct seq_window w;

	seq_window_init(&w, 16, false, DONE, 1);
	seq_window_add(&w, 1, WAIT, NULL);
	seq_window_add(&w, 3, WAIT, NULL);
	ok(seq_window_add(&w, 3, WAIT, NULL) == SEQ_WINDOW_REFUSED, "a seq added twice is refused");
	ok(seq_window_add(&w, 5, 0, NULL) == SEQ_WINDOW_REFUSED && w.next == 4,
	    "state 0 is refused, next unchanged");
	ok(seq_window_set(&w, 2, DONE) == SEQ_WINDOW_REFUSED, "set on a gap (never added) is refused");
	ok(seq_window_set(&w, 4, DONE) == SEQ_WINDOW_REFUSED, "set beyond next is refused");
	ok(seq_window_set(&w, 1, 0) == SEQ_WINDOW_REFUSED, "set to state 0 is refused");
	seq_window_set(&w, 1, DONE);
	ok(seq_window_pop(&w, NULL, NULL, NULL), "1 pops");
	ok(seq_window_add(&w, 1, WAIT, NULL) == SEQ_WINDOW_REFUSED, "a popped seq cannot come back");
	ok(seq_window_set(&w, 1, DONE) == SEQ_WINDOW_REFUSED && seq_window_state(&w, 1) == 0,
	    "nor be set; its state reads 0");
	ok(seq_window_add(&w, UINT64_MAX, WAIT, NULL) == SEQ_WINDOW_REFUSED,
	    "the last seq is refused (next would wrap to 0)");
	ok(seq_window_add(&w, w.base + (UINT64_C(1) << 62), WAIT, NULL) == SEQ_WINDOW_NOMEM &&
	    w.mask == 15 && w.next == 4, "an absurd span fails for memory, window unchanged");
	ok(seq_window_add(&w, 2, WAIT, NULL) == 0 && seq_window_state(&w, 2) == WAIT,
	    "the gap below next can still be filled once");
	seq_window_free(&w);
}

static void test_growth_across_boundary(void)
{
	struct seq_window w;
	int v[64];
	int bad = 0;
	uint64_t s[64];
	void *it[64];
	size_t n;

	seq_window_init(&w, 16, true, DONE, 1);
	/* Move base to 11, then fill 11..26: the window wraps the ring
	 * (indexes 11..15 then 0..10). */
	for (uint64_t q = 1; q <= 10; q++) {
		seq_window_add(&w, q, DONE, NULL);
		seq_window_pop(&w, NULL, NULL, NULL);
	}
	for (uint64_t q = 11; q <= 26; q++)
		seq_window_add(&w, q, WAIT, &v[q]);
	ok(w.mask == 15 && w.base == 11 && w.next == 27, "16 seqs wrapped in a 16-slot ring, no growth");
	ok(seq_window_add(&w, 27, WAIT, &v[27]) == 0 && w.mask == 31, "the 17th grows the ring to 32");
	ok(seq_window_add(&w, 60, WAIT, &v[60]) == 0 && w.mask == 63, "a seq 49 ahead grows it to 64");
	for (uint64_t q = 11; q <= 27; q++)
		if (seq_window_state(&w, q) != WAIT || seq_window_item(&w, q) != &v[q])
			bad++;
	ok(bad == 0, "every state and item survived the growth (%d wrong)", bad);
	ok(seq_window_state(&w, 28) == 0 && seq_window_state(&w, 59) == 0, "the new gap is empty");
	for (uint64_t q = 11; q <= 27; q++)
		seq_window_set(&w, q, DONE);
	n = pop_all(&w, s, it, 64);
	bad = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] != 11 + i || it[i] != &v[11 + i])
			bad++;
	ok(n == 17 && bad == 0, "11..27 pop in order with their items after growth (n=%zu)", n);
	ok(seq_window_reserve(&w, w.base + 200) == 0 && w.mask == 255, "reserve makes room ahead");
	for (uint64_t q = 61; q <= w.base + 200; q++)
		if (seq_window_add(&w, q, WAIT, NULL) != 0)
			bad++;
	ok(bad == 0 && w.mask == 255, "adds within the reservation do not grow");
	seq_window_free(&w);
}

static void test_find(void)
{
	struct seq_window w;

	seq_window_init(&w, 16, false, DONE, 1);
	for (uint64_t q = 1; q <= 12; q++) {
		seq_window_add(&w, q, DONE, NULL);
		seq_window_pop(&w, NULL, NULL, NULL);
	}
	/* base 13: the window 13..28 runs over the end of the ring (index 15
	 * is seq 15, index 0 is seq 16). */
	for (uint64_t q = 13; q <= 28; q++)
		seq_window_add(&w, q, WAIT, NULL);
	seq_window_set(&w, 14, DONE);
	seq_window_set(&w, 17, DONE);
	seq_window_set(&w, 28, DONE);
	ok(w.mask == 15 && seq_window_find(&w, 1, DONE) == 14, "find from below base starts at base");
	ok(seq_window_find(&w, 15, DONE) == 17, "find across the end of the ring");
	ok(seq_window_find(&w, 18, DONE) == 28, "find the last seq of a full ring");
	ok(seq_window_find(&w, 29, DONE) == 29 && seq_window_find(&w, 13, DONE + 1) == 29,
	    "nothing found: next");
	ok(seq_window_find(&w, 13, WAIT) == 13 && seq_window_find(&w, 14, WAIT) == 15,
	    "find skips other states");
	seq_window_free(&w);
}

static void test_index_wrap(void)
{
	struct seq_window w;
	uint64_t first = (UINT64_C(1) << 40) - 5, pops = 0, want = first;
	int order_ok = 1;

	/* Far more seqs than slots go through, from a start above 2^32: the
	 * ring is reused without growing, and seq & mask stays right. */
	seq_window_init(&w, 16, false, DONE, first);
	for (uint64_t q = first; q < first + 100000; q++) {
		uint64_t s;

		seq_window_add(&w, q, WAIT, NULL);
		if (q >= first + 10) {
			/* Settle 10 behind, two at a time, the later one first. */
			uint64_t a = q - 10;

			if ((a - first) % 2 == 1) {
				seq_window_set(&w, a, DONE);
				seq_window_set(&w, a - 1, DONE);
			}
		}
		while (seq_window_pop(&w, &s, NULL, NULL)) {
			if (s != want)
				order_ok = 0;
			want++;
			pops++;
		}
	}
	ok(w.mask == 15, "100000 seqs through a 16-slot ring without growth (mask %zu)", w.mask);
	ok(order_ok && pops == w.base - first && seq_window_span(&w) < 16,
	    "popped in order, span stayed bounded (%llu popped)", (unsigned long long)pops);
	seq_window_reset(&w, 1);
	ok(w.base == 1 && w.next == 1 && seq_window_state(&w, first + 99999) == 0 &&
	    seq_window_add(&w, 1, WAIT, NULL) == 0, "reset: everything forgotten, seqs start again at 1");
	seq_window_add(&w, 16, WAIT, NULL);
	for (uint64_t q = 2; q < 16; q++)
		if (seq_window_state(&w, q) != 0)
			order_ok = 0;
	ok(order_ok, "no state of the old seqs shows through the new window");
	seq_window_free(&w);
}

/* A reference: an array indexed by seq - 1, states and items, plus base. */
#define MODEL_SEQS 4096

struct model {
	uint8_t st[MODEL_SEQS + 1];
	void *it[MODEL_SEQS + 1];
	uint64_t base, next;
};

static uint64_t xs(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void test_model(void)
{
	static struct model m;
	static int tokens[MODEL_SEQS + 1];
	struct seq_window w;
	uint64_t x = 0x9e3779b97f4a7c15u;
	int mismatch = 0, steps = 0;
	size_t max_mask = 0;

	memset(&m, 0, sizeof(m));
	m.base = m.next = 1;
	seq_window_init(&w, 1, true, DONE, 1);
	for (steps = 0; steps < 300000 && m.base < MODEL_SEQS - 64 && !mismatch; steps++) {
		uint64_t r = xs(&x), op = r % 9, q;
		/* Seqs near the window, both sides, some far ahead to grow. */
		uint64_t span = (r >> 8) % 16 == 0 ? 60 : 12;

		q = m.base + (r >> 16) % (span + 4);
		q = q >= 3 ? q - 3 : q;
		if (q > MODEL_SEQS)
			q = MODEL_SEQS;
		if (op < 3) {
			uint8_t st = (uint8_t)(WAIT + (r >> 40) % 3);
			void *it = &tokens[q];
			int want = (q < m.base || m.st[q] != 0) ? SEQ_WINDOW_REFUSED : 0;
			int got = seq_window_add(&w, q, st, it);

			if (got != want)
				mismatch = 1;
			if (want == 0) {
				m.st[q] = st;
				m.it[q] = it;
				if (q >= m.next)
					m.next = q + 1;
			}
		} else if (op < 6) {
			uint8_t st = (uint8_t)(WAIT + (r >> 40) % 3);
			int want = (q < m.base || q >= m.next || m.st[q] == 0) ? SEQ_WINDOW_REFUSED : 0;

			if (seq_window_set(&w, q, st) != want)
				mismatch = 2;
			if (want == 0)
				m.st[q] = st;
		} else if (op == 8) {
			uint8_t st = (uint8_t)(WAIT + (r >> 40) % 3);
			uint64_t want = q < m.base ? m.base : q;

			while (want < m.next && m.st[want] != st)
				want++;
			if (want > m.next)
				want = m.next;
			if (seq_window_find(&w, q, st) != want)
				mismatch = 6;
		} else {
			uint64_t s = 0;
			uint8_t st = 0;
			void *it = NULL;
			bool want = m.base < m.next && m.st[m.base] >= DONE;
			bool got = seq_window_pop(&w, &s, &st, &it);

			if (got != want || (want && (s != m.base || st != m.st[m.base] || it != m.it[m.base])))
				mismatch = 3;
			if (want) {
				m.st[m.base] = 0;
				m.it[m.base] = NULL;
				m.base++;
			}
		}
		if (w.base != m.base || w.next != m.next)
			mismatch = 4;
		for (uint64_t t = m.base > 3 ? m.base - 3 : 1; t < m.next + 3 && t <= MODEL_SEQS; t++) {
			bool held = t >= m.base && t < m.next;

			if (seq_window_state(&w, t) != (held ? m.st[t] : 0) ||
			    seq_window_item(&w, t) != (held && m.st[t] != 0 ? m.it[t] : NULL))
				mismatch = 5;
		}
		if (w.mask > max_mask)
			max_mask = w.mask;
	}
	ok(!mismatch, "random add/set/pop/find agree with a reference model (%d steps, base %llu, "
	    "ring grew to %zu, mismatch %d)", steps, (unsigned long long)m.base, max_mask + 1, mismatch);
	ok(m.base > 1000 && max_mask >= 63, "the run went far and grew the ring");
	seq_window_free(&w);
}

int main(void)
{
	test_in_order();
	test_out_of_order_settle();
	test_out_of_order_add_items();
	test_refusals();
	test_growth_across_boundary();
	test_find();
	test_index_wrap();
	test_model();
	return done_testing();
}
