/* runtime/network and runtime/proxy without namespaces or root: option
 * parsing, the allowlist's decisions, request heads, the hosts file, the
 * checks made before a sandbox starts, and the proxy itself serving real
 * connections on this host's loopback (test servers on 127.0.0.1 and
 * 127.0.0.2, names mapped to them by a hosts file). */
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "runtime/network.h"
#include "runtime/proxy.h"

static void test_parse_mode(void **state)
{
	struct sbx_err err = {0};
	enum sbx_net_mode m;
	assert_int_equal(net_parse_mode("nat", "--network", &m, &err), 0);
	assert_int_equal(m, SBX_NET_NAT);
	assert_int_equal(net_parse_mode("host", "--network", &m, &err), 0);
	assert_int_equal(m, SBX_NET_HOST);
	assert_int_equal(net_parse_mode("bridge", "--network", &m, &err), -EINVAL);
	assert_string_equal(err.msg, "--network 'bridge': use none, nat or host");
}

static void test_parse_publish(void **state)
{
	struct sbx_err err = {0};
	struct sbx_publish p;
	assert_int_equal(net_parse_publish("8080:3000", "--publish", &p, &err), 0);
	assert_string_equal(p.addr, "127.0.0.1");
	assert_int_equal(p.host_port, 8080);
	assert_int_equal(p.port, 3000);
	assert_false(p.udp);
	assert_int_equal(net_parse_publish("0.0.0.0:53:5353/udp", "--publish", &p, &err), 0);
	assert_string_equal(p.addr, "0.0.0.0");
	assert_true(p.udp);
	assert_int_equal(net_parse_publish("[::1]:8080:80/tcp", "--publish", &p, &err), 0);
	assert_string_equal(p.addr, "::1");
	assert_int_equal(p.family, AF_INET6);
	assert_int_equal(p.port, 80);
	const char *bad[] = {"8080",  "0:3000", "8080:70000",          "8080:3000/sctp", ":3000",
	                     "8080:", "a:b",    "1.2.3.4:8080:3000:1", "8080:30x0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(net_parse_publish(bad[i], "--publish", &p, &err), -EINVAL);
	net_parse_publish("8080", "--publish", &p, &err);
	assert_string_equal(err.msg, "--publish '8080': use [IP:]HOSTPORT:PORT[/udp], ports 1 to "
	                             "65535 (e.g. 8080:3000)");
	assert_int_equal(net_parse_publish("localhost:8080:3000", "publish", &p, &err), -EINVAL);
	assert_string_equal(err.msg, "publish 'localhost:8080:3000': 'localhost' is not an IP "
	                             "address");
}

static void test_opts_from_config(void **state)
{
	struct sbx_publish pub = {
	    .family = AF_INET, .addr = "127.0.0.1", .host_port = 8080, .port = 3000};
	struct sbx_allow allow[] = {{SBX_ALLOW_NAME, "api.anthropic.com", 443},
	                            {SBX_ALLOW_SUFFIX, "*.npmjs.org", 443},
	                            {SBX_ALLOW_IP, "2001:db8::1", 8443}};
	struct sbx_cfg_network cfg = {.mode = SBX_NET_NAT,
	                              .publish = &pub,
	                              .n_publish = 1,
	                              .allow = allow,
	                              .n_allow = 3,
	                              .allow_host_loopback = true};
	struct sbx_net_opts o;
	char **rules = NULL;
	struct sbx_err err = {0};
	assert_int_equal(net_opts_from_config(&cfg, &o, &rules, &err), 0);
	assert_int_equal(o.mode, SBX_NET_NAT);
	assert_ptr_equal(o.publish, &pub);
	assert_true(o.allow_host_loopback);
	assert_int_equal(o.log_fd, -1);
	assert_ptr_equal(o.allow, rules);
	assert_string_equal(rules[0], "api.anthropic.com:443");
	assert_string_equal(rules[1], "*.npmjs.org:443");
	assert_string_equal(rules[2], "[2001:db8::1]:8443");
	assert_null(rules[3]);
	sbx_strv_free(rules);
}

static void test_rules_parse(void **state)
{
	struct sbx_err err = {0};
	struct proxy_rule r;
	assert_int_equal(proxy_rule_parse("API.Anthropic.com:443", "allow", &r, &err), 0);
	assert_string_equal(r.host, "api.anthropic.com");
	assert_int_equal(r.port, 443);
	assert_false(r.wildcard);
	assert_int_equal(proxy_rule_parse("*.npmjs.org:443", "allow", &r, &err), 0);
	assert_true(r.wildcard);
	assert_string_equal(r.host, "npmjs.org");
	assert_int_equal(proxy_rule_parse("[2001:db8::1]:443", "allow", &r, &err), 0);
	assert_true(r.is_ip);
	assert_int_equal(proxy_rule_parse("github.com", "allow", &r, &err), -EINVAL);
	assert_string_equal(err.msg, "allow 'github.com': name the port (e.g. github.com:443)");
	assert_int_equal(proxy_rule_parse("*.10.0.0.1:443", "allow", &r, &err), -EINVAL);
	const char *bad[] = {
	    "*:443",   "*.:443",           "a..b:443",      "foo.*.com:443",   "x:0",
	    "x:65536", "ex ample.com:443", "2130706433:80", "http://x.com:443"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(proxy_rule_parse(bad[i], "allow", &r, &err), -EINVAL);
	assert_int_equal(net_check_allow_rule("*.npmjs.org:443", "allow", &err), 0);
}

static int target(const char *s, struct proxy_target *t)
{
	return proxy_target_parse(s, strlen(s), 0, t);
}

static void test_target_parse(void **state)
{
	struct proxy_target t;
	assert_int_equal(target("Example.COM.:443", &t), 0);
	assert_string_equal(t.host, "example.com");
	assert_false(t.is_ip);
	assert_int_equal(target("[::1]:8443", &t), 0);
	assert_true(t.is_ip);
	assert_string_equal(t.host, "::1");
	assert_int_equal(t.port, 8443);
	assert_int_equal(target("127.0.0.1:80", &t), 0);
	assert_true(t.is_ip);
	/* numbers a resolver would turn into an address: never a name */
	const char *bad[] = {"2130706433:80", "0x7f.1:80",  "127.1:80",  "0177.0.0.1:80",
	                     "::1:443",       "host:+80",   "host:",     "host",
	                     "a..b:443",      "ho st:443",  "[::1]443",  "[nothex]:443",
	                     "x@y.com:443",   "host:443/x", "host:0443x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(target(bad[i], &t), -EINVAL);
	assert_int_equal(proxy_target_parse("example.org", 11, 80, &t), 0);
	assert_int_equal(t.port, 80);
}

static void test_rules_match(void **state)
{
	char *allow[] = {"api.anthropic.com:443", "*.npmjs.org:443", "203.0.113.7:8443",
	                 "[2001:db8::1]:443", NULL};
	struct proxy_rules rules;
	struct sbx_err err = {0};
	assert_int_equal(proxy_rules_parse(allow, &rules, &err), 0);
	struct {
		const char *target;
		bool ok;
	} cases[] = {
	    {"api.anthropic.com:443", true},      {"API.ANTHROPIC.COM.:443", true},
	    {"api.anthropic.com:80", false},      {"anthropic.com:443", false},
	    {"xapi.anthropic.com:443", false},    {"registry.npmjs.org:443", true},
	    {"a.b.npmjs.org:443", true},          {"npmjs.org:443", false},
	    {"evilnpmjs.org:443", false},         {"npmjs.org.evil.com:443", false},
	    {"registry.npmjs.org:80", false},     {"203.0.113.7:8443", true},
	    {"203.0.113.7:443", false},           {"203.0.113.8:8443", false},
	    {"[2001:db8::1]:443", true},          {"[2001:db8:0::1]:443", true},
	    {"[::ffff:203.0.113.7]:8443", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct proxy_target t;
		assert_int_equal(target(cases[i].target, &t), 0);
		if (proxy_rules_match(&rules, &t) != cases[i].ok)
			fail_msg("%s: expected %s", cases[i].target,
			         cases[i].ok ? "allowed" : "refused");
	}
	proxy_rules_free(&rules);
}

static bool permitted(const char *ip, bool lo)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		fail_msg("bad test address %s", ip);
	return proxy_addr_permitted((struct sockaddr *)&ss, lo);
}

static void test_addr_permitted(void **state)
{
	assert_true(permitted("93.184.216.34", false));
	assert_true(permitted("10.1.2.3", false));
	assert_false(permitted("127.0.0.1", false));
	assert_true(permitted("127.0.0.1", true));
	assert_false(permitted("127.9.9.9", false));
	assert_false(permitted("0.0.0.0", true));
	assert_false(permitted("169.254.169.254", true));
	assert_false(permitted("224.0.0.1", true));
	assert_false(permitted("255.255.255.255", true));
	assert_false(permitted("::1", false));
	assert_true(permitted("::1", true));
	assert_false(permitted("::", true));
	assert_false(permitted("fe80::1", true));
	assert_false(permitted("::ffff:127.0.0.1", false));
	assert_false(permitted("::ffff:169.254.169.254", true));
	assert_true(permitted("2606:4700::1", false));
}

static void test_request_parse(void **state)
{
	struct proxy_request req;
	const char *c = "CONNECT api.anthropic.com:443 HTTP/1.1\r\nHost: x\r\n\r\nTLSDATA";
	assert_int_equal(proxy_request_parse(c, strlen(c), 8192, &req), 1);
	assert_int_equal(req.kind, PROXY_REQ_CONNECT);
	assert_string_equal(req.target.host, "api.anthropic.com");
	assert_int_equal(req.head_len, strlen(c) - strlen("TLSDATA"));
	assert_int_equal(proxy_request_parse(c, 20, 8192, &req), 0);
	assert_int_equal(proxy_request_parse(c, 20, 20, &req), -E2BIG);

	const char *h = "GET http://Example.org/a?b=1 HTTP/1.1\r\nHost: example.org\r\n"
	                "Proxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\n"
	                "Accept: */*\r\n\r\n";
	assert_int_equal(proxy_request_parse(h, strlen(h), 8192, &req), 1);
	assert_int_equal(req.kind, PROXY_REQ_HTTP);
	assert_string_equal(req.target.host, "example.org");
	assert_int_equal(req.target.port, 80);
	assert_string_equal(req.rewritten,
	                    "GET /a?b=1 HTTP/1.1\r\nHost: example.org\r\nAccept: */*\r\n\r\n");
	free(req.rewritten);
	const char *h2 = "POST http://example.org:8080 HTTP/1.0\n\n";
	assert_int_equal(proxy_request_parse(h2, strlen(h2), 8192, &req), 1);
	assert_int_equal(req.target.port, 8080);
	assert_string_equal(req.rewritten, "POST / HTTP/1.0\r\n\r\n");
	free(req.rewritten);

	const char *proto[] = {"GET / HTTP/1.1\r\n\r\n", "GET https://x.org/ HTTP/1.1\r\n\r\n",
	                       "connect x.org:443 HTTP/1.1\r\n\r\n"};
	for (size_t i = 0; i < sizeof(proto) / sizeof(proto[0]); i++)
		assert_int_equal(proxy_request_parse(proto[i], strlen(proto[i]), 8192, &req),
		                 -EPROTO);
	const char *bad[] = {"CONNECT x.org:443\r\n\r\n",
	                     "CONNECT  x.org:443 HTTP/1.1\r\n\r\n",
	                     "CONNECT x.org:443 HTTP/2.0\r\n\r\n",
	                     "GET http://allowed.org@evil.org/ HTTP/1.1\r\n\r\n",
	                     "CONNECT x.org HTTP/1.1\r\n\r\n",
	                     "C(NNECT x.org:1 HTTP/1.1\r\n\r\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (proxy_request_parse(bad[i], strlen(bad[i]), 8192, &req) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
}

static char hosts_path[64];

static void write_hosts(void)
{
	strcpy(hosts_path, "/tmp/trimo-net-hosts-XXXXXX");
	int fd = mkstemp(hosts_path);
	assert_true(fd >= 0);
	const char *text = "# test names\n127.0.0.1 allowed.test a.wild.test  # comment\n"
	                   "127.0.0.2\tother.test\n::1 six.test\nnot-an-ip bogus.test\n";
	assert_int_equal(sbx_write_all(fd, text, strlen(text)), 0);
	close(fd);
}

static void test_hosts_file(void **state)
{
	write_hosts();
	struct proxy_host_entry *h = NULL;
	size_t n = 0;
	struct sbx_err err = {0};
	assert_int_equal(proxy_hosts_load(hosts_path, &h, &n, &err), 0);
	assert_int_equal(n, 4);
	struct sockaddr_storage out[4];
	assert_int_equal(proxy_hosts_lookup(h, n, "a.wild.test", out, 4), 1);
	assert_int_equal(out[0].ss_family, AF_INET);
	assert_int_equal(proxy_hosts_lookup(h, n, "six.test", out, 4), 1);
	assert_int_equal(out[0].ss_family, AF_INET6);
	assert_int_equal(proxy_hosts_lookup(h, n, "bogus.test", out, 4), 0);
	free(h);
	unlink(hosts_path);
	assert_int_equal(proxy_hosts_load("/nonexistent/hosts", &h, &n, &err), -ENOENT);
}

static int listener(const char *ip, uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	inet_pton(AF_INET, ip, &a.sin_addr);
	a.sin_port = htons(*port);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	socklen_t len = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	return fd;
}

static void test_prepare_checks(void **state)
{
	struct sbx_err err = {0};
	struct sbx_net net;
	uint16_t port = 0;
	int busy = listener("127.0.0.1", &port);
	struct sbx_publish pub = {.addr = "127.0.0.1", .host_port = port, .port = 3000};
	struct sbx_net_opts o = {.mode = SBX_NET_NAT, .publish = &pub, .n_publish = 1};
	net_init(&net);
	assert_int_equal(net_prepare(&net, &o, &err), -EADDRINUSE);
	char want[200];
	snprintf(want, sizeof(want),
	         "--publish 127.0.0.1:%u:3000/tcp: host port %u/tcp on 127.0.0.1 is already in "
	         "use (choose another host port)",
	         port, port);
	assert_string_equal(err.msg, want);
	net_release(&net);
	close(busy);

	o.mode = SBX_NET_NONE;
	net_init(&net);
	assert_int_equal(net_prepare(&net, &o, &err), -EINVAL);
	assert_string_equal(err.msg,
	                    "--publish needs --network nat (the sandbox's network is none)");
	net_release(&net);

	char *allow[] = {"x.org:443", NULL};
	struct sbx_net_opts o2 = {.mode = SBX_NET_NAT, .allow = allow};
	net_init(&net);
	assert_int_equal(net_prepare(&net, &o2, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--allow needs --network none"));
	net_release(&net);

	struct sbx_net_opts o3 = {.mode = SBX_NET_HOST};
	net_init(&net);
	assert_int_equal(net_prepare(&net, &o3, &err), 0);
	assert_false(net_wants_netns(&net));
	net_release(&net);
}

static void test_env(void **state)
{
	struct sbx_err err = {0};
	struct sbx_net net;
	char *allow[] = {"x.org:443", NULL};
	struct sbx_net_opts o = {.allow = allow, .hosts_file = "", .log_fd = -1};
	net_init(&net);
	assert_int_equal(net_prepare(&net, &o, &err), 0);
	char **env = NULL;
	assert_int_equal(sbx_strv_push(&env, "PATH=/bin"), 0);
	assert_int_equal(sbx_strv_push(&env, "HTTPS_PROXY=http://evil:1"), 0);
	assert_int_equal(net_env_push(&net, &env, &err), 0);
	assert_int_equal(sbx_strv_len(env), 7);
	assert_string_equal(env[1], "HTTPS_PROXY=http://127.0.0.1:3128");
	assert_string_equal(env[3], "https_proxy=http://127.0.0.1:3128");
	assert_string_equal(env[6], "no_proxy=localhost,127.0.0.1,::1");
	sbx_strv_free(env);
	net_release(&net);

	/* no allowlist: no variables */
	struct sbx_net_opts none = {.log_fd = -1};
	net_init(&net);
	assert_int_equal(net_prepare(&net, &none, &err), 0);
	env = NULL;
	assert_int_equal(net_env_push(&net, &env, &err), 0);
	assert_null(env);
	net_release(&net);
}

/* An echo server: every connection gets back what it sends. */
static pid_t echo_server(int lfd)
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
		char buf[4096];
		ssize_t n;
		while ((n = read(c, buf, sizeof(buf))) > 0)
			if (sbx_write_all(c, buf, (size_t)n) < 0)
				break;
		close(c);
	}
}

/* Send req to the proxy; the answer's head into resp; the socket stays
 * open for the tunnel. */
static int ask(uint16_t pport, const char *req, char *resp, size_t size)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(pport),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(sbx_write_all(fd, req, strlen(req)), 0);
	size_t len = 0;
	resp[0] = '\0';
	while (len + 1 < size && !strstr(resp, "\r\n\r\n")) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 10000) <= 0)
			fail_msg("no answer to %s", req);
		ssize_t n = read(fd, resp + len, 1);
		if (n <= 0)
			break;
		len += (size_t)n;
		resp[len] = '\0';
	}
	return fd;
}

