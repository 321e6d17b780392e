/* config.c - defaults, the key = value file and NOTIFYD_* overrides.
 *
 * Everything is driven by one table of keys: the defaults are the same text a
 * user could write, parsed by the same code, so a default can never disagree
 * with what the parser accepts or what config_print() writes back.
 */
#include "autoconfig.h"
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_BYTES_MAX 4096
#define AMQP_SHORTSTR_MAX 255	/* exchange, queue and routing key names */
#define KIB UINT64_C(1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)
#define MS_PER_S 1000u
#define MS_PER_M (60u * MS_PER_S)
#define MS_PER_H (60u * MS_PER_M)

enum ktype {
	K_STRING,	/* char *, min..max bytes (max 0: no limit) */
	K_URL,		/* char *, amqp:// or amqps://; holds a password */
	K_PORT,		/* uint16_t */
	K_UINT,		/* uint32_t */
	K_MS,		/* uint32_t milliseconds; bounds in ms */
	K_SECONDS,	/* uint32_t whole seconds; bounds in s */
	K_SIZE,		/* uint64_t bytes */
	K_BOOL,		/* bool */
	K_ENUM,		/* an int-sized enum indexing names[] */
	K_LIST		/* struct config_list; min: characters per item, max: bytes
			 * per item (0: no limit) */
};

struct key {
	const char *name;
	enum ktype type;
	size_t off;
	uint64_t min, max;
	const char *const *names;	/* K_ENUM only, NULL-terminated */
	const char *def;
	bool secret;			/* never printed nor echoed in errors */
};

/* The enums are stored through an int; make sure that is their size. */
_Static_assert(sizeof(enum config_auth) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_source) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_log_format) == sizeof(int), "enum size");

/* The offset of a field, refusing to compile if the field's type is not the
 * one the key's kind writes through. */
#define FIELD(f, T) _Generic(((struct config *)NULL)->f, T: offsetof(struct config, f))

static const char *const auth_names[] = { "none", "jwt", NULL };
static const char *const source_names[] = { "queue", "stream", NULL };
static const char *const level_names[] = { "debug", "info", "warn", "error", NULL };
static const char *const format_names[] = { "kv", "json", NULL };

