/* Network options, the checks made before the sandbox exists, the proxy's
 * environment, and attach/detach (see network.h for the call order). */
#include "runtime/network.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "runtime/network_internal.h"
#include "runtime/proxy.h"

void net_init(struct sbx_net *net)
{
	memset(net, 0, sizeof(*net));
	net->helper_log = -1;
	net->exit_fd = -1;
	net->opts.log_fd = -1;
}

static const char *const mode_names[] = {
    [SBX_NET_NONE] = "none",
    [SBX_NET_NAT] = "nat",
    [SBX_NET_HOST] = "host",
};

const char *net_mode_name(enum sbx_net_mode mode)
{
	return (size_t)mode < ELEMENTSOF(mode_names) ? mode_names[mode] : "?";
}

int net_parse_mode(const char *s, const char *what, enum sbx_net_mode *ret, struct sbx_err *err)
{
	for (size_t i = 0; i < ELEMENTSOF(mode_names); i++)
		if (s && !strcmp(s, mode_names[i])) {
			*ret = (enum sbx_net_mode)i;
			return 0;
		}
	return sbx_failx(err, EINVAL, "%s '%s': use none, nat or host", what, s ? s : "");
}

static int parse_port_num(const char *s, size_t n, uint16_t *ret)
{
	if (n == 0 || n > 5)
		return -EINVAL;
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

/* "IP" or "[IP6]" into p->addr, checked. */
static int parse_publish_ip(const char *s, size_t n, struct sbx_publish *p)
{
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(p->addr))
		return -EINVAL;
	char ip[64];
	memcpy(ip, s, n);
	ip[n] = '\0';
	unsigned char bin[16];
	if (inet_pton(AF_INET, ip, bin) == 1)
		p->family = AF_INET;
	else if (inet_pton(AF_INET6, ip, bin) == 1)
		p->family = AF_INET6;
	else
		return -EINVAL;
	memcpy(p->addr, ip, n + 1);
	return 0;
}

int net_parse_publish(const char *s, const char *what, struct sbx_publish *ret, struct sbx_err *err)
{
	struct sbx_publish p;
	memset(&p, 0, sizeof(p));
	size_t n = strlen(s);
	const char *slash = strrchr(s, '/');
	if (slash) {
		if (!strcmp(slash, "/udp"))
			p.udp = true;
		else if (strcmp(slash, "/tcp"))
			goto bad;
		n = (size_t)(slash - s);
	}
	const char *last = memrchr(s, ':', n);
	if (!last || parse_port_num(last + 1, n - (size_t)(last + 1 - s), &p.port) < 0)
		goto bad;
	const char *hp = s;
	const char *sep = memrchr(s, ':', (size_t)(last - s));
	if (sep) {
		if (parse_publish_ip(s, (size_t)(sep - s), &p) < 0) {
			char ip[64];
			snprintf(ip, sizeof(ip), "%.*s", (int)(sep - s), s);
			return sbx_failx(err, EINVAL, "%s '%s': '%s' is not an IP address", what, s,
			                 ip);
		}
		hp = sep + 1;
	} else {
		memcpy(p.addr, "127.0.0.1", sizeof("127.0.0.1"));
		p.family = AF_INET;
	}
	if (parse_port_num(hp, (size_t)(last - hp), &p.host_port) < 0)
		goto bad;
	*ret = p;
	return 0;
bad:
	return sbx_failx(err, EINVAL,
	                 "%s '%s': use [IP:]HOSTPORT:PORT[/udp], ports 1 to 65535 (e.g. 8080:3000)",
	                 what, s);
}

