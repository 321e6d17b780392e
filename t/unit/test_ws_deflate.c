/* test_ws_deflate.c - RFC 7692 permessage-deflate: the offer, compression
 * once per message, the bounded inflater, and the frame reader's RSV1 rules
 * when the extension is on.  Names follow the RFC corner they cover.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ZLIB_CONST
#include <zlib.h>

#include "tap.h"
#include "utf8.h"
#include "ws_deflate.h"
#include "ws_frame.h"

#define PMD "permessage-deflate; server_no_context_takeover"
#define CNCT "; client_no_context_takeover"
#define GUARD true
#define NOGUARD false

/* ---- helpers ------------------------------------------------------------ */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const uint8_t *p, size_t n)
{
	if (n == 0)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (b->p == NULL)
			abort();
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static int sink_buf(void *arg, const uint8_t *p, size_t n)
{
	buf_add(arg, p, n);
	return 0;
}

static uint32_t rng_state = 2463534242u;

static uint32_t rng(void)
{
	uint32_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	rng_state = x;
	return x;
}

/* JSON-like text that compresses about as well as notifications do, with
 * multi-byte UTF-8 in it. */
static uint8_t *make_json(size_t len)
{
	static const char *const words[] = {
		"{\"user_id\":\"", "\",\"title\":\"", "Caf\xc3\xa9 ", "na\xc3\xafve ",
		"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e ", "\xf0\x9f\x98\x80 ", "message ",
		"\",\"ts\":", "1700000000", ",\"read\":false}", "notification ", "hello "
	};
	uint8_t *p = malloc(len + 1);
	size_t o = 0;

	if (p == NULL)
		abort();
	while (o < len) {
		const char *w = words[rng() % (sizeof(words) / sizeof(words[0]))];
		size_t n = strlen(w);

		if (n > len - o)
			n = 0;
		memcpy(p + o, w, n);
		o += n;
		if (n == 0)
			p[o++] = ' ';
	}
	p[len] = '\0';
	return p;
}

static struct ws_deflate_params params_for(const char *offer, bool impose_cnct)
{
	struct ws_deflate_config cfg;
	struct ws_deflate_params p;

	ws_deflate_config_default(&cfg);
	cfg.client_no_context_takeover = impose_cnct;
	if (ws_deflate_negotiate(&cfg, &offer, 1, false, &p) != WS_DEFLATE_AGREED)
		abort();
	return p;
}

/* Inflates one whole message fed in pieces of step bytes (0: whole). */
static enum ws_inflate_result inflate_msg(struct ws_inflater *f, const uint8_t *p, size_t n,
    size_t step, struct buf *out)
{
	enum ws_inflate_result rc = WS_INFLATE_OK;
	size_t off = 0;

	if (step == 0)
		step = n ? n : 1;
	while (off < n && rc == WS_INFLATE_OK) {
		size_t k = n - off < step ? n - off : step;

		rc = ws_inflate_feed(f, p + off, k, sink_buf, out);
		off += k;
	}
	if (rc == WS_INFLATE_OK)
		rc = ws_inflate_finish(f, sink_buf, out, NULL);
	return rc;
}

/* ---- negotiation ----------------------------------------------------------- */

struct neg_case {
	const char *name;
	const char *header;
	bool guard;
	enum ws_deflate_offer want;
	const char *response;		/* when AGREED */
	uint8_t client_bits, server_bits;
	bool client_nct;
};

static void check_negotiation(const struct ws_deflate_config *cfg, const struct neg_case *c)
{
	struct ws_deflate_params p;
	enum ws_deflate_offer got = ws_deflate_negotiate(cfg, &c->header, 1, c->guard, &p);
	int good = got == c->want && p.response_len == strlen(p.response);

	if (good && got == WS_DEFLATE_AGREED)
		good = strcmp(p.response, c->response) == 0 && p.client_window_bits == c->client_bits &&
		       p.server_window_bits == c->server_bits && p.client_no_context_takeover == c->client_nct;
	else if (good)
		good = p.response[0] == '\0' && p.response_len == 0;
	ok(good, "negotiate_%s: [%s] -> %d (got %d \"%s\" client %u server %u cnct %d)", c->name,
	   c->header, c->want, got, p.response, p.client_window_bits, p.server_window_bits,
	   p.client_no_context_takeover);
}

static void test_negotiation_default(void)
{
	static const struct neg_case cases[] = {
		{ "plain", "permessage-deflate", NOGUARD, WS_DEFLATE_AGREED, PMD CNCT, 15, 15, true },
		{ "chromium", "permessage-deflate; client_max_window_bits", NOGUARD,
		  WS_DEFLATE_AGREED, PMD CNCT, 15, 15, true },
		{ "client_bits_value", "permessage-deflate; client_max_window_bits=10", NOGUARD,
		  WS_DEFLATE_AGREED, PMD CNCT "; client_max_window_bits=10", 10, 15, true },
		{ "client_bits_8_accepted", "permessage-deflate; client_max_window_bits=8", NOGUARD,
		  WS_DEFLATE_AGREED, PMD CNCT "; client_max_window_bits=8", 8, 15, true },
		{ "server_bits_15_echoed", "permessage-deflate; server_max_window_bits=15", NOGUARD,
		  WS_DEFLATE_AGREED, PMD CNCT "; server_max_window_bits=15", 15, 15, true },
		{ "server_bits_below_ours_declined", "permessage-deflate; server_max_window_bits=10",
		  NOGUARD, WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "server_bits_8_declined", "permessage-deflate; server_max_window_bits=8", NOGUARD,
		  WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "server_nct_offered", "permessage-deflate; server_no_context_takeover", NOGUARD,
		  WS_DEFLATE_AGREED, PMD CNCT, 15, 15, true },
		{ "client_nct_offered", "permessage-deflate; client_no_context_takeover", NOGUARD,
		  WS_DEFLATE_AGREED, PMD CNCT, 15, 15, true },
		{ "all_parameters", "permessage-deflate; server_no_context_takeover; "
		  "client_no_context_takeover; server_max_window_bits=15; client_max_window_bits=15",
		  NOGUARD, WS_DEFLATE_AGREED, PMD CNCT "; server_max_window_bits=15; "
		  "client_max_window_bits=15", 15, 15, true },
		/* RFC 7692 5.1: offers in order of preference; the first we can
		 * take wins. */
		{ "rfc7692_5_1_second_offer", "permessage-deflate; client_max_window_bits; "
		  "server_max_window_bits=10, permessage-deflate; client_max_window_bits", NOGUARD,
		  WS_DEFLATE_AGREED, PMD CNCT, 15, 15, true },
		{ "first_acceptable_wins", "permessage-deflate; client_max_window_bits=12, "
		  "permessage-deflate", NOGUARD, WS_DEFLATE_AGREED,
		  PMD CNCT "; client_max_window_bits=12", 12, 15, true },
		{ "other_extension_first", "x-webkit-deflate-frame, permessage-deflate; "
		  "client_max_window_bits", NOGUARD, WS_DEFLATE_AGREED, PMD CNCT, 15, 15, true },
		{ "other_extension_params", "foo; bar=1; baz=\"q\", permessage-deflate", NOGUARD,
		  WS_DEFLATE_AGREED, PMD CNCT, 15, 15, true },
		{ "only_other_extensions", "foo, bar; baz=1", NOGUARD, WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "empty", "", NOGUARD, WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "blank", " \t ", NOGUARD, WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "empty_elements", " , ,permessage-deflate ,", NOGUARD, WS_DEFLATE_AGREED,
		  PMD CNCT, 15, 15, true },
		{ "whitespace_everywhere", "permessage-deflate \t; client_max_window_bits = 12 ",
		  NOGUARD, WS_DEFLATE_AGREED, PMD CNCT "; client_max_window_bits=12", 12, 15, true },
		/* RFC 7692 section 5: decline, do not fail. */
		{ "unknown_param_declined", "permessage-deflate; foo", NOGUARD, WS_DEFLATE_NONE,
		  NULL, 0, 0, false },
		{ "unknown_param_next_offer", "permessage-deflate; foo=1, permessage-deflate",
		  NOGUARD, WS_DEFLATE_AGREED, PMD CNCT, 15, 15, true },
		{ "duplicate_server_nct", "permessage-deflate; server_no_context_takeover; "
		  "server_no_context_takeover", NOGUARD, WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "duplicate_client_bits", "permessage-deflate; client_max_window_bits=10; "
		  "client_max_window_bits=10", NOGUARD, WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "duplicate_client_bits_novalue", "permessage-deflate; client_max_window_bits; "
		  "client_max_window_bits", NOGUARD, WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "server_bits_no_value", "permessage-deflate; server_max_window_bits", NOGUARD,
		  WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "server_bits_16", "permessage-deflate; server_max_window_bits=16", NOGUARD,
		  WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "client_bits_7", "permessage-deflate; client_max_window_bits=7", NOGUARD,
		  WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "client_bits_leading_zero", "permessage-deflate; client_max_window_bits=09",
		  NOGUARD, WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "client_bits_015", "permessage-deflate; client_max_window_bits=015", NOGUARD,
		  WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "client_bits_letters", "permessage-deflate; client_max_window_bits=1a", NOGUARD,
		  WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "client_bits_long", "permessage-deflate; client_max_window_bits=100000000015",
		  NOGUARD, WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "nct_with_value", "permessage-deflate; server_no_context_takeover=1", NOGUARD,
		  WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "client_nct_quoted_value", "permessage-deflate; client_no_context_takeover=\"x\"",
		  NOGUARD, WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "names_are_lower_case", "permessage-deflate; Client_Max_Window_Bits", NOGUARD,
		  WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "extension_name_exact", "Permessage-Deflate", NOGUARD, WS_DEFLATE_NONE, NULL, 0, 0,
		  false },
		/* RFC 6455 9.1: a quoted value is its unescaped token. */
		{ "quoted_value", "permessage-deflate; client_max_window_bits=\"10\"", NOGUARD,
		  WS_DEFLATE_AGREED, PMD CNCT "; client_max_window_bits=10", 10, 15, true },
		{ "quoted_escaped", "permessage-deflate; server_max_window_bits=\"1\\5\"", NOGUARD,
		  WS_DEFLATE_AGREED, PMD CNCT "; server_max_window_bits=15", 15, 15, true },
		{ "quoted_invalid_value", "permessage-deflate; client_max_window_bits=\"abc\"",
		  NOGUARD, WS_DEFLATE_NONE, NULL, 0, 0, false },
		/* The grammar broken: reported, so the caller can answer 400. */
		{ "bad_trailing_semicolon", "permessage-deflate;", NOGUARD, WS_DEFLATE_MALFORMED,
		  NULL, 0, 0, false },
		{ "bad_empty_param_name", "permessage-deflate; =10", NOGUARD, WS_DEFLATE_MALFORMED,
		  NULL, 0, 0, false },
		{ "bad_no_extension_name", "; client_max_window_bits", NOGUARD, WS_DEFLATE_MALFORMED,
		  NULL, 0, 0, false },
		{ "bad_junk_after_name", "permessage-deflate x", NOGUARD, WS_DEFLATE_MALFORMED, NULL,
		  0, 0, false },
		{ "bad_equals_no_value", "permessage-deflate; client_max_window_bits=", NOGUARD,
		  WS_DEFLATE_MALFORMED, NULL, 0, 0, false },
		{ "bad_unterminated_quote", "permessage-deflate; client_max_window_bits=\"10",
		  NOGUARD, WS_DEFLATE_MALFORMED, NULL, 0, 0, false },
		{ "bad_quoted_not_token", "permessage-deflate; x=\"a b\"", NOGUARD,
		  WS_DEFLATE_MALFORMED, NULL, 0, 0, false },
		{ "bad_quoted_comma", "permessage-deflate; client_max_window_bits=\"1,0\"", NOGUARD,
		  WS_DEFLATE_MALFORMED, NULL, 0, 0, false },
		{ "bad_quoted_empty", "permessage-deflate; x=\"\"", NOGUARD, WS_DEFLATE_MALFORMED,
		  NULL, 0, 0, false },
		{ "bad_escape_at_end", "permessage-deflate; x=\"1\\", NOGUARD, WS_DEFLATE_MALFORMED,
		  NULL, 0, 0, false },
		{ "bad_separator_in_name", "permessage-deflate; client/bits", NOGUARD,
		  WS_DEFLATE_MALFORMED, NULL, 0, 0, false },
		{ "bad_after_good_offer", "permessage-deflate, foo;;", NOGUARD, WS_DEFLATE_MALFORMED,
		  NULL, 0, 0, false },
		{ "bad_control_char", "permessage-deflate\x01", NOGUARD, WS_DEFLATE_MALFORMED, NULL,
		  0, 0, false },
		/* The Safari 15.0-15.3 guard. */
		{ "guard_declines_client_nct", "permessage-deflate; client_no_context_takeover",
		  GUARD, WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "guard_next_offer", "permessage-deflate; client_no_context_takeover, "
		  "permessage-deflate", GUARD, WS_DEFLATE_AGREED, PMD, 15, 15, false },
		{ "guard_never_asks_client_nct", "permessage-deflate; client_max_window_bits", GUARD,
		  WS_DEFLATE_AGREED, PMD, 15, 15, false },
	};

	struct ws_deflate_config cfg;

	ws_deflate_config_default(&cfg);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_negotiation(&cfg, &cases[i]);
}

static void test_negotiation_config(void)
{
	static const struct neg_case keep[] = {
		{ "no_impose_plain", "permessage-deflate", NOGUARD, WS_DEFLATE_AGREED, PMD, 15, 15,
		  false },
		{ "no_impose_echo_client_nct", "permessage-deflate; client_no_context_takeover",
		  NOGUARD, WS_DEFLATE_AGREED, PMD CNCT, 15, 15, true },
	};
	static const struct neg_case small[] = {
		{ "server10_rfc7692_5_1_first_offer", "permessage-deflate; client_max_window_bits; "
		  "server_max_window_bits=10, permessage-deflate; client_max_window_bits", NOGUARD,
		  WS_DEFLATE_AGREED, PMD "; server_max_window_bits=10; client_max_window_bits=10",
		  10, 10, false },
		{ "server10_offer_12_echoed", "permessage-deflate; server_max_window_bits=12", NOGUARD,
		  WS_DEFLATE_AGREED, PMD "; server_max_window_bits=12", 15, 12, false },
		{ "server10_offer_9_declined", "permessage-deflate; server_max_window_bits=9", NOGUARD,
		  WS_DEFLATE_NONE, NULL, 0, 0, false },
		{ "client10_offer_12", "permessage-deflate; client_max_window_bits=12", NOGUARD,
		  WS_DEFLATE_AGREED, PMD "; client_max_window_bits=10", 10, 15, false },
		{ "client10_offer_9", "permessage-deflate; client_max_window_bits=9", NOGUARD,
		  WS_DEFLATE_AGREED, PMD "; client_max_window_bits=9", 9, 15, false },
		/* RFC 7692 7.1.2.2: without the parameter we may not name one. */
		{ "client10_not_offered", "permessage-deflate", NOGUARD, WS_DEFLATE_AGREED, PMD, 15,
		  15, false },
	};
	struct ws_deflate_config cfg;

	ws_deflate_config_default(&cfg);
	cfg.client_no_context_takeover = false;
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		check_negotiation(&cfg, &keep[i]);
	cfg.server_window_bits = 10;
	cfg.client_window_bits = 10;
	for (size_t i = 0; i < sizeof(small) / sizeof(small[0]); i++)
		check_negotiation(&cfg, &small[i]);
}

/* Several Sec-WebSocket-Extensions headers read as one list. */
static void test_negotiation_values(void)
{
	static const char *const two[] = { "foo", "permessage-deflate" };
	static const char *const with_null[] = { NULL, "permessage-deflate; client_max_window_bits=11" };
	static const char *const first_declined[] = {
		"permessage-deflate; server_max_window_bits=9", "permessage-deflate"
	};
	static const char *const bad_second[] = { "permessage-deflate", "x;" };
	struct ws_deflate_config cfg;
	struct ws_deflate_params p;

	ws_deflate_config_default(&cfg);
	ok(ws_deflate_negotiate(&cfg, two, 2, false, &p) == WS_DEFLATE_AGREED &&
	   strcmp(p.response, PMD CNCT) == 0, "negotiate_values_second_header");
	ok(ws_deflate_negotiate(&cfg, with_null, 2, false, &p) == WS_DEFLATE_AGREED &&
	   p.client_window_bits == 11, "negotiate_values_null_skipped");
	ok(ws_deflate_negotiate(&cfg, first_declined, 2, false, &p) == WS_DEFLATE_AGREED &&
	   p.server_window_bits == 15, "negotiate_values_first_declined");
	ok(ws_deflate_negotiate(&cfg, bad_second, 2, false, &p) == WS_DEFLATE_MALFORMED &&
	   p.response_len == 0, "negotiate_values_malformed_anywhere");
	ok(ws_deflate_negotiate(&cfg, NULL, 0, false, &p) == WS_DEFLATE_NONE,
	   "negotiate_values_none");
}

/* ---- compression ------------------------------------------------------------- */

static void test_compress_round_trip(void)
{
	static const size_t sizes[] = { 64, 700, 2048, 65536, 1u << 20 };
	struct ws_deflate_config cfg;
	struct ws_deflate_params p = params_for("permessage-deflate", false);
	struct ws_deflater *d;

	ws_deflate_config_default(&cfg);
	d = ws_deflater_new(&cfg);
	ok(d != NULL && ws_deflater_window_bits(d) == 15, "deflater_new window 15");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *in = make_json(sizes[i]), *z = NULL;
		size_t zlen = 0;
		enum ws_deflate_result rc = ws_deflate_message(d, in, sizes[i], &z, &zlen);
		struct ws_inflater *f = ws_inflater_new(&p, sizes[i]);
		struct buf out = { 0 };
		enum ws_inflate_result irc = inflate_msg(f, z, zlen, 0, &out);

		/* JSON compresses 3-5x; 64 bytes leave little to share */
		ok(rc == WS_DEFLATE_OK && zlen > 0 && zlen < (sizes[i] < 100 ? sizes[i] : sizes[i] / 3),
		   "compress_json_%zu: %zu -> %zu bytes", sizes[i], sizes[i], zlen);
		ok(irc == WS_INFLATE_OK && out.len == sizes[i] && memcmp(out.p, in, sizes[i]) == 0 &&
		   utf8_valid(out.p, out.len), "round_trip_json_%zu (multi-byte UTF-8) rc %d len %zu",
		   sizes[i], irc, out.len);
		/* RFC 7692 7.2.1: the tail is cut, so the payload ends with
		 * the 3 header bits of an empty stored block (BTYPE 00). */
		ok(zlen < 4 || memcmp(z + zlen - 4, "\x00\x00\xff\xff", 4) != 0,
		   "compress_json_%zu: no 00 00 ff ff tail", sizes[i]);
		buf_free(&out);
		ws_inflater_free(f);
		free(z);
		free(in);
	}
	ws_deflater_free(d);
}