/* Order is the order of config_print() and of etc/notifyd.conf. */
static const struct key keys[] = {
	{ "listen_address", K_STRING, FIELD(listen_address, char *), 1, 0, NULL, "127.0.0.1", false },
	{ "listen_port", K_PORT, FIELD(listen_port, uint16_t), 1, 65535, NULL, "8081", false },
	{ "listen_reuseport", K_BOOL, FIELD(listen_reuseport, bool), 0, 0, NULL, "off", false },
	{ "max_connections", K_UINT, FIELD(max_connections, uint32_t), 1, 10000000, NULL, "10000", false },
	{ "handshake_timeout", K_MS, FIELD(handshake_timeout_ms, uint32_t), 1, UINT32_MAX, NULL, "10s", false },
	{ "allowed_origins", K_LIST, FIELD(allowed_origins, struct config_list), 0, 0, NULL, "", false },
	{ "auth", K_ENUM, FIELD(auth, enum config_auth), 0, 0, auth_names, "none", false },
	{ "max_connections_per_user", K_UINT, FIELD(max_connections_per_user, uint32_t), 0, 10000000, NULL, "0", false },
	{ "ip_connect_rate", K_UINT, FIELD(ip_connect_rate, uint32_t), 0, 10000000, NULL, "0", false },
	{ "max_connections_per_ip", K_UINT, FIELD(max_connections_per_ip, uint32_t), 0, 10000000, NULL, "0", false },
	{ "max_http_connections", K_UINT, FIELD(max_http_connections, uint32_t), 1, 10000000, NULL, "10000", false },
	{ "health_show_errors", K_BOOL, FIELD(health_show_errors, bool), 0, 0, NULL, "off", false },

	{ "jwt_algorithm", K_STRING, FIELD(jwt_algorithm, char *), 1, 16, NULL, "HS256", false },
	{ "jwt_secret", K_STRING, FIELD(jwt_secret, char *), 0, 4096, NULL, "", true },
	{ "jwt_key_file", K_STRING, FIELD(jwt_key_file, char *), 0, 4096, NULL, "", false },
	{ "jwt_issuer", K_STRING, FIELD(jwt_issuer, char *), 0, 1024, NULL, "", false },
	{ "jwt_audience", K_STRING, FIELD(jwt_audience, char *), 0, 1024, NULL, "", false },
	{ "jwt_user_claim", K_STRING, FIELD(jwt_user_claim, char *), 1, 128, NULL, "sub", false },
	{ "jwt_leeway", K_SECONDS, FIELD(jwt_leeway_s, uint32_t), 0, 3600, NULL, "30s", false },
	{ "jwt_require_exp", K_BOOL, FIELD(jwt_require_exp, bool), 0, 0, NULL, "on", false },
	{ "jwt_close_on_expiry", K_BOOL, FIELD(jwt_close_on_expiry, bool), 0, 0, NULL, "on", false },

	{ "tls_cert_file", K_STRING, FIELD(tls_cert_file, char *), 0, 4096, NULL, "", false },
	{ "tls_key_file", K_STRING, FIELD(tls_key_file, char *), 0, 4096, NULL, "", false },
	{ "tls_port", K_PORT, FIELD(tls_port, uint16_t), 0, 65535, NULL, "0", false },

	{ "ws_max_message_size", K_SIZE, FIELD(ws_max_message_size, uint64_t), 125, 64 * MIB, NULL, "64k", false },
	{ "ws_ping_interval", K_MS, FIELD(ws_ping_interval_ms, uint32_t), 1, UINT32_MAX, NULL, "30s", false },
	{ "ws_pong_timeout", K_MS, FIELD(ws_pong_timeout_ms, uint32_t), 1, UINT32_MAX, NULL, "10s", false },
	{ "ws_send_queue_max", K_SIZE, FIELD(ws_send_queue_max, uint64_t), KIB, GIB, NULL, "4M", false },
	{ "ws_send_timeout", K_MS, FIELD(ws_send_timeout_ms, uint32_t), 1, UINT32_MAX, NULL, "5s", false },
	{ "ws_deflate", K_BOOL, FIELD(ws_deflate, bool), 0, 0, NULL, "on", false },
	{ "ws_deflate_min_size", K_SIZE, FIELD(ws_deflate_min_size, uint64_t), 0, 64 * MIB, NULL, "256", false },

	{ "amqp_url", K_URL, FIELD(amqp_url, char *), 0, 0, NULL, "amqp://guest:guest@127.0.0.1:5672/", false },
	{ "amqp_exchange", K_STRING, FIELD(amqp_exchange, char *), 1, AMQP_SHORTSTR_MAX, NULL, "notifications", false },
	{ "amqp_exchange_declare", K_BOOL, FIELD(amqp_exchange_declare, bool), 0, 0, NULL, "on", false },
	{ "amqp_queue", K_STRING, FIELD(amqp_queue, char *), 0, AMQP_SHORTSTR_MAX, NULL, "", false },
	{ "amqp_bindings", K_LIST, FIELD(amqp_bindings, struct config_list), 0, AMQP_SHORTSTR_MAX, NULL, "", false },
	{ "amqp_dead_letter_exchange", K_STRING, FIELD(amqp_dead_letter_exchange, char *), 0, AMQP_SHORTSTR_MAX, NULL, "", false },
	{ "amqp_queue_expires", K_MS, FIELD(amqp_queue_expires_ms, uint32_t), 0, UINT32_MAX, NULL, "24h", false },
	{ "amqp_queue_max_bytes", K_SIZE, FIELD(amqp_queue_max_bytes, uint64_t), 0, 1024 * GIB, NULL, "1G", false },
	{ "amqp_source", K_ENUM, FIELD(amqp_source, enum config_source), 0, 0, source_names, "queue", false },
	{ "amqp_stream", K_STRING, FIELD(amqp_stream, char *), 1, AMQP_SHORTSTR_MAX, NULL, "notifications.log", false },
	{ "amqp_stream_max_age", K_SECONDS, FIELD(amqp_stream_max_age_s, uint32_t), 0, UINT32_MAX, NULL, "24h", false },
	{ "amqp_stream_max_bytes", K_SIZE, FIELD(amqp_stream_max_bytes, uint64_t), 0, 1024 * GIB, NULL, "1G", false },
	{ "amqp_prefetch", K_UINT, FIELD(amqp_prefetch, uint32_t), 1, 65535, NULL, "512", false },
	{ "amqp_heartbeat", K_SECONDS, FIELD(amqp_heartbeat_s, uint32_t), 0, 3600, NULL, "30s", false },
	{ "amqp_reconnect_min", K_MS, FIELD(amqp_reconnect_min_ms, uint32_t), 1, UINT32_MAX, NULL, "500ms", false },
	{ "amqp_reconnect_max", K_MS, FIELD(amqp_reconnect_max_ms, uint32_t), 1, UINT32_MAX, NULL, "30s", false },
	{ "amqp_ca_file", K_STRING, FIELD(amqp_ca_file, char *), 0, 4096, NULL, "", false },
	{ "amqp_cert_file", K_STRING, FIELD(amqp_cert_file, char *), 0, 4096, NULL, "", false },
	{ "amqp_key_file", K_STRING, FIELD(amqp_key_file, char *), 0, 4096, NULL, "", false },
	{ "amqp_verify_peer", K_BOOL, FIELD(amqp_verify_peer, bool), 0, 0, NULL, "on", false },

	/* min: characters per key; a short key falls to guessing even at
	 * push_auth_fail_rate. */
	{ "push_keys", K_LIST, FIELD(push_keys, struct config_list), 16, 1024, NULL, "", true },
	{ "push_auth_fail_rate", K_UINT, FIELD(push_auth_fail_rate, uint32_t), 0, 10000000, NULL, "5", false },
	{ "push_max_body", K_SIZE, FIELD(push_max_body, uint64_t), 2, 64 * MIB, NULL, "1M", false },
	{ "push_timeout", K_MS, FIELD(push_timeout_ms, uint32_t), 1, UINT32_MAX, NULL, "5s", false },
	{ "push_max_batch", K_UINT, FIELD(push_max_batch, uint32_t), 1, 100000, NULL, "1000", false },

	{ "admin_keys", K_LIST, FIELD(admin_keys, struct config_list), 16, 1024, NULL, "", true },
	{ "instance_name", K_STRING, FIELD(instance_name, char *), 0, 128, NULL, "", false },
	{ "amqp_control_exchange", K_STRING, FIELD(amqp_control_exchange, char *), 1, AMQP_SHORTSTR_MAX, NULL, "notifyd.control", false },
	{ "control_heartbeat", K_MS, FIELD(control_heartbeat_ms, uint32_t), 100, 3600000, NULL, "5s", false },
	{ "presence_timeout", K_MS, FIELD(presence_timeout_ms, uint32_t), 10, 60000, NULL, "1s", false },
	{ "revocation_max_age", K_SECONDS, FIELD(revocation_max_age_s, uint32_t), 1, 366u * 86400u, NULL, "24h", false },
	{ "events_exchange", K_STRING, FIELD(events_exchange, char *), 0, AMQP_SHORTSTR_MAX, NULL, "", false },
	{ "events_offline_delay", K_MS, FIELD(events_offline_delay_ms, uint32_t), 0, 3600000, NULL, "5s", false },

	{ "history_max_bytes", K_SIZE, FIELD(history_max_bytes, uint64_t), 0, 64 * GIB, NULL, "64M", false },
	{ "history_max_age", K_SECONDS, FIELD(history_max_age_s, uint32_t), 1, 366u * 86400u, NULL, "1h", false },

	{ "workers", K_UINT, FIELD(workers, uint32_t), 1, 64, NULL, "2", false },
	{ "max_message_size", K_SIZE, FIELD(max_message_size, uint64_t), 1, 64 * MIB, NULL, "1M", false },
	/* 0 is allowed: stop at once without waiting for in-flight messages */
	{ "drain_timeout", K_MS, FIELD(drain_timeout_ms, uint32_t), 0, UINT32_MAX, NULL, "10s", false },

	{ "demo", K_BOOL, FIELD(demo, bool), 0, 0, NULL, "off", false },

	{ "log_file", K_STRING, FIELD(log_file, char *), 0, 4096, NULL, "", false },
	{ "log_level", K_ENUM, FIELD(log_level, enum config_log_level), 0, 0, level_names, "info", false },
	{ "log_format", K_ENUM, FIELD(log_format, enum config_log_format), 0, 0, format_names, "kv", false },
};

