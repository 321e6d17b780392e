/* fuzz_config.c - libFuzzer target for the configuration parser.
 *
 * Each input is
 *   1. written to a memfd and loaded as a config file over the defaults;
 *   2. turned into an environment, one entry per line: a line that starts
 *      with NOTIFYD_ or has no '=' is taken as it is, and "key = value"
 *      becomes NOTIFYD_KEY=value, so the file seeds reach every variable;
 *      the environment is applied over the file's result, then
 *      config_finish() runs (it uses gethostname());
 *   3. printed, and the printed text must load again without error and
 *      print the same (config_print promises a valid config file).
 * Errors must come with a message naming where they come from.  Everything
 * is freed, so LeakSanitizer checks config_free() and the error paths.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -I<build> -Iinclude
 *   fuzz/fuzz_config.c src/config.c
 * Run:   ./fuzz_config -max_len=10000 fuzz/corpus/config  (or scripts/fuzz config)
 */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ENV_MAX 64

/* Two memfds reused by every run: the input file and the printed one. */
static int fz_fd[2] = { -1, -1 };
static char fz_path[2][64];

static const char *fz_file(int which, const void *p, size_t n)
{
	if (fz_fd[which] < 0) {
		fz_fd[which] = memfd_create(which ? "printed.conf" : "input.conf", 0);
		if (fz_fd[which] < 0)
			abort();
		snprintf(fz_path[which], sizeof(fz_path[which]), "/proc/self/fd/%d", fz_fd[which]);
	}
	if (ftruncate(fz_fd[which], 0) != 0)
		abort();
	if (n > 0 && pwrite(fz_fd[which], p, n, 0) != (ssize_t)n)
		abort();
	return fz_path[which];
}

/* A failed call must say why, within the buffer. */
static void fz_check_err(int rc, const char *err, size_t len, const char *prefix)
{
	if (rc != 0 && rc != -1)
		abort();
	if (memchr(err, '\0', len) == NULL)
		abort();
	if (rc == -1 && (err[0] == '\0' || strncmp(err, prefix, strlen(prefix)) != 0))
		abort();
}

static bool fz_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* One environment entry from the line s[0..n). */
static char *fz_env_entry(const char *s, size_t n)
{
	const char *eq = memchr(s, '=', n);
	const char *k = s, *kend, *v, *vend = s + n;
	char *e, *w;

	if (eq == NULL || (n >= 8 && memcmp(s, "NOTIFYD_", 8) == 0)) {
		e = malloc(n + 1);
		if (e == NULL)
			abort();
		memcpy(e, s, n);
		e[n] = '\0';
		return e;
	}
	while (k < eq && fz_blank(*k))
		k++;
	kend = eq;
	while (kend > k && fz_blank(kend[-1]))
		kend--;
	v = eq + 1;
	while (v < vend && fz_blank(*v))
		v++;
	while (vend > v && fz_blank(vend[-1]))
		vend--;
	e = malloc(8 + (size_t)(kend - k) + 1 + (size_t)(vend - v) + 1);
	if (e == NULL)
		abort();
	memcpy(e, "NOTIFYD_", 8);
	w = e + 8;
	for (; k < kend; k++)
		*w++ = *k >= 'a' && *k <= 'z' ? (char)(*k - 'a' + 'A') : *k;
	*w++ = '=';
	memcpy(w, v, (size_t)(vend - v));
	w[vend - v] = '\0';
	return e;
}

static void fz_env(struct config *c, const uint8_t *data, size_t size)
{
	char *envp[ENV_MAX + 1];
	char err[256];
	size_t n = 0, start = 0;
	int rc;

	for (size_t i = 0; i <= size && n < ENV_MAX; i++) {
		if (i == size || data[i] == '\n') {
			const char *line = (const char *)data + start;
			size_t len = i - start;

			start = i + 1;
			/* a NUL would end the entry early: fine, but keep it whole */
			if (len == 0 || memchr(line, '\0', len) != NULL || line[0] == '#')
				continue;
			envp[n++] = fz_env_entry(line, len);
		}
	}
	envp[n] = NULL;
	memset(err, 'x', sizeof(err));
	rc = config_apply_env(c, envp, err, sizeof(err));
	fz_check_err(rc, err, sizeof(err), "environment NOTIFYD_");
	for (size_t i = 0; i < n; i++)
		free(envp[i]);
}

static char *fz_print(const struct config *c, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (f == NULL)
		abort();
	config_print(c, f);
	if (fclose(f) != 0)
		abort();
	return buf;
}

/* The printed configuration loads back to the same configuration. */
static void fz_round_trip(const struct config *c)
{
	struct config again;
	size_t len, len2;
	char *text = fz_print(c, &len), *text2;
	const char *path = fz_file(1, text, len);
	char err[512];

	if (config_defaults(&again) != 0)
		abort();
	if (config_load_file(&again, path, err, sizeof(err)) != 0)
		abort();
	text2 = fz_print(&again, &len2);
	if (len != len2 || memcmp(text, text2, len) != 0)
		abort();
	free(text);
	free(text2);
	config_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char err[512];
	const char *path = fz_file(0, data, size);
	int rc;

	if (config_defaults(&c) != 0)
		abort();
	memset(err, 'x', sizeof(err));
	rc = config_load_file(&c, path, err, sizeof(err));
	fz_check_err(rc, err, sizeof(err), path);
	fz_env(&c, data, size);

	memset(err, 'x', sizeof(err));
	rc = config_finish(&c, err, sizeof(err));
	fz_check_err(rc, err, sizeof(err), "");
	if (rc == 0) {
		if (c.amqp_queue == NULL || c.amqp_queue[0] == '\0' || strlen(c.amqp_queue) > 255)
			abort();
		if (c.amqp_reconnect_min_ms > c.amqp_reconnect_max_ms ||
		    c.ws_pong_timeout_ms >= c.ws_ping_interval_ms)
			abort();
		if ((c.tls_cert_file[0] == '\0') != (c.tls_key_file[0] == '\0'))
			abort();
	}
	fz_round_trip(&c);
	config_free(&c);
	return 0;
}