/* No context is taken over: the same message compresses to the same bytes
 * whatever this deflater compressed before, so one payload suits every
 * connection. */
static void test_compress_no_context(void)
{
	struct ws_deflate_config cfg;
	struct ws_deflater *a, *b;
	uint8_t *m1 = make_json(3000), *m2, *z1 = NULL, *z2 = NULL;
	size_t l1 = 0, l2 = 0;

	ws_deflate_config_default(&cfg);
	a = ws_deflater_new(&cfg);
	b = ws_deflater_new(&cfg);
	m2 = malloc(3000);
	if (a == NULL || b == NULL || m2 == NULL)
		abort();
	memcpy(m2, m1, 3000);
	m2[0] = '[';
	(void)ws_deflate_message(a, m1, 3000, &z1, &l1);
	free(z1);
	z1 = NULL;
	ok(ws_deflate_message(a, m2, 3000, &z1, &l1) == WS_DEFLATE_OK &&
	   ws_deflate_message(b, m2, 3000, &z2, &l2) == WS_DEFLATE_OK && l1 == l2 &&
	   memcmp(z1, z2, l1) == 0, "compress_server_no_context_takeover: same bytes after another message");
	free(z1);
	free(z2);
	free(m1);
	free(m2);
	ws_deflater_free(a);
	ws_deflater_free(b);
}

