/* runtime/network against real namespaces, pasta and slirp4netns, before
 * the wiring into `trimo-sbx run`.  Not a unit test: it runs only when
 * asked, as root or as a user with access to /dev/net/tun:
 *
 *   TRIMO_NET_REAL=1 build/tests/test_network_real
 *
 * (tests/integration/test_network_real.py runs it both ways, giving the
 * unprivileged user a tun node in a mount namespace prepared by root).
 *
 * A "sandbox" here is a child that unshares a user and a network namespace
 * like the runner's clone() does (the parent writes its single-id map),
 * brings lo up, and then does what the test asks over a socketpair:
 * listen, connect, ask the proxy.  Only loopback addresses and namespaces
 * made here are used. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "runtime/network.h"
#include "sandbox/idmap.h"
#include "sandbox/net.h"

static const char *why_skipped;

static bool enabled(void)
{
	const char *e = getenv("TRIMO_NET_REAL");
	if (!(e && !strcmp(e, "1")))
		why_skipped = "set TRIMO_NET_REAL=1 (needs /dev/net/tun access)";
	else if (access("/dev/net/tun", R_OK | W_OK) < 0)
		why_skipped = "no access to /dev/net/tun";
	else
		why_skipped = NULL;
	return !why_skipped;
}

#define SKIP_UNLESS(cond, why)                                                                     \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			print_message("skipped: %s\n", why);                                       \
			skip();                                                                    \
		}                                                                                  \
	} while (0)
#define SKIP_UNLESS_ENABLED() SKIP_UNLESS(enabled(), why_skipped)

static bool have(const char *tool)
{
	char path[128];
	snprintf(path, sizeof(path), "/usr/bin/%s", tool);
	return access(path, X_OK) == 0;
}

/* ---- the fake sandbox ------------------------------------------------ */

struct box {
	pid_t pid;
	int ctl; /* commands and answers, one line each */
};

static int connect_to(const char *ip, uint16_t port, int timeout_ms)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, ip, &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		return -e;
	}
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, timeout_ms) <= 0) {
		close(fd);
		return -ETIMEDOUT;
	}
	int e = 0;
	socklen_t el = sizeof(e);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
	if (e) {
		close(fd);
		return -e;
	}
	fcntl(fd, F_SETFL, 0);
	return fd;
}

/* Read until EOF or n bytes or a timeout. */
static size_t read_some(int fd, char *buf, size_t n, int timeout_ms)
{
	size_t len = 0;
	while (len + 1 < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, timeout_ms) <= 0)
			break;
		ssize_t r = read(fd, buf + len, n - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		if (memchr(buf, '\n', len))
			break;
	}
	buf[len] = '\0';
	return len;
}

/* A server inside: every connection gets reply and is closed. */
static void box_listen(int ctl, uint16_t port, const char *reply)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0) {
		dprintf(ctl, "listen=%s\n", strerror(errno));
		return;
	}
	pid_t box = getpid();
	if (fork() == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != box)
			_exit(0);
		for (;;) {
			int c = accept(fd, NULL, NULL);
			if (c < 0)
				_exit(0);
			dprintf(c, "%s\n", reply);
			close(c);
		}
	}
	close(fd);
	dprintf(ctl, "listen=ok\n");
}

/* A UDP server inside: counts the datagrams and answers each with reply. */
static unsigned *udp_got;

static void box_udp(int ctl, uint16_t port, const char *reply)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		dprintf(ctl, "udp=%s\n", strerror(errno));
		return;
	}
	udp_got =
	    mmap(NULL, sizeof(*udp_got), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t box = getpid();
	if (fork() == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != box)
			_exit(0);
		for (;;) {
			char buf[512];
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);
			if (recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl) < 0)
				_exit(0);
			__atomic_add_fetch(udp_got, 1, __ATOMIC_SEQ_CST);
			sendto(fd, reply, strlen(reply), 0, (struct sockaddr *)&from, fl);
		}
	}
	close(fd);
	dprintf(ctl, "udp=ok\n");
}

static void box_connect(int ctl, const char *ip, uint16_t port)
{
	int fd = connect_to(ip, port, 2000);
	if (fd < 0) {
		dprintf(ctl, "connect=%s\n", strerror(-fd));
		return;
	}
	char buf[256];
	read_some(fd, buf, sizeof(buf), 2000);
	buf[strcspn(buf, "\n")] = '\0';
	dprintf(ctl, "connect=ok %s\n", buf);
	close(fd);
}

