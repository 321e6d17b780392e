/* bench_common.h - small helpers shared by the benchmark tools (header only).
 *
 * Clocks, a log-linear latency histogram (HDR-like, < 0.8% error), the
 * message body every publisher writes and every receiver parses, and a few
 * option helpers.  Every message body is one JSON object:
 *
 *   {"user_id":"17","seq":42,"n":12345,"ts":1700000000123456789,"pad":"..."}
 *   {"broadcast":true,"seq":5,"n":5,"ts":1700000000123456789,"pad":"..."}
 *
 * seq: per-user sequence (unicast) or broadcast number; n: global publish
 * number; ts: CLOCK_REALTIME in ns when the publisher sent it (one clock for
 * all processes on the box).
 *
 * Options: every tool describes its options once, in a table of struct
 * bench_opt; bench_options() parses argv with getopt_long from it and
 * bench_usage() prints the usage from it.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t now_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void sleep_until_mono_ns(uint64_t t)
{
	struct timespec ts = { (time_t)(t / 1000000000u), (long)(t % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* ---- histogram ---------------------------------------------------------
 * Values (ns) below 128 have their own bucket; above, 128 buckets per power
 * of two.  7424 buckets cover all of uint64_t. */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t max;
	uint64_t min;
	long double sum;
	uint64_t b[HIST_BUCKETS];
};

static inline unsigned hist_index(uint64_t v)
{
	unsigned e;

	if (v < HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	return (e - HIST_SUB_BITS + 1) * HIST_SUB + (unsigned)((v >> (e - HIST_SUB_BITS)) - HIST_SUB);
}

/* Middle of the bucket's range. */
static inline uint64_t hist_value(unsigned i)
{
	unsigned e, shift;
	uint64_t m;

	if (i < HIST_SUB)
		return i;
	e = i / HIST_SUB + HIST_SUB_BITS - 1;
	m = i % HIST_SUB + HIST_SUB;
	shift = e - HIST_SUB_BITS;
	return (m << shift) + ((1ull << shift) >> 1);
}

static inline void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static inline void hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->count++;
	h->sum += (long double)v;
	if (v > h->max)
		h->max = v;
	if (v < h->min)
		h->min = v;
}

static inline void hist_merge(struct hist *to, const struct hist *from)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		to->b[i] += from->b[i];
	to->count += from->count;
	to->sum += from->sum;
	if (from->max > to->max)
		to->max = from->max;
	if (from->min < to->min)
		to->min = from->min;
}

