/* Unit tests for the control plane's bookkeeping: strmap, sessions (bans
 * and revocations) and presence (instances, online/offline, who reports
 * undelivered).  Pure: time is passed in, what presence would publish is
 * recorded here. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "presence.h"
#include "sessions.h"
#include "strmap.h"
#include "tap.h"

struct rec {
	char log[4096];		/* "gossip:up:alice event:online:alice ..." */
	int undelivered;
};

static void rec_add(struct rec *r, const char *what, const char *a, const char *b)
{
	size_t n = strlen(r->log);

	snprintf(r->log + n, sizeof(r->log) - n, "%s%s:%s:%s", n ? " " : "", what, a, b);
}

static void on_gossip(void *arg, enum presence_gossip type, const char *user, size_t len, uint64_t since)
{
	static const char *const names[] = { "up", "linger", "gone" };

	(void)len;
	(void)since;
	rec_add(arg, "gossip", names[type], user);
}

static void on_event(void *arg, const char *type, const char *user, size_t len)
{
	(void)len;
	rec_add(arg, "event", type, user);
}

static void on_undelivered(void *arg, const struct presence_message *m)
{
	(void)m;
	((struct rec *)arg)->undelivered++;
}

static const char *take(struct rec *r)
{
	static char out[4096];

	memcpy(out, r->log, sizeof(out));
	r->log[0] = '\0';
	return out;
}

static bool count_one(void *arg, struct strmap_entry *e)
{
	(void)e;
	(*(int *)arg)++;
	return true;
}

static bool drop_odd(void *arg, struct strmap_entry *e)
{
	if (e->key[e->len - 1] % 2 == 1)
		strmap_remove(arg, e);
	return true;
}

static void test_strmap(void)
{
	struct strmap m;
	bool created;
	int n = 0, ok_all = 1;
	char k[16];

	ok(strmap_init(&m) == 0, "strmap: init");
	for (int i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		ok_all &= strmap_get(&m, k, strlen(k), &created) != NULL && created;
	}
	ok(ok_all && m.count == 1000 && m.nbuckets >= 1000, "strmap: 1000 keys, grown (%zu buckets)", m.nbuckets);
	ok(strmap_get(&m, "k7", 2, &created) != NULL && !created, "strmap: an existing key is found, not created");
	ok(strmap_find(&m, "k7x", 3) == NULL && strmap_find(&m, "k", 1) == NULL, "strmap: no prefix matches");
	strmap_each(&m, drop_odd, &m);
	strmap_each(&m, count_one, &n);
	ok(n == 500 && m.count == 500, "strmap: removing while iterating (%d left)", n);
	strmap_free(&m);
}

static void test_sessions(void)
{
	struct sessions *s = sessions_new();
	time_t until = 0;
	struct session_rule ban = { .kind = SESSION_BAN, .key = "mallory", .len = 7, .until = 1000 };
	struct session_rule ru = { .kind = SESSION_REVOKE_USER, .key = "dave", .len = 4, .before = 500, .until = 2000 };
	struct session_rule rj = { .kind = SESSION_REVOKE_JTI, .key = "tok-1", .len = 5, .until = 3000 };

	ok(sessions_add(s, &ban) == 0 && sessions_add(s, &ru) == 0 && sessions_add(s, &rj) == 0, "sessions: 3 rules");
	ok(sessions_check(s, "mallory", 7, NULL, 0, 999, &until) == SESSION_BANNED && until == 1000,
	   "a ban refuses the user until its end");
	ok(sessions_check(s, "mallory", 7, NULL, 0, 1000, &until) == SESSION_OK, "... and not at its end");
	ok(sessions_check(s, "mallor", 6, NULL, 0, 10, &until) == SESSION_OK, "a prefix of a banned user is not banned");
	ok(sessions_check(s, "dave", 4, "x", 499, 10, &until) == SESSION_REVOKED, "a user revocation refuses an older token");
	ok(sessions_check(s, "dave", 4, "x", 0, 10, &until) == SESSION_REVOKED, "... and one without iat");
	ok(sessions_check(s, "dave", 4, "x", 500, 10, &until) == SESSION_OK, "... not one issued since");
	ok(sessions_check(s, "erin", 4, "tok-1", 0, 2999, &until) == SESSION_REVOKED && until == 3000,
	   "a jti revocation refuses that token, whoever it names");
	ok(sessions_check(s, "erin", 4, "tok-10", 0, 2999, &until) == SESSION_OK, "another jti passes");
	ban.until = 500;
	sessions_add(s, &ban);
	ok(sessions_check(s, "mallory", 7, NULL, 0, 999, &until) == SESSION_BANNED && until == 1000,
	   "a shorter rule does not shorten a longer one");
	sessions_expire(s, 1500);
	ok(sessions_count(s) == 2, "expire frees what ended (%zu left)", sessions_count(s));
	sessions_free(s);
}

