/* The push socket server (orchestrator/git_pushd.c) with a fake helper:
 * a shell script that reads the connection on fd 3 and prints lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "orchestrator/git_pushd.h"

struct lines {
	char text[8][256];
	int n;
};

static void collect(void *data, const char *line)
{
	struct lines *l = data;
	if (l->n < 8)
		snprintf(l->text[l->n++], sizeof(l->text[0]), "%s", line);
}

struct fixture {
	char dir[64];
	char helper[128];
	char sock[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-pushd-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->helper, sizeof(f->helper), "%s/helper", f->dir);
	snprintf(f->sock, sizeof(f->sock), "%s/push.sock", f->dir);
	/* prints its arguments, what arrived on fd 3, a line without a
	 * newline; answers on fd 3; exits with 3 when asked */
	FILE *s = fopen(f->helper, "w");
	assert_non_null(s);
	fputs("#!/bin/sh\n"
	      "echo \"args: $*\"\n"
	      "read -r req <&3\n"
	      "echo \"request: $req\"\n"
	      "echo answer >&3\n"
	      "printf 'no newline'\n"
	      "[ \"$req\" = fail ] && exit 3\n"
	      "exit 0\n",
	      s);
	fclose(s);
	chmod(f->helper, 0755);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct sbx_err err;
	sbx_rm_rf_at(AT_FDCWD, f->dir, &err);
	free(f);
	return 0;
}

static int client(const char *path, const char *msg)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, msg, strlen(msg)), (ssize_t)strlen(msg));
	return fd;
}

/* Serve until the helper is done and reaped. */
static void serve(struct git_pushd *p)
{
	bool started = false;
	for (int i = 0; i < 500 && (!started || git_pushd_busy(p)); i++) {
		struct pollfd pf = {.fd = git_pushd_fd(p), .events = POLLIN};
		if (poll(&pf, 1, 20) > 0)
			git_pushd_handle(p);
		started |= git_pushd_busy(p);
	}
	assert_false(git_pushd_busy(p));
}

static void test_serve_one(void **state)
{
	struct fixture *f = *state;
	struct lines got = {0};
	const char *const prot[] = {"main", "release/*", NULL};
	struct git_push_conf c = {.helper = f->helper,
	                          .repo = "/r",
	                          .branch = "trimo/x",
	                          .protected_branches = prot,
	                          .push_mode = SBX_PUSH_AUTO,
	                          .log = collect,
	                          .data = &got};
	struct git_pushd *p = NULL;
	struct sbx_err err = {0};
	assert_int_equal(git_pushd_open(f->sock, &c, &p, &err), 0);
	struct stat st;
	assert_int_equal(stat(f->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 077, 0); /* the owner only */
	int fd = client(f->sock, "hello\n");
	serve(p);
	char buf[64] = "";
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	assert_string_equal(buf, "answer\n");
	close(fd);
	assert_int_equal(got.n, 3);
	assert_string_equal(got.text[0], "args: receive --fd 3 --repo /r --branch trimo/x "
	                                 "--push-mode auto --protected main --protected release/*");
	assert_string_equal(got.text[1], "request: hello");
	assert_string_equal(got.text[2], "no newline");
	/* a helper that fails is reported; the socket serves the next one */
	fd = client(f->sock, "fail\n");
	serve(p);
	close(fd);
	assert_int_equal(got.n, 7);
	assert_string_equal(got.text[6], "push helper failed (exit 3)");
	git_pushd_close(p, 5);
	assert_int_equal(stat(f->sock, &st), -1); /* removed */
}

static void test_long_path(void **state)
{
	/* deeper than sun_path allows: bound through /proc/self/fd */
	struct fixture *f = *state;
	char deep[512];
	snprintf(deep, sizeof(deep), "%s/%0100d/%0100d", f->dir, 1, 2);
	struct sbx_err err = {0};
	assert_int_equal(sbx_mkdir_p(deep, 0755, &err), 0);
	char sock[600];
	snprintf(sock, sizeof(sock), "%s/push.sock", deep);
	struct lines got = {0};
	struct git_push_conf c = {
	    .helper = f->helper, .repo = "/r", .branch = "b", .log = collect, .data = &got};
	struct git_pushd *p = NULL;
	assert_int_equal(git_pushd_open(sock, &c, &p, &err), 0);
	struct stat st;
	assert_int_equal(stat(sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	git_pushd_close(p, 0);
}

static void test_argv(void **state)
{
	const char *const prot[] = {"main", NULL};
	struct git_push_conf c = {.repo = "/r",
	                          .branch = "b",
	                          .base = "dev",
	                          .remote = "up",
	                          .protected_branches = prot,
	                          .push_tags = true,
	                          .push_mode = SBX_PUSH_ON_EXIT,
	                          .max_bytes = 1024,
	                          .max_objects = 7,
	                          .record = "/t/git.json"};
	char **argv = NULL;
	struct sbx_err err = {0};
	assert_int_equal(git_pushd_argv(&c, "/bin/h", &argv, &err), 0);
	const char *want[] = {
	    "/bin/h",      "receive",       "--fd",        "3",           "--repo",
	    "/r",          "--branch",      "b",           "--push-mode", "on-exit",
	    "--base",      "dev",           "--remote",    "up",          "--record",
	    "/t/git.json", "--push-tags",   "--protected", "main",        "--max-bytes",
	    "1024",        "--max-objects", "7",           NULL};
	for (size_t i = 0; want[i]; i++)
		assert_string_equal(argv[i], want[i]);
	assert_null(argv[sizeof(want) / sizeof(want[0]) - 1]);
	sbx_strv_free(argv);
}

static void test_missing_helper(void **state)
{
	struct fixture *f = *state;
	struct lines got = {0};
	char nothere[128];
	snprintf(nothere, sizeof(nothere), "%s/nothere", f->dir);
	struct git_push_conf c = {
	    .helper = nothere, .repo = "/r", .branch = "b", .log = collect, .data = &got};
	struct git_pushd *p = NULL;
	struct sbx_err err = {0};
	assert_int_equal(git_pushd_open(f->sock, &c, &p, &err), 0);
	int fd = client(f->sock, "x\n");
	for (int i = 0; i < 50 && got.n == 0; i++) {
		struct pollfd pf = {.fd = git_pushd_fd(p), .events = POLLIN};
		if (poll(&pf, 1, 20) > 0)
			git_pushd_handle(p);
	}
	close(fd);
	assert_true(got.n >= 1);
	assert_non_null(strstr(got.text[0], "cannot run"));
	git_pushd_close(p, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_serve_one, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_path, setup, teardown),
	    cmocka_unit_test(test_argv),
	    cmocka_unit_test_setup_teardown(test_missing_helper, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