static void test_compress_not_smaller(void)
{
	struct ws_deflate_config cfg;
	struct ws_deflater *d;
	uint8_t noise[1000], *z = (uint8_t *)"untouched";
	size_t zlen = 7;
	enum ws_deflate_result rc;

	ws_deflate_config_default(&cfg);
	d = ws_deflater_new(&cfg);
	for (size_t i = 0; i < sizeof(noise); i++)
		noise[i] = (uint8_t)rng();
	ok(ws_deflate_message(d, noise, sizeof(noise), &z, &zlen) == WS_DEFLATE_NOT_SMALLER &&
	   z == NULL && zlen == 0, "compress_random_not_smaller");
	ok(ws_deflate_message(d, "", 0, &z, &zlen) == WS_DEFLATE_NOT_SMALLER,
	   "compress_empty_not_smaller");
	ok(ws_deflate_message(d, "a", 1, &z, &zlen) == WS_DEFLATE_NOT_SMALLER,
	   "compress_one_byte_not_smaller");
	ok(ws_deflate_message(d, "x", (size_t)WS_DEFLATE_INPUT_MAX + 1, &z, &zlen) ==
	   WS_DEFLATE_NOT_SMALLER, "compress_over_input_max_not_smaller (not read)");
	/* still usable after all that */
	rc = ws_deflate_message(d, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 48, &z, &zlen);
	ok(rc == WS_DEFLATE_OK && zlen < 48, "compress_after_not_smaller: %zu bytes", zlen);
	free(z);
	ws_deflater_free(d);
}