/* q in [0,1]; 0 when empty.  The exact max for q == 1. */
static inline uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t want, seen = 0;

	if (h->count == 0)
		return 0;
	if (q >= 1.0)
		return h->max;
	want = (uint64_t)(q * (double)h->count);
	if (want >= h->count)
		want = h->count - 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen > want) {
			uint64_t v = hist_value(i);

			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

/* Prints "NAME":{"n":..,"mean_ms":..,"p50_ms":..,...} (no leading comma). */
static inline void hist_json(FILE *f, const char *name, const struct hist *h)
{
	fprintf(f, "\"%s\":{\"n\":%" PRIu64 ",\"mean_ms\":%.4f,\"p50_ms\":%.4f,\"p90_ms\":%.4f,"
	    "\"p99_ms\":%.4f,\"p999_ms\":%.4f,\"max_ms\":%.4f}", name, h->count,
	    h->count ? (double)(h->sum / h->count) / 1e6 : 0.0,
	    hist_quantile(h, 0.50) / 1e6, hist_quantile(h, 0.90) / 1e6,
	    hist_quantile(h, 0.99) / 1e6, hist_quantile(h, 0.999) / 1e6,
	    (double)h->max / 1e6);
}

/* ---- message bodies ---------------------------------------------------- */
struct body_fields {
	int64_t seq;
	int64_t n;
	uint64_t ts;
	int broadcast;
	int ok;
};

static inline int64_t parse_i64_after(const char *p, const char *end, const char *key, size_t klen, int *found)
{
	const char *k = memmem(p, (size_t)(end - p), key, klen);
	int64_t v = 0;
	int neg = 0;

	*found = 0;
	if (k == NULL)
		return 0;
	k += klen;
	if (k < end && *k == '-') {
		neg = 1;
		k++;
	}
	if (k >= end || *k < '0' || *k > '9')
		return 0;
	while (k < end && *k >= '0' && *k <= '9')
		v = v * 10 + (*k++ - '0');
	*found = 1;
	return neg ? -v : v;
}

/* Finds "seq", "n", "ts" and "broadcast":true anywhere in [p, p+len). */
static inline struct body_fields body_parse(const char *p, size_t len)
{
	struct body_fields f = { 0 };
	const char *end = p + len;
	int a, b, c;

	f.seq = parse_i64_after(p, end, "\"seq\":", 6, &a);
	f.ts = (uint64_t)parse_i64_after(p, end, "\"ts\":", 5, &b);
	f.n = parse_i64_after(p, end, "\"n\":", 4, &c);
	f.broadcast = memmem(p, len, "\"broadcast\":true", 16) != NULL;
	f.ok = a && b;
	return f;
}

/* Writes the body into buf (size cap) and returns its length.  user is
 * NULL for a broadcast.  pad: extra bytes of 'x' to reach a size. */
static inline int body_format(char *buf, size_t cap, const char *user, int64_t seq, int64_t n,
    uint64_t ts, const char *pad)
{
	if (user != NULL)
		return snprintf(buf, cap, "{\"user_id\":\"%s\",\"seq\":%" PRId64 ",\"n\":%" PRId64
		    ",\"ts\":%" PRIu64 ",\"title\":\"bench\",\"pad\":\"%s\"}", user, seq, n, ts, pad);
	return snprintf(buf, cap, "{\"broadcast\":true,\"seq\":%" PRId64 ",\"n\":%" PRId64
	    ",\"ts\":%" PRIu64 ",\"title\":\"bench\",\"pad\":\"%s\"}", seq, n, ts, pad);
}

static inline char *make_pad(long bytes)
{
	char *p;

	if (bytes < 0)
		bytes = 0;
	p = malloc((size_t)bytes + 1);
	if (p == NULL) {
		perror("malloc");
		exit(1);
	}
	memset(p, 'x', (size_t)bytes);
	p[bytes] = '\0';
	return p;
}

/* A "typical JSON" pad of exactly `bytes` bytes (when bytes >= 64) for
 * body_format: it closes the "pad" string and adds what an activity digest
 * of a team carries (event ids, the colleague who acted, a link into one of
 * a few projects, a title in words, a time), then opens a "note" string that
 * body_format's closing quote ends, so the body stays valid JSON.  The ids
 * and titles are random, the people and projects a small set, as in a
 * real feed.  Deterministic (fixed seed): every message has the same pad,
 * which a broadcast compressed once per message sees anyway.  make_pad's 'x'
 * run would compress 50-fold and say nothing about real payloads. */
static inline unsigned typ_rnd(unsigned *r)
{
	*r ^= *r << 13;
	*r ^= *r >> 17;
	*r ^= *r << 5;
	return *r;
}

static inline char *make_typical_pad(long bytes)
{
	static const char *const words[] = { "the", "release", "build", "review", "comment", "merged", "pull",
		"request", "deploy", "staging", "production", "invoice", "payment", "order", "shipped", "your",
		"team", "meeting", "moved", "to", "tomorrow", "at", "new", "message", "from", "project", "update",
		"alert", "threshold", "exceeded", "on", "server", "disk", "usage", "report", "ready", "download",
		"weekly", "summary", "assigned", "ticket", "priority", "high", "low", "customer", "replied",
		"invitation", "accepted", "calendar", "event", "starts", "in", "minutes", "password", "changed",
		"security", "login", "device", "approved", "rejected" };
	static const char *const people[] = { "Anna Schmidt", "Ben Okafor", "Carla Rossi", "David Nguyen",
		"Elif Kowalski", "Farid Haddad", "Grace Svensson", "Hugo Moreau" };
	static const char *const types[] = { "comment", "mention", "assignment", "status", "reminder" };
	static const char *const projects[] = { "billing-api", "mobile-app", "web-frontend" };
	static const char *const kinds[] = { "issue", "pull", "doc" };
	unsigned r = 0x2545f491u, sec = 0;
	size_t cap = (size_t)(bytes < 64 ? 64 : bytes) + 1, len = 0;
	char *p, item[1024];
	int first_item = 1;

	if (bytes < 64)
		return make_pad(bytes);
	p = malloc(cap);
	if (p == NULL) {
		perror("malloc");
		exit(1);
	}
	len = (size_t)snprintf(p, cap, "\",\"items\":[");
	for (;;) {
		char title[300];
		size_t tl = 0;
		unsigned nw = 4 + typ_rnd(&r) % 5, k, who = typ_rnd(&r) % 8, pr = typ_rnd(&r) % 3;
		unsigned id1 = typ_rnd(&r), id2 = typ_rnd(&r) & 0xffff, ty = typ_rnd(&r) % 5, ki = typ_rnd(&r) % 3;
		unsigned num = 100 + typ_rnd(&r) % 900, cm = typ_rnd(&r) % 10000;
		int n;

		for (k = 0; k < nw; k++)
			tl += (size_t)snprintf(title + tl, sizeof(title) - tl, "%s%s", k ? " " : "",
			    words[typ_rnd(&r) % (sizeof(words) / sizeof(words[0]))]);
		sec += 1 + typ_rnd(&r) % 300;
		n = snprintf(item, sizeof(item),
		    "%s{\"id\":\"evt_%08x%04x\",\"type\":\"%s\",\"actor\":{\"id\":%u,\"name\":\"%s\","
		    "\"avatar\":\"https://cdn.example.com/avatars/%u.png\"},\"object\":{\"kind\":\"%s\","
		    "\"project\":\"%s\",\"url\":\"https://app.example.com/%s/%ss/%u#comment-%u\",\"title\":\"%s\"},"
		    "\"created_at\":\"2026-12-05T%02u:%02u:%02uZ\",\"read\":false}",
		    first_item ? "" : ",", id1, id2, types[ty], 10400 + who, people[who], 10400 + who, kinds[ki],
		    projects[pr], projects[pr], kinds[ki], num, cm, title, 9 + sec / 3600 % 12, sec / 60 % 60, sec % 60);
		if (len + (size_t)n + 12 + 1 > (size_t)bytes)
			break;
		memcpy(p + len, item, (size_t)n);
		len += (size_t)n;
		first_item = 0;
	}
	len += (size_t)snprintf(p + len, cap - len, "],\"note\":\"");
	while (len < (size_t)bytes) {
		const char *w = words[typ_rnd(&r) % (sizeof(words) / sizeof(words[0]))];

		p[len++] = ' ';
		for (; *w && len < (size_t)bytes; w++)
			p[len++] = *w;
	}
	p[len] = '\0';
	return p;
}

/* Raise the soft limit of open files to the hard limit; returns it. */
static inline long raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	return (long)rl.rlim_cur;
}