static void test_presence_single(void)
{
	struct rec r = { "", 0 };
	struct presence_out out = { on_gossip, on_event, on_undelivered, &r };
	struct presence *p = presence_new("a", &out, 1000, 500);
	struct presence_message m = { .user = "vic", .len = 3 };

	presence_local_up(p, "alice", 5, 0);
	ok(strcmp(take(&r), "event:online:alice gossip:up:alice") == 0, "first connection: online, and gossip");
	presence_local_down(p, "alice", 5, 100);
	presence_sweep(p, 900);
	ok(strcmp(take(&r), "gossip:linger:alice") == 0, "last close: linger, no event yet");
	presence_local_up(p, "alice", 5, 950);
	ok(strcmp(take(&r), "gossip:up:alice") == 0, "back within the delay (a reload): no event");
	presence_local_down(p, "alice", 5, 1000);
	presence_sweep(p, 1999);
	ok(strcmp(take(&r), "gossip:linger:alice") == 0, "gone again: nothing before the delay");
	presence_sweep(p, 2000);
	ok(strcmp(take(&r), "event:offline:alice gossip:gone:alice") == 0, "offline once the delay is over");
	presence_undelivered(p, &m, false, 2000);
	presence_undelivered(p, &m, true, 2000);
	ok(r.undelivered == 1, "alone: undelivered reported, not for a user connected here");
	presence_free(p);
}

static void test_presence_two(void)
{
	struct rec ra = { "", 0 }, rb = { "", 0 };
	struct presence_out oa = { on_gossip, on_event, on_undelivered, &ra };
	struct presence_out ob = { on_gossip, on_event, on_undelivered, &rb };
	struct presence *a = presence_new("a", &oa, 1000, 500), *b = presence_new("b", &ob, 1000, 500);
	struct presence_message m = { .user = "olga", .len = 4 };

	ok(presence_heard(a, "b", "B1", 0) && presence_heard(b, "a", "A1", 0), "a new instance is news");
	ok(!presence_heard(a, "b", "B1", 100), "its next heartbeat is not");
	ok(presence_live_instances(a, 100) == 2, "two live instances");
	/* olga opens on a, moves to b */
	presence_local_up(a, "olga", 4, 100);
	presence_remote(b, "a", "A1", GOSSIP_UP, "olga", 4, 100, 100);
	ok(strcmp(take(&ra), "event:online:olga gossip:up:olga") == 0, "online from a");
	presence_undelivered(b, &m, false, 150);
	ok(rb.undelivered == 0, "b: olga is connected on a, nothing to report");
	presence_local_down(a, "olga", 4, 200);
	presence_remote(b, "a", "A1", GOSSIP_LINGER, "olga", 4, 200, 200);
	presence_local_up(b, "olga", 4, 210);
	presence_remote(a, "b", "B1", GOSSIP_UP, "olga", 4, 210, 210);
	ok(strcmp(take(&rb), "gossip:up:olga") == 0, "b: lingering on a, so no online");
	presence_heard(a, "b", "B1", 900);
	presence_heard(b, "a", "A1", 900);
	presence_sweep(a, 1200);
	ok(strcmp(take(&ra), "gossip:linger:olga gossip:gone:olga") == 0, "a: connected on b, so no offline");
	/* undelivered: a is first by name */
	presence_local_down(b, "olga", 4, 1300);
	presence_remote(a, "b", "B1", GOSSIP_LINGER, "olga", 4, 1300, 1300);
	presence_undelivered(a, &m, false, 1310);
	presence_undelivered(b, &m, false, 1310);
	ok(ra.undelivered == 1 && rb.undelivered == 0, "connected nowhere: a reports, b does not");
	/* two lingers: the later one decides */
	take(&ra);
	take(&rb);
	presence_local_up(a, "kim", 3, 1400);
	presence_local_up(b, "kim", 3, 1400);
	presence_remote(a, "b", "B1", GOSSIP_UP, "kim", 3, 1400, 1400);
	presence_remote(b, "a", "A1", GOSSIP_UP, "kim", 3, 1400, 1400);
	presence_local_down(a, "kim", 3, 1500);
	presence_local_down(b, "kim", 3, 1600);
	presence_remote(a, "b", "B1", GOSSIP_LINGER, "kim", 3, 1600, 1600);
	presence_remote(b, "a", "A1", GOSSIP_LINGER, "kim", 3, 1500, 1600);
	presence_heard(a, "b", "B1", 1700);
	presence_heard(b, "a", "A1", 1700);
	presence_sweep(a, 2700);
	presence_sweep(b, 2700);
	ok(strstr(ra.log, "event:offline:kim") == NULL && strstr(rb.log, "event:offline:kim") != NULL,
	   "two lingers: only the later one (b) says offline [a: %s] [b: %s]", ra.log, rb.log);
	/* b goes silent: forgotten after 3 heartbeats, then a reports alone */
	presence_remote(a, "b", "B1", GOSSIP_UP, "zoe", 3, 2700, 2700);
	ok(presence_remote_instances(a, "zoe", 3) == 1, "zoe is on b");
	presence_sweep(a, 2700 + 1501);
	ok(presence_live_instances(a, 4201) == 1 && presence_remote_instances(a, "zoe", 3) == 0,
	   "a silent instance is forgotten, with its users");
	ok(presence_heard(a, "b", "B2", 4300), "b back with a new boot is news again");
	presence_bye(a, "b", "B2");
	ok(presence_live_instances(a, 4300) == 1, "a goodbye is gone at once");
	presence_free(a);
	presence_free(b);
}

int main(void)
{
	test_strmap();
	test_sessions();
	test_presence_single();
	test_presence_two();
	return done_testing();
}
