/* presence.h - who is online where: the other instances, their users, and
 * the decisions that follow (online/offline events, who reports an
 * undelivered notification).
 *
 * Promises, with the gossip the control plane carries between instances:
 * - An instance is known from its heartbeats; one silent for 3 heartbeats,
 *   one that said goodbye, or one that came back with a new boot loses
 *   everything it had announced.
 * - online: published once when a user's first connection in the cluster
 *   opens; offline once when a user has had no connection anywhere for
 *   linger_ms (a reload, or a move to another instance, publishes neither).
 *   While a user lingers on two instances, the later linger (by start
 *   time, then name) decides and the other stands down.
 * - undelivered: reported by exactly one instance when every instance's
 *   view agrees: the first live instance by name, for a user connected
 *   nowhere it knows of.
 * Pure bookkeeping: time is passed in, what to publish goes out through
 * struct presence_out.  Event-loop thread only.
 */
#ifndef NOTIFYD_PRESENCE_H
#define NOTIFYD_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct presence;

enum presence_gossip { GOSSIP_UP = 0, GOSSIP_LINGER, GOSSIP_GONE };

/* A unicast as published. */
struct presence_message {
	const char *user;
	size_t len;
	const char *routing_key;
	size_t rk_len;
	const uint8_t *body;
	size_t body_len;
	const char *id;		/* its message id, or NULL */
};

struct presence_out {
	/* Tell the other instances (type, user, when the state began). */
	void (*gossip)(void *arg, enum presence_gossip type, const char *user, size_t len, uint64_t since_ms);
	/* Tell the backend ("online", "offline"); NULL: events are off. */
	void (*event)(void *arg, const char *type, const char *user, size_t len);
	/* Tell the backend a notification reached nobody; NULL: off. */
	void (*undelivered)(void *arg, const struct presence_message *m);
	void *arg;
};

struct presence_instance {
	const char *name;
	uint64_t last_ms;	/* last heard of (for this one: now) */
	bool self;
};

#define PRESENCE_NAME_MAX 160
#define PRESENCE_BOOT_MAX 32

struct presence *presence_new(const char *self, const struct presence_out *out, uint32_t linger_ms,
    uint32_t heartbeat_ms);
void presence_free(struct presence *p);

/* This instance: a user's first connection here opened, its last closed. */
void presence_local_up(struct presence *p, const char *user, size_t len, uint64_t now_ms);
void presence_local_down(struct presence *p, const char *user, size_t len, uint64_t now_ms);

/* A heartbeat of another instance.  Returns true when the instance is new
 * or came back with another boot: it knows nothing of us yet. */
bool presence_heard(struct presence *p, const char *name, const char *boot, uint64_t now_ms);
/* An instance said goodbye. */
void presence_bye(struct presence *p, const char *name, const char *boot);
/* Another instance's gossip about one of its users. */
void presence_remote(struct presence *p, const char *name, const char *boot, enum presence_gossip type,
    const char *user, size_t len, uint64_t since_ms, uint64_t now_ms);

/* Ends lingers and forgets silent instances. */
void presence_sweep(struct presence *p, uint64_t now_ms);

/* A live unicast reached no connection here (connected_here: the user
 * has one that takes it later, e.g. replaying): reported through
 * out.undelivered when this instance is the one to. */
void presence_undelivered(const struct presence *p, const struct presence_message *m,
    bool connected_here, uint64_t now_ms);

/* Is the user connected on another live instance (for online counts)? */
uint32_t presence_remote_instances(const struct presence *p, const char *user, size_t len);

/* The live instances, this one included, sorted by name; fn's instance
 * lives only during the call. */
void presence_each_instance(const struct presence *p, uint64_t now_ms,
    void (*fn)(void *arg, const struct presence_instance *i), void *arg);
size_t presence_live_instances(const struct presence *p, uint64_t now_ms);

/* Every user of this instance as gossip (connected, and lingering), for an
 * instance that just appeared. */
void presence_each_local(const struct presence *p,
    void (*fn)(void *arg, enum presence_gossip type, const char *user, size_t len, uint64_t since_ms),
    void *arg);

#endif