#define NKEYS (sizeof keys / sizeof keys[0])

/* ---- error messages ------------------------------------------------- */

/* Where the value being parsed came from: the prefix of every message. */
struct errctx {
	char *buf;
	size_t len, used;
	const char *path;	/* file, with line (0: the file as a whole) */
	unsigned line;
	const char *env;	/* "NOTIFYD_X=..." entry, name is env_len bytes */
	size_t env_len;
};

static void err_init(struct errctx *e, char *buf, size_t len)
{
	memset(e, 0, sizeof *e);
	e->buf = buf;
	e->len = len;
	if (buf && len)
		buf[0] = '\0';
}

__attribute__((format(printf, 2, 0)))
static void err_vadd(struct errctx *e, const char *fmt, va_list ap)
{
	int n;

	if (!e->buf || e->len == 0 || e->used + 1 >= e->len)
		return;
	n = vsnprintf(e->buf + e->used, e->len - e->used, fmt, ap);
	if (n < 0)
		return;
	e->used += (size_t)n;
	if (e->used > e->len - 1)
		e->used = e->len - 1;
}

__attribute__((format(printf, 2, 3)))
static void err_add(struct errctx *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vadd(e, fmt, ap);
	va_end(ap);
}

static void err_prefix(struct errctx *e, const char *key)
{
	e->used = 0;
	if (e->buf && e->len)
		e->buf[0] = '\0';
	if (e->path && e->line)
		err_add(e, "%s:%u: ", e->path, e->line);
	else if (e->path)
		err_add(e, "%s: ", e->path);
	else if (e->env)
		err_add(e, "environment %.*s: ", (int)e->env_len, e->env);
	if (key)
		err_add(e, "%s: ", key);
}

/* Always returns -1 so callers can "return fail(...)". */
__attribute__((format(printf, 3, 4)))
static int fail(struct errctx *e, const char *key, const char *fmt, ...)
{
	va_list ap;

	err_prefix(e, key);
	va_start(ap, fmt);
	err_vadd(e, fmt, ap);
	va_end(ap);
	return -1;
}

/* Like fail() for a bad value of key k, quoting the value back unless it may
 * hold a secret. */
__attribute__((format(printf, 4, 5)))
static int bad(struct errctx *e, const struct key *k, const char *value, const char *fmt, ...)
{
	va_list ap;

	err_prefix(e, k->name);
	va_start(ap, fmt);
	err_vadd(e, fmt, ap);
	va_end(ap);
	if (value && k->type != K_URL && !k->secret)
		err_add(e, " (got '%s')", value);
	return -1;
}

/* ---- scalar parsers --------------------------------------------------- */

/* Reads decimal digits, saturating at UINT64_MAX so that a huge number is
 * reported as out of range rather than as not a number. */
static int parse_digits(const char **sp, uint64_t *out)
{
	const char *s = *sp;
	uint64_t n = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
	}
	*sp = s;
	*out = n;
	return 0;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
	return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

