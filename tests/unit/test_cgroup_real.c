/* runtime/cgroup against the real kernel of this machine.  Not a unit test:
 * it needs root and creates real cgroups (below this process's own cgroup
 * of each controller on v1; trimo.slice on v2) and removes them.  It runs
 * only when asked:
 *
 *   sudo TRIMO_CGROUP_REAL=1 build/tests/test_cgroup_real
 *
 * and is skipped (with the reason) otherwise.  Every memory hog carries its
 * own RLIMIT_AS and every child an alarm(), so a cap that is silently not
 * applied fails the test instead of hurting the shared machine. */
/* test buffers are sized for the paths of this machine */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "runtime/cgroup.h"

#if defined(__SANITIZE_ADDRESS__)
/* ASan's shadow memory does not fit under the hogs' RLIMIT_AS */
static const char *why_skipped = "built with AddressSanitizer";
#else
static const char *why_skipped = NULL;
#endif

static bool enabled(void)
{
	const char *e = getenv("TRIMO_CGROUP_REAL");
	if (!why_skipped && !(e && !strcmp(e, "1") && geteuid() == 0))
		why_skipped = "set TRIMO_CGROUP_REAL=1 and run as root";
	return !why_skipped;
}

#define SKIP_UNLESS_ENABLED()                                                                      \
	do {                                                                                       \
		if (!enabled()) {                                                                  \
			print_message("skipped: %s\n", why_skipped);                               \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* Every cgroup a test made, so a failing test still removes it. */
static struct sbx_cgroup *live[4];
#define ELEMENTSOF_LIVE (sizeof(live) / sizeof(live[0]))

static void track(struct sbx_cgroup *cg, bool add)
{
	for (size_t i = 0; i < ELEMENTSOF_LIVE; i++)
		if (add ? !live[i] : live[i] == cg) {
			live[i] = add ? cg : NULL;
			return;
		}
}

static int remove_leftovers(void **state)
{
	for (size_t i = 0; i < ELEMENTSOF_LIVE; i++)
		if (live[i]) {
			struct sbx_err err = {0};
			if (cgroup_destroy(&live[i], &err) < 0)
				print_message("cleanup: %s\n", err.msg);
		}
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* fork a child that waits for one byte on a pipe (the GO) and then runs fn */
static pid_t fork_waiting(void (*fn)(void), int *ret_go)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(20);
		close(p[1]);
		char c;
		if (read(p[0], &c, 1) != 1)
			_exit(120);
		fn();
		_exit(0);
	}
	close(p[0]);
	*ret_go = p[1];
	return pid;
}

static void go(int fd)
{
	assert_int_equal(write(fd, "g", 1), 1);
	close(fd);
}

static void hog(void)
{
	/* 512M of address space at most: without the cgroup cap this ends in
	 * a failed malloc and exit 3, not in the OOM killer */
	struct rlimit rl = {512 << 20, 512 << 20};
	setrlimit(RLIMIT_AS, &rl);
	for (int i = 0; i < 400; i++) {
		char *p = malloc(1 << 20);
		if (!p)
			_exit(3);
		memset(p, i, 1 << 20);
	}
	_exit(4);
}

static struct sbx_cgroup *make(const char *name, struct sbx_cgroup_limits *l)
{
	struct sbx_cgroup_host host;
	cgroup_host_default(&host);
	struct sbx_err err = {0};
	struct sbx_cgroup *cg = NULL;
	int r = cgroup_create(&host, NULL, name, l, &cg, &err);
	if (r < 0)
		fail_msg("cgroup_create: %s", err.msg);
	print_message("version v%d, leaf %s\n", cgroup_version(cg), cgroup_path(cg));
	track(cg, true);
	return cg;
}

static void destroy_and_check_gone(struct sbx_cgroup **cg)
{
	char paths[4][PATH_MAX];
	size_t n = 0;
	struct sbx_cgroup_v1_mount m[4];
	if (cgroup_version(*cg) == SBX_CGROUP_V1) {
		size_t k = cgroup_v1_mounts(*cg, m, 4);
		for (; n < k; n++)
			snprintf(paths[n], sizeof(paths[n]), "%s", m[n].host_path);
	} else {
		snprintf(paths[n++], sizeof(paths[0]), "%s", cgroup_path(*cg));
	}
	struct sbx_err err = {0};
	track(*cg, false);
	if (cgroup_destroy(cg, &err) < 0)
		fail_msg("cgroup_destroy: %s", err.msg);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (stat(paths[i], &st) == 0)
			fail_msg("%s still exists", paths[i]);
	}
}

