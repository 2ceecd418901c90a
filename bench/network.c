/* bench/network: a download from a host loopback server, on the host and
 * from inside a sandbox-like namespace through nat (pasta, slirp4netns)
 * and through the egress proxy; and how long attaching nat takes.
 * Built and run by bench/network (see there). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "runtime/network.h"
#include "sandbox/idmap.h"
#include "sandbox/net.h"

static unsigned long long total = 1ULL << 30;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench/network: %s\n", what);
	exit(1);
}

/* The server: each connection gets `total` bytes (after an optional
 * request head, which it skips when it starts with a letter). */
static pid_t server(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0)
		die("server");
	getsockname(fd, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	pid_t pid = fork();
	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	static char buf[1 << 16];
	memset(buf, 'x', sizeof(buf));
	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c < 0)
			_exit(0);
		unsigned long long left = total;
		while (left) {
			ssize_t n = write(c, buf, left < sizeof(buf) ? left : sizeof(buf));
			if (n <= 0)
				break;
			left -= (unsigned long long)n;
		}
		close(c);
	}
}

/* Connect to ip:port (through the proxy when target is set), read all. */
static double download(const char *ip, uint16_t port, const char *target)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, ip, &a.sin_addr);
	double t0 = now();
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -errno;
	static char buf[1 << 16];
	unsigned long long got = 0;
	if (target) {
		dprintf(fd, "CONNECT %s HTTP/1.1\r\n\r\n", target);
		/* the 200 head, byte by byte up to its blank line */
		char h[4] = {0};
		while (memcmp(h, "\r\n\r\n", 4)) {
			memmove(h, h + 1, 3);
			if (read(fd, &h[3], 1) != 1)
				return -EPROTO;
		}
	}
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		got += (unsigned long long)n;
	close(fd);
	if (got != total)
		return -EIO;
	return now() - t0;
}

struct box {
	pid_t pid;
	int ctl;
};

/* A child in its own user and network namespace (like the sandbox), that
 * downloads when told and reports the seconds. */
static struct box box_start(void)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		die("socketpair");
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		char c;
		struct sbx_err err;
		if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0 || write(sp[1], "u", 1) != 1 ||
		    read(sp[1], &c, 1) != 1 || net_child_loopback(&err) < 0)
			_exit(1);
		char cmd[300], ip[64], target[200];
		unsigned port;
		ssize_t n;
		while ((n = read(sp[1], cmd, sizeof(cmd) - 1)) > 0) {
			cmd[n] = '\0';
			int k = sscanf(cmd, "%63s %u %199s", ip, &port, target);
			double s = download(ip, (uint16_t)port, k == 3 ? target : NULL);
			if (write(sp[1], &s, sizeof(s)) != sizeof(s))
				_exit(1);
		}
		_exit(0);
	}
	char c;
	struct sbx_err err;
	if (read(sp[0], &c, 1) != 1 || idmap_parent(pid, getuid(), getgid(), &err) < 0 ||
	    write(sp[0], "m", 1) != 1)
		die("box");
	return (struct box){pid, sp[0]};
}

static double box_download(struct box *b, const char *ip, uint16_t port, const char *target)
{
	dprintf(b->ctl, "%s %u %s", ip, (unsigned)port, target ? target : "");
	double s = -1;
	if (read(b->ctl, &s, sizeof(s)) != sizeof(s))
		die("box download");
	return s;
}

static void box_end(struct box *b)
{
	close(b->ctl);
	kill(b->pid, SIGKILL);
	waitpid(b->pid, NULL, 0);
}

static void report(const char *name, double s, double host_s)
{
	if (s < 0) {
		printf("%-22s failed: %s\n", name, strerror((int)-s));
		return;
	}
	double mbps = (double)total / s / 1e6;
	if (host_s > 0)
		printf("%-22s %7.2f s  %8.0f MB/s  %5.1f%% of host\n", name, s, mbps,
		       100.0 * host_s / s);
	else
		printf("%-22s %7.2f s  %8.0f MB/s\n", name, s, mbps);
}