int net_opts_from_config(const struct sbx_cfg_network *cfg, struct sbx_net_opts *ret,
                         char ***ret_allow, struct sbx_err *err)
{
	_cleanup_strv_free_ char **allow = NULL;
	for (size_t i = 0; i < cfg->n_allow; i++) {
		const struct sbx_allow *a = &cfg->allow[i];
		bool v6 = a->kind == SBX_ALLOW_IP && strchr(a->host, ':');
		char rule[300];
		snprintf(rule, sizeof(rule), "%s%s%s:%u", v6 ? "[" : "", a->host, v6 ? "]" : "",
		         (unsigned)a->port);
		if (net_check_allow_rule(rule, "[network] allow", err) < 0)
			return -EINVAL;
		if (sbx_strv_push(&allow, rule) < 0)
			return sbx_fail(err, ENOMEM, "[network] allow");
	}
	memset(ret, 0, sizeof(*ret));
	ret->mode = cfg->mode;
	ret->publish = cfg->publish;
	ret->n_publish = cfg->n_publish;
	ret->allow_host_loopback = cfg->allow_host_loopback;
	ret->allow = allow;
	ret->log_fd = -1;
	*ret_allow = TAKE_PTR(allow);
	return 0;
}

int net_check_allow_rule(const char *rule, const char *what, struct sbx_err *err)
{
	struct proxy_rule r;
	return proxy_rule_parse(rule, what, &r, err);
}

bool net_wants_netns(const struct sbx_net *net)
{
	return net->opts.mode != SBX_NET_HOST;
}

const char *net_host_warning(void)
{
	return "--network host: the sandbox shares the host's network namespace: it "
	       "can reach every host service (127.0.0.1 included) and bind host ports; use it "
	       "for debugging only";
}

static const char *tool_name(enum sbx_net_tool t)
{
	return t == SBX_NET_TOOL_SLIRP4NETNS ? "slirp4netns" : "pasta";
}

/* pasta when installed, else slirp4netns (or the one asked for). */
static int find_tool(enum sbx_net_tool want, enum sbx_net_tool *ret, char *path, size_t size,
                     struct sbx_err *err)
{
	if (want != SBX_NET_TOOL_SLIRP4NETNS && sbx_find_in_path("pasta", path, size)) {
		*ret = SBX_NET_TOOL_PASTA;
		return 0;
	}
	if (want != SBX_NET_TOOL_PASTA && sbx_find_in_path("slirp4netns", path, size)) {
		*ret = SBX_NET_TOOL_SLIRP4NETNS;
		return 0;
	}
	if (want == SBX_NET_TOOL_AUTO)
		return sbx_failx(err, ENOENT,
		                 "network nat: neither pasta nor slirp4netns is installed (install "
		                 "the package passt, or slirp4netns; or use --network none)");
	return sbx_failx(err, ENOENT, "network nat: %s is not installed (install %s)",
	                 tool_name(want), want == SBX_NET_TOOL_PASTA ? "the package passt" : "it");
}

/* Both tools open /dev/net/tun in our mount namespace: try it now, so the
 * error comes before the sandbox starts and names the fix. */
static int check_tun(enum sbx_net_tool tool, struct sbx_err *err)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	int e = errno;
	if (e == ENOENT || e == ENODEV || e == ENXIO)
		return sbx_fail(
		    err, e,
		    "network nat: %s needs /dev/net/tun, which is missing here (load the "
		    "tun module: modprobe tun; or use --network none)",
		    tool_name(tool));
	return sbx_failx(err, e,
	                 "network nat: %s cannot open /dev/net/tun: %s (the device is not "
	                 "accessible to uid %u; most distributions make it mode 0666: chmod 0666 "
	                 "/dev/net/tun, or run as root, or use --network none)",
	                 tool_name(tool), sbx_strerror(e), (unsigned)getuid());
}

int net_port_probe(const char *ip, uint16_t port, bool udp)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = sizeof(*a4);
	if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
	} else if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		len = sizeof(*a6);
	} else {
		return -EINVAL;
	}
	_cleanup_close_ int fd =
	    socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	/* like the tools: a port in TIME_WAIT is free, a listener is not */
	if (!udp)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return -errno;
	return 0;
}

