/* The push socket codec and the push policy (orchestrator/push_*). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator/push_policy.h"
#include "orchestrator/push_proto.h"

#define OID_A "1111111111111111111111111111111111111111"
#define OID_B "abcdefabcdefabcdefabcdefabcdefabcdef0123"

static void fill_update(struct push_update *u, const char *old, const char *new_, const char *ref,
                        bool force)
{
	memset(u, 0, sizeof(*u));
	u->force = force;
	snprintf(u->old_oid, sizeof(u->old_oid), "%s", old);
	snprintf(u->new_oid, sizeof(u->new_oid), "%s", new_);
	snprintf(u->ref, sizeof(u->ref), "%s", ref);
}

/* ---- codec ------------------------------------------------------------ */

static void test_request_roundtrip(void **state)
{
	struct push_request req = {.kind = PUSH_KIND_PUSH,
	                           .flags = PUSH_FLAG_DRY_RUN,
	                           .n = 2,
	                           .pack_len = 0x0102030405060708ULL};
	fill_update(&req.u[0], OID_A, OID_B, "refs/heads/trimo/x", false);
	fill_update(&req.u[1], push_zero_oid, OID_A, "refs/tags/v1", true);
	uint8_t buf[PUSH_REQ_HDR_MAX + 16];
	size_t n = push_request_encode(&req, buf, sizeof(buf));
	assert_true(n > 0);
	/* the pack length is the last 8 bytes, big-endian */
	assert_int_equal(buf[n - 8], 0x01);
	assert_int_equal(buf[n - 1], 0x08);
	/* every prefix is "need more", the whole is complete */
	struct push_request got;
	size_t used = 0;
	const char *why = NULL;
	for (size_t k = 0; k < n; k++)
		assert_int_equal(push_request_decode(buf, k, &got, &used, &why), 0);
	/* trailing pack bytes are not part of the header */
	memset(buf + n, 0xee, 16);
	assert_int_equal(push_request_decode(buf, n + 16, &got, &used, &why), 1);
	assert_int_equal(used, n);
	assert_int_equal(got.kind, PUSH_KIND_PUSH);
	assert_int_equal(got.flags, PUSH_FLAG_DRY_RUN);
	assert_int_equal(got.n, 2);
	assert_true(got.pack_len == 0x0102030405060708ULL);
	assert_string_equal(got.u[0].old_oid, OID_A);
	assert_string_equal(got.u[0].new_oid, OID_B);
	assert_string_equal(got.u[0].ref, "refs/heads/trimo/x");
	assert_false(got.u[0].force);
	assert_true(got.u[1].force);
	assert_true(push_oid_is_zero(got.u[1].old_oid));
	assert_string_equal(got.u[1].ref, "refs/tags/v1");
}

static void test_list_request(void **state)
{
	struct push_request req = {.kind = PUSH_KIND_LIST};
	uint8_t buf[64];
	size_t n = push_request_encode(&req, buf, sizeof(buf));
	assert_int_equal(n, PUSH_MAGIC_LEN + 3 + 8);
	struct push_request got;
	size_t used;
	assert_int_equal(push_request_decode(buf, n, &got, &used, NULL), 1);
	assert_int_equal(got.kind, PUSH_KIND_LIST);
	/* a list with a pack is not a list */
	buf[n - 1] = 1;
	const char *why = NULL;
	assert_int_equal(push_request_decode(buf, n, &got, &used, &why), -1);
	assert_string_equal(why, "a list request with a pack");
}

