/* config.h - notifyd's settings: defaults, the key = value file, NOTIFYD_* overrides.
 *
 * Promises: config_defaults() alone gives a working local quickstart.  A file
 * line is "key = value" (value optionally in double quotes), blank, or a
 * comment starting with '#'.  Every key can be overridden by the environment
 * variable NOTIFYD_<KEY> (upper case), applied after the file.  Unknown keys,
 * duplicate keys and bad values are errors whose message names the file and
 * line (or the variable) and the key.  Durations accept "ms", "s", "m", "h"
 * suffixes (bare number: seconds); sizes accept "k", "M", "G" (powers of
 * 1024, bare number: bytes); booleans on/off, yes/no, true/false, 1/0.
 * Strings are owned by the struct and freed by config_free().
 */
#ifndef NOTIFYD_CONFIG_H
#define NOTIFYD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum config_auth { CONFIG_AUTH_NONE = 0, CONFIG_AUTH_JWT };
enum config_source { CONFIG_SOURCE_QUEUE = 0, CONFIG_SOURCE_STREAM };
enum config_log_format { CONFIG_LOG_KV = 0, CONFIG_LOG_JSON };
enum config_log_level { CONFIG_LOG_DEBUG = 0, CONFIG_LOG_INFO, CONFIG_LOG_WARN, CONFIG_LOG_ERROR };

#define CONFIG_LIST_MAX 32	/* entries in a comma-separated list */

struct config_list {
	size_t n;
	char *item[CONFIG_LIST_MAX];
};

struct config {
	/* HTTP / WebSocket listener */
	char *listen_address;		/* listen_address, "127.0.0.1" */
	uint16_t listen_port;		/* listen_port, 8081 */
	bool listen_reuseport;		/* listen_reuseport, off: SO_REUSEPORT, several processes on one port */
	uint32_t max_connections;	/* max_connections, 10000 */
	uint32_t handshake_timeout_ms;	/* handshake_timeout, 10s */
	struct config_list allowed_origins; /* allowed_origins, empty: browsers refused; "*": any */
	enum config_auth auth;		/* auth, none | jwt */
	uint32_t max_connections_per_user; /* max_connections_per_user, 0 (no limit) */
	uint32_t ip_connect_rate;	/* ip_connect_rate, 0 (off): new connections per second per IP */
	uint32_t max_connections_per_ip; /* max_connections_per_ip, 0 (no limit): open connections of any kind per IP */
	uint32_t max_http_connections;	/* max_http_connections, 10000: connections not (yet) WebSocket */
	bool health_show_errors;	/* health_show_errors, off: /health shows the broker's error text */

	/* JSON Web Tokens (auth = jwt) */
	char *jwt_algorithm;		/* jwt_algorithm, "HS256" */
	char *jwt_secret;		/* jwt_secret, "" (secret: HS*) */
	char *jwt_key_file;		/* jwt_key_file, "" (PEM public key: RS*, ES*, PS*) */
	char *jwt_issuer;		/* jwt_issuer, "" (not checked) */
	char *jwt_audience;		/* jwt_audience, "" (not checked) */
	char *jwt_user_claim;		/* jwt_user_claim, "sub" */
	uint32_t jwt_leeway_s;		/* jwt_leeway, 30s */
	bool jwt_require_exp;		/* jwt_require_exp, on */
	bool jwt_close_on_expiry;	/* jwt_close_on_expiry, on: close with 1008 when the token expires */

	/* TLS for clients */
	char *tls_cert_file;		/* tls_cert_file, "" (no TLS) */
	char *tls_key_file;		/* tls_key_file, "" */
	uint16_t tls_port;		/* tls_port, 0: TLS on listen_port itself when a certificate is set */

	/* message history (amqp_source = stream) */
	uint64_t history_max_bytes;	/* history_max_bytes, 64M: memory for recent messages (0: no history) */
	uint32_t history_max_age_s;	/* history_max_age, 1h: older messages leave the history */

	/* WebSocket connections */
	uint64_t ws_max_message_size;	/* ws_max_message_size, 64k: client -> server */
	uint32_t ws_ping_interval_ms;	/* ws_ping_interval, 30s */
	uint32_t ws_pong_timeout_ms;	/* ws_pong_timeout, 10s */
	uint64_t ws_send_queue_max;	/* ws_send_queue_max, 4M: unsent bytes per client */
	uint32_t ws_send_timeout_ms;	/* ws_send_timeout, 5s: age of the oldest unsent frame */
	bool ws_deflate;		/* ws_deflate, on: permessage-deflate (RFC 7692) when offered */
	uint64_t ws_deflate_min_size;	/* ws_deflate_min_size, 256: smaller notifications go as they are */

