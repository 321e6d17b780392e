/* test_config.c - the config file, NOTIFYD_* overrides, checks and printing. */
#include "autoconfig.h"
#include "config.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ERRLEN 512

/* Writes text to a fresh file under /tmp and returns its path in path. */
static int write_tmp(char *path, size_t len, const char *text, size_t textlen)
{
	int fd;

	snprintf(path, len, "/tmp/notifyd-test-config-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	if (write(fd, text, textlen) != (ssize_t)textlen) {
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

/* Loads text as a config file over c; path receives the file name used. */
static int load_n(struct config *c, const char *text, size_t textlen, char *path, char *err)
{
	int rc;

	err[0] = '\0';
	if (write_tmp(path, 64, text, textlen)) {
		snprintf(err, ERRLEN, "cannot write a temporary file");
		return -2;
	}
	rc = config_load_file(c, path, err, ERRLEN);
	unlink(path);
	return rc;
}

static int load(struct config *c, const char *text, char *path, char *err)
{
	return load_n(c, text, strlen(text), path, err);
}

/* Loads text over the defaults and expects an error equal to want, where
 * "%s" in want stands for the file's path. */
static void expect_file_error(const char *text, const char *want, const char *what)
{
	struct config c;
	char path[64], err[ERRLEN], full[ERRLEN];
	int rc;

	config_defaults(&c);
	rc = load(&c, text, path, err);
	/* want is not a format string: -Wformat-nonliteral */
	{
		const char *mark = strstr(want, "%s");

		if (mark)
			snprintf(full, sizeof full, "%.*s%s%s", (int)(mark - want), want, path, mark + 2);
		else
			snprintf(full, sizeof full, "%s", want);
	}
	ok(rc == -1 && strcmp(err, full) == 0, "%s: %s", what, err);
	if (strcmp(err, full) != 0)
		printf("# want: %s\n", full);
	config_free(&c);
}

/* s with control characters as \ooo, so that a TAP line stays one line. */
static const char *visible(const char *s, char *buf, size_t len)
{
	size_t n = 0;

	for (; *s && n + 5 < len; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f)
			n += (size_t)snprintf(buf + n, len - n, "\\%03o", ch);
		else
			buf[n++] = (char)ch;
	}
	buf[n] = '\0';
	return buf;
}

/* Sets key to value on the defaults and expects an error containing want. */
static void expect_set_error(const char *key, const char *value, const char *want)
{
	struct config c;
	char err[ERRLEN] = "", v1[ERRLEN], v2[ERRLEN];
	int rc;

	config_defaults(&c);
	rc = config_set(&c, key, value, err, sizeof err);
	ok(rc == -1 && strstr(err, want) != NULL, "%s = '%s' refused: %s", key, visible(value, v1, sizeof v1),
	   visible(err, v2, sizeof v2));
	config_free(&c);
}

static bool same_list(const struct config_list *a, const struct config_list *b)
{
	size_t i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->item[i], b->item[i]) != 0)
			return false;
	return true;
}

static bool same_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* The name of the first field that differs, or NULL; amqp_url is compared
 * with want_url. */
static const char *differ(const struct config *a, const struct config *b, const char *want_url)
{
#define CMP(f) do { if (a->f != b->f) return #f; } while (0)
#define CMPS(f) do { if (!same_str(a->f, b->f)) return #f; } while (0)
	CMPS(listen_address);
	CMP(listen_port);
	CMP(max_connections);
	CMP(handshake_timeout_ms);
	if (!same_list(&a->allowed_origins, &b->allowed_origins))
		return "allowed_origins";
	CMP(auth);
	CMP(ws_max_message_size);
	CMP(ws_ping_interval_ms);
	CMP(ws_pong_timeout_ms);
	CMP(ws_send_queue_max);
	CMP(ws_send_timeout_ms);
	if (!same_str(want_url, b->amqp_url))
		return "amqp_url";
	CMPS(amqp_exchange);
	CMP(amqp_exchange_declare);
	CMPS(amqp_queue);
	if (!same_list(&a->amqp_bindings, &b->amqp_bindings))
		return "amqp_bindings";
	CMPS(amqp_dead_letter_exchange);
	CMP(amqp_prefetch);
	CMP(amqp_heartbeat_s);
	CMP(amqp_reconnect_min_ms);
	CMP(amqp_reconnect_max_ms);
	CMP(workers);
	CMP(max_message_size);
	CMP(drain_timeout_ms);
	CMP(log_level);
	CMP(log_format);
	return NULL;
#undef CMP
#undef CMPS
}

/* ---- defaults ---------------------------------------------------------- */

static void test_defaults(void)
{
	struct config c;

	ok(config_defaults(&c) == 0, "config_defaults succeeds");
	ok(strcmp(c.listen_address, "127.0.0.1") == 0, "listen_address default");
	ok(c.listen_port == 8081, "listen_port default");
	ok(c.max_connections == 10000, "max_connections default");
	ok(c.handshake_timeout_ms == 10000, "handshake_timeout default 10s");
	ok(c.allowed_origins.n == 0, "allowed_origins default empty");
	ok(c.auth == CONFIG_AUTH_NONE, "auth default none");
	ok(c.ws_max_message_size == 64 * 1024, "ws_max_message_size default 64k");
	ok(c.ws_ping_interval_ms == 30000, "ws_ping_interval default 30s");
	ok(c.ws_pong_timeout_ms == 10000, "ws_pong_timeout default 10s");
	ok(c.ws_send_queue_max == 4 * 1024 * 1024, "ws_send_queue_max default 4M");
	ok(c.ws_send_timeout_ms == 5000, "ws_send_timeout default 5s");
	ok(strcmp(c.amqp_url, "amqp://guest:guest@127.0.0.1:5672/") == 0, "amqp_url default");
	ok(strcmp(c.amqp_exchange, "notifications") == 0, "amqp_exchange default");
	ok(c.amqp_exchange_declare == true, "amqp_exchange_declare default on");
	ok(c.amqp_queue && strcmp(c.amqp_queue, "") == 0, "amqp_queue default empty string");
	ok(c.amqp_bindings.n == 0, "amqp_bindings default empty");
	ok(c.amqp_dead_letter_exchange && strcmp(c.amqp_dead_letter_exchange, "") == 0,
	   "amqp_dead_letter_exchange default empty string");
	ok(c.amqp_prefetch == 512, "amqp_prefetch default");
	ok(c.amqp_queue_expires_ms == 24u * 3600 * 1000 && c.amqp_queue_max_bytes == 1024ull * 1024 * 1024,
	   "amqp_queue_expires 24h and amqp_queue_max_bytes 1G by default");
	ok(c.amqp_heartbeat_s == 30, "amqp_heartbeat default 30s");
	ok(c.amqp_reconnect_min_ms == 500, "amqp_reconnect_min default 500ms");
	ok(c.amqp_reconnect_max_ms == 30000, "amqp_reconnect_max default 30s");
	ok(c.workers == 2, "workers default");
	ok(c.max_message_size == 1024 * 1024, "max_message_size default 1M");
	ok(c.drain_timeout_ms == 10000, "drain_timeout default 10s");
	ok(c.log_level == CONFIG_LOG_INFO, "log_level default info");
	ok(c.log_format == CONFIG_LOG_KV, "log_format default kv");
	ok(c.push_keys.n == 0, "push_keys default empty");
	ok(c.push_auth_fail_rate == 5, "push_auth_fail_rate default 5");
	ok(c.file_secret_key == NULL && c.file_mode == 0, "no file read yet");

	config_free(&c);
	ok(c.listen_address == NULL && c.amqp_url == NULL && c.amqp_queue == NULL,
	   "config_free clears the string pointers");
	config_free(&c);
	ok(1, "config_free twice is safe");
}