static void test_encode_refuses_bad_fields(void **state)
{
	struct push_request req = {.kind = PUSH_KIND_PUSH, .n = 1};
	uint8_t buf[PUSH_REQ_HDR_MAX];
	fill_update(&req.u[0], OID_A, "ABCDEF", "refs/heads/x", false);
	assert_int_equal(push_request_encode(&req, buf, sizeof(buf)), 0);
	fill_update(&req.u[0], OID_A, OID_B, "refs/heads/a\nb", false);
	assert_int_equal(push_request_encode(&req, buf, sizeof(buf)), 0);
	fill_update(&req.u[0], OID_A, OID_B, "", false);
	assert_int_equal(push_request_encode(&req, buf, sizeof(buf)), 0);
	fill_update(&req.u[0], OID_A, OID_B, "refs/heads/x", false);
	assert_int_equal(push_request_encode(&req, buf, 20), 0); /* does not fit */
	req.n = PUSH_MAX_UPDATES + 1;
	assert_int_equal(push_request_encode(&req, buf, sizeof(buf)), 0);
	req.n = 1;
	req.flags = 0x80;
	assert_int_equal(push_request_encode(&req, buf, sizeof(buf)), 0);
}

static int decode_hostile(const uint8_t *buf, size_t len, const char **why)
{
	struct push_request got;
	size_t used;
	*why = NULL;
	return push_request_decode(buf, len, &got, &used, why);
}

static void test_decode_hostile(void **state)
{
	const char *why;
	/* garbage is refused at the first wrong byte, not after 8 */
	assert_int_equal(decode_hostile((const uint8_t *)"PACK", 4, &why), -1);
	assert_string_equal(why, "not a trimo-sbx push message");
	assert_int_equal(decode_hostile((const uint8_t *)"TRIM", 4, &why), 0);

	struct push_request req = {.kind = PUSH_KIND_PUSH, .n = 1};
	fill_update(&req.u[0], OID_A, OID_B, "refs/heads/x", false);
	uint8_t buf[PUSH_REQ_HDR_MAX];
	size_t n = push_request_encode(&req, buf, sizeof(buf));
	uint8_t b2[PUSH_REQ_HDR_MAX];

	memcpy(b2, buf, n);
	b2[PUSH_MAGIC_LEN] = 9; /* kind */
	assert_int_equal(decode_hostile(b2, n, &why), -1);
	assert_string_equal(why, "unknown request kind");

	memcpy(b2, buf, n);
	b2[PUSH_MAGIC_LEN + 2] = 200; /* n updates */
	assert_int_equal(decode_hostile(b2, n, &why), -1);
	assert_string_equal(why, "too many ref updates in one push");

	memcpy(b2, buf, n);
	b2[PUSH_MAGIC_LEN + 2] = 0;
	assert_int_equal(decode_hostile(b2, n, &why), -1);
	assert_string_equal(why, "a push without ref updates");

	memcpy(b2, buf, n);
	b2[PUSH_MAGIC_LEN + 3] = 7; /* force flag */
	assert_int_equal(decode_hostile(b2, n, &why), -1);

	memcpy(b2, buf, n);
	b2[PUSH_MAGIC_LEN + 4] = 'G'; /* old oid */
	assert_int_equal(decode_hostile(b2, n, &why), -1);
	assert_string_equal(why, "an object id is not 40 lowercase hex digits");

	/* a ref length beyond the limit, before the bytes arrive */
	size_t lenpos = PUSH_MAGIC_LEN + 3 + 1 + 80;
	memcpy(b2, buf, n);
	b2[lenpos] = 0xff;
	b2[lenpos + 1] = 0xff;
	assert_int_equal(decode_hostile(b2, lenpos + 2, &why), -1);
	assert_string_equal(why, "a ref name is too long");

	/* a NUL or a newline inside the ref */
	memcpy(b2, buf, n);
	b2[lenpos + 2 + 5] = '\0';
	assert_int_equal(decode_hostile(b2, n, &why), -1);
	memcpy(b2, buf, n);
	b2[lenpos + 2 + 5] = '\n';
	assert_int_equal(decode_hostile(b2, n, &why), -1);
	assert_string_equal(why, "a string holds control characters");

	/* an enormous pack length decodes (the receiver refuses it by size) */
	memcpy(b2, buf, n);
	memset(b2 + n - 8, 0xff, 8);
	struct push_request got;
	size_t used;
	assert_int_equal(push_request_decode(b2, n, &got, &used, &why), 1);
	assert_true(got.pack_len == UINT64_MAX);
}