/* A hog over a 64M cap is OOM-killed, the fd says so promptly, the stats
 * show it; a live cap can be raised and lowered (v1 memsw ordering). */
static void test_real_memory_cap(void **state)
{
	SKIP_UNLESS_ENABLED();
	struct sbx_cgroup_limits l;
	cgroup_limits_init(&l);
	l.memory = 64 << 20;
	l.pids = 64;
	struct sbx_cgroup *cg = make("real-mem", &l);
	struct sbx_err err = {0};
	if (cgroup_warning(cg))
		print_message("warning: %s\n", cgroup_warning(cg));

	/* raise with swap (memsw first on v1), lower again (limit first) */
	if (cgroup_set_memory(cg, 128 << 20, true, 64 << 20, &err) < 0)
		fail_msg("raise: %s", err.msg);
	if (cgroup_set_memory(cg, 32 << 20, false, 0, &err) < 0)
		fail_msg("lower: %s", err.msg);
	if (cgroup_set_memory(cg, 64 << 20, false, 0, &err) < 0)
		fail_msg("back to 64M: %s", err.msg);

	int gofd;
	pid_t pid = fork_waiting(hog, &gofd);
	if (cgroup_attach(cg, pid, &err) < 0)
		fail_msg("attach: %s", err.msg);
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	const char *leaf = strrchr(cgroup_path(cg), '/') + 1;
	assert_non_null(strstr(buf, leaf));

	uint64_t t0 = now_ms();
	go(gofd);
	struct pollfd pfd = {.fd = cgroup_oom_fd(cg), .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 15000), 1);
	uint64_t t_fd = now_ms();
	uint64_t kills = 0;
	assert_int_equal(cgroup_oom_event(cg, &kills, &err), 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	uint64_t t_exit = now_ms();
	print_message("oom fd readable after %llu ms, child reaped after %llu ms; new kills %llu\n",
	              (unsigned long long)(t_fd - t0), (unsigned long long)(t_exit - t0),
	              (unsigned long long)kills);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		fail_msg("hog was not OOM-killed: status 0x%x", st);
	struct sbx_cgroup_stats s;
	assert_int_equal(cgroup_stats(cg, &s, &err), 0);
	char a[32], b[32];
	print_message("peak %s (%s), oom_kills %llu, cpu %llu us, pids_peak %llu\n",
	              cgroup_format_size(s.memory_peak, a, sizeof(a)),
	              s.memory_peak_sampled ? "sampled" : "kernel", (unsigned long long)s.oom_kills,
	              (unsigned long long)s.cpu_usec, (unsigned long long)s.pids_peak);
	(void)b;
	assert_true(s.oom_kills >= 1);
	assert_true(s.memory_peak <= (64 << 20));
	assert_true(s.memory_peak > (48 << 20));
	destroy_and_check_gone(&cg);
}

static void forker(void)
{
	int made = 0;
	for (int i = 0; i < 100; i++) {
		pid_t p = fork();
		if (p == 0) {
			alarm(20);
			for (;;)
				pause();
		}
		if (p > 0)
			made++;
	}
	/* report how many forks worked through the exit code */
	_exit(made);
}

/* pids.max holds a fork loop; cgroup_kill takes every process in the leaf,
 * including the orphans, and nothing else. */
