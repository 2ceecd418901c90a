/* One sandbox's network, host side: the user-mode NAT helper (pasta, else
 * slirp4netns), published ports, and the egress allowlist proxy.
 *
 * Modes:
 *   none  the sandbox's own network namespace with lo only (the runner
 *         already does this; nothing to attach).
 *   nat   the same namespace plus a tap interface served by pasta (or
 *         slirp4netns) started by us, in the foreground, killed with the
 *         sandbox; published ports are the only host ports it binds, and
 *         the host's loopback is unreachable unless allow_host_loopback.
 *   host  the host's namespace: the runner leaves out CLONE_NEWNET and
 *         prints net_host_warning() at every start.
 *
 * With an allowlist (`allow`, mode none only) the sandbox has no route out;
 * a small CONNECT proxy (runtime/proxy.h) runs as a child of the runner on
 * the host side and accepts on 127.0.0.1:3128 *inside* the sandbox's
 * namespace: a helper joins the namespace, creates and binds the listening
 * socket there and hands it back over SCM_RIGHTS (a socket keeps the
 * namespace it was made in).  net_env_push() adds HTTPS_PROXY & co.
 *
 * The runner's call order (runtime/run.c):
 *
 *   net_prepare(&net, &opts, err)   before clone: validates, finds the tool,
 *                                   checks /dev/net/tun and that every
 *                                   published host port is free, parses
 *                                   the allowlist
 *   net_env_push(&net, &env, err)   before clone: the proxy variables
 *   clone(... CLONE_NEWNET unless net_wants_netns() is false ...)
 *   hooks.before_start:
 *     net_attach(&net, pid, err)    starts the helper and/or the proxy and
 *                                   waits until the interface is ready
 *   ... the sandbox runs ...
 *   net_detach(&net, &stats)        kills what net_attach started (by the
 *                                   pids we started, never by name), reaps
 *   net_release(&net)               frees; also detaches (early returns)
 *
 * Every helper is a child of the runner with PR_SET_PDEATHSIG(SIGKILL),
 * so a runner killed with SIGKILL takes them along.  Nothing here prints.
 */
#ifndef SBX_RUNTIME_NETWORK_H
#define SBX_RUNTIME_NETWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "config/config.h" /* enum sbx_net_mode, struct sbx_publish, sbx_cfg_network */

enum sbx_net_tool {
	SBX_NET_TOOL_AUTO = 0, /* pasta when installed, else slirp4netns */
	SBX_NET_TOOL_PASTA,
	SBX_NET_TOOL_SLIRP4NETNS,
};

#define SBX_NET_PROXY_PORT 3128

struct sbx_net_opts {
	enum sbx_net_mode mode;
	const struct sbx_publish *publish; /* nat only (config/config.h) */
	size_t n_publish;
	bool allow_host_loopback; /* nat: the host's 127.0.0.1 at the gateway address */
	/* Egress allowlist rules ("api.anthropic.com:443", "*.npmjs.org:443",
	 * "203.0.113.7:443", "[2001:db8::1]:443"); NULL or empty: no proxy.
	 * Only with mode none. */
	char *const *allow;
	int log_fd; /* the proxy's log lines ("egress refused: ..."); -1: none */
	/* A hosts(5)-format file the proxy consults before DNS; NULL: the
	 * variable TRIMO_SBX_HOSTS_FILE, if set (tests map names to
	 * 127.0.0.x servers with it). */
	const char *hosts_file;
	enum sbx_net_tool tool;
	int ready_timeout_ms; /* how long to wait for the interface; 0: 10 s */
	uint16_t proxy_port;  /* inside the sandbox; 0: 3128 */
};

/* Connections the proxy handled (readable at any time from the runner). */
struct sbx_net_stats {
	uint64_t allowed; /* allowed and connected */
	uint64_t refused; /* refused by the allowlist or malformed (403/400) */
	uint64_t failed;  /* allowed, but resolving or connecting failed (502/504) */
};

/* The runner's state for one sandbox.  Initialise with net_init(). */
struct sbx_net {
	struct sbx_net_opts opts;
	struct proxy_rules *rules;
	char tool_path[256];
	enum sbx_net_tool tool;
	char hosts_file[4096];
	pid_t helper_pid;   /* pasta or slirp4netns */
	int helper_log;     /* memfd with the helper's stderr, for errors */
	int exit_fd;        /* slirp4netns --exit-fd: closing it ends slirp */
	char api_dir[4096]; /* slirp4netns API socket folder, removed at the end */
	pid_t proxy_pid;
	struct sbx_net_stats *stats; /* shared with the proxy (MAP_SHARED) */
	bool attached;
};

void net_init(struct sbx_net *net);

/* "none" | "nat" | "host" (what names the option in the error). */
int net_parse_mode(const char *s, const char *what, enum sbx_net_mode *ret, struct sbx_err *err);
const char *net_mode_name(enum sbx_net_mode mode);

/* `--publish [IP:]HOSTPORT:PORT[/udp]`: host IP:HOSTPORT forwarded to PORT
 * inside; IP defaults to 127.0.0.1, an IPv6 address may go in brackets
 * (what names the option in the error). */
int net_parse_publish(const char *s, const char *what, struct sbx_publish *ret,
                      struct sbx_err *err);

/* The options of a task's [network] section: mode, publish and
 * allow_host_loopback point into cfg; the allowlist is rebuilt as rule
 * strings in *ret_allow (free with sbx_strv_free); log_fd is -1. */
int net_opts_from_config(const struct sbx_cfg_network *cfg, struct sbx_net_opts *ret,
                         char ***ret_allow, struct sbx_err *err);

/* Check one allowlist rule without keeping it (for config validation). */
int net_check_allow_rule(const char *rule, const char *what, struct sbx_err *err);

/* Validate opts, find the tool, check tun access and free host ports,
 * parse the allowlist.  opts's arrays must outlive net.  Before clone. */
int net_prepare(struct sbx_net *net, const struct sbx_net_opts *opts, struct sbx_err *err);

/* False for mode host: leave out CLONE_NEWNET (and do not bring lo up). */
bool net_wants_netns(const struct sbx_net *net);

/* The warning to print at every start in mode host. */
const char *net_host_warning(void);

/* Add (or replace) HTTPS_PROXY, HTTP_PROXY, https_proxy, http_proxy,
 * NO_PROXY and no_proxy in a NULL-terminated malloc'ed environment when
 * the proxy is in use; nothing otherwise. */
int net_env_push(const struct sbx_net *net, char ***env, struct sbx_err *err);

/* Attach to the sandbox whose init is pid (its namespaces are still
 * there: call before START).  On failure everything started is ended. */
int net_attach(struct sbx_net *net, pid_t pid, struct sbx_err *err);

/* The proxy's counts so far (zeros without a proxy). */
void net_stats(const struct sbx_net *net, struct sbx_net_stats *ret);

/* End the helper and the proxy (SIGKILL by pid, then reap); the final
 * counts go to ret_stats when not NULL.  Idempotent. */
void net_detach(struct sbx_net *net, struct sbx_net_stats *ret_stats);

/* net_detach() and free everything net_prepare() allocated. */
void net_release(struct sbx_net *net);

/* For `trimo-sbx check`: which tool nat would use and whether it can start
 * here (tun access).  Returns 0 when nat works, < 0 with the cause and the
 * fix in err; detail says which tool was found. */
int net_check_host(char *detail, size_t size, struct sbx_err *err);

#endif