/* CONNECT through the proxy inside, then one line through the tunnel. */
static void box_proxy(int ctl, const char *target)
{
	int fd = connect_to("127.0.0.1", SBX_NET_PROXY_PORT, 2000);
	if (fd < 0) {
		dprintf(ctl, "proxy=%s\n", strerror(-fd));
		return;
	}
	dprintf(fd, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target);
	char buf[512];
	read_some(fd, buf, sizeof(buf), 5000);
	buf[strcspn(buf, "\r\n")] = '\0';
	char line[600];
	snprintf(line, sizeof(line), "proxy=%s", buf);
	if (!strncmp(buf, "HTTP/1.1 200", 12)) {
		/* the head ends with an empty line; read it, then echo */
		char rest[512];
		if (!strstr(buf, "\r\n\r\n"))
			read_some(fd, rest, sizeof(rest), 200);
		dprintf(fd, "hello\n");
		read_some(fd, rest, sizeof(rest), 5000);
		rest[strcspn(rest, "\n")] = '\0';
		snprintf(line, sizeof(line), "proxy=200 %s", rest);
	}
	dprintf(ctl, "%s\n", line);
	close(fd);
}

static void box_gateway(int ctl)
{
	FILE *f = fopen("/proc/self/net/route", "r");
	char line[256], dev[32], dst[16], gw[16];
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%31s %15s %15s", dev, dst, gw) == 3 && !strcmp(dst, "00000000")) {
			struct in_addr a = {.s_addr = (in_addr_t)strtoul(gw, NULL, 16)};
			dprintf(ctl, "gw=%s\n", inet_ntoa(a));
			fclose(f);
			return;
		}
	if (f)
		fclose(f);
	dprintf(ctl, "gw=none\n");
}

static void box_ifaces(int ctl)
{
	FILE *f = fopen("/proc/self/net/dev", "r");
	char line[512], out[256] = "";
	int n = 0;
	while (f && fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');
		if (n++ < 2 || !c)
			continue;
		*c = '\0';
		char *name = line + strspn(line, " ");
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", out[0] ? " " : "",
		         name);
	}
	if (f)
		fclose(f);
	dprintf(ctl, "ifaces=%s\n", out);
}

static void __attribute__((noreturn)) box_main(int ctl, pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	char c = 0;
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0 || write(ctl, "u", 1) != 1 ||
	    read(ctl, &c, 1) != 1 || c != 'm')
		_exit(1);
	struct sbx_err err;
	if (net_child_loopback(&err) < 0)
		_exit(1);
	dprintf(ctl, "ready\n");
	FILE *in = fdopen(dup(ctl), "r");
	char line[512];
	while (in && fgets(line, sizeof(line), in)) {
		char a[256] = "", b[256] = "";
		unsigned port = 0;
		if (sscanf(line, "listen %u %255s", &port, a) == 2)
			box_listen(ctl, (uint16_t)port, a);
		else if (sscanf(line, "udp %u %255s", &port, a) == 2)
			box_udp(ctl, (uint16_t)port, a);
		else if (!strncmp(line, "udpgot", 6))
			dprintf(ctl, "udpgot=%u\n",
			        udp_got ? __atomic_load_n(udp_got, __ATOMIC_SEQ_CST) : 0);
		else if (sscanf(line, "connect %255s %u", a, &port) == 2)
			box_connect(ctl, a, (uint16_t)port);
		else if (sscanf(line, "proxy %255s", b) == 1)
			box_proxy(ctl, b);
		else if (!strncmp(line, "gateway", 7))
			box_gateway(ctl);
		else if (!strncmp(line, "ifaces", 6))
			box_ifaces(ctl);
		else
			dprintf(ctl, "unknown\n");
	}
	_exit(0);
}