static int parse_number(const char *s, uint64_t *out)
{
	return parse_digits(&s, out) == 0 && *s == '\0' ? 0 : -1;
}

/* Durations in ms.  Suffixes are lower case only: "M" would read as months. */
static int parse_duration(const char *s, uint64_t *ms)
{
	uint64_t n, mult;

	if (parse_digits(&s, &n))
		return -1;
	if (*s == '\0' || strcmp(s, "s") == 0)
		mult = MS_PER_S;
	else if (strcmp(s, "ms") == 0)
		mult = 1;
	else if (strcmp(s, "m") == 0)
		mult = MS_PER_M;
	else if (strcmp(s, "h") == 0)
		mult = MS_PER_H;
	else
		return -1;
	*ms = sat_mul(n, mult);
	return 0;
}

/* Sizes in bytes; a size has no lower-case/upper-case ambiguity, so both
 * cases of k, M, G are accepted. */
static int parse_size(const char *s, uint64_t *bytes)
{
	uint64_t n, mult;

	if (parse_digits(&s, &n))
		return -1;
	if (*s == '\0')
		mult = 1;
	else if (s[1] != '\0')
		return -1;
	else if (*s == 'k' || *s == 'K')
		mult = KIB;
	else if (*s == 'm' || *s == 'M')
		mult = MIB;
	else if (*s == 'g' || *s == 'G')
		mult = GIB;
	else
		return -1;
	*bytes = sat_mul(n, mult);
	return 0;
}

static int parse_bool(const char *s, bool *b)
{
	static const char *const yes[] = { "on", "yes", "true", "1" };
	static const char *const no[] = { "off", "no", "false", "0" };
	size_t i;

	for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*b = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*b = false;
			return 0;
		}
	}
	return -1;
}

/* The shortest exact spelling, so that printed values read naturally. */
static void fmt_duration(uint64_t ms, char *buf, size_t len)
{
	if (ms == 0)
		snprintf(buf, len, "0s");
	else if (ms % MS_PER_H == 0)
		snprintf(buf, len, "%" PRIu64 "h", ms / MS_PER_H);
	else if (ms % MS_PER_M == 0)
		snprintf(buf, len, "%" PRIu64 "m", ms / MS_PER_M);
	else if (ms % MS_PER_S == 0)
		snprintf(buf, len, "%" PRIu64 "s", ms / MS_PER_S);
	else
		snprintf(buf, len, "%" PRIu64 "ms", ms);
}

static void fmt_size(uint64_t n, char *buf, size_t len)
{
	if (n != 0 && n % GIB == 0)
		snprintf(buf, len, "%" PRIu64 "G", n / GIB);
	else if (n != 0 && n % MIB == 0)
		snprintf(buf, len, "%" PRIu64 "M", n / MIB);
	else if (n != 0 && n % KIB == 0)
		snprintf(buf, len, "%" PRIu64 "k", n / KIB);
	else
		snprintf(buf, len, "%" PRIu64, n);
}

/* A bound or a value of key k as the user would write it. */
static void fmt_value(const struct key *k, uint64_t n, char *buf, size_t len)
{
	if (k->type == K_MS)
		fmt_duration(n, buf, len);
	else if (k->type == K_SECONDS)
		fmt_duration(sat_mul(n, MS_PER_S), buf, len);
	else if (k->type == K_SIZE)
		fmt_size(n, buf, len);
	else
		snprintf(buf, len, "%" PRIu64, n);
}

static bool has_control(const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		/* a newline in a value would make config_print's output lie */
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return true;
	}
	return false;
}

/* ---- the printed form ------------------------------------------------- */

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

struct piece {
	const char *s;
	size_t len;
};

static struct piece piece(const char *s)
{
	struct piece p = { s ? s : "", s ? strlen(s) : 0 };

	return p;
}

/* The URL in up to three pieces with the password replaced.  The password
 * runs from the first ':' after "://" to the last '@': taking the last '@'
 * errs toward hiding too much when a password holds a raw '@' or '/'. */
static size_t url_pieces(const char *url, struct piece *pc)
{
	const char *auth = url ? strstr(url, "://") : NULL;
	const char *at = url ? strrchr(url, '@') : NULL;

	if (auth && at && at > auth + 3) {
		const char *colon;

		auth += 3;
		colon = memchr(auth, ':', (size_t)(at - auth));
		if (colon) {
			pc[0].s = url;
			pc[0].len = (size_t)(colon + 1 - url);
			pc[1] = piece("***");
			pc[2] = piece(at);
			return 3;
		}
	}
	pc[0] = piece(url);
	return 1;
}

/* The items of a list as config_print() writes them; pc has room for
 * 2 * CONFIG_LIST_MAX pieces. */
static size_t list_pieces(const struct config_list *l, struct piece *pc)
{
	size_t j, n = 0;

	for (j = 0; j < l->n && j < CONFIG_LIST_MAX; j++) {
		if (j)
			pc[n++] = piece(", ");
		pc[n++] = piece(l->item[j]);
	}
	return n;
}

/* Whether the concatenated pieces must be written in quotes, because the
 * file syntax would otherwise change the value: empty, blank at either end,
 * or starting with a quote. */