__attribute__((noreturn))
static inline void die(const char *prog, const char *msg)
{
	fprintf(stderr, "%s: %s\n", prog, msg);
	exit(2);
}

static inline double parse_double_opt(const char *prog, const char *name, const char *v)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno != 0 || end == v || *end != '\0' || d < 0) {
		fprintf(stderr, "%s: bad value for %s: %s\n", prog, name, v);
		exit(2);
	}
	return d;
}

static inline long parse_long_opt(const char *prog, const char *name, const char *v)
{
	char *end;
	long l;

	errno = 0;
	l = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || l < 0) {
		fprintf(stderr, "%s: bad value for %s: %s\n", prog, name, v);
		exit(2);
	}
	return l;
}

/* ---- options ------------------------------------------------------------ */
enum bench_opt_kind {
	OPT_STR,	/* const char **: the argument */
	OPT_LONG,	/* long *: a number >= 0 */
	OPT_INT,	/* int *: a number >= 0 that fits an int */
	OPT_DOUBLE,	/* double *: a number >= 0 */
	OPT_FLAG,	/* int *: set to 1; no argument */
	OPT_FN		/* fn(prog, argument, dst) */
};

struct bench_opt {
	const char *name;	/* long name without "--"; NULL: the letter only */
	char letter;		/* short option; 0: none */
	enum bench_opt_kind kind;
	void *dst;
	const char *arg;	/* the argument's name in the usage ("N", "ADDR") */
	const char *help;	/* the rest of its usage line */
	void (*fn)(const char *prog, const char *arg, void *dst);
};

/* Table entries: OPT("port", 'P', OPT_INT, &o.port, "N", "server port"),
 * OPT_WITH(fn, "header", 0, buf, "'H: V'", "..."), OPT_END last. */
#define OPT(name, letter, kind, dst, arg, help) { (name), (letter), (kind), (dst), (arg), (help), NULL }
#define OPT_WITH(fn, name, letter, dst, arg, help) \
	{ (name), (letter), OPT_FN, (dst), (arg), (help), (fn) }
#define OPT_END { NULL, 0, OPT_STR, NULL, NULL, NULL, NULL }

#define BENCH_OPTS_MAX 48

/* The usage (to stderr), then exit(2).  synopsis follows "usage: prog ". */
__attribute__((noreturn))
static inline void bench_usage(const char *prog, const char *synopsis, const struct bench_opt *t)
{
	fprintf(stderr, "usage: %s %s\n", prog, synopsis);
	for (; t->name != NULL || t->letter != 0; t++) {
		char left[64];
		int n = 0;

		if (t->letter != 0)
			n += snprintf(left + n, sizeof(left) - (size_t)n, "-%c%s", t->letter,
			    t->name != NULL ? ", " : "");
		if (t->name != NULL)
			n += snprintf(left + n, sizeof(left) - (size_t)n, "--%s", t->name);
		if (t->arg != NULL)
			snprintf(left + n, sizeof(left) - (size_t)n, " %s", t->arg);
		if (t->help != NULL)
			fprintf(stderr, "  %-24s %s\n", left, t->help);
		else
			fprintf(stderr, "  %s\n", left);
	}
	exit(2);
}

