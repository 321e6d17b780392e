#include "autoconfig.h"

#include "push_body.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "target.h"
#include "text.h"

static int push_refuse(const char **why, const char *text, int status)
{
	*why = text;
	return status;
}

/* Validate one notification object and fill m.  raw (a single object) is
 * sent as it is; a batch member is printed into a malloc'd body of its
 * own.  Returns 0, or the status to answer with *why filled. */
static int push_prepare(const struct config *cfg, const cJSON *obj, const char *raw,
    size_t rawlen, struct push_msg *m, const char **why)
{
	struct target t;
	int rc;

	*why = NULL;
	if (!cJSON_IsObject(obj))
		return push_refuse(why, "each notification must be a JSON object", 400);
	rc = target_from_body(obj, &t);
	if (rc == TARGET_MISSING)
		return push_refuse(why, "no target: give \"user_id\" or \"broadcast\": true", 400);
	if (rc != TARGET_OK)
		return push_refuse(why, "invalid \"user_id\" or \"broadcast\"", 400);
	if (t.kind == TARGET_USER) {
		/* The queue is bound with "user.*": a dot would make a routing
		 * key that nothing matches, and the broker would drop it. */
		if (memchr(t.id, '.', t.id_len) != NULL)
			return push_refuse(why, "\"user_id\" must not contain '.'", 400);
		snprintf(m->routing_key, sizeof(m->routing_key), "user.%s", t.id);
	} else {
		snprintf(m->routing_key, sizeof(m->routing_key), "broadcast");
	}
	if (raw != NULL) {
		/* A single object travels byte for byte. */
		m->body = raw;
		m->len = rawlen;
	} else {
		m->owned = cJSON_PrintUnformatted(obj);
		if (m->owned == NULL)
			return push_refuse(why, "out of memory", 503);
		m->body = m->owned;
		m->len = strlen(m->owned);
	}
	if (m->len > cfg->max_message_size)
		return push_refuse(why, "notification larger than max_message_size", 413);
	return 0;
}

int push_body_parse(const struct config *cfg, struct push_job *job, const char **why)
{
	const char *text = job->raw;
	size_t len = job->raw_len;
	cJSON *root;
	int status = 400, rc;

	text_trim(&text, &len, TEXT_JSON_WS);
	if (len == 0)
		return push_refuse(why, "empty body", 400);
	root = target_parse_json(text, len, &rc);
	if (root == NULL)
		return push_refuse(why, rc == TARGET_NOT_UTF8 ? "body is not valid UTF-8" : "body is not valid JSON", 400);
	if (target_has_escaped_nul(text, len)) {
		status = push_refuse(why, "\\u0000 is not allowed", 400);
	} else if (cJSON_IsArray(root)) {
		int n = cJSON_GetArraySize(root);
		const cJSON *it;

		if (n == 0 || (uint32_t)n > cfg->push_max_batch) {
			status = n == 0 ? push_refuse(why, "empty batch", 400) :
			    push_refuse(why, "batch larger than push_max_batch", 413);
		} else if ((job->msgs = calloc((size_t)n, sizeof(*job->msgs))) == NULL) {
			status = push_refuse(why, "out of memory", 503);
		} else {
			status = 0;
			cJSON_ArrayForEach(it, root) {
				job->n++;
				status = push_prepare(cfg, it, NULL, 0, &job->msgs[job->n - 1], why);
				if (status != 0)
					break;
			}
		}
	} else if ((job->msgs = calloc(1, sizeof(*job->msgs))) == NULL) {
		status = push_refuse(why, "out of memory", 503);
	} else {
		job->n = 1;
		status = push_prepare(cfg, root, text, len, &job->msgs[0], why);
	}
	cJSON_Delete(root);
	return status;
}

void push_job_free(struct push_job *j)
{
	for (uint32_t i = 0; i < j->n; i++)
		free(j->msgs[i].owned);
	free(j->msgs);
	free(j->raw);
	j->msgs = NULL;
	j->raw = NULL;
	j->n = 0;
}
