/* text.h - the few string walks HTTP and JSON need everywhere: trimming a
 * set of characters from both ends, the items of a comma-separated list
 * (RFC 9110 #rule) with optional whitespace around each, and base64
 * digits.  Header only, pure.
 */
#ifndef NOTIFYD_TEXT_H
#define NOTIFYD_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define TEXT_OWS " \t"		/* RFC 9110 optional whitespace */
#define TEXT_JSON_WS " \t\r\n"	/* RFC 8259 insignificant whitespace */

static inline bool text_in(char c, const char *set)
{
	return c != '\0' && strchr(set, c) != NULL;
}

/* Drop the characters of set from both ends of [*p, *p + *n). */
static inline void text_trim(const char **p, size_t *n, const char *set)
{
	while (*n > 0 && text_in(**p, set)) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && text_in((*p)[*n - 1], set))
		(*n)--;
}

/* The next item of the list at *cur (NUL-terminated), trimmed of OWS, as
 * [*item, *item + *n); *cur moves past it and its comma.  Returns false at
 * the end of the list.  Empty items are returned (as n == 0). */
static inline bool text_list_next(const char **cur, const char **item, size_t *n)
{
	const char *end;

	if (*cur == NULL || **cur == '\0')
		return false;
	end = strchr(*cur, ',');
	if (end == NULL)
		end = *cur + strlen(*cur);
	*item = *cur;
	*n = (size_t)(end - *cur);
	*cur = *end == ',' ? end + 1 : end;
	text_trim(item, n, TEXT_OWS);
	return true;
}

/* The value of one base64 digit (RFC 4648), -1 for a character outside the
 * alphabet; url picks the URL-safe alphabet ("-_" for "+/"). */
static inline int text_b64_value(unsigned char c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

#endif