static void test_answer_roundtrip(void **state)
{
	struct push_answer a = {.status = 0, .n = 2};
	snprintf(a.msg, sizeof(a.msg), "saved on the host");
	a.e[0].ok = true;
	snprintf(a.e[0].oid, sizeof(a.e[0].oid), OID_A);
	snprintf(a.e[0].ref, sizeof(a.e[0].ref), "refs/heads/trimo/x");
	a.e[1].ok = false;
	snprintf(a.e[1].oid, sizeof(a.e[1].oid), "%s", push_zero_oid);
	snprintf(a.e[1].ref, sizeof(a.e[1].ref), "refs/heads/main");
	snprintf(a.e[1].msg, sizeof(a.e[1].msg), "only trimo/x may be pushed");
	uint8_t buf[PUSH_ANS_MAX];
	size_t n = push_answer_encode(&a, buf, sizeof(buf));
	assert_true(n > 0);
	struct push_answer got;
	size_t used;
	for (size_t k = 0; k < n; k++)
		assert_int_equal(push_answer_decode(buf, k, &got, &used, NULL), 0);
	assert_int_equal(push_answer_decode(buf, n, &got, &used, NULL), 1);
	assert_int_equal(used, n);
	assert_string_equal(got.msg, "saved on the host");
	assert_true(got.e[0].ok);
	assert_false(got.e[1].ok);
	assert_string_equal(got.e[1].msg, "only trimo/x may be pushed");
	/* a message with a newline is not encoded: it would break git's protocol */
	snprintf(a.msg, sizeof(a.msg), "two\nlines");
	assert_int_equal(push_answer_encode(&a, buf, sizeof(buf)), 0);
}

static void test_clean_text(void **state)
{
	char out[16];
	push_clean_text(out, sizeof(out), "a\nb\x1b[31mc\x7f");
	assert_string_equal(out, "a b [31mc ");
	push_clean_text(out, 4, "abcdef");
	assert_string_equal(out, "abc");
}

/* ---- policy ----------------------------------------------------------- */

static const char *const protected_default[] = {"main", "master", "release/*", NULL};

static const struct push_policy policy = {
    .branch = "trimo/jwt-auth",
    .protected_branches = protected_default,
    .push_tags = false,
};

static int decide(const struct push_policy *p, struct push_facts f, char *why)
{
	why[0] = '\0';
	return push_policy_decide(p, &f, why, 256);
}

static void test_policy_task_branch(void **state)
{
	char why[256];
	struct push_facts f = {
	    .ref = "refs/heads/trimo/jwt-auth", .exists = true, .fast_forward = PUSH_FF_UNKNOWN};
	assert_int_equal(decide(&policy, f, why), 0);
	f.fast_forward = PUSH_FF_YES;
	assert_int_equal(decide(&policy, f, why), 0);
	/* creation: nothing to be a fast-forward of */
	f.exists = false;
	f.fast_forward = PUSH_FF_NO;
	assert_int_equal(decide(&policy, f, why), 0);
	/* an update to the same id is not a rewrite */
	f.exists = true;
	f.same = true;
	assert_int_equal(decide(&policy, f, why), 0);
}

static void test_policy_force(void **state)
{
	char why[256];
	struct push_facts f = {.ref = "refs/heads/trimo/jwt-auth",
	                       .exists = true,
	                       .force = true,
	                       .fast_forward = PUSH_FF_NO};
	assert_int_equal(decide(&policy, f, why), -1);
	assert_non_null(strstr(why, "force-push refused by trimo-sbx policy"));
	f.force = false;
	assert_int_equal(decide(&policy, f, why), -1);
	assert_non_null(strstr(why, "not a fast-forward of the host's trimo/jwt-auth"));
	assert_non_null(strstr(why, "force-push refused by trimo-sbx policy"));
}

