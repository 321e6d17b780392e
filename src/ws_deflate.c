/* ws_deflate.c - RFC 7692 permessage-deflate without I/O.
 *
 * The offer parser walks the header once, by the grammar of RFC 6455 9.1
 * (with the optional whitespace of RFC 7230 around its separators), and
 * judges each permessage-deflate offer by RFC 7692 section 7 as it ends.
 * Declining an offer is not an error; breaking the grammar is.
 *
 * The inflater keeps one zlib stream per connection and never lets zlib
 * write more than the cap allows: the output room of every inflate() call
 * is the smaller of a stack chunk and what is left of max_message + 1, so
 * the first byte over the cap is the last one produced.
 */
#include "autoconfig.h"

#include "ws_deflate.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define ZLIB_CONST	/* const next_in: the payloads we read are const */
#include <zlib.h>

#include "ws_frame.h"

#define WS_PMD_NAME "permessage-deflate"
#define WS_WBITS_MIN 9		/* the smallest raw window zlib compresses with */
#define WS_WBITS_MAX 15
#define WS_TAIL_LEN 4		/* 00 00 ff ff, the end of a sync flush */
#define WS_INFLATE_CHUNK 4096	/* inflated bytes handed to the sink at once */
/* A window size has at most 2 digits: a longer value is invalid, and only
 * its syntax still matters. */
#define WS_PMD_VALUE_MAX 4

static const uint8_t ws_tail[WS_TAIL_LEN] = { 0x00, 0x00, 0xff, 0xff };

static uint8_t ws_clamp_bits(uint8_t bits)
{
	return bits < WS_WBITS_MIN ? WS_WBITS_MIN : bits > WS_WBITS_MAX ? WS_WBITS_MAX : bits;
}

void ws_deflate_config_default(struct ws_deflate_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->server_window_bits = WS_WBITS_MAX;
	cfg->client_window_bits = WS_WBITS_MAX;
	cfg->client_no_context_takeover = true;
	cfg->level = 6;
}

/* ---- the offer -------------------------------------------------------- */

