/* Unit tests for ack_window: which frames settle which delivery tags. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "ack_window.h"
#include "tap.h"

#define MAXA 4096

/* What the broker would believe after the actions: per tag, 0 unsettled,
 * 1 acked, 2 rejected; -1 on a double settlement. */
static int apply(int *broker, uint64_t top, const struct ack_action *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i].multiple) {
			for (uint64_t t = 1; t <= a[i].tag && t <= top; t++)
				if (broker[t] == 0)
					broker[t] = 1;
		} else {
			if (broker[a[i].tag] != 0)
				return -1;
			broker[a[i].tag] = a[i].kind == ACK_REJECT ? 2 : 1;
		}
	}
	return 0;
}

static size_t collect_all(struct ack_window *w, struct ack_action *out)
{
	size_t n = 0, k;

	do {
		k = ack_window_collect(w, out + n, 3);
		n += k;
	} while (k == 3);
	return n;
}

static void test_in_order_one_multiple_ack(void)
{
	struct ack_window w;
	struct ack_action a[MAXA];
	size_t n;

	ack_window_init(&w, 100);
	for (uint64_t t = 1; t <= 10; t++)
		ack_window_delivered(&w, t);
	for (uint64_t t = 1; t <= 10; t++)
		ack_window_settle(&w, t, ACK_ACK);
	n = collect_all(&w, a);
	ok(n == 1 && a[0].tag == 10 && a[0].multiple == 1 && a[0].kind == ACK_ACK,
	    "ten in-order acks become one multiple ack of tag 10 (n=%zu)", n);
	ok(ack_window_outstanding(&w) == 0, "nothing outstanding afterwards");
	ack_window_free(&w);
}

static void test_gap_holds_multiple_ack(void)
{
	struct ack_window w;
	struct ack_action a[MAXA];
	size_t n;

	ack_window_init(&w, 100);
	for (uint64_t t = 1; t <= 5; t++)
		ack_window_delivered(&w, t);
	ack_window_settle(&w, 1, ACK_ACK);
	ack_window_settle(&w, 3, ACK_ACK);
	ack_window_settle(&w, 4, ACK_ACK);
	n = collect_all(&w, a);
	ok(n == 1 && a[0].tag == 1 && a[0].multiple, "only tag 1 is acked while 2 is pending");
	ack_window_settle(&w, 2, ACK_ACK);
	n = collect_all(&w, a);
	ok(n == 1 && a[0].tag == 4 && a[0].multiple, "settling 2 acks 2..4 in one frame");
	ok(ack_window_outstanding(&w) == 1, "tag 5 still outstanding");
	ack_window_free(&w);
}

static void test_reject_before_covering_ack(void)
{
	struct ack_window w;
	struct ack_action a[MAXA];
	int broker[16] = { 0 };
	size_t n;

	ack_window_init(&w, 100);
	for (uint64_t t = 1; t <= 4; t++)
		ack_window_delivered(&w, t);
	ack_window_settle(&w, 1, ACK_ACK);
	ack_window_settle(&w, 2, ACK_REJECT);
	ack_window_settle(&w, 3, ACK_ACK);
	n = collect_all(&w, a);
	ok(n == 2 && a[0].kind == ACK_REJECT && a[0].tag == 2 && !a[0].multiple,
	    "the reject goes first, alone");
	ok(n == 2 && a[1].kind == ACK_ACK && a[1].tag == 3 && a[1].multiple,
	    "then one multiple ack over 1..3");
	ok(apply(broker, 4, a, n) == 0 && broker[1] == 1 && broker[2] == 2 && broker[3] == 1 &&
	    broker[4] == 0, "broker view: 1 acked, 2 rejected, 3 acked, 4 outstanding");
	ack_window_free(&w);
}

