/* nat: pasta (else slirp4netns) attached to the sandbox's namespaces.
 *
 * pasta's defaults are wrong for us: -t/-u/-T/-U default to `auto`, which
 * binds every port the agent listens on onto the host (two agents on 3000
 * collide) and forwards host loopback ports inside; its gateway address
 * maps to the host's loopback; and it forks into the background, where
 * a PDEATHSIG is lost.  So: -f, every forward `none` except the published
 * ones, --no-map-gw unless allow_host_loopback, and --runas 0 as root (it
 * would drop to nobody and fail to join the namespaces). */
#include "runtime/network_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

static int push(char ***v, const char *s, struct sbx_err *err)
{
	return sbx_strv_push(v, s) < 0 ? sbx_fail(err, ENOMEM, "network helper arguments") : 0;
}

static int push_fmt(char ***v, struct sbx_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int push_fmt(char ***v, struct sbx_err *err, const char *fmt, ...)
{
	char buf[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return push(v, buf, err);
}

static int pasta_forwards(const struct sbx_net_opts *o, bool udp, char ***v, struct sbx_err *err)
{
	int r = 0;
	size_t n = 0;
	for (size_t i = 0; r >= 0 && i < o->n_publish; i++) {
		const struct sbx_publish *p = &o->publish[i];
		if (p->udp != udp)
			continue;
		n++;
		r = push(v, udp ? "-u" : "-t", err);
		if (r >= 0)
			r = push_fmt(v, err, "%s/%u:%u", p->addr, (unsigned)p->host_port,
			             (unsigned)p->port);
	}
	if (r >= 0 && n == 0) {
		/* also stops -t's ports from being forwarded for UDP too */
		r = push(v, udp ? "-u" : "-t", err);
		if (r >= 0)
			r = push(v, "none", err);
	}
	return r;
}

static int pasta_argv(const struct sbx_net *net, pid_t pid, char ***ret, struct sbx_err *err)
{
	_cleanup_strv_free_ char **v = NULL;
	int r = push(&v, net->tool_path, err);
	const char *fixed[] = {"-f", "-q", "--config-net", "-T", "none", "-U", "none"};
	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(fixed); i++)
		r = push(&v, fixed[i], err);
	if (r >= 0)
		r = pasta_forwards(&net->opts, false, &v, err);
	if (r >= 0)
		r = pasta_forwards(&net->opts, true, &v, err);
	if (r >= 0 && !net->opts.allow_host_loopback)
		r = push(&v, "--no-map-gw", err);
	if (r >= 0 && geteuid() == 0) {
		r = push(&v, "--runas", err);
		if (r >= 0)
			r = push(&v, "0", err);
	}
	if (r >= 0)
		r = push(&v, "--userns", err);
	if (r >= 0)
		r = push_fmt(&v, err, "/proc/%d/ns/user", (int)pid);
	if (r >= 0)
		r = push(&v, "--netns", err);
	if (r >= 0)
		r = push_fmt(&v, err, "/proc/%d/ns/net", (int)pid);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(v);
	return 0;
}

/* A default route on a device other than lo (IPv6 keeps an unreachable
 * default on lo). */
static bool has_default_route(pid_t pid, bool v6)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/net/%s", (int)pid, v6 ? "ipv6_route" : "route");
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char a[64], b[64], dev[32] = "";
		if (v6) {
			char c[64], d[64], e[64], m[16], rc[16], u[16], fl[16];
			if (sscanf(line, "%63s %63s %63s %63s %63s %15s %15s %15s %15s %31s", a, b,
			           c, d, e, m, rc, u, fl, dev) == 10 &&
			    !strcmp(a, "00000000000000000000000000000000") && !strcmp(b, "00") &&
			    strcmp(dev, "lo"))
				return true;
		} else if (sscanf(line, "%31s %63s %63s", dev, a, b) == 3 &&
		           !strcmp(a, "00000000") && strcmp(dev, "lo")) {
			return true;
		}
	}
	return false;
}

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The helper's death while we wait, with what it said. */
static int helper_exited(struct sbx_net *net, const char *name, struct sbx_err *err)
{
	int status;
	pid_t p = waitpid(net->helper_pid, &status, WNOHANG);
	if (p != net->helper_pid)
		return 0;
	net->helper_pid = 0;
	char said[400];
	helper_log_tail(net->helper_log, said, sizeof(said));
	if (WIFSIGNALED(status))
		return sbx_failx(err, ECHILD, "network nat: %s was killed by signal %d%s%s", name,
		                 WTERMSIG(status), said[0] ? ": " : "", said);
	return sbx_failx(err, ECHILD, "network nat: %s exited with %d%s%s", name,
	                 WEXITSTATUS(status), said[0] ? ": " : "", said);
}