/* tchar of RFC 7230 3.2.6, without the locale's idea of a letter. */
static bool ws_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void ws_skip_ows(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

/* The token at *p (0 when there is none); *p moves past it. */
static size_t ws_scan_token(const char **p)
{
	const char *s = *p;

	while (ws_tchar((unsigned char)**p))
		(*p)++;
	return (size_t)(*p - s);
}

/* A parameter value after unescaping; len counts every character, text
 * keeps the first WS_PMD_VALUE_MAX. */
struct ws_pmd_value {
	char text[WS_PMD_VALUE_MAX];
	size_t len;
};

static void ws_value_add(struct ws_pmd_value *v, char c)
{
	if (v->len < WS_PMD_VALUE_MAX)
		v->text[v->len] = c;
	v->len++;
}

/* A quoted-string at *p (on its DQUOTE) whose unescaped text is a
 * non-empty token, as RFC 6455 9.1 requires.  False on a syntax error. */
static bool ws_scan_quoted(const char **p, struct ws_pmd_value *v)
{
	const char *s = *p + 1;

	v->len = 0;
	while (*s != '"') {
		if (*s == '\\')
			s++;
		/* Anything outside tchar (the NUL at the end of the value
		 * included) cannot be part of a token once unescaped. */
		if (!ws_tchar((unsigned char)*s))
			return false;
		ws_value_add(v, *s++);
	}
	*p = s + 1;
	return v->len > 0;
}

/* One permessage-deflate offer, judged parameter by parameter. */
struct ws_pmd_offer {
	bool declined;		/* unknown, duplicate or invalid parameter */
	bool server_nct, client_nct;
	bool has_server_bits, has_client_bits;
	uint8_t server_bits;
	uint8_t client_bits;	/* 0: client_max_window_bits without a value */
};

/* 8..15 in decimal without leading zeros (RFC 7692 7.1.2.1); -1 otherwise. */
static int ws_parse_bits(const struct ws_pmd_value *v)
{
	if (v->len == 1 && (v->text[0] == '8' || v->text[0] == '9'))
		return v->text[0] - '0';
	if (v->len == 2 && v->text[0] == '1' && v->text[1] >= '0' && v->text[1] <= '5')
		return 10 + (v->text[1] - '0');
	return -1;
}

static bool ws_name_is(const char *name, size_t len, const char *lit)
{
	return len == strlen(lit) && memcmp(name, lit, len) == 0;
}

/* RFC 7692 section 5: an offer with an unknown parameter, a parameter with
 * an invalid value or the same parameter twice is declined. */
static void ws_offer_param(struct ws_pmd_offer *o, const char *name, size_t len,
    const struct ws_pmd_value *v)
{
	int bits;

	if (ws_name_is(name, len, "server_no_context_takeover")) {
		o->declined |= o->server_nct || v != NULL;
		o->server_nct = true;
	} else if (ws_name_is(name, len, "client_no_context_takeover")) {
		o->declined |= o->client_nct || v != NULL;
		o->client_nct = true;
	} else if (ws_name_is(name, len, "server_max_window_bits")) {
		bits = v != NULL ? ws_parse_bits(v) : -1;
		o->declined |= o->has_server_bits || bits < 0;
		o->has_server_bits = true;
		o->server_bits = bits < 0 ? 0 : (uint8_t)bits;
	} else if (ws_name_is(name, len, "client_max_window_bits")) {
		bits = v != NULL ? ws_parse_bits(v) : 0;
		o->declined |= o->has_client_bits || bits < 0;
		o->has_client_bits = true;
		o->client_bits = bits < 0 ? 0 : (uint8_t)bits;
	} else {
		o->declined = true;
	}
}

/* Appends s to out->response; the buffer always has room (see
 * WS_DEFLATE_RESPONSE_MAX), the check is for safety only. */
static void ws_response_add(struct ws_deflate_params *out, const char *s)
{
	size_t n = strlen(s);

	if (n >= sizeof(out->response) - out->response_len)
		return;
	memcpy(out->response + out->response_len, s, n + 1);
	out->response_len += n;
}

static void ws_response_bits(struct ws_deflate_params *out, const char *name, uint8_t bits)
{
	char num[3] = { 0 };

	num[0] = (char)(bits >= 10 ? '1' : '0' + bits);
	if (bits >= 10)
		num[1] = (char)('0' + bits - 10);
	ws_response_add(out, "; ");
	ws_response_add(out, name);
	ws_response_add(out, "=");
	ws_response_add(out, num);
}

/* Accepts o into *out, or returns false (and leaves *out alone). */
static bool ws_offer_agree(const struct ws_deflate_config *cfg, const struct ws_pmd_offer *o,
    bool guard, struct ws_deflate_params *out)
{
	uint8_t ours = ws_clamp_bits(cfg->server_window_bits);
	uint8_t client_pref = ws_clamp_bits(cfg->client_window_bits);
	bool client_nct;

	if (o->declined || (guard && o->client_nct))
		return false;
	/* We compress once with our window; a client that can take less
	 * does not get compression (RFC 7692 7.1.2.1: decline what the
	 * server does not support).  This is also where 8 is refused. */
	if (o->has_server_bits && o->server_bits < ours)
		return false;
	client_nct = o->client_nct || (cfg->client_no_context_takeover && !guard);

	memset(out, 0, sizeof(*out));
	out->client_no_context_takeover = client_nct;
	/* Echoed as offered: we use no more than that, and echoing is what
	 * every client accepts. */
	out->server_window_bits = o->has_server_bits ? o->server_bits : WS_WBITS_MAX;
	out->client_window_bits = WS_WBITS_MAX;
	ws_response_add(out, WS_PMD_NAME "; server_no_context_takeover");
	if (client_nct)
		ws_response_add(out, "; client_no_context_takeover");
	if (o->has_server_bits)
		ws_response_bits(out, "server_max_window_bits", o->server_bits);
	/* RFC 7692 7.1.2.2: only an offer with client_max_window_bits lets us
	 * name one, at most its value when it has one. */
	if (o->has_client_bits) {
		uint8_t bits = o->client_bits != 0 && o->client_bits < client_pref ?
		    o->client_bits : client_pref;

		out->client_window_bits = bits;
		if (bits < WS_WBITS_MAX || o->client_bits != 0)
			ws_response_bits(out, "client_max_window_bits", bits);
	}
	return true;
}

/* One "name *( ; param )" element at *p (on its first character).  An
 * acceptable permessage-deflate offer fills *out and sets *agreed, unless
 * an earlier one did.  False on a syntax error. */
static bool ws_parse_extension(const char **p, const struct ws_deflate_config *cfg, bool guard,
    bool *agreed, struct ws_deflate_params *out)
{
	const char *name = *p;
	size_t len = ws_scan_token(p);
	struct ws_pmd_offer o;
	bool is_pmd;

	if (len == 0)
		return false;
	is_pmd = ws_name_is(name, len, WS_PMD_NAME);
	memset(&o, 0, sizeof(o));
	ws_skip_ows(p);
	while (**p == ';') {
		struct ws_pmd_value v;
		bool has_value = false;
		const char *pname;
		size_t plen;

		(*p)++;
		ws_skip_ows(p);
		pname = *p;
		plen = ws_scan_token(p);
		if (plen == 0)
			return false;
		ws_skip_ows(p);
		if (**p == '=') {
			(*p)++;
			ws_skip_ows(p);
			if (**p == '"') {
				if (!ws_scan_quoted(p, &v))
					return false;
			} else {
				const char *s = *p;
				size_t vlen = ws_scan_token(p);

				if (vlen == 0)
					return false;
				v.len = 0;
				for (size_t i = 0; i < vlen; i++)
					ws_value_add(&v, s[i]);
			}
			has_value = true;
			ws_skip_ows(p);
		}
		if (is_pmd)
			ws_offer_param(&o, pname, plen, has_value ? &v : NULL);
	}
	if (**p != ',' && **p != '\0')
		return false;
	if (is_pmd && !*agreed)
		*agreed = ws_offer_agree(cfg, &o, guard, out);
	return true;
}

enum ws_deflate_offer ws_deflate_negotiate(const struct ws_deflate_config *cfg,
    const char *const *values, size_t n, bool refuse_client_no_context_takeover,
    struct ws_deflate_params *out)
{
	bool agreed = false;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		const char *p = values[i];

		if (p == NULL)
			continue;
		for (;;) {
			ws_skip_ows(&p);
			if (*p == '\0')
				break;
			/* Empty list elements are allowed (RFC 7230 7). */
			if (*p == ',') {
				p++;
				continue;
			}
			if (!ws_parse_extension(&p, cfg, refuse_client_no_context_takeover,
			    &agreed, out)) {
				memset(out, 0, sizeof(*out));
				return WS_DEFLATE_MALFORMED;
			}
		}
	}
	return agreed ? WS_DEFLATE_AGREED : WS_DEFLATE_NONE;
}

