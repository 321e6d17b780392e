#include "autoconfig.h"

#include "sse.h"

#include <string.h>

/* Calls line(dst, start, len) for each line of data, in order; dst may be
 * NULL (counting).  Returns the bytes of the "data:" lines. */
static size_t data_lines(uint8_t *dst, const uint8_t *data, size_t len)
{
	static const char pre[] = "data: ";
	size_t out = 0, start = 0;

	for (size_t i = 0; i <= len; i++) {
		size_t n;

		if (i < len && data[i] != '\r' && data[i] != '\n')
			continue;
		n = i - start;
		if (dst != NULL) {
			memcpy(dst + out, pre, sizeof(pre) - 1);
			memcpy(dst + out + sizeof(pre) - 1, data + start, n);
			dst[out + sizeof(pre) - 1 + n] = '\n';
		}
		out += sizeof(pre) - 1 + n + 1;
		if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	return out;
}

static size_t field(uint8_t *dst, const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);

	if (dst != NULL) {
		memcpy(dst, name, n);
		memcpy(dst + n, value, v);
		dst[n + v] = '\n';
	}
	return n + v + 1;
}

static size_t event(uint8_t *dst, const char *name, const char *id, const uint8_t *data, size_t len)
{
	size_t o = 0;

	if (name != NULL)
		o += field(dst, "event: ", name);
	if (id != NULL)
		o += field(dst != NULL ? dst + o : NULL, "id: ", id);
	if (len > 0)
		o += data_lines(dst != NULL ? dst + o : NULL, data, len);
	if (dst != NULL)
		dst[o] = '\n';
	return o + 1;
}

size_t sse_event_len(const char *name, const char *id, const uint8_t *data, size_t len)
{
	return event(NULL, name, id, data, len);
}

size_t sse_event_write(uint8_t *dst, const char *name, const char *id, const uint8_t *data, size_t len)
{
	return event(dst, name, id, data, len);
}