/* The shipped etc/notifyd.conf must load and match the defaults, apart
 * from the documented difference: auth = jwt. */
static void test_shipped_file(void)
{
	struct config def, c;
	char err[ERRLEN] = "", path[4096];
	const char *srcdir = getenv("TEST_SRCDIR");
	const char *diff;

	if (srcdir) {
		snprintf(path, sizeof path, "%s/etc/notifyd.conf", srcdir);
	} else {
		/* run by hand: find the source tree from this file's name */
		const char *me = __FILE__, *tail = strstr(me, "t/unit/test_config.c");

		snprintf(path, sizeof path, "%.*setc/notifyd.conf", tail ? (int)(tail - me) : 0, me);
	}
	config_defaults(&def);
	config_defaults(&c);
	ok(config_load_file(&c, path, err, sizeof err) == 0, "etc/notifyd.conf loads: %s", err);
	/* The one documented difference: the shipped file is secure by default. */
	ok(c.auth == CONFIG_AUTH_JWT, "etc/notifyd.conf ships with auth = jwt");
	ok(config_finish(&c, err, sizeof err) == -1 && strstr(err, "jwt_secret") != NULL,
	   "... so it refuses to start until a secret or key is set: %s", err);
	c.auth = def.auth;
	diff = differ(&def, &c, def.amqp_url);
	ok(diff == NULL, "etc/notifyd.conf holds the defaults (differs in %s)", diff ? diff : "nothing");
	config_free(&def);
	config_free(&c);
}

/* ---- value types through config_set ------------------------------------ */

static void test_durations(void)
{
	struct config c;
	char err[ERRLEN];

	config_defaults(&c);
	ok(config_set(&c, "ws_ping_interval", "500ms", err, sizeof err) == 0 && c.ws_ping_interval_ms == 500,
	   "duration 500ms");
	ok(config_set(&c, "ws_ping_interval", "30s", err, sizeof err) == 0 && c.ws_ping_interval_ms == 30000,
	   "duration 30s");
	ok(config_set(&c, "ws_ping_interval", "2m", err, sizeof err) == 0 && c.ws_ping_interval_ms == 120000,
	   "duration 2m");
	ok(config_set(&c, "ws_ping_interval", "1h", err, sizeof err) == 0 && c.ws_ping_interval_ms == 3600000,
	   "duration 1h");
	ok(config_set(&c, "ws_ping_interval", "45", err, sizeof err) == 0 && c.ws_ping_interval_ms == 45000,
	   "bare duration is seconds");
	ok(config_set(&c, "ws_ping_interval", "007s", err, sizeof err) == 0 && c.ws_ping_interval_ms == 7000,
	   "leading zeros");
	ok(config_set(&c, "handshake_timeout", "4294967295ms", err, sizeof err) == 0
	   && c.handshake_timeout_ms == UINT32_MAX, "largest duration fits in uint32 ms");
	ok(config_set(&c, "drain_timeout", "0", err, sizeof err) == 0 && c.drain_timeout_ms == 0,
	   "drain_timeout may be 0");
	config_free(&c);

	expect_set_error("handshake_timeout", "4294967296ms", "must be between 1ms and 4294967295ms");
	expect_set_error("handshake_timeout", "4294968s", "must be between");
	expect_set_error("handshake_timeout", "99999999999999999999999h", "must be between");
	expect_set_error("handshake_timeout", "0", "must be between 1ms and");
	expect_set_error("ws_ping_interval", "1.5s", "not a duration");
	expect_set_error("ws_ping_interval", "-1s", "not a duration");
	expect_set_error("ws_ping_interval", "10x", "not a duration");
	expect_set_error("ws_ping_interval", "10S", "not a duration");
	expect_set_error("ws_ping_interval", "s", "not a duration");
	expect_set_error("ws_ping_interval", "", "not a duration");
	expect_set_error("ws_ping_interval", " 5s", "not a duration");
	expect_set_error("ws_ping_interval", "5 s", "not a duration");
}

static void test_heartbeat(void)
{
	struct config c;
	char err[ERRLEN];

	config_defaults(&c);
	ok(config_set(&c, "amqp_heartbeat", "0", err, sizeof err) == 0 && c.amqp_heartbeat_s == 0,
	   "heartbeat 0 disables");
	ok(config_set(&c, "amqp_heartbeat", "2000ms", err, sizeof err) == 0 && c.amqp_heartbeat_s == 2,
	   "heartbeat 2000ms is 2 s");
	ok(config_set(&c, "amqp_heartbeat", "1h", err, sizeof err) == 0 && c.amqp_heartbeat_s == 3600,
	   "heartbeat 1h is the maximum");
	ok(config_set(&c, "amqp_heartbeat", "15", err, sizeof err) == 0 && c.amqp_heartbeat_s == 15,
	   "heartbeat bare seconds");
	config_free(&c);
	expect_set_error("amqp_heartbeat", "1500ms", "whole number of seconds");
	expect_set_error("amqp_heartbeat", "3601", "must be between 0s and 1h");
	expect_set_error("amqp_heartbeat", "61m", "must be between 0s and 1h");
}

static void test_sizes(void)
{
	struct config c;
	char err[ERRLEN];

	config_defaults(&c);
	ok(config_set(&c, "ws_max_message_size", "125", err, sizeof err) == 0 && c.ws_max_message_size == 125,
	   "size 125 bytes");
	ok(config_set(&c, "ws_max_message_size", "64k", err, sizeof err) == 0
	   && c.ws_max_message_size == 65536, "size 64k");
	ok(config_set(&c, "ws_max_message_size", "2K", err, sizeof err) == 0
	   && c.ws_max_message_size == 2048, "size 2K");
	ok(config_set(&c, "ws_max_message_size", "64M", err, sizeof err) == 0
	   && c.ws_max_message_size == 64ull << 20, "size 64M is the maximum");
	ok(config_set(&c, "ws_send_queue_max", "1G", err, sizeof err) == 0 && c.ws_send_queue_max == 1ull << 30,
	   "size 1G");
	ok(config_set(&c, "ws_send_queue_max", "1k", err, sizeof err) == 0 && c.ws_send_queue_max == 1024,
	   "ws_send_queue_max 1k is the minimum");
	ok(config_set(&c, "max_message_size", "1", err, sizeof err) == 0 && c.max_message_size == 1,
	   "max_message_size 1 byte");
	config_free(&c);

	expect_set_error("ws_max_message_size", "124", "must be between 125 and 64M (got '124')");
	expect_set_error("ws_max_message_size", "67108865", "must be between 125 and 64M");
	expect_set_error("ws_send_queue_max", "1023", "must be between 1k and 1G");
	expect_set_error("ws_send_queue_max", "1025M", "must be between 1k and 1G");
	expect_set_error("max_message_size", "0", "must be between 1 and 64M");
	expect_set_error("max_message_size", "65M", "must be between 1 and 64M");
	expect_set_error("max_message_size", "99999999999999999999G", "must be between");
	expect_set_error("max_message_size", "4MB", "not a size");
	expect_set_error("max_message_size", "1T", "not a size");
	expect_set_error("max_message_size", "1.5M", "not a size");
	expect_set_error("max_message_size", "", "not a size");
}