/* A payload made with a 9-bit window inflates with a 9-bit window: what a
 * client that asked server_max_window_bits=9 will do. */
static void test_compress_window_respected(void)
{
	struct ws_deflate_config cfg;
	struct ws_deflater *d;
	uint8_t *in = make_json(100000), *z = NULL, *out = malloc(100000 + 16);
	static const uint8_t tail[4] = { 0, 0, 0xff, 0xff };
	uint8_t *zt;
	size_t zlen = 0;
	z_stream zs;
	int rc;

	ws_deflate_config_default(&cfg);
	cfg.server_window_bits = 9;
	d = ws_deflater_new(&cfg);
	if (d == NULL)
		abort();
	rc = ws_deflate_message(d, in, 100000, &z, &zlen) == WS_DEFLATE_OK ? Z_OK : Z_ERRNO;
	ok(ws_deflater_window_bits(d) == 9 && rc == Z_OK, "compress_window_9: %zu bytes", zlen);
	zt = malloc(zlen + 4);
	if (zt == NULL || out == NULL)
		abort();
	memcpy(zt, z, zlen);
	memcpy(zt + zlen, tail, 4);
	memset(&zs, 0, sizeof(zs));
	rc = inflateInit2(&zs, -9);
	zs.next_in = zt;
	zs.avail_in = (uInt)(zlen + 4);
	zs.next_out = out;
	zs.avail_out = 100000 + 16;
	rc = rc == Z_OK ? inflate(&zs, Z_SYNC_FLUSH) : rc;
	ok((rc == Z_OK || rc == Z_BUF_ERROR) && zs.total_out == 100000 && memcmp(out, in, 100000) == 0,
	   "compress_window_9 inflates with a 9-bit window (zlib rc %d)", rc);
	inflateEnd(&zs);
	cfg.server_window_bits = 8;
	ws_deflater_free(d);
	d = ws_deflater_new(&cfg);
	ok(d != NULL && ws_deflater_window_bits(d) == 9, "deflater_window_8_becomes_9");
	ws_deflater_free(d);
	free(zt);
	free(z);
	free(in);
	free(out);
}

/* ---- inflation ------------------------------------------------------------------- */

struct rfc_msg {
	const char *name;
	const uint8_t *frames[3];	/* fragments, NULL-ended */
	size_t lens[3];
	const char *want;		/* NULL: invalid */
};

static void test_inflate_rfc_examples(void)
{
	static const uint8_t hello[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
	static const uint8_t hello_again[] = { 0xf2, 0x00, 0x11, 0x00, 0x00 };
	static const uint8_t stored[] = { 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c,
					  0x6f, 0x00 };
	static const uint8_t bfinal[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00 };
	static const uint8_t two_blocks[] = { 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff,
					      0xca, 0xc9, 0xc9, 0x07, 0x00 };
	static const uint8_t frag1[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x00,
					 0xff, 0xff };
	static const uint8_t frag2[] = { 0x00 };
	static const struct rfc_msg msgs[] = {
		{ "rfc7692_7_2_3_1_hello", { hello }, { sizeof(hello) }, "Hello" },
		{ "rfc7692_7_2_3_3_stored_block", { stored }, { sizeof(stored) }, "Hello" },
		{ "rfc7692_7_2_3_4_bfinal", { bfinal }, { sizeof(bfinal) }, "Hello" },
		{ "bfinal_without_trailing_byte", { bfinal }, { sizeof(bfinal) - 1 }, "Hello" },
		{ "rfc7692_7_2_3_5_two_blocks", { two_blocks }, { sizeof(two_blocks) }, "Hello" },
		{ "rfc7692_7_2_3_6_empty_fragment", { frag1, frag2 }, { sizeof(frag1), sizeof(frag2) },
		  "Hello" },
		{ "empty_payload", { NULL }, { 0 }, "" },
		{ "truncated_inside_block", { hello }, { sizeof(hello) - 2 }, NULL },
		{ "reserved_btype", { (const uint8_t *)"\xff\xff\xff\xff" }, { 4 }, NULL },
	};
	struct ws_deflate_params p = params_for("permessage-deflate", false);

	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		for (size_t step = 0; step <= 1; step++) {
			struct ws_inflater *f = ws_inflater_new(&p, 1000);
			enum ws_inflate_result rc = WS_INFLATE_OK;
			struct buf out = { 0 };
			uint64_t size = 99;

			for (size_t k = 0; msgs[i].frames[k] != NULL && rc == WS_INFLATE_OK; k++)
				for (size_t o = 0; o < msgs[i].lens[k] && rc == WS_INFLATE_OK; ) {
					size_t n = step ? 1 : msgs[i].lens[k];

					rc = ws_inflate_feed(f, msgs[i].frames[k] + o, n, sink_buf, &out);
					o += n;
				}
			if (rc == WS_INFLATE_OK)
				rc = ws_inflate_finish(f, sink_buf, &out, &size);
			if (msgs[i].want != NULL)
				ok(rc == WS_INFLATE_OK && size == strlen(msgs[i].want) &&
				   out.len == size && (size == 0 || memcmp(out.p, msgs[i].want, size) == 0),
				   "inflate_%s%s: rc %d", msgs[i].name, step ? "_bytewise" : "", rc);
			else
				ok(rc == WS_INFLATE_BAD_DATA, "inflate_%s%s: BAD_DATA (rc %d)",
				   msgs[i].name, step ? "_bytewise" : "", rc);
			buf_free(&out);
			ws_inflater_free(f);
		}
	}

	/* RFC 7692 7.2.3.2: the second message refers to the first. */
	{
		struct ws_inflater *f = ws_inflater_new(&p, 1000);
		struct buf out = { 0 };
		int good = inflate_msg(f, hello, sizeof(hello), 0, &out) == WS_INFLATE_OK &&
		    inflate_msg(f, hello_again, sizeof(hello_again), 0, &out) == WS_INFLATE_OK;

		ok(good && out.len == 10 && memcmp(out.p, "HelloHello", 10) == 0,
		   "inflate_rfc7692_7_2_3_2_sharing_window");
		ws_inflater_free(f);
		buf_free(&out);
	}
	/* The window also survives a final block. */
	{
		struct ws_inflater *f = ws_inflater_new(&p, 1000);
		struct buf out = { 0 };
		int good = inflate_msg(f, bfinal, sizeof(bfinal) - 1, 0, &out) == WS_INFLATE_OK &&
		    inflate_msg(f, hello_again, sizeof(hello_again), 0, &out) == WS_INFLATE_OK;

		ok(good && out.len == 10 && memcmp(out.p, "HelloHello", 10) == 0,
		   "inflate_window_kept_over_bfinal");
		ws_inflater_free(f);
		buf_free(&out);
	}
	/* With client_no_context_takeover agreed the window is gone. */
	{
		struct ws_deflate_params pn = params_for("permessage-deflate", true);
		struct ws_inflater *f = ws_inflater_new(&pn, 1000);
		struct buf out = { 0 };

		ok(inflate_msg(f, hello, sizeof(hello), 0, &out) == WS_INFLATE_OK &&
		   inflate_msg(f, hello_again, sizeof(hello_again), 0, &out) == WS_INFLATE_BAD_DATA,
		   "inflate_client_no_context_takeover_drops_window");
		ok(inflate_msg(f, hello, sizeof(hello), 0, &out) == WS_INFLATE_BAD_DATA,
		   "inflate_error_is_sticky");
		ws_inflater_free(f);
		buf_free(&out);
	}
}

