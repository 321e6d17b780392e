/* Unit tests for conn_registry: connections by user and all of them. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "conn_registry.h"
#include "tap.h"

#define N 3000

static struct conn_links links[N];

static size_t count_all(const struct conn_registry *r)
{
	const struct conn_links *l;
	size_t n = 0;

	LIST_FOREACH(l, &r->all, all)
		n++;
	return n;
}

static uint32_t count_user(const struct conn_registry *r, const char *id)
{
	const struct user_entry *u = registry_find(r, id, strlen(id));
	const struct conn_links *l;
	uint32_t n = 0;

	if (u != NULL)
		LIST_FOREACH(l, &u->conns, mates)
			n++;
	return n;
}

int main(void)
{
	struct conn_registry r;
	char id[32];
	int bad = 0;

	if (registry_init(&r) < 0)
		return 1;
	ok(registry_count(&r) == 0 && registry_users(&r) == 0 && registry_find(&r, "a", 1) == NULL, "empty");
	/* 3,000 connections of 1,000 users: three each, enough to make the
	 * table grow several times. */
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "user-%d", i % 1000);
		bad += registry_attach(&r, &links[i], id, strlen(id)) != 0;
	}
	ok(bad == 0 && registry_count(&r) == N && registry_users(&r) == 1000, "3000 connections, 1000 users");
	ok(count_all(&r) == N, "iteration sees every connection once");
	ok(registry_user_count(&r, "user-7", 6) == 3 && count_user(&r, "user-7") == 3,
	    "a user's connections, counted and walked");
	ok(registry_user_count(&r, "user-", 5) == 0 && registry_user_count(&r, "user-70", 7) == 3,
	    "lookup is by the exact id (length included)");
	for (int i = 0; i < N; i += 3)
		registry_detach(&r, &links[i]);
	ok(registry_count(&r) == N - N / 3 && count_all(&r) == N - N / 3, "a third detached");
	ok(registry_users(&r) == 1000 && count_user(&r, "user-0") == 2, "users keep their other connections");
	registry_detach(&r, &links[1000]);
	registry_detach(&r, &links[2000]);
	ok(registry_find(&r, "user-0", 6) == NULL && registry_users(&r) == 999,
	    "a user with no connection left is gone");
	for (int i = 0; i < N; i++)
		if (i % 3 != 0 && i != 1000 && i != 2000)
			registry_detach(&r, &links[i]);
	ok(registry_count(&r) == 0 && registry_users(&r) == 0 && LIST_EMPTY(&r.all), "empty again");
	snprintf(id, sizeof(id), "again");
	ok(registry_attach(&r, &links[0], id, 5) == 0 && registry_user_count(&r, "again", 5) == 1,
	    "reusable after emptying");
	registry_detach(&r, &links[0]);
	registry_free(&r);
	return done_testing();
}