static void test_numbers(void)
{
	struct config c;
	char err[ERRLEN];

	config_defaults(&c);
	ok(config_set(&c, "listen_port", "1", err, sizeof err) == 0 && c.listen_port == 1, "port 1");
	ok(config_set(&c, "listen_port", "65535", err, sizeof err) == 0 && c.listen_port == 65535, "port 65535");
	ok(config_set(&c, "workers", "64", err, sizeof err) == 0 && c.workers == 64, "workers 64");
	ok(config_set(&c, "workers", "1", err, sizeof err) == 0 && c.workers == 1, "workers 1");
	ok(config_set(&c, "max_connections", "10000000", err, sizeof err) == 0 && c.max_connections == 10000000,
	   "max_connections 10000000");
	ok(config_set(&c, "amqp_prefetch", "65535", err, sizeof err) == 0 && c.amqp_prefetch == 65535,
	   "amqp_prefetch 65535");
	config_free(&c);

	expect_set_error("listen_port", "0", "listen_port: must be between 1 and 65535 (got '0')");
	expect_set_error("listen_port", "65536", "must be between 1 and 65535");
	expect_set_error("listen_port", "99999999999999999999999", "must be between 1 and 65535");
	expect_set_error("listen_port", "80a", "not a whole number");
	expect_set_error("listen_port", "+80", "not a whole number");
	expect_set_error("listen_port", "-1", "not a whole number");
	expect_set_error("listen_port", "0x50", "not a whole number");
	expect_set_error("listen_port", "", "not a whole number");
	expect_set_error("workers", "0", "must be between 1 and 64");
	expect_set_error("workers", "65", "must be between 1 and 64");
	expect_set_error("max_connections", "10000001", "must be between 1 and 10000000");
	expect_set_error("amqp_prefetch", "65536", "must be between 1 and 65535");
	expect_set_error("amqp_prefetch", "0", "must be between 1 and 65535");
}

static void test_bools_enums(void)
{
	static const char *const yes[] = { "on", "yes", "true", "1", "ON", "Yes", "TRUE" };
	static const char *const no[] = { "off", "no", "false", "0", "OFF", "No", "False" };
	struct config c;
	char err[ERRLEN];
	size_t i;
	int good = 1;

	config_defaults(&c);
	for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		c.amqp_exchange_declare = false;
		if (config_set(&c, "amqp_exchange_declare", yes[i], err, sizeof err) || !c.amqp_exchange_declare)
			good = 0;
		if (config_set(&c, "amqp_exchange_declare", no[i], err, sizeof err) || c.amqp_exchange_declare)
			good = 0;
	}
	ok(good, "booleans on/off yes/no true/false 1/0 in any case");

	ok(config_set(&c, "auth", "jwt", err, sizeof err) == 0 && c.auth == CONFIG_AUTH_JWT, "auth jwt");
	ok(config_set(&c, "auth", "NONE", err, sizeof err) == 0 && c.auth == CONFIG_AUTH_NONE, "auth NONE");
	ok(config_set(&c, "log_level", "debug", err, sizeof err) == 0 && c.log_level == CONFIG_LOG_DEBUG,
	   "log_level debug");
	ok(config_set(&c, "log_level", "warn", err, sizeof err) == 0 && c.log_level == CONFIG_LOG_WARN,
	   "log_level warn");
	ok(config_set(&c, "log_level", "error", err, sizeof err) == 0 && c.log_level == CONFIG_LOG_ERROR,
	   "log_level error");
	ok(config_set(&c, "log_format", "json", err, sizeof err) == 0 && c.log_format == CONFIG_LOG_JSON,
	   "log_format json");
	ok(config_set(&c, "log_format", "kv", err, sizeof err) == 0 && c.log_format == CONFIG_LOG_KV,
	   "log_format kv");
	config_free(&c);

	expect_set_error("amqp_exchange_declare", "2", "must be on/off, yes/no, true/false or 1/0 (got '2')");
	expect_set_error("amqp_exchange_declare", "", "must be on/off");
	expect_set_error("amqp_exchange_declare", "enabled", "must be on/off");
	expect_set_error("auth", "basic", "auth: must be one of none, jwt (got 'basic')");
	expect_set_error("log_level", "warning", "must be one of debug, info, warn, error");
	expect_set_error("log_format", "xml", "must be one of kv, json");
}

static void test_lists(void)
{
	struct config c;
	char err[ERRLEN], many[CONFIG_LIST_MAX * 4 + 8] = "", item[8], big[300];
	int i;

	config_defaults(&c);
	ok(config_set(&c, "allowed_origins", " https://a.example , https://b.example,,\thttps://c ,", err,
		      sizeof err) == 0 && c.allowed_origins.n == 3
	   && strcmp(c.allowed_origins.item[0], "https://a.example") == 0
	   && strcmp(c.allowed_origins.item[1], "https://b.example") == 0
	   && strcmp(c.allowed_origins.item[2], "https://c") == 0,
	   "list items trimmed, empty items ignored");
	ok(config_set(&c, "allowed_origins", "*", err, sizeof err) == 0 && c.allowed_origins.n == 1
	   && strcmp(c.allowed_origins.item[0], "*") == 0, "a new list replaces the old one");
	ok(config_set(&c, "allowed_origins", " , ", err, sizeof err) == 0 && c.allowed_origins.n == 0,
	   "a list of empty items is empty");

	for (i = 0; i < CONFIG_LIST_MAX; i++) {
		snprintf(item, sizeof item, "%sk%d", i ? "," : "", i);
		strcat(many, item);
	}
	ok(config_set(&c, "amqp_bindings", many, err, sizeof err) == 0 && c.amqp_bindings.n == CONFIG_LIST_MAX
	   && strcmp(c.amqp_bindings.item[CONFIG_LIST_MAX - 1], "k31") == 0, "%d items accepted", CONFIG_LIST_MAX);
	strcat(many, ",one.more");
	ok(config_set(&c, "amqp_bindings", many, err, sizeof err) == -1 && strstr(err, "more than 32 items"),
	   "%d items refused: %.60s", CONFIG_LIST_MAX + 1, err);
	ok(c.amqp_bindings.n == CONFIG_LIST_MAX && strcmp(c.amqp_bindings.item[0], "k0") == 0,
	   "a refused list leaves the old one in place");

	memset(big, 'b', 256);
	big[256] = '\0';
	ok(config_set(&c, "amqp_bindings", big, err, sizeof err) == -1 && strstr(err, "longer than 255 bytes"),
	   "binding key over 255 bytes refused");
	big[255] = '\0';
	ok(config_set(&c, "amqp_bindings", big, err, sizeof err) == 0 && c.amqp_bindings.n == 1,
	   "binding key of 255 bytes accepted");
	config_free(&c);
	ok(c.amqp_bindings.n == 0 && c.allowed_origins.n == 0, "config_free empties lists");
}

