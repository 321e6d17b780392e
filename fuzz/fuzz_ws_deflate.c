/* fuzz_ws_deflate.c - libFuzzer target for permessage-deflate: the offer
 * parser and the bounded inflater.
 *
 * Input: byte 0 is the policy (bit 0 the Safari guard, bit 1 asking for
 * client_no_context_takeover, bits 2-4 and 5-7 the server and client window
 * bits, 9 + n % 7); byte 1 picks the inflater's cap (low nibble) and seeds
 * how its input is cut (high nibble); then the Sec-WebSocket-Extensions
 * header, up to the first NUL, its lines being separate header values; the
 * rest is deflate data: messages of [length byte][bytes], the last one
 * taking what is left.
 *
 * Checked, against ws_deflate.h's promises:
 * - negotiation: each value its own exact-size heap string; the same answer
 *   for the values joined with commas; an agreed answer is well formed,
 *   within the config (our window, the guard) and, offered back to us,
 *   agreed again unchanged; ", permessage-deflate" appended keeps a broken
 *   header broken and otherwise always agrees.
 * - inflation of the messages, fed whole and in drawn pieces (exact-size
 *   copies, some empty): the same result for each message, the same bytes
 *   unless over the cap, the sink never past the cap, errors sticky.
 * - round trips: the data compressed by ws_deflate_message inflates back
 *   exactly (TOO_BIG with a cap one byte short); the messages compressed by
 *   zlib with context takeover inflate back through one inflater.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -I<build> -Iinclude
 *   fuzz/fuzz_ws_deflate.c src/ws_deflate.c $(pkg-config --cflags --libs zlib)
 * Run:   ./fuzz_ws_deflate -max_len=4096 fuzz/corpus/ws_deflate  (or scripts/fuzz ws_deflate)
 */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ZLIB_CONST
#include <zlib.h>

#include "ws_deflate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_VALUES_MAX 8
#define FZ_MSGS_MAX 16

static const uint64_t fz_caps[16] = {
	0, 1, 5, 16, 100, 255, 256, 1000, 4095, 4096, 4097, 10000, 65536, 1u << 20,
	UINT64_C(1) << 32, UINT64_MAX
};

static void *fz_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

