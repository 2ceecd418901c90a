/* Unit tests of the sandbox module's pure parts: the sync codec, id-map
 * formatting, capability sets, path checks, in-root resolution, and the
 * seccomp filter itself (loaded in a forked child: seccomp with
 * no_new_privs needs no privilege). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "sandbox/caps.h"
#include "sandbox/idmap.h"
#include "sandbox/mount.h"
#include "sandbox/seccomp.h"
#include "sandbox/sync.h"

static void test_sync_roundtrip(void **state)
{
	int fds[2];
	struct sbx_err err = {0};
	assert_int_equal(sync_pair(fds, &err), 0);
	assert_int_equal(sync_send(fds[0], SBX_SYNC_GO), 0);
	assert_int_equal(sync_expect(fds[1], SBX_SYNC_GO, &err), 0);
	sbx_fail(&err, EACCES, "mount '%s'", "/x");
	assert_int_equal(sync_send_error(fds[1], &err), 0);
	struct sbx_sync_msg m;
	assert_int_equal(sync_recv(fds[0], 1000, &m), 1);
	assert_int_equal(m.type, SBX_SYNC_ERROR);
	assert_int_equal(m.errnum, EACCES);
	assert_string_equal(m.msg, "mount '/x': Permission denied");
	/* nothing pending: a timeout */
	assert_int_equal(sync_recv(fds[0], 10, &m), -ETIMEDOUT);
	/* a datagram of the wrong size is a protocol error */
	assert_int_equal(send(fds[1], "xx", 2, 0), 2);
	assert_int_equal(sync_recv(fds[0], 1000, &m), -EPROTO);
	/* an unknown type too */
	struct sbx_sync_msg bad;
	memset(&bad, 0, sizeof(bad));
	bad.type = 99;
	assert_int_equal(send(fds[1], &bad, sizeof(bad), 0), (ssize_t)sizeof(bad));
	assert_int_equal(sync_recv(fds[0], 1000, &m), -EPROTO);
	/* the wrong message where another was expected */
	assert_int_equal(sync_send(fds[0], SBX_SYNC_START), 0);
	assert_int_equal(sync_expect(fds[1], SBX_SYNC_GO, &err), -EPROTO);
	assert_string_equal(err.msg, "waiting for GO: got START");
	/* FUSE carries an fd; a receiver that did not ask for one has it closed */
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(sync_send_fd(fds[1], SBX_SYNC_FUSE, pipefd[1]), 0);
	int got = -1;
	assert_int_equal(sync_recv_fd(fds[0], 1000, &m, &got), 1);
	assert_int_equal(m.type, SBX_SYNC_FUSE);
	assert_true(got >= 0 && got != pipefd[1]);
	assert_int_equal(fcntl(got, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_int_equal(write(got, "k", 1), 1);
	char c;
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	close(got);
	assert_int_equal(sync_send_fd(fds[1], SBX_SYNC_FUSE, pipefd[1]), 0);
	assert_int_equal(sync_recv(fds[0], 1000, &m), 1);
	close(pipefd[1]);
	/* every copy of the write end is closed: EOF */
	assert_int_equal(read(pipefd[0], &c, 1), 0);
	close(pipefd[0]);
	assert_int_equal(sync_send(fds[1], SBX_SYNC_READY), 0);
	assert_int_equal(sync_recv_fd(fds[0], 1000, &m, &got), 1);
	assert_int_equal(got, -1);
	/* EOF: the peer is gone */
	close(fds[0]);
	assert_int_equal(sync_expect(fds[1], SBX_SYNC_START, &err), -EPIPE);
	assert_string_equal(err.msg, "waiting for START: the runner is gone");
	close(fds[1]);
}

/* A child that fails before it reads GO closes with GO unread: the
 * runner still gets the ERROR it sent first, not a bare EOF. */
static void test_sync_error_before_go(void **state)
{
	int fds[2];
	struct sbx_err err = {0};
	assert_int_equal(sync_pair(fds, &err), 0);
	sbx_fail(&err, ENOTCONN, "mount point '/proc'");
	assert_int_equal(sync_send_error(fds[1], &err), 0);
	assert_int_equal(sync_send(fds[0], SBX_SYNC_GO), 0);
	close(fds[1]);
	struct sbx_sync_msg m;
	assert_int_equal(sync_recv(fds[0], 1000, &m), 1);
	assert_int_equal(m.type, SBX_SYNC_ERROR);
	assert_string_equal(m.msg, "mount point '/proc': Transport endpoint is not connected");
	assert_int_equal(sync_recv(fds[0], 1000, &m), 0);
	close(fds[0]);
}

static void test_idmap_format(void **state)
{
	char buf[64];
	assert_int_equal(idmap_format(buf, sizeof(buf), 0, 1000, 1), 9);
	assert_string_equal(buf, "0 1000 1\n");
	assert_int_equal(idmap_format(buf, 4, 0, 1000, 1), -ENOSPC);
}

static void test_caps(void **state)
{
	struct sbx_err err = {0};
	uint64_t m;
	/* podman's 11; as root without SETFCAP (bit 31) */
	uint64_t def = geteuid() == 0 ? 0x000405fbULL : 0x800405fbULL;
	assert_int_equal(caps_default(), def);
	assert_int_equal(caps_compute(caps_default(), NULL, NULL, &m, &err), 0);
	assert_int_equal(m, def);
	char *add[] = {"NET_ADMIN", "cap_sys_ptrace", NULL};
	char *drop[] = {"CHOWN", NULL};
	assert_int_equal(caps_compute(caps_default(), add, drop, &m, &err), 0);
	assert_int_equal(m, (def | (1ULL << 12) | (1ULL << 19)) & ~1ULL);
	char *all[] = {"ALL", NULL};
	assert_int_equal(caps_compute(caps_default(), NULL, all, &m, &err), 0);
	assert_int_equal(m, 0);
	char *admin[] = {"SYS_ADMIN", NULL};
	assert_int_equal(caps_compute(caps_default(), admin, all, &m, &err), 0);
	assert_int_equal(m, 1ULL << 21);
	assert_int_equal(caps_compute(caps_default(), all, NULL, &m, &err), 0);
	assert_int_equal(m, (1ULL << (caps_last_cap() + 1)) - 1);
	char *both[] = {"KILL", NULL};
	assert_int_equal(caps_compute(caps_default(), both, both, &m, &err), -EINVAL);
	assert_string_equal(err.msg, "capability KILL is both added and dropped");
	char *bad[] = {"NOPE", NULL};
	assert_int_equal(caps_compute(caps_default(), bad, NULL, &m, &err), -EINVAL);
	assert_string_equal(err.msg, "--cap-add: unknown capability 'NOPE'");
	char buf[128];
	caps_format((1ULL << 0) | (1ULL << 21), buf, sizeof(buf));
	assert_string_equal(buf, "CHOWN,SYS_ADMIN");
}

static void test_mount_path_ok(void **state)
{
	assert_true(mount_path_ok("/workspace"));
	assert_true(mount_path_ok("/a/b.c/..d"));
	assert_false(mount_path_ok("/"));
	assert_false(mount_path_ok("relative"));
	assert_false(mount_path_ok("/a/../b"));
	assert_false(mount_path_ok("/a/./b"));
	assert_false(mount_path_ok("/a//b"));
	assert_false(mount_path_ok("/.."));
	assert_false(mount_path_ok(NULL));
}

static void test_resolve_stays_in_root(void **state)
{
	char tmpl[] = "/tmp/trimo-unit-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	int root = open(tmpl, O_PATH | O_DIRECTORY);
	assert_true(root >= 0);
	assert_int_equal(mkdirat(root, "inside", 0755), 0);
	assert_int_equal(symlinkat("../../../../../../etc", root, "up"), 0);
	assert_int_equal(symlinkat("/etc", root, "abs"), 0);
	assert_int_equal(symlinkat("/inside", root, "ok"), 0);
	/* the host's /etc is never reached: inside the root there is none */
	assert_int_equal(mount_resolve(root, "/up/passwd", 0), -ENOENT);
	assert_int_equal(mount_resolve(root, "/abs/passwd", 0), -ENOENT);
	assert_int_equal(mount_resolve(root, "/../../etc/passwd", 0), -ENOENT);
	int fd = mount_resolve(root, "/ok", O_DIRECTORY);
	assert_true(fd >= 0);
	struct stat a, b;
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(fstatat(root, "inside", &b, 0), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	close(fd);
	close(root);
	struct sbx_err err;
	sbx_rm_rf_at(AT_FDCWD, tmpl, &err);
}

/* Load the filter in a child and report one syscall's errno. */
static int errno_under_filter(const struct sbx_seccomp *s, int which)
{
	pid_t p = fork();
	if (p == 0) {
		struct sbx_err err;
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || seccomp_filter_child(s, &err) < 0)
			_exit(255);
		long r = -1;
		errno = 0;
		char c = 'x';
		switch (which) {
		case 0:
			r = mount("none", "/nonexistent", "tmpfs", 0, NULL);
			break;
		case 1:
			r = syscall(SYS_ioctl, 0, (unsigned long)TIOCSTI | 0x100000000UL, &c);
			break;
		case 2:
			r = syscall(SYS_unshare, CLONE_NEWUSER);
			break;
		case 3:
			r = syscall(SYS_clone3, NULL, 0);
			break;
		case 4:
			r = syscall(500);
			break;
		case 5:
			r = syscall(SYS_getpid);
			break;
		case 6:
			r = syscall(SYS_unshare, CLONE_FILES);
			break;
		case 7:
			r = syscall(SYS_ioctl, -1, TIOCGWINSZ, NULL);
			break;
		}
		_exit(r < 0 ? errno : 0);
	}
	int st;
	waitpid(p, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_seccomp_default_filter(void **state)
{
	struct sbx_spec spec;
	memset(&spec, 0, sizeof(spec));
	struct sbx_seccomp s;
	struct sbx_err err = {0};
	assert_int_equal(seccomp_filter_prepare(&spec, &s, &err), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(errno_under_filter(&s, 0), EPERM);  /* mount */
	assert_int_equal(errno_under_filter(&s, 1), EPERM);  /* TIOCSTI with high bits */
	assert_int_equal(errno_under_filter(&s, 2), EPERM);  /* unshare(NEWUSER) */
	assert_int_equal(errno_under_filter(&s, 3), ENOSYS); /* clone3 */
	assert_int_equal(errno_under_filter(&s, 4), ENOSYS); /* unknown */
	assert_int_equal(errno_under_filter(&s, 5), 0);      /* getpid */
	assert_int_equal(errno_under_filter(&s, 6), 0);      /* unshare(FILES) */
	assert_int_equal(errno_under_filter(&s, 7), EBADF);  /* other ioctls pass */
	seccomp_filter_free(&s);

	spec.nested = true;
	assert_int_equal(seccomp_filter_prepare(&spec, &s, &err), 0);
	assert_int_equal(errno_under_filter(&s, 2), 0); /* unshare(NEWUSER) reaches the kernel */
	assert_int_equal(errno_under_filter(&s, 1), EPERM);
	seccomp_filter_free(&s);

	spec.nested = false;
	spec.seccomp = SBX_SECCOMP_UNCONFINED;
	assert_int_equal(seccomp_filter_prepare(&spec, &s, &err), 0);
	assert_int_equal(s.n, 0);
}

/* The programs compiled in at build time are what libseccomp builds now. */
static void test_seccomp_builtin_matches_libseccomp(void **state)
{
	struct sbx_err err = {0};
	for (int nested = 0; nested < 2; nested++) {
		struct sbx_spec spec;
		memset(&spec, 0, sizeof(spec));
		spec.nested = nested;
		struct sbx_seccomp built, fresh;
		assert_int_equal(seccomp_filter_prepare(&spec, &built, &err), 0);
		assert_int_equal(seccomp_build_policy(nested, &fresh, &err), 0);
		assert_int_equal(built.n, fresh.n);
		for (int i = 0; i < built.n; i++) {
			assert_int_equal(built.progs[i].len, fresh.progs[i].len);
			assert_memory_equal(built.progs[i].filter, fresh.progs[i].filter,
			                    built.progs[i].len * sizeof(struct sock_filter));
		}
		seccomp_filter_free(&built);
		seccomp_filter_free(&fresh);
	}
}

static void test_seccomp_profile_errors(void **state)
{
	char path[] = "/tmp/trimo-unit-profile-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *bad = "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
	                  "[\"mkdir\"], \"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 9, "
	                  "\"value\": 0, \"op\": \"SCMP_CMP_EQ\"}]}]}";
	assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
	close(fd);
	struct sbx_spec spec;
	memset(&spec, 0, sizeof(spec));
	spec.seccomp = SBX_SECCOMP_FILE;
	spec.seccomp_file = path;
	struct sbx_seccomp s;
	struct sbx_err err = {0};
	assert_int_equal(seccomp_filter_prepare(&spec, &s, &err), -EINVAL);
	char want[256];
	snprintf(want, sizeof(want), "%s: syscalls[0]: args[0] needs index (0-5), value and op",
	         path);
	assert_string_equal(err.msg, want);
	unlink(path);
	spec.seccomp_file = "/nonexistent/profile.json";
	assert_int_equal(seccomp_filter_prepare(&spec, &s, &err), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sync_roundtrip),
	    cmocka_unit_test(test_sync_error_before_go),
	    cmocka_unit_test(test_idmap_format),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_mount_path_ok),
	    cmocka_unit_test(test_resolve_stays_in_root),
	    cmocka_unit_test(test_seccomp_default_filter),
	    cmocka_unit_test(test_seccomp_builtin_matches_libseccomp),
	    cmocka_unit_test(test_seccomp_profile_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
