/* The push socket's host side; see git_pushd.h. */
#include "orchestrator/git_pushd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define LINE_MAX_ 1024

enum { EV_LISTEN = 1, EV_OUT = 2 };

struct git_pushd {
	struct git_push_conf conf;
	int dir_fd;    /* the socket's folder */
	char name[64]; /* the socket's name in it */
	char helper[PATH_MAX];
	int listen_fd;
	int ep;
	pid_t pid;  /* the running receive, or 0 */
	int out_fd; /* its stdout and stderr */
	size_t len; /* of an unfinished line in buf */
	char buf[LINE_MAX_];
};

static void say(struct git_pushd *p, const char *line)
{
	if (p->conf.log)
		p->conf.log(p->conf.data, line);
}

int git_helper_path(const char *name, char *buf, size_t size, struct sbx_err *err)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return sbx_fail(err, errno, "find %s: /proc/self/exe", name);
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	if ((size_t)snprintf(buf, size, "%s/%s", self, name) >= size)
		return sbx_failx(err, ENAMETOOLONG, "find %s: path too long", name);
	if (access(buf, X_OK) < 0)
		return sbx_fail(err, errno, "find %s: '%s'", name, buf);
	return 0;
}

static int push_arg(char ***v, const char *opt, const char *val)
{
	if (sbx_strv_push(v, opt) < 0)
		return -ENOMEM;
	return val ? sbx_strv_push(v, val) : 0;
}

int git_pushd_argv(const struct git_push_conf *c, const char *helper, char ***ret,
                   struct sbx_err *err)
{
	static const char *const modes[] = {
	    [SBX_PUSH_MANUAL] = "manual", [SBX_PUSH_ON_EXIT] = "on-exit", [SBX_PUSH_AUTO] = "auto"};
	_cleanup_strv_free_ char **v = NULL;
	char num[32];
	int r = push_arg(&v, helper, NULL);
	r = r ?: push_arg(&v, "receive", NULL);
	r = r ?: push_arg(&v, "--fd", "3");
	r = r ?: push_arg(&v, "--repo", c->repo);
	r = r ?: push_arg(&v, "--branch", c->branch);
	r = r ?: push_arg(&v, "--push-mode", modes[c->push_mode]);
	if (!r && c->base)
		r = push_arg(&v, "--base", c->base);
	if (!r && c->remote)
		r = push_arg(&v, "--remote", c->remote);
	if (!r && c->record)
		r = push_arg(&v, "--record", c->record);
	if (!r && c->push_tags)
		r = push_arg(&v, "--push-tags", NULL);
	for (size_t i = 0; !r && c->protected_branches && c->protected_branches[i]; i++)
		r = push_arg(&v, "--protected", c->protected_branches[i]);
	if (!r && c->max_bytes) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)c->max_bytes);
		r = push_arg(&v, "--max-bytes", num);
	}
	if (!r && c->max_objects) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)c->max_objects);
		r = push_arg(&v, "--max-objects", num);
	}
	if (r < 0)
		return sbx_fail(err, ENOMEM, "push helper arguments");
	*ret = TAKE_PTR(v);
	return 0;
}

/* Bound through /proc/self/fd/N/NAME: a task folder's path may be longer
 * than sun_path's 108 bytes. */
static int listen_on(struct git_pushd *p, const char *path, struct sbx_err *err)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	if (!*name || strlen(name) >= sizeof(p->name))
		return sbx_failx(err, EINVAL, "push socket '%s': bad name", path);
	strcpy(p->name, name);
	_cleanup_free_ char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return sbx_fail(err, ENOMEM, "push socket");
	p->dir_fd = open(*dir ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (p->dir_fd < 0)
		return sbx_fail(err, errno, "push socket: folder '%s'", *dir ? dir : "/");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	sbx_fmt(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", p->dir_fd, p->name);
	p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (p->listen_fd < 0)
		return sbx_fail(err, errno, "push socket");
	unlinkat(p->dir_fd, p->name, 0);
	mode_t old = umask(0077);
	int r = bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(p->listen_fd, 8) < 0)
		return sbx_fail(err, errno, "push socket '%s'", path);
	return 0;
}

static int watch(struct git_pushd *p, int op, int fd, uint32_t id)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = id};
	return epoll_ctl(p->ep, op, fd, op == EPOLL_CTL_DEL ? NULL : &ev);
}

