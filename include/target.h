/* target.h - who a notification is for, from its routing key or its body.
 *
 * Promises: the contract's routing rules, with no I/O and no allocation.
 * "user.<id>" names one user, "broadcast" everyone; any other key defers to
 * the body's "user_id" (string or integer) or "broadcast": true.
 * A user id is 1..TARGET_ID_MAX bytes of valid UTF-8 with no control
 * characters (C0 < 0x20, DEL 0x7f, C1 U+0080..U+009F) and no line or
 * paragraph separator (U+2028, U+2029).  Also the one strict reading of a
 * notification body as JSON, for the broker's messages and POST /push alike.
 * No allocation except target_parse_json()'s tree.
 */
#ifndef NOTIFYD_TARGET_H
#define NOTIFYD_TARGET_H

#include <stddef.h>

#define TARGET_ID_MAX 128

struct cJSON;

enum target_kind {
	TARGET_NONE = 0,	/* the routing key does not decide: look at the body */
	TARGET_USER,
	TARGET_BROADCAST
};

enum target_error {
	TARGET_OK = 0,
	TARGET_BAD_ID = -1,	/* a user id that breaks the rules above */
	TARGET_MISSING = -2,	/* body has neither user_id nor broadcast:true */
	TARGET_BAD_FIELD = -3,	/* user_id of a wrong type, broadcast not a boolean ... */
	TARGET_NOT_UTF8 = -4,	/* the body is not valid UTF-8 */
	TARGET_NOT_JSON = -5	/* empty, not JSON, or more than one JSON value */
};

struct target {
	enum target_kind kind;
	size_t id_len;
	char id[TARGET_ID_MAX + 1];	/* NUL-terminated when kind == TARGET_USER */
};

/* Check a user id against the rules above: 1 if valid, else 0. */
int target_id_valid(const char *id, size_t len);

/* From a routing key of len bytes (not NUL-terminated).  Sets t->kind to
 * TARGET_NONE (look at the body), TARGET_USER or TARGET_BROADCAST.
 * Returns TARGET_OK or TARGET_BAD_ID ("user." with an empty or invalid id). */
int target_from_routing_key(const char *key, size_t len, struct target *t);

/* From a parsed JSON body (must be an object).  "user_id": a string, or an
 * integer in [-(2^53 - 1), 2^53 - 1] (exact in a double) written in decimal; "broadcast": true.  When both
 * are present, user_id wins.  Returns TARGET_OK, TARGET_MISSING,
 * TARGET_BAD_FIELD or TARGET_BAD_ID. */
int target_from_body(const struct cJSON *obj, struct target *t);

/* The one rule for a user id given as a JSON number (a body's user_id, a
 * token's user claim): an integer within +-(2^53 - 1), exact in a double,
 * named by its plain decimal text ("1e3" and 1000.0 are user "1000").
 * Sets t to that user and returns TARGET_OK, or TARGET_BAD_FIELD. */
int target_from_number(double v, struct target *t);

/* Does the JSON text contain an escaped NUL (\u0000)?  cJSON ends a string
 * there, so "ab\u0000cd" would read as user "ab": never route on such a
 * body.  (A literal backslash before "u0000" is refused too: rare, safe.) */
int target_has_escaped_nul(const char *json, size_t len);

/* Does a JSON string in the text hold a raw control character (< 0x20)?
 * RFC 8259 forbids it and cJSON lets it through: such a body is not JSON. */
int target_json_has_raw_control(const char *json, size_t len);

/* Parse text[0..len) as one JSON value, strictly: valid UTF-8 (a text frame
 * must be), white space only after the value, no raw control character in a
 * string (RFC 8259); cJSON checks none of these.  Returns the tree (free it
 * with cJSON_Delete) or NULL with *err TARGET_NOT_UTF8 or TARGET_NOT_JSON.
 * "\u0000" is the caller's call (target_has_escaped_nul). */
struct cJSON *target_parse_json(const char *text, size_t len, int *err);

/* Short static name of an error, for logs and metrics labels. */
const char *target_strerror(int err);

#endif