static struct box box_start(void)
{
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	pid_t parent = getpid();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sp[0]);
		box_main(sp[1], parent);
	}
	close(sp[1]);
	char c = 0;
	assert_int_equal(read(sp[0], &c, 1), 1);
	struct sbx_err err = {0};
	if (idmap_parent(pid, getuid(), getgid(), &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(write(sp[0], "m", 1), 1);
	char buf[64];
	read_some(sp[0], buf, sizeof(buf), 5000);
	assert_string_equal(buf, "ready\n");
	return (struct box){.pid = pid, .ctl = sp[0]};
}

/* One command, its one-line answer (without the newline). */
static const char *box_ask(struct box *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *box_ask(struct box *b, const char *fmt, ...)
{
	static char answer[600];
	char cmd[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	dprintf(b->ctl, "%s\n", cmd);
	read_some(b->ctl, answer, sizeof(answer), 15000);
	answer[strcspn(answer, "\n")] = '\0';
	return answer;
}

static void box_end(struct box *b)
{
	close(b->ctl);
	kill(b->pid, SIGKILL);
	waitpid(b->pid, NULL, 0);
}

/* ---- host side helpers ------------------------------------------------ */

static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	close(fd);
	return ntohs(a.sin_port);
}

static int host_listener(const char *ip, uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(*port)};
	inet_pton(AF_INET, ip, &a.sin_addr);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	socklen_t len = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	return fd;
}

/* A host server answering each connection with reply (or echoing). */
static pid_t host_server(int lfd, const char *reply)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid > 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			_exit(1);
		char buf[512];
		ssize_t n;
		if (reply)
			dprintf(c, "%s\n", reply);
		else
			while ((n = read(c, buf, sizeof(buf))) > 0)
				(void)!write(c, buf, (size_t)n);
		close(c);
	}
}

/* Host side: what a published port answers. */
static void expect_published(uint16_t port, const char *reply)
{
	int fd = connect_to("127.0.0.1", port, 3000);
	if (fd < 0)
		fail_msg("connect to published 127.0.0.1:%u: %s", port, strerror(-fd));
	char buf[256];
	read_some(fd, buf, sizeof(buf), 3000);
	close(fd);
	buf[strcspn(buf, "\n")] = '\0';
	assert_string_equal(buf, reply);
}

static bool process_gone(pid_t pid, int timeout_ms)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (int t = 0; t < timeout_ms; t += 10) {
		char buf[512] = "";
		FILE *f = fopen(path, "r");
		if (!f)
			return true;
		(void)!fgets(buf, sizeof(buf), f);
		fclose(f);
		const char *rp = strrchr(buf, ')');
		if (rp && (rp[2] == 'Z' || rp[2] == 'X'))
			return true;
		usleep(10000);
	}
	return false;
}

static void attach(struct sbx_net *net, struct box *b, const struct sbx_net_opts *o)
{
	struct sbx_err err = {0};
	net_init(net);
	if (net_prepare(net, o, &err) < 0 || net_attach(net, b->pid, &err) < 0)
		fail_msg("%s", err.msg);
}

/* ---- the tests ---------------------------------------------------------- */

static const enum sbx_net_tool tools[] = {SBX_NET_TOOL_PASTA, SBX_NET_TOOL_SLIRP4NETNS};
static const char *const tool_names[] = {"pasta", "slirp4netns"};

/* Two sandboxes both serve port 3000; each answers through its own host
 * port, and nothing else of theirs is on the host. */
static void publish_two(enum sbx_net_tool tool)
{
	struct box b1 = box_start(), b2 = box_start();
	assert_string_equal(box_ask(&b1, "listen 3000 one"), "listen=ok");
	assert_string_equal(box_ask(&b2, "listen 3000 two"), "listen=ok");
	struct sbx_publish p1 = {.addr = "127.0.0.1", .host_port = free_port(), .port = 3000};
	struct sbx_publish p2 = {.addr = "127.0.0.1", .host_port = free_port(), .port = 3000};
	struct sbx_net_opts o1 = {
	    .mode = SBX_NET_NAT, .publish = &p1, .n_publish = 1, .tool = tool, .log_fd = -1};
	struct sbx_net_opts o2 = o1;
	o2.publish = &p2;
	struct sbx_net n1, n2;
	attach(&n1, &b1, &o1);
	attach(&n2, &b2, &o2);
	const char *ifaces = box_ask(&b1, "ifaces");
	assert_non_null(strchr(ifaces, ' ')); /* lo and the tap */
	expect_published(p1.host_port, "one");
	expect_published(p2.host_port, "two");
	expect_published(p1.host_port, "one");
	/* pasta's `auto` would have bound 3000 on the host */
	int fd = connect_to("127.0.0.1", 3000, 500);
	if (fd >= 0)
		close(fd);
	assert_true(fd < 0);
	pid_t h1 = n1.helper_pid, h2 = n2.helper_pid;
	assert_true(h1 > 0 && h2 > 0);
	net_release(&n1);
	net_release(&n2);
	assert_true(process_gone(h1, 2000));
	assert_true(process_gone(h2, 2000));
	box_end(&b1);
	box_end(&b2);
}