/* ---- compression ------------------------------------------------------- */

struct ws_deflater {
	z_stream zs;
	uint8_t window_bits;
	uint8_t *scratch;	/* deflate's output before it is cut to size */
	size_t scratch_cap;
};

struct ws_deflater *ws_deflater_new(const struct ws_deflate_config *cfg)
{
	struct ws_deflater *d = calloc(1, sizeof(*d));
	int level = cfg->level < 1 ? 1 : cfg->level > 9 ? 9 : cfg->level;

	if (d == NULL)
		return NULL;
	d->window_bits = ws_clamp_bits(cfg->server_window_bits);
	/* Negative window bits: raw deflate, no zlib header or checksum. */
	if (deflateInit2(&d->zs, level, Z_DEFLATED, -(int)d->window_bits, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		free(d);
		return NULL;
	}
	return d;
}

void ws_deflater_free(struct ws_deflater *d)
{
	if (d == NULL)
		return;
	deflateEnd(&d->zs);
	free(d->scratch);
	free(d);
}

uint8_t ws_deflater_window_bits(const struct ws_deflater *d)
{
	return d->window_bits;
}

enum ws_deflate_result ws_deflate_message(struct ws_deflater *d, const void *in, size_t len,
    uint8_t **out, size_t *outlen)
{
	/* Room for a payload of len - 1 bytes and the 4-byte tail: when deflate
	 * fills it all, the payload would be len bytes or more. */
	size_t room = len + WS_TAIL_LEN;
	size_t produced, plen;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (len > WS_DEFLATE_INPUT_MAX)
		return WS_DEFLATE_NOT_SMALLER;
	if (d->scratch_cap < room) {
		uint8_t *s = realloc(d->scratch, room);

		if (s == NULL)
			return WS_DEFLATE_ERROR;
		d->scratch = s;
		d->scratch_cap = room;
	}
	/* A fresh stream per message: no context taken over, ever, so the
	 * payload does not depend on what this thread compressed before. */
	if (deflateReset(&d->zs) != Z_OK)
		return WS_DEFLATE_ERROR;
	d->zs.next_in = in;
	d->zs.avail_in = (uInt)len;
	d->zs.next_out = d->scratch;
	d->zs.avail_out = (uInt)room;
	rc = deflate(&d->zs, Z_SYNC_FLUSH);
	if (rc != Z_OK && rc != Z_BUF_ERROR)
		return WS_DEFLATE_ERROR;
	if (d->zs.avail_out == 0 || d->zs.avail_in != 0)
		return WS_DEFLATE_NOT_SMALLER;
	produced = room - d->zs.avail_out;
	/* RFC 7692 7.2.1: a sync flush ends with an empty stored block, whose
	 * last 4 bytes are removed. */
	if (produced < WS_TAIL_LEN ||
	    memcmp(d->scratch + produced - WS_TAIL_LEN, ws_tail, WS_TAIL_LEN) != 0)
		return WS_DEFLATE_ERROR;
	plen = produced - WS_TAIL_LEN;
	if (plen >= len)
		return WS_DEFLATE_NOT_SMALLER;
	*out = malloc(plen > 0 ? plen : 1);
	if (*out == NULL)
		return WS_DEFLATE_ERROR;
	memcpy(*out, d->scratch, plen);
	*outlen = plen;
	return WS_DEFLATE_OK;
}

/* ---- decompression ------------------------------------------------------- */

struct ws_inflater {
	z_stream zs;
	bool live;		/* zs is initialised (holds zlib memory) */
	/* The stream ended (a block with BFINAL set) and nothing followed
	 * yet: more data starts a new stream over the same window. */
	bool ended;
	bool drop_window;	/* client_no_context_takeover was agreed */
	bool failed;		/* sticky */
	enum ws_inflate_result fail_rc;
	int window_bits;
	uint64_t max;		/* inflated bytes allowed per message */
	uint64_t produced;	/* inflated bytes of this message */
	uint64_t fed;		/* compressed bytes of this message */
};

struct ws_inflater *ws_inflater_new(const struct ws_deflate_params *p, uint64_t max_message)
{
	struct ws_inflater *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	/* A client may have agreed 8 bits, which old zlib versions quietly
	 * turned into 9: a larger window than the client's reads everything
	 * it can write, so never less than 9. */
	f->window_bits = p != NULL ? ws_clamp_bits(p->client_window_bits) : WS_WBITS_MAX;
	f->drop_window = p != NULL && p->client_no_context_takeover;
	f->max = max_message;
	return f;
}

static void ws_inflater_release(struct ws_inflater *f)
{
	if (f->live)
		inflateEnd(&f->zs);
	f->live = false;
	f->ended = false;
}

void ws_inflater_free(struct ws_inflater *f)
{
	if (f == NULL)
		return;
	ws_inflater_release(f);
	free(f);
}

static enum ws_inflate_result ws_inflate_fail(struct ws_inflater *f, enum ws_inflate_result rc)
{
	f->failed = true;
	f->fail_rc = rc;
	/* Nothing more will be inflated: give the memory back now. */
	ws_inflater_release(f);
	return rc;
}

/* Inflates n bytes at p with flush, handing the output to sink.  With
 * tail set (the 4 bytes finish appends), the end of the stream ends the
 * work and what is left of p is ignored. */
static enum ws_inflate_result ws_inflate_run(struct ws_inflater *f, const uint8_t *p, size_t n,
    int flush, bool tail, ws_inflate_sink sink, void *arg)
{
	uint8_t buf[WS_INFLATE_CHUNK];

	if (!f->live) {
		memset(&f->zs, 0, sizeof(f->zs));
		if (inflateInit2(&f->zs, -f->window_bits) != Z_OK)
			return ws_inflate_fail(f, WS_INFLATE_NO_MEMORY);
		f->live = true;
		f->ended = false;
	}
	for (;;) {
		uint64_t left = f->max - f->produced;
		uInt in_now = n > UINT_MAX ? UINT_MAX : (uInt)n;
		uInt room = left >= sizeof(buf) ? (uInt)sizeof(buf) : (uInt)left + 1;
		size_t used, got;
		int rc;

		if (f->ended) {
			/* RFC 7692 7.2.3.4: data may follow a final block;
			 * it continues over the same window. */
			if (inflateResetKeep(&f->zs) != Z_OK)
				return ws_inflate_fail(f, WS_INFLATE_BAD_DATA);
			f->ended = false;
		}
		f->zs.next_in = p;
		f->zs.avail_in = in_now;
		f->zs.next_out = buf;
		f->zs.avail_out = room;
		rc = inflate(&f->zs, flush);
		used = in_now - f->zs.avail_in;
		got = room - f->zs.avail_out;
		p += used;
		n -= used;
		if (rc == Z_MEM_ERROR)
			return ws_inflate_fail(f, WS_INFLATE_NO_MEMORY);
		/* The output before an error comes first: inflate may decode
		 * one code past a full output buffer and fail on it, which
		 * with the input cut elsewhere would only come later. */
		if (got > 0) {
			f->produced += got;
			/* room never exceeds max + 1 - produced: this is
			 * the first byte too many, and the last made. */
			if (f->produced > f->max)
				return ws_inflate_fail(f, WS_INFLATE_TOO_BIG);
			if (sink != NULL && sink(arg, buf, got) != 0)
				return ws_inflate_fail(f, WS_INFLATE_STOPPED);
		}
		if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
			return ws_inflate_fail(f, WS_INFLATE_BAD_DATA);
		if (rc == Z_STREAM_END) {
			f->ended = true;
			if (n == 0 || tail)
				return WS_INFLATE_OK;
			continue;
		}
		if (got == room)
			continue;	/* more output may be pending */
		if (n == 0 || used == 0)
			return WS_INFLATE_OK;
	}
}

enum ws_inflate_result ws_inflate_feed(struct ws_inflater *f, const uint8_t *p, size_t n,
    ws_inflate_sink sink, void *arg)
{
	if (f->failed)
		return f->fail_rc;
	if (n == 0)
		return WS_INFLATE_OK;
	f->fed += n;
	return ws_inflate_run(f, p, n, Z_SYNC_FLUSH, false, sink, arg);
}

enum ws_inflate_result ws_inflate_finish(struct ws_inflater *f, ws_inflate_sink sink, void *arg,
    uint64_t *size)
{
	if (f->failed)
		return f->fail_rc;
	/* A compressed message with no payload at all is taken as empty,
	 * as other implementations do, though 00 00 ff ff alone is not a
	 * complete block.  After a final block the tail is not needed. */
	if (f->fed > 0 && !f->ended) {
		/* The last byte with Z_BLOCK: inflate stops at the block
		 * boundary that a well-formed message reaches there, and
		 * says so in data_type (bit 128). */
		enum ws_inflate_result rc = ws_inflate_run(f, ws_tail, WS_TAIL_LEN - 1, Z_SYNC_FLUSH, true, sink, arg);
		if (rc == WS_INFLATE_OK && !f->ended)
			rc = ws_inflate_run(f, ws_tail + WS_TAIL_LEN - 1, 1, Z_BLOCK, true, sink, arg);
		if (rc != WS_INFLATE_OK)
			return rc;
		if (!f->ended && (f->zs.avail_in != 0 || !(f->zs.data_type & 128)))
			return ws_inflate_fail(f, WS_INFLATE_BAD_DATA);	/* stopped inside a block */
	}
	if (size != NULL)
		*size = f->produced;
	f->produced = 0;
	f->fed = 0;
	if (f->drop_window)
		ws_inflater_release(f);
	return WS_INFLATE_OK;
}

uint16_t ws_inflate_close_code(enum ws_inflate_result rc, const char **why)
{
	const char *text;
	uint16_t code;

	switch (rc) {
	case WS_INFLATE_TOO_BIG:
		code = WS_CLOSE_TOO_BIG;
		text = "inflated message too big";
		break;
	case WS_INFLATE_BAD_DATA:
		code = WS_CLOSE_INVALID_DATA;
		text = "invalid compressed data";
		break;
	case WS_INFLATE_NO_MEMORY:
		code = WS_CLOSE_INTERNAL;
		text = "out of memory inflating";
		break;
	case WS_INFLATE_STOPPED:
		code = 0;
		text = "stopped by the sink";
		break;
	default:
		code = 0;
		text = "ok";
		break;
	}
	if (why != NULL)
		*why = text;
	return code;
}
