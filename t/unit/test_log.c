/* test_log.c - log_quote() escapes everything that could end or forge a
 * line; log_init() opens log_file appending and never through a symbolic
 * link. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"
#include "utf8.h"

/* What log_quote makes of s (n bytes) with a large buffer. */
static const char *quoted(const char *s, size_t n)
{
	static char buf[1024];

	return log_quote(buf, sizeof(buf), s, n);
}

static void expect_quote(const char *s, size_t n, const char *want, const char *what)
{
	const char *got = quoted(s, n);

	ok(strcmp(got, want) == 0, "%s: %s", what, got);
	if (strcmp(got, want) != 0)
		printf("# want: %s\n", want);
}

#define Q(lit, want, what) expect_quote((lit), sizeof(lit) - 1, (want), (what))

/* No byte below 0x20, no DEL, no C1 control, no U+2028/2029, valid UTF-8. */
static int clean(const char *q)
{
	const unsigned char *u = (const unsigned char *)q;
	size_t n = strlen(q);

	for (size_t i = 0; i < n; i++) {
		if (u[i] < 0x20 || u[i] == 0x7f)
			return 0;
		if (u[i] == 0xC2 && i + 1 < n && u[i + 1] >= 0x80 && u[i + 1] <= 0x9F)
			return 0;
		if (u[i] == 0xE2 && i + 2 < n && u[i + 1] == 0x80 && (u[i + 2] == 0xA8 || u[i + 2] == 0xA9))
			return 0;
	}
	return utf8_valid(u, n);
}

static void test_quote(void)
{
	char small[8];
	uint32_t seed = 12345;
	int all_clean = 1;

	Q("plain", "\"plain\"", "ASCII as is");
	Q("a\"b\\c", "\"a\\\"b\\\\c\"", "quote and backslash escaped");
	Q("a\nb\rc\td", "\"a\\u000ab\\u000dc\\u0009d\"", "C0 controls escaped");
	Q("a\x7f", "\"a\\u007f\"", "DEL escaped");
	Q("a\xC2\x80", "\"a\\u0080\"", "U+0080 (first C1) escaped");
	Q("a\xC2\x85z", "\"a\\u0085z\"", "U+0085 NEL escaped");
	Q("\xC2\x9F", "\"\\u009f\"", "U+009F (last C1) escaped");
	Q("\xC2\xA0", "\"\xC2\xA0\"", "U+00A0 kept (no control)");
	Q("j\xC3\xBCrgen", "\"j\xC3\xBCrgen\"", "UTF-8 kept");
	Q("a\xE2\x80\xA8z", "\"a\\u2028z\"", "U+2028 escaped");
	Q("a\xE2\x80\xA9z", "\"a\\u2029z\"", "U+2029 escaped");
	Q("\xE2\x80\xAF", "\"\xE2\x80\xAF\"", "U+202F kept");
	Q("\xF0\x9F\x98\x80", "\"\xF0\x9F\x98\x80\"", "4-byte character kept");
	Q("a\x85z", "\"a\\u0085z\"", "a lone 0x85 (NEL in Latin-1) escaped");
	Q("\xFF\xFE", "\"\\u00ff\\u00fe\"", "bytes that are never UTF-8 escaped");
	Q("\xC0\x80", "\"\\u00c0\\u0080\"", "overlong NUL escaped byte by byte");
	Q("\xED\xA0\x80", "\"\\u00ed\\u00a0\\u0080\"", "surrogate escaped byte by byte");
	Q("\xE2\x80", "\"\\u00e2\\u0080\"", "U+2028 cut short by the end");
	expect_quote("a\xC3\xBC", 2, "\"a\\u00c3\"", "a character cut by n is not copied raw");
	expect_quote("a\0b", 3, "\"a\"", "stops at a NUL");
	expect_quote("\xE2\x80\0\xA8", 4, "\"\\u00e2\\u0080\"", "a NUL inside a character ends it");

	/* Truncation: whole characters only, always closed and terminated. */
	log_quote(small, sizeof(small), "ab\xF0\x9F\x98\x80", 6);
	ok(strcmp(small, "\"ab\"") == 0, "a character that does not fit is left out whole: %s", small);
	log_quote(small, sizeof(small), "\xC2\x85\xC2\x85", 4);
	ok(strcmp(small, "\"\"") == 0, "an escape that does not fit is left out whole: %s", small);
	log_quote(small, 3, "abc", 3);
	ok(strcmp(small, "\"\"") == 0, "buffer of 3: empty quotes");

	/* Whatever the input, the output is clean. */
	for (int round = 0; round < 20000; round++) {
		char in[16];
		size_t n = 1 + (size_t)(round % 15);

		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			/* Mostly the interesting lead bytes. */
			switch ((seed >> 16) % 4) {
			case 0: in[i] = (char)0xC2; break;
			case 1: in[i] = (char)0xE2; break;
			case 2: in[i] = (char)(0x80 + ((seed >> 8) % 0x40)); break;
			default: in[i] = (char)(seed >> 8); break;
			}
		}
		if (!clean(quoted(in, n))) {
			all_clean = 0;
			break;
		}
	}
	ok(all_clean, "20000 random inputs: no control, no separator, valid UTF-8 out");
}

static void test_file(void)
{
	char dir[] = "/tmp/test_log.XXXXXX", target[64], link[64], real[64], line[512];
	struct stat st;
	FILE *f;
	char q[64];
	int rc, err;

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(target, sizeof(target), "%s/target", dir);
	snprintf(link, sizeof(link), "%s/link.log", dir);
	snprintf(real, sizeof(real), "%s/real.log", dir);
	f = fopen(target, "w");
	if (f != NULL)
		fclose(f);
	ok(f != NULL && symlink(target, link) == 0, "a symbolic link planted at the log's path");

	errno = 0;
	rc = log_init(LOG_LVL_INFO, 0, link);
	err = errno;
	ok(rc == -1 && err == ELOOP, "log_init refuses it (errno %d)", err);
	ok(strstr(log_strerror(ELOOP), "symbolic link") != NULL, "and says why: %s", log_strerror(ELOOP));
	ok(stat(target, &st) == 0 && st.st_size == 0, "the link's target is untouched");

	ok(log_init(LOG_LVL_INFO, 0, real) == 0, "a plain path opens");
	log_info("test_event", "user=%s", log_quote(q, sizeof(q), "a\xC2\x85z\xE2\x80\xA8", 7));
	ok(log_init(LOG_LVL_INFO, 0, NULL) == 0, "back to stderr");
	line[0] = '\0';
	f = fopen(real, "r");
	if (f != NULL) {
		if (fgets(line, sizeof(line), f) == NULL)
			line[0] = '\0';
		fclose(f);
	}
	ok(strstr(line, "event=test_event user=\"a\\u0085z\\u2028\"\n") != NULL && clean(strtok(line, "\n")),
	   "the line holds the escapes, nothing raw: %s", line);
	rc = stat(real, &st);
	ok(rc == 0 && (st.st_mode & 0777) == 0640, "created with mode 0640 (umask permitting): %o",
	   (unsigned)(st.st_mode & 0777));

	unlink(link);
	unlink(target);
	unlink(real);
	rmdir(dir);
}

int main(void)
{
	umask(022);
	test_quote();
	test_file();
	return done_testing();
}