static void test_strings(void)
{
	struct config c;
	char err[ERRLEN], big[300];

	config_defaults(&c);
	ok(config_set(&c, "amqp_exchange", "ex1", err, sizeof err) == 0
	   && config_set(&c, "amqp_exchange", "ex2", err, sizeof err) == 0 && strcmp(c.amqp_exchange, "ex2") == 0,
	   "a string replaces the old one (no leak under valgrind/asan)");
	ok(config_set(&c, "amqp_url", "amqps://u:p@h:5671/v", err, sizeof err) == 0
	   && strcmp(c.amqp_url, "amqps://u:p@h:5671/v") == 0, "amqps:// url");
	ok(config_set(&c, "amqp_queue", "", err, sizeof err) == 0 && strcmp(c.amqp_queue, "") == 0,
	   "amqp_queue may be empty");
	ok(config_set(&c, "amqp_dead_letter_exchange", "dlx", err, sizeof err) == 0
	   && strcmp(c.amqp_dead_letter_exchange, "dlx") == 0, "dead letter exchange");
	ok(config_set(&c, "listen_address", "::", err, sizeof err) == 0 && strcmp(c.listen_address, "::") == 0,
	   "listen_address ::");
	ok(config_set(&c, "amqp_queue", "tab\there", err, sizeof err) == 0, "a tab is not a control character here");
	ok(config_set(&c, "amqp_exchange", "", err, sizeof err) == -1 && strcmp(c.amqp_exchange, "ex2") == 0,
	   "refused string leaves the old value");
	memset(big, 'q', 256);
	big[256] = '\0';
	ok(config_set(&c, "amqp_queue", big, err, sizeof err) == -1 && strstr(err, "longer than 255 bytes"),
	   "queue name over 255 bytes refused");
	big[255] = '\0';
	ok(config_set(&c, "amqp_queue", big, err, sizeof err) == 0, "queue name of 255 bytes accepted");
	config_free(&c);

	expect_set_error("amqp_exchange", "", "amqp_exchange: must not be empty");
	expect_set_error("listen_address", "", "listen_address: must not be empty");
	expect_set_error("amqp_url", "http://u:secret@h/", "amqp_url: must start with amqp:// or amqps://");
	expect_set_error("amqp_url", "AMQP://u:p@h/", "must start with amqp://");
	expect_set_error("amqp_queue", "two\nlines", "amqp_queue: contains a control character");
	expect_set_error("amqp_queue", "del\x7f", "contains a control character");
	expect_set_error("no_such_key", "1", "no_such_key: unknown key");
	expect_set_error("Listen_Port", "1", "Listen_Port: unknown key");

	config_defaults(&c);
	ok(config_set(&c, "amqp_url", "http://user:s3cr3t@h/", err, sizeof err) == -1
	   && strstr(err, "s3cr3t") == NULL, "a refused amqp_url is not echoed: %s", err);
	ok(config_set(&c, "amqp_url", "amqp://user:s3cr3t@h/\001", err, sizeof err) == -1
	   && strstr(err, "s3cr3t") == NULL, "nor with a control character: %s", err);
	ok(config_set(&c, NULL, "x", err, sizeof err) == -1, "NULL key refused");
	ok(config_set(&c, "workers", "3", NULL, 0) == 0 && c.workers == 3, "err may be NULL");
	ok(config_set(&c, "workers", "x", NULL, 0) == -1, "err may be NULL on failure");
	ok(config_set(&c, "workers", "x", err, 8) == -1 && strlen(err) == 7, "long message truncated to errlen");
	config_free(&c);
}

/* ---- files ------------------------------------------------------------- */

static void test_good_file(void)
{
	static const char text[] =
		"# notifyd test config\n"
		"\n"
		"   # indented comment\n"
		"listen_address=0.0.0.0\n"
		"\tlisten_port\t=\t9000\t\n"
		"max_connections = 50000\n"
		"handshake_timeout = 2500ms\n"
		"allowed_origins = https://a.example, https://b.example\n"
		"auth = none\n"
		"ws_max_message_size = 128k\n"
		"ws_ping_interval = 1m\n"
		"ws_pong_timeout = 20s\n"
		"ws_send_queue_max = 8M\n"
		"ws_send_timeout = 7\n"
		"amqp_url = amqp://notify:pa#ss=wo rd@mq.example:5672/prod\n"
		"amqp_exchange = \"ex \\\"quoted\\\" \\\\ here\"\n"
		"amqp_exchange_declare = off\n"
		"amqp_queue = \"  padded  \"\n"
		"amqp_bindings = user.*, broadcast\n"
		"amqp_dead_letter_exchange = # not a comment\n"
		"amqp_prefetch = 100\r\n"
		"amqp_heartbeat = 1m\n"
		"amqp_reconnect_min = 1s\n"
		"amqp_reconnect_max = 1h\n"
		"workers = 8\n"
		"max_message_size = 2M\n"
		"drain_timeout = 0\n"
		"log_level = DEBUG\n"
		"log_format = json";	/* no newline at the end */
	struct config c;
	char path[64], err[ERRLEN];
	int rc;

	config_defaults(&c);
	rc = load(&c, text, path, err);
	ok(rc == 0, "good file loads: %s", err);
	ok(strcmp(c.listen_address, "0.0.0.0") == 0, "no spaces around '='");
	ok(c.listen_port == 9000, "tabs around key and value");
	ok(c.max_connections == 50000 && c.handshake_timeout_ms == 2500, "numbers and durations");
	ok(c.allowed_origins.n == 2 && strcmp(c.allowed_origins.item[1], "https://b.example") == 0, "list");
	ok(c.ws_max_message_size == 128 * 1024 && c.ws_send_queue_max == 8 * 1024 * 1024, "sizes");
	ok(c.ws_ping_interval_ms == 60000 && c.ws_pong_timeout_ms == 20000 && c.ws_send_timeout_ms == 7000,
	   "websocket durations");
	ok(strcmp(c.amqp_url, "amqp://notify:pa#ss=wo rd@mq.example:5672/prod") == 0,
	   "'#', '=' and spaces inside a value are kept");
	ok(strcmp(c.amqp_exchange, "ex \"quoted\" \\ here") == 0, "quoted value with \\\" and \\\\");
	ok(strcmp(c.amqp_queue, "  padded  ") == 0, "quotes keep blanks");
	ok(c.amqp_exchange_declare == false, "boolean off");
	ok(c.amqp_bindings.n == 2 && strcmp(c.amqp_bindings.item[0], "user.*") == 0, "bindings");
	ok(strcmp(c.amqp_dead_letter_exchange, "# not a comment") == 0, "'#' starting a value is not a comment");
	ok(c.amqp_prefetch == 100, "CRLF line end");
	ok(c.amqp_heartbeat_s == 60 && c.amqp_reconnect_min_ms == 1000 && c.amqp_reconnect_max_ms == 3600000,
	   "broker durations");
	ok(c.workers == 8 && c.max_message_size == 2 * 1024 * 1024 && c.drain_timeout_ms == 0, "processing");
	ok(c.log_level == CONFIG_LOG_DEBUG && c.log_format == CONFIG_LOG_JSON, "enums, last line without newline");
	config_free(&c);

	config_defaults(&c);
	ok(load(&c, "", path, err) == 0 && c.listen_port == 8081, "empty file keeps defaults");
	ok(load(&c, "\xef\xbb\xbfworkers = 5\n", path, err) == 0 && c.workers == 5, "UTF-8 BOM skipped");
	ok(load(&c, "amqp_queue =\n", path, err) == 0 && strcmp(c.amqp_queue, "") == 0, "empty value");
	ok(load(&c, "amqp_queue = \"\"\n", path, err) == 0 && strcmp(c.amqp_queue, "") == 0, "empty quoted value");
	ok(load(&c, "amqp_queue = a\"b\n", path, err) == 0 && strcmp(c.amqp_queue, "a\"b") == 0,
	   "a quote inside an unquoted value is literal");
	ok(load(&c, "workers = 3\n", path, err) == 0 && load(&c, "workers = 4\n", path, err) == 0 && c.workers == 4,
	   "the same key in a second file overrides");
	config_free(&c);
}

