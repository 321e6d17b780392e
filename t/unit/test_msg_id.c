/* Unit tests for msg_id: one spelling per id, and the check that tells
 * streams apart. */
#include "autoconfig.h"

#include <string.h>

#include "msg_id.h"
#include "tap.h"

static void expect_parse(const char *s, int want_rc, uint64_t want_off, uint32_t want_check)
{
	uint64_t off = 77;
	uint32_t check = 77;
	int rc = msg_id_parse(s, strlen(s), &off, &check);

	ok(rc == want_rc && (rc != 0 || (off == want_off && check == want_check)),
	    "parse \"%s\" -> %d", s, rc);
}

int main(void)
{
	char id[MSG_ID_MAX];
	uint64_t off;
	uint32_t check;
	size_t n;

	n = msg_id_format(id, 0, 0);
	ok(n == 10 && strcmp(id, "0-00000000") == 0, "format offset 0: %s", id);
	n = msg_id_format(id, INT64_MAX, 0xdeadbeef);
	ok(strcmp(id, "9223372036854775807-deadbeef") == 0 && n == strlen(id) && n < MSG_ID_MAX,
	    "format the largest offset: %s", id);
	ok(msg_id_parse(id, n, &off, &check) == 0 && off == INT64_MAX && check == 0xdeadbeef,
	    "round trip of the largest offset");

	expect_parse("12345-0a1b2c3d", 0, 12345, 0x0a1b2c3d);
	expect_parse("0-ffffffff", 0, 0, 0xffffffff);
	expect_parse("", -1, 0, 0);
	expect_parse("-", -1, 0, 0);
	expect_parse("12345", -1, 0, 0);
	expect_parse("12345-", -1, 0, 0);
	expect_parse("-0a1b2c3d", -1, 0, 0);
	expect_parse("012-0a1b2c3d", -1, 0, 0);	/* leading zero: another spelling */
	expect_parse("00-0a1b2c3d", -1, 0, 0);
	expect_parse("12-0A1B2C3D", -1, 0, 0);	/* upper case: another spelling */
	expect_parse("12-0a1b2c3", -1, 0, 0);
	expect_parse("12-0a1b2c3d0", -1, 0, 0);
	expect_parse("12-0a1b2c3g", -1, 0, 0);
	expect_parse("+12-0a1b2c3d", -1, 0, 0);
	expect_parse(" 12-0a1b2c3d", -1, 0, 0);
	expect_parse("12-0a1b2c3d ", -1, 0, 0);
	expect_parse("9223372036854775808-00000000", -1, 0, 0);	/* past int64 */
	expect_parse("99999999999999999999-00000000", -1, 0, 0);
	expect_parse("1-2-00000000", -1, 0, 0);
	/* Only the first len bytes count. */
	ok(msg_id_parse("5-00000001xyz", 10, &off, &check) == 0 && off == 5 && check == 1,
	    "parse reads exactly len bytes");

	ok(msg_id_check("user.1", 6, "{}", 2) == msg_id_check("user.1", 6, "{}", 2),
	    "check is a function of key and body");
	ok(msg_id_check("user.1", 6, "{}", 2) != msg_id_check("user.2", 6, "{}", 2),
	    "another routing key, another check");
	ok(msg_id_check("user.1", 6, "{\"a\":1}", 7) != msg_id_check("user.1", 6, "{\"a\":2}", 7),
	    "another body, another check");
	ok(msg_id_check("ab", 2, "c", 1) != msg_id_check("a", 1, "bc", 2),
	    "key and body are kept apart");
	return done_testing();
}