static uint32_t fz_hash_more(uint32_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* ---- negotiation ---------------------------------------------------------- */

static bool fz_same_params(const struct ws_deflate_params *a, const struct ws_deflate_params *b)
{
	return a->client_no_context_takeover == b->client_no_context_takeover &&
	       a->client_window_bits == b->client_window_bits &&
	       a->server_window_bits == b->server_window_bits &&
	       a->response_len == b->response_len && strcmp(a->response, b->response) == 0;
}

static void fz_check_agreed(const struct ws_deflate_config *cfg, bool guard,
			    const struct ws_deflate_params *p)
{
	static const char head[] = "permessage-deflate; server_no_context_takeover";
	const char *resp = p->response;
	bool has_cnct = strstr(resp, "; client_no_context_takeover") != NULL;
	struct ws_deflate_params again;

	if (p->response_len != strlen(resp) || p->response_len >= WS_DEFLATE_RESPONSE_MAX ||
	    strncmp(resp, head, sizeof(head) - 1) != 0)
		abort();
	if (p->client_window_bits < 8 || p->client_window_bits > 15 ||
	    p->server_window_bits < cfg->server_window_bits || p->server_window_bits > 15)
		abort();
	if (has_cnct != p->client_no_context_takeover || (guard && has_cnct))
		abort();
	if (cfg->client_no_context_takeover && !guard && !has_cnct)
		abort();
	/* our answer, offered back, is agreed as it is */
	if (ws_deflate_negotiate(cfg, &resp, 1, guard, &again) != WS_DEFLATE_AGREED ||
	    !fz_same_params(p, &again))
		abort();
}

static void fz_negotiation(const struct ws_deflate_config *cfg, bool guard, const char *hdr,
			   size_t hlen)
{
	char *values[FZ_VALUES_MAX + 1];
	char *joined;
	size_t n = 0, start = 0;
	struct ws_deflate_params p, q;
	enum ws_deflate_offer rc, rc2;
	const char *one;

	/* the last value takes the rest, line breaks and all */
	for (size_t i = 0; i <= hlen; i++) {
		if (i == hlen || (hdr[i] == '\n' && n < FZ_VALUES_MAX - 1)) {
			size_t len = i - start;

			values[n] = fz_malloc(len + 1);
			memcpy(values[n], hdr + start, len);
			values[n][len] = '\0';
			n++;
			start = i + 1;
		}
	}
	rc = ws_deflate_negotiate(cfg, (const char *const *)values, n, guard, &p);
	if (rc != WS_DEFLATE_AGREED && rc != WS_DEFLATE_NONE && rc != WS_DEFLATE_MALFORMED)
		abort();
	if (rc == WS_DEFLATE_AGREED)
		fz_check_agreed(cfg, guard, &p);
	else if (p.response_len != 0 || p.response[0] != '\0')
		abort();

	/* the values joined into one */
	joined = fz_malloc(hlen + n + 1);
	joined[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			strcat(joined, ",");
		strcat(joined, values[i]);
	}
	one = joined;
	rc2 = ws_deflate_negotiate(cfg, &one, 1, guard, &q);
	if (rc2 != rc || !fz_same_params(&p, &q))
		abort();

	/* a plain offer after it */
	values[n] = (char *)"permessage-deflate";
	rc2 = ws_deflate_negotiate(cfg, (const char *const *)values, n + 1, guard, &q);
	if (rc == WS_DEFLATE_MALFORMED ? rc2 != WS_DEFLATE_MALFORMED : rc2 != WS_DEFLATE_AGREED)
		abort();
	if (rc == WS_DEFLATE_AGREED && !fz_same_params(&p, &q))
		abort();
	if (rc2 == WS_DEFLATE_AGREED)
		fz_check_agreed(cfg, guard, &q);

	free(joined);
	for (size_t i = 0; i < n; i++)
		free(values[i]);
}

/* ---- inflation -------------------------------------------------------------- */

struct fz_sink {
	uint64_t cap;
	uint64_t bytes;		/* of the message in progress */
	uint32_t hash;
};

static int fz_sink(void *arg, const uint8_t *p, size_t n)
{
	struct fz_sink *s = arg;

	if (n == 0 || p == NULL)
		abort();
	s->bytes += n;
	if (s->bytes > s->cap)
		abort();	/* the promise: never past the cap */
	s->hash = fz_hash_more(s->hash, p, n);
	return 0;
}

struct fz_result {
	enum ws_inflate_result rc;
	uint64_t bytes;
	uint32_t hash;
};

struct fz_msgs {
	const uint8_t *p[FZ_MSGS_MAX];
	size_t len[FZ_MSGS_MAX];
	size_t n;
};

static void fz_split_msgs(const uint8_t *d, size_t n, struct fz_msgs *m)
{
	m->n = 0;
	while (n > 0 && m->n < FZ_MSGS_MAX) {
		size_t len = d[0];

		d++;
		n--;
		if (len > n || m->n == FZ_MSGS_MAX - 1)
			len = n;
		m->p[m->n] = d;
		m->len[m->n] = len;
		m->n++;
		d += len;
		n -= len;
	}
}

static uint32_t fz_rand(uint32_t *s)
{
	uint32_t x = *s ? *s : 0x9E3779B9u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

/* Every message through one inflater; pieces drawn from rng (0: whole). */
static void fz_inflate_all(const struct ws_deflate_params *params, uint64_t cap,
			   const struct fz_msgs *m, uint32_t rng, struct fz_result *res)
{
	struct ws_inflater *f = ws_inflater_new(params, cap);
	bool failed = false;

	if (f == NULL)
		abort();
	for (size_t i = 0; i < m->n; i++) {
		struct fz_sink s = { cap, 0, 2166136261u };
		enum ws_inflate_result rc = WS_INFLATE_OK;
		uint64_t size = UINT64_MAX;

		for (size_t off = 0; off < m->len[i] && rc == WS_INFLATE_OK; ) {
			size_t piece = m->len[i] - off;
			uint8_t *copy;

			if (rng != 0 && fz_rand(&rng) % 4 != 0)
				piece = fz_rand(&rng) % 8 == 0 ? 0 : 1 + fz_rand(&rng) % 40;
			if (piece > m->len[i] - off)
				piece = m->len[i] - off;
			copy = fz_malloc(piece);
			memcpy(copy, m->p[i] + off, piece);
			rc = ws_inflate_feed(f, copy, piece, fz_sink, &s);
			free(copy);
			off += piece;
		}
		if (rc == WS_INFLATE_OK) {
			rc = ws_inflate_finish(f, fz_sink, &s, &size);
			if (rc == WS_INFLATE_OK && size != s.bytes)
				abort();
		}
		if (failed && rc != res[i - 1].rc)
			abort();	/* errors are sticky */
		if (rc != WS_INFLATE_OK && rc != WS_INFLATE_TOO_BIG && rc != WS_INFLATE_BAD_DATA)
			abort();
		res[i].rc = rc;
		res[i].bytes = s.bytes;
		res[i].hash = s.hash;
		failed = rc != WS_INFLATE_OK;
	}
	ws_inflater_free(f);
}

static void fz_inflation(const struct ws_deflate_params *params, uint64_t cap,
			 const uint8_t *d, size_t n, uint32_t rng)
{
	struct fz_msgs m;
	struct fz_result whole[FZ_MSGS_MAX], drawn[FZ_MSGS_MAX];

	fz_split_msgs(d, n, &m);
	fz_inflate_all(params, cap, &m, 0, whole);
	fz_inflate_all(params, cap, &m, rng | 1, drawn);
	for (size_t i = 0; i < m.n; i++) {
		if (whole[i].rc != drawn[i].rc)
			abort();
		/* the same bytes before invalid data too; over the cap, what
		 * was handed over depends on the pieces */
		if (whole[i].rc != WS_INFLATE_TOO_BIG &&
		    (whole[i].bytes != drawn[i].bytes || whole[i].hash != drawn[i].hash))
			abort();
	}
}

/* ---- round trips -------------------------------------------------------------- */

static void fz_round_trip_once(const struct ws_deflate_config *cfg, const uint8_t *d, size_t n)
{
	struct ws_deflater *z = ws_deflater_new(cfg);
	uint8_t *out = NULL;
	size_t outlen = 0;
	enum ws_deflate_result rc;

	if (z == NULL)
		abort();
	rc = ws_deflate_message(z, d, n, &out, &outlen);
	if (rc == WS_DEFLATE_OK) {
		struct fz_msgs m = { { out }, { outlen }, 1 };
		struct fz_result res[1];
		struct ws_deflate_params p;
		const char *offer = "permessage-deflate";

		if (outlen >= n)
			abort();
		if (ws_deflate_negotiate(cfg, &offer, 1, false, &p) != WS_DEFLATE_AGREED)
			abort();
		fz_inflate_all(&p, n, &m, 7, res);
		if (res[0].rc != WS_INFLATE_OK || res[0].bytes != n ||
		    res[0].hash != fz_hash_more(2166136261u, d, n))
			abort();
		fz_inflate_all(&p, n - 1, &m, 0, res);
		if (res[0].rc != WS_INFLATE_TOO_BIG)
			abort();
	} else if (rc != WS_DEFLATE_NOT_SMALLER || out != NULL || outlen != 0) {
		abort();
	}
	free(out);
	ws_deflater_free(z);
}

/* A client keeping its context: one zlib stream, each message sync-flushed
 * and cut (RFC 7692 7.2.1). */
static void fz_round_trip_context(const uint8_t *d, size_t n, int bits)
{
	struct fz_msgs m, zm;
	struct fz_result res[FZ_MSGS_MAX];
	uint8_t *zbuf[FZ_MSGS_MAX];
	z_stream zs;
	int rc;

	fz_split_msgs(d, n, &m);
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, 6, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	zm.n = m.n;
	for (size_t i = 0; i < m.n; i++) {
		size_t cap = m.len[i] + m.len[i] / 8 + 64;	/* stored blocks at worst */

		zbuf[i] = fz_malloc(cap);
		zs.next_in = m.p[i];
		zs.avail_in = (uInt)m.len[i];
		zs.next_out = zbuf[i];
		zs.avail_out = (uInt)cap;
		rc = deflate(&zs, Z_SYNC_FLUSH);
		zm.p[i] = zbuf[i];
		zm.len[i] = 0;
		/* An empty message right after a flush makes nothing at all
		 * (Z_BUF_ERROR): sent as an empty payload, inflated as empty. */
		if (rc == Z_BUF_ERROR && m.len[i] == 0 && zs.avail_out == cap)
			continue;
		if (rc != Z_OK || zs.avail_in != 0 || zs.avail_out == 0)
			abort();
		zm.len[i] = cap - zs.avail_out - 4;
		if (memcmp(zbuf[i] + zm.len[i], "\x00\x00\xff\xff", 4) != 0)
			abort();
	}
	deflateEnd(&zs);
	{
		struct ws_deflate_params p;
		const char *offer = bits == 15 ? "permessage-deflate" :
		    bits == 12 ? "permessage-deflate; client_max_window_bits=12" :
		    "permessage-deflate; client_max_window_bits=9";
		struct ws_deflate_config cfg;

		ws_deflate_config_default(&cfg);
		cfg.client_no_context_takeover = false;
		if (ws_deflate_negotiate(&cfg, &offer, 1, false, &p) != WS_DEFLATE_AGREED ||
		    p.client_window_bits != bits || p.client_no_context_takeover)
			abort();
		fz_inflate_all(&p, 1u << 16, &zm, 3, res);
	}
	for (size_t i = 0; i < m.n; i++) {
		if (res[i].rc != WS_INFLATE_OK || res[i].bytes != m.len[i] ||
		    res[i].hash != fz_hash_more(2166136261u, m.p[i], m.len[i]))
			abort();
		free(zbuf[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ws_deflate_config cfg;
	struct ws_deflate_params p;
	const uint8_t *nul, *rest;
	size_t hlen, rlen;
	bool guard;
	enum ws_deflate_offer rc;
	char *hdr;
	const char *one;

	if (size < 2)
		return 0;
	ws_deflate_config_default(&cfg);
	guard = (data[0] & 1) != 0;
	cfg.client_no_context_takeover = (data[0] & 2) != 0;
	cfg.server_window_bits = (uint8_t)(9 + ((data[0] >> 2) & 7) % 7);
	cfg.client_window_bits = (uint8_t)(9 + ((data[0] >> 5) & 7) % 7);
	nul = memchr(data + 2, '\0', size - 2);
	hlen = nul != NULL ? (size_t)(nul - (data + 2)) : size - 2;
	rest = nul != NULL ? nul + 1 : data + size;
	rlen = (size_t)(data + size - rest);

	fz_negotiation(&cfg, guard, (const char *)data + 2, hlen);

	/* the inflater as this header agreed it, or with defaults */
	hdr = fz_malloc(hlen + 1);
	memcpy(hdr, data + 2, hlen);
	hdr[hlen] = '\0';
	one = hdr;
	rc = ws_deflate_negotiate(&cfg, &one, 1, guard, &p);
	fz_inflation(rc == WS_DEFLATE_AGREED ? &p : NULL, fz_caps[data[1] & 15], rest, rlen,
		     0x01000193u * (uint32_t)((data[1] >> 4) + 1));
	free(hdr);

	fz_round_trip_once(&cfg, rest, rlen);
	fz_round_trip_context(rest, rlen, (data[1] & 0x30) == 0 ? 9 : (data[1] & 0x30) == 0x10 ? 12 : 15);
	return 0;
}