static void test_long_lines(void)
{
	struct config c;
	char path[64], err[ERRLEN];
	char *text = malloc(5000);
	size_t n;

	if (!text)
		return;
	/* exactly 4096 bytes before the newline */
	n = (size_t)snprintf(text, 5000, "allowed_origins = ");
	memset(text + n, 'o', 4096 - n);
	text[4096] = '\n';
	text[4097] = '\0';
	config_defaults(&c);
	ok(load(&c, text, path, err) == 0 && c.allowed_origins.n == 1 && strlen(c.allowed_origins.item[0]) == 4096 - n,
	   "a line of 4096 bytes is accepted: %s", err);
	text[4096] = '\0';
	ok(load(&c, text, path, err) == 0, "a line of 4096 bytes at the end of file without newline");
	text[4096] = 'o';
	text[4097] = '\n';
	text[4098] = '\0';
	ok(load(&c, "# fine\n", path, err) == 0, "(reset)");
	{
		char want[ERRLEN];
		int rc = load(&c, text, path, err);

		snprintf(want, sizeof want, "%s:1: line longer than 4096 bytes", path);
		ok(rc == -1 && strcmp(err, want) == 0, "a line of 4097 bytes is refused: %s", err);
	}
	text[4097] = '\0';
	ok(load(&c, text, path, err) == -1 && strstr(err, "longer than 4096"), "also without a final newline");
	/* a long comment is still a long line */
	text[0] = '#';
	ok(load(&c, text, path, err) == -1 && strstr(err, "longer than 4096"), "also a comment");
	config_free(&c);
	free(text);
}

static void test_bad_files(void)
{
	struct config c;
	char path[64], err[ERRLEN];
	int rc;

	expect_file_error("workers = 2\nno_such_key = 1\n", "%s:2: no_such_key: unknown key", "unknown key");
	expect_file_error("# c\nworkers = 2\n\nworkers = 3\n", "%s:4: workers: duplicate key (already set on line 2)",
			  "duplicate key names both lines");
	expect_file_error("ws_ping_interval = 5 minutes\n",
			  "%s:1: ws_ping_interval: not a duration: a whole number with an optional ms, s, m or h suffix"
			  " (got '5 minutes')", "bad duration");
	expect_file_error("\nmax_message_size = lots\n",
			  "%s:2: max_message_size: not a size: a whole number of bytes with an optional k, M or G suffix"
			  " (got 'lots')", "bad size");
	expect_file_error("amqp_exchange_declare = maybe\n",
			  "%s:1: amqp_exchange_declare: must be on/off, yes/no, true/false or 1/0 (got 'maybe')",
			  "bad boolean");
	expect_file_error("listen_port = 70000\n", "%s:1: listen_port: must be between 1 and 65535 (got '70000')",
			  "bad port");
	expect_file_error("workers = two\n", "%s:1: workers: not a whole number (got 'two')", "bad number");
	expect_file_error("workers = 100\n", "%s:1: workers: must be between 1 and 64 (got '100')",
			  "number out of range");
	expect_file_error("ws_send_timeout = 5000000h\n",
			  "%s:1: ws_send_timeout: must be between 1ms and 4294967295ms (got '5000000h')",
			  "duration out of range");
	expect_file_error("log_level = loud\n", "%s:1: log_level: must be one of debug, info, warn, error (got 'loud')",
			  "bad enum");
	expect_file_error("workers 2\n", "%s:1: expected 'key = value', found no '='", "missing '='");
	expect_file_error("= 2\n", "%s:1: missing key before '='", "empty key");
	expect_file_error("  \t= 2\n", "%s:1: missing key before '='", "blank key");
	expect_file_error("amqp_queue = \"open\n", "%s:1: amqp_queue: missing closing '\"'", "unterminated quote");
	expect_file_error("amqp_queue = \"a\" b\"\n",
			  "%s:1: amqp_queue: text after the closing '\"' (write \\\" for a quote inside)",
			  "text after closing quote");
	expect_file_error("amqp_queue = \"a\\n\"\n",
			  "%s:1: amqp_queue: only \\\" and \\\\ may follow a backslash in quotes", "unknown escape");
	expect_file_error("amqp_queue = \"a\\\"\n", "%s:1: amqp_queue: missing closing '\"'",
			  "escaped closing quote");
	expect_file_error("amqp_queue = \"\n", "%s:1: amqp_queue: missing closing '\"'", "lone quote");
	expect_file_error("amqp_queue = a\rb\n", "%s:1: amqp_queue: contains a control character",
			  "carriage return inside a line");
	expect_file_error("amqp_url = http://user:hunter2@mq/\n", "%s:1: amqp_url: must start with amqp:// or amqps://",
			  "bad amqp_url, password not echoed");
	expect_file_error("amqp_url = \"amqp://user:hunter2@mq/\n", "%s:1: amqp_url: missing closing '\"'",
			  "bad quoted amqp_url, password not echoed");
	expect_file_error("Workers = 2\n", "%s:1: Workers: unknown key", "keys are case-sensitive");
	expect_file_error("work ers = 2\n", "%s:1: work ers: unknown key", "key with a space");

	config_defaults(&c);
	rc = load_n(&c, "workers = 5\0\n", 13, path, err);
	ok(rc == -1 && strstr(err, ":1: line contains a NUL byte"), "NUL byte refused: %s", err);

	rc = config_load_file(&c, "/nonexistent/notifyd.conf", err, sizeof err);
	ok(rc == -1 && strcmp(err, "/nonexistent/notifyd.conf: No such file or directory") == 0,
	   "missing file: %s", err);

	rc = load(&c, "workers = 7\nlisten_port = 0\nmax_connections = 5\n", path, err);
	ok(rc == -1 && c.workers == 7 && c.max_connections == 10000,
	   "loading stops at the first error (lines before it applied)");
	config_free(&c);
}

/* ---- environment ------------------------------------------------------- */

