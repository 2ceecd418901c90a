#include "sandbox/child.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/caps.h"
#include "sandbox/net.h"
#include "sandbox/sync.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static char *title_area;
static size_t title_len;

void child_set_title_area(char *start, size_t len)
{
	title_area = start;
	title_len = len;
}

static void set_title(void)
{
	static const char title[] = "trimo-init";
	if (!title_area || title_len < sizeof(title))
		return;
	memset(title_area, 0, title_len);
	memcpy(title_area, title, sizeof(title));
	prctl(PR_SET_NAME, "trimo-init", 0, 0, 0);
}

/* Signals the init forwards to the command (and SIGCHLD it reaps). */
static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1, SIGUSR2};

_Noreturn static void fail_exit(int sync_fd, struct sbx_err *err, int code)
{
	sync_send_error(sync_fd, err);
	_exit(code);
}

/* Close every fd but 0, 1, 2 and the ones in keep[] (ascending). */
static void close_other_fds(const int *keep, size_t n)
{
	unsigned from = 3;
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < 3 || (unsigned)keep[i] < from)
			continue;
		if ((unsigned)keep[i] > from)
			syscall(SYS_close_range, from, (unsigned)keep[i] - 1, 0);
		from = (unsigned)keep[i] + 1;
	}
	syscall(SYS_close_range, from, ~0U, 0);
}

static const char *env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; envp && envp[i]; i++)
		if (!strncmp(envp[i], name, n) && envp[i][n] == '=')
			return envp[i] + n + 1;
	return NULL;
}

/* execvpe() with the sandbox's own PATH (glibc's reads the runner's). */
static int exec_search(char *const *argv, char *const *envp, struct sbx_err *err)
{
	const char *cmd = argv[0];
	if (!cmd || !*cmd)
		return sbx_failx(err, ENOENT, "exec: empty command");
	if (strchr(cmd, '/')) {
		execve(cmd, argv, envp);
		return sbx_fail(err, errno, "exec '%s'", cmd);
	}
	const char *path = env_get(envp, "PATH");
	if (!path)
		path = DEFAULT_PATH;
	int saw_eacces = 0;
	char buf[PATH_MAX];
	for (const char *p = path;; p++) {
		const char *e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0)
			sbx_fmt(buf, sizeof(buf), "%s", cmd);
		else if (n + 1 + strlen(cmd) < sizeof(buf)) {
			memcpy(buf, p, n);
			sbx_fmt(buf + n, sizeof(buf) - n, "/%s", cmd);
		} else
			buf[0] = '\0';
		if (buf[0]) {
			execve(buf, argv, envp);
			if (errno == EACCES)
				saw_eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE &&
			         errno != ENODEV && errno != ETIMEDOUT)
				return sbx_fail(err, errno, "exec '%s'", buf);
		}
		if (!e)
			break;
		p = e;
	}
	if (saw_eacces)
		return sbx_fail(err, EACCES, "exec '%s'", cmd);
	return sbx_failx(err, ENOENT, "exec '%s': not found in PATH (%s)", cmd, path);
}

/* The command, forked by init: a new session (the caller's terminal, if
 * any, never becomes its controlling terminal), default signals, rlimits,
 * the working directory. */
static int prepare_command(const struct sbx_child_ctx *c, struct sbx_err *err)
{
	const struct sbx_spec *spec = c->spec;
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &dfl, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setsid() < 0)
		return sbx_fail(err, errno, "setsid");
	if (c->tty_fd >= 0) {
		if (ioctl(c->tty_fd, TIOCSCTTY, 0) < 0)
			return sbx_fail(err, errno, "set the controlling terminal");
		for (int fd = 0; fd < 3; fd++)
			if (dup2(c->tty_fd, fd) < 0)
				return sbx_fail(err, errno, "dup2 the terminal");
		if (c->tty_fd > 2)
			close(c->tty_fd);
	}
	for (size_t i = 0; i < spec->n_rlimits; i++)
		if (setrlimit(spec->rlimits[i].resource, &spec->rlimits[i].lim) < 0)
			return sbx_fail(err, errno, "setrlimit %d", spec->rlimits[i].resource);
	const char *wd = spec->workdir ? spec->workdir : "/";
	if (chdir(wd) < 0)
		return sbx_fail(err, errno, "workdir '%s'", wd);
	return 0;
}

/* Exec or report: 127 not found, 126 not executable (as shells do). */
_Noreturn static void exec_command(const struct sbx_child_ctx *c)
{
	struct sbx_err err = {0};
	if (prepare_command(c, &err) < 0)
		fail_exit(c->sync_fd, &err, 125);
	exec_search(c->spec->argv, c->spec->envp, &err);
	fail_exit(c->sync_fd, &err, err.errnum == ENOENT ? 127 : 126);
}

/* Init's own setup: signals it handles through a signalfd, then seccomp
 * and non-dumpable before the command exists, so nothing inside can
 * ptrace an unfiltered process. */
static int init_prepare(const struct sbx_child_ctx *c, int *ret_sfd, struct sbx_err *err)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&set, forwarded[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return sbx_fail(err, errno, "init: block signals");
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0)
		return sbx_fail(err, errno, "init: signalfd");
	*ret_sfd = sfd;
	int r = seccomp_filter_child(c->seccomp, err);
	if (r < 0)
		return r;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return sbx_fail(err, errno, "init: PR_SET_DUMPABLE");
	return 0;
}

/* Forward signals to the command and reap every orphan until the command
 * itself exits; returns its wait status. */
