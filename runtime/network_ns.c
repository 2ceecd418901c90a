/* The proxy's door into the sandbox: a TCP socket listening on
 * 127.0.0.1:3128 in the sandbox's own network namespace, made there by a
 * short-lived helper and accepted on by the proxy on the host side (a
 * socket stays in the namespace it was created in).  The helper joins the
 * user namespace first: setns(CLONE_NEWNET) wants CAP_SYS_ADMIN over the
 * namespace's owner, which the runner has only from inside that user
 * namespace (it created it; rootless it has nothing outside). */
#include "runtime/network_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"

static int make_listener(uint16_t port, struct sbx_err *err)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sbx_fail(err, errno, "socket");
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 128) < 0) {
		int e = errno;
		close(fd);
		return sbx_fail(err, e, "listen on 127.0.0.1:%u in the sandbox", (unsigned)port);
	}
	return fd;
}

/* The helper's answer: its struct sbx_err, with the fd when it has one. */
static void send_result(int sock, int fd, const struct sbx_err *e)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	memset(ctl, 0, sizeof(ctl));
	struct iovec iov = {.iov_base = (void *)e, .iov_len = sizeof(*e)};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		m.msg_control = ctl;
		m.msg_controllen = sizeof(ctl);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	(void)!sendmsg(sock, &m, MSG_NOSIGNAL);
}

static void __attribute__((noreturn)) listen_helper(int sock, int userns, int netns, uint16_t port)
{
	struct sbx_err e = {0};
	int fd = -1;
	if (setns(userns, CLONE_NEWUSER) < 0)
		sbx_fail(&e, errno, "join the sandbox's user namespace");
	else if (setns(netns, CLONE_NEWNET) < 0)
		sbx_fail(&e, errno, "join the sandbox's network namespace");
	else
		fd = make_listener(port, &e);
	send_result(sock, fd, &e);
	_exit(0);
}

static int recv_result(int sock, int *ret_fd, struct sbx_err *err)
{
	struct pollfd p = {.fd = sock, .events = POLLIN};
	if (poll(&p, 1, 10000) <= 0)
		return sbx_failx(err, ETIMEDOUT, "the namespace helper did not answer");
	struct sbx_err e = {0};
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &e, .iov_len = sizeof(e)};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	if (n != (ssize_t)sizeof(e))
		return sbx_failx(err, EPROTO, "the namespace helper failed");
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
		memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
		return 0;
	}
	e.msg[sizeof(e.msg) - 1] = '\0';
	*err = e;
	return -(e.errnum > 0 ? e.errnum : EIO);
}

int net_listen_in_ns(pid_t pid, uint16_t port, int *ret_fd, struct sbx_err *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	_cleanup_close_ int userns = open(path, O_RDONLY | O_CLOEXEC);
	if (userns < 0)
		return sbx_fail(err, errno, "open %s", path);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	_cleanup_close_ int netns = open(path, O_RDONLY | O_CLOEXEC);
	if (netns < 0)
		return sbx_fail(err, errno, "open %s", path);
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return sbx_fail(err, errno, "socketpair");
	pid_t child = fork();
	if (child < 0) {
		int e = errno;
		close(sp[0]);
		close(sp[1]);
		return sbx_fail(err, e, "fork");
	}
	if (child == 0) {
		close(sp[0]);
		listen_helper(sp[1], userns, netns, port);
	}
	close(sp[1]);
	int fd = -1;
	int r = recv_result(sp[0], &fd, err);
	close(sp[0]);
	if (r < 0)
		kill(child, SIGKILL);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	if (r < 0)
		return r;
	*ret_fd = fd;
	return 0;
}

/* As root the proxy needs no privilege at all: it runs as nobody. */
static int drop_root(pid_t runner)
{
	if (geteuid() != 0)
		return 0;
	if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
	    setresuid(65534, 65534, 65534) < 0)
		return -errno;
	/* an id change clears the death signal */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != runner)
		return -ESRCH;
	return 0;
}

static void __attribute__((noreturn)) proxy_main(struct sbx_net *net, pid_t runner)
{
	struct sbx_err e = {0};
	struct proxy_host_entry *hosts = NULL;
	size_t n_hosts = 0;
	int r = 0;
	if (net->hosts_file[0])
		r = proxy_hosts_load(net->hosts_file, &hosts, &n_hosts, &e);
	if (r >= 0 && (r = drop_root(runner)) < 0)
		sbx_fail(&e, -r, "drop privileges");
	if (r >= 0) {
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		signal(SIGPIPE, SIG_IGN);
		struct proxy_config cfg = {
		    .rules = net->rules,
		    .hosts = hosts,
		    .n_hosts = n_hosts,
		    .allow_host_loopback = net->opts.allow_host_loopback,
		    .log_fd = net->opts.log_fd >= 0 ? 2 : -1,
		    .stats = net->stats,
		};
		proxy_serve(3, &cfg, &e);
	}
	if (net->opts.log_fd >= 0)
		dprintf(2, "egress proxy: %s\n", e.msg);
	_exit(1);
}

int net_proxy_start(struct sbx_net *net, int listen_fd, struct sbx_err *err)
{
	pid_t runner = getpid();
	int r = helper_fork(&listen_fd, 1, net->opts.log_fd, &net->proxy_pid, err);
	if (r == 0)
		proxy_main(net, runner);
	return r < 0 ? r : 0;
}
