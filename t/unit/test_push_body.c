/* Unit tests for push_body: a POST /push body checked and split into the
 * messages the publisher sends, with the status of every refusal. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "push_body.h"
#include "tap.h"

static struct config cfg;

static void job_free(struct push_job *j)
{
	push_job_free(j);
	ok(j->msgs == NULL && j->raw == NULL && j->n == 0, "push_job_free leaves an empty job");
}

static int parse(const char *body, struct push_job *j, const char **why)
{
	memset(j, 0, sizeof(*j));
	j->raw_len = strlen(body);
	j->raw = malloc(j->raw_len + 1);
	memcpy(j->raw, body, j->raw_len + 1);
	*why = NULL;
	return push_body_parse(&cfg, j, why);
}

struct refusal {
	const char *body;
	int status;
	const char *why;
};

static const struct refusal refusals[] = {
	{ "", 400, "empty body" },
	{ " \r\n\t", 400, "empty body" },
	{ "{\"user_id\":\"1\"", 400, "body is not valid JSON" },
	{ "{\"user_id\":\"\xff\"}", 400, "body is not valid UTF-8" },
	{ "{\"user_id\":\"a\\u0000b\"}", 400, "\\u0000 is not allowed" },
	{ "{\"title\":\"x\"}", 400, "no target: give \"user_id\" or \"broadcast\": true" },
	{ "{\"user_id\":\"a.b\"}", 400, "\"user_id\" must not contain '.'" },
	{ "{\"user_id\":true}", 400, "invalid \"user_id\" or \"broadcast\"" },
	{ "[]", 400, "empty batch" },
	{ "[{\"user_id\":\"1\"},3]", 400, "each notification must be a JSON object" },
	{ "[{\"user_id\":\"1\"},{\"user_id\":\"2\"},{\"user_id\":\"3\"},{\"user_id\":\"4\"}]", 413,
	  "batch larger than push_max_batch" },
	{ "{\"user_id\":\"1\",\"pad\":\"0123456789012345678901234567890123456789\"}", 413,
	  "notification larger than max_message_size" },
	{ "\"just a string\"", 400, "each notification must be a JSON object" },
};

int main(void)
{
	struct push_job j;
	const char *why;
	const char *one = "  {\"user_id\":\"42\",\"title\":\"hi\"}\n";

	cfg.push_max_batch = 3;
	cfg.max_message_size = 48;

	ok(parse(one, &j, &why) == 0 && j.n == 1 && strcmp(j.msgs[0].routing_key, "user.42") == 0,
	    "one object: one message to user.42");
	ok(j.msgs[0].owned == NULL && j.msgs[0].body == j.raw + 2 && j.msgs[0].len == strlen(one) - 3,
	    "its body is the request's, byte for byte, trimmed, not copied");
	job_free(&j);

	ok(parse("[{\"broadcast\":true,\"m\":1},{\"user_id\":7,\"m\":2}]", &j, &why) == 0 && j.n == 2 &&
	    strcmp(j.msgs[0].routing_key, "broadcast") == 0 && strcmp(j.msgs[1].routing_key, "user.7") == 0,
	    "a batch: a broadcast and an integer user id");
	ok(j.msgs[1].owned != NULL && strcmp(j.msgs[1].body, "{\"user_id\":7,\"m\":2}") == 0,
	    "a batch member is printed anew");
	job_free(&j);

	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		const struct refusal *r = &refusals[i];
		int st = parse(r->body, &j, &why);

		ok(st == r->status && why != NULL && strcmp(why, r->why) == 0, "%d \"%s\" (got %d \"%s\")",
		    r->status, r->why, st, why != NULL ? why : "(null)");
		job_free(&j);
	}
	return done_testing();
}