static int init_loop(int sfd, pid_t cmd)
{
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t n = read(sfd, &si, sizeof(si));
		if (n != (ssize_t)sizeof(si)) {
			if (n < 0 && errno == EINTR)
				continue;
			_exit(125);
		}
		if (si.ssi_signo != SIGCHLD) {
			kill(cmd, (int)si.ssi_signo);
			continue;
		}
		int st, status = -1;
		pid_t p;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0)
			if (p == cmd)
				status = st;
		if (status != -1)
			return status;
	}
}

/* pid 1 of the sandbox. */
_Noreturn static void init_run(const struct sbx_child_ctx *c)
{
	struct sbx_err err = {0};
	int sfd = -1;
	if (init_prepare(c, &sfd, &err) < 0)
		fail_exit(c->sync_fd, &err, 125);
	pid_t cmd = fork();
	if (cmd < 0) {
		sbx_fail(&err, errno, "init: fork");
		fail_exit(c->sync_fd, &err, 125);
	}
	if (cmd == 0) {
		close(sfd);
		exec_command(c);
	}
	/* From here the command's copy of the socket is the last one: its
	 * close at execve is the runner's EOF. */
	close(c->sync_fd);
	set_title(); /* the command has its own copy of argv by now */
	if (c->tty_fd >= 0)
		close(c->tty_fd);
	int status = init_loop(sfd, cmd);
	/* Our exit ends the pid namespace: the kernel kills what is left. */
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

static int write_sysctl(const char *path, long value, struct sbx_err *err)
{
	char buf[32];
	size_t n = sbx_fmt(buf, sizeof(buf), "%ld", value);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : sbx_fail(err, errno, "open %s", path);
	ssize_t w = write(fd, buf, n);
	int e = errno;
	close(fd);
	return w == (ssize_t)n ? 0 : sbx_fail(err, w < 0 ? e : EIO, "write %s", path);
}

/* User namespace ucounts are charged up to the host user as well: without
 * a smaller limit of its own, one sandbox could take every inotify
 * instance of the host user (and of its other sandboxes).  /proc/sys/user
 * is per user namespace: these writes set the sandbox's own limits. */
static int write_ns_limits(const struct sbx_child_ctx *c, struct sbx_err *err)
{
	int r = 0;
	if (c->inotify_instances > 0)
		r = write_sysctl("/proc/sys/user/max_inotify_instances", c->inotify_instances, err);
	if (r >= 0 && c->inotify_watches > 0)
		r = write_sysctl("/proc/sys/user/max_inotify_watches", c->inotify_watches, err);
	return r;
}

/* GO: the runner has put us into our cgroup: root our cgroup namespace
 * there. */
static int join_cgroup_ns(const struct sbx_child_ctx *c, struct sbx_err *err)
{
	if (sync_expect(c->sync_fd, SBX_SYNC_GO, err) < 0)
		return -EPROTO;
	if (unshare(CLONE_NEWCGROUP) < 0)
		return sbx_fail(err, errno, "unshare the cgroup namespace");
	return 0;
}

static int setup(const struct sbx_child_ctx *c, struct sbx_err *err)
{
	const struct sbx_spec *spec = c->spec;
	/* cgroup v2: /sys/fs/cgroup inside is a cgroup2 mount of our own
	 * namespace, so the namespace comes first (and the runner has nothing
	 * to wait for: we were born in our cgroup).  v1: the mounts are made
	 * while the runner moves us into our cgroups, which waits for an RCU
	 * grace period in the kernel; nothing of the sandbox's own runs before
	 * GO. */
	int r = spec->cgroup2 ? join_cgroup_ns(c, err) : 0;
	if (r < 0)
		return r;
	r = write_ns_limits(c, err);
	if (r < 0)
		return r;
	r = mount_child(c->mnt, err);
	if (r < 0)
		return r;
	r = net_child_hostname(spec->hostname ? spec->hostname : spec->name, err);
	if (r < 0)
		return r;
	r = spec->host_network ? 0 : net_child_loopback(err);
	if (r < 0)
		return r;
	r = spec->cgroup2 ? 0 : join_cgroup_ns(c, err);
	if (r < 0)
		return r;
	int keep[2] = {c->sync_fd, c->tty_fd};
	if (keep[1] >= 0 && keep[1] < keep[0]) {
		keep[1] = c->sync_fd;
		keep[0] = c->tty_fd;
	}
	close_other_fds(keep, c->tty_fd >= 0 ? 2 : 1);
	/* No id change follows, but set PDEATHSIG again after the last point
	 * where one could be added: the kernel clears it on an id change. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return sbx_fail(err, errno, "PR_SET_PDEATHSIG");
	r = caps_child(spec->caps, c->last_cap, err);
	if (r < 0)
		return r;
	/* setuid binaries gain nothing; seccomp needs no CAP_SYS_ADMIN */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return sbx_fail(err, errno, "PR_SET_NO_NEW_PRIVS");
	return 0;
}

_Noreturn void child_main(const struct sbx_child_ctx *c)
{
	struct sbx_err err = {0};
	/* A runner that dies from here on takes us with it.  One that died
	 * before this line shows as EOF below (getppid() is 0 in a new pid
	 * namespace whether the parent lives or not). */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (sync_expect(c->sync_fd, SBX_SYNC_MAPS, &err) < 0)
		_exit(125);
	if (setup(c, &err) < 0)
		fail_exit(c->sync_fd, &err, 125);
	if (sync_send(c->sync_fd, SBX_SYNC_READY) < 0)
		_exit(125);
	if (sync_expect(c->sync_fd, SBX_SYNC_START, &err) < 0)
		_exit(125);
	init_run(c);
}
