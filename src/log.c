#include "autoconfig.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The logger is process-wide by nature (stderr is); see log.h. */
static struct {
	enum log_level min;
	int json;
	char path[1024];
	atomic_int fd;
} logger = { LOG_LVL_INFO, 0, "", 2 };

static const char *const level_name[] = { "debug", "info", "warn", "error" };

int log_init(enum log_level min, int json, const char *path)
{
	int old;

	logger.min = min;
	logger.json = json;
	if (path != NULL && *path != '\0') {
		snprintf(logger.path, sizeof(logger.path), "%s", path);
		return log_reopen();
	}
	logger.path[0] = '\0';
	old = atomic_exchange(&logger.fd, 2);
	if (old > 2)
		close(old);
	return 0;
}

int log_reopen(void)
{
	int fd, old;

	if (logger.path[0] == '\0')
		return 0;
	/* O_NOFOLLOW: a symbolic link planted at the log's path (in a
	 * directory others can write) would have us append to any file we
	 * may write.  Refused with ELOOP, which log_strerror() explains. */
	fd = open(logger.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
	if (fd < 0)
		return -1;
	/* Other threads may be writing to the current descriptor: closing it
	 * under them could let a new socket take its number and a log line
	 * go to a client.  dup3() puts the new file behind the same number in
	 * one step, so a writer sees the old file or the new one. */
	old = atomic_load(&logger.fd);
	if (old > 2) {
		int rc = dup3(fd, old, O_CLOEXEC), e = errno;

		close(fd);
		errno = e;	/* the caller reports dup3's */
		return rc < 0 ? -1 : 0;
	}
	atomic_store(&logger.fd, fd);
	return 0;
}

int log_enabled(enum log_level lvl)
{
	return lvl >= logger.min;
}

const char *log_strerror(int err)
{
	return err == ELOOP ? "is a symbolic link, refused (name the file itself, or leave log_file empty for stderr)" : strerror(err);
}

/* The length of the valid UTF-8 sequence of 2 to 4 bytes at s[0..n), or 0.
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.) */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned char lo = 0x80, hi = 0xBF;

	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		len = 3;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		len = 4;
	else
		return 0;
	if (s[0] == 0xE0)
		lo = 0xA0;
	else if (s[0] == 0xED)
		hi = 0x9F;
	else if (s[0] == 0xF0)
		lo = 0x90;
	else if (s[0] == 0xF4)
		hi = 0x8F;
	if (len > n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

/* Everything that could end or forge a line is written as a JSON escape:
 * C0 controls and DEL, the C1 controls U+0080..U+009F (NEL ends a line for
 * some readers), U+2028 and U+2029 (line and paragraph separators), and any
 * byte that is not part of valid UTF-8, as \u00XX (its Latin-1 reading, so
 * that the line stays valid UTF-8 and valid JSON).  A character is copied
 * whole or not at all. */
const char *log_quote(char *buf, size_t buflen, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0;

	if (buflen < 3) {
		if (buflen > 0)
			buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (size_t i = 0; i < n && s[i] != '\0';) {
		unsigned char c = u[i];
		char esc[8];
		size_t el, used = 1;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			el = 2;
		} else if (c < 0x20 || c == 0x7f) {
			el = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
		} else if (c < 0x80) {
			esc[0] = (char)c;
			el = 1;
		} else {
			/* n may cut a character short, and so may a NUL. */
			size_t avail = 0;

			while (avail < 4 && i + avail < n && s[i + avail] != '\0')
				avail++;
			used = utf8_seq(u + i, avail);
			if (used == 0) {
				used = 1;
				el = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
			} else if (c == 0xC2 && u[i + 1] <= 0x9F) {
				el = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", u[i + 1]);
			} else if (c == 0xE2 && u[i + 1] == 0x80 && (u[i + 2] == 0xA8 || u[i + 2] == 0xA9)) {
				el = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", 0x2000 + (u[i + 2] - 0x80));
			} else {
				memcpy(esc, s + i, used);
				el = used;
			}
		}
		if (o + el + 2 > buflen)
			break;
		memcpy(buf + o, esc, el);
		o += el;
		i += used;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* Is v[0..n) a JSON number (RFC 8259 6)?  "127.0.0.1" or "0.1.0" are
 * not, and must be quoted. */
static int json_number(const char *v, size_t n)
{
	size_t i = 0;

	if (i < n && v[i] == '-')
		i++;
	if (i >= n || v[i] < '0' || v[i] > '9')
		return 0;
	if (v[i] == '0')
		i++;
	else
		while (i < n && v[i] >= '0' && v[i] <= '9')
			i++;
	if (i < n && v[i] == '.') {
		if (++i >= n || v[i] < '0' || v[i] > '9')
			return 0;
		while (i < n && v[i] >= '0' && v[i] <= '9')
			i++;
	}
	if (i < n && (v[i] == 'e' || v[i] == 'E')) {
		if (++i < n && (v[i] == '+' || v[i] == '-'))
			i++;
		if (i >= n || v[i] < '0' || v[i] > '9')
			return 0;
		while (i < n && v[i] >= '0' && v[i] <= '9')
			i++;
	}
	return i == n;
}

/* Turn "k=v k2="quoted v" k3=v3" into JSON members.  Bare values that look
 * like numbers stay numbers; quoted values are already JSON-escaped by
 * log_quote() (its \uXXXX and \" \\ escapes are valid JSON). */
static size_t kv_to_json(char *out, size_t outlen, const char *kv)
{
	size_t o = 0;
	const char *p = kv;

#define PUT(ch) do { if (o + 1 < outlen) out[o++] = (ch); } while (0)
	while (*p != '\0') {
		const char *k, *v;
		size_t kl, vl;
		int quoted, numeric;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		k = p;
		while (*p != '\0' && *p != '=' && *p != ' ')
			p++;
		kl = (size_t)(p - k);
		if (*p != '=') {
			v = k;
			vl = kl;
			k = "msg";
			kl = 3;
		} else {
			p++;
			v = p;
			quoted = (*p == '"');
			if (quoted) {
				p++;
				while (*p != '\0' && *p != '"') {
					if (*p == '\\' && p[1] != '\0')
						p++;
					p++;
				}
				if (*p == '"')
					p++;
			} else {
				while (*p != '\0' && *p != ' ')
					p++;
			}
			vl = (size_t)(p - v);
		}
		PUT(',');
		PUT('"');
		for (size_t i = 0; i < kl; i++)
			PUT(k[i]);
		PUT('"');
		PUT(':');
		quoted = vl > 0 && v[0] == '"';
		numeric = !quoted && json_number(v, vl);
		if (quoted || numeric) {
			for (size_t i = 0; i < vl; i++)
				PUT(v[i]);
		} else {
			PUT('"');
			for (size_t i = 0; i < vl; i++) {
				if (v[i] == '"' || v[i] == '\\')
					PUT('\\');
				PUT(v[i]);
			}
			PUT('"');
		}
	}
#undef PUT
	out[o] = '\0';
	return o;
}

void log_event(enum log_level lvl, const char *event, const char *fmt, ...)
{
	char msg[2048], line[4096];
	struct timespec ts;
	struct tm tm;
	char when[64];
	va_list ap;
	int n;

	if (lvl < logger.min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (int)(ts.tv_nsec / 1000000) % 1000);

	if (logger.json) {
		char members[3072];

		kv_to_json(members, sizeof(members), msg);
		n = snprintf(line, sizeof(line),
		    "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"%s\"%s}\n",
		    when, level_name[lvl], event, members);
	} else {
		n = snprintf(line, sizeof(line), "ts=%s level=%s event=%s%s%s\n",
		    when, level_name[lvl], event, msg[0] ? " " : "", msg);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* A log line that cannot be written has nowhere better to go. */
	if (write(atomic_load(&logger.fd), line, (size_t)n) < 0 && errno == EBADF)
		atomic_store(&logger.fd, 2);
}