/* nat through tool: the host's loopback at the namespace's gateway. */
static double via_nat(enum sbx_net_tool tool, uint16_t port)
{
	struct box b = box_start();
	struct sbx_net net;
	struct sbx_err err = {0};
	struct sbx_net_opts o = {
	    .mode = SBX_NET_NAT, .tool = tool, .allow_host_loopback = true, .log_fd = -1};
	net_init(&net);
	if (net_prepare(&net, &o, &err) < 0 || net_attach(&net, b.pid, &err) < 0) {
		fprintf(stderr, "bench/network: %s\n", err.msg);
		box_end(&b);
		return -EIO;
	}
	const char *gw = tool == SBX_NET_TOOL_SLIRP4NETNS ? "10.0.2.2" : getenv("BENCH_GATEWAY");
	double s = box_download(&b, gw ? gw : "192.0.2.1", port, NULL);
	net_release(&net);
	box_end(&b);
	return s;
}

static double via_proxy(uint16_t port)
{
	char hosts[] = "/tmp/trimo-bench-hosts-XXXXXX";
	int fd = mkstemp(hosts);
	dprintf(fd, "127.0.0.1 bench.test\n");
	close(fd);
	char rule[64], target[64];
	snprintf(rule, sizeof(rule), "bench.test:%u", (unsigned)port);
	snprintf(target, sizeof(target), "bench.test:%u", (unsigned)port);
	char *allow[] = {rule, NULL};
	struct box b = box_start();
	struct sbx_net net;
	struct sbx_err err = {0};
	struct sbx_net_opts o = {.allow = allow, .hosts_file = hosts, .log_fd = -1};
	net_init(&net);
	double s = -EIO;
	if (net_prepare(&net, &o, &err) < 0 || net_attach(&net, b.pid, &err) < 0)
		fprintf(stderr, "bench/network: %s\n", err.msg);
	else
		s = box_download(&b, "127.0.0.1", SBX_NET_PROXY_PORT, target);
	net_release(&net);
	box_end(&b);
	unlink(hosts);
	return s;
}

/* Median time of net_prepare + net_attach + net_release for nat. */
static double attach_ms(enum sbx_net_tool tool, int runs)
{
	double v[32];
	for (int i = 0; i < runs; i++) {
		struct box b = box_start();
		struct sbx_net net;
		struct sbx_err err = {0};
		struct sbx_net_opts o = {.mode = SBX_NET_NAT, .tool = tool, .log_fd = -1};
		net_init(&net);
		double t0 = now();
		if (net_prepare(&net, &o, &err) < 0 || net_attach(&net, b.pid, &err) < 0)
			die(err.msg);
		v[i] = (now() - t0) * 1000;
		net_release(&net);
		box_end(&b);
	}
	for (int i = 0; i < runs; i++)
		for (int j = i + 1; j < runs; j++)
			if (v[j] < v[i]) {
				double t = v[i];
				v[i] = v[j];
				v[j] = t;
			}
	return v[runs / 2];
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1)
		total = strtoull(argv[1], NULL, 10) << 20;
	uint16_t port;
	pid_t srv = server(&port);
	printf("download of %llu MiB from a host loopback server\n", total >> 20);
	double host = download("127.0.0.1", port, NULL);
	report("host", host, 0);
	report("nat (pasta)", via_nat(SBX_NET_TOOL_PASTA, port), host);
	report("nat (slirp4netns)", via_nat(SBX_NET_TOOL_SLIRP4NETNS, port), host);
	report("egress proxy", via_proxy(port), host);
	printf("attach nat, median of 11 (prepare + start + ready): pasta %.1f ms, "
	       "slirp4netns %.1f ms\n",
	       attach_ms(SBX_NET_TOOL_PASTA, 11), attach_ms(SBX_NET_TOOL_SLIRP4NETNS, 11));
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
	return 0;
}
