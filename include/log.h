/* log.h - one line per event on stderr (or a log file), key=value or JSON.
 *
 * Promises: log_event() writes a whole line with a single write(2), so lines
 * from several threads never interleave.  The message is "key=value" pairs;
 * values that need it must be quoted with log_quote(), which also escapes
 * control characters, so untrusted text (user ids, close reasons) can never
 * forge a line.  In JSON mode the pairs become members of one object.
 * The logger is the one piece of process-wide state: it is set by log_init()
 * before any thread starts and only read afterwards (log_reopen() swaps the
 * file descriptor atomically).
 */
#ifndef NOTIFYD_LOG_H
#define NOTIFYD_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* json: 0 for key=value lines, 1 for JSON objects.  path NULL: stderr.
 * The file is opened for appending and never through a symbolic link
 * (O_NOFOLLOW): -1 with errno ELOOP then.  Returns 0 or -1 with errno. */
int log_init(enum log_level min, int json, const char *path);
int log_reopen(void);
/* strerror(err), with ELOOP explained as log_init() gets it. */
const char *log_strerror(int err);
int log_enabled(enum log_level lvl);

/* event is a short snake_case name; fmt produces "k=v k2=v2" pairs. */
__attribute__((format(printf, 3, 4)))
void log_event(enum log_level lvl, const char *event, const char *fmt, ...);

/* Quote and escape s (at most n bytes of it) into buf as "...", always
 * NUL-terminated, truncated to fit (never inside a character); returns buf.
 * Control characters (C0, DEL, C1), U+2028, U+2029 and bytes that are not
 * UTF-8 come out as \u00XX / \u20XX escapes: nothing raw can end a line. */
const char *log_quote(char *buf, size_t buflen, const char *s, size_t n);

#define log_debug(ev, ...) do { if (log_enabled(LOG_LVL_DEBUG)) log_event(LOG_LVL_DEBUG, ev, __VA_ARGS__); } while (0)
#define log_info(ev, ...) log_event(LOG_LVL_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_event(LOG_LVL_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_event(LOG_LVL_ERROR, ev, __VA_ARGS__)

#endif
