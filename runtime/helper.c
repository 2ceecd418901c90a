#include "runtime/helper.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"

static void close_from(int lowest)
{
	if (syscall(SYS_close_range, (unsigned)lowest, ~0U, 0) == 0)
		return;
	for (int fd = lowest; fd < 65536; fd++)
		close(fd);
}

static pid_t helper_runner;

/* In the child, before anything else: die with the runner, and leave at
 * once if it is already gone (the pid check closes the race with fork). */
static void child_guard(pid_t runner)
{
	helper_runner = runner;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != runner)
		_exit(127);
	/* A session of its own: the terminal sends ^C, ^\ and a hangup to
	 * its whole foreground process group, and the runner relays them to
	 * the sandbox, whose command may catch them and go on; a helper that
	 * got them too would take the sandbox's root file system or network
	 * away under it.  The runner ends its helpers itself, by pid. */
	if (setsid() < 0)
		_exit(127);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL); /* the runner blocks what it relays */
	signal(SIGPIPE, SIG_DFL);
}

void helper_rearm(void)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != helper_runner)
		_exit(127);
}

static void child_fail(const char *what, const char *path)
{
	char msg[300];
	int n = snprintf(msg, sizeof(msg), "%s %s: %s\n", what, path, strerror(errno));
	if (n > 0)
		(void)!write(2, msg, (size_t)n);
	_exit(127);
}

/* fds 0..2 and the passed ones in place; nothing else left open. */
static void child_fds(const int *pass, size_t n_pass, int log_fd)
{
	int moved[8];
	if (n_pass > ELEMENTSOF(moved))
		_exit(127);
	/* lift them above every target first: a passed fd may sit on 0..3+n */
	for (size_t i = 0; i < n_pass; i++)
		if ((moved[i] = fcntl(pass[i], F_DUPFD, 100)) < 0)
			_exit(127);
	int log = log_fd >= 0 ? fcntl(log_fd, F_DUPFD, 100) : -1;
	int null = open("/dev/null", O_RDWR);
	if (null < 0)
		_exit(127);
	if (dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(log >= 0 ? log : null, 2) < 0)
		_exit(127);
	for (size_t i = 0; i < n_pass; i++)
		if (dup2(moved[i], 3 + (int)i) < 0)
			_exit(127);
	close_from(3 + (int)n_pass);
}

int helper_fork(const int *pass, size_t n_pass, int log_fd, pid_t *ret_pid, struct sbx_err *err)
{
	pid_t runner = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return sbx_fail(err, errno, "fork");
	if (pid == 0) {
		child_guard(runner);
		child_fds(pass, n_pass, log_fd);
		return 0;
	}
	*ret_pid = pid;
	return 1;
}

int helper_spawn(const char *path, char *const *argv, const int *pass, size_t n_pass, int log_fd,
                 pid_t *ret_pid, struct sbx_err *err)
{
	int r = helper_fork(pass, n_pass, log_fd, ret_pid, err);
	if (r == 0) {
		execv(path, argv);
		child_fail("exec", path);
	}
	return r < 0 ? sbx_wrap(err, "start %s", path) : 0;
}

void helper_kill(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
		;
	*pid = 0;
}

void helper_log_tail(int log_fd, char *buf, size_t size)
{
	buf[0] = '\0';
	if (log_fd < 0 || size < 2)
		return;
	off_t end = lseek(log_fd, 0, SEEK_END);
	if (end <= 0)
		return;
	off_t start = end > (off_t)(size - 1) ? end - (off_t)(size - 1) : 0;
	ssize_t n = pread(log_fd, buf, (size_t)(end - start), start);
	if (n <= 0) {
		buf[0] = '\0';
		return;
	}
	buf[n] = '\0';
	/* one line: drop the syslog complaints, join the rest */
	char *o = buf;
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!*line || strstr(line, "to syslog"))
			continue;
		if (o != buf)
			*o++ = ' ';
		memmove(o, line, strlen(line));
		o += strlen(line);
	}
	*o = '\0';
}
