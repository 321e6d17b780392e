#include "autoconfig.h"

#include "msg_id.h"

#include <stdio.h>

#include "hash.h"

uint32_t msg_id_check(const void *routing_key, size_t rk_len, const void *body, size_t len)
{
	/* The 0 keeps ("ab", "c") and ("a", "bc") apart. */
	static const unsigned char sep = 0;
	uint32_t h = hash_bytes_more(HASH_SEED, routing_key, rk_len);

	h = hash_bytes_more(h, &sep, 1);
	return hash_bytes_more(h, body, len);
}

size_t msg_id_format(char out[MSG_ID_MAX], uint64_t offset, uint32_t check)
{
	int n = snprintf(out, MSG_ID_MAX, "%llu-%08x", (unsigned long long)offset, (unsigned)check);

	return n > 0 ? (size_t)n : 0;
}

int msg_id_parse(const char *s, size_t len, uint64_t *offset, uint32_t *check)
{
	uint64_t off = 0;
	uint32_t c = 0;
	size_t i = 0;

	if (len == 0 || (s[0] == '0' && len > 1 && s[1] != '-'))
		return -1;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (off > (MSG_OFFSET_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		off = off * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0 || i >= len || s[i] != '-' || len - i - 1 != 8)
		return -1;
	for (i++; i < len; i++) {
		int d;

		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			d = s[i] - 'a' + 10;
		else
			return -1;
		c = (c << 4) | (uint32_t)d;
	}
	*offset = off;
	*check = c;
	return 0;
}