static void test_policy_delete(void **state)
{
	char why[256];
	struct push_facts f = {.ref = "refs/heads/trimo/jwt-auth",
	                       .exists = true,
	                       .remove = true,
	                       .fast_forward = PUSH_FF_UNKNOWN};
	assert_int_equal(decide(&policy, f, why), -1);
	assert_string_equal(why, "deleting branches is refused by trimo-sbx policy");
	f.ref = "refs/heads/other";
	assert_int_equal(decide(&policy, f, why), -1);
	assert_string_equal(why, "deleting branches is refused by trimo-sbx policy");
}

static void test_policy_other_branches(void **state)
{
	char why[256];
	struct push_facts f = {.ref = "refs/heads/feature", .fast_forward = PUSH_FF_UNKNOWN};
	assert_int_equal(decide(&policy, f, why), -1);
	assert_string_equal(why, "only trimo/jwt-auth may be pushed");
	f.ref = "refs/heads/main";
	assert_int_equal(decide(&policy, f, why), -1);
	assert_string_equal(why, "main is protected by trimo-sbx policy (pattern 'main'); only "
	                         "the task's branch may be pushed");
	f.ref = "refs/heads/release/2.0/rc1";
	assert_int_equal(decide(&policy, f, why), -1);
	assert_non_null(strstr(why, "(pattern 'release/*')"));
	/* a prefix or suffix of the task's branch is another branch */
	f.ref = "refs/heads/trimo/jwt-auth2";
	assert_int_equal(decide(&policy, f, why), -1);
	f.ref = "refs/heads/trimo/jwt";
	assert_int_equal(decide(&policy, f, why), -1);
	/* notes, remotes, anything outside heads and tags */
	f.ref = "refs/notes/commits";
	assert_int_equal(decide(&policy, f, why), -1);
	assert_string_equal(why, "only trimo/jwt-auth may be pushed");
	f.ref = "refs/remotes/origin/trimo/jwt-auth";
	assert_int_equal(decide(&policy, f, why), -1);
}

static void test_policy_protected_task_branch(void **state)
{
	/* a pattern added after launch still protects the branch */
	const char *const pats[] = {"trimo/*", NULL};
	struct push_policy p = policy;
	p.protected_branches = pats;
	char why[256];
	struct push_facts f = {
	    .ref = "refs/heads/trimo/jwt-auth", .exists = true, .fast_forward = PUSH_FF_YES};
	assert_int_equal(decide(&p, f, why), -1);
	assert_string_equal(why, "trimo/jwt-auth is protected by trimo-sbx policy (pattern "
	                         "'trimo/*')");
}

static void test_policy_tags(void **state)
{
	char why[256];
	struct push_facts f = {.ref = "refs/tags/v1.0", .fast_forward = PUSH_FF_UNKNOWN};
	assert_int_equal(decide(&policy, f, why), -1);
	assert_non_null(
	    strstr(why, "pushing tags is refused by trimo-sbx policy (push_tags = no)"));
	struct push_policy p = policy;
	p.push_tags = true;
	assert_int_equal(decide(&p, f, why), 0);
	f.exists = true;
	assert_int_equal(decide(&p, f, why), -1);
	assert_non_null(strstr(why, "moving tags is refused"));
	f.same = true;
	assert_int_equal(decide(&p, f, why), 0);
	f.remove = true;
	assert_int_equal(decide(&p, f, why), -1);
	assert_string_equal(why, "deleting tags is refused by trimo-sbx policy");
	const char *const pats[] = {"refs/tags/v*", NULL};
	p.protected_branches = pats;
	f = (struct push_facts){.ref = "refs/tags/v2", .fast_forward = PUSH_FF_UNKNOWN};
	assert_int_equal(decide(&p, f, why), -1);
	assert_string_equal(why, "v2 is protected by trimo-sbx policy (pattern 'refs/tags/v*')");
}

