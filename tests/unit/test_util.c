#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"

static void test_fmt(void **state)
{
	char buf[64];
	sbx_fmt(buf, sizeof(buf), "a %s %d %u %x %c %% %ld %zu", "b", -12, 7u, 255u, 'z', -3L,
	        (size_t)99);
	assert_string_equal(buf, "a b -12 7 ff z % -3 99");
	char small[5];
	assert_int_equal(sbx_fmt(small, sizeof(small), "%s", "abcdefgh"), 4);
	assert_string_equal(small, "abcd");
}

static void test_fail_wrap(void **state)
{
	struct sbx_err err = {0};
	assert_int_equal(sbx_fail(&err, EACCES, "mount '%s'", "/workspace"), -EACCES);
	assert_int_equal(sbx_wrap(&err, "workspace"), -EACCES);
	assert_int_equal(sbx_wrap(&err, "task %s", "jwt-auth"), -EACCES);
	assert_string_equal(err.msg,
	                    "task jwt-auth: workspace: mount '/workspace': Permission denied");
	assert_int_equal(sbx_failx(&err, 0, "plain"), -EINVAL);
	assert_string_equal(err.msg, "plain");
}

static void test_wrap_truncates(void **state)
{
	struct sbx_err err = {0};
	char long_text[600];
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = 0;
	sbx_failx(&err, EIO, "%s", long_text);
	sbx_wrap(&err, "ctx");
	assert_int_equal(strlen(err.msg), SBX_ERR_MSG_MAX - 1);
	assert_memory_equal(err.msg, "ctx: xxx", 8);
}

static void test_size(void **state)
{
	struct sbx_err err = {0};
	uint64_t v;
	assert_int_equal(sbx_parse_size("512", "--memory", &v, &err), 0);
	assert_int_equal(v, 512);
	assert_int_equal(sbx_parse_size("64K", "--memory", &v, &err), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(sbx_parse_size("2G", "--memory", &v, &err), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(sbx_parse_size("1.5g", "--memory", &v, &err), 0);
	assert_int_equal(v, 3ULL << 29);
	assert_int_equal(sbx_parse_size("64MiB", "--memory", &v, &err), 0);
	assert_int_equal(v, 64ULL << 20);
	assert_int_equal(sbx_parse_size("2X", "--memory", &v, &err), -EINVAL);
	assert_string_equal(err.msg, "--memory: '2X' is not a size (use a number with K, M or G)");
	assert_int_equal(sbx_parse_size("-1", "--memory", &v, &err), -EINVAL);
	assert_int_equal(sbx_parse_size("", "--memory", &v, &err), -EINVAL);
}

static void test_duration(void **state)
{
	struct sbx_err err = {0};
	uint64_t v;
	assert_int_equal(sbx_parse_duration("90", "timeout", &v, &err), 0);
	assert_int_equal(v, 90);
	assert_int_equal(sbx_parse_duration("5m", "timeout", &v, &err), 0);
	assert_int_equal(v, 300);
	assert_int_equal(sbx_parse_duration("2h", "timeout", &v, &err), 0);
	assert_int_equal(v, 7200);
	assert_int_equal(sbx_parse_duration("2hours", "timeout", &v, &err), -EINVAL);
	assert_string_equal(err.msg, "timeout: '2hours' is not a duration (use e.g. 90s, 5m, 2h)");
}

/* A tree deeper than the open-file limit, with a folder of mode 0 and a
 * symlink to a canary outside: all gone, the canary untouched. */
static void test_rm_rf_deep(void **state)
{
	char base[] = "/tmp/trimo-unit-rm-XXXXXX";
	assert_non_null(mkdtemp(base));
	char canary[300];
	snprintf(canary, sizeof(canary), "%s/canary", base);
	assert_int_equal(mkdir(canary, 0755), 0);
	int fd = open(base, O_RDONLY | O_DIRECTORY);
	assert_int_equal(mkdirat(fd, "t", 0755), 0);
	int cur = openat(fd, "t", O_RDONLY | O_DIRECTORY);
	assert_int_equal(symlinkat(canary, cur, "link"), 0);
	for (int i = 0; i < 300; i++) {
		assert_int_equal(mkdirat(cur, "d", 0755), 0);
		int next = openat(cur, "d", O_RDONLY | O_DIRECTORY);
		close(cur);
		cur = next;
	}
	assert_int_equal(mkdirat(cur, "locked", 0), 0);
	close(cur);
	pid_t p = fork();
	if (p == 0) {
		struct rlimit l = {32, 32};
		setrlimit(RLIMIT_NOFILE, &l);
		struct sbx_err err = {0};
		_exit(sbx_rm_rf_at(fd, "t", &err) == 0 ? 0 : 1);
	}
	int st;
	waitpid(p, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(faccessat(fd, "t", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(faccessat(fd, "canary", F_OK, 0), 0);
	struct sbx_err err;
	assert_int_equal(sbx_rm_rf_at(AT_FDCWD, base, &err), 0);
	close(fd);
}

static void collect(void *data, const char *line)
{
	char *out = data;
	strcat(out, "[");
	strcat(out, line);
	strcat(out, "]");
}

static void test_take_lines(void **state)
{
	char buf[8], out[128] = "";
	size_t len = 0;
	memcpy(buf, "ab\ncd", 5);
	len = 5;
	sbx_take_lines(buf, &len, sizeof(buf), false, collect, out);
	assert_string_equal(out, "[ab]");
	assert_int_equal(len, 2); /* "cd" waits for its newline */
	memcpy(buf + len, "efghi", 5);
	len += 5; /* a full buffer (size - 1) goes out whole */
	sbx_take_lines(buf, &len, sizeof(buf), false, collect, out);
	assert_string_equal(out, "[ab][cdefghi]");
	assert_int_equal(len, 0);
	memcpy(buf, "tail", 4);
	len = 4;
	sbx_take_lines(buf, &len, sizeof(buf), true, collect, out);
	assert_string_equal(out, "[ab][cdefghi][tail]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fmt),
	    cmocka_unit_test(test_fail_wrap),
	    cmocka_unit_test(test_wrap_truncates),
	    cmocka_unit_test(test_size),
	    cmocka_unit_test(test_duration),
	    cmocka_unit_test(test_rm_rf_deep),
	    cmocka_unit_test(test_take_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