static void test_pressure_individual_acks(void)
{
	struct ack_window w;
	struct ack_action a[MAXA];
	int broker[64] = { 0 };
	size_t n;

	ack_window_init(&w, 4);
	for (uint64_t t = 1; t <= 10; t++)
		ack_window_delivered(&w, t);
	for (uint64_t t = 2; t <= 4; t++)
		ack_window_settle(&w, t, ACK_ACK);
	n = collect_all(&w, a);
	ok(n == 0, "three acks behind a gap wait (pressure 4)");
	ack_window_settle(&w, 5, ACK_ACK);
	n = collect_all(&w, a);
	ok(n == 4 && !a[0].multiple && a[0].tag == 2 && a[3].tag == 5,
	    "the fourth triggers individual acks of 2..5 (n=%zu)", n);
	ok(apply(broker, 10, a, n) == 0, "no tag settled twice");
	ack_window_settle(&w, 1, ACK_ACK);
	n = collect_all(&w, a);
	ok(n == 1 && a[0].multiple && a[0].tag == 1, "closing the gap acks 1 (2..5 already sent)");
	ok(apply(broker, 10, a, n) == 0 && broker[1] == 1 && broker[6] == 0,
	    "broker view consistent; 6 untouched");
	ok(ack_window_outstanding(&w) == 5, "6..10 outstanding");
	ack_window_free(&w);
}

static void test_bad_verdicts_dropped(void)
{
	struct ack_window w;

	ack_window_init(&w, 8);
	ack_window_delivered(&w, 1);
	ok(ack_window_settle(&w, 2, ACK_ACK) < 0, "a tag never delivered is refused");
	ok(ack_window_settle(&w, 1, ACK_ACK) == 0, "a delivered tag is accepted");
	ok(ack_window_settle(&w, 1, ACK_ACK) < 0, "a second verdict on the same tag is refused");
	ack_window_reset(&w);
	ok(ack_window_settle(&w, 1, ACK_ACK) < 0, "after a reset (new channel) old tags are refused");
	ok(ack_window_delivered(&w, 1) == 0, "tags start at 1 again on the new channel");
	ack_window_free(&w);
}

static void test_growth_and_random_order(void)
{
	struct ack_window w;
	struct ack_action *a = malloc(sizeof(*a) * 20000);
	static int broker[5002];
	uint64_t order[5000];
	size_t total = 0;
	int dup = 0, missing = 0;
	unsigned seed = 42;

	ack_window_init(&w, 100000);
	for (uint64_t t = 1; t <= 5000; t++) {
		ack_window_delivered(&w, t);
		order[t - 1] = t;
	}
	for (int i = 4999; i > 0; i--) {
		int j = rand_r(&seed) % (i + 1);
		uint64_t tmp = order[i];

		order[i] = order[j];
		order[j] = tmp;
	}
	for (int i = 0; i < 5000; i++) {
		size_t n;

		ack_window_settle(&w, order[i], (order[i] % 7 == 0) ? ACK_REJECT : ACK_ACK);
		if (i % 50 == 0 || i == 4999) {
			n = collect_all(&w, a + total);
			if (apply(broker, 5000, a + total, n) < 0)
				dup++;
			total += n;
		}
	}
	for (int t = 1; t <= 5000; t++)
		if (broker[t] != (t % 7 == 0 ? 2 : 1))
			missing++;
	ok(dup == 0 && missing == 0, "5000 tags settled in random order through a window that grew: "
	    "each exactly once with its verdict (dup=%d wrong=%d)", dup, missing);
	ok(total < 5000, "fewer frames than tags (%zu)", total);
	ok(ack_window_outstanding(&w) == 0, "window empty at the end");
	ack_window_free(&w);
	free(a);
}

int main(void)
{
	test_in_order_one_multiple_ack();
	test_gap_holds_multiple_ack();
	test_reject_before_covering_ack();
	test_pressure_individual_acks();
	test_bad_verdicts_dropped();
	test_growth_and_random_order();
	return done_testing();
}