static void test_env(void)
{
	struct config c;
	char path[64], err[ERRLEN];
	char *env1[] = { "PATH=/usr/bin", "HOME=/root", "NOTIFYD_WS_PING_INTERVAL=45s", "NOTIFYD_WORKERS=9",
			 "NOTIFYD_AMQP_BINDINGS=a.b, c.d", "NOTIFYD_AMQP_QUEUE=\"q\"", "notifyd_junk=1",
			 "XNOTIFYD_FOO=1", NULL };
	char *env_unknown[] = { "NOTIFYD_WORKERS=3", "NOTIFYD_NO_SUCH=1", NULL };
	char *env_lower[] = { "NOTIFYD_workers=3", NULL };
	char *env_bare[] = { "NOTIFYD_=3", NULL };
	char *env_bad[] = { "NOTIFYD_WORKERS=zero", NULL };
	char *env_url[] = { "NOTIFYD_AMQP_URL=https://u:hunter2@h/", NULL };
	char *env_noeq[] = { "NOTIFYD_WORKERS", NULL };
	char *env_empty[] = { NULL };
	char *env_quote[] = { "NOTIFYD_LISTEN_PORT= 9000", NULL };

	config_defaults(&c);
	ok(load(&c, "workers = 4\nws_ping_interval = 20s\nlisten_port = 9999\n", path, err) == 0, "file for env");
	ok(config_apply_env(&c, env1, err, sizeof err) == 0, "env applies: %s", err);
	ok(c.workers == 9 && c.ws_ping_interval_ms == 45000, "env overrides the file");
	ok(c.listen_port == 9999, "keys not in env keep the file's value");
	ok(c.amqp_bindings.n == 2 && strcmp(c.amqp_bindings.item[1], "c.d") == 0, "list from env");
	ok(strcmp(c.amqp_queue, "\"q\"") == 0, "env values are literal (quotes kept)");
	ok(config_apply_env(&c, env_empty, err, sizeof err) == 0, "empty environment");
	ok(config_apply_env(&c, NULL, err, sizeof err) == 0, "NULL environment");

	ok(config_apply_env(&c, env_unknown, err, sizeof err) == -1
	   && strcmp(err, "environment NOTIFYD_NO_SUCH: unknown variable: settings are NOTIFYD_ followed by a key"
		     " in upper case") == 0, "unknown NOTIFYD_ variable named: %s", err);
	ok(config_apply_env(&c, env_lower, err, sizeof err) == -1 && strstr(err, "environment NOTIFYD_workers: unknown"),
	   "lower-case NOTIFYD_ variable is unknown: %s", err);
	ok(config_apply_env(&c, env_bare, err, sizeof err) == -1 && strstr(err, "environment NOTIFYD_: unknown"),
	   "bare NOTIFYD_ is unknown: %s", err);
	ok(config_apply_env(&c, env_bad, err, sizeof err) == -1
	   && strcmp(err, "environment NOTIFYD_WORKERS: workers: not a whole number (got 'zero')") == 0,
	   "bad env value names variable and key: %s", err);
	ok(config_apply_env(&c, env_url, err, sizeof err) == -1
	   && strcmp(err, "environment NOTIFYD_AMQP_URL: amqp_url: must start with amqp:// or amqps://") == 0,
	   "bad env amqp_url not echoed: %s", err);
	ok(config_apply_env(&c, env_noeq, err, sizeof err) == -1 && strstr(err, "NOTIFYD_WORKERS: workers: no value"),
	   "env entry without '=': %s", err);
	ok(config_apply_env(&c, env_quote, err, sizeof err) == -1 && strstr(err, "(got ' 9000')"),
	   "env values are not trimmed: %s", err);
	config_free(&c);
}

/* ---- config_finish ----------------------------------------------------- */

static void test_finish(void)
{
	struct config c;
	char err[ERRLEN], host[256], want[300];

	gethostname(host, sizeof host);
	host[sizeof host - 1] = '\0';
	snprintf(want, sizeof want, "notifyd.%s", host);

	config_defaults(&c);
	ok(config_finish(&c, err, sizeof err) == 0, "defaults pass config_finish: %s", err);
	ok(strcmp(c.amqp_queue, want) == 0, "default queue is %s (got %s)", want, c.amqp_queue);
	ok(config_finish(&c, err, sizeof err) == 0 && strcmp(c.amqp_queue, want) == 0, "config_finish twice");
	config_set(&c, "amqp_queue", "explicit", err, sizeof err);
	ok(config_finish(&c, err, sizeof err) == 0 && strcmp(c.amqp_queue, "explicit") == 0, "explicit queue kept");

	config_set(&c, "amqp_reconnect_min", "2s", err, sizeof err);
	config_set(&c, "amqp_reconnect_max", "2000ms", err, sizeof err);
	ok(config_finish(&c, err, sizeof err) == 0, "reconnect min == max is fine");
	config_set(&c, "amqp_reconnect_min", "2001ms", err, sizeof err);
	ok(config_finish(&c, err, sizeof err) == -1
	   && strcmp(err, "amqp_reconnect_min: must not be greater than amqp_reconnect_max (2001ms > 2s)") == 0,
	   "reconnect min > max refused: %s", err);
	config_set(&c, "amqp_reconnect_min", "500ms", err, sizeof err);

	config_set(&c, "ws_ping_interval", "10s", err, sizeof err);
	config_set(&c, "ws_pong_timeout", "10s", err, sizeof err);
	ok(config_finish(&c, err, sizeof err) == -1
	   && strcmp(err, "ws_pong_timeout: must be shorter than ws_ping_interval (10s >= 10s)") == 0,
	   "pong timeout == ping interval refused: %s", err);
	config_set(&c, "ws_pong_timeout", "9999ms", err, sizeof err);
	ok(config_finish(&c, err, sizeof err) == 0, "pong timeout < ping interval is fine");

	config_set(&c, "auth", "jwt", err, sizeof err);
	ok(config_finish(&c, err, sizeof err) == -1 && strstr(err, "jwt_secret") != NULL,
	   "auth = jwt without a secret or key file refused: %s", err);
	config_set(&c, "jwt_secret", "0123456789abcdef0123456789abcdef", err, sizeof err);
	ok(config_finish(&c, err, sizeof err) == 0, "auth = jwt with a secret accepted");
	config_set(&c, "auth", "none", err, sizeof err);
	config_set(&c, "tls_cert_file", "/etc/ssl/cert.pem", err, sizeof err);
	ok(config_finish(&c, err, sizeof err) == -1 && strstr(err, "tls_key_file") != NULL,
	   "tls_cert_file without tls_key_file refused: %s", err);
	config_set(&c, "tls_cert_file", "", err, sizeof err);
	config_set(&c, "auth", "none", err, sizeof err);

	free(c.listen_address);
	c.listen_address = strdup("");
	ok(config_finish(&c, err, sizeof err) == -1 && strcmp(err, "listen_address: must not be empty") == 0,
	   "empty listen_address refused: %s", err);
	config_free(&c);
}

/* ---- config_print ------------------------------------------------------ */

static char *print_to_string(const struct config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	config_print(c, f);
	fclose(f);
	return buf;
}

static int reload(const char *text, struct config *out, char *err)
{
	char path[64];

	config_defaults(out);
	return load(out, text, path, err);
}