static int check_publish(const struct sbx_net_opts *o, struct sbx_err *err)
{
	for (size_t i = 0; i < o->n_publish; i++) {
		const struct sbx_publish *p = &o->publish[i];
		const char *proto = p->udp ? "udp" : "tcp";
		for (size_t j = 0; j < i; j++)
			if (o->publish[j].host_port == p->host_port && o->publish[j].udp == p->udp)
				return sbx_failx(err, EINVAL,
				                 "--publish: host port %u/%s is given "
				                 "twice",
				                 (unsigned)p->host_port, proto);
		int r = net_port_probe(p->addr, p->host_port, p->udp);
		if (r == -EADDRINUSE)
			return sbx_failx(
			    err, EADDRINUSE,
			    "--publish %s:%u:%u/%s: host port %u/%s on %s is already in "
			    "use (choose another host port)",
			    p->addr, (unsigned)p->host_port, (unsigned)p->port, proto,
			    (unsigned)p->host_port, proto, p->addr);
		if (r == -EACCES)
			return sbx_failx(err, EACCES,
			                 "--publish %s:%u:%u/%s: binding host port %u needs root "
			                 "(ports below net.ipv4.ip_unprivileged_port_start)",
			                 p->addr, (unsigned)p->host_port, (unsigned)p->port, proto,
			                 (unsigned)p->host_port);
		if (r < 0)
			return sbx_fail(err, -r, "--publish %s:%u:%u/%s: bind the host port",
			                p->addr, (unsigned)p->host_port, (unsigned)p->port, proto);
	}
	return 0;
}

static int check_opts(const struct sbx_net_opts *o, bool proxy, struct sbx_err *err)
{
	if (o->n_publish && o->mode != SBX_NET_NAT)
		return sbx_failx(err, EINVAL,
		                 "--publish needs --network nat (the sandbox's network "
		                 "is %s)",
		                 net_mode_name(o->mode));
	if (proxy && o->mode != SBX_NET_NONE)
		return sbx_failx(err, EINVAL,
		                 "--allow needs --network none: with %s the sandbox has its own "
		                 "route out, which the allowlist exists to take away",
		                 net_mode_name(o->mode));
	if (o->allow_host_loopback && o->mode != SBX_NET_NAT && !proxy)
		return sbx_failx(err, EINVAL,
		                 "--allow-host-loopback needs --network nat or an --allow list");
	return 0;
}

static int prepare_proxy(struct sbx_net *net, struct sbx_err *err)
{
	net->rules = calloc(1, sizeof(*net->rules));
	if (!net->rules)
		return sbx_fail(err, ENOMEM, "allow");
	int r = proxy_rules_parse(net->opts.allow, net->rules, err);
	if (r < 0)
		return r;
	const char *hosts = net->opts.hosts_file;
	if (!hosts)
		hosts = getenv("TRIMO_SBX_HOSTS_FILE");
	if (hosts && *hosts) {
		if ((size_t)snprintf(net->hosts_file, sizeof(net->hosts_file), "%s", hosts) >=
		    sizeof(net->hosts_file))
			return sbx_failx(err, ENAMETOOLONG, "hosts file '%s': name too long",
			                 hosts);
		/* read it now: a typo is an error before the sandbox starts */
		struct proxy_host_entry *v = NULL;
		size_t n = 0;
		r = proxy_hosts_load(net->hosts_file, &v, &n, err);
		free(v);
		if (r < 0)
			return r;
	}
	net->stats = mmap(NULL, sizeof(*net->stats), PROT_READ | PROT_WRITE,
	                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (net->stats == MAP_FAILED) {
		net->stats = NULL;
		return sbx_fail(err, errno, "proxy: shared counters");
	}
	return 0;
}

int net_prepare(struct sbx_net *net, const struct sbx_net_opts *opts, struct sbx_err *err)
{
	net->opts = *opts;
	if (!net->opts.proxy_port)
		net->opts.proxy_port = SBX_NET_PROXY_PORT;
	if (!net->opts.ready_timeout_ms)
		net->opts.ready_timeout_ms = 10000;
	bool proxy = sbx_strv_len(opts->allow) > 0;
	int r = check_opts(opts, proxy, err);
	if (r < 0)
		return r;
	if (opts->mode == SBX_NET_NAT) {
		r = check_publish(opts, err);
		if (r >= 0)
			r = find_tool(opts->tool, &net->tool, net->tool_path,
			              sizeof(net->tool_path), err);
		if (r >= 0)
			r = check_tun(net->tool, err);
		if (r < 0)
			return r;
	}
	return proxy ? prepare_proxy(net, err) : 0;
}

static int env_set(char ***env, const char *key, const char *value, struct sbx_err *err)
{
	size_t kl = strlen(key);
	_cleanup_free_ char *kv = NULL;
	if (asprintf(&kv, "%s=%s", key, value) < 0)
		return sbx_fail(err, ENOMEM, "environment");
	for (size_t i = 0; *env && (*env)[i]; i++)
		if (!strncmp((*env)[i], key, kl) && (*env)[i][kl] == '=') {
			free((*env)[i]);
			(*env)[i] = TAKE_PTR(kv);
			return 0;
		}
	if (sbx_strv_push(env, kv) < 0)
		return sbx_fail(err, ENOMEM, "environment");
	return 0;
}

int net_env_push(const struct sbx_net *net, char ***env, struct sbx_err *err)
{
	if (!net->rules)
		return 0;
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)net->opts.proxy_port);
	static const char *const proxy_keys[] = {"HTTPS_PROXY", "HTTP_PROXY", "https_proxy",
	                                         "http_proxy"};
	for (size_t i = 0; i < ELEMENTSOF(proxy_keys); i++) {
		int r = env_set(env, proxy_keys[i], url, err);
		if (r < 0)
			return r;
	}
	int r = env_set(env, "NO_PROXY", "localhost,127.0.0.1,::1", err);
	if (r >= 0)
		r = env_set(env, "no_proxy", "localhost,127.0.0.1,::1", err);
	return r;
}