static void test_publish_two(void **state)
{
	SKIP_UNLESS_ENABLED();
	size_t i = (size_t)(uintptr_t)*state;
	SKIP_UNLESS(have(tool_names[i]), "the tool is not installed");
	publish_two(tools[i]);
}

/* A published UDP port reaches the server inside.  Its replies come back
 * only through slirp4netns with the host's loopback allowed: slirp drops a
 * reply to the host alias 10.0.2.2 under --disable-host-loopback, and
 * pasta 2023-03 loses the replies of forwarded UDP altogether (checked by
 * hand with a plain pasta too); docs/network.md says so. */
static void test_publish_udp(void **state)
{
	SKIP_UNLESS_ENABLED();
	size_t i = (size_t)(uintptr_t)*state;
	SKIP_UNLESS(have(tool_names[i]), "the tool is not installed");
	for (int lo = 0; lo < 2; lo++) {
		struct box b = box_start();
		assert_string_equal(box_ask(&b, "udp 3000 pong"), "udp=ok");
		struct sbx_publish p = {.family = AF_INET,
		                        .addr = "127.0.0.1",
		                        .host_port = free_port(),
		                        .port = 3000,
		                        .udp = true};
		struct sbx_net_opts o = {.mode = SBX_NET_NAT,
		                         .publish = &p,
		                         .n_publish = 1,
		                         .tool = tools[i],
		                         .log_fd = -1,
		                         .allow_host_loopback = lo};
		struct sbx_net n;
		attach(&n, &b, &o);
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = {.sin_family = AF_INET,
		                        .sin_port = htons(p.host_port),
		                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		char buf[64] = "";
		for (int k = 0; k < 8 && !buf[0]; k++) {
			sendto(fd, "ping", 4, 0, (struct sockaddr *)&a, sizeof(a));
			struct pollfd pf = {.fd = fd, .events = POLLIN};
			if (poll(&pf, 1, 250) > 0)
				(void)!recv(fd, buf, sizeof(buf) - 1, 0);
		}
		close(fd);
		assert_string_not_equal(box_ask(&b, "udpgot"), "udpgot=0");
		if (tools[i] == SBX_NET_TOOL_SLIRP4NETNS && lo)
			assert_string_equal(buf, "pong");
		net_release(&n);
		box_end(&b);
	}
}

/* The host's loopback (at the gateway address inside) only when asked. */
static void test_host_loopback(void **state)
{
	SKIP_UNLESS_ENABLED();
	size_t i = (size_t)(uintptr_t)*state;
	SKIP_UNLESS(have(tool_names[i]), "the tool is not installed");
	uint16_t hp = 0;
	int lfd = host_listener("127.0.0.1", &hp);
	pid_t srv = host_server(lfd, "host");
	for (int allow = 0; allow < 2; allow++) {
		struct box b = box_start();
		struct sbx_net_opts o = {.mode = SBX_NET_NAT,
		                         .tool = tools[i],
		                         .log_fd = -1,
		                         .allow_host_loopback = allow};
		struct sbx_net n;
		attach(&n, &b, &o);
		char gw[64];
		snprintf(gw, sizeof(gw), "%s", box_ask(&b, "gateway") + 3);
		assert_string_not_equal(gw, "none");
		const char *r = box_ask(&b, "connect %s %u", gw, hp);
		if (allow)
			assert_string_equal(r, "connect=ok host");
		else if (!strncmp(r, "connect=ok", 10))
			fail_msg("reached the host's loopback without allow_host_loopback: %s", r);
		net_release(&n);
		box_end(&b);
	}
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
	close(lfd);
}

/* The helper dies with a runner killed by SIGKILL (PDEATHSIG). */
static void test_runner_killed(void **state)
{
	SKIP_UNLESS_ENABLED();
	size_t i = (size_t)(uintptr_t)*state;
	SKIP_UNLESS(have(tool_names[i]), "the tool is not installed");
	int pp[2];
	assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
	pid_t runner = fork();
	assert_true(runner >= 0);
	if (runner == 0) {
		close(pp[0]);
		struct box b = box_start();
		struct sbx_net_opts o = {.mode = SBX_NET_NAT, .tool = tools[i], .log_fd = -1};
		struct sbx_net n;
		attach(&n, &b, &o);
		pid_t pids[2] = {n.helper_pid, b.pid};
		(void)!write(pp[1], pids, sizeof(pids));
		pause();
		_exit(0);
	}
	close(pp[1]);
	pid_t pids[2] = {0, 0};
	struct pollfd p = {.fd = pp[0], .events = POLLIN};
	assert_true(poll(&p, 1, 20000) > 0);
	assert_int_equal(read(pp[0], pids, sizeof(pids)), sizeof(pids));
	close(pp[0]);
	assert_false(process_gone(pids[0], 100));
	kill(runner, SIGKILL);
	waitpid(runner, NULL, 0);
	assert_true(process_gone(pids[0], 3000));
	assert_true(process_gone(pids[1], 3000));
}

/* The allowlist proxy inside a sandbox with no route out. */
static void test_proxy_in_namespace(void **state)
{
	SKIP_UNLESS(getenv("TRIMO_NET_REAL") && !strcmp(getenv("TRIMO_NET_REAL"), "1"),
	            "set TRIMO_NET_REAL=1");
	uint16_t ep = 0;
	int lfd = host_listener("127.0.0.1", &ep);
	pid_t srv = host_server(lfd, NULL);
	char hosts[] = "/tmp/trimo-net-real-hosts-XXXXXX";
	int hfd = mkstemp(hosts);
	dprintf(hfd, "127.0.0.1 allowed.test other.test\n");
	close(hfd);
	chmod(hosts, 0644);
	char rule[64];
	snprintf(rule, sizeof(rule), "allowed.test:%u", ep);
	char *allow[] = {rule, NULL};
	int logp[2];
	assert_int_equal(pipe2(logp, O_CLOEXEC | O_NONBLOCK), 0);
	struct box b = box_start();
	struct sbx_net_opts o = {.allow = allow, .hosts_file = hosts, .log_fd = logp[1]};
	struct sbx_net n;
	attach(&n, &b, &o);
	assert_string_equal(box_ask(&b, "ifaces"), "ifaces=lo");
	assert_string_equal(box_ask(&b, "proxy allowed.test:%u", ep), "proxy=200 hello");
	assert_string_equal(box_ask(&b, "proxy other.test:%u", ep), "proxy=HTTP/1.1 403 Forbidden");
	assert_string_equal(box_ask(&b, "connect 127.0.0.1 %u", ep), "connect=Connection refused");
	pid_t proxy = n.proxy_pid;
	struct sbx_net_stats st;
	net_detach(&n, &st);
	assert_int_equal(st.allowed, 1);
	assert_int_equal(st.refused, 1);
	assert_true(process_gone(proxy, 2000));
	char log[1024];
	ssize_t len = read(logp[0], log, sizeof(log) - 1);
	assert_true(len > 0);
	log[len] = '\0';
	char want[128];
	snprintf(want, sizeof(want), "egress refused: other.test:%u (not in the allowlist)\n", ep);
	assert_string_equal(log, want);
	net_release(&n);
	box_end(&b);
	unlink(hosts);
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
	close(lfd);
	close(logp[0]);
	close(logp[1]);
}

/* Without tun access the error names the cause and the fix. */
static void test_no_tun(void **state)
{
	SKIP_UNLESS(access("/dev/net/tun", R_OK | W_OK) < 0, "this user can open /dev/net/tun");
	struct sbx_net_opts o = {.mode = SBX_NET_NAT, .log_fd = -1};
	struct sbx_net n;
	struct sbx_err err = {0};
	net_init(&n);
	assert_true(net_prepare(&n, &o, &err) < 0);
	assert_non_null(strstr(err.msg, "cannot open /dev/net/tun: Permission denied"));
	assert_non_null(strstr(err.msg, "chmod 0666 /dev/net/tun"));
	net_release(&n);
}

#define FOR_TOOLS(t)                                                                               \
	cmocka_unit_test_prestate(t, (void *)0), cmocka_unit_test_prestate(t, (void *)1)

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    FOR_TOOLS(test_publish_two),
	    FOR_TOOLS(test_publish_udp),
	    FOR_TOOLS(test_host_loopback),
	    FOR_TOOLS(test_runner_killed),
	    cmocka_unit_test(test_proxy_in_namespace),
	    cmocka_unit_test(test_no_tun),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