static bool needs_quotes(const struct piece *pc, size_t n)
{
	size_t i, total = 0;
	char first = '\0', last = '\0';

	for (i = 0; i < n; i++) {
		if (pc[i].len == 0)
			continue;
		if (total == 0)
			first = pc[i].s[0];
		last = pc[i].s[pc[i].len - 1];
		total += pc[i].len;
	}
	return total == 0 || first == '"' || is_blank(first) || is_blank(last);
}

/* Whether "key = value", as config_print() writes it, fits in a line that
 * config_load_file() reads back.  A secret is printed as stars. */
static bool fits_line(const struct key *k, const struct piece *pc, size_t n)
{
	size_t i, j, len = strlen(k->name) + 3;
	bool quote = needs_quotes(pc, n);

	if (k->secret)
		return true;
	if (quote)
		len += 2;
	for (i = 0; i < n; i++)
		for (j = 0; j < pc[i].len; j++)
			len += quote && (pc[i].s[j] == '"' || pc[i].s[j] == '\\') ? 2 : 1;
	return len <= LINE_BYTES_MAX;
}

/* ---- setting one key -------------------------------------------------- */

static void *field(struct config *c, const struct key *k)
{
	return (char *)c + k->off;
}

static const void *cfield(const struct config *c, const struct key *k)
{
	return (const char *)c + k->off;
}

static void list_clear(struct config_list *l)
{
	size_t i;

	for (i = 0; i < l->n && i < CONFIG_LIST_MAX; i++) {
		free(l->item[i]);
		l->item[i] = NULL;
	}
	l->n = 0;
}

/* Characters, not bytes: UTF-8 continuation bytes do not count. */
static size_t utf8_chars(const char *s, size_t n)
{
	size_t chars = 0;

	for (size_t i = 0; i < n; i++)
		chars += ((unsigned char)s[i] & 0xC0) != 0x80;
	return chars;
}

static int set_list(struct config_list *dst, const struct key *k, const char *value, struct errctx *e)
{
	struct config_list l = { 0 };
	struct piece pc[2 * CONFIG_LIST_MAX];
	const char *p = value;

	for (;;) {
		const char *end = strchr(p, ',');
		const char *next = end ? end + 1 : NULL;

		if (!end)
			end = p + strlen(p);
		while (p < end && is_blank(*p))
			p++;
		while (end > p && is_blank(end[-1]))
			end--;
		if (end > p) {
			size_t n = (size_t)(end - p);

			if (l.n == CONFIG_LIST_MAX) {
				list_clear(&l);
				return bad(e, k, value, "more than %d items", CONFIG_LIST_MAX);
			}
			if (k->max && n > k->max) {
				list_clear(&l);
				return bad(e, k, value, "an item is longer than %" PRIu64 " bytes", k->max);
			}
			/* Named by its place, never by its text: it may be a secret. */
			if (utf8_chars(p, n) < k->min) {
				size_t place = l.n + 1;

				list_clear(&l);
				return bad(e, k, value, "item %zu is shorter than %" PRIu64 " characters",
				    place, k->min);
			}
			l.item[l.n] = strndup(p, n);
			if (!l.item[l.n]) {
				list_clear(&l);
				return fail(e, k->name, "out of memory");
			}
			l.n++;
		}
		if (!next)
			break;
		p = next;
	}
	if (!fits_line(k, pc, list_pieces(&l, pc))) {
		list_clear(&l);
		return bad(e, k, NULL, "too long for a line of %d bytes as printed", LINE_BYTES_MAX);
	}
	list_clear(dst);
	*dst = l;
	return 0;
}

static int set_string(char **dst, const struct key *k, const char *value, struct errctx *e)
{
	size_t n = strlen(value), np = 1;
	struct piece pc[3];
	char *copy;

	if (k->type == K_URL && strncmp(value, "amqp://", 7) != 0 && strncmp(value, "amqps://", 8) != 0)
		return bad(e, k, value, "must start with amqp:// or amqps://");
	if (n < k->min)
		return bad(e, k, value, "must not be empty");
	if (k->max && n > k->max)
		return bad(e, k, value, "longer than %" PRIu64 " bytes", k->max);
	pc[0] = piece(value);
	if (k->type == K_URL)
		np = url_pieces(value, pc);
	if (!fits_line(k, pc, np))
		return bad(e, k, NULL, "too long for a line of %d bytes as printed", LINE_BYTES_MAX);
	copy = strdup(value);
	if (!copy)
		return fail(e, k->name, "out of memory");
	free(*dst);
	*dst = copy;
	return 0;
}

static int set_enum(struct config *c, const struct key *k, const char *value, struct errctx *e)
{
	char names[128] = "";
	size_t used = 0;
	int i;

	for (i = 0; k->names[i]; i++) {
		if (strcasecmp(value, k->names[i]) == 0) {
			memcpy(field(c, k), &i, sizeof i);
			return 0;
		}
	}
	for (i = 0; k->names[i] && used < sizeof names; i++) {
		int n = snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", k->names[i]);

		if (n < 0)
			break;
		used += (size_t)n;
	}
	return bad(e, k, value, "must be one of %s", names);
}