int net_attach(struct sbx_net *net, pid_t pid, struct sbx_err *err)
{
	if (net->attached)
		return 0;
	net->attached = true;
	int r = 0;
	if (net->opts.mode == SBX_NET_NAT)
		r = net_tool_start(net, pid, err);
	if (r >= 0 && net->rules) {
		_cleanup_close_ int fd = -1;
		r = net_listen_in_ns(pid, net->opts.proxy_port, &fd, err);
		if (r >= 0)
			r = net_proxy_start(net, fd, err);
		if (r < 0)
			sbx_wrap(err, "egress proxy");
	}
	if (r < 0)
		net_detach(net, NULL);
	return r;
}

void net_stats(const struct sbx_net *net, struct sbx_net_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!net->stats)
		return;
	ret->allowed = __atomic_load_n(&net->stats->allowed, __ATOMIC_RELAXED);
	ret->refused = __atomic_load_n(&net->stats->refused, __ATOMIC_RELAXED);
	ret->failed = __atomic_load_n(&net->stats->failed, __ATOMIC_RELAXED);
}

void net_detach(struct sbx_net *net, struct sbx_net_stats *ret_stats)
{
	int saved = errno;
	if (net->exit_fd >= 0) {
		close(net->exit_fd); /* slirp4netns leaves on its own ... */
		net->exit_fd = -1;
	}
	/* ... and is killed all the same; both first, then reap: the kernel
	 * takes tens of ms to tear down a dead helper's tap device */
	if (net->proxy_pid > 0)
		kill(net->proxy_pid, SIGKILL);
	if (net->helper_pid > 0)
		kill(net->helper_pid, SIGKILL);
	helper_kill(&net->proxy_pid);
	helper_kill(&net->helper_pid);
	if (net->api_dir[0]) {
		struct sbx_err ignored;
		sbx_rm_rf_at(AT_FDCWD, net->api_dir, &ignored);
		net->api_dir[0] = '\0';
	}
	if (ret_stats)
		net_stats(net, ret_stats);
	net->attached = false;
	errno = saved;
}

void net_release(struct sbx_net *net)
{
	net_detach(net, NULL);
	if (net->helper_log >= 0)
		close(net->helper_log);
	net->helper_log = -1;
	proxy_rules_free(net->rules);
	free(net->rules);
	net->rules = NULL;
	if (net->stats)
		munmap(net->stats, sizeof(*net->stats));
	net->stats = NULL;
}

int net_check_host(char *detail, size_t size, struct sbx_err *err)
{
	enum sbx_net_tool tool;
	char path[256];
	if (size)
		detail[0] = '\0';
	int r = find_tool(SBX_NET_TOOL_AUTO, &tool, path, sizeof(path), err);
	if (r < 0)
		return r;
	snprintf(detail, size, "%s (%s)", tool_name(tool), path);
	return check_tun(tool, err);
}