/* Ready: the routes pasta copies from the host are in the namespace, and
 * every published port is bound on the host. */
static bool pasta_ready(const struct sbx_net *net, pid_t pid, bool want4, bool want6)
{
	if ((want4 && !has_default_route(pid, false)) || (want6 && !has_default_route(pid, true)))
		return false;
	for (size_t i = 0; i < net->opts.n_publish; i++) {
		const struct sbx_publish *p = &net->opts.publish[i];
		if (net_port_probe(p->addr, p->host_port, p->udp) != -EADDRINUSE)
			return false;
	}
	return true;
}

static int pasta_start(struct sbx_net *net, pid_t pid, struct sbx_err *err)
{
	_cleanup_strv_free_ char **argv = NULL;
	int r = pasta_argv(net, pid, &argv, err);
	if (r < 0)
		return r;
	r = helper_spawn(net->tool_path, argv, NULL, 0, net->helper_log, &net->helper_pid, err);
	if (r < 0)
		return r;
	pid_t self = getpid();
	bool want4 = has_default_route(self, false), want6 = has_default_route(self, true);
	long long deadline = mono_ms() + net->opts.ready_timeout_ms;
	for (;;) {
		if (pasta_ready(net, pid, want4, want6))
			return 0;
		r = helper_exited(net, "pasta", err);
		if (r < 0)
			return r;
		if (mono_ms() > deadline)
			break;
		usleep(2000);
	}
	char said[400];
	helper_log_tail(net->helper_log, said, sizeof(said));
	return sbx_failx(err, ETIMEDOUT,
	                 "network nat: pasta did not configure the sandbox's interface%s within "
	                 "%d ms%s%s",
	                 net->opts.n_publish ? " and bind the published ports" : "",
	                 net->opts.ready_timeout_ms, said[0] ? ": " : "", said);
}

static int slirp_argv(const struct sbx_net *net, pid_t pid, char ***ret, struct sbx_err *err)
{
	_cleanup_strv_free_ char **v = NULL;
	/* the exit fd and the ready fd arrive as fds 3 and 4 */
	const char *fixed[] = {"--configure",  "--mtu=65520",      "--exit-fd=3",
	                       "--ready-fd=4", "--enable-seccomp", "--netns-type=path"};
	int r = push(&v, net->tool_path, err);
	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(fixed); i++)
		r = push(&v, fixed[i], err);
	if (r >= 0 && !net->opts.allow_host_loopback)
		r = push(&v, "--disable-host-loopback", err);
	if (r >= 0 && net->api_dir[0])
		r = push_fmt(&v, err, "--api-socket=%s/api.sock", net->api_dir);
	if (r >= 0)
		r = push_fmt(&v, err, "--userns-path=/proc/%d/ns/user", (int)pid);
	if (r >= 0)
		r = push_fmt(&v, err, "/proc/%d/ns/net", (int)pid);
	if (r >= 0)
		r = push(&v, "tap0", err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(v);
	return 0;
}

/* One request on slirp4netns's API socket; ok when it answers "return". */
static int slirp_api(const struct sbx_net *net, const char *req, char *resp, size_t size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/api.sock", net->api_dir) >=
	    sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	int r = sbx_write_all(fd, req, strlen(req));
	if (r < 0)
		return r;
	shutdown(fd, SHUT_WR);
	size_t len = 0;
	resp[0] = '\0';
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 5000) <= 0)
			return -ETIMEDOUT;
		ssize_t n = read(fd, resp + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		resp[len] = '\0';
		if (len + 1 >= size)
			break;
	}
	return strstr(resp, "\"return\"") && !strstr(resp, "\"error\"") ? 0 : -EIO;
}