/* Parses argv (every argument an option) into the table's places; a bad
 * option, value or stray argument prints the usage; -h / --help too. */
static inline void bench_options(const char *prog, const char *synopsis, const struct bench_opt *t,
    int argc, char **argv)
{
	struct option lo[BENCH_OPTS_MAX + 2];
	char shorts[2 * BENCH_OPTS_MAX + 2];
	int n = 0, nl = 0, ns = 0, ch;

	for (; t[n].name != NULL || t[n].letter != 0; n++) {
		int has_arg = t[n].kind == OPT_FLAG ? no_argument : required_argument;

		if (n >= BENCH_OPTS_MAX)
			die(prog, "too many options");
		if (t[n].name != NULL)
			lo[nl++] = (struct option){ t[n].name, has_arg, NULL, 256 + n };
		if (t[n].letter != 0) {
			shorts[ns++] = t[n].letter;
			if (has_arg == required_argument)
				shorts[ns++] = ':';
		}
	}
	lo[nl++] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[nl] = (struct option){ NULL, 0, NULL, 0 };
	shorts[ns++] = 'h';
	shorts[ns] = '\0';
	while ((ch = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		const struct bench_opt *e = NULL;
		char name[64];
		long l;

		if (ch >= 256 && ch < 256 + n)
			e = &t[ch - 256];
		else if (ch != 'h' && ch != '?' && ch != ':')
			for (int i = 0; i < n && e == NULL; i++)
				if (t[i].letter == ch)
					e = &t[i];
		if (e == NULL)
			bench_usage(prog, synopsis, t);
		if (e->name != NULL)
			snprintf(name, sizeof(name), "--%s", e->name);
		else
			snprintf(name, sizeof(name), "-%c", e->letter);
		switch (e->kind) {
		case OPT_STR:
			*(const char **)e->dst = optarg;
			break;
		case OPT_LONG:
			*(long *)e->dst = parse_long_opt(prog, name, optarg);
			break;
		case OPT_INT:
			l = parse_long_opt(prog, name, optarg);
			if (l > INT_MAX) {
				fprintf(stderr, "%s: bad value for %s: %s\n", prog, name, optarg);
				exit(2);
			}
			*(int *)e->dst = (int)l;
			break;
		case OPT_DOUBLE:
			*(double *)e->dst = parse_double_opt(prog, name, optarg);
			break;
		case OPT_FLAG:
			*(int *)e->dst = 1;
			break;
		case OPT_FN:
			e->fn(prog, optarg, e->dst);
			break;
		}
	}
	if (optind != argc)
		bench_usage(prog, synopsis, t);
}

/* The request path: tmpl with every "{u}" replaced by user, cut to fit
 * out (cap bytes, '\0' included). */
static inline void path_for_user(char *out, size_t cap, const char *tmpl, const char *user)
{
	size_t pl = 0, ul = strlen(user);

	for (const char *t = tmpl; *t != '\0'; t++) {
		if (t[0] == '{' && t[1] == 'u' && t[2] == '}') {
			if (pl + ul >= cap)
				break;
			memcpy(out + pl, user, ul);
			pl += ul;
			t += 2;
		} else {
			if (pl + 1 >= cap)
				break;
			out[pl++] = *t;
		}
	}
	out[pl] = '\0';
}

/* dst = host:port, host an IPv4 address; dies otherwise. */
static inline void ipv4_dst(const char *prog, struct sockaddr_in *dst, const char *host, int port)
{
	memset(dst, 0, sizeof(*dst));
	dst->sin_family = AF_INET;
	dst->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &dst->sin_addr) != 1)
		die(prog, "--host must be an IPv4 address");
}

/* Creates (atomically) a file whose presence tells a script we are ready.
 * 0, or -1 if it could not be written; nothing to do without a path. */
static inline int touch_file(const char *path, const char *content)
{
	char tmp[4096];
	FILE *f;

	if (path == NULL || path[0] == '\0')
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	if (content != NULL)
		fputs(content, f);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return -1;
	return 0;
}

/* Sum of VmRSS (kB) over a comma-separated list of pids; -1 if none readable. */
static inline long rss_kb_of(const char *pids)
{
	char list[1024], *save = NULL, *tok;
	long total = -1;

	if (pids == NULL || pids[0] == '\0')
		return -1;
	snprintf(list, sizeof(list), "%s", pids);
	for (tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char path[64], line[256];
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%s/status", tok);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL) {
			long kb;

			if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) {
				total = (total < 0 ? 0 : total) + kb;
				break;
			}
		}
		fclose(f);
	}
	return total;
}

#endif
