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
	ip_rate_free(off);
	return done_testing();
}