static int slirp_publish(const struct sbx_net *net, struct sbx_err *err)
{
	for (size_t i = 0; i < net->opts.n_publish; i++) {
		const struct sbx_publish *p = &net->opts.publish[i];
		char req[400], resp[400];
		snprintf(req, sizeof(req),
		         "{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"%s\", "
		         "\"host_addr\": \"%s\", \"host_port\": %u, \"guest_port\": %u}}",
		         p->udp ? "udp" : "tcp", p->addr, (unsigned)p->host_port,
		         (unsigned)p->port);
		int r = slirp_api(net, req, resp, sizeof(resp));
		if (r < 0)
			return sbx_failx(err, -r == EIO ? EADDRINUSE : -r,
			                 "network nat: slirp4netns: publish %s:%u:%u/%s: %s",
			                 p->addr, (unsigned)p->host_port, (unsigned)p->port,
			                 p->udp ? "udp" : "tcp", resp[0] ? resp : sbx_strerror(-r));
	}
	return 0;
}

/* --ready-fd: slirp4netns writes "1" once the tap is configured; EOF
 * means it died. */
static int slirp_wait(struct sbx_net *net, int ready_fd, struct sbx_err *err)
{
	struct pollfd p = {.fd = ready_fd, .events = POLLIN};
	int n = poll(&p, 1, net->opts.ready_timeout_ms);
	char c = 0;
	if (n > 0 && read(ready_fd, &c, 1) == 1 && c == '1')
		return 0;
	if (n == 0)
		return sbx_failx(err, ETIMEDOUT,
		                 "network nat: slirp4netns was not ready within %d ms",
		                 net->opts.ready_timeout_ms);
	for (int i = 0; i < 100 && net->helper_pid; i++) {
		int r = helper_exited(net, "slirp4netns", err);
		if (r < 0)
			return r;
		usleep(10000);
	}
	return sbx_failx(err, EIO, "network nat: slirp4netns failed");
}

static int slirp_start(struct sbx_net *net, pid_t pid, struct sbx_err *err)
{
	if (net->opts.n_publish) {
		snprintf(net->api_dir, sizeof(net->api_dir), "/tmp/trimo-slirp-XXXXXX");
		if (!mkdtemp(net->api_dir)) {
			int e = errno;
			net->api_dir[0] = '\0';
			return sbx_fail(err, e, "network nat: API socket folder");
		}
	}
	_cleanup_strv_free_ char **argv = NULL;
	int r = slirp_argv(net, pid, &argv, err);
	if (r < 0)
		return r;
	int exit_pipe[2], ready_pipe[2];
	if (pipe2(exit_pipe, O_CLOEXEC) < 0)
		return sbx_fail(err, errno, "network nat: pipe");
	if (pipe2(ready_pipe, O_CLOEXEC) < 0) {
		close(exit_pipe[0]);
		close(exit_pipe[1]);
		return sbx_fail(err, errno, "network nat: pipe");
	}
	int pass[2] = {exit_pipe[0], ready_pipe[1]};
	r = helper_spawn(net->tool_path, argv, pass, 2, net->helper_log, &net->helper_pid, err);
	close(exit_pipe[0]);
	close(ready_pipe[1]);
	net->exit_fd = exit_pipe[1];
	_cleanup_close_ int ready = ready_pipe[0];
	if (r < 0)
		return r;
	r = slirp_wait(net, ready, err);
	return r < 0 ? r : slirp_publish(net, err);
}

int net_tool_start(struct sbx_net *net, pid_t pid, struct sbx_err *err)
{
	if (net->helper_log < 0) {
		net->helper_log = memfd_create("trimo-net-helper", MFD_CLOEXEC);
		if (net->helper_log < 0)
			return sbx_fail(err, errno, "network nat: memfd");
	}
	if (net->tool == SBX_NET_TOOL_SLIRP4NETNS)
		return slirp_start(net, pid, err);
	return pasta_start(net, pid, err);
}