	/* broker */
	char *amqp_url;			/* amqp_url, "amqp://guest:guest@127.0.0.1:5672/" */
	char *amqp_exchange;		/* amqp_exchange, "notifications" */
	bool amqp_exchange_declare;	/* amqp_exchange_declare, on (off: passive check) */
	char *amqp_queue;		/* amqp_queue, "" -> "notifyd.<hostname>" after config_finish() */
	struct config_list amqp_bindings; /* amqp_bindings, extra binding keys, empty */
	char *amqp_dead_letter_exchange; /* amqp_dead_letter_exchange, "" (none) */
	uint32_t amqp_queue_expires_ms;	/* amqp_queue_expires, 24h: the queue goes after this long unused (0: never) */
	uint64_t amqp_queue_max_bytes;	/* amqp_queue_max_bytes, 1G: oldest dropped beyond (0: no cap) */
	enum config_source amqp_source;	/* amqp_source, queue | stream (one shared stream, message ids) */
	char *amqp_stream;		/* amqp_stream, "notifications.log" */
	uint32_t amqp_stream_max_age_s;	/* amqp_stream_max_age, 24h: retention by age (0: none) */
	uint64_t amqp_stream_max_bytes;	/* amqp_stream_max_bytes, 1G: retention by size (0: none) */
	uint32_t amqp_prefetch;		/* amqp_prefetch, 512 (1..65535) */
	uint32_t amqp_heartbeat_s;	/* amqp_heartbeat, 30s (0 disables; whole seconds) */
	uint32_t amqp_reconnect_min_ms;	/* amqp_reconnect_min, 500ms */
	uint32_t amqp_reconnect_max_ms;	/* amqp_reconnect_max, 30s */
	char *amqp_ca_file;		/* amqp_ca_file, "" (system CAs) for amqps:// */
	char *amqp_cert_file;		/* amqp_cert_file, "" (no client certificate) */
	char *amqp_key_file;		/* amqp_key_file, "" */
	bool amqp_verify_peer;		/* amqp_verify_peer, on */

	/* publishing over HTTP */
	struct config_list push_keys;	/* push_keys, "" (secret, each at least 16 characters;
					 * empty: POST /push answers 403) */
	uint32_t push_auth_fail_rate;	/* push_auth_fail_rate, 5: failed /push authentications
					 * per second per IP, then 429; 0: no limit */
	uint64_t push_max_body;		/* push_max_body, 1M */
	uint32_t push_timeout_ms;	/* push_timeout, 5s: wait for the broker's confirm */
	uint32_t push_max_batch;	/* push_max_batch, 1000 notifications per request */

	/* sessions: the admin API, the control plane, events to the backend */
	struct config_list admin_keys;	/* admin_keys, "" (secret, each at least 16 characters;
					 * empty: /users and /presence answer 403) */
	char *instance_name;		/* instance_name, "" -> "<hostname>:<listen_port>" */
	char *amqp_control_exchange;	/* amqp_control_exchange, "notifyd.control" (fanout) */
	uint32_t control_heartbeat_ms;	/* control_heartbeat, 5s: an instance silent 3 times this long is gone */
	uint32_t presence_timeout_ms;	/* presence_timeout, 1s: wait for other instances' answers */
	uint32_t revocation_max_age_s;	/* revocation_max_age, 24h: a revocation without an end lasts this long */
	char *events_exchange;		/* events_exchange, "" (no events): online, offline, undelivered */
	uint32_t events_offline_delay_ms; /* events_offline_delay, 5s: a user gone this long is offline */

	/* processing */
	uint32_t workers;		/* workers, 2 (1..64) */
	uint64_t max_message_size;	/* max_message_size, 1M: broker -> client body */
	uint32_t drain_timeout_ms;	/* drain_timeout, 10s */

	bool demo;			/* demo, off: GET / serves a page to try notifyd */

	/* logging */
	char *log_file;			/* log_file, "" (stderr); reopened on SIGHUP */
	enum config_log_level log_level; /* log_level, info */
	enum config_log_format log_format; /* log_format, kv | json */

	/* Not keys: what config_load_file() saw of the file it read. */
	const char *file_secret_key;	/* a key of the file holding a secret (jwt_secret,
					 * push_keys, an amqp_url password), NULL: none */
	uint32_t file_mode;		/* the file's permission bits */
	gid_t file_gid;			/* the file's group */
};

/* Fill every field with its default.  Returns 0, -1 on allocation failure. */
int config_defaults(struct config *c);

/* Read a config file over the current values.  On error returns -1 and
 * writes "FILE:LINE: KEY: what is wrong" (or "FILE: reason") into err. */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen);

/* Can others than the daemon read a secret in the file config_load_file()
 * read?  True when the file sets a secret and is readable by others, or by
 * a group other than own_gid (the daemon's: the packaged file is 0640
 * root:notifyd, which is right).  Pure: the caller warns. */
bool config_file_exposed(const struct config *c, gid_t own_gid);

/* Apply NOTIFYD_<KEY> variables from envp (NULL-terminated "NAME=value"
 * strings, like environ).  An unknown NOTIFYD_ variable is an error that
 * names it.  Returns 0 or -1 with err filled. */
int config_apply_env(struct config *c, char *const *envp, char *err, size_t errlen);

/* Cross-field checks and derived values (default queue name from the host
 * name, reconnect_min <= reconnect_max, pong_timeout < ping_interval ...).
 * Returns 0 or -1 with err filled. */
int config_finish(struct config *c, char *err, size_t errlen);

/* Set one key from a string, as the file and environment do.  Returns 0 or
 * -1 with a message ("KEY: what is wrong") in err.  Used by the loaders and
 * tests. */
int config_set(struct config *c, const char *key, const char *value, char *err, size_t errlen);

/* Print the effective configuration as a valid config file, one key per
 * line, with the password of amqp_url replaced by "***". */
void config_print(const struct config *c, FILE *out);

void config_free(struct config *c);

#endif