/* Context takeover by a real client: one zlib stream across messages,
 * each sync-flushed and cut (RFC 7692 7.2.1). */
static void test_inflate_context_takeover(void)
{
	struct ws_deflate_params p = params_for("permessage-deflate; client_max_window_bits", false);
	struct ws_inflater *f = ws_inflater_new(&p, 1u << 20);
	uint8_t *msg = make_json(4000), z[8192];
	size_t zl[3];
	z_stream zs;
	int good = 1;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	for (int m = 0; m < 3; m++) {
		struct buf out = { 0 };

		zs.next_in = msg;
		zs.avail_in = 4000;
		zs.next_out = z;
		zs.avail_out = sizeof(z);
		if (deflate(&zs, Z_SYNC_FLUSH) != Z_OK)
			abort();
		zl[m] = sizeof(z) - zs.avail_out - 4;
		good &= inflate_msg(f, z, zl[m], m == 2 ? 1 : 0, &out) == WS_INFLATE_OK &&
		    out.len == 4000 && memcmp(out.p, msg, 4000) == 0;
		buf_free(&out);
	}
	ok(good, "inflate_context_takeover: 3 messages, the last fed one byte at a time");
	ok(zl[1] < zl[0] / 4 && zl[2] < zl[0] / 4,
	   "context_takeover_used: repeats cost %zu and %zu bytes, the first %zu", zl[1], zl[2], zl[0]);
	deflateEnd(&zs);
	ws_inflater_free(f);
	free(msg);
}

static void test_inflate_pieces(void)
{
	struct ws_deflate_config cfg;
	struct ws_deflate_params p = params_for("permessage-deflate", true);
	struct ws_deflater *d;
	uint8_t *in = make_json(5000), *z = NULL;
	size_t zlen = 0;
	static const size_t steps[] = { 1, 2, 3, 7, 100, 4096 };

	ws_deflate_config_default(&cfg);
	d = ws_deflater_new(&cfg);
	if (d == NULL || ws_deflate_message(d, in, 5000, &z, &zlen) != WS_DEFLATE_OK)
		abort();
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct ws_inflater *f = ws_inflater_new(&p, 5000);
		struct buf out = { 0 };
		enum ws_inflate_result rc = inflate_msg(f, z, zlen, steps[i], &out);

		ok(rc == WS_INFLATE_OK && out.len == 5000 && memcmp(out.p, in, 5000) == 0,
		   "inflate_in_pieces_of_%zu", steps[i]);
		/* the same inflater, next message (fresh window) */
		buf_free(&out);
		rc = inflate_msg(f, z, zlen, steps[i], &out);
		ok(rc == WS_INFLATE_OK && out.len == 5000, "inflate_again_in_pieces_of_%zu", steps[i]);
		buf_free(&out);
		ws_inflater_free(f);
	}
	free(z);
	free(in);
	ws_deflater_free(d);
}

/* The cap: exactly max is fine, one more byte is 1009. */
static void test_inflate_cap(void)
{
	struct ws_deflate_config cfg;
	struct ws_deflate_params p = params_for("permessage-deflate", true);
	struct ws_deflater *d;
	uint8_t *in = make_json(10000), *z = NULL;
	size_t zlen = 0;
	struct buf out = { 0 };
	struct ws_inflater *f;
	enum ws_inflate_result rc;

	ws_deflate_config_default(&cfg);
	d = ws_deflater_new(&cfg);
	if (d == NULL || ws_deflate_message(d, in, 10000, &z, &zlen) != WS_DEFLATE_OK)
		abort();
	f = ws_inflater_new(&p, 10000);
	ok(inflate_msg(f, z, zlen, 0, &out) == WS_INFLATE_OK && out.len == 10000,
	   "inflate_cap_exact_size_ok");
	ws_inflater_free(f);
	buf_free(&out);
	f = ws_inflater_new(&p, 9999);
	rc = inflate_msg(f, z, zlen, 0, &out);
	ok(rc == WS_INFLATE_TOO_BIG && out.len <= 9999,
	   "inflate_cap_one_over_is_too_big (sink got %zu)", out.len);
	ok(ws_inflate_feed(f, z, zlen, sink_buf, &out) == WS_INFLATE_TOO_BIG,
	   "inflate_too_big_is_sticky");
	ws_inflater_free(f);
	buf_free(&out);
	f = ws_inflater_new(&p, 0);
	ok(inflate_msg(f, z, zlen, 0, &out) == WS_INFLATE_TOO_BIG && out.len == 0,
	   "inflate_cap_zero");
	ws_inflater_free(f);
	buf_free(&out);
	free(z);
	free(in);
	ws_deflater_free(d);
}