static void expect_echo(int fd, const char *text)
{
	assert_int_equal(sbx_write_all(fd, text, strlen(text)), 0);
	char buf[512] = "";
	size_t len = 0;
	while (len < strlen(text)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		assert_true(poll(&p, 1, 10000) > 0);
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		assert_true(n > 0);
		len += (size_t)n;
	}
	buf[len] = '\0';
	assert_string_equal(buf, text);
}

static void expect_status(uint16_t pport, const char *req, const char *status)
{
	char resp[1024];
	int fd = ask(pport, req, resp, sizeof(resp));
	if (strncmp(resp, status, strlen(status)))
		fail_msg("%s -> %s (expected %s)", req, resp, status);
	close(fd);
}

static void test_proxy_serves(void **state)
{
	uint16_t eport = 0, oport = 0, pport = 0;
	int efd = listener("127.0.0.1", &eport);
	int ofd = listener("127.0.0.2", &oport);
	int pfd = listener("127.0.0.1", &pport);
	pid_t echo = echo_server(efd);
	write_hosts();
	char r1[64], r2[64], r3[64];
	snprintf(r1, sizeof(r1), "allowed.test:%u", eport);
	snprintf(r2, sizeof(r2), "*.wild.test:%u", eport);
	snprintf(r3, sizeof(r3), "localhost:%u", eport);
	char *allow[] = {r1, r2, r3, NULL};
	int logp[2];
	assert_int_equal(pipe2(logp, O_CLOEXEC | O_NONBLOCK), 0);
	struct sbx_net_opts o = {.allow = allow, .hosts_file = hosts_path, .log_fd = logp[1]};
	struct sbx_net net;
	struct sbx_err err = {0};
	net_init(&net);
	assert_int_equal(net_prepare(&net, &o, &err), 0);
	int net_proxy_start(struct sbx_net * net, int listen_fd, struct sbx_err *err);
	assert_int_equal(net_proxy_start(&net, pfd, &err), 0);
	close(pfd);

	char req[256], resp[1024];
	snprintf(req, sizeof(req), "CONNECT allowed.test:%u HTTP/1.1\r\nHost: x\r\n\r\n", eport);
	int t = ask(pport, req, resp, sizeof(resp));
	assert_string_equal(resp, "HTTP/1.1 200 Connection established\r\n\r\n");
	expect_echo(t, "ping");
	/* a second CONNECT inside the tunnel is data for the allowed server */
	snprintf(req, sizeof(req), "CONNECT other.test:%u HTTP/1.1\r\n\r\n", oport);
	expect_echo(t, req);
	close(t);
	snprintf(req, sizeof(req), "CONNECT a.wild.test:%u HTTP/1.1\r\n\r\n", eport);
	t = ask(pport, req, resp, sizeof(resp));
	assert_string_equal(resp, "HTTP/1.1 200 Connection established\r\n\r\n");
	expect_echo(t, "wild");
	close(t);
	snprintf(req, sizeof(req),
	         "GET http://allowed.test:%u/x HTTP/1.1\r\n"
	         "Proxy-Authorization: Basic eA==\r\nAccept: */*\r\n\r\n",
	         eport);
	t = ask(pport, req, resp, sizeof(resp));
	assert_string_equal(resp, "GET /x HTTP/1.1\r\nAccept: */*\r\n\r\n");
	close(t);

	snprintf(req, sizeof(req), "CONNECT other.test:%u HTTP/1.1\r\n\r\n", oport);
	expect_status(pport, req, "HTTP/1.1 403 ");
	snprintf(req, sizeof(req), "CONNECT allowed.test:%u HTTP/1.1\r\n\r\n", oport);
	expect_status(pport, req, "HTTP/1.1 403 ");
	snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n", eport);
	expect_status(pport, req, "HTTP/1.1 403 ");
	snprintf(req, sizeof(req), "CONNECT localhost:%u HTTP/1.1\r\n\r\n", eport);
	expect_status(pport, req, "HTTP/1.1 403 ");
	expect_status(pport, "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ");

	struct pollfd p = {.fd = ofd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 0); /* nobody ever connected to other.test */

	struct sbx_net_stats st;
	net_detach(&net, &st);
	assert_int_equal(st.allowed, 3);
	assert_int_equal(st.refused, 5);
	assert_int_equal(st.failed, 0);
	char log[4096];
	ssize_t n = read(logp[0], log, sizeof(log) - 1);
	assert_true(n > 0);
	log[n] = '\0';
	char want[128];
	snprintf(want, sizeof(want), "egress refused: other.test:%u (not in the allowlist)\n",
	         oport);
	assert_non_null(strstr(log, want));
	snprintf(want, sizeof(want), "egress refused: allowed.test:%u (not in the allowlist)\n",
	         oport);
	assert_non_null(strstr(log, want));
	snprintf(want, sizeof(want), "egress refused: 127.0.0.1:%u (not in the allowlist)\n",
	         eport);
	assert_non_null(strstr(log, want));
	snprintf(want, sizeof(want), "egress refused: localhost:%u (resolves to a loopback", eport);
	assert_non_null(strstr(log, want));
	assert_non_null(strstr(log, "egress refused: bad request \"GET / HTTP/1.1\"\n"));

	net_release(&net);
	kill(echo, SIGKILL);
	waitpid(echo, NULL, 0);
	close(efd);
	close(ofd);
	close(logp[0]);
	close(logp[1]);
	unlink(hosts_path);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_mode),
	    cmocka_unit_test(test_parse_publish),
	    cmocka_unit_test(test_opts_from_config),
	    cmocka_unit_test(test_rules_parse),
	    cmocka_unit_test(test_target_parse),
	    cmocka_unit_test(test_rules_match),
	    cmocka_unit_test(test_addr_permitted),
	    cmocka_unit_test(test_request_parse),
	    cmocka_unit_test(test_hosts_file),
	    cmocka_unit_test(test_prepare_checks),
	    cmocka_unit_test(test_env),
	    cmocka_unit_test(test_proxy_serves),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