static void test_print(void)
{
	static const char *const sets[][2] = {
		{ "listen_address", "::1" },
		{ "listen_port", "1" },
		{ "max_connections", "123" },
		{ "handshake_timeout", "1500ms" },
		{ "allowed_origins", "\"quoted.example\", https://x.example, *" },
		{ "auth", "jwt" },
		{ "ws_max_message_size", "1000" },
		{ "ws_ping_interval", "90s" },
		{ "ws_pong_timeout", "1ms" },
		{ "ws_send_queue_max", "1G" },
		{ "ws_send_timeout", "25h" },
		{ "amqp_url", "amqp://mq.example:5672/%2f" },
		{ "amqp_exchange", " lead and trail\t" },
		{ "amqp_exchange_declare", "no" },
		{ "amqp_queue", "\"starts with a quote\\ and backslash" },
		{ "amqp_bindings", "a.*, #" },
		{ "amqp_dead_letter_exchange", "" },
		{ "amqp_prefetch", "65535" },
		{ "amqp_heartbeat", "0" },
		{ "amqp_reconnect_min", "0ms" },
		{ "amqp_reconnect_max", "4294967295ms" },
		{ "workers", "64" },
		{ "max_message_size", "1025" },
		{ "drain_timeout", "0" },
		{ "log_level", "error" },
		{ "log_format", "json" },
	};
	struct config a, b;
	char err[ERRLEN], *text;
	const char *diff;
	size_t i;
	int good = 1, lines = 0;

	/* the defaults round-trip */
	config_defaults(&a);
	text = print_to_string(&a);
	ok(text && reload(text, &b, err) == 0, "printed defaults load: %s", err);
	if (text)
		for (i = 0; text[i]; i++)
			lines += text[i] == '\n';
	ok(lines == 73, "one line per key (%d)", lines);
	ok(text && strstr(text, "amqp_url = amqp://guest:***@127.0.0.1:5672/\n"), "default password masked");
	ok(text && strstr(text, "amqp_queue = \"\"\n") && strstr(text, "allowed_origins = \"\"\n"),
	   "empty values printed as \"\"");
	ok(text && strstr(text, "handshake_timeout = 10s\n") && strstr(text, "ws_max_message_size = 64k\n")
	   && strstr(text, "amqp_reconnect_min = 500ms\n") && strstr(text, "ws_send_queue_max = 4M\n")
	   && strstr(text, "amqp_exchange_declare = on\n") && strstr(text, "log_level = info\n"),
	   "values printed the way they are written");
	ok(text && strncmp(text, "listen_address = 127.0.0.1\nlisten_port = 8081\n", 46) == 0, "stable order");
	diff = differ(&a, &b, "amqp://guest:***@127.0.0.1:5672/");
	ok(diff == NULL, "defaults printed and re-read are equal (differs in %s)", diff ? diff : "nothing");
	free(text);
	config_free(&b);

	/* every key changed, with values that need quoting */
	for (i = 0; i < sizeof sets / sizeof sets[0]; i++) {
		if (strcmp(sets[i][0], "amqp_reconnect_min") == 0)
			continue;	/* 0ms is out of range: checked below */
		if (config_set(&a, sets[i][0], sets[i][1], err, sizeof err)) {
			printf("# %s\n", err);
			good = 0;
		}
	}
	ok(good, "all keys set to non-default values");
	ok(config_set(&a, "amqp_reconnect_min", "0ms", err, sizeof err) == -1, "reconnect_min 0 refused");
	text = print_to_string(&a);
	ok(text && reload(text, &b, err) == 0, "printed config loads: %s", err);
	ok(text && strstr(text, "amqp_exchange = \" lead and trail\t\"\n"), "blank ends quoted");
	ok(text && strstr(text, "amqp_queue = \"\\\"starts with a quote\\\\ and backslash\"\n"), "quotes escaped");
	ok(text && strstr(text, "ws_send_timeout = 25h\n") && strstr(text, "handshake_timeout = 1500ms\n")
	   && strstr(text, "ws_send_queue_max = 1G\n") && strstr(text, "amqp_heartbeat = 0s\n"),
	   "durations and sizes printed exactly");
	diff = differ(&a, &b, a.amqp_url);
	ok(diff == NULL, "non-default config printed and re-read is equal (differs in %s)", diff ? diff : "nothing");
	if (diff && text)
		printf("# %s", text);
	free(text);
	config_free(&a);
	config_free(&b);
}

/* Found by fuzz/fuzz_config.c: a value accepted from a file line of 4096
 * bytes (or from the environment) was printed as a longer line, so
 * config_print's output did not load back.  Values that cannot be printed
 * within a line are now refused when set. */
static void test_print_line_limit(void)
{
	struct config c, b;
	char err[ERRLEN], *text, *v = malloc(5000);
	size_t i;

	if (!v)
		return;
	memset(v, 'a', 4999);
	v[4999] = '\0';
	{
		char *line = malloc(4200);

		if (line) {
			/* "jwt_key_file=" and 4083 bytes: 4096, printed as 4098 */
			snprintf(line, 4200, "jwt_key_file=%.4083s\n", v);
			expect_file_error(line, "%s:1: jwt_key_file: too long for a line of 4096 bytes as printed",
					  "a value that prints longer than a line is refused");
			free(line);
		}
	}
	config_defaults(&c);
	v[4096 - strlen("jwt_key_file = ")] = '\0';
	ok(config_set(&c, "jwt_key_file", v, err, sizeof err) == 0, "a value printing as exactly 4096 bytes: %s", err);
	text = print_to_string(&c);
	ok(text && reload(text, &b, err) == 0 && b.jwt_key_file && strcmp(b.jwt_key_file, v) == 0,
	   "and it loads back: %s", err);
	free(text);
	config_free(&b);
	v[strlen(v)] = 'a';

	/* quotes are escaped when the value is quoted */
	v[0] = ' ';
	for (i = 1; i < 2100; i++)
		v[i] = '"';
	v[2100] = '\0';
	ok(config_set(&c, "log_file", v, err, sizeof err) == -1 && strstr(err, "too long for a line"),
	   "escapes count: %s", err);
	/* a list is printed with ", " between items */
	for (i = 0; i < 32 * 127; i++)
		v[i] = i % 127 == 126 ? ',' : 'o';
	v[32 * 127 - 1] = '\0';
	ok(config_set(&c, "allowed_origins", v, err, sizeof err) == -1 && strstr(err, "too long for a line"),
	   "list separators count: %s", err);
	/* the URL is measured with its password masked: "p" prints as "***" */
	memcpy(v, "amqp://u:p@", 11);
	memset(v + 11, 'h', 4096 - strlen("amqp_url = amqp://u:***@"));
	v[11 + 4096 - strlen("amqp_url = amqp://u:***@")] = '\0';
	ok(config_set(&c, "amqp_url", v, err, sizeof err) == 0, "URL printing as 4096 bytes: %s", err);
	strcat(v, "h");
	ok(config_set(&c, "amqp_url", v, err, sizeof err) == -1 && strstr(err, "too long for a line"),
	   "URL printing as 4097 bytes: %s", err);
	ok(strstr(err, "hhhh") == NULL, "not echoed");
	config_free(&c);
	free(v);
}

static void expect_mask(const char *url, const char *want)
{
	struct config c;
	char err[ERRLEN], line[600], *text;

	config_defaults(&c);
	config_set(&c, "amqp_url", url, err, sizeof err);
	text = print_to_string(&c);
	snprintf(line, sizeof line, "\namqp_url = %s\n", want);
	ok(text && strstr(text, line), "%s printed as %s", url, want);
	free(text);
	config_free(&c);
}

static void test_mask(void)
{
	expect_mask("amqp://user:hunter2@mq.example:5672/vh", "amqp://user:***@mq.example:5672/vh");
	expect_mask("amqps://u:p#ss/w@rd@mq/", "amqps://u:***@mq/");
	expect_mask("amqp://u:@mq/", "amqp://u:***@mq/");
	expect_mask("amqp://user@mq.example/", "amqp://user@mq.example/");
	expect_mask("amqp://mq.example:5672/", "amqp://mq.example:5672/");
	expect_mask("amqp://", "amqp://");
	expect_mask("amqp://@", "amqp://@");
}

/* A push key of fewer than 16 characters falls to guessing: refused at
 * load, named by its place in the list, never shown. */
