/* The launcher's side of the supervisor: starting it, and talking to it. */
#include "orchestrator/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define SPAWN_TIMEOUT_MS 30000
#define NOTIFY_FD        3
#define HOLD_FD          4

/* In the grandchild: fds 0-2 (/dev/null, the log), 3 (notify), 4 (the
 * image hold), nothing else; then exec.  Only async-signal-safe calls. */
_Noreturn static void exec_supervisor(const struct sbx_state_dir *sd, const char *id, int notify_fd,
                                      int hold_fd, int log_fd)
{
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	int n = fcntl(notify_fd, F_DUPFD_CLOEXEC, 10);
	int h = hold_fd >= 0 ? fcntl(hold_fd, F_DUPFD_CLOEXEC, 10) : -1;
	int l = log_fd >= 0 ? fcntl(log_fd, F_DUPFD_CLOEXEC, 10) : devnull;
	if (devnull < 0 || n < 0 || l < 0 || (hold_fd >= 0 && h < 0))
		_exit(126);
	if (dup2(devnull, 0) < 0 || dup2(l, 1) < 0 || dup2(l, 2) < 0 || dup2(n, NOTIFY_FD) < 0 ||
	    (h >= 0 && dup2(h, HOLD_FD) < 0))
		_exit(126);
	syscall(SYS_close_range, h >= 0 ? HOLD_FD + 1 : NOTIFY_FD + 1, ~0U, 0);
	char hold[16];
	sbx_fmt(hold, sizeof(hold), "%d", h >= 0 ? HOLD_FD : -1);
	char notify[16];
	sbx_fmt(notify, sizeof(notify), "%d", NOTIFY_FD);
	char *argv[] = {"trimo-sbx", SUPERVISOR_VERB, sd->root, (char *)id, notify, hold, NULL};
	/* nothing of the caller's but its environment: default signals (a
	 * shell's `launch &` ignores SIGINT, and that would survive exec), no
	 * blocked ones, no hold on its working directory */
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (chdir("/") < 0)
		_exit(126);
	execv("/proc/self/exe", argv);
	static const char msg[] = "trimo-sbx: cannot execute the supervisor\n";
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(127);
}

static int wait_claim(int fd, pid_t mid, struct sbx_err *err)
{
	int status;
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r;
	do {
		r = poll(&p, 1, SPAWN_TIMEOUT_MS);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return sbx_failx(err, ETIMEDOUT, "the supervisor did not answer in %d s",
		                 SPAWN_TIMEOUT_MS / 1000);
	char c = 0;
	ssize_t n = read(fd, &c, 1);
	if (n == 1 && c == 'k')
		return 0;
	return sbx_failx(err, EIO, "the supervisor did not start (see `trimo-sbx logs`)");
}

int supervisor_spawn(const struct sbx_state_dir *sd, const char *id, int hold_fd,
                     struct sbx_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "tasks/%s/log", id);
	_cleanup_close_ int log_fd =
	    openat(sd->root_fd, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (log_fd < 0)
		return sbx_fail(err, errno, "open the task log");
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sbx_fail(err, errno, "pipe");
	_cleanup_close_ int rd = p[0];
	fflush(NULL);
	pid_t mid = fork();
	if (mid < 0) {
		close(p[1]);
		return sbx_fail(err, errno, "fork");
	}
	if (mid == 0) {
		/* a new session without a terminal, then a second fork so the
		 * supervisor is not a session leader (no terminal can ever
		 * become its controlling one) and nobody's child */
		if (setsid() < 0)
			_exit(126);
		pid_t pid = fork();
		if (pid < 0)
			_exit(126);
		if (pid == 0)
			exec_supervisor(sd, id, p[1], hold_fd, log_fd);
		_exit(0);
	}
	close(p[1]);
	return wait_claim(rd, mid, err);
}

/* connect() needs a path under 108 bytes: go through /proc/self/fd. */
static int control_connect(int task_fd, struct sbx_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", task_fd, CONTROL_SOCK);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sbx_fail(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return sbx_fail(err, e, "connect to the supervisor");
	}
	return fd;
}

int supervisor_request(int task_fd, const char *request, char *reply, size_t size,
                       struct sbx_err *err)
{
	_cleanup_close_ int fd = control_connect(task_fd, err);
	if (fd < 0)
		return fd;
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, request, strlen(request), MSG_NOSIGNAL) < 0)
		return sbx_fail(err, errno, "send to the supervisor");
	ssize_t n = recv(fd, reply, size - 1, 0);
	if (n <= 0)
		return sbx_fail(err, n < 0 ? errno : EPIPE, "the supervisor's answer");
	reply[n] = '\0';
	return 0;
}