struct count_sink {
	size_t bytes, calls;
};

static int sink_count(void *arg, const uint8_t *p, size_t n)
{
	struct count_sink *c = arg;

	(void)p;
	c->bytes += n;
	c->calls++;
	return 0;
}

/* 10 MB of zeros deflate to about 10 KB; with a 64 KB cap the inflater must
 * stop within the first few hundred bytes of input. */
static void test_inflate_bomb(void)
{
	const size_t big = 10u << 20, cap = 64u << 10;
	struct ws_deflate_config cfg;
	struct ws_deflate_params p = params_for("permessage-deflate", true);
	struct ws_deflater *d;
	struct ws_inflater *f;
	struct count_sink cs = { 0, 0 };
	uint8_t *zeros = calloc(1, big), *z = NULL;
	size_t zlen = 0, fed = 0;
	enum ws_inflate_result rc = WS_INFLATE_OK;

	ws_deflate_config_default(&cfg);
	d = ws_deflater_new(&cfg);
	if (zeros == NULL || d == NULL || ws_deflate_message(d, zeros, big, &z, &zlen) != WS_DEFLATE_OK)
		abort();
	ok(zlen < big / 500, "bomb: 10 MB of zeros -> %zu bytes", zlen);
	f = ws_inflater_new(&p, cap);
	while (fed < zlen && rc == WS_INFLATE_OK) {
		size_t k = zlen - fed < 16 ? zlen - fed : 16;

		rc = ws_inflate_feed(f, z + fed, k, sink_count, &cs);
		fed += k;
	}
	ok(rc == WS_INFLATE_TOO_BIG, "bomb_is_too_big (rc %d)", rc);
	ok(cs.bytes <= cap, "bomb: the sink got %zu bytes, at most the cap", cs.bytes);
	/* deflate's best ratio is about 1032:1, so cap + 1 bytes come from
	 * about 64 bytes of input: stopping early means well under 1% of it. */
	ok(fed <= 256 && fed < zlen / 10, "bomb_stops_early: %zu of %zu bytes fed", fed, zlen);
	ok(ws_inflate_close_code(rc, NULL) == WS_CLOSE_TOO_BIG, "bomb_closes_1009");
	ws_inflater_free(f);
	free(z);
	free(zeros);
	ws_deflater_free(d);
}

static int sink_stop(void *arg, const uint8_t *p, size_t n)
{
	(void)arg;
	(void)p;
	(void)n;
	return 1;
}