/* Parses value into key k; on error c is left as it was. */
static int set_value(struct config *c, const struct key *k, const char *value, struct errctx *e)
{
	uint64_t n = 0;
	bool b;

	if (has_control(value))
		return bad(e, k, NULL, "contains a control character");

	switch (k->type) {
	case K_STRING:
	case K_URL:
		return set_string(field(c, k), k, value, e);
	case K_LIST:
		return set_list(field(c, k), k, value, e);
	case K_ENUM:
		return set_enum(c, k, value, e);
	case K_BOOL:
		if (parse_bool(value, &b))
			return bad(e, k, value, "must be on/off, yes/no, true/false or 1/0");
		*(bool *)field(c, k) = b;
		return 0;
	case K_PORT:
	case K_UINT:
		if (parse_number(value, &n))
			return bad(e, k, value, "not a whole number");
		break;
	case K_MS:
	case K_SECONDS:
		if (parse_duration(value, &n))
			return bad(e, k, value, "not a duration: a whole number with an optional ms, s, m or h suffix");
		if (k->type == K_SECONDS) {
			if (n % MS_PER_S)
				return bad(e, k, value, "must be a whole number of seconds");
			n /= MS_PER_S;
		}
		break;
	case K_SIZE:
		if (parse_size(value, &n))
			return bad(e, k, value, "not a size: a whole number of bytes with an optional k, M or G suffix");
		break;
	}

	if (n < k->min || n > k->max) {
		char lo[32], hi[32];

		fmt_value(k, k->min, lo, sizeof lo);
		fmt_value(k, k->max, hi, sizeof hi);
		return bad(e, k, value, "must be between %s and %s", lo, hi);
	}
	switch (k->type) {
	case K_PORT:
		*(uint16_t *)field(c, k) = (uint16_t)n;
		break;
	case K_SIZE:
		*(uint64_t *)field(c, k) = n;
		break;
	default:
		*(uint32_t *)field(c, k) = (uint32_t)n;
		break;
	}
	return 0;
}

static const struct key *find_key(const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* The key whose NOTIFYD_ name is upper (len bytes, not NUL-terminated). */
static const struct key *find_env_key(const char *upper, size_t len)
{
	size_t i, j;

	for (i = 0; i < NKEYS; i++) {
		const char *name = keys[i].name;

		if (strlen(name) != len)
			continue;
		for (j = 0; j < len; j++) {
			char want = name[j] >= 'a' && name[j] <= 'z' ? (char)(name[j] - 'a' + 'A') : name[j];

			if (upper[j] != want)
				break;
		}
		if (j == len)
			return &keys[i];
	}
	return NULL;
}

/* ---- public API ------------------------------------------------------- */

void config_free(struct config *c)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];

		if (k->type == K_STRING || k->type == K_URL) {
			char **s = field(c, k);

			free(*s);
			*s = NULL;
		} else if (k->type == K_LIST) {
			list_clear(field(c, k));
		}
	}
}

int config_defaults(struct config *c)
{
	struct errctx e;
	size_t i;

	err_init(&e, NULL, 0);
	memset(c, 0, sizeof *c);
	for (i = 0; i < NKEYS; i++) {
		if (set_value(c, &keys[i], keys[i].def, &e)) {
			config_free(c);
			return -1;
		}
	}
	return 0;
}

int config_set(struct config *c, const char *key, const char *value, char *err, size_t errlen)
{
	struct errctx e;
	const struct key *k;

	err_init(&e, err, errlen);
	if (!key || !value)
		return fail(&e, NULL, "missing key or value");
	k = find_key(key);
	if (!k)
		return fail(&e, key, "unknown key");
	return set_value(c, k, value, &e);
}

/* Unquotes a "..." value in place (it only shrinks).  Returns NULL or what is
 * wrong. */
static const char *unquote(char *s)
{
	const char *r = s + 1;
	char *w = s;

	for (;;) {
		char ch = *r++;

		if (ch == '\0')
			return "missing closing '\"'";
		if (ch == '"') {
			if (*r != '\0')
				return "text after the closing '\"' (write \\\" for a quote inside)";
			*w = '\0';
			return NULL;
		}
		if (ch == '\\') {
			ch = *r++;
			if (ch != '"' && ch != '\\')
				return "only \\\" and \\\\ may follow a backslash in quotes";
		}
		*w++ = ch;
	}
}

/* Does key k, as just set, hold a secret?  RabbitMQ's default account
 * (guest:guest, which only works from the broker's own host) is public
 * knowledge, not a secret. */
static bool holds_secret(const struct config *c, const struct key *k)
{
	const void *p = cfield(c, k);

	if (k->type == K_URL) {
		struct piece pc[3];

		if (url_pieces(*(char *const *)p, pc) != 3)
			return false;
		/* pc[0] ends with the ':' before the password, pc[2] starts
		 * with the '@' after it. */
		{
			const char *pw = pc[0].s + pc[0].len;
			size_t n = (size_t)(pc[2].s - pw);

			return n > 0 && !(n == 5 && memcmp(pw, "guest", 5) == 0);
		}
	}
	if (!k->secret)
		return false;
	if (k->type == K_LIST)
		return ((const struct config_list *)p)->n > 0;
	return k->type == K_STRING && (*(char *const *)p)[0] != '\0';
}

