#include "autoconfig.h"

#include "envelope.h"

#include <stdio.h>
#include <string.h>

#include "ws_frame.h"

static const char msg_head[] = "{\"type\":\"message\",\"id\":\"";
static const char msg_head_noid[] = "{\"type\":\"message\"";
static const char msg_data[] = "\",\"data\":";
static const char msg_data_noid[] = ",\"data\":";

static size_t payload_len(size_t id_len, size_t body_len)
{
	if (id_len == 0)
		return sizeof(msg_head_noid) - 1 + sizeof(msg_data_noid) - 1 + body_len + 1;
	return sizeof(msg_head) - 1 + id_len + sizeof(msg_data) - 1 + body_len + 1;
}

size_t envelope_message_len(size_t id_len, size_t body_len)
{
	uint8_t hdr[WS_SERVER_HEADER_MAX];
	size_t p = payload_len(id_len, body_len);

	return ws_frame_header_encode(hdr, WS_OP_TEXT, p) + p;
}

static uint8_t *put(uint8_t *d, const void *s, size_t n)
{
	memcpy(d, s, n);
	return d + n;
}

void envelope_message_write(uint8_t *dst, const char *id, size_t id_len, const void *body,
    size_t body_len)
{
	uint8_t *d = dst + ws_frame_header_encode(dst, WS_OP_TEXT, payload_len(id_len, body_len));

	if (id_len == 0) {
		d = put(d, msg_head_noid, sizeof(msg_head_noid) - 1);
		d = put(d, msg_data_noid, sizeof(msg_data_noid) - 1);
	} else {
		d = put(d, msg_head, sizeof(msg_head) - 1);
		d = put(d, id, id_len);
		d = put(d, msg_data, sizeof(msg_data) - 1);
	}
	d = put(d, body, body_len);
	*d = '}';
}

/* ids and reasons are ours: digits, '-', hex, and [a-z_]; nothing to escape. */
static size_t status_frame(uint8_t out[ENVELOPE_STATUS_MAX], const char *text, int n)
{
	size_t h;

	if (n < 0 || (size_t)n >= ENVELOPE_STATUS_MAX - WS_SERVER_HEADER_MAX)
		return 0;
	h = ws_frame_header_encode(out, WS_OP_TEXT, (size_t)n);
	memmove(out + h, text, (size_t)n);
	return h + (size_t)n;
}

static int id_member(char *buf, size_t len, const char *id)
{
	if (id == NULL || *id == '\0') {
		buf[0] = '\0';
		return 0;
	}
	return snprintf(buf, len, ",\"id\":\"%s\"", id);
}

size_t envelope_hello_json(char out[ENVELOPE_STATUS_MAX], const char *id)
{
	char idm[64];
	int n;

	(void)id_member(idm, sizeof(idm), id);
	n = snprintf(out, ENVELOPE_STATUS_MAX, "{\"type\":\"hello\"%s}", idm);
	return n > 0 && n < ENVELOPE_STATUS_MAX ? (size_t)n : 0;
}

size_t envelope_hello(uint8_t out[ENVELOPE_STATUS_MAX], const char *id)
{
	char text[ENVELOPE_STATUS_MAX];
	size_t n = envelope_hello_json(text, id);

	return n > 0 ? status_frame(out, text, (int)n) : 0;
}

size_t envelope_recovered_json(char out[ENVELOPE_STATUS_MAX], const char *reason, uint64_t count,
    const char *id)
{
	char idm[64];
	int n;

	(void)id_member(idm, sizeof(idm), id);
	if (reason == NULL)
		n = snprintf(out, ENVELOPE_STATUS_MAX, "{\"type\":\"recovered\",\"recovered\":true,\"count\":%llu%s}",
		    (unsigned long long)count, idm);
	else
		n = snprintf(out, ENVELOPE_STATUS_MAX,
		    "{\"type\":\"recovered\",\"recovered\":false,\"reason\":\"%s\"%s}", reason, idm);
	return n > 0 && n < ENVELOPE_STATUS_MAX ? (size_t)n : 0;
}

size_t envelope_recovered(uint8_t out[ENVELOPE_STATUS_MAX], const char *reason, uint64_t count,
    const char *id)
{
	char text[ENVELOPE_STATUS_MAX];
	size_t n = envelope_recovered_json(text, reason, count, id);

	return n > 0 ? status_frame(out, text, (int)n) : 0;
}

const uint8_t *envelope_message_body(const uint8_t *frame, size_t frame_len, size_t id_len, size_t *len)
{
	size_t h = ws_frame_server_header_len(frame);
	size_t pre = sizeof(msg_head) - 1 + id_len + sizeof(msg_data) - 1;

	*len = frame_len - h - pre - 1;
	return frame + h + pre;
}