static void test_real_pids_and_kill(void **state)
{
	SKIP_UNLESS_ENABLED();
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	struct sbx_cgroup_limits l;
	cgroup_limits_init(&l);
	l.memory = 256 << 20;
	l.pids = 16;
	struct sbx_cgroup *cg = make("real-pids", &l);
	struct sbx_err err = {0};
	int gofd;
	pid_t outsider = fork();
	if (outsider == 0) {
		alarm(20);
		for (;;)
			pause();
	}
	pid_t pid = fork_waiting(forker, &gofd);
	assert_int_equal(cgroup_attach(cg, pid, &err), 0);
	go(gofd);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	print_message("forks that worked under pids.max=16: %d\n", WEXITSTATUS(st));
	assert_true(WEXITSTATUS(st) <= 15);
	assert_true(WEXITSTATUS(st) >= 10);
	struct sbx_cgroup_stats s;
	assert_int_equal(cgroup_stats(cg, &s, &err), 0);
	print_message("pids_current %llu, pids_peak %llu, refused %llu\n",
	              (unsigned long long)s.pids_current, (unsigned long long)s.pids_peak,
	              (unsigned long long)s.pids_refused);
	assert_true(s.pids_refused > 0);
	assert_int_equal(s.pids_current, (uint64_t)WEXITSTATUS(st));

	uint64_t t0 = now_ms();
	if (cgroup_kill(cg, &err) < 0)
		fail_msg("kill: %s", err.msg);
	print_message("cgroup_kill took %llu ms\n", (unsigned long long)(now_ms() - t0));
	/* the orphans came to us (subreaper): all SIGKILLed */
	int reaped = 0;
	pid_t w;
	while ((w = waitpid(-1, &st, WNOHANG)) > 0 || (w == 0 && reaped < 10)) {
		if (w == 0) {
			usleep(10000);
			continue;
		}
		assert_int_not_equal(w, outsider);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		reaped++;
	}
	print_message("reaped %d killed orphans\n", reaped);
	assert_true(reaped >= 10);
	assert_int_equal(waitpid(outsider, &st, WNOHANG), 0); /* still alive */
	kill(outsider, SIGKILL);
	waitpid(outsider, &st, 0);
	destroy_and_check_gone(&cg);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
}

static void spinner(void)
{
	uint64_t end = now_ms() + 1000;
	while (now_ms() < end)
		;
}

/* --cpus 0.2: one second of spinning costs well under 0.3 s of CPU and is
 * throttled (no lower bound: the machine is shared). */
static void test_real_cpu(void **state)
{
	SKIP_UNLESS_ENABLED();
	struct sbx_cgroup_limits l;
	cgroup_limits_init(&l);
	l.memory = 64 << 20;
	l.cpu_quota_us = 20000;
	struct sbx_cgroup *cg = make("real-cpu", &l);
	struct sbx_err err = {0};
	int gofd;
	pid_t pid = fork_waiting(spinner, &gofd);
	assert_int_equal(cgroup_attach(cg, pid, &err), 0);
	go(gofd);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	struct sbx_cgroup_stats s;
	assert_int_equal(cgroup_stats(cg, &s, &err), 0);
	print_message("cpu %llu us in 1 s wall, nr_throttled %llu, throttled %llu us\n",
	              (unsigned long long)s.cpu_usec, (unsigned long long)s.nr_throttled,
	              (unsigned long long)s.throttled_usec);
	assert_true(s.cpu_usec != SBX_STAT_UNKNOWN);
	assert_true(s.cpu_usec < 300000);
	assert_true(s.nr_throttled > 0);
	destroy_and_check_gone(&cg);
}

static void agent_with_hog(void)
{
	pid_t h = fork();
	if (h == 0)
		hog();
	int st;
	waitpid(h, &st, 0);
	/* the agent lives on and says what happened to its child */
	_exit(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? 0 : 1);
}

static int run_agent(bool group, uint64_t *ret_kills)
{
	struct sbx_cgroup_limits l;
	cgroup_limits_init(&l);
	l.memory = 64 << 20;
	l.oom_group = group;
	struct sbx_cgroup *cg = make(group ? "real-group" : "real-nogroup", &l);
	struct sbx_err err = {0};
	int gofd;
	pid_t pid = fork_waiting(agent_with_hog, &gofd);
	assert_int_equal(cgroup_attach(cg, pid, &err), 0);
	go(gofd);
	struct pollfd pfd = {.fd = cgroup_oom_fd(cg), .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 15000), 1);
	if (cgroup_oom_event(cg, ret_kills, &err) < 0)
		fail_msg("oom event: %s", err.msg);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	destroy_and_check_gone(&cg);
	return st;
}