int git_pushd_open(const char *path, const struct git_push_conf *conf, struct git_pushd **ret,
                   struct sbx_err *err)
{
	struct git_pushd *p = calloc(1, sizeof(*p));
	if (!p)
		return sbx_fail(err, ENOMEM, "push socket");
	p->conf = *conf;
	p->listen_fd = p->ep = p->out_fd = p->dir_fd = -1;
	int r = 0;
	if (conf->helper)
		snprintf(p->helper, sizeof(p->helper), "%s", conf->helper);
	else
		r = git_helper_path("trimo-sbx-git", p->helper, sizeof(p->helper), err);
	if (r >= 0)
		r = listen_on(p, path, err);
	if (r >= 0 && ((p->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	               watch(p, EPOLL_CTL_ADD, p->listen_fd, EV_LISTEN) < 0))
		r = sbx_fail(err, errno, "push socket: epoll");
	if (r < 0) {
		git_pushd_close(p, 0);
		return r;
	}
	*ret = p;
	return 0;
}

int git_pushd_fd(const struct git_pushd *p)
{
	return p->ep;
}

bool git_pushd_busy(const struct git_pushd *p)
{
	return p->pid > 0;
}

/* Only the sandbox's own ids: our uid (its root maps to it) or root. */
static bool peer_ok(struct git_pushd *p, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	if (cred.uid == 0 || cred.uid == getuid())
		return true;
	char line[128];
	snprintf(line, sizeof(line), "push socket: connection from uid %u refused",
	         (unsigned)cred.uid);
	say(p, line);
	return false;
}

static int spawn_helper(struct git_pushd *p, int conn, int out_w, pid_t *ret)
{
	struct sbx_err err = {0};
	_cleanup_strv_free_ char **argv = NULL;
	if (git_pushd_argv(&p->conf, p->helper, &argv, &err) < 0)
		return -ENOMEM;
	/* the supervisor blocks signals for its signalfd: sbx_spawn resets
	 * them for the helper */
	return sbx_spawn(p->helper, argv, -1, out_w, out_w, conn, ret);
}

static void accept_one(struct git_pushd *p)
{
	_cleanup_close_ int c = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0 || !peer_ok(p, c))
		return;
	/* fds 0..3 are the helper's: keep the originals above them */
	_cleanup_close_ int conn = fcntl(c, F_DUPFD_CLOEXEC, 10);
	int pipefd[2];
	if (conn < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		say(p, "push socket: cannot serve a connection (out of file descriptors)");
		return;
	}
	_cleanup_close_ int out_w = fcntl(pipefd[1], F_DUPFD_CLOEXEC, 10);
	close(pipefd[1]);
	int r = out_w < 0 ? -errno : spawn_helper(p, conn, out_w, &p->pid);
	if (r < 0) {
		char line[PATH_MAX + 64];
		snprintf(line, sizeof(line), "push socket: cannot run %s: %s", p->helper,
		         sbx_strerror(-r));
		say(p, line);
		close(pipefd[0]);
		p->pid = 0;
		return;
	}
	p->out_fd = pipefd[0];
	fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
	p->len = 0;
	/* one receive at a time: new connections wait in the backlog */
	watch(p, EPOLL_CTL_DEL, p->listen_fd, 0);
	watch(p, EPOLL_CTL_ADD, p->out_fd, EV_OUT);
}

static void say_line(void *data, const char *line)
{
	say(data, line);
}

static void emit_lines(struct git_pushd *p, bool flush)
{
	sbx_take_lines(p->buf, &p->len, sizeof(p->buf), flush, say_line, p);
}

/* The helper is done: its last words, its exit status, the socket back. */
static void reap(struct git_pushd *p)
{
	emit_lines(p, true);
	watch(p, EPOLL_CTL_DEL, p->out_fd, 0);
	close(p->out_fd);
	p->out_fd = -1;
	int status = 0;
	while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
		;
	p->pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) > 1) {
		char line[128];
		if (WIFSIGNALED(status))
			snprintf(line, sizeof(line), "push helper killed by signal %d",
			         WTERMSIG(status));
		else
			snprintf(line, sizeof(line), "push helper failed (exit %d)",
			         WEXITSTATUS(status));
		say(p, line);
	}
	if (p->listen_fd >= 0)
		watch(p, EPOLL_CTL_ADD, p->listen_fd, EV_LISTEN);
}

static void read_output(struct git_pushd *p)
{
	ssize_t n = read(p->out_fd, p->buf + p->len, sizeof(p->buf) - 1 - p->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		reap(p);
		return;
	}
	p->len += (size_t)n;
	emit_lines(p, false);
}

void git_pushd_handle(struct git_pushd *p)
{
	struct epoll_event ev[4];
	int n = epoll_wait(p->ep, ev, 4, 0);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u32 == EV_LISTEN && p->pid == 0)
			accept_one(p);
		else if (ev[i].data.u32 == EV_OUT && p->out_fd >= 0)
			read_output(p);
	}
}

void git_pushd_close(struct git_pushd *p, unsigned wait_s)
{
	if (!p)
		return;
	time_t deadline = time(NULL) + wait_s;
	while (p->pid > 0) {
		int left = (int)(deadline - time(NULL));
		struct pollfd pf = {.fd = p->out_fd, .events = POLLIN};
		if (left <= 0 || poll(&pf, 1, left * 1000) == 0) {
			kill(p->pid, SIGKILL);
			say(p, "push helper still running at the end: killed");
			deadline = time(NULL) + 5;
		}
		read_output(p);
	}
	if (p->listen_fd >= 0) {
		unlinkat(p->dir_fd, p->name, 0);
		close(p->listen_fd);
	}
	if (p->dir_fd >= 0)
		close(p->dir_fd);
	if (p->ep >= 0)
		close(p->ep);
	free(p);
}