static int load_line(struct config *c, char *line, unsigned *seen, struct errctx *e)
{
	const struct key *k;
	char *s = line, *eq, *end, *value;

	while (is_blank(*s))
		s++;
	if (*s == '\0' || *s == '#')
		return 0;
	eq = strchr(s, '=');
	if (!eq)
		return fail(e, NULL, "expected 'key = value', found no '='");
	end = eq;
	while (end > s && is_blank(end[-1]))
		end--;
	if (end == s)
		return fail(e, NULL, "missing key before '='");
	*end = '\0';
	k = find_key(s);
	if (!k)
		return fail(e, s, "unknown key");
	if (seen[k - keys])
		return fail(e, k->name, "duplicate key (already set on line %u)", seen[k - keys]);
	seen[k - keys] = e->line;

	value = eq + 1;
	while (is_blank(*value))
		value++;
	end = value + strlen(value);
	while (end > value && is_blank(end[-1]))
		end--;
	*end = '\0';
	if (*value == '"') {
		const char *what = unquote(value);

		if (what)
			return bad(e, k, NULL, "%s", what);
	}
	if (set_value(c, k, value, e) != 0)
		return -1;
	if (c->file_secret_key == NULL && holds_secret(c, k))
		c->file_secret_key = k->name;
	return 0;
}

/* Reads one line without its end of line into buf (LINE_BYTES_MAX + 1
 * bytes).  Returns its length, -1 at end of file, -2 if it is too long, -3
 * if it holds a NUL byte (which would silently cut the value short). */
static long read_line(FILE *f, char *buf)
{
	size_t n = 0;
	int ch;

	while ((ch = getc(f)) != EOF && ch != '\n') {
		if (ch == '\0')
			return -3;
		if (n == LINE_BYTES_MAX)
			return -2;
		buf[n++] = (char)ch;
	}
	if (ch == EOF && n == 0)
		return -1;
	buf[n] = '\0';
	return (long)n;
}

int config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
	char line[LINE_BYTES_MAX + 1];
	unsigned seen[NKEYS] = { 0 };
	struct errctx e;
	struct stat st;
	FILE *f;
	long n;
	int rc = 0;

	err_init(&e, err, errlen);
	e.path = path;
	f = fopen(path, "r");
	if (!f)
		return fail(&e, NULL, "%s", strerror(errno));
	/* The file as opened, not as named: it cannot change in between. */
	c->file_secret_key = NULL;
	c->file_mode = 0;
	c->file_gid = 0;
	if (fstat(fileno(f), &st) == 0) {
		c->file_mode = (uint32_t)(st.st_mode & 07777);
		c->file_gid = st.st_gid;
	}
	while (rc == 0 && (n = read_line(f, line)) != -1) {
		char *s = line;

		e.line++;
		if (n == -2) {
			rc = fail(&e, NULL, "line longer than %d bytes", LINE_BYTES_MAX);
			break;
		}
		if (n == -3) {
			rc = fail(&e, NULL, "line contains a NUL byte");
			break;
		}
		/* files written on Windows */
		if (n > 0 && line[n - 1] == '\r')
			line[n - 1] = '\0';
		/* a UTF-8 byte order mark would otherwise become part of the first key */
		if (e.line == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
			s += 3;
		rc = load_line(c, s, seen, &e);
	}
	if (rc == 0 && ferror(f)) {
		e.line = 0;
		rc = fail(&e, NULL, "read error");
	}
	fclose(f);
	return rc;
}

bool config_file_exposed(const struct config *c, gid_t own_gid)
{
	if (c->file_secret_key == NULL)
		return false;
	return (c->file_mode & S_IROTH) != 0 || ((c->file_mode & S_IRGRP) != 0 && c->file_gid != own_gid);
}

int config_apply_env(struct config *c, char *const *envp, char *err, size_t errlen)
{
	static const char prefix[] = "NOTIFYD_";
	const size_t plen = sizeof prefix - 1;
	struct errctx e;

	err_init(&e, err, errlen);
	for (; envp && *envp; envp++) {
		const char *ent = *envp;
		const char *eq = strchr(ent, '=');
		const struct key *k;

		if (strncmp(ent, prefix, plen) != 0)
			continue;
		e.env = ent;
		e.env_len = eq ? (size_t)(eq - ent) : strlen(ent);
		k = find_env_key(ent + plen, e.env_len - plen);
		if (!k)
			return fail(&e, NULL, "unknown variable: settings are NOTIFYD_ followed by a key in upper case");
		if (!eq)
			return fail(&e, k->name, "no value");
		if (set_value(c, k, eq + 1, &e))
			return -1;
	}
	return 0;
}