/* Default: the kernel kills the hog only, the agent survives.  --oom-kill
 * group: the whole sandbox goes (v1: emulated by cgroup_oom_event). */
static void test_real_oom_group(void **state)
{
	SKIP_UNLESS_ENABLED();
	uint64_t kills = 0;
	int st = run_agent(false, &kills);
	print_message("default: agent status 0x%x, kills %llu\n", st, (unsigned long long)kills);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	st = run_agent(true, &kills);
	print_message("group: agent status 0x%x, kills %llu\n", st, (unsigned long long)kills);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* An empty trimo-* leaf with no live creator is removed by the next create;
 * a non-trimo one beside it is not. */
static void test_real_stale(void **state)
{
	SKIP_UNLESS_ENABLED();
	struct sbx_cgroup_limits l;
	cgroup_limits_init(&l);
	l.memory = 64 << 20;
	struct sbx_cgroup *cg = make("real-stale", &l);
	char parent[PATH_MAX], stale[PATH_MAX + 32], other[PATH_MAX + 32];
	snprintf(parent, sizeof(parent), "%s", cgroup_path(cg));
	*strrchr(parent, '/') = '\0';
	destroy_and_check_gone(&cg);
	snprintf(stale, sizeof(stale), "%s/trimo-crashed-00000000", parent);
	snprintf(other, sizeof(other), "%s/not-trimo-%d", parent, (int)getpid());
	assert_int_equal(mkdir(stale, 0755), 0);
	assert_int_equal(mkdir(other, 0755), 0);
	cg = make("real-stale", &l);
	struct stat st;
	assert_int_equal(stat(stale, &st), -1);
	assert_int_equal(stat(other, &st), 0);
	rmdir(other);
	destroy_and_check_gone(&cg);
}

#define TEST_UID 54321

static const char *const deleg_ctrls[] = {"memory", "cpu", "cpuacct", "pids"};

/* Our own cgroup of a v1 controller on the host, from /proc/self/cgroup
 * and the usual mount points (a test helper, not the library's logic). */
static void own_v1(const char *ctrl, char *buf, size_t size)
{
	FILE *f = fopen("/proc/self/cgroup", "r");
	char line[1024];
	buf[0] = 0;
	while (f && fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = 0;
		line[strcspn(line, "\n")] = 0;
		c2[1 + strcspn(c2 + 1, "\n")] = 0;
		if (!strcmp(c1 + 1, ctrl))
			snprintf(buf, size, "/sys/fs/cgroup/%s%s", ctrl,
			         strcmp(c2 + 1, "/") ? c2 + 1 : "");
	}
	if (f)
		fclose(f);
}

/* In a child: join the delegated cgroups (as root), become uid, create a
 * sandbox cgroup with the library's defaults and OOM a hog in it. */
static int rootless_child(bool delegated, uid_t uid)
{
	alarm(30);
	char dir[PATH_MAX + 64], pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (delegated) {
		for (size_t i = 0; i < 4; i++) {
			char own[PATH_MAX];
			own_v1(deleg_ctrls[i], own, sizeof(own));
			snprintf(dir, sizeof(dir), "%s/trimo.deleg-%u/cgroup.procs", own,
			         (unsigned)uid);
			FILE *f = fopen(dir, "w");
			if (!f || fputs(pid, f) < 0 || fclose(f) != 0)
				return 10;
		}
	}
	if (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
		return 11;
	struct sbx_cgroup_limits l;
	cgroup_limits_init(&l);
	l.memory = 64 << 20;
	struct sbx_cgroup_host host;
	cgroup_host_default(&host);
	struct sbx_err err = {0};
	struct sbx_cgroup *cg = NULL;
	if (cgroup_create(&host, NULL, "rootless", &l, &cg, &err) < 0) {
		fprintf(stderr, "uid %u: %s\n", (unsigned)uid, err.msg);
		return 20;
	}
	fprintf(stderr, "uid %u: leaf %s\n", (unsigned)uid, cgroup_path(cg));
	int p[2];
	if (pipe(p) < 0)
		return 12;
	pid_t h = fork();
	if (h == 0) {
		char c;
		close(p[1]);
		if (read(p[0], &c, 1) != 1) /* GO: we are in the leaf */
			_exit(120);
		hog();
	}
	close(p[0]);
	if (cgroup_attach(cg, h, &err) < 0) {
		fprintf(stderr, "attach: %s\n", err.msg);
		kill(h, SIGKILL);
		return 21;
	}
	if (write(p[1], "g", 1) != 1)
		return 13;
	close(p[1]);
	int st;
	waitpid(h, &st, 0);
	struct sbx_cgroup_stats s;
	cgroup_stats(cg, &s, &err);
	fprintf(stderr, "uid %u: hog status 0x%x, oom_kills %llu\n", (unsigned)uid, st,
	        (unsigned long long)s.oom_kills);
	char leaf[PATH_MAX];
	snprintf(leaf, sizeof(leaf), "%s", cgroup_path(cg));
	if (cgroup_destroy(&cg, &err) < 0) {
		fprintf(stderr, "destroy: %s\n", err.msg);
		return 22;
	}
	if (access(leaf, F_OK) == 0)
		return 23;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && s.oom_kills >= 1 ? 0 : 24;
}

/* v1 rootless: a subtree chowned to the user is used; without one the
 * create fails with the message.  The delegated parents are made by root
 * below our own cgroups and removed afterwards. */
static void test_real_rootless_v1(void **state)
{
	SKIP_UNLESS_ENABLED();
	struct sbx_cgroup_limits l;
	cgroup_limits_init(&l);
	struct sbx_cgroup *probe = make("real-probe", &l);
	bool v1 = cgroup_version(probe) == SBX_CGROUP_V1;
	destroy_and_check_gone(&probe);
	if (!v1) {
		print_message("skipped: not a v1 host\n");
		skip();
	}
	char dirs[4][PATH_MAX + 64];
	for (size_t i = 0; i < 4; i++) {
		char own[PATH_MAX];
		own_v1(deleg_ctrls[i], own, sizeof(own));
		snprintf(dirs[i], sizeof(dirs[i]), "%s/trimo.deleg-%u", own, TEST_UID);
		assert_int_equal(mkdir(dirs[i], 0755), 0);
		char p[PATH_MAX + 96];
		assert_int_equal(chown(dirs[i], TEST_UID, TEST_UID), 0);
		snprintf(p, sizeof(p), "%s/cgroup.procs", dirs[i]);
		assert_int_equal(chown(p, TEST_UID, TEST_UID), 0);
	}
	int rc[2];
	for (int k = 0; k < 2; k++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(rootless_child(k == 0, k == 0 ? TEST_UID : TEST_UID + 1));
		int st;
		waitpid(pid, &st, 0);
		rc[k] = WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
	}
	for (size_t i = 0; i < 4; i++)
		if (rmdir(dirs[i]) < 0)
			print_message("rmdir %s: %s\n", dirs[i], strerror(errno));
	print_message("delegated child: %d, undelegated child: %d\n", rc[0], rc[1]);
	assert_int_equal(rc[0], 0);
	assert_int_equal(rc[1], 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_real_memory_cap, remove_leftovers),
	    cmocka_unit_test_teardown(test_real_pids_and_kill, remove_leftovers),
	    cmocka_unit_test_teardown(test_real_cpu, remove_leftovers),
	    cmocka_unit_test_teardown(test_real_oom_group, remove_leftovers),
	    cmocka_unit_test_teardown(test_real_stale, remove_leftovers),
	    cmocka_unit_test_teardown(test_real_rootless_v1, remove_leftovers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