static void test_inflate_garbage(void)
{
	struct ws_deflate_params p = params_for("permessage-deflate", false);
	int bad = 0, total = 0, over_cap = 0;
	const char *why = NULL;

	/* Random input: each must be refused or inflate within the cap, and
	 * never crash; most is refused. */
	for (int i = 0; i < 200; i++) {
		uint8_t junk[300];
		struct ws_inflater *f = ws_inflater_new(&p, 1000);
		struct count_sink cs = { 0, 0 };
		enum ws_inflate_result rc;
		size_t n = 1 + rng() % sizeof(junk);

		for (size_t k = 0; k < n; k++)
			junk[k] = (uint8_t)rng();
		rc = ws_inflate_feed(f, junk, n, sink_count, &cs);
		if (rc == WS_INFLATE_OK)
			rc = ws_inflate_finish(f, sink_count, &cs, NULL);
		total++;
		bad += rc == WS_INFLATE_BAD_DATA || rc == WS_INFLATE_TOO_BIG;
		over_cap += cs.bytes > 1000;
		ws_inflater_free(f);
	}
	ok(bad > total * 9 / 10 && over_cap == 0,
	   "inflate_garbage: %d of %d refused, %d over the cap", bad, total, over_cap);
	ok(ws_inflate_close_code(WS_INFLATE_BAD_DATA, &why) == WS_CLOSE_INVALID_DATA && why != NULL,
	   "bad_data_closes_1007");
	ok(ws_inflate_close_code(WS_INFLATE_NO_MEMORY, NULL) == WS_CLOSE_INTERNAL &&
	   ws_inflate_close_code(WS_INFLATE_OK, NULL) == 0 &&
	   ws_inflate_close_code(WS_INFLATE_STOPPED, NULL) == 0, "close_code_other_results");
	{
		static const uint8_t hello[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
		struct ws_inflater *f = ws_inflater_new(&p, 1000);

		ok(ws_inflate_feed(f, hello, sizeof(hello), sink_stop, NULL) == WS_INFLATE_STOPPED &&
		   ws_inflate_finish(f, sink_stop, NULL, NULL) == WS_INFLATE_STOPPED,
		   "inflate_sink_stop_is_sticky");
		ws_inflater_free(f);
	}
	{
		/* no params: a 15-bit window kept across messages */
		static const uint8_t hello[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
		static const uint8_t hello_again[] = { 0xf2, 0x00, 0x11, 0x00, 0x00 };
		struct ws_inflater *f = ws_inflater_new(NULL, 10);
		struct buf out = { 0 };

		ok(f != NULL && inflate_msg(f, hello, sizeof(hello), 0, &out) == WS_INFLATE_OK &&
		   inflate_msg(f, hello_again, sizeof(hello_again), 0, &out) == WS_INFLATE_OK &&
		   out.len == 10, "inflater_new_without_params");
		buf_free(&out);
		ws_inflater_free(f);
		ws_inflater_free(NULL);
		ws_deflater_free(NULL);
	}
}

/* ---- the frame reader with permessage-deflate --------------------------------- */

#define FIN 0x80
#define RSV1 0x40
#define RSV2 0x20

static const uint8_t MASK[4] = { 0x37, 0xfa, 0x21, 0x3d };

static void put_frame(struct buf *b, uint8_t b0, const uint8_t *payload, size_t len)
{
	uint8_t hdr[14];
	size_t h = 0;

	hdr[h++] = b0;
	if (len <= 125) {
		hdr[h++] = (uint8_t)(0x80 | len);
	} else if (len <= 0xFFFF) {
		hdr[h++] = 0x80 | 126;
		hdr[h++] = (uint8_t)(len >> 8);
		hdr[h++] = (uint8_t)len;
	} else {
		hdr[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			hdr[h++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	memcpy(hdr + h, MASK, 4);
	h += 4;
	buf_add(b, hdr, h);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = payload[i] ^ MASK[i & 3];

		buf_add(b, &c, 1);
	}
}

/* What a connection would do: inflate through the reader's callback,
 * validate text as UTF-8 in the sink, finish at the message event. */
struct conn {
	struct ws_reader r;
	struct ws_inflater *inf;
	struct utf8_validator utf8;
	uint8_t opcode;
	struct buf text;
	int messages, compressed_messages, pings;
	uint16_t error;
	size_t cb_calls;
};

static int conn_sink(void *arg, const uint8_t *p, size_t n)
{
	struct conn *c = arg;

	buf_add(&c->text, p, n);
	return c->opcode == WS_OP_TEXT && utf8_feed(&c->utf8, p, n) == UTF8_INVALID;
}

static uint16_t conn_on_compressed(void *arg, uint8_t opcode, const uint8_t *p, size_t n,
    const char **why)
{
	struct conn *c = arg;
	enum ws_inflate_result rc;

	c->cb_calls++;
	c->opcode = opcode;
	rc = ws_inflate_feed(c->inf, p, n, conn_sink, c);
	if (rc == WS_INFLATE_STOPPED) {
		*why = "invalid UTF-8 in text";
		return WS_CLOSE_INVALID_DATA;
	}
	return ws_inflate_close_code(rc, why);
}

static void conn_init(struct conn *c, bool deflate, uint64_t max_wire, uint64_t max_inflated)
{
	struct ws_deflate_params p = params_for("permessage-deflate", false);

	memset(c, 0, sizeof(*c));
	ws_reader_init(&c->r, max_wire);
	if (deflate)
		ws_reader_enable_deflate(&c->r, conn_on_compressed, c);
	c->inf = ws_inflater_new(&p, max_inflated);
	utf8_init(&c->utf8);
}

static void conn_free(struct conn *c)
{
	ws_inflater_free(c->inf);
	buf_free(&c->text);
}

/* Feeds in pieces of step bytes until the end or an error. */
static void conn_feed(struct conn *c, const uint8_t *in, size_t len, size_t step)
{
	for (size_t off = 0; off < len && c->error == 0; ) {
		size_t piece = len - off < step ? len - off : step;
		const uint8_t *p = in + off;

		off += piece;
		while (piece > 0 && c->error == 0) {
			struct ws_event ev;
			size_t used = ws_reader_feed(&c->r, p, piece, &ev);

			p += used;
			piece -= used;
			if (ev.type == WS_EV_ERROR) {
				c->error = ev.code;
			} else if (ev.type == WS_EV_PING) {
				c->pings++;
			} else if (ev.type == WS_EV_MESSAGE) {
				c->messages++;
				if (!ev.compressed)
					continue;
				c->compressed_messages++;
				c->opcode = ev.opcode;
				if (ws_inflate_finish(c->inf, conn_sink, c, NULL) != WS_INFLATE_OK)
					c->error = WS_CLOSE_INVALID_DATA;
				else if (ev.opcode == WS_OP_TEXT && c->utf8.state != 0)
					c->error = WS_CLOSE_INVALID_DATA;
				utf8_init(&c->utf8);
			}
		}
	}
}

static void test_reader_compressed_message(void)
{
	struct ws_deflate_config cfg;
	struct ws_deflater *d;
	uint8_t *msg = make_json(3000), *z = NULL;
	size_t zlen = 0, third;
	static const size_t steps[] = { 1, 5, 64, 100000 };

	ws_deflate_config_default(&cfg);
	d = ws_deflater_new(&cfg);
	if (d == NULL || ws_deflate_message(d, msg, 3000, &z, &zlen) != WS_DEFLATE_OK)
		abort();
	third = zlen / 3;
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		struct buf wire = { 0 };
		struct conn c;

		/* one frame, then the same in three fragments with a ping
		 * between them, then an uncompressed text message */
		put_frame(&wire, FIN | RSV1 | WS_OP_TEXT, z, zlen);
		put_frame(&wire, RSV1 | WS_OP_TEXT, z, third);
		put_frame(&wire, FIN | WS_OP_PING, (const uint8_t *)"p", 1);
		put_frame(&wire, WS_OP_CONT, z + third, third);
		put_frame(&wire, FIN | WS_OP_CONT, z + 2 * third, zlen - 2 * third);
		put_frame(&wire, FIN | WS_OP_TEXT, (const uint8_t *)"plain", 5);
		conn_init(&c, true, 1u << 20, 3000);
		conn_feed(&c, wire.p, wire.len, steps[s]);
		ok(c.error == 0 && c.messages == 3 && c.compressed_messages == 2 && c.pings == 1 &&
		   c.text.len == 6000 && memcmp(c.text.p, msg, 3000) == 0 &&
		   memcmp(c.text.p + 3000, msg, 3000) == 0,
		   "reader_compressed_text_in_pieces_of_%zu (error %u, messages %d/%d, %zu bytes)",
		   steps[s], c.error, c.compressed_messages, c.messages, c.text.len);
		conn_free(&c);
		buf_free(&wire);
	}
	free(z);
	free(msg);
	ws_deflater_free(d);
}

static void test_reader_rsv_rules(void)
{
	static const uint8_t hello[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
	static const struct {
		const char *name;
		bool deflate;
		uint8_t b0a, b0b;	/* two frames; b0b 0: one */
		uint16_t want;		/* 0: fine */
	} cases[] = {
		{ "rsv1_without_negotiation_is_1002", false, FIN | RSV1 | WS_OP_TEXT, 0, WS_CLOSE_PROTOCOL },
		{ "rsv1_binary_ok", true, FIN | RSV1 | WS_OP_BINARY, 0, 0 },
		{ "rsv1_on_continuation_is_1002", true, RSV1 | WS_OP_TEXT, FIN | RSV1 | WS_OP_CONT,
		  WS_CLOSE_PROTOCOL },
		{ "rsv1_on_ping_is_1002", true, FIN | RSV1 | WS_OP_PING, 0, WS_CLOSE_PROTOCOL },
		{ "rsv1_on_close_is_1002", true, FIN | RSV1 | WS_OP_CLOSE, 0, WS_CLOSE_PROTOCOL },
		{ "rsv2_is_1002", true, FIN | RSV2 | WS_OP_TEXT, 0, WS_CLOSE_PROTOCOL },
		{ "rsv1_rsv2_is_1002", true, FIN | RSV1 | RSV2 | WS_OP_TEXT, 0, WS_CLOSE_PROTOCOL },
		{ "rsv1_unknown_opcode_is_1002", true, FIN | RSV1 | 0x3, 0, WS_CLOSE_PROTOCOL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf wire = { 0 };
		struct conn c;
		bool ctl = (cases[i].b0a & 0x08) != 0;

		put_frame(&wire, cases[i].b0a, ctl ? (const uint8_t *)"\x03\xe8" : hello,
		    ctl ? 2 : sizeof(hello));
		if (cases[i].b0b != 0)
			put_frame(&wire, cases[i].b0b, (const uint8_t *)"\x00", 1);
		conn_init(&c, cases[i].deflate, 1000, 1000);
		conn_feed(&c, wire.p, wire.len, 1);
		ok(c.error == cases[i].want && (c.error != 0 || (c.compressed_messages == 1 &&
		   c.text.len == 5)), "reader_%s (got %u)", cases[i].name, c.error);
		conn_free(&c);
		buf_free(&wire);
	}
}

static void test_reader_compressed_errors(void)
{
	struct buf wire = { 0 };
	struct conn c;
	struct ws_deflate_config cfg;
	struct ws_deflater *d;
	uint8_t *zeros = calloc(1, 1u << 20), *z = NULL;
	size_t zlen = 0;
	/* "\xff\xfe" deflated: invalid UTF-8 once inflated */
	uint8_t bad_utf8[32], compressed_nonutf8[] = { 0xc3, 0x28 };
	z_stream zs;

	/* the compressed bytes are not UTF-8, and need not be */
	ws_deflate_config_default(&cfg);
	d = ws_deflater_new(&cfg);
	memset(&zs, 0, sizeof(zs));
	if (zeros == NULL || d == NULL || deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	zs.next_in = (const Bytef *)"ok \xff\xfe ok";
	zs.avail_in = 9;
	zs.next_out = bad_utf8;
	zs.avail_out = sizeof(bad_utf8);
	if (deflate(&zs, Z_SYNC_FLUSH) != Z_OK)
		abort();
	deflateEnd(&zs);
	put_frame(&wire, FIN | RSV1 | WS_OP_TEXT, bad_utf8, sizeof(bad_utf8) - zs.avail_out - 4);
	conn_init(&c, true, 1000, 1000);
	conn_feed(&c, wire.p, wire.len, 1);
	ok(c.error == WS_CLOSE_INVALID_DATA, "reader_inflated_text_not_utf8_is_1007 (got %u)", c.error);
	conn_free(&c);
	buf_free(&wire);

	/* garbage deflate data: 1007 through the callback */
	put_frame(&wire, FIN | RSV1 | WS_OP_BINARY, (const uint8_t *)"\xff\xff\xff", 3);
	conn_init(&c, true, 1000, 1000);
	conn_feed(&c, wire.p, wire.len, 1000);
	ok(c.error == WS_CLOSE_INVALID_DATA, "reader_invalid_deflate_is_1007 (got %u)", c.error);
	conn_free(&c);
	buf_free(&wire);

	/* an uncompressed text in a deflate connection is still checked */
	put_frame(&wire, FIN | WS_OP_TEXT, compressed_nonutf8, sizeof(compressed_nonutf8));
	conn_init(&c, true, 1000, 1000);
	conn_feed(&c, wire.p, wire.len, 1000);
	ok(c.error == WS_CLOSE_INVALID_DATA && c.cb_calls == 0,
	   "reader_uncompressed_text_still_utf8_checked (got %u)", c.error);
	conn_free(&c);
	buf_free(&wire);

	/* a bomb through the reader: 1009, and few callback calls */
	if (ws_deflate_message(d, zeros, 1u << 20, &z, &zlen) != WS_DEFLATE_OK)
		abort();
	put_frame(&wire, FIN | RSV1 | WS_OP_BINARY, z, zlen);
	conn_init(&c, true, 1u << 20, 4096);
	conn_feed(&c, wire.p, wire.len, wire.len);
	ok(c.error == WS_CLOSE_TOO_BIG && c.cb_calls == 1 && c.text.len <= 4096,
	   "reader_inflate_bomb_is_1009 (got %u after %zu calls, %zu bytes)", c.error, c.cb_calls,
	   c.text.len);
	{
		struct ws_event ev;

		ok(ws_reader_feed(&c.r, wire.p, 1, &ev) == 0 && ev.type == WS_EV_ERROR &&
		   ev.code == WS_CLOSE_TOO_BIG, "reader_callback_error_is_sticky");
	}
	conn_free(&c);
	buf_free(&wire);

	/* an empty compressed message */
	put_frame(&wire, FIN | RSV1 | WS_OP_TEXT, NULL, 0);
	conn_init(&c, true, 1000, 1000);
	conn_feed(&c, wire.p, wire.len, 1);
	ok(c.error == 0 && c.compressed_messages == 1 && c.text.len == 0 && c.cb_calls == 0,
	   "reader_empty_compressed_message");
	conn_free(&c);
	buf_free(&wire);

	/* the wire size limit is on the compressed bytes */
	put_frame(&wire, FIN | RSV1 | WS_OP_BINARY, z, zlen);
	conn_init(&c, true, zlen - 1, 1u << 20);
	conn_feed(&c, wire.p, wire.len, 7);
	ok(c.error == WS_CLOSE_TOO_BIG && c.cb_calls == 0, "reader_max_message_counts_wire_bytes");
	conn_free(&c);
	buf_free(&wire);

	/* enabled without a callback: payload skipped, message reported */
	{
		struct ws_reader r;
		struct ws_event ev;

		put_frame(&wire, FIN | RSV1 | WS_OP_BINARY, z, zlen);
		ws_reader_init(&r, 1u << 20);
		ws_reader_enable_deflate(&r, NULL, NULL);
		ok(ws_reader_feed(&r, wire.p, wire.len, &ev) == wire.len && ev.type == WS_EV_MESSAGE &&
		   ev.compressed && ev.size == zlen, "reader_deflate_without_callback");
		buf_free(&wire);
	}
	free(z);
	free(zeros);
	ws_deflater_free(d);
}

static void test_header_encode_rsv1(void)
{
	static const struct { uint64_t len; size_t hlen; uint8_t b1; } cases[] = {
		{ 0, 2, 0 }, { 125, 2, 125 }, { 126, 4, 126 }, { 65535, 4, 126 }, { 65536, 10, 127 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t a[WS_SERVER_HEADER_MAX], b[WS_SERVER_HEADER_MAX];
		size_t ha = ws_frame_header_encode_rsv1(a, WS_OP_TEXT, cases[i].len);
		size_t hb = ws_frame_header_encode(b, WS_OP_TEXT, cases[i].len);

		ok(ha == cases[i].hlen && hb == ha && a[0] == 0xC1 && b[0] == 0x81 &&
		   a[1] == cases[i].b1 && memcmp(a + 1, b + 1, ha - 1) == 0,
		   "header_encode_rsv1_len_%llu", (unsigned long long)cases[i].len);
	}
	{
		uint8_t h[WS_SERVER_HEADER_MAX];

		ok(ws_frame_header_encode_rsv1(h, WS_OP_BINARY, 3) == 2 && h[0] == 0xC2 && h[1] == 3,
		   "header_encode_rsv1_binary");
	}
}

int main(void)
{
	test_negotiation_default();
	test_negotiation_config();
	test_negotiation_values();
	test_compress_round_trip();
	test_compress_no_context();
	test_compress_not_smaller();
	test_compress_window_respected();
	test_inflate_rfc_examples();
	test_inflate_context_takeover();
	test_inflate_pieces();
	test_inflate_cap();
	test_inflate_bomb();
	test_inflate_garbage();
	test_reader_compressed_message();
	test_reader_rsv_rules();
	test_reader_compressed_errors();
	test_header_encode_rsv1();
	return done_testing();
}