static void test_push_keys(void)
{
	static const char sixteen[] = "0123456789abcdef";
	struct config c;
	char err[ERRLEN], path[64], v[128];
	int rc;

	config_defaults(&c);
	ok(config_set(&c, "push_keys", sixteen, err, sizeof err) == 0 && c.push_keys.n == 1,
	   "a key of 16 characters accepted: %s", err);
	rc = config_set(&c, "push_keys", "0123456789abcde", err, sizeof err);
	ok(rc == -1 && strstr(err, "push_keys: item 1 is shorter than 16 characters") != NULL &&
	   strstr(err, "0123456789abcde") == NULL, "a key of 15 characters refused, not echoed: %s", err);
	ok(c.push_keys.n == 1 && strcmp(c.push_keys.item[0], sixteen) == 0, "the keys before stay in place");
	snprintf(v, sizeof v, "%s, k1", sixteen);
	rc = config_set(&c, "push_keys", v, err, sizeof err);
	ok(rc == -1 && strstr(err, "item 2 is shorter") != NULL && strstr(err, "k1") == NULL &&
	   strstr(err, sixteen) == NULL, "a short second key is named by its place only: %s", err);
	rc = config_set(&c, "push_keys", "  0123456789abcde  ", err, sizeof err);
	ok(rc == -1, "blanks around a key do not count: %s", err);
	/* 15 characters in 30 bytes: characters are counted, not bytes. */
	rc = config_set(&c, "push_keys", "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
			"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", err, sizeof err);
	ok(rc == -1 && strstr(err, "shorter than 16 characters") != NULL, "15 two-byte characters refused: %s", err);
	ok(config_set(&c, "push_keys", "", err, sizeof err) == 0 && c.push_keys.n == 0, "an empty list still turns push off");
	ok(config_set(&c, "allowed_origins", "x", err, sizeof err) == 0 && config_set(&c, "amqp_bindings", "b", err,
	   sizeof err) == 0, "other lists have no minimum");
	config_free(&c);

	expect_file_error("push_keys = demo-key-123\n", "%s:1: push_keys: item 1 is shorter than 16 characters",
			  "a short key in a file names file, line and key");
	config_defaults(&c);
	rc = load(&c, "push_keys = 0123456789abcdef, fedcba9876543210\n", path, err);
	ok(rc == 0 && c.push_keys.n == 2, "two keys of 16 from a file: %s", err);
	config_free(&c);
	{
		char *env[] = { "NOTIFYD_PUSH_KEYS=short", NULL };

		config_defaults(&c);
		ok(config_apply_env(&c, env, err, sizeof err) == -1 &&
		   strcmp(err, "environment NOTIFYD_PUSH_KEYS: push_keys: item 1 is shorter than 16 characters") == 0,
		   "a short key from the environment: %s", err);
		config_free(&c);
	}

	config_defaults(&c);
	ok(config_set(&c, "push_auth_fail_rate", "0", err, sizeof err) == 0 && c.push_auth_fail_rate == 0,
	   "push_auth_fail_rate 0 (no limit)");
	ok(config_set(&c, "push_auth_fail_rate", "1000", err, sizeof err) == 0 && c.push_auth_fail_rate == 1000,
	   "push_auth_fail_rate 1000");
	config_free(&c);
	expect_set_error("push_auth_fail_rate", "-1", "not a whole number");
	expect_set_error("push_auth_fail_rate", "10000001", "must be between 0 and 10000000");
}

/* Loads text from a file of the given mode and says whether its secrets
 * are exposed to others than a daemon running with group own_gid (or the
 * file's own group when own_gid is -1). */
static int exposed(const char *text, mode_t mode, long own_gid, const char **key)
{
	struct config c;
	char path[64], err[ERRLEN];
	int rc = -1;

	config_defaults(&c);
	if (write_tmp(path, sizeof path, text, strlen(text)) == 0) {
		if (chmod(path, mode) == 0 && config_load_file(&c, path, err, sizeof err) == 0) {
			rc = config_file_exposed(&c, own_gid < 0 ? c.file_gid : (gid_t)own_gid);
			*key = c.file_secret_key;
			if (c.file_mode != (uint32_t)mode)
				rc = -2;
		}
		unlink(path);
	}
	config_free(&c);
	return rc;
}

static void test_file_exposed(void)
{
	static const struct {
		const char *text;
		mode_t mode;
		int other_group;	/* the daemon's group is not the file's */
		int want;
		const char *key;
		const char *what;
	} cases[] = {
		{ "push_keys = 0123456789abcdef\n", 0644, 0, 1, "push_keys", "push_keys, world-readable" },
		{ "push_keys = 0123456789abcdef\n", 0604, 0, 1, "push_keys", "push_keys, readable by others only" },
		{ "push_keys = 0123456789abcdef\n", 0600, 0, 0, "push_keys", "push_keys, 0600" },
		{ "push_keys = 0123456789abcdef\n", 0400, 0, 0, "push_keys", "push_keys, 0400" },
		{ "push_keys = 0123456789abcdef\n", 0640, 0, 0, "push_keys",
		  "push_keys, 0640 in the daemon's own group (the package's root:notifyd)" },
		{ "push_keys = 0123456789abcdef\n", 0640, 1, 1, "push_keys", "push_keys, 0640 in another group" },
		{ "jwt_secret = 0123456789abcdef0123456789abcdef\n", 0644, 0, 1, "jwt_secret", "jwt_secret" },
		{ "amqp_url = amqp://u:hunter2@mq/\n", 0644, 0, 1, "amqp_url", "amqp_url with a password" },
		{ "amqp_url = amqp://guest:guest@127.0.0.1:5672/\n", 0644, 0, 0, NULL,
		  "amqp_url with RabbitMQ's public guest:guest" },
		{ "amqp_url = amqp://u:@mq/\n", 0644, 0, 0, NULL, "amqp_url with an empty password" },
		{ "amqp_url = amqp://u@mq/\n", 0644, 0, 0, NULL, "amqp_url without a password" },
		{ "push_keys =\njwt_secret = \"\"\n", 0644, 0, 0, NULL, "secret keys set empty" },
		{ "workers = 3\n", 0644, 0, 0, NULL, "no secret at all" },
		{ "workers = 3\njwt_secret = 0123456789abcdef0123456789abcdef\npush_keys = 0123456789abcdef\n", 0644,
		  0, 1, "jwt_secret", "two secrets: the first is named" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *key = NULL;
		int got = exposed(cases[i].text, cases[i].mode, cases[i].other_group ? (long)getegid() + 1 : -1, &key);

		ok(got == cases[i].want && (key == NULL ? cases[i].key == NULL :
		   cases[i].key != NULL && strcmp(key, cases[i].key) == 0),
		   "%s, mode %04o: %s (got %d, key %s)", cases[i].what, (unsigned)cases[i].mode,
		   cases[i].want ? "exposed" : "not exposed", got, key ? key : "none");
	}
	{
		struct config c;

		config_defaults(&c);
		config_set(&c, "push_keys", "0123456789abcdef", NULL, 0);
		ok(!config_file_exposed(&c, getegid()), "secrets from config_set or the environment: no file, no warning");
		config_free(&c);
	}
}

static void test_secrets_never_shown(void)
{
	struct config c;
	char err[512];
	char *text;

	config_defaults(&c);
	config_set(&c, "push_keys", "k3y-one-0123456789, k3y-two-0123456789", err, sizeof err);
	config_set(&c, "jwt_secret", "s3cr3t-value", err, sizeof err);
	text = print_to_string(&c);
	ok(text && strstr(text, "push_keys = ***") && strstr(text, "jwt_secret = ***") &&
	   !strstr(text, "k3y-") && !strstr(text, "s3cr3t-value"),
	   "config_print masks push_keys and jwt_secret");
	free(text);
	ok(config_set(&c, "jwt_secret", "bad\x01", err, sizeof err) == 0 ||
	   strstr(err, "bad") == NULL, "an error about a secret does not echo it: %s", err);
	config_free(&c);
}

int main(void)
{
	test_defaults();
	test_shipped_file();
	test_durations();
	test_heartbeat();
	test_sizes();
	test_numbers();
	test_bools_enums();
	test_lists();
	test_strings();
	test_good_file();
	test_long_lines();
	test_bad_files();
	test_env();
	test_finish();
	test_print();
	test_print_line_limit();
	test_secrets_never_shown();
	test_push_keys();
	test_file_exposed();
	test_mask();
	return done_testing();
}