static void test_policy_bad_names(void **state)
{
	char why[256];
	const char *bad[] = {"main",
	                     "HEAD",
	                     "refs/heads/a..b",
	                     "refs/heads/x.lock",
	                     "refs/heads/.x",
	                     "refs/heads/x/",
	                     "refs/heads/a b",
	                     "refs/heads/a:b",
	                     "refs/x",
	                     "refs/heads/@{1}",
	                     NULL};
	for (int i = 0; bad[i]; i++) {
		struct push_facts f = {.ref = bad[i], .fast_forward = PUSH_FF_UNKNOWN};
		assert_int_equal(decide(&policy, f, why), -1);
		assert_non_null(strstr(why, "is not a valid ref name"));
	}
}

/* ---- ref names and globs ---------------------------------------------- */

static void test_ref_valid(void **state)
{
	const char *good[] = {"refs/heads/main",
	                      "refs/heads/trimo/jwt-auth",
	                      "refs/tags/v1.0",
	                      "refs/heads/a.b",
	                      "refs/heads/x@y",
	                      "refs/heads/_-+",
	                      NULL};
	for (int i = 0; good[i]; i++)
		assert_true(push_ref_valid(good[i]));
	const char *bad[] = {"",
	                     "refs/",
	                     "refs/heads",
	                     "refs/heads/",
	                     "heads/main",
	                     "refs/heads//x",
	                     "refs/heads/x..y",
	                     "refs/heads/.hidden",
	                     "refs/heads/x/.y",
	                     "refs/heads/x.lock",
	                     "refs/heads/x.lock/y",
	                     "refs/heads/x.",
	                     "refs/heads/a~1",
	                     "refs/heads/a^",
	                     "refs/heads/a?",
	                     "refs/heads/a*",
	                     "refs/heads/a[",
	                     "refs/heads/a\\b",
	                     "refs/heads/a\x01",
	                     "refs/heads/a\x7f",
	                     "refs/heads/x@{u}",
	                     "refs/heads/a b",
	                     NULL};
	for (int i = 0; bad[i]; i++)
		assert_false(push_ref_valid(bad[i]));
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	memcpy(longname, "refs/heads/", 11);
	longname[sizeof(longname) - 1] = '\0';
	assert_false(push_ref_valid(longname));
}

static void test_glob(void **state)
{
	const char *const pats[] = {"main", "release/*", "hot?ix", "v[0-9]*", NULL};
	assert_string_equal(push_protected_match(pats, "main"), "main");
	assert_null(push_protected_match(pats, "mainline"));
	assert_null(push_protected_match(pats, "xmain"));
	assert_string_equal(push_protected_match(pats, "release/1"), "release/*");
	/* flags 0: '*' crosses '/' */
	assert_string_equal(push_protected_match(pats, "release/1/rc"), "release/*");
	assert_null(push_protected_match(pats, "release"));
	assert_string_equal(push_protected_match(pats, "hotfix"), "hot?ix");
	assert_string_equal(push_protected_match(pats, "v2-beta"), "v[0-9]*");
	assert_null(push_protected_match(pats, "vx"));
	assert_null(push_protected_match(NULL, "main"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_roundtrip),
	    cmocka_unit_test(test_list_request),
	    cmocka_unit_test(test_encode_refuses_bad_fields),
	    cmocka_unit_test(test_decode_hostile),
	    cmocka_unit_test(test_answer_roundtrip),
	    cmocka_unit_test(test_clean_text),
	    cmocka_unit_test(test_policy_task_branch),
	    cmocka_unit_test(test_policy_force),
	    cmocka_unit_test(test_policy_delete),
	    cmocka_unit_test(test_policy_other_branches),
	    cmocka_unit_test(test_policy_protected_task_branch),
	    cmocka_unit_test(test_policy_tags),
	    cmocka_unit_test(test_policy_bad_names),
	    cmocka_unit_test(test_ref_valid),
	    cmocka_unit_test(test_glob),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