int config_finish(struct config *c, char *err, size_t errlen)
{
	char a[32], b[32], host[256], *queue;
	struct errctx e;

	err_init(&e, err, errlen);
	if (!c->listen_address || !*c->listen_address)
		return fail(&e, "listen_address", "must not be empty");
	if (c->auth == CONFIG_AUTH_JWT && c->jwt_secret[0] == '\0' && c->jwt_key_file[0] == '\0')
		return fail(&e, "auth", "jwt needs jwt_secret (HS*) or jwt_key_file (RS*, ES*, PS*)");
	if ((c->tls_cert_file[0] == '\0') != (c->tls_key_file[0] == '\0'))
		return fail(&e, "tls_cert_file", "tls_cert_file and tls_key_file go together");
	if ((c->amqp_cert_file[0] == '\0') != (c->amqp_key_file[0] == '\0'))
		return fail(&e, "amqp_cert_file", "amqp_cert_file and amqp_key_file go together");
	if (c->amqp_reconnect_min_ms > c->amqp_reconnect_max_ms) {
		fmt_duration(c->amqp_reconnect_min_ms, a, sizeof a);
		fmt_duration(c->amqp_reconnect_max_ms, b, sizeof b);
		return fail(&e, "amqp_reconnect_min", "must not be greater than amqp_reconnect_max (%s > %s)", a, b);
	}
	if (c->ws_pong_timeout_ms >= c->ws_ping_interval_ms) {
		fmt_duration(c->ws_pong_timeout_ms, a, sizeof a);
		fmt_duration(c->ws_ping_interval_ms, b, sizeof b);
		return fail(&e, "ws_pong_timeout", "must be shorter than ws_ping_interval (%s >= %s)", a, b);
	}
	if (!c->amqp_queue || !*c->amqp_queue) {
		char name[AMQP_SHORTSTR_MAX + 1];
		int n;

		if (gethostname(host, sizeof host) != 0)
			return fail(&e, "amqp_queue", "not set and the host name is unknown (%s)", strerror(errno));
		host[sizeof host - 1] = '\0';
		if (!*host)
			return fail(&e, "amqp_queue", "not set and the host name is empty");
		n = snprintf(name, sizeof name, "notifyd.%s", host);
		if (n < 0 || (size_t)n >= sizeof name)
			return fail(&e, "amqp_queue", "not set and the host name is too long for a queue name");
		queue = strdup(name);
		if (!queue)
			return fail(&e, "amqp_queue", "out of memory");
		free(c->amqp_queue);
		c->amqp_queue = queue;
	}
	if (!c->instance_name || !*c->instance_name) {
		char name[160];
		char *dup;

		if (gethostname(host, sizeof host) != 0)
			return fail(&e, "instance_name", "not set and the host name is unknown (%s)", strerror(errno));
		host[sizeof host - 1] = '\0';
		snprintf(name, sizeof name, "%.120s:%u", *host ? host : "localhost", (unsigned)c->listen_port);
		dup = strdup(name);
		if (!dup)
			return fail(&e, "instance_name", "out of memory");
		free(c->instance_name);
		c->instance_name = dup;
	}
	if (c->events_exchange[0] != '\0' && strcmp(c->events_exchange, c->amqp_control_exchange) == 0)
		return fail(&e, "events_exchange", "must not be amqp_control_exchange");
	return 0;
}

/* ---- printing --------------------------------------------------------- */

/* Writes the concatenated pieces as one value, quoted as needs_quotes()
 * says. */
static void put_value(FILE *out, const struct piece *pc, size_t n)
{
	size_t i, j;
	bool quote = needs_quotes(pc, n);

	if (quote)
		fputc('"', out);
	for (i = 0; i < n; i++) {
		for (j = 0; j < pc[i].len; j++) {
			char ch = pc[i].s[j];

			if (quote && (ch == '"' || ch == '\\'))
				fputc('\\', out);
			fputc(ch, out);
		}
	}
	if (quote)
		fputc('"', out);
}

static const char *enum_name(const struct key *k, int v)
{
	int i;

	for (i = 0; k->names[i]; i++)
		if (i == v)
			return k->names[i];
	return "?";	/* only a field set by hand can get here */
}

void config_print(const struct config *c, FILE *out)
{
	struct piece pc[2 * CONFIG_LIST_MAX];
	char buf[32];
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		const void *p = cfield(c, k);
		size_t n = 1;
		int v;

		switch (k->type) {
		case K_STRING:
			pc[0] = piece(*(char *const *)p);
			break;
		case K_URL:
			n = url_pieces(*(char *const *)p, pc);
			break;
		case K_LIST: {
			const struct config_list *l = p;

			n = list_pieces(l, pc);
			break;
		}
		case K_ENUM:
			memcpy(&v, p, sizeof v);
			pc[0] = piece(enum_name(k, v));
			break;
		case K_BOOL:
			pc[0] = piece(*(const bool *)p ? "on" : "off");
			break;
		case K_PORT:
			snprintf(buf, sizeof buf, "%u", (unsigned)*(const uint16_t *)p);
			pc[0] = piece(buf);
			break;
		case K_SIZE:
			fmt_value(k, *(const uint64_t *)p, buf, sizeof buf);
			pc[0] = piece(buf);
			break;
		case K_UINT:
		case K_MS:
		case K_SECONDS:
			fmt_value(k, *(const uint32_t *)p, buf, sizeof buf);
			pc[0] = piece(buf);
			break;
		}
		fprintf(out, "%s = ", k->name);
		if (k->secret && !(n == 0 || (n == 1 && pc[0].len == 0))) {
			/* Stars enough for the key's minimum, so that the printed
			 * configuration still loads (push keys: 16 characters). */
			static const char stars[] = "********************************";
			size_t ns = k->min > 3 && k->min < sizeof(stars) ? (size_t)k->min : 3;

			pc[0] = (struct piece){ stars, ns };
			n = 1;
		}
		put_value(out, pc, n);
		fputc('\n', out);
	}
}
