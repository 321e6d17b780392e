/* Unit tests for ip_rate: per-address token buckets. */
#include "autoconfig.h"

#include <stdio.h>

#include "ip_rate.h"
#include "tap.h"

int main(void)
{
	struct ip_rate *r = ip_rate_new(5);
	struct ip_rate *off = ip_rate_new(0);
	int allowed = 0;

	for (int i = 0; i < 10; i++)
		allowed += ip_rate_allow(r, "127.0.0.1", 1000);
	ok(allowed == 5, "a burst of 10 at one instant: 5 allowed (%d)", allowed);
	ok(ip_rate_allow(r, "127.0.0.2", 1000), "another address has its own bucket");
	ok(!ip_rate_allow(r, "127.0.0.1", 1100), "100 ms later: half a token, still refused");
	ok(ip_rate_allow(r, "127.0.0.1", 1200), "200 ms later: one token, allowed");
	allowed = 0;
	for (int i = 0; i < 20; i++)
		allowed += ip_rate_allow(r, "127.0.0.1", 60000);
	ok(allowed == 5, "after a long pause the bucket holds at most the burst (%d)", allowed);
	ok(ip_rate_expire(r, 60000, 10000) == 1, "the idle address is forgotten, the active one kept");
	ok(ip_rate_expire(r, 80000, 10000) == 0, "everything forgotten after idling");
	allowed = 0;
	for (int i = 0; i < 1000; i++)
		allowed += ip_rate_allow(off, "127.0.0.1", 5);
	ok(allowed == 1000, "rate 0 means no limit");
	ip_rate_free(r);

	/* peek: what allow would say, taking nothing (the /push failure
	 * limit asks before it counts). */
	r = ip_rate_new(2);
	ok(ip_rate_peek(r, "10.0.0.1", 1000), "peek: an unknown address may");
	ok(ip_rate_expire(r, 1000, 10000) == 0, "peek adds no entry");
	ok(ip_rate_allow(r, "10.0.0.1", 1000) && ip_rate_peek(r, "10.0.0.1", 1000),
	   "one of two taken: peek still says yes");
	ok(ip_rate_peek(r, "10.0.0.1", 1000) && ip_rate_peek(r, "10.0.0.1", 1000) &&
	   ip_rate_allow(r, "10.0.0.1", 1000), "peeking takes nothing: the second token is still there");
	ok(!ip_rate_peek(r, "10.0.0.1", 1000) && !ip_rate_allow(r, "10.0.0.1", 1000),
	   "both taken: peek and allow say no");
	ok(!ip_rate_peek(r, "10.0.0.1", 1499), "499 ms later: not yet a whole token");
	ok(ip_rate_peek(r, "10.0.0.1", 1500), "500 ms later (rate 2): one token again");
	ok(ip_rate_peek(r, "10.0.0.2", 1000), "another address is not affected");
	ip_rate_free(r);
	ok(ip_rate_peek(off, "10.0.0.1", 1), "rate 0: peek always yes");
	ok(ip_rate_peek(NULL, "10.0.0.1", 1), "no table: peek yes");
	ip_rate_free(off);
	return done_testing();
}
